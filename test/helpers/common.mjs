// What every suite shares: the repository root, fresh room names, the shapes of generated ids,
// and the wire constants, taken from the client library (public/js/duet.js) rather than retyped.
// test/client/wire.test.mjs checks those against the Rust crate (src/protocol.rs).

import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { CloseCode, CloseReason } from "../../public/js/duet.js";

export {
  CloseCode,
  CloseReason,
  DEFAULT_MAX_MESSAGE_BYTES,
  ErrorCode,
  LEAVE_TEXT,
  MAX_PEERS,
  PING_TEXT,
  PONG_TEXT,
  PROTOCOL_VERSION,
} from "../../public/js/duet.js";

/** The repository's root directory. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Client ids are 16 hex characters. */
export const CLIENT_ID = /^[0-9a-f]{16}$/;
/** Resume tokens are 64 hex characters. */
export const TOKEN = /^[0-9a-f]{64}$/;

/** The default ICE_SERVERS (of the server and of wrangler.toml). */
export const DEFAULT_ICE_SERVERS = [{ urls: "stun:stun.cloudflare.com:3478" }];

/** A room name no other test uses. */
export function roomName(prefix = "room") {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/**
 * The `{code, reason}` of a close the server makes, by the name of its code: `serverClose("ROOM_FULL")`
 * is `{code: 4409, reason: "room full"}`.
 * @param {keyof typeof CloseCode & keyof typeof CloseReason} name
 */
export function serverClose(name) {
  return { code: CloseCode[name], reason: CloseReason[name] };
}
