// @ts-check
/**
 * The call's status as one word, derived from the few facts that decide it. The UI maps each
 * word to a sentence; tests read the word from `window.duetDebug.status`.
 * @module status
 */

/**
 * @typedef {"starting" | "waiting" | "connecting" | "connected" | "interrupted" | "video-stopped" |
 *   "reconnecting" | "peer-reconnecting" | "peer-left" | "full" | "ended" | "replaced" | "error" |
 *   "call-ended" | "removed"} Status
 */

/**
 * @typedef {object} CallFacts
 * @property {"starting" | "in-room" | "full" | "ended" | "replaced" | "error" | "call-ended" | "removed"} phase
 *   ("ended": we hung up; "call-ended": the operator ended the call; "removed": the operator
 *   removed us, docs/admin.md)
 * @property {"connecting" | "open" | "reconnecting" | "closed"} signaling
 * @property {"none" | "present" | "away" | "left"} peer
 * @property {RTCPeerConnectionState | null} media the peer connection's state, if there is one
 * @property {"flowing" | "stalled"} [inbound] whether media from the peer stopped arriving (no RTP
 *   for 2 s after some came: the path broke)
 * @property {"flowing" | "stalled"} [video] whether the peer's video stopped (no frame decoded for
 *   2.5 s after some were; never "stalled" when the peer sends no video)
 * @property {boolean} [wasConnected] whether media reached us in this pairing before
 */

/**
 * @param {CallFacts} facts
 * @returns {Status}
 */
export function deriveStatus({ phase, signaling, peer, media, inbound = "flowing", video = "flowing", wasConnected = false }) {
  if (phase !== "in-room") return phase;
  if (signaling === "reconnecting") return "reconnecting";
  if (peer === "away") return "peer-reconnecting";
  if (peer === "left") return "peer-left";
  if (peer === "none") return "waiting";
  // "connected" only while media really arrives: ICE can say connected for seconds after the
  // path broke, and a frozen picture must not look like a call.
  if (media === "connected" && inbound === "flowing") return video === "stalled" ? "video-stopped" : "connected";
  return wasConnected ? "interrupted" : "connecting";
}
