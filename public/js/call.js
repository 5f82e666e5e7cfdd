// @ts-check
/**
 * One two-person call: local media, the signaling connection (`duet.js`), the peer connection
 * with perfect negotiation (`negotiation.js`), and a data channel for chat and photos
 * (`transfer.js`). No DOM here: the UI (`app.js`) listens to the events below.
 *
 * Events (`CustomEvent`s):
 * - `status`: `detail = {status}`, see `status.js`;
 * - `localstream` / `remotestream`: `detail = {stream}` (`null` when gone);
 * - `chat`: `detail = {from: "me" | "peer", text}`;
 * - `photo`: `detail = {from: "me" | "peer", blob}`;
 * - `channel`: `detail = {open}`, whether chat and photos can be sent;
 * - `connectionstate`: `detail = {state}`, the peer connection's state changed;
 * - `safetycode`: `detail = {code}`, the six digits of `sas.js` for the current peer connection
 *   (`null` while there is none or it is not negotiated yet);
 * - `e2e-error`: `detail = {reason, from, message}`, a message from the peer was dropped: with a
 *   `key`, it did not decrypt (wrong or altered link, or an interfering server), see `duet.js`;
 * - `peerstate`: `detail = {mic, camera, screen}`, what the other person says of their media
 *   (see "Messages between the peers");
 * - `mediastate`: `detail = {mic, camera}`, we muted or unmuted, or turned the camera off or on;
 * - `screen`: `detail = {sharing}`, we started or stopped sharing our screen.
 * - `e2e-confirmed`: `detail = {peer}`, with a `key`: the other side's link has the same key
 *   (`duet.js`); a `key-mismatch` `e2e-error` says the opposite;
 * - the statuses `call-ended` and `removed`: the service's operator ended the call or removed us
 *   from it (`docs/admin.md`); `operatorReason` holds the reason they gave (maybe empty);
 * - `refused`: `detail = {code, message, retryAfter?}`, the server refused to let us join
 *   (`duet.js`); `problem` then says why and what the person can do, and the status follows:
 *   `error` for a final refusal, a retry after `too-many-joins`.
 *
 * Recovery: each peer connection is watched with `duet.js`'s `watchPeerConnection()`, which
 * notices a broken media path (inbound media stalled for 2 s, ICE disconnected or failed, a
 * network change), checks the signaling socket, restarts ICE once a socket answered, and after
 * two negotiated restarts that did not help asks for a new peer connection, which the initiator
 * makes. The status says "connected" only while media arrives and remote video (if the peer
 * sends any) is decoded: see `status.js`.
 *
 * TURN credentials expire (an hour by default) while a call may go on. Whenever signaling
 * brings fresh ICE servers (`ice-servers` before the old ones expire, or the welcome of a
 * resume), they go into the peer connection's configuration, which the next ICE restart uses.
 *
 * ## Messages between the peers
 * Everything rides in the `data` of signaling `message` frames as
 * `{kind: "signal", pc, to, description | candidate}`, and `{kind: "keyframe", pc, to}` asks the
 * peer to restart its video with a key frame (our picture did not come back with the media). `pc` is a random id of the sender's
 * RTCPeerConnection and `to` the id of ours it was answering (null at first). A signal from a
 * peer connection we have not seen means the peer started afresh (say, its page reloaded and
 * resumed its slot), so we start afresh too; a signal addressed to a peer connection we no
 * longer have is stale and dropped. That keeps one rule for first contact and for recovery.
 *
 * On the data channel, besides chat and photos, each side tells the other what it sends with a
 * {@link StateMessage} (`{"kind":"state","mic":"off","camera":"on","screen":false}`): when the
 * channel opens and whenever it changes. A disabled track only sends silence or black, so
 * without it the other person could not tell "muted" from "quiet", nor "camera off" from a
 * broken video.
 * @module call
 */

import { CloseCode, connect, ErrorCode, RefusalCode } from "./duet.js";
import { Negotiator } from "./negotiation.js";
import { PhotoReceiver, sendPhoto } from "./transfer.js";
import { deriveStatus } from "./status.js";
import { acquireMedia, openDevice } from "./media.js";
import { safetyCode } from "./sas.js";

export const CHAT_MAX_CHARS = 2000;
/**
 * After the path was down this long, our video restarts with a key frame. The peer cannot
 * decode the frames that follow a gap longer than our packet history (about a second) without
 * one, and would ask for it only after 3 s without a decodable frame.
 */
const KEYFRAME_AFTER_STALL_MS = 1000;
/**
 * When media arrives again but our remote video still does not decode this long after, we ask
 * the peer for a key frame (its own, sent when its media came back, may have been lost on a
 * path that was not up yet in our direction); at most once per `KEYFRAME_ASK_EVERY_MS`.
 */
const KEYFRAME_ASK_AFTER_MS = 400;
const KEYFRAME_ASK_EVERY_MS = 1000;
/**
 * How long a negotiated connection may stay "new" (not a single connectivity check) before we
 * restart ICE: the impolite side first, the polite side later in case that did not help.
 * Chromium sometimes gathers no candidates after the polite side rolled back an offer.
 */
const STUCK_NEW_MS = { impolite: 5000, polite: 10000 };

/**
 * What one side sends, as it tells the other: `on`, `off` (muted or turned off), or `none` (no
 * such device in the call).
 * @typedef {"on" | "off" | "none"} MediaState
 */

/**
 * @typedef {{kind: "state", mic: MediaState, camera: MediaState, screen: boolean}} StateMessage
 */

const MEDIA_STATES = ["on", "off", "none"];

/**
 * @typedef {object} CallOptions
 * @property {string} room
 * @property {string} [baseUrl] the Duet server, default this page's origin
 * @property {boolean} [relay] only use TURN relays (`iceTransportPolicy: "relay"`)
 * @property {string | null} [key] the secret of an end-to-end protected link (`docs/e2e.md`)
 * @property {import("./duet.js").ConnectOptions} [signaling] more options for `connect()`
 * @property {(c: MediaStreamConstraints) => Promise<MediaStream>} [getUserMedia]
 */

export class Call extends EventTarget {
  /** @type {import("./media.js").LocalMedia} */
  media = { stream: null, mode: "none", problem: null };
  /** @type {import("./duet.js").DuetConnection | null} */
  signaling = null;
  /** @type {RTCPeerConnection | null} */
  pc = null;
  /** Id of our current peer connection, sent with every signal. @type {string | null} */
  pcId = null;
  /** Id of the peer's peer connection we talk to. @type {string | null} */
  remotePcId = null;
  /** @type {Negotiator | null} */
  negotiator = null;
  /** @type {RTCDataChannel | null} */
  channel = null;
  /** @type {MediaStream | null} */
  remoteStream = null;
  /** @type {import("./status.js").Status} */
  status = "starting";
  /** Every status this call has shown, in order (for tests and debugging). @type {string[]} */
  statusHistory = ["starting"];
  /** Counters for tests and debugging. */
  stats = { peerConnections: 0, iceRestarts: 0, reconnects: 0, iceServerUpdates: 0, renewals: 0, keyFrameRequests: 0 };
  /** Last problem worth telling the person about. @type {string | null} */
  problem = null;
  /** The safety code of the current peer connection, e.g. `"024 995"`. @type {string | null} */
  safetyCode = null;
  /** Reasons of the peer's messages that were dropped undecrypted, in order. @type {string[]} */
  e2eErrors = [];
  /** Why the other person's slot was released, from the last `peer-left`. @type {string | null} */
  peerLeftReason = null;
  /** What the other person last said of their media. @type {Omit<StateMessage, "kind"> | null} */
  peerState = null;
  /** The shared screen's track while we share it (it replaces the camera's). @type {MediaStreamTrack | null} */
  screenTrack = null;
  /**
   * The server's refusal of our join, until a join succeeds; `problem` holds its advice.
   * @type {import("./duet.js").RefusedDetail | null}
   */
  refusal = null;
  /** The reason the operator gave for ending the call or removing us ("" if none). @type {string | null} */
  operatorReason = null;

  #options;
  /** @type {import("./status.js").CallFacts["phase"]} */
  #phase = "starting";
  /** @type {import("./status.js").CallFacts["peer"]} */
  #peer = "none";
  #photos = new PhotoReceiver();
  /** Watches the current peer connection's media path (`duet.js`). @type {import("./duet.js").PathWatcher | null} */
  #watcher = null;
  /** Whether media reached us with this peer (so trouble now is an interruption, not a start). */
  #wasConnected = false;
  #keyFrameAskedAt = 0;
  #refreshedAt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #stuckTimer;
  #offersBefore = { sent: 0, answered: 0 };
  /** The video transceiver a shared screen goes out on in a call without a camera. @type {RTCRtpTransceiver | null} */
  #screenTransceiver = null;

  /** @param {CallOptions} options */
  constructor(options) {
    super();
    this.#options = options;
  }

  /** Gets camera and microphone (or not), then joins the room. */
  async start() {
    this.media = await acquireMedia(this.#options.getUserMedia);
    this.#emit("localstream", { stream: this.media.stream });
    const signaling = connect(this.#options.room, {
      baseUrl: this.#options.baseUrl,
      key: this.#options.key ?? null,
      ...this.#options.signaling,
    });
    this.signaling = signaling;
    signaling.addEventListener("refused", (e) => this.#onRefused(e.detail));
    signaling.addEventListener("created", () => {
      this.#refusalOver();
      this.#phase = "in-room";
      this.#closePc(); // only after a reconnect that found the room empty
      this.#setPeer("none");
    });
    signaling.addEventListener("joined", (e) => this.#onJoined(e.detail));
    signaling.addEventListener("peer-joined", (e) => this.#onPeerJoined(e.detail));
    signaling.addEventListener("ready", () => this.#onReady());
    signaling.addEventListener("message", (e) => this.#onMessage(e.detail.data));
    signaling.addEventListener("peer-away", () => this.#setPeer("away"));
    signaling.addEventListener("peer-left", (e) => {
      this.peerLeftReason = e.detail.reason;
      this.#closePc();
      this.#wasConnected = false;
      this.#setPeer("left");
    });
    signaling.addEventListener("full", () => {
      this.#phase = "full";
      this.#update();
    });
    signaling.addEventListener("ended", (e) => this.#onOperator("call-ended", e.detail.reason));
    signaling.addEventListener("kicked", (e) => this.#onOperator("removed", e.detail.reason));
    signaling.addEventListener("error", (e) => {
      const { code, message } = e.detail;
      // `no-peer`: the peer is away, and what we sent is lost; recovery happens on its return.
      if (code !== ErrorCode.NO_PEER) console.warn("signaling refused a frame:", code, message);
    });
    signaling.addEventListener("e2e-error", (e) => {
      // Never applied: duet.js delivers only what decrypted. Tell the person.
      const detail = /** @type {CustomEvent} */ (e).detail;
      this.e2eErrors.push(detail.reason);
      this.#emit("e2e-error", detail);
    });
    signaling.addEventListener("e2e-confirmed", (e) => this.#emit("e2e-confirmed", e.detail));
    signaling.addEventListener("ice-servers", () => this.#applyIceServers());
    signaling.addEventListener("media-stalled", (e) => {
      // Packets arrive, pictures do not: the peer's key frame was lost, or never sent.
      if (e.detail.kind === "video" && !this.#watcher?.stalled) this.#askForKeyFrame();
      this.#update();
    });
    signaling.addEventListener("media-flowing", (e) => {
      if (e.detail.kind === "all" && e.detail.stalledMs >= KEYFRAME_AFTER_STALL_MS) {
        this.#refreshVideo();
        // Our picture comes back only with a key frame from the peer: ask, if none came soon.
        const watcher = this.#watcher;
        setTimeout(() => watcher === this.#watcher && watcher?.videoStalled && this.#askForKeyFrame(), KEYFRAME_ASK_AFTER_MS);
      }
      this.#update();
    });
    signaling.addEventListener("reconnecting", () => this.#update());
    signaling.addEventListener("reconnected", (e) => {
      this.stats.reconnects += 1;
      if (e.detail.resumed) {
        // Before any ICE restart below: the welcome's credentials are the fresh ones.
        this.#applyIceServers();
        this.#afterSignalingGap();
      }
      this.#update();
    });
    signaling.addEventListener("close", (e) => this.#onSignalingClosed(e.detail));
    this.#update();
  }

  /** Leaves the room (the peer sees "peer left") and turns the camera off. */
  hangUp() {
    this.#phase = "ended";
    this.signaling?.leave();
    this.#closePc();
    this.releaseMedia();
    this.#update();
  }

  /** Stops the camera, the microphone and a shared screen: once a call is over, nothing stays on. */
  releaseMedia() {
    for (const track of this.media.stream?.getTracks() ?? []) track.stop();
    this.screenTrack?.stop();
    this.screenTrack = null;
  }

  /** Tracks of ours still capturing: zero once the call is over. */
  get liveTracks() {
    const tracks = [...(this.media.stream?.getTracks() ?? []), ...(this.screenTrack ? [this.screenTrack] : [])];
    return tracks.filter((t) => t.readyState === "live").length;
  }

  /** The identity of the other person from their join ticket, when the server has tickets. */
  get peerIdentity() {
    const signaling = this.signaling;
    const peer = signaling?.peers[0];
    return peer ? (signaling.peerIdentities[peer] ?? null) : null;
  }

  /** @param {"audio" | "video"} kind */
  hasTrack(kind) {
    return (this.media.stream?.getTracks() ?? []).some((t) => t.kind === kind);
  }

  /**
   * Mutes or unmutes the microphone, or turns the camera on or off (the track keeps its place
   * in the call; a disabled track sends silence or black).
   * @param {"audio" | "video"} kind
   * @param {boolean} enabled
   */
  setEnabled(kind, enabled) {
    for (const track of this.media.stream?.getTracks() ?? []) if (track.kind === kind) track.enabled = enabled;
    this.#emit("mediastate", { mic: this.mediaState("audio"), camera: this.mediaState("video") });
    this.#sendState();
  }

  /** @param {"audio" | "video"} kind @returns {MediaState} */
  mediaState(kind) {
    const track = this.media.stream?.getTracks().find((t) => t.kind === kind);
    return !track ? "none" : track.enabled ? "on" : "off";
  }

  /**
   * Uses another camera or microphone. The new track takes the old one's place in the call with
   * `replaceTrack` (no renegotiation) and keeps its muted or turned-off state.
   * @param {"audio" | "video"} kind
   * @param {string} deviceId
   */
  async useDevice(kind, deviceId) {
    const stream = this.media.stream;
    const old = stream?.getTracks().find((t) => t.kind === kind);
    if (!stream || !old) throw new Error(`there is no ${kind} in this call to switch`);
    if (old.getSettings().deviceId === deviceId) return;
    const fresh = await openDevice(kind, deviceId, this.#options.getUserMedia);
    fresh.enabled = old.enabled;
    // While the screen is shared, the camera waits off the call; it comes back when sharing stops.
    if (!(kind === "video" && this.screenTrack)) await this.#senderOf(old)?.replaceTrack(fresh);
    stream.removeTrack(old);
    stream.addTrack(fresh);
    old.stop();
    this.#emit("localstream", { stream });
  }

  /**
   * Shares a screen or window (`getDisplayMedia`): in place of the camera without renegotiation,
   * or, in a call without a camera (denied, or audio only), as a video track of its own, which
   * the negotiator offers to the other side.
   */
  async shareScreen() {
    if (this.screenTrack) return;
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const [track] = display.getVideoTracks();
    if ((this.#phase !== "in-room" && this.#phase !== "starting") || this.screenTrack) {
      track.stop(); // the call ended, or another share began, while the person was choosing
      return;
    }
    this.screenTrack = track;
    // The browser's own "Stop sharing" ends the track.
    track.addEventListener("ended", () => track === this.screenTrack && this.stopSharing());
    const camera = this.media.stream?.getVideoTracks()[0];
    if (camera) await this.#senderOf(camera)?.replaceTrack(track);
    else if (this.pc) await this.#sendScreenAlone(this.pc, track);
    this.#emit("screen", { sharing: true });
    this.#sendState();
  }

  /** Stops sharing the screen; the camera takes its place again, or the screen's sender goes quiet. */
  async stopSharing() {
    const track = this.screenTrack;
    if (!track) return;
    this.screenTrack = null;
    const camera = this.media.stream?.getVideoTracks()[0] ?? null;
    const sender = this.pc?.getSenders().find((s) => s.track === track);
    track.stop();
    if (sender && this.pc?.signalingState !== "closed") {
      await sender.replaceTrack(camera);
      // Without a camera, the screen's transceiver stops sending (renegotiated) and waits for
      // the next share.
      const transceiver = this.pc?.getTransceivers().find((t) => t.sender === sender);
      if (!camera && transceiver && transceiver === this.#screenTransceiver) transceiver.direction = "recvonly";
    }
    this.#emit("screen", { sharing: false });
    this.#sendState();
  }

  /**
   * Sends `track` on a video transceiver of its own (there is no camera's to take): the one an
   * earlier share used on this peer connection, or a new one. Either fires `negotiationneeded`.
   * @param {RTCPeerConnection} pc
   * @param {MediaStreamTrack} track
   */
  async #sendScreenAlone(pc, track) {
    if (pc.signalingState === "closed") return;
    const transceiver = this.#screenTransceiver;
    if (transceiver && pc.getTransceivers().includes(transceiver) && transceiver.currentDirection !== "stopped") {
      await transceiver.sender.replaceTrack(track);
      transceiver.direction = "sendrecv";
      return;
    }
    const sender = pc.addTrack(track);
    this.#screenTransceiver = pc.getTransceivers().find((t) => t.sender === sender) ?? null;
  }

  /** @param {MediaStreamTrack} track the sender that carries `track` */
  #senderOf(track) {
    return this.pc?.getSenders().find((s) => s.track === track);
  }

  /** Tells the other side what we send now (see "Messages between the peers"). */
  #sendState() {
    if (this.channel?.readyState !== "open") return;
    /** @type {StateMessage} */
    const state = { kind: "state", mic: this.mediaState("audio"), camera: this.mediaState("video"), screen: this.screenTrack !== null };
    this.channel.send(JSON.stringify(state));
  }

  /**
   * Sends a chat message over the data channel.
   * @param {string} text
   * @returns {boolean} whether it was sent
   */
  sendChat(text) {
    const message = text.trim().slice(0, CHAT_MAX_CHARS);
    if (!message || this.channel?.readyState !== "open") return false;
    this.channel.send(JSON.stringify({ kind: "chat", text: message }));
    this.#emit("chat", { from: "me", text: message });
    return true;
  }

  /**
   * Sends a photo over the data channel, in chunks.
   * @param {Blob} blob
   */
  async sendPhoto(blob) {
    const channel = this.channel;
    if (channel?.readyState !== "open") throw new Error("not connected to a peer");
    await sendPhoto(channel, blob, crypto.randomUUID());
    this.#emit("photo", { from: "me", blob });
  }

  /** Drops the signaling socket as a network failure would; it resumes on its own. */
  dropSignaling() {
    this.signaling?.reconnect();
  }

  /**
   * The current media path (direct or relayed, over UDP or TCP), how long ICE took to connect
   * and how often the path broke, with this call's ICE restarts, reconnects and renewals: what a
   * report to the server would carry (`duet.js`, `PathWatcher.report()`). `null` without a peer
   * connection.
   */
  async report() {
    const path = await this.#watcher?.report();
    if (!path) return null;
    const { iceRestarts, reconnects, renewals } = this.stats;
    return { ...path, iceRestarts, reconnects, renewals };
  }

  /** Restarts ICE on the current peer connection, as the app does after an ICE failure. */
  restartIce() {
    this.#restartIce();
  }

  // --- signaling events ------------------------------------------------------------------

  /**
   * The server refused our join: say why and what to do. The close that follows ends the call
   * (`#onSignalingClosed`) or, for `too-many-joins`, `duet.js` tries again after `retryAfter`.
   * @param {import("./duet.js").RefusedDetail} refusal
   */
  #onRefused(refusal) {
    this.refusal = refusal;
    this.problem = refusalAdvice(refusal);
    this.#emit("refused", refusal);
    this.#update(true);
  }

  /** A welcome: we joined after all (a retry after `too-many-joins`), so no refusal stands. */
  #refusalOver() {
    if (!this.refusal) return;
    this.refusal = null;
    this.problem = null;
    this.#update(true);
  }

  /** @param {{peers: string[], resumed: boolean}} frame */
  #onJoined(frame) {
    this.#refusalOver();
    this.#phase = "in-room";
    const others = this.signaling?.peers ?? [];
    if (!frame.resumed) {
      // A fresh slot (maybe our old one expired while we were away): a `ready` will pair us.
      this.#closePc();
    } else if (!this.pc && others.length > 0 && this.#knowsInitiator()) {
      // A reloaded page took its slot back: start a new peer connection; its first offer tells
      // the peer to start afresh too (see "Messages between the peers").
      this.#createPc();
    }
    this.#setPeer(others.length > 0 ? "present" : "none");
  }

  /** @param {{resumed: boolean}} frame */
  #onPeerJoined(frame) {
    if (frame.resumed) {
      this.#afterSignalingGap();
    } else {
      this.#closePc(); // a new person; `ready` follows
      this.#wasConnected = false;
    }
    this.#setPeer("present");
  }

  #onReady() {
    this.#closePc();
    this.#wasConnected = false;
    // The initiator (impolite) offers at once; the other side answers on the first offer.
    if (this.signaling?.isInitiator) this.#createPc();
    this.#setPeer("present");
  }

  /**
   * After either side's signaling came back: whatever was sent meanwhile may be lost. Re-send an
   * unanswered offer. (If the media path broke too, the watcher restarts ICE.)
   */
  #afterSignalingGap() {
    if (!this.pc) {
      // A fresh peer connection announces itself with its first offer.
      if (this.#knowsInitiator() && (this.signaling?.peers.length ?? 0) > 0) this.#createPc();
      return;
    }
    this.negotiator?.resendPendingOffer();
  }

  /**
   * The operator ended the call or removed us: over for good (duet.js does not reconnect).
   * @param {"call-ended" | "removed"} phase @param {unknown} reason
   */
  #onOperator(phase, reason) {
    this.operatorReason = typeof reason === "string" ? reason : "";
    this.#phase = phase;
    this.#closePc();
    this.#update();
  }

  /** @param {{code: number, reason: string}} detail */
  #onSignalingClosed({ code, reason }) {
    if (["ended", "full", "call-ended", "removed"].includes(this.#phase)) return;
    if (this.refusal) {
      this.#phase = "error"; // `problem` holds the refusal's advice
    } else if (code === CloseCode.REPLACED) {
      this.#phase = "replaced";
    } else {
      this.#phase = "error";
      this.problem =
        code === CloseCode.STALE
          ? "The server dropped this call after a long silence."
          : code === CloseCode.RATE_LIMITED
            ? "Too many messages were sent too fast."
            : `Lost the connection to the server (${code}${reason ? ` ${reason}` : ""}).`;
    }
    this.#closePc();
    this.#update();
  }

  /** @param {unknown} data */
  #onMessage(data) {
    if (!data || typeof data !== "object") return;
    const msg = /** @type {Record<string, any>} */ (data);
    if (msg.kind === "keyframe") {
      if (this.pc && msg.to === this.pcId) this.#refreshVideo();
      return;
    }
    if (msg.kind !== "signal" || typeof msg.pc !== "string") return;
    if (msg.to && msg.to !== this.pcId) return; // for a peer connection we no longer have
    if (!this.pc || (this.remotePcId !== null && msg.pc !== this.remotePcId)) this.#createPc();
    if (this.remotePcId === null) this.remotePcId = msg.pc;
    this.negotiator?.handle(msg);
  }

  // --- the peer connection ---------------------------------------------------------------

  /** Whether we know who makes the offer: a `ready` paired us (possibly before a reload). */
  #knowsInitiator() {
    return this.signaling?.isInitiator !== null;
  }

  #polite() {
    const signaling = this.signaling;
    if (signaling?.isInitiator !== null && signaling?.isInitiator !== undefined) return !signaling.isInitiator;
    // Pairing unknown (storage was unavailable across a reload): any rule both sides agree on.
    return (signaling?.clientId ?? "") > (signaling?.peers[0] ?? "");
  }

  #createPc() {
    this.#closePc();
    const pc = new RTCPeerConnection({
      iceServers: this.signaling?.iceServers ?? [],
      iceTransportPolicy: this.#options.relay ? "relay" : "all",
    });
    const pcId = crypto.randomUUID();
    this.pc = pc;
    this.pcId = pcId;
    this.remotePcId = null;
    this.stats.peerConnections += 1;
    const negotiator = new Negotiator(pc, {
      polite: this.#polite(),
      send: (signal) => {
        if (pc === this.pc) this.signaling?.send({ kind: "signal", pc: pcId, to: this.remotePcId, ...signal });
      },
    });
    this.negotiator = negotiator;

    // Negotiated with a fixed id on both sides, so neither waits for the other to announce it.
    const channel = pc.createDataChannel("duet", { negotiated: true, id: 0 });
    channel.binaryType = "arraybuffer";
    this.channel = channel;
    channel.addEventListener("open", () => {
      if (channel !== this.channel) return;
      this.#sendState();
      this.#emit("channel", { open: true });
    });
    channel.addEventListener("close", () => channel === this.channel && this.#emit("channel", { open: false }));
    channel.addEventListener("message", (e) => channel === this.channel && this.#onChannelMessage(e.data));

    const stream = this.media.stream;
    // A shared screen goes out in the camera's place, also on a new peer connection; without a
    // camera, on a video transceiver of its own.
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track.kind === "video" ? (this.screenTrack ?? track) : track, stream);
    this.#screenTransceiver = null;
    if (this.screenTrack && !stream?.getVideoTracks().length) void this.#sendScreenAlone(pc, this.screenTrack);

    const remote = new MediaStream();
    this.remoteStream = remote;
    pc.addEventListener("track", ({ track }) => {
      if (pc !== this.pc) return;
      remote.addTrack(track);
      this.#emit("remotestream", { stream: remote });
    });
    pc.addEventListener("connectionstatechange", () => pc === this.pc && this.#onPcState(pc));
    pc.addEventListener("signalingstatechange", () => pc === this.pc && this.#watchForStuck(pc));
    pc.addEventListener("signalingstatechange", () => pc === this.pc && this.#updateSafetyCode(pc));
    this.#watcher =
      this.signaling?.watchPeerConnection(pc, { restartIce: () => this.#restartIce(), renew: () => this.#renew(pc), expectsMedia: (kind) => this.#peerSends(kind) }) ?? null;
    this.#emit("remotestream", { stream: remote });
    this.#update();
  }

  /**
   * ICE restarts did not bring media back: a new peer connection, made by the initiator only (two
   * new ones crossing would each drop the other's first offer as stale). Its first offer tells
   * the peer to start afresh too.
   * @param {RTCPeerConnection} pc
   */
  #renew(pc) {
    if (pc !== this.pc || !this.signaling?.isInitiator) return;
    this.stats.renewals += 1;
    this.#createPc();
  }

  #closePc() {
    clearTimeout(this.#stuckTimer);
    this.#watcher?.stop();
    this.#watcher = null;
    const pc = this.pc;
    if (!pc) return;
    if (this.negotiator) {
      this.#offersBefore.sent += this.negotiator.offersSent;
      this.#offersBefore.answered += this.negotiator.offersAnswered;
    }
    this.pc = null;
    this.pcId = null;
    this.remotePcId = null;
    this.negotiator = null;
    this.channel = null;
    this.remoteStream = null;
    this.peerState = null;
    pc.close();
    this.#setSafetyCode(null);
    this.#emit("channel", { open: false });
    this.#emit("remotestream", { stream: null });
  }

  /** @param {RTCPeerConnection} pc */
  #onPcState(pc) {
    // Restarts on "disconnected" and "failed" are the watcher's: only once signaling works.
    if (pc.connectionState === "connected") this.#wasConnected = true;
    this.#emit("connectionstate", { state: pc.connectionState });
    this.#update();
  }

  /**
   * After each completed negotiation: if ICE has not started at all some seconds later, restart it.
   * @param {RTCPeerConnection} pc
   */
  #watchForStuck(pc) {
    clearTimeout(this.#stuckTimer);
    const stuck = () => pc === this.pc && pc.signalingState === "stable" && pc.connectionState === "new";
    if (!pc.remoteDescription || !stuck()) return;
    const delay = this.negotiator?.polite ? STUCK_NEW_MS.polite : STUCK_NEW_MS.impolite;
    this.#stuckTimer = setTimeout(() => stuck() && this.#restartIce(), delay);
  }

  /**
   * After each negotiation: the safety code of the fingerprints now in place.
   * @param {RTCPeerConnection} pc
   */
  async #updateSafetyCode(pc) {
    if (pc.signalingState !== "stable") return;
    const code = await safetyCode(pc);
    if (pc === this.pc) this.#setSafetyCode(code);
  }

  /** @param {string | null} code */
  #setSafetyCode(code) {
    if (code === this.safetyCode) return;
    this.safetyCode = code;
    this.#emit("safetycode", { code });
  }

  /** Asks the peer to start its video over with a key frame (see `KEYFRAME_ASK_AFTER_MS`). */
  #askForKeyFrame() {
    if (!this.pc || this.remotePcId === null || Date.now() - this.#keyFrameAskedAt < KEYFRAME_ASK_EVERY_MS) return;
    this.#keyFrameAskedAt = Date.now();
    this.stats.keyFrameRequests += 1;
    this.signaling?.send({ kind: "keyframe", pc: this.pcId, to: this.remotePcId });
  }

  /**
   * Makes our video encoders start over with a key frame: each video sender's encodings are
   * paused and resumed at once (there is no API to ask for a key frame).
   */
  async #refreshVideo() {
    const pc = this.pc;
    // At most once per KEYFRAME_ASK_EVERY_MS, however often the peer asks.
    if (Date.now() - this.#refreshedAt < KEYFRAME_ASK_EVERY_MS) return;
    this.#refreshedAt = Date.now();
    for (const sender of pc?.getSenders() ?? []) {
      if (sender.track?.kind !== "video") continue;
      try {
        const parameters = sender.getParameters();
        if (!parameters.encodings?.length || parameters.encodings.some((e) => e.active === false)) continue;
        await sender.setParameters({ ...parameters, encodings: parameters.encodings.map((e) => ({ ...e, active: false })) });
        const resumed = sender.getParameters();
        await sender.setParameters({ ...resumed, encodings: resumed.encodings.map((e) => ({ ...e, active: true })) });
      } catch (error) {
        if (pc === this.pc) console.warn("could not restart the video with a key frame", error);
      }
    }
  }

  /** The signaling's current ICE servers into the peer connection, for its next gathering. */
  #applyIceServers() {
    const pc = this.pc;
    const iceServers = this.signaling?.iceServers;
    if (!pc || !iceServers || pc.signalingState === "closed") return;
    try {
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
      this.stats.iceServerUpdates += 1;
    } catch (error) {
      console.warn("could not apply fresh ICE servers", error);
    }
  }

  #restartIce() {
    if (!this.pc) return;
    this.stats.iceRestarts += 1;
    this.pc.restartIce(); // fires negotiationneeded; the negotiator sends the new offer
  }

  /** Offers made and answered over all the peer connections of this call. */
  get offers() {
    return {
      sent: this.#offersBefore.sent + (this.negotiator?.offersSent ?? 0),
      answered: this.#offersBefore.answered + (this.negotiator?.offersAnswered ?? 0),
    };
  }

  // --- the data channel ------------------------------------------------------------------

  /** @param {unknown} data */
  #onChannelMessage(data) {
    if (typeof data !== "string") {
      const photo = data instanceof ArrayBuffer ? this.#photos.push(data) : null;
      if (photo) this.#emit("photo", { from: "peer", blob: photo.blob });
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg?.kind === "chat" && typeof msg.text === "string") {
      this.#emit("chat", { from: "peer", text: msg.text.slice(0, CHAT_MAX_CHARS) });
    } else if (msg?.kind === "photo") {
      this.#photos.begin(msg);
    } else if (msg?.kind === "state" && MEDIA_STATES.includes(msg.mic) && MEDIA_STATES.includes(msg.camera)) {
      this.peerState = { mic: msg.mic, camera: msg.camera, screen: msg.screen === true };
      this.#emit("peerstate", this.peerState);
    }
  }

  // --- status ----------------------------------------------------------------------------

  /**
   * Whether the other person sends any media (`all`) or video, as far as they told us: not when
   * they have no camera (or microphone) and share no screen, as after a share in a call without
   * a camera stopped. Their silence then is no stall (`watchPeerConnection`'s `expectsMedia`).
   * @param {"all" | "video"} kind
   */
  #peerSends(kind) {
    const peer = this.peerState;
    if (!peer || peer.screen || peer.camera !== "none") return true;
    return kind === "all" && peer.mic !== "none";
  }

  /** @param {import("./status.js").CallFacts["peer"]} peer */
  #setPeer(peer) {
    this.#peer = peer;
    this.#update();
  }

  /** @param {boolean} [force] emit `status` even if the status stayed (its `problem` changed) */
  #update(force = false) {
    const status = deriveStatus({
      phase: this.#phase,
      signaling: this.signaling?.state ?? "connecting",
      peer: this.#peer,
      media: this.pc?.connectionState ?? null,
      inbound: this.#watcher?.stalled ? "stalled" : "flowing",
      video: this.#watcher?.videoStalled ? "stalled" : "flowing",
      wasConnected: this.#wasConnected,
    });
    if (status === this.status) {
      if (force) this.#emit("status", { status });
      return;
    }
    this.status = status;
    this.statusHistory.push(status);
    this.#emit("status", { status });
  }

  /** @param {string} type @param {unknown} detail */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * What a refusal of our join means to a person, and what they can do about it.
 * @param {import("./duet.js").RefusedDetail} refusal
 */
export function refusalAdvice({ code, retryAfter }) {
  switch (code) {
    case RefusalCode.TICKET_REQUIRED:
      return "This call needs a personal invitation, and this link has none. Ask whoever invited you for your own link to the call.";
    case RefusalCode.INVALID_TICKET:
      return "The invitation in this link is not valid here. Ask whoever invited you for a new link to the call.";
    case RefusalCode.TICKET_EXPIRED:
      return "The invitation in this link has expired. Ask whoever invited you for a new link to the call.";
    case RefusalCode.TICKET_WRONG_ROOM:
      return "The invitation in this link is for another call. Ask whoever invited you for the link to this call.";
    case RefusalCode.TOO_MANY_JOINS:
      return `Too many attempts to join from your network. Trying again in ${retryAfter ?? "a few"} seconds…`;
    case RefusalCode.BANNED:
      return "You were removed from this call and cannot join it again for now.";
    case RefusalCode.CONFIG_ERROR:
      return "The call service is not set up correctly and cannot take calls right now. Try again later; if it goes on, tell whoever runs this site.";
    default:
      return "The server refused to let you join this call.";
  }
}
