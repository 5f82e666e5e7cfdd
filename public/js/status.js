// @ts-check
/**
 * The call's status as one word, derived from the few facts that decide it. The UI maps each
 * word to a sentence; tests read the word from `window.duetDebug.status`.
 * @module status
 */

/**
 * @typedef {"starting" | "waiting" | "connecting" | "connected" | "reconnecting" |
 *   "peer-reconnecting" | "peer-left" | "full" | "ended" | "replaced" | "error"} Status
 */

/**
 * @typedef {object} CallFacts
 * @property {"starting" | "in-room" | "full" | "ended" | "replaced" | "error"} phase
 * @property {"connecting" | "open" | "reconnecting" | "closed"} signaling
 * @property {"none" | "present" | "away" | "left"} peer
 * @property {RTCPeerConnectionState | null} media the peer connection's state, if there is one
 */

/**
 * @param {CallFacts} facts
 * @returns {Status}
 */
export function deriveStatus({ phase, signaling, peer, media }) {
  if (phase !== "in-room") return phase;
  if (signaling === "reconnecting") return "reconnecting";
  if (peer === "away") return "peer-reconnecting";
  if (peer === "left") return "peer-left";
  if (peer === "none") return "waiting";
  return media === "connected" ? "connected" : "connecting";
}
