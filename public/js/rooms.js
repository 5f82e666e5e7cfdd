// @ts-check
/**
 * Room names: making unguessable ones and reading them from a URL or from what a person typed.
 * @module rooms
 */

/**
 * The room-name pattern, the same as `ROOM_NAME` of `duet.js` (test/client/modules.test.mjs
 * checks): kept here so the start page does not load the client library.
 */
export const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** 32 symbols (no l, o, 0, 1: easy to read aloud), so each one is exactly 5 random bits. */
const ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";

/** @param {unknown} name */
export function isRoomName(name) {
  return typeof name === "string" && ROOM_PATTERN.test(name);
}

/**
 * A random room name such as `k7dmq-x3hva-pe9tw-c4nre`: 20 symbols, 100 bits from the
 * platform's cryptographic generator, so a room's name cannot be guessed.
 * @param {number} [groups]
 * @param {number} [groupLength]
 */
export function newRoomName(groups = 4, groupLength = 5) {
  const bytes = crypto.getRandomValues(new Uint8Array(groups * groupLength));
  const symbols = Array.from(bytes, (b) => ALPHABET[b & 31]);
  const parts = [];
  for (let i = 0; i < groups; i++) parts.push(symbols.slice(i * groupLength, (i + 1) * groupLength).join(""));
  return parts.join("-");
}

/**
 * The room a page path names: `/abc` → `"abc"`; `/` or anything else → `null`.
 * @param {string} pathname
 */
export function roomFromPath(pathname) {
  const name = pathname.replace(/^\//, "");
  return isRoomName(name) ? name : null;
}

/**
 * What a person typed into "join a room": a room name or a pasted room link.
 * @param {string} input
 * @returns {string | null} the room name, or null if there is none
 */
export function parseRoomInput(input) {
  const text = input.trim();
  if (isRoomName(text)) return text;
  try {
    return roomFromPath(new URL(text).pathname);
  } catch {
    return null;
  }
}
