// @ts-check
/**
 * # Duet signaling client (protocol v1)
 *
 * A small, dependency-free ES module that speaks Duet's signaling protocol (see
 * `docs/protocol.md`) and keeps the connection alive:
 *
 * - one event per server frame type (`created`, `joined`, `peer-joined`, `ready`, `message`,
 *   `peer-away`, `peer-left`, `full`, `error`, `pong`, `ice-servers`, `ended`, `kicked`), each a
 *   `CustomEvent` whose `detail` is the frame as received;
 * - keep-alive: the exact text `{"type":"ping"}` at once on every welcome (so no slot of ours is
 *   ever unconfirmed) and every 20 s after, which the server's runtime answers without waking
 *   the room; a missing answer counts as a dropped connection;
 * - reconnect with exponential backoff and jitter after any drop except `leave()`, `full`,
 *   `ended` and `kicked` (an operator ended the call or removed us: `docs/admin.md`) and the
 *   close codes 4000 (replaced), 4408 (stale) and 4429 (rate limited). It resumes the slot
 *   with the resume token, which it keeps in `sessionStorage` per room, so a page reload resumes
 *   too. Emits `reconnecting` and `reconnected`, and `close` when it has stopped for good;
 * - refusals it can read: a join the server refuses in-band (`docs/protocol.md`, "In-band
 *   refusals") is emitted as `refused` (`{code, message, retryAfter?}`). It then stops for good
 *   (`close`), except after `too-many-joins`, when it waits `retryAfter` seconds before the
 *   next attempt, and after `ticket-expired` with a ticket function, when it gets one fresh
 *   ticket and tries once more;
 * - checks on suspicion: after a network change a socket can be dead and still read OPEN.
 *   `check()` pings at once and, without an answer within `checkTimeoutMs` (1.5 s), resumes on a
 *   new socket without backoff. The client checks by itself on `online`, `offline` and
 *   `navigator.connection` changes;
 * - call recovery: `watchPeerConnection(pc)` watches a call's RTCPeerConnection (ICE state, and
 *   inbound RTP every 500 ms, so a path that broke is noticed in about 2 s rather than the 5–8 s
 *   ICE takes to say "disconnected"), checks the socket, restarts ICE once a socket has answered
 *   since the trouble began (and after a resume that followed it), and asks for a new peer
 *   connection after repeated restarts that did not help;
 * - TURN credentials kept fresh: at 80% of their lifetime (`iceServersExpireAt`) it asks for
 *   new ones and emits `ice-servers`, so a long call's next ICE restart can still use a relay.
 *
 * It carries whatever JSON the application sends; WebRTC only enters through
 * `watchPeerConnection()`, which the application calls if it wants recovery. With a `key`
 * (the secret of a call link) it encrypts every message end to end (`e2e.js`, `docs/e2e.md`):
 * the server relays envelopes it cannot read, and messages that fail to decrypt never reach the
 * application but raise `e2e-error`. Right after each `ready` both sides send an encrypted hello
 * (`docs/e2e.md`, "Key confirmation"): within {@link KEY_CONFIRM_MS} each knows whether the
 * other's link has the same key (`e2e-confirmed`) or not (`e2e-error`, `key-mismatch`). It runs in
 * browsers and in Node.js 20+ (pass `WebSocket`; without `sessionStorage` the token stays in
 * memory), and is published as the npm package `duet-signaling` (`package.json` beside it), with
 * the event map {@link DuetEventMap} typing every event. API and example: `docs/client.md`.
 * @module duet
 */

import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
import {
  cryptoAvailable,
  deriveKey,
  E2EError,
  envelopeFrameBytes,
  isEnvelope,
  isHello,
  isSecret,
  open,
  openHello,
  seal,
  sealHello,
} from "./e2e.js";

/** The protocol version this client speaks, announced as `version` in welcome frames. */
export const PROTOCOL_VERSION = 1;

/** A room holds at most this many peers. */
export const MAX_PEERS = 2;

/**
 * The server's default frame limit (`MAX_MESSAGE_BYTES`), which `send()` checks until a welcome
 * frame announces the server's own (`maxMessageBytes`).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 65536;

/** The keep-alive frame. Byte-exact, so the runtime's auto-response answers it without waking the room. */
export const PING_TEXT = '{"type":"ping"}';

/** The runtime's answer to {@link PING_TEXT}. */
export const PONG_TEXT = '{"type":"pong"}';

/** Valid room names: 1–64 characters of `A-Z a-z 0-9 _ -`. */
export const ROOM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Server frame types; each is emitted as an event of the same name. */
export const FRAME_TYPES = Object.freeze(
  /** @type {const} */ (["created", "joined", "peer-joined", "ready", "message", "peer-away", "peer-left", "full", "error", "pong", "ice-servers", "ended", "kicked"]),
);

/** Close codes of protocol v1. */
export const CloseCode = Object.freeze({
  /** After `leave`. */
  LEFT: 1000,
  /** Our slot was resumed on another socket (for example a duplicated tab). */
  REPLACED: 4000,
  /** We stopped pinging and a newcomer evicted us. */
  STALE: 4408,
  /** The room had no slot for us. */
  ROOM_FULL: 4409,
  /** Too many frames refused by the rate limit. */
  RATE_LIMITED: 4429,
  /** A join refused in-band for its ticket: missing, invalid or expired (after `refused`). */
  TICKET_REFUSED: 4401,
  /** A join refused in-band for any other reason of ours: a ticket for another room. */
  FORBIDDEN: 4403,
  /** A join refused in-band over the join limit; `refused` said when to try again. */
  TOO_MANY_JOINS: 4429,
  /** A join refused in-band because the server's configuration is unusable (`config-error`). */
  MISCONFIGURED: 4503,
  /** The operator ended the call (after `ended`). */
  ENDED: 4410,
  /** The operator removed us from the room (after `kicked`); the same code as `FORBIDDEN`. */
  KICKED: 4403,
  /** A join refused in-band: our identity is banned from the room for now (after `refused`). */
  BANNED: 4403,
  /** Used by this client when it drops a socket itself (no pong, `reconnect()`). */
  CLIENT_DROP: 4001,
});

/** The reason sent with each close code: by the server, and by this client for its own closes. */
export const CloseReason = Object.freeze({
  LEFT: "left",
  REPLACED: "replaced",
  STALE: "stale",
  ROOM_FULL: "room full",
  RATE_LIMITED: "rate limited",
  TICKET_REFUSED: "ticket refused",
  FORBIDDEN: "forbidden",
  TOO_MANY_JOINS: "too many joins",
  MISCONFIGURED: "misconfigured",
  ENDED: "ended",
  KICKED: "kicked",
  BANNED: "banned",
  CLIENT_DROP: "reconnect",
});

/** The `code` of `error` frames: why the server refused a frame (the socket stays open). */
export const ErrorCode = Object.freeze({
  /** Not a JSON object with a known `type` (or a `message` without `data`). */
  BAD_MESSAGE: "bad-message",
  /** A binary frame; frames are JSON text. */
  UNSUPPORTED_BINARY: "unsupported-binary",
  /** Over the server's `maxMessageBytes`. */
  TOO_LARGE: "too-large",
  /** Refused by the per-socket rate limit. */
  RATE_LIMITED: "rate-limited",
  /** A `message` with no other peer connected to receive it. */
  NO_PEER: "no-peer",
  /** A `report` whose fields are missing or out of range (docs/protocol.md, "Reports"). */
  BAD_REPORT: "bad-report",
});

/**
 * The `code` of the one `error` frame of a join the server refused in-band (`docs/access.md`,
 * "Refusals"): the same code as the HTTP answer's, readable by a browser. Emitted as `refused`.
 */
export const RefusalCode = Object.freeze({
  /** The server needs a join ticket and got none. Final. */
  TICKET_REQUIRED: "ticket-required",
  /** The ticket is not one the server accepts (signature, shape, lifetime). Final. */
  INVALID_TICKET: "invalid-ticket",
  /** The ticket has expired (or is not valid yet). Final, but for one try with a fresh ticket from a ticket function. */
  TICKET_EXPIRED: "ticket-expired",
  /** The ticket is for another room. Final. */
  TICKET_WRONG_ROOM: "ticket-wrong-room",
  /** Too many joins from this client: the next attempt waits `retryAfter` seconds. */
  TOO_MANY_JOINS: "too-many-joins",
  /** The server's configuration is unusable; only its operator can fix it. Final. */
  CONFIG_ERROR: "config-error",
  /** An operator banned our identity from this room for now (`docs/admin.md`). Final. */
  BANNED: "banned",
});

const REFUSAL_CODES = new Set(Object.values(RefusalCode));

/** Closes after which reconnecting would be wrong or pointless. @type {Set<number>} */
const FINAL_CLOSE_CODES = new Set([
  CloseCode.REPLACED,
  CloseCode.STALE,
  CloseCode.ROOM_FULL,
  CloseCode.RATE_LIMITED,
  CloseCode.TICKET_REFUSED,
  CloseCode.FORBIDDEN,
  CloseCode.MISCONFIGURED,
  CloseCode.ENDED,
]);

/** The subprotocol of protocol v1, offered on every socket; the server selects it. */
export const SUBPROTOCOL = "duet.v1";

/** The frame that gives up the slot for good (see `leave()`). */
export const LEAVE_TEXT = '{"type":"leave"}';

/** The frame that asks for freshly minted ICE servers (see `refreshIceServers()`). */
export const ICE_SERVERS_TEXT = '{"type":"ice-servers"}';

/**
 * ICE servers are refreshed when this share of their remaining lifetime has passed (measured
 * from their arrival, on this machine's clock), so an ICE restart never has to use expired
 * TURN credentials.
 */
export const ICE_REFRESH_AT = 0.8;

/**
 * Refreshes are at least this far apart, however soon the credentials expire: a clock far off
 * the server's cannot turn refreshing into a flood.
 */
export const MIN_ICE_REFRESH_MS = 5000;

/**
 * With a key: how long after `ready` the other side's hello may take, while both stay
 * connected, before its absence counts as a `key-mismatch` (`docs/e2e.md`, "Key confirmation").
 */
export const KEY_CONFIRM_MS = 5000;
const OPEN = 1;

/**
 * @typedef {object} ConnectOptions
 * @property {string} [baseUrl] origin of the Duet server, e.g. `"https://duet.example"`
 *   (`http(s):` or `ws(s):`); defaults to the page's own origin.
 * @property {number} [pingIntervalMs=20000] keep-alive interval, counted from the ping sent at
 *   once on every welcome; 0 disables pings, that first one too.
 * @property {number} [pongTimeoutMs=10000] how long to wait for any frame after a ping before
 *   treating the socket as dead and reconnecting; 0 disables the check.
 * @property {number} [checkTimeoutMs=1500] how long `check()` waits for an answer before it
 *   drops the socket and resumes on a new one at once.
 * @property {number} [connectTimeoutMs=10000] a new socket that has not brought its welcome
 *   frame within this is abandoned for the next attempt (a connect can otherwise hang for
 *   minutes on a link that drops everything); 0 waits as long as the browser does.
 * @property {import("./backoff.js").BackoffOptions} [backoff] reconnect delays.
 * @property {number} [maxReconnectAttempts=Infinity] give up (emit `close`) after this many
 *   failed attempts in a row.
 * @property {StorageLike | null} [storage] where resume tokens are kept; defaults to
 *   `sessionStorage` where there is one; `null` keeps them in memory only (a reload then joins
 *   afresh).
 * @property {boolean} [resume=true] resume a stored slot when connecting.
 * @property {number} [maxMessageBytes=65536] the frame limit `send()` checks until the server's
 *   welcome frame announces its own (servers that do not announce it keep this one).
 * @property {WebSocketConstructor} [WebSocket] a WebSocket implementation (e.g. the `ws`
 *   package in Node.js); defaults to the global one.
 * @property {string | (() => string | Promise<string>) | null} [ticket] a join ticket for a
 *   deployment with `JOIN_SECRET` (`docs/access.md`), or a function returning one, called before
 *   every connect and reconnect (so a long call outlives its first ticket). It is sent as the
 *   subprotocol `duet.ticket.<ticket>`, never in the URL. A join refused as `ticket-expired` is
 *   tried once more with a fresh ticket from the function; a string ticket is not retried.
 * @property {string | null} [key] the secret of an end-to-end protected call link (43
 *   characters of base64url, `docs/e2e.md`): messages are encrypted with a key derived from it
 *   and the room name. Without it messages travel as plain JSON.
 * @property {number} [keyConfirmMs=5000] with a `key`: how long after `ready` to wait for the
 *   other side's key confirmation before reporting `key-mismatch` ({@link KEY_CONFIRM_MS}).
 */

/**
 * The part of the WebSocket API the client uses: the browser's `WebSocket` and the `ws`
 * package's both have it.
 * @typedef {object} WebSocketLike
 * @property {number} readyState
 * @property {(text: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {(type: "open" | "message" | "close", listener: (event: any) => void) => void} addEventListener
 */

/** @typedef {new (url: string, protocols?: string[]) => WebSocketLike} WebSocketConstructor */

/**
 * Where resume tokens are kept: `sessionStorage`, `localStorage` or anything with these methods.
 * @typedef {object} StorageLike
 * @property {(key: string) => string | null} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} removeItem
 */

/**
 * An ICE server from the welcome frame, as `new RTCPeerConnection({iceServers})` takes it.
 * @typedef {object} IceServer
 * @property {string | string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/** @typedef {typeof ErrorCode[keyof typeof ErrorCode]} ErrorCodeValue */

/** @typedef {typeof RefusalCode[keyof typeof RefusalCode]} RefusalCodeValue */

/**
 * `created`: you opened an empty room. `joined` has the same fields and `resumed`.
 * @typedef {object} CreatedFrame
 * @property {"created"} type
 * @property {number} version the protocol version, {@link PROTOCOL_VERSION}
 * @property {string} room
 * @property {string} clientId your id in the room, kept when the slot is resumed
 * @property {string} resumeToken takes the slot back after a drop (`?resume=`); rotates on every welcome
 * @property {IceServer[]} iceServers
 * @property {number | null} [iceServersExpireAt] when the earliest TURN credential in
 *   `iceServers` expires (ms since the epoch), `null` when none does; where the server announces it
 * @property {number} maxPeers
 * @property {string[]} peers the ids of the others in the room
 * @property {number} [maxMessageBytes] the server's frame limit, where the server announces it
 * @property {Identity} [identity] with join tickets: who you are, as your ticket says
 * @property {Record<string, Identity>} [peerIdentities] with join tickets: who the others are, by client id
 */

/**
 * Who holds a slot, as the operator's join ticket says (`docs/access.md`).
 * @typedef {object} Identity
 * @property {string} sub the identity
 * @property {string} [name] a display name
 * @property {Record<string, unknown>} [meta] the operator's own JSON object
 */

/**
 * `joined`: you entered a room that had a slot taken, or (`resumed`) took your slot back.
 * @typedef {Omit<CreatedFrame, "type"> & {type: "joined", resumed: boolean}} JoinedFrame
 */

/**
 * `peer-joined`: another peer joined, or (`resumed`) came back beside you.
 * @typedef {{type: "peer-joined", room: string, clientId: string, resumed: boolean, identity?: Identity}} PeerJoinedFrame
 */

/**
 * `ready`: both peers are connected; `initiator` makes the offer.
 * @typedef {{type: "ready", room: string, initiator: string, peers: string[]}} ReadyFrame
 */

/**
 * `message`: what the other peer sent with `send(data)`, `data` unchanged.
 * @typedef {{type: "message", from: string, data: unknown}} MessageFrame
 */

/**
 * `peer-away`: the other peer's socket dropped; its slot is held for the resume grace.
 * @typedef {{type: "peer-away", room: string, clientId: string}} PeerAwayFrame
 */

/**
 * `peer-left`: the other peer's slot was released.
 * @typedef {{type: "peer-left", room: string, clientId: string, reason: "leave" | "closed" | "timeout" | "stale" | "ended" | "kicked"}} PeerLeftFrame
 */

/**
 * `ended`: an operator ended the call (`docs/admin.md`); the 4410 close follows, and the client
 * does not reconnect.
 * @typedef {{type: "ended", room: string, reason: string}} EndedFrame
 */

/**
 * `kicked`: an operator removed you from the room; the 4403 close follows, and the client does
 * not reconnect. A ban may keep your identity out for a while (`refused` with `banned`).
 * @typedef {{type: "kicked", room: string, reason: string}} KickedFrame
 */

/**
 * `full`: the room has no slot for you; the 4409 close follows.
 * @typedef {{type: "full", room: string, maxPeers: number}} FullFrame
 */

/**
 * `error`: the server refused a frame you sent; the socket stays open.
 * @typedef {{type: "error", code: ErrorCodeValue, message: string}} ErrorFrame
 */

/**
 * The one frame of a join refused in-band: the refusal, then the close (`docs/protocol.md`).
 * @typedef {{type: "error", code: RefusalCodeValue, message: string, retryAfter?: number}} RefusalFrame
 */

/**
 * `pong`: the answer to a keep-alive ping.
 * @typedef {{type: "pong"}} PongFrame
 */

/**
 * `ice-servers`: the answer to `refreshIceServers()`, the ICE servers with credentials minted
 * just now for our client id; `expiresAt` (ms since the epoch) as the welcome's
 * `iceServersExpireAt`. Apply them with `pc.setConfiguration({...pc.getConfiguration(), iceServers})`.
 * @typedef {{type: "ice-servers", iceServers: IceServer[], expiresAt: number | null}} IceServersFrame
 */

/**
 * @typedef {CreatedFrame | JoinedFrame | PeerJoinedFrame | ReadyFrame | MessageFrame | PeerAwayFrame
 *   | PeerLeftFrame | FullFrame | ErrorFrame | RefusalFrame | PongFrame | IceServersFrame | EndedFrame
 *   | KickedFrame} ServerFrame
 */

/**
 * `reconnecting`: the socket dropped; the next attempt starts after `delayMs`.
 * @typedef {{attempt: number, delayMs: number, code: number, reason: string}} ReconnectingDetail
 */

/**
 * `reconnected`: a new socket got its welcome frame; `resumed: false` means the old slot had
 * expired and this is a fresh join.
 * @typedef {{resumed: boolean, clientId: string}} ReconnectedDetail
 */

/**
 * `close`: the connection stopped for good.
 * @typedef {{code: number, reason: string}} CloseDetail
 */

/**
 * `refused`: the server refused the join in-band (`docs/access.md`, "Refusals"). `code` and
 * `message` are the server's; `retryAfter` (seconds) comes with `too-many-joins`. The socket's
 * close follows: then `close` for a final refusal, or `reconnecting` for `too-many-joins`
 * (after `retryAfter`) and for the one retry of `ticket-expired` with a ticket function.
 * @typedef {object} RefusedDetail
 * @property {RefusalCodeValue} code
 * @property {string} message
 * @property {number} [retryAfter]
 */

/**
 * `checked`: a `check()` ended. `ok`: the socket answered within `checkTimeoutMs` (after `ms`);
 * otherwise it was dropped and a new one is on its way (`reconnecting` follows).
 * @typedef {{reason: string, ok: boolean, ms: number}} CheckedDetail
 */

/**
 * `network-change`: the browser said its network changed (`online`, `offline`, or a change of
 * `navigator.connection`); a `check()` follows.
 * @typedef {{reason: "online" | "offline" | "connection"}} NetworkChangeDetail
 */

/**
 * `media-stalled`: on a watched peer connection, no inbound RTP packet (`kind: "all"`) or no
 * decoded remote video frame (`kind: "video"`) for `ms`, after some had arrived.
 * @typedef {{kind: "all" | "video", ms: number}} MediaStalledDetail
 */

/**
 * `media-flowing`: after a `media-stalled` of the same `kind`, media arrives again; it had
 * stopped for `stalledMs`.
 * @typedef {{kind: "all" | "video", stalledMs: number}} MediaFlowingDetail
 */

/**
 * `ice-restart`: the watcher restarted ICE on the watched peer connection (`attempt` counts the
 * restarts since media last flowed), for `reason` (what made it doubt the path: `media-stalled`,
 * `ice-disconnected`, `ice-failed`, `online`, `offline`, `connection`, `resumed`,
 * `restart-timeout`).
 * @typedef {{reason: string, attempt: number}} IceRestartDetail
 */

/**
 * `renew`: `restarts` ICE restarts in a row were negotiated and media still did not come back;
 * the watcher called `renew` (replace the peer connection).
 * @typedef {{restarts: number}} RenewDetail
 */

/**
 * The events of a {@link DuetConnection}, by name: each a `CustomEvent` with this `detail`.
 * `frame` carries every server frame, also of types this version does not know.
 * @typedef {{
 *   created: CustomEvent<CreatedFrame>,
 *   joined: CustomEvent<JoinedFrame>,
 *   "peer-joined": CustomEvent<PeerJoinedFrame>,
 *   ready: CustomEvent<ReadyFrame>,
 *   message: CustomEvent<MessageFrame>,
 *   "peer-away": CustomEvent<PeerAwayFrame>,
 *   "peer-left": CustomEvent<PeerLeftFrame>,
 *   full: CustomEvent<FullFrame>,
 *   error: CustomEvent<ErrorFrame>,
 *   pong: CustomEvent<PongFrame>,
 *   "ice-servers": CustomEvent<IceServersFrame>,
 *   ended: CustomEvent<EndedFrame>,
 *   kicked: CustomEvent<KickedFrame>,
 *   frame: CustomEvent<ServerFrame | {type: string, [field: string]: unknown}>,
 *   reconnecting: CustomEvent<ReconnectingDetail>,
 *   reconnected: CustomEvent<ReconnectedDetail>,
 *   close: CustomEvent<CloseDetail>,
 *   refused: CustomEvent<RefusedDetail>,
 *   "e2e-error": CustomEvent<E2EErrorDetail>,
 *   "e2e-confirmed": CustomEvent<E2EConfirmedDetail>,
 *   checked: CustomEvent<CheckedDetail>,
 *   "network-change": CustomEvent<NetworkChangeDetail>,
 *   "media-stalled": CustomEvent<MediaStalledDetail>,
 *   "media-flowing": CustomEvent<MediaFlowingDetail>,
 *   "ice-restart": CustomEvent<IceRestartDetail>,
 *   renew: CustomEvent<RenewDetail>,
 * }} DuetEventMap
 */

/**
 * `e2e-confirmed`: the other side's hello opened with our key: both links have the same key.
 * Once per pairing (per `ready`).
 * @typedef {object} E2EConfirmedDetail
 * @property {string} peer the other side's client id
 */

/**
 * `e2e-error`: a message was dropped undelivered (see `docs/e2e.md`); with `key-mismatch`, the
 * other side's key confirmation did not open, or did not come within {@link KEY_CONFIRM_MS}.
 * @typedef {object} E2EErrorDetail
 * @property {import("./e2e.js").E2EFailure} reason one of `E2E_FAILURES` (`e2e.js`)
 * @property {string | null} from the client id the relayed frame named
 * @property {string} message
 */

/**
 * An `EventTarget` whose listeners are typed by the event map `Events`: an event name that is
 * not in the map, or a field its `detail` does not have, fails to type-check.
 * @template Events
 * @typedef {{
 *   addEventListener<K extends keyof Events>(type: K, listener: (event: Events[K]) => void, options?: boolean | AddEventListenerOptions): void,
 *   removeEventListener<K extends keyof Events>(type: K, listener: (event: Events[K]) => void, options?: boolean | EventListenerOptions): void,
 *   dispatchEvent(event: Event): boolean,
 * }} TypedEventTarget
 */

/**
 * What the client remembers per room across reloads.
 * @typedef {object} SavedSlot
 * @property {string} token the latest resume token
 * @property {string} clientId
 * @property {string | null} initiator the initiator named by the last `ready`
 */

/**
 * Opens a connection to room `room` and returns it at once; listen for `created`/`joined`.
 * @param {string} room 1–64 characters of `A–Z a–z 0–9 _ -`
 * @param {ConnectOptions} [options]
 * @returns {DuetConnection}
 */
export function connect(room, options = {}) {
  return new DuetConnection(room, options);
}

/**
 * A signaling connection to one room; an `EventTarget` with the events of {@link DuetEventMap}
 * (all `CustomEvent`s):
 * - one per server frame type (see {@link FRAME_TYPES}), `detail` = the frame;
 * - `frame`: every server frame, including types this version does not know;
 * - `reconnecting`: `detail = {attempt, delayMs, code, reason}`, the socket dropped and a new
 *   one opens after `delayMs`;
 * - `reconnected`: `detail = {resumed, clientId}`, a new socket got its welcome frame; with
 *   `resumed: false` the old slot had expired and this is a fresh join (new `clientId`);
 * - `close`: `detail = {code, reason}`, the connection has stopped for good;
 * - `refused`: `detail = {code, message, retryAfter?}`, the server refused the join in-band
 *   (instead of an `error` event); the close that follows ends the connection (`close`) or,
 *   for `too-many-joins` and a first `ticket-expired` with a ticket function, retries;
 * - `checked`: `detail = {reason, ok, ms}`, a `check()` ended;
 * - `network-change`: `detail = {reason}`, the browser reported a network change;
 * - `media-stalled`, `media-flowing`, `ice-restart`, `renew`: from a peer connection watched
 *   with `watchPeerConnection()`;
 * - `e2e-error`: `detail = {reason, from, message}`, a message was dropped undelivered: it failed
 *   to decrypt, was a replay, or was plaintext where an envelope was expected (or the reverse);
 *   `reason` is one of `E2E_FAILURES` (`e2e.js`); `key-mismatch`: the other side's link has
 *   another key or none (its hello did not open, or did not come in time);
 * - `e2e-confirmed`: `detail = {peer}`, with a key: the other side's hello opened, so both
 *   links have the same key. Within {@link KEY_CONFIRM_MS} of `ready`, one of the two comes.
 */
export class DuetConnection extends /** @type {new () => TypedEventTarget<DuetEventMap>} */ (EventTarget) {
  /** @type {string} */
  room;
  /** Our id in the room, from the welcome frame; kept when a slot is resumed. @type {string | null} */
  clientId = null;
  /** Ids of the other peers in the room (at most one). @type {string[]} */
  peers = [];
  /**
   * ICE servers from the welcome frame, or from the latest `ice-servers` refresh, for
   * `new RTCPeerConnection({iceServers})` and `pc.setConfiguration()`. @type {IceServer[]}
   */
  iceServers = [];
  /**
   * When the earliest TURN credential in {@link iceServers} expires (ms since the epoch), or
   * `null` when none does (or the server does not say). @type {number | null}
   */
  iceServersExpireAt = null;
  /** The peer that makes the offer, from the last `ready`. @type {string | null} */
  initiator = null;
  /** Whether the welcome frame said we resumed a held slot. */
  resumed = false;
  /** With join tickets: who we are, from the welcome frame. @type {Identity | null} */
  identity = null;
  /** With join tickets: who the others are, by client id. @type {Record<string, Identity>} */
  peerIdentities = {};
  /** @type {"connecting" | "open" | "reconnecting" | "closed"} */
  state = "connecting";
  /**
   * With a key: whether the other side of the current pairing has the same key. `null` until
   * its hello opened (`true`) or failed or was missing (`false`), and without a key.
   * @type {boolean | null}
   */
  keyConfirmed = null;
  /**
   * When the current socket last received a frame (ms since the epoch), `null` before its
   * first. A socket that answered after some moment is known to work since then.
   * @type {number | null}
   */
  answeredAt = null;

  /** @type {Required<Omit<ConnectOptions, "baseUrl" | "storage" | "WebSocket" | "backoff" | "maxMessageBytes" | "key" | "ticket" | "keyConfirmMs">> & {backoff: import("./backoff.js").BackoffOptions}} */
  #options;
  /** @type {WebSocketConstructor} */
  #WebSocket;
  /** @type {ConnectOptions["ticket"]} */
  #ticket = null;
  /** Counts ticket requests, so only the latest one dials. */
  #dials = 0;
  /** @type {StorageLike | null} */
  #storage;
  /** @type {SavedSlot | null} used when there is no storage */
  #memory = null;
  #url;
  #storageKey;
  /** @type {WebSocketLike | null} the current socket; events of any other socket are ignored */
  #socket = null;
  #attempt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #pingTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #pongTimer;
  /** The next ICE server refresh. @type {ReturnType<typeof setTimeout> | undefined} */
  #iceTimer;
  /** Whether any socket of this connection got a welcome frame (so the next one is a return). */
  #welcomed = false;
  /** The in-band refusal of the current socket, acted on when it closes. @type {RefusedDetail | null} */
  #refusal = null;
  /** Whether the one retry with a fresh ticket after `ticket-expired` was spent since the last welcome. */
  #freshTicketTried = false;
  /** @type {number} */
  #maxMessageBytes;
  /** The time after `ready` that the other side's hello may take. */
  #keyConfirmMs = KEY_CONFIRM_MS;
  /** Fires when the other side's hello is overdue. @type {ReturnType<typeof setTimeout> | undefined} */
  #helloTimer;
  /** Whether `e2e-confirmed` was emitted for the current pairing. */
  #confirmEmitted = false;
  #full = false;
  /** An operator ended the call or removed us: our slot is gone, and so is its token. */
  #removed = false;
  /** The room's AES-GCM key with a `key` option, else null. @type {Promise<CryptoKey> | null} */
  #key = null;
  /** Encrypted sends, chained so frames leave in the order of `send()`. */
  #outbox = Promise.resolve();
  /** Frames delivered after a message still being decrypted, chained to keep arrival order. */
  #inbox = Promise.resolve();
  #inboxLength = 0;
  /**
   * IVs of the envelopes accepted on this connection (this object, across reconnects, resumes
   * and fresh joins): a second one is a replay. Never cleared.
   */
  #acceptedIvs = new Set();
  /**
   * Every client id this connection has been welcomed as, and the one its stored slot named
   * when it was created: an envelope relayed from any of them is one of ours coming back.
   * Never cleared.
   * @type {Set<string>}
   */
  #ownIds = new Set();
  /** @type {ReturnType<typeof setTimeout> | undefined} the welcome of the socket being dialed is due */
  #connectTimer;
  /** When the current socket was dialed (ms since the epoch). */
  #dialedAt = 0;
  /** @type {PendingCheck | null} the `check()` waiting for an answer */
  #pendingCheck = null;
  /** @param {Event} event */
  #onNetwork = (event) => {
    const reason = event.type === "change" ? "connection" : /** @type {"online" | "offline"} */ (event.type);
    this.#emit("network-change", { reason });
    this.check(reason);
  };

  /**
   * Use {@link connect}.
   * @param {string} room
   * @param {ConnectOptions} options
   */
  constructor(room, options) {
    super();
    if (typeof room !== "string" || !ROOM_NAME.test(room)) {
      throw new TypeError("room names are 1-64 characters of A-Z, a-z, 0-9, _ and -");
    }
    this.room = room;
    this.#options = {
      pingIntervalMs: options.pingIntervalMs ?? 20000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10000,
      checkTimeoutMs: options.checkTimeoutMs ?? 1500,
      connectTimeoutMs: options.connectTimeoutMs ?? 10000,
      maxReconnectAttempts: options.maxReconnectAttempts ?? Infinity,
      resume: options.resume ?? true,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
    };
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#keyConfirmMs = options.keyConfirmMs ?? KEY_CONFIRM_MS;
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (!WebSocketImpl) throw new TypeError("no WebSocket implementation: pass options.WebSocket");
    this.#WebSocket = WebSocketImpl;
    this.#storage = options.storage === undefined ? defaultStorage() : options.storage;
    this.#url = socketUrl(options.baseUrl, room);
    this.#ticket = options.ticket ?? null;
    this.#storageKey = `duet:${this.#url.href}`;
    // A reloaded page's earlier messages were sealed under the id its stored slot names.
    const stored = this.#load()?.clientId;
    if (typeof stored === "string") this.#ownIds.add(stored);
    if (options.key !== undefined && options.key !== null) {
      // Never fall back to plaintext: a bad key, or no Web Crypto, is an error at once.
      if (!isSecret(options.key)) throw new TypeError("options.key must be 43 characters of base64url (32 bytes)");
      if (!cryptoAvailable()) throw new TypeError("end-to-end encryption needs Web Crypto: serve the page over https");
      this.#key = deriveKey(options.key, room);
    }
    globalThis.addEventListener?.("online", this.#onNetwork);
    globalThis.addEventListener?.("offline", this.#onNetwork);
    networkInformation()?.addEventListener("change", this.#onNetwork);
    this.#open();
  }

  /** Whether messages are end-to-end encrypted (a `key` was given). */
  get encrypted() {
    return this.#key !== null;
  }

  /** Whether we make the offer; `null` until a `ready` (or a resumed slot) says. */
  get isInitiator() {
    return this.initiator === null || this.clientId === null ? null : this.initiator === this.clientId;
  }

  /** The largest frame `send()` accepts: the server's `maxMessageBytes` once welcomed. */
  get maxMessageBytes() {
    return this.#maxMessageBytes;
  }

  /**
   * Relays `data` (any JSON value) to the other peer as `{"type":"message","data":data}`.
   * Returns `false` when no socket is open (while reconnecting); nothing is queued. With no peer
   * in the room, the server answers with an `error` event (`no-peer`).
   *
   * With a `key`, `data` is encrypted first and goes out a moment later, still in the order of
   * the `send()` calls; should the socket drop meanwhile, it is lost like any frame in flight.
   * @param {unknown} data
   * @returns {boolean} whether the frame was handed to the socket (or to encryption for it)
   */
  send(data) {
    if (data === undefined) throw new TypeError("send(data): data must be a JSON value");
    const text = JSON.stringify({ type: "message", data });
    const bytes = this.#key ? envelopeFrameBytes(utf8Length(JSON.stringify(data))) : utf8Length(text);
    if (bytes > this.#maxMessageBytes) {
      throw new RangeError(`frame of ${bytes} bytes exceeds ${this.#maxMessageBytes}`);
    }
    const ws = this.#socket;
    if (this.state !== "open" || !ws || ws.readyState !== OPEN) return false;
    if (this.#key) this.#sendSealed(ws, data, this.#key);
    else ws.send(text);
    return true;
  }

  /**
   * Encrypts `data` (at once, in parallel with earlier sends) and sends it on `ws` after every
   * earlier frame.
   * @param {WebSocketLike} ws @param {unknown} data @param {Promise<CryptoKey>} key
   */
  #sendSealed(ws, data, key) {
    const sender = /** @type {string} */ (this.clientId);
    const sealed = key.then((k) => seal(k, this.room, sender, data));
    this.#outbox = Promise.all([sealed, this.#outbox])
      .then(([envelope]) => {
        // Not on a socket that dropped meanwhile (nothing is queued), but still before a `leave()`.
        if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: "message", data: envelope }));
      })
      .catch((error) => console.error("duet: could not encrypt a message", error));
  }

  /**
   * Asks the server for ICE servers with freshly minted credentials; the answer arrives as an
   * `ice-servers` event and updates {@link iceServers}. The client does this by itself at
   * {@link ICE_REFRESH_AT} of their lifetime; call it yourself before an ICE restart you know
   * is coming. The frame counts against the rate limit like any other.
   * @returns {boolean} whether the request was sent (`false` while no socket is open)
   */
  refreshIceServers() {
    const ws = this.#socket;
    if (this.state !== "open" || !ws || ws.readyState !== OPEN) return false;
    ws.send(ICE_SERVERS_TEXT);
    return true;
  }

  /**
   * Tells the server how this call's media connected, or that it failed (`docs/protocol.md`,
   * "Reports"); operators get it as a `call.connected` or `call.failed` webhook. A watcher
   * (`watchPeerConnection()`) sends one when media first flows and one when it gives up, so an
   * application that watches needs no call of its own. Never carries an address. Returns
   * whether it was sent (only on an open socket).
   * @param {CallReport} report
   */
  sendReport(report) {
    const ws = this.#socket;
    if (this.state !== "open" || !ws || ws.readyState !== OPEN) return false;
    const whole = (/** @type {number} */ n, /** @type {number} */ max) => Math.min(max, Math.max(0, Math.round(n)));
    const frame =
      report.outcome === "connected"
        ? { type: "report", outcome: "connected", path: report.path, transport: report.transport }
        : { type: "report", outcome: "failed" };
    ws.send(JSON.stringify({ ...frame, connectMs: whole(report.connectMs, 600_000), iceRestarts: whole(report.iceRestarts, 1000) }));
    return true;
  }

  /**
   * Leaves the room for good: the server releases the slot at once and the peer gets
   * `peer-left` (`leave`). The stored resume token is forgotten. Emits `close` (1000).
   */
  leave() {
    if (this.state === "closed") return;
    const ws = this.#socket;
    if (ws && ws.readyState === OPEN && this.#welcomed) {
      const leaveNow = () => {
        if (ws.readyState !== OPEN) return;
        ws.send(LEAVE_TEXT);
        // The server closes with 1000; close ourselves if it does not.
        setTimeout(() => ws.readyState === OPEN && ws.close(CloseCode.LEFT, CloseReason.LEFT), 2000);
      };
      // After the messages still being encrypted, as they were sent before.
      if (this.#key) this.#outbox = this.#outbox.then(leaveNow);
      else leaveNow();
    } else if (ws) {
      closeQuietly(ws, CloseCode.LEFT, CloseReason.LEFT);
    }
    this.#forget();
    this.#finish(CloseCode.LEFT, CloseReason.LEFT);
  }

  /**
   * Drops the socket as a network failure would (the slot is held for the peer to see
   * `peer-away`) and reconnects through the usual backoff, resuming the slot. Useful after a
   * known network change, and in tests.
   */
  reconnect() {
    if (this.state === "closed") return;
    const ws = this.#socket;
    if (ws) closeQuietly(ws, CloseCode.CLIENT_DROP, CloseReason.CLIENT_DROP);
    this.#socketGone(CloseCode.CLIENT_DROP, CloseReason.CLIENT_DROP);
  }

  /**
   * Checks at once that the socket still carries frames: sends the keep-alive ping and waits
   * `checkTimeoutMs` for any frame. A socket that stays silent is dropped and a new one dials at
   * once, without backoff, resuming the slot. While reconnecting, the next attempt starts now,
   * and an attempt that has been dialing for longer than `checkTimeoutMs` is replaced by a
   * fresh one. Emits `checked` when a ping was sent. Calls made while a check waits join it.
   *
   * Call it when there is reason to doubt the network. The client does on `online`, `offline`
   * and `navigator.connection` changes, and a watched peer connection
   * (`watchPeerConnection()`) does when its media stalls or ICE disconnects.
   * @param {string} [reason] passed on in the `checked` event
   * @returns {Promise<boolean>} whether the socket answered; `false` when it did not or there
   *   was none (a new one is then on its way)
   */
  check(reason = "check") {
    if (this.state === "closed") return Promise.resolve(false);
    const ws = this.#socket;
    if (this.state !== "open" || !ws || ws.readyState !== OPEN) {
      this.#dialNow();
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      if (this.#pendingCheck?.ws === ws) {
        this.#pendingCheck.waiters.push(resolve);
        return;
      }
      /** @type {PendingCheck} */
      const check = { ws, reason, startedAt: Date.now(), waiters: [resolve], timer: undefined };
      check.timer = setTimeout(() => {
        this.#endCheck(check, false);
        if (ws === this.#socket) {
          closeQuietly(ws, CloseCode.CLIENT_DROP, CloseReason.CLIENT_DROP);
          this.#socketGone(CloseCode.CLIENT_DROP, "no answer to a check", 0);
        }
      }, this.#options.checkTimeoutMs);
      this.#pendingCheck = check;
      ws.send(PING_TEXT);
    });
  }

  /** While reconnecting: the next attempt now, or a fresh one for an attempt that hangs. */
  #dialNow() {
    if (this.state !== "reconnecting" && this.state !== "connecting") return;
    const ws = this.#socket;
    if (!ws) {
      if (this.#retryTimer === undefined) return; // a ticket is being fetched for the next attempt
      clearTimeout(this.#retryTimer);
      this.#open();
    } else if (Date.now() - this.#dialedAt > this.#options.checkTimeoutMs) {
      closeQuietly(ws, CloseCode.CLIENT_DROP, CloseReason.CLIENT_DROP);
      this.#socketGone(CloseCode.CLIENT_DROP, "connect took too long", 0);
    }
  }

  /** @param {PendingCheck} check @param {boolean} ok */
  #endCheck(check, ok) {
    if (this.#pendingCheck !== check) return;
    this.#pendingCheck = null;
    clearTimeout(check.timer);
    this.#emit("checked", { reason: check.reason, ok, ms: Date.now() - check.startedAt });
    for (const resolve of check.waiters) resolve(ok);
  }

  /**
   * Watches `pc`, the peer connection of a call set up through this connection, and repairs its
   * media path after a network change or an outage:
   * - it doubts the path when ICE goes `disconnected` or `failed`, when no inbound RTP packet
   *   arrived for `stallMs` (2 s) after some had, and on the browser's network changes;
   * - it then `check()`s the socket, and restarts ICE (`restartIce`) only once a socket has
   *   answered since the doubt began: an offer written into a dead socket is lost;
   * - after a resume that followed such a doubt (or while the path is broken) it restarts ICE;
   * - when media flows again while the socket is still reconnecting, it dials at once (the
   *   network is back);
   * - an ICE restart that was negotiated and did not bring media back within
   *   `restartTimeoutMs` counts as failed; after `maxRestarts` of them it calls `renew` (make
   *   a new peer connection).
   * Emits `media-stalled`, `media-flowing`, `ice-restart` and `renew` on this connection. The
   * watcher stops by itself when `pc` closes, or with `stop()`.
   * @param {PeerConnectionLike} pc
   * @param {WatchOptions} [options]
   * @returns {PathWatcher}
   */
  watchPeerConnection(pc, options = {}) {
    return new PathWatcher(this, pc, options);
  }

  /** @param {string} type @param {unknown} detail */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #open() {
    this.#retryTimer = undefined;
    const ticket = this.#ticket;
    if (typeof ticket !== "function") {
      this.#dial(ticket ?? null);
      return;
    }
    // A fresh ticket for every attempt; an attempt overtaken by close() or another one is dropped.
    const attempt = ++this.#dials;
    Promise.resolve()
      .then(ticket)
      .then(
        (fresh) => attempt === this.#dials && this.state !== "closed" && this.#dial(fresh),
        (err) => attempt === this.#dials && this.state !== "closed" && this.#socketGone(1006, `no ticket: ${err}`),
      );
  }

  /**
   * Opens the socket. The ticket and the resume token go as subprotocols beside `duet.v1`
   * (which the server selects), so neither appears in a request URL or a log.
   * @param {string | null} ticket
   */
  #dial(ticket) {
    const protocols = [SUBPROTOCOL];
    if (ticket) protocols.push(`duet.ticket.${ticket}`);
    const saved = this.#options.resume ? this.#load() : null;
    if (saved?.token) protocols.push(`duet.resume.${saved.token}`);
    /** @type {WebSocketLike} */
    let ws;
    try {
      ws = new this.#WebSocket(this.#url.href, protocols);
    } catch (err) {
      // A malformed URL or a blocked scheme will not get better by retrying.
      this.#finish(1006, String(err));
      return;
    }
    this.#socket = ws;
    this.#refusal = null;
    this.#dialedAt = Date.now();
    this.answeredAt = null;
    clearTimeout(this.#connectTimer);
    if (this.#options.connectTimeoutMs > 0) {
      this.#connectTimer = setTimeout(() => {
        if (ws !== this.#socket || this.state === "open") return;
        closeQuietly(ws, CloseCode.CLIENT_DROP, CloseReason.CLIENT_DROP);
        this.#socketGone(CloseCode.CLIENT_DROP, "connect timed out");
      }, this.#options.connectTimeoutMs);
    }
    ws.addEventListener("open", () => ws === this.#socket && this.#startKeepAlive());
    ws.addEventListener("message", (ev) => ws === this.#socket && this.#onText(ev.data));
    ws.addEventListener("close", (ev) => ws === this.#socket && this.#onClose(ev.code, ev.reason));
    // An "error" event is always followed by "close", which does the work.
  }

  /** @param {unknown} text */
  #onText(text) {
    this.#alive();
    this.answeredAt = Date.now();
    if (this.#pendingCheck) this.#endCheck(this.#pendingCheck, true);
    if (typeof text !== "string") return;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return;
    // A refusal is the only frame of its socket: judged at once, before its close.
    if (frame.type === "error" && REFUSAL_CODES.has(frame.code)) this.#onRefusal(frame);
    else this.#receive(frame);
  }

  /**
   * The server refused the join in-band; what to do comes when the socket closes.
   * @param {Record<string, any>} frame
   */
  #onRefusal(frame) {
    /** @type {RefusedDetail} */
    const detail = { code: frame.code, message: typeof frame.message === "string" ? frame.message : "" };
    if (typeof frame.retryAfter === "number" && Number.isFinite(frame.retryAfter) && frame.retryAfter >= 0) {
      detail.retryAfter = frame.retryAfter;
    }
    this.#refusal = detail;
    this.#emit("frame", frame);
    this.#emit("refused", detail);
  }

  /**
   * Hands frames to {@link #onFrame} in arrival order. A message that needs the key (or is an
   * envelope without one) is opened first; frames that arrive meanwhile wait behind it.
   * @param {Record<string, any>} frame
   */
  #receive(frame) {
    const sealed = frame.type === "message" && (this.#key !== null || isEnvelope(frame.data));
    if (!sealed && this.#inboxLength === 0) {
      this.#onFrame(frame);
      return;
    }
    // Decryption starts now; delivery waits for the frames before it.
    const opened = sealed ? this.#unseal(frame) : Promise.resolve(frame);
    this.#inboxLength += 1;
    this.#inbox = this.#inbox
      .then(async () => {
        const result = await opened;
        this.#inboxLength -= 1;
        if (this.state === "closed") return;
        // The replay check runs here, in arrival order, among the envelopes that decrypted.
        const failure =
          result instanceof E2EError ? result : sealed && this.#acceptedIvs.has(frame.data.iv) ? new E2EError("replayed") : null;
        if (failure) {
          if (failure.reason === "key-mismatch") this.#keyMismatch();
          this.#emit("e2e-error", { reason: failure.reason, from: frame.from ?? null, message: failure.message });
          return;
        }
        if (sealed) this.#acceptedIvs.add(frame.data.iv);
        if (result instanceof Hello) this.#onHello(String(frame.from), result.to);
        else this.#onFrame(/** @type {Record<string, any>} */ (result));
      })
      .catch((error) => console.error("duet: could not deliver a frame", error));
  }

  /**
   * The message frame with its data decrypted, or the receiver a hello names, or why it must not
   * be delivered.
   * @param {Record<string, any>} frame
   * @returns {Promise<Record<string, any> | Hello | E2EError>}
   */
  async #unseal(frame) {
    try {
      if (!this.#key) throw new E2EError("unexpected-envelope");
      if (isHello(frame.data)) {
        const to = await openHello(await this.#key, this.room, String(frame.from), frame.data);
        if (this.#ownIds.has(String(frame.from))) throw new E2EError("reflected");
        return new Hello(to);
      }
      const data = await open(await this.#key, this.room, String(frame.from), frame.data);
      // Authentic, but as if from us: the server sent one of our own messages back, perhaps
      // one sealed under an id we held before a fresh welcome gave us a new one.
      if (this.#ownIds.has(String(frame.from))) throw new E2EError("reflected");
      return { ...frame, data };
    } catch (error) {
      return error instanceof E2EError ? error : new E2EError("undecryptable");
    }
  }

  /**
   * A welcome (`created` or `joined`): our slot, its peers and limits, and what to keep.
   * @param {Record<string, any>} frame
   */
  #onWelcome(frame) {
    this.clientId = String(frame.clientId);
    this.#ownIds.add(this.clientId);
    this.#setIceServers(frame.iceServers, frame.iceServersExpireAt);
    this.peers = Array.isArray(frame.peers) ? frame.peers.filter((id) => id !== this.clientId) : [];
    this.resumed = frame.resumed === true;
    this.identity = frame.identity ?? null;
    this.peerIdentities = frame.peerIdentities && typeof frame.peerIdentities === "object" ? { ...frame.peerIdentities } : {};
    if (Number.isSafeInteger(frame.maxMessageBytes) && frame.maxMessageBytes > 0) this.#maxMessageBytes = frame.maxMessageBytes;
    const saved = this.#load();
    // A resumed slot keeps its pairing; a fresh slot waits for a new `ready`.
    this.initiator = this.resumed && saved?.clientId === this.clientId ? saved.initiator : null;
    this.#save({ token: String(frame.resumeToken), clientId: this.clientId, initiator: this.initiator });
    this.state = "open";
    this.#attempt = 0;
    this.#welcomed = true;
    this.#freshTicketTried = false;
    clearTimeout(this.#connectTimer);
    // The first ping at once, the schedule counted from it. A slot whose socket never sent
    // a frame is unconfirmed and yields to a newcomer (protocol.md), and workerd only ends
    // the TCP connection of a socket it closes (4000 after a resume elsewhere) promptly once
    // that socket has sent a frame.
    this.#startKeepAlive(true);
    if (!this.resumed) {
      this.keyConfirmed = null; // a fresh slot: no pairing until `ready`
    } else if (this.peers.length > 0 && this.keyConfirmed !== true) {
      // Back in a pairing whose hellos may have been lost with the socket (or a reloaded page,
      // which knows of no hello): say hello again; the peer sends one on our return too.
      this.#sendHello();
    }
  }

  /** @param {Record<string, any>} frame */
  #onFrame(frame) {
    const welcomedBefore = this.#welcomed;
    switch (frame.type) {
      case "created":
      case "joined":
        this.#onWelcome(frame);
        break;
      case "peer-joined":
        if (!this.peers.includes(frame.clientId)) this.peers = [...this.peers, frame.clientId];
        if (frame.identity) this.peerIdentities = { ...this.peerIdentities, [frame.clientId]: frame.identity };
        // The peer is back: it may have missed our hello, or be a reloaded page that knows none.
        if (frame.resumed === true) this.#sendHello();
        break;
      case "peer-away":
        this.#stopHelloTimer();
        break;
      case "peer-left":
        this.peers = this.peers.filter((id) => id !== frame.clientId);
        this.initiator = null;
        this.#saveInitiator();
        this.#stopHelloTimer();
        this.keyConfirmed = null;
        break;
      case "ready":
        this.initiator = String(frame.initiator);
        if (Array.isArray(frame.peers)) this.peers = frame.peers.filter((id) => id !== this.clientId);
        this.#saveInitiator();
        this.#confirmKey();
        break;
      case "full":
        this.#full = true;
        break;
      case "ended":
      case "kicked":
        this.#removed = true;
        break;
      case "ice-servers":
        this.#setIceServers(frame.iceServers, frame.expiresAt);
        break;
    }
    this.#emit("frame", frame);
    this.#emit(frame.type, frame);
    if (welcomedBefore && (frame.type === "created" || frame.type === "joined")) {
      this.#emit("reconnected", { resumed: this.resumed, clientId: this.clientId });
    }
  }

  /**
   * A new pairing (`ready`): with a key, send our hello before anything else and expect the
   * other side's within `keyConfirmMs`.
   */
  #confirmKey() {
    this.#stopHelloTimer();
    if (!this.#key) return;
    this.keyConfirmed = null;
    this.#confirmEmitted = false;
    this.#sendHello();
    if (!(this.#keyConfirmMs > 0)) return;
    this.#helloTimer = setTimeout(() => {
      this.#helloTimer = undefined;
      if (this.keyConfirmed === true || this.state !== "open" || this.peers.length === 0) return;
      this.#keyMismatch();
      const { message } = new E2EError("key-mismatch");
      this.#emit("e2e-error", { reason: "key-mismatch", from: this.peers[0] ?? null, message });
    }, this.#keyConfirmMs);
  }

  /** With a key and a socket open, seals a hello to the peer and sends it after earlier frames. */
  #sendHello() {
    const ws = this.#socket;
    const key = this.#key;
    const peer = this.peers[0];
    if (!key || !peer || this.state !== "open" || !ws || ws.readyState !== OPEN) return;
    const sender = /** @type {string} */ (this.clientId);
    const sealed = key.then((k) => sealHello(k, this.room, sender, peer));
    this.#outbox = Promise.all([sealed, this.#outbox])
      .then(([hello]) => {
        if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: "message", data: hello }));
      })
      .catch((error) => console.error("duet: could not send the key confirmation", error));
  }

  /**
   * A hello opened with our key: the keys match, if it is addressed to us (one addressed to an
   * id we no longer hold is an old pairing's, and says nothing about this one).
   * @param {string} from @param {string} to
   */
  #onHello(from, to) {
    if (to !== this.clientId) return;
    this.#stopHelloTimer();
    this.keyConfirmed = true;
    if (this.#confirmEmitted) return;
    this.#confirmEmitted = true;
    this.#emit("e2e-confirmed", { peer: from });
  }

  /** The other side's key is not ours (its `e2e-error` is emitted by the caller). */
  #keyMismatch() {
    this.#stopHelloTimer();
    if (this.keyConfirmed !== true) this.keyConfirmed = false;
  }

  /** No verdict from silence while either side is away: a hello may be lost meanwhile. */
  #stopHelloTimer() {
    clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
  }

  /** @param {number} code @param {string} reason */
  #onClose(code, reason) {
    const refusal = this.#refusal;
    this.#refusal = null;
    if (refusal) {
      this.#afterRefusal(refusal, code, reason);
    } else if (this.#full || this.#removed || code === CloseCode.ROOM_FULL || code === CloseCode.STALE) {
      this.#forget();
      this.#finish(code, reason);
    } else if (FINAL_CLOSE_CODES.has(code)) {
      this.#finish(code, reason);
    } else {
      this.#socketGone(code, reason);
    }
  }

  /**
   * After the close of a socket refused in-band: wait `retryAfter` after `too-many-joins`; one
   * more try with a fresh ticket after `ticket-expired`, when a ticket function can give one;
   * else stop, as nothing would change by trying again.
   * @param {RefusedDetail} refusal @param {number} code @param {string} reason
   */
  #afterRefusal(refusal, code, reason) {
    if (refusal.code === RefusalCode.TOO_MANY_JOINS) {
      const wait = refusal.retryAfter;
      this.#socketGone(code, reason, wait === undefined ? undefined : Math.min(wait * 1000, 2 ** 31 - 1));
    } else if (refusal.code === RefusalCode.TICKET_EXPIRED && typeof this.#ticket === "function" && !this.#freshTicketTried) {
      this.#freshTicketTried = true;
      this.#socketGone(code, reason, 0);
    } else {
      this.#finish(code, reason);
    }
  }

  /**
   * Takes a new ICE server list and re-schedules the refresh for its expiry: none without one
   * (static servers only), or when it has passed already by our clock (a refresh would bring
   * the same; the next welcome brings fresh ones).
   * @param {unknown} servers @param {unknown} expiresAt
   */
  #setIceServers(servers, expiresAt) {
    this.iceServers = Array.isArray(servers) ? servers : [];
    this.iceServersExpireAt = typeof expiresAt === "number" && Number.isFinite(expiresAt) ? expiresAt : null;
    this.#stopIceRefresh();
    if (this.iceServersExpireAt === null) return;
    const remaining = this.iceServersExpireAt - Date.now();
    if (!(remaining > 0)) return;
    const delay = Math.min(Math.max(remaining * ICE_REFRESH_AT, MIN_ICE_REFRESH_MS), 2 ** 31 - 1);
    this.#iceTimer = setTimeout(() => {
      this.#iceTimer = undefined;
      this.refreshIceServers();
    }, delay);
  }

  /**
   * The socket is gone but we are not done: schedule the next attempt, after `delayMs` or the
   * backoff's delay.
   * @param {number} code @param {string} reason @param {number} [delayMs]
   */
  #socketGone(code, reason, delayMs = backoffDelay(this.#attempt, this.#options.backoff)) {
    this.#socket = null;
    this.#stopKeepAlive();
    this.#stopHelloTimer();
    this.#stopIceRefresh();
    this.#stopChecks();
    clearTimeout(this.#retryTimer);
    if (this.#attempt >= this.#options.maxReconnectAttempts) {
      this.#finish(code, reason);
      return;
    }
    this.#attempt += 1;
    this.state = "reconnecting";
    this.#retryTimer = setTimeout(() => this.#open(), delayMs);
    this.#emit("reconnecting", { attempt: this.#attempt, delayMs, code, reason });
  }

  /** A pending check fails with its socket; no connect timer outlives the socket it watches. */
  #stopChecks() {
    clearTimeout(this.#connectTimer);
    if (this.#pendingCheck) this.#endCheck(this.#pendingCheck, false);
  }

  /** @param {number} code @param {string} reason */
  #finish(code, reason) {
    this.#socket = null;
    this.#stopKeepAlive();
    this.#stopHelloTimer();
    this.#stopIceRefresh();
    this.#stopChecks();
    clearTimeout(this.#retryTimer);
    globalThis.removeEventListener?.("online", this.#onNetwork);
    globalThis.removeEventListener?.("offline", this.#onNetwork);
    networkInformation()?.removeEventListener("change", this.#onNetwork);
    if (this.state === "closed") return;
    this.state = "closed";
    this.#emit("close", { code, reason });
  }

  /**
   * Pings the current socket every `pingIntervalMs` from now on (from the socket's `open`, and
   * again from its welcome); with `now`, once at once too.
   */
  #startKeepAlive(now = false) {
    this.#stopKeepAlive();
    const { pingIntervalMs, pongTimeoutMs } = this.#options;
    if (!(pingIntervalMs > 0)) return;
    const ws = this.#socket;
    const ping = () => {
      if (ws !== this.#socket || !ws || ws.readyState !== OPEN) return;
      ws.send(PING_TEXT);
      if (pongTimeoutMs > 0 && this.#pongTimer === undefined) {
        this.#pongTimer = setTimeout(() => {
          this.#pongTimer = undefined;
          if (ws === this.#socket) this.reconnect();
        }, pongTimeoutMs);
      }
    };
    if (now) ping();
    this.#pingTimer = setInterval(ping, pingIntervalMs);
  }

  #stopKeepAlive() {
    clearInterval(this.#pingTimer);
    this.#alive();
  }

  /** No refresh without a socket: the next welcome brings fresh ICE servers and schedules anew. */
  #stopIceRefresh() {
    clearTimeout(this.#iceTimer);
    this.#iceTimer = undefined;
  }

  /** Any frame proves the socket is alive. */
  #alive() {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
  }

  /** @returns {SavedSlot | null} */
  #load() {
    if (!this.#storage) return this.#memory;
    try {
      const value = JSON.parse(this.#storage.getItem(this.#storageKey) ?? "null");
      return value && typeof value.token === "string" ? value : null;
    } catch {
      return null;
    }
  }

  /** @param {SavedSlot} slot */
  #save(slot) {
    this.#memory = slot;
    try {
      this.#storage?.setItem(this.#storageKey, JSON.stringify(slot));
    } catch {
      // Storage can be full or blocked; the in-memory copy still resumes within this page.
    }
  }

  #saveInitiator() {
    const saved = this.#load();
    if (saved) this.#save({ ...saved, initiator: this.initiator });
  }

  #forget() {
    this.#memory = null;
    try {
      this.#storage?.removeItem(this.#storageKey);
    } catch {
      // See #save.
    }
  }
}

/** A hello that opened: the receiver it names. */
class Hello {
  /** @param {string} to */
  constructor(to) {
    this.to = to;
  }
}

/**
 * A `check()` waiting for an answer on socket `ws`.
 * @typedef {object} PendingCheck
 * @property {WebSocketLike} ws
 * @property {string} reason
 * @property {number} startedAt
 * @property {((ok: boolean) => void)[]} waiters
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 */

/**
 * The part of `RTCPeerConnection` that {@link PathWatcher} uses.
 * @typedef {object} PeerConnectionLike
 * @property {string} iceConnectionState
 * @property {string} signalingState
 * @property {() => Promise<StatsReportLike>} getStats
 * @property {() => void} restartIce
 * @property {(type: string, listener: (event: any) => void) => void} addEventListener
 * @property {(type: string, listener: (event: any) => void) => void} removeEventListener
 */

/**
 * What a {@link PathWatcher} remembers of one kind of inbound media: the counts by stats id at
 * the last sample, when one last grew, and whether any ever did.
 * @typedef {{seen: Map<string, number>, at: number, flowed: boolean}} MediaCounter
 */

/**
 * A call's media path, from {@link PathWatcher#report}.
 * @typedef {object} PathReport
 * @property {"direct" | "relay" | null} path through a TURN relay (on either side) or not;
 *   `null` while no candidate pair is selected
 * @property {string | null} local the local candidate's type: `host`, `srflx`, `prflx`, `relay`
 * @property {string | null} remote the remote candidate's type
 * @property {string | null} protocol `udp` or `tcp`, between the local candidate and the peer
 *   (or its relay)
 * @property {string | null} relayProtocol with a local relay: how we reach the TURN server
 *   (`udp`, `tcp`, `tls`)
 * @property {number | null} connectMs from the start of watching to ICE's first `connected`
 * @property {number} iceRestarts the restarts the watcher made
 * @property {number} stalls how often inbound media stalled
 */

/**
 * The part of `RTCStatsReport` that {@link PathWatcher} reads.
 * @typedef {object} StatsReportLike
 * @property {(callback: (stats: any) => void) => void} forEach
 */

/**
 * @typedef {object} WatchOptions
 * @property {() => void} [restartIce] restarts ICE; by default `pc.restartIce()`, which fires
 *   `negotiationneeded`, so your negotiation sends the new offer.
 * @property {() => void} [renew] replaces the peer connection, after `maxRestarts` negotiated
 *   ICE restarts in a row did not bring media back; by default nothing is done (a `renew`
 *   event is emitted either way). Let one side do it (Duet's app: the initiator).
 * @property {number} [statsIntervalMs=500] how often inbound media is sampled (`getStats()`);
 *   five times as often while it is stalled
 * @property {number} [stallMs=2000] no inbound RTP for this long, after some arrived, means the
 *   path broke
 * @property {number} [videoStallMs=2500] no decoded remote video frame for this long, after
 *   some were, is reported as a video stall (`media-stalled` with `kind: "video"`)
 * @property {number} [restartTimeoutMs=5000] how long a negotiated ICE restart may take to bring
 *   media back before it counts as failed and the path is doubted again
 * @property {number} [maxRestarts=2] failed restarts in a row before `renew`
 * @property {(kind: "all" | "video") => boolean} [expectsMedia] whether the peer sends any media
 *   (`"all"`) or video (`"video"`) now; by default always. Where it says no, silence is not a
 *   stall (a peer with no camera or microphone that stopped sharing its screen, say): the watcher
 *   waits for such media to flow again before it can stall.
 */

/**
 * Watches one peer connection for a broken media path and repairs it through its signaling
 * connection; made by {@link DuetConnection#watchPeerConnection}, which explains what it does.
 */
/**
 * A call's outcome for {@link DuetConnection#sendReport}: media flows over `path` and
 * `transport` (the local candidate's, or with a relay the one to the TURN server), or the
 * client gave up; `connectMs` from the start of the attempt, and its ICE restarts.
 * @typedef {{outcome: "connected", path: "direct" | "relay", transport: "udp" | "tcp" | "tls", connectMs: number, iceRestarts: number}
 *   | {outcome: "failed", connectMs: number, iceRestarts: number}} CallReport
 */

export class PathWatcher {
  /** Whether no inbound RTP packet arrived for `stallMs`, after some had. */
  stalled = false;
  /** Whether no remote video frame was decoded for `videoStallMs`, after some were. */
  videoStalled = false;
  /** ICE restarts this watcher made. */
  restarts = 0;
  /** Times inbound media stalled (`media-stalled` with `kind: "all"`). */
  stalls = 0;
  /** Milliseconds from the start of watching to ICE's first `connected`, `null` until then. @type {number | null} */
  connectMs = null;
  /** The outcomes already reported to the server: each at most once per watcher. */
  #reported = { connected: false, failed: false };
  #startedAt = Date.now();

  #connection;
  #pc;
  /** @type {Required<Omit<WatchOptions, "renew">> & {renew: (() => void) | null}} */
  #options;
  /** When the path was first doubted since it last worked; null while it works. @type {number | null} */
  #doubtedSince = null;
  /** What made us doubt it first. */
  #reason = "";
  /** Whether a restart waits for a socket that answered since the doubt began. */
  #restartWanted = false;
  /** Negotiated restarts in a row that did not bring media back. */
  #failedRestarts = 0;
  /** The restart in progress: whether its offer/answer completed, and the selected pair then. @type {{negotiated: boolean, pair: string, responses: number} | null} */
  #restart = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #restartTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #sampleTimer;
  #sampling = false;
  /** Inbound RTP packets (and decoded video frames) by stats id at the last sample. @type {MediaCounter} */
  #inbound = { seen: new Map(), at: Date.now(), flowed: false };
  /** @type {MediaCounter} */
  #video = { seen: new Map(), at: Date.now(), flowed: false };
  /** The selected candidate pair at the last sample, and its STUN responses. */
  #pair = { id: "", responses: 0 };
  /** Removes the listeners this watcher added. @type {(() => void)[]} */
  #unlisten = [];

  /**
   * Use {@link DuetConnection#watchPeerConnection}.
   * @param {DuetConnection} connection @param {PeerConnectionLike} pc @param {WatchOptions} options
   */
  constructor(connection, pc, options) {
    this.#connection = connection;
    this.#pc = pc;
    this.#options = {
      restartIce: options.restartIce ?? (() => pc.restartIce()),
      renew: options.renew ?? null,
      statsIntervalMs: options.statsIntervalMs ?? 500,
      stallMs: options.stallMs ?? 2000,
      videoStallMs: options.videoStallMs ?? 2500,
      restartTimeoutMs: options.restartTimeoutMs ?? 5000,
      maxRestarts: options.maxRestarts ?? 2,
      expectsMedia: options.expectsMedia ?? (() => true),
    };
    /** @type {[PeerConnectionLike | DuetConnection, any, (event: any) => void][]} */
    const listeners = [
      [pc, "iceconnectionstatechange", () => this.#onIceState()],
      [pc, "signalingstatechange", () => this.#onSignalingState()],
      [connection, "network-change", (e) => this.#doubt(e.detail.reason, false)],
      [connection, "reconnected", (e) => e.detail.resumed && this.#afterResume("resumed")],
      [connection, "peer-joined", (e) => e.detail.resumed && this.#afterResume("peer-resumed")],
      [connection, "close", () => this.stop()],
    ];
    for (const [target, type, listener] of listeners) {
      target.addEventListener(type, listener);
      this.#unlisten.push(() => target.removeEventListener(type, listener));
    }
    // Every `statsIntervalMs`, and five times as often while media is stalled, so that its
    // return (and the key frame that may have to follow) is noticed within 100 ms or so.
    const fast = Math.max(1, Math.round(this.#options.statsIntervalMs / 5));
    let sampledAt = 0;
    this.#sampleTimer = setInterval(() => {
      if (!this.stalled && Date.now() - sampledAt < this.#options.statsIntervalMs) return;
      sampledAt = Date.now();
      this.#sample();
    }, fast);
  }

  /**
   * What the call's media path is now, for a report: the selected candidate pair (a direct
   * path, or relayed through TURN, and over which transport), how long ICE took to connect,
   * and how often the path broke and was restarted.
   * @returns {Promise<PathReport>}
   */
  async report() {
    /** @type {Map<string, any>} */
    const byId = new Map();
    let pairId = "";
    try {
      (await this.#pc.getStats()).forEach((s) => {
        byId.set(s.id, s);
        pairId = selectedPair(s) ?? pairId;
      });
    } catch {
      // A closed peer connection: no path.
    }
    const pair = byId.get(pairId);
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    const relayed = local?.candidateType === "relay" || remote?.candidateType === "relay";
    return {
      path: !local || !remote ? null : relayed ? "relay" : "direct",
      local: local?.candidateType ?? null,
      remote: remote?.candidateType ?? null,
      protocol: local?.protocol ?? null,
      relayProtocol: local?.candidateType === "relay" ? (local.relayProtocol ?? null) : null,
      connectMs: this.connectMs,
      iceRestarts: this.restarts,
      stalls: this.stalls,
    };
  }

  /** Reports the first connected path to the server, once (`DuetConnection#sendReport`). */
  async #reportConnected() {
    if (this.#reported.connected) return;
    this.#reported.connected = true;
    const path = await this.report();
    const transport = path.relayProtocol ?? path.protocol;
    if (!path.path || (transport !== "udp" && transport !== "tcp" && transport !== "tls")) return;
    this.#connection.sendReport({ outcome: "connected", path: path.path, transport, connectMs: path.connectMs ?? 0, iceRestarts: this.restarts });
  }

  /** Stops watching (the peer connection is left as it is). */
  stop() {
    clearInterval(this.#sampleTimer);
    clearTimeout(this.#restartTimer);
    for (const unlisten of this.#unlisten.splice(0)) unlisten();
  }

  #closed() {
    if (this.#pc.signalingState !== "closed") return false;
    this.stop();
    return true;
  }

  /** Media arrives and ICE says connected. */
  #healthy() {
    const ice = this.#pc.iceConnectionState;
    return (ice === "connected" || ice === "completed") && !this.stalled;
  }

  /**
   * Healthy, and media was seen arriving after `since` (a sample later): after a network change
   * ICE goes on saying connected for seconds over a path that is gone. Without media to go by
   * (a data-only call), ICE's word has to do.
   * @param {number} since
   */
  #healthySince(since) {
    return this.#healthy() && (!this.#inbound.flowed || this.#inbound.at >= since + this.#options.statsIntervalMs);
  }

  #onIceState() {
    if (this.#closed()) return;
    const ice = this.#pc.iceConnectionState;
    if (this.connectMs === null && (ice === "connected" || ice === "completed")) {
      this.connectMs = Date.now() - this.#startedAt;
      void this.#reportConnected();
    }
    if (ice === "disconnected" || ice === "failed") this.#doubt(`ice-${ice}`);
    else if (this.#healthy()) this.#trust();
  }

  #onSignalingState() {
    if (this.#closed()) return;
    if (this.#restart && this.#pc.signalingState === "stable") this.#restart.negotiated = true;
  }

  /**
   * The path may be broken: check the socket, then restart ICE (see #maybeRestart). A network
   * change alone (`broken` false) only makes it suspect: ICE restarts after a resume it led to,
   * or when media then stalls; media seen arriving after it clears it.
   * @param {string} reason @param {boolean} [broken] ICE or stalled media say the path broke
   */
  #doubt(reason, broken = true) {
    if (this.#closed()) return;
    if (this.#doubtedSince === null) {
      this.#doubtedSince = Date.now();
      this.#reason = reason;
    }
    if (broken) this.#restartWanted = true;
    this.#connection.check(reason).then(() => this.#maybeRestart());
  }

  /** Our socket resumed, or the peer's: what was sent meanwhile is lost. @param {string} reason */
  #afterResume(reason) {
    if (this.#closed() || (this.#doubtedSince === null && this.#healthy())) return;
    // What was sent meanwhile is lost, and the peer's offers may have gone into our dead socket.
    this.#doubtedSince ??= Date.now();
    this.#reason ||= reason;
    this.#restartWanted = true;
    this.#maybeRestart();
  }

  /** The path works again: forget the doubt and the restarts. */
  #trust() {
    this.#doubtedSince = null;
    this.#reason = "";
    this.#restartWanted = false;
    this.#failedRestarts = 0;
    this.#restart = null;
    clearTimeout(this.#restartTimer);
  }

  /** Restarts ICE if the path is still broken and a socket has answered since the doubt began. */
  #maybeRestart() {
    const connection = this.#connection;
    if (!this.#restartWanted || this.#closed() || this.#doubtedSince === null) return;
    if (connection.state !== "open" || connection.answeredAt === null || connection.answeredAt < this.#doubtedSince) return;
    if (this.#healthySince(this.#doubtedSince)) {
      this.#trust();
      return;
    }
    // A restart in progress gets its `restartTimeoutMs` before the next.
    if (this.#restart) return;
    this.#restartWanted = false;
    this.#armRestartTimer();
    // An offer is out (an earlier restart's, maybe lost with the peer's socket): the
    // application re-sends it when the peer resumes; a second restart would change nothing.
    if (this.#pc.signalingState !== "stable") return;
    if (this.#failedRestarts >= this.#options.maxRestarts) {
      const restarts = this.#failedRestarts;
      this.#trust();
      if (!this.#reported.failed) {
        this.#reported.failed = true;
        this.#connection.sendReport({ outcome: "failed", connectMs: Date.now() - this.#startedAt, iceRestarts: this.restarts });
      }
      this.#emit("renew", { restarts });
      this.#options.renew?.();
      return;
    }
    this.restarts += 1;
    this.#restart = { negotiated: false, pair: this.#pair.id, responses: this.#pair.responses };
    this.#emit("ice-restart", { reason: this.#reason, attempt: this.#failedRestarts + 1 });
    this.#options.restartIce();
  }

  /** If the path is still broken after `restartTimeoutMs`, the restart failed: doubt again. */
  #armRestartTimer() {
    clearTimeout(this.#restartTimer);
    const armedAt = Date.now();
    this.#restartTimer = setTimeout(() => {
      const restart = this.#restart;
      this.#restart = null;
      if (this.#closed()) return;
      if (this.#healthySince(armedAt)) {
        this.#trust();
        return;
      }
      if (restart?.negotiated) this.#failedRestarts += 1;
      this.#doubt("restart-timeout");
    }, this.#options.restartTimeoutMs);
  }

  /** Samples inbound media; overlapping samples are skipped. */
  async #sample() {
    if (this.#sampling || this.#closed()) return;
    this.#sampling = true;
    let report;
    try {
      report = await this.#pc.getStats();
    } catch {
      return;
    } finally {
      this.#sampling = false;
    }
    // Counted per stats object: a renegotiation can replace one, which starts again from 0.
    /** @type {Map<string, number>} */
    const packets = new Map();
    /** @type {Map<string, number>} */
    const frames = new Map();
    let pairId = "";
    /** @type {Map<string, number>} STUN responses received per candidate pair */
    const responses = new Map();
    report.forEach((s) => {
      if (s.type === "inbound-rtp") {
        packets.set(s.id, s.packetsReceived ?? 0);
        if (s.kind === "video") frames.set(s.id, s.framesDecoded ?? 0);
      } else if (s.type === "candidate-pair") {
        responses.set(s.id, s.responsesReceived ?? 0);
      }
      pairId = selectedPair(s) ?? pairId;
    });
    this.#pair = { id: pairId, responses: responses.get(pairId) ?? 0 };
    const now = Date.now();
    this.#track("all", this.#inbound, packets, now);
    this.#track("video", this.#video, frames, now);
    // Media arriving since the doubt began clears it (a network change that broke nothing).
    if (this.#doubtedSince !== null && !this.#restart && this.#healthySince(this.#doubtedSince)) this.#trust();
    // After a negotiated restart, connectivity checks answered on the selected pair prove the
    // path even when no media comes (the peer may simply send none): no more restarts for it.
    const restart = this.#restart;
    if (restart?.negotiated && (pairId !== restart.pair || this.#pair.responses > restart.responses)) {
      const ice = this.#pc.iceConnectionState;
      if (ice === "connected" || ice === "completed") this.#trust();
    }
  }

  /**
   * @param {"all" | "video"} kind
   * @param {MediaCounter} counter
   * @param {Map<string, number>} values this sample's counts by stats id @param {number} now
   */
  #track(kind, counter, values, now) {
    const key = kind === "all" ? "stalled" : "videoStalled";
    const stallMs = kind === "all" ? this.#options.stallMs : this.#options.videoStallMs;
    const grew = [...values].some(([id, value]) => value > (counter.seen.get(id) ?? 0));
    counter.seen = values;
    if (grew) {
      const stalledMs = now - counter.at;
      Object.assign(counter, { at: now, flowed: true });
      if (!this[key]) return;
      this[key] = false;
      this.#emit("media-flowing", { kind, stalledMs });
      if (kind !== "all") return;
      if (this.#healthy()) this.#trust();
      // Media is back while signaling is not: the network works again, dial now.
      if (this.#connection.state !== "open") this.#connection.check("media-flowing");
    } else if (counter.flowed && !this[key] && now - counter.at >= stallMs) {
      if (!this.#options.expectsMedia(kind)) {
        counter.flowed = false; // the peer stopped sending, on purpose
        return;
      }
      this[key] = true;
      if (kind === "all") this.stalls += 1;
      this.#emit("media-stalled", { kind, ms: now - counter.at });
      if (kind === "all") this.#doubt("media-stalled");
    }
  }

  /** @param {string} type @param {unknown} detail */
  #emit(type, detail) {
    this.#connection.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * The id of the selected candidate pair, if stats object `s` names it: a transport's
 * `selectedCandidatePairId`, or (Firefox, which has no transport stats) a candidate pair that
 * says `selected`.
 * @param {any} s
 * @returns {string | null}
 */
function selectedPair(s) {
  if (s.type === "transport" && s.selectedCandidatePairId) return s.selectedCandidatePairId;
  if (s.type === "candidate-pair" && s.selected === true) return s.id;
  return null;
}

/**
 * The socket URL for `room` on the server at `baseUrl`.
 * @param {string | undefined} baseUrl
 * @param {string} room
 */
export function socketUrl(baseUrl, room) {
  const base = baseUrl ?? globalThis.location?.origin;
  if (!base) throw new TypeError("options.baseUrl is required outside a browser page");
  const url = new URL(`/ws/${room}`, base);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  else if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new TypeError(`baseUrl must be http(s) or ws(s), not ${url.protocol}`);
  }
  return url;
}

/**
 * The browser's `navigator.connection` (Network Information API, where there is one).
 * @returns {EventTarget | null}
 */
function networkInformation() {
  const connection = /** @type {{connection?: unknown} | undefined} */ (globalThis.navigator)?.connection;
  return connection instanceof EventTarget ? connection : null;
}

/** @returns {StorageLike | null} */
function defaultStorage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // blocked by the browser's privacy settings
  }
}

/** @param {WebSocketLike} ws @param {number} code @param {string} reason */
function closeQuietly(ws, code, reason) {
  try {
    ws.close(code, reason);
  } catch {
    // Already closing.
  }
}

/** @param {string} text */
function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}
