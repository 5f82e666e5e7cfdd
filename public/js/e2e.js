// @ts-check
/**
 * # End-to-end encryption of signaling messages (envelope v1)
 *
 * The normative description, with test vectors, is `docs/e2e.md`. In short:
 *
 * - a call link carries a secret in its fragment, `#k={secret}`: 32 random bytes in base64url
 *   without padding (43 characters); browsers never send a fragment to a server;
 * - key = HKDF-SHA256(IKM = the secret bytes, salt = ASCII `duet-e2e-v1`, info = UTF-8 room
 *   name), 32 bytes, used as an AES-256-GCM key;
 * - a message's `data` becomes `{"e2e":1,"iv":…,"ct":…}`: a random 12-byte IV and the AES-GCM
 *   ciphertext of the UTF-8 JSON text of the value with its 16-byte tag, both base64url; the
 *   additional data is UTF-8 `duet-e2e-v1/{room}/{sender clientId}`, so a message attributed
 *   to another sender fails to decrypt (and `duet.js` refuses one relayed back to its sender);
 * - key confirmation: after `ready` each side sends a hello, `{"e2e":1,"hello":1,"iv":…,"ct":…}`,
 *   sealed the same way over `{"to":"{receiver clientId}"}` but with the additional data
 *   `duet-e2e-v1-hello/{room}/{sender clientId}`; a hello that does not open means the two
 *   links have different keys (`key-mismatch`).
 *
 * Only Web Crypto (`crypto.subtle`) does cryptography here; this module encodes, checks shapes
 * and names failures. The replay rule (an IV accepted twice) is kept by the caller, which
 * knows what "this connection" is (`duet.js`).
 * @module e2e
 */

export const E2E_VERSION = 1;
/** Salt of the key derivation and prefix of the additional data. */
const LABEL = "duet-e2e-v1";
/**
 * Prefix of a hello's additional data. No message's additional data (`duet-e2e-v1/…`) starts
 * with it, so a hello never opens as a message, nor a message as a hello.
 */
const HELLO_LABEL = "duet-e2e-v1-hello";
const SECRET_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SECRET_TEXT = /^[A-Za-z0-9_-]{43}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64_CODES = new TextEncoder().encode(B64_ALPHABET);
const ASCII = new TextDecoder();
/** Character code → 6-bit value, for base64url's characters. */
const B64_VALUES = new Uint8Array(128);
for (let i = 0; i < B64_CODES.length; i++) B64_VALUES[B64_CODES[i]] = i;

/**
 * Why an incoming message was not delivered (`e2e-error` event of `duet.js`).
 * @typedef {"not-encrypted" | "unexpected-envelope" | "malformed" | "undecryptable" | "replayed" | "reflected" | "key-mismatch"} E2EFailure
 */

/** The failure reasons, each with what it means. */
export const E2E_FAILURES = Object.freeze({
  /** We have a key and the message is not an envelope (the other side sent plaintext). */
  "not-encrypted": "the message is not encrypted, but this connection expects envelopes",
  /** We have no key and the message is an envelope (the other side has a key). */
  "unexpected-envelope": "the message is encrypted, but this connection has no key",
  /** An envelope with a wrong version, IV or ciphertext shape, or whose plaintext is not JSON. */
  malformed: "the envelope is malformed",
  /** Authentication failed: another key, an altered IV or ciphertext, or another sender. */
  undecryptable: "the envelope does not decrypt with this key for this sender",
  /** An envelope whose IV this connection has already accepted. */
  replayed: "the envelope was already received once (a replay)",
  /** An envelope relayed as if we had sent it ourselves. */
  reflected: "the envelope claims to come from this connection itself",
  /**
   * The other side's link has another key, or none: its hello did not open with ours, or none
   * came within the confirmation time while it was connected (`duet.js`).
   */
  "key-mismatch": "the other side's link has a different key, or none: its key confirmation did not open with this key, or did not come",
});

/** A message that must not reach the application; `reason` is one of {@link E2E_FAILURES}. */
export class E2EError extends Error {
  /** @param {E2EFailure} reason */
  constructor(reason) {
    super(E2E_FAILURES[reason]);
    this.name = "E2EError";
    /** @type {E2EFailure} */
    this.reason = reason;
  }
}

/**
 * @typedef {object} Envelope
 * @property {1} e2e
 * @property {string} iv base64url of 12 bytes
 * @property {string} ct base64url of the ciphertext with its 16-byte tag
 */

/**
 * A key confirmation (see {@link sealHello}).
 * @typedef {{e2e: 1, hello: 1, iv: string, ct: string}} HelloEnvelope
 */

/** Whether Web Crypto is there (it is only in secure contexts: https, or localhost). */
export function cryptoAvailable() {
  return typeof globalThis.crypto?.subtle?.importKey === "function";
}

/** A fresh secret for a new call link: 32 random bytes, base64url without padding. */
export function newSecret() {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/**
 * Whether `text` is a secret in its only valid spelling (43 characters, canonical base64url).
 * @param {unknown} text
 * @returns {text is string}
 */
export function isSecret(text) {
  return typeof text === "string" && SECRET_TEXT.test(text) && decodeCanonical(text)?.length === SECRET_BYTES;
}

/**
 * The secret a link fragment carries: `#k={secret}` → the secret; no `k` → `null`. A `k` that is
 * not a valid secret is returned as it is, for the caller to refuse (never to ignore).
 * @param {string} hash `location.hash`, with or without the `#`
 * @returns {string | null}
 */
export function secretFromFragment(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  return params.get("k");
}

/**
 * The 32 key bytes, for checking the test vector (the call itself keeps its key
 * non-extractable, see {@link deriveKey}).
 * @param {string} secret
 * @param {string} room
 */
export async function deriveKeyBytes(secret, room) {
  const material = await importSecret(secret);
  const bits = await crypto.subtle.deriveBits(hkdfParams(room), material, 256);
  return new Uint8Array(bits);
}

/**
 * The room's AES-256-GCM key (non-extractable).
 * @param {string} secret a link secret, see {@link isSecret}
 * @param {string} room
 * @returns {Promise<CryptoKey>}
 */
export async function deriveKey(secret, room) {
  const material = await importSecret(secret);
  return crypto.subtle.deriveKey(hkdfParams(room), material, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** @param {string} secret */
function importSecret(secret) {
  if (!isSecret(secret)) throw new TypeError("an e2e key is 43 characters of base64url (32 bytes)");
  if (!cryptoAvailable()) throw new TypeError("Web Crypto (crypto.subtle) is unavailable: serve the page over https");
  return crypto.subtle.importKey("raw", fromBase64Url(secret), "HKDF", false, ["deriveKey", "deriveBits"]);
}

/** @param {string} room @returns {HkdfParams} */
function hkdfParams(room) {
  return { name: "HKDF", hash: "SHA-256", salt: utf8(LABEL), info: utf8(room) };
}

/** @param {string} room @param {string} sender @param {string} [label] */
function additionalData(room, sender, label = LABEL) {
  return utf8(`${label}/${room}/${sender}`);
}

/**
 * Encrypts `value` (any JSON value) as sent by `sender` in `room`.
 * @param {CryptoKey} key from {@link deriveKey}
 * @param {string} room
 * @param {string} sender our clientId
 * @param {unknown} value
 * @param {Uint8Array} [iv] 12 bytes; random unless given (only test vectors give one)
 * @returns {Promise<Envelope>}
 */
export async function seal(key, room, sender, value, iv = crypto.getRandomValues(new Uint8Array(IV_BYTES))) {
  return { e2e: E2E_VERSION, ...(await encrypt(key, additionalData(room, sender), utf8(JSON.stringify(value)), iv)) };
}

/**
 * The key confirmation `sender` sends `receiver` after `ready`: the plaintext is the UTF-8 JSON
 * text `{"to":"{receiver}"}`, the additional data `duet-e2e-v1-hello/{room}/{sender}`.
 * @param {CryptoKey} key from {@link deriveKey}
 * @param {string} room
 * @param {string} sender our clientId
 * @param {string} receiver the other peer's clientId
 * @param {Uint8Array} [iv] 12 bytes; random unless given (only test vectors give one)
 * @returns {Promise<HelloEnvelope>}
 */
export async function sealHello(key, room, sender, receiver, iv = crypto.getRandomValues(new Uint8Array(IV_BYTES))) {
  const plaintext = utf8(JSON.stringify({ to: receiver }));
  return { e2e: E2E_VERSION, hello: 1, ...(await encrypt(key, additionalData(room, sender, HELLO_LABEL), plaintext, iv)) };
}

/**
 * @param {CryptoKey} key @param {Uint8Array<ArrayBuffer>} aad @param {Uint8Array<ArrayBuffer>} plaintext @param {Uint8Array} iv
 * @returns {Promise<{iv: string, ct: string}>}
 */
async function encrypt(key, aad, plaintext, iv) {
  if (iv.length !== IV_BYTES) throw new RangeError(`the IV is ${IV_BYTES} bytes`);
  // `new Uint8Array(iv)`: a copy on a plain ArrayBuffer, as Web Crypto's types ask.
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(iv), additionalData: aad }, key, plaintext);
  return { iv: toBase64Url(iv), ct: toBase64Url(new Uint8Array(ct)) };
}

/**
 * Whether `data` is meant as an envelope: an object with an `e2e` field. Such a value is never
 * delivered as plaintext.
 * @param {unknown} data
 */
export function isEnvelope(data) {
  return typeof data === "object" && data !== null && !Array.isArray(data) && "e2e" in data;
}

/**
 * Decrypts an envelope sent by `sender` in `room` and returns the value. Rejects with an
 * {@link E2EError}: `not-encrypted`, `malformed` or `undecryptable`. (Replays are the caller's
 * check: it knows which IVs it accepted.)
 * @param {CryptoKey} key
 * @param {string} room
 * @param {string} sender the relayed frame's `from`
 * @param {unknown} data the relayed frame's `data`
 * @returns {Promise<unknown>}
 */
export async function open(key, room, sender, data) {
  if (!isEnvelope(data)) throw new E2EError("not-encrypted");
  return decrypt(key, additionalData(room, String(sender)), data, "undecryptable");
}

/**
 * Whether `data` is meant as a key confirmation: an envelope with a `hello` field.
 * @param {unknown} data
 */
export function isHello(data) {
  return isEnvelope(data) && "hello" in /** @type {object} */ (data);
}

/**
 * Opens the hello `sender` sent in `room` and returns the receiver it names. Rejects with an
 * {@link E2EError}: `malformed` (the shape, `hello` other than `1`, or a plaintext other than
 * `{"to": string}`), or `key-mismatch` (it does not decrypt: another key, or altered).
 * @param {CryptoKey} key
 * @param {string} room
 * @param {string} sender the relayed frame's `from`
 * @param {unknown} data the relayed frame's `data`
 * @returns {Promise<string>}
 */
export async function openHello(key, room, sender, data) {
  if (!isHello(data) || /** @type {Record<string, unknown>} */ (data).hello !== 1) throw new E2EError("malformed");
  const value = await decrypt(key, additionalData(room, String(sender), HELLO_LABEL), data, "key-mismatch");
  const to = value && typeof value === "object" ? /** @type {Record<string, unknown>} */ (value).to : undefined;
  if (typeof to !== "string") throw new E2EError("malformed");
  return to;
}

/**
 * The JSON value an envelope holds; `failure` names an envelope that does not decrypt.
 * @param {CryptoKey} key @param {Uint8Array<ArrayBuffer>} aad @param {unknown} data
 * @param {"undecryptable" | "key-mismatch"} failure
 */
async function decrypt(key, aad, data, failure) {
  const { e2e, iv, ct } = /** @type {Record<string, unknown>} */ (data);
  const ivBytes = decodeCanonical(iv);
  const ciphertext = decodeCanonical(ct);
  if (e2e !== E2E_VERSION || ivBytes?.length !== IV_BYTES || !ciphertext || ciphertext.length < TAG_BYTES) {
    throw new E2EError("malformed");
  }
  let plaintext;
  try {
    plaintext = await crypto.subtle.decrypt({ name: "AES-GCM", iv: ivBytes, additionalData: aad }, key, ciphertext);
  } catch {
    throw new E2EError(failure);
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plaintext));
  } catch {
    throw new E2EError("malformed");
  }
}

/**
 * The length in bytes of the `{"type":"message","data":{envelope}}` frame that carries a value
 * whose JSON text is `plaintextBytes` long: known before encrypting, so `send()` can refuse
 * an oversized frame at once.
 * @param {number} plaintextBytes
 */
export function envelopeFrameBytes(plaintextBytes) {
  const b64 = (/** @type {number} */ n) => Math.ceil((n * 4) / 3);
  const frame = `{"type":"message","data":{"e2e":1,"iv":"","ct":""}}`;
  return frame.length + b64(IV_BYTES) + b64(plaintextBytes + TAG_BYTES);
}

// ---- encoding -----------------------------------------------------------------------------

/** @param {string} text */
function utf8(text) {
  return new TextEncoder().encode(text);
}

/**
 * Base64url without padding.
 * @param {Uint8Array} bytes
 */
export function toBase64Url(bytes) {
  // By hand into ASCII codes rather than btoa: no binary string, no replacing (several times faster).
  const out = new Uint8Array(Math.ceil((bytes.length * 4) / 3));
  let j = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[j++] = B64_CODES[n >> 18];
    out[j++] = B64_CODES[(n >> 12) & 63];
    out[j++] = B64_CODES[(n >> 6) & 63];
    out[j++] = B64_CODES[n & 63];
  }
  if (i < bytes.length) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8);
    out[j++] = B64_CODES[n >> 18];
    out[j++] = B64_CODES[(n >> 12) & 63];
    if (i + 1 < bytes.length) out[j++] = B64_CODES[(n >> 6) & 63];
  }
  return ASCII.decode(out);
}

/**
 * Decodes base64url without padding; throws a `TypeError` on anything else.
 * @param {string} text
 */
export function fromBase64Url(text) {
  if (!B64URL.test(text) || text.length % 4 === 1) throw new TypeError("not base64url");
  const bytes = new Uint8Array(Math.floor((text.length * 3) / 4));
  let j = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    n = (n << 6) | B64_VALUES[text.charCodeAt(i)];
    if (i % 4 === 3) {
      bytes[j++] = n >> 16;
      bytes[j++] = (n >> 8) & 255;
      bytes[j++] = n & 255;
      n = 0;
    }
  }
  // 2 or 3 characters left: 1 or 2 bytes, the unused low bits dropped.
  if (text.length % 4 === 2) bytes[j] = n >> 4;
  else if (text.length % 4 === 3) {
    bytes[j++] = n >> 10;
    bytes[j] = (n >> 2) & 255;
  }
  return bytes;
}

/** Unused low bits of the last character, by `length % 4`, that canonical base64 leaves zero. */
const UNUSED_BITS = [0, 0, 0b1111, 0b11];

/**
 * The bytes of `text` if it is canonical base64url without padding (the only spelling accepted
 * anywhere in an envelope or a link), else `null`.
 * @param {unknown} text
 */
function decodeCanonical(text) {
  if (typeof text !== "string" || !B64URL.test(text) || text.length % 4 === 1) return null;
  const last = B64_VALUES[text.charCodeAt(text.length - 1)] ?? 0;
  if (last & UNUSED_BITS[text.length % 4]) return null;
  return fromBase64Url(text);
}

