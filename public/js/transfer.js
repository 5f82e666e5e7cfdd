// @ts-check
/**
 * Photos over the data channel. A photo travels as one JSON header
 * `{"kind":"photo","id","size","type"}` followed by `size` bytes in binary chunks of at most
 * 16 KiB (a size every browser's SCTP stack accepts). The channel is reliable and ordered,
 * so chunks need no numbering. Nothing here touches the DOM.
 * @module transfer
 */

export const CHUNK_BYTES = 16 * 1024;
export const MAX_PHOTO_BYTES = 8 * 1024 * 1024;
/** Image types a received photo may declare; anything else is refused. */
export const PHOTO_TYPES = Object.freeze(["image/jpeg", "image/png", "image/webp"]);
/** Pause sending while this much is queued in the channel. */
const HIGH_WATER = 1024 * 1024;

/**
 * @typedef {object} PhotoHeader
 * @property {"photo"} kind
 * @property {string} id
 * @property {number} size bytes that follow
 * @property {string} type MIME type, one of {@link PHOTO_TYPES}
 */

/**
 * Splits `bytes` into chunks of at most `chunkBytes`.
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @param {number} [chunkBytes]
 * @returns {Uint8Array<ArrayBuffer>[]}
 */
export function chunk(bytes, chunkBytes = CHUNK_BYTES) {
  const out = [];
  for (let at = 0; at < bytes.length; at += chunkBytes) out.push(bytes.subarray(at, at + chunkBytes));
  return out;
}

/**
 * Sends a photo over an open data channel, waiting whenever the channel's buffer is full.
 * @param {RTCDataChannel} channel
 * @param {Blob} blob
 * @param {string} id
 */
export async function sendPhoto(channel, blob, id) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  /** @type {PhotoHeader} */
  const header = { kind: "photo", id, size: bytes.length, type: blob.type };
  channel.send(JSON.stringify(header));
  channel.bufferedAmountLowThreshold = HIGH_WATER / 2;
  for (const part of chunk(bytes)) {
    if (channel.bufferedAmount > HIGH_WATER) {
      await new Promise((resolve) => channel.addEventListener("bufferedamountlow", resolve, { once: true }));
    }
    if (channel.readyState !== "open") throw new Error("the data channel closed while sending");
    channel.send(part);
  }
}

/** Reassembles photos from a header and the chunks that follow it. */
export class PhotoReceiver {
  /** @type {{header: PhotoHeader, parts: Uint8Array<ArrayBuffer>[], received: number} | null} */
  #current = null;

  /**
   * Starts a photo. Returns false (and drops the chunks that follow) for a header that is not
   * a sane photo.
   * @param {Record<string, unknown>} header
   */
  begin(header) {
    this.#current = null;
    const { id, size, type } = header;
    const valid =
      typeof id === "string" &&
      Number.isSafeInteger(size) &&
      /** @type {number} */ (size) > 0 &&
      /** @type {number} */ (size) <= MAX_PHOTO_BYTES &&
      typeof type === "string" &&
      PHOTO_TYPES.includes(type);
    if (!valid) return false;
    this.#current = { header: /** @type {PhotoHeader} */ (header), parts: [], received: 0 };
    return true;
  }

  /**
   * Adds a chunk. Returns the finished photo once all its bytes are in.
   * @param {ArrayBuffer | Uint8Array<ArrayBuffer>} data
   * @returns {{id: string, blob: Blob} | null}
   */
  push(data) {
    const current = this.#current;
    if (!current) return null;
    const part = data instanceof Uint8Array ? data : new Uint8Array(data);
    current.received += part.length;
    if (current.received > current.header.size) {
      this.#current = null; // more bytes than announced: not our photo
      return null;
    }
    current.parts.push(part);
    if (current.received < current.header.size) return null;
    this.#current = null;
    return { id: current.header.id, blob: new Blob(current.parts, { type: current.header.type }) };
  }
}
