// @ts-check
/**
 * # The safety code: six digits both people read aloud
 *
 * The DTLS fingerprints in the two session descriptions are what protects the media. Whoever
 * could replace them in transit (a signaling server that is not end-to-end encrypted, or a
 * leaked link) could sit in the middle of the call, but then the two sides see different
 * fingerprints, and so different codes. Normative, with a vector, in `docs/e2e.md`:
 *
 * take the first `a=fingerprint:` value of the local and of the remote description, only its
 * hex with colons as written in the SDP (not the hash name before it), sort the two strings,
 * SHA-256 the UTF-8 text `duet-sas-v1/{first}/{second}`, read the first 4 bytes as a big-endian
 * unsigned integer, take it modulo 1,000,000 and show it zero-padded as `123 456`.
 * @module sas
 */

const FINGERPRINT_LINE = /^a=fingerprint:\S+[ \t]+([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*)[ \t]*$/m;

/**
 * The hex of the first `a=fingerprint:` line of `sdp` (e.g. `AB:CD:…`), or `null` if it has none.
 * @param {string | undefined | null} sdp
 * @returns {string | null}
 */
export function fingerprintOf(sdp) {
  return FINGERPRINT_LINE.exec(sdp ?? "")?.[1] ?? null;
}

/**
 * The safety code of two fingerprints (order does not matter), e.g. `"024 995"`.
 * @param {string} a hex with colons
 * @param {string} b
 */
export async function safetyCodeOf(a, b) {
  const [first, second] = [a, b].sort();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`duet-sas-v1/${first}/${second}`));
  const value = new DataView(digest).getUint32(0, false) % 1_000_000;
  const digits = String(value).padStart(6, "0");
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

/**
 * The safety code of a peer connection whose local and remote descriptions are both set, or
 * `null` while either is missing or has no fingerprint (or without Web Crypto).
 * @param {RTCPeerConnection} pc
 */
export async function safetyCode(pc) {
  if (!globalThis.crypto?.subtle) return null; // no Web Crypto outside secure contexts
  const local = fingerprintOf(pc.localDescription?.sdp);
  const remote = fingerprintOf(pc.remoteDescription?.sdp);
  return local && remote ? safetyCodeOf(local, remote) : null;
}
