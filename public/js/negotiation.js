// @ts-check
/**
 * "Perfect negotiation" for one RTCPeerConnection (MDN, "Perfect negotiation"; webrtc/samples
 * `perfect-negotiation/js/peer.js`). Either side may change the session at any time; when both
 * offer at once, the polite side rolls back and takes the other's offer, the impolite side
 * ignores the colliding offer. In Duet the `ready` frame's initiator is the impolite side.
 *
 * The signaling transport is passed in as `send`, so this module knows nothing about Duet's
 * protocol or the DOM. Messages are `{description}` or `{candidate}`.
 * @module negotiation
 */

/**
 * @typedef {{description: RTCSessionDescriptionInit} | {candidate: RTCIceCandidateInit}} Signal
 */

/**
 * @typedef {object} NegotiatorOptions
 * @property {boolean} polite whether we give way when offers collide
 * @property {(signal: Signal) => void} send delivers a signal to the other side
 * @property {(error: unknown) => void} [onError] a negotiation step failed
 */

export class Negotiator {
  /** Offers this side created (the first one included). */
  offersSent = 0;
  /** Offers from the other side that this side answered. */
  offersAnswered = 0;

  #pc;
  #polite;
  #send;
  #onError;
  #makingOffer = false;
  #ignoreOffer = false;
  #srdAnswerPending = false;

  /**
   * Takes over `pc`'s `negotiationneeded` and `icecandidate` events.
   * @param {RTCPeerConnection} pc
   * @param {NegotiatorOptions} options
   */
  constructor(pc, { polite, send, onError = (error) => console.error("negotiation failed", error) }) {
    this.#pc = pc;
    this.#polite = polite;
    this.#send = send;
    this.#onError = onError;
    pc.addEventListener("negotiationneeded", () => this.#offer());
    pc.addEventListener("icecandidate", ({ candidate }) => {
      // Candidates trickle one by one; the end-of-candidates marker (null) is not needed.
      if (candidate) this.#send({ candidate: candidate.toJSON() });
    });
  }

  get polite() {
    return this.#polite;
  }

  async #offer() {
    const pc = this.#pc;
    try {
      this.#makingOffer = true;
      await pc.setLocalDescription();
      if (pc.localDescription?.type !== "offer") return;
      this.offersSent += 1;
      this.#send({ description: pc.localDescription.toJSON() });
    } catch (error) {
      if (pc.signalingState !== "closed") this.#onError(error);
    } finally {
      this.#makingOffer = false;
    }
  }

  /**
   * Applies a signal from the other side.
   * @param {Partial<{description: RTCSessionDescriptionInit, candidate: RTCIceCandidateInit}>} signal
   */
  async handle({ description, candidate }) {
    const pc = this.#pc;
    try {
      if (description) {
        // With an answer being applied we will be stable by the time the offer is applied.
        const stable =
          pc.signalingState === "stable" || (pc.signalingState === "have-local-offer" && this.#srdAnswerPending);
        const collision = description.type === "offer" && (this.#makingOffer || !stable);
        this.#ignoreOffer = !this.#polite && collision;
        if (this.#ignoreOffer) return;
        // A repeated answer (the offer was re-sent after a signaling blip) has nothing to do.
        if (description.type === "answer" && pc.signalingState === "stable") return;
        this.#srdAnswerPending = description.type === "answer";
        await pc.setRemoteDescription(description); // rolls back our offer if we are polite
        this.#srdAnswerPending = false;
        if (description.type === "offer") {
          await pc.setLocalDescription();
          this.offersAnswered += 1;
          if (pc.localDescription) this.#send({ description: pc.localDescription.toJSON() });
        }
      } else if (candidate) {
        try {
          await pc.addIceCandidate(candidate);
        } catch (error) {
          // Candidates of an offer we ignored fail to apply; that is expected.
          if (!this.#ignoreOffer) throw error;
        }
      }
    } catch (error) {
      this.#srdAnswerPending = false;
      if (pc.signalingState !== "closed") this.#onError(error);
    }
  }

  /**
   * Sends our pending offer again, for when signaling dropped while it was in flight (an offer
   * or its answer may have been lost). Harmless if the other side already has it.
   */
  resendPendingOffer() {
    const pc = this.#pc;
    if (pc.signalingState === "have-local-offer" && pc.localDescription && !this.#makingOffer) {
      this.#send({ description: pc.localDescription.toJSON() });
    }
  }
}
