// Shared harness for the Miniflare suites: one real Worker (the wasm build in build/) per suite,
// configured from wrangler.toml, with real `ws` clients.
//
// - `startServer({ vars })` runs build/index.js under Miniflare with the bindings, Durable
//   Object and assets that wrangler.toml declares (read through wrangler's own converter, so the
//   tests exercise the deployed configuration); `vars` override single [vars] for one suite,
//   and the join limit is lifted unless `joinLimit: "deployed"`.
//   It captures workerd's stdout/stderr as lines for the log assertions.
// - `connect(url)` opens a socket and buffers every frame from the start; `nextFrame(ws)`,
//   `nextText(ws)` and `closed(ws)` await what the server sends, never a fixed sleep.
// - `expectPong(ws)` sends the exact ping and expects the pong as the next frame;
//   `expectQuiet(ws)` proves that nothing else is queued for a socket: it sends a ping that
//   the object itself answers, so the pong is the next frame only if nothing came before it.
// - `relays`, `relayMany` and `relayBothWays` check relayed messages exactly; `relayVerbatim`
//   checks that raw JSON `data` arrives byte for byte.
// - `nextFrameFrom(sockets)` awaits the first frame on any of several sockets.
// - `openFirst`, `joinBeside`, `openPair` and `resume` enter rooms and check every frame of the
//   handshake exactly (generated ids filled in); `joinFull` and `joinEvicting` check a join into
//   a full room; `rawField` extracts a field's raw JSON text to prove that relayed data is
//   passed through byte for byte.
// - The wire constants (close codes, error codes, ping text, …) come from the client library
//   through common.mjs, re-exported here.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import {
  CLIENT_ID,
  DEFAULT_ICE_SERVERS,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_PEERS,
  PING_TEXT,
  PONG_TEXT,
  PROTOCOL_VERSION,
  ROOT,
  roomName,
  serverClose,
  TOKEN,
} from "./common.mjs";

export * from "./common.mjs";

/** The [package] version of Cargo.toml, which /healthz reports. */
export const CRATE_VERSION = /^\[package\][^[]*?^version\s*=\s*"([^"]+)"/ms.exec(
  readFileSync(join(ROOT, "Cargo.toml"), "utf8"),
)[1];

/** The events the Room object logs, one JSON line each. */
export const LIFECYCLE_EVENTS = ["start", "wake", "join", "resume", "ready", "away", "leave", "full"];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Miniflare options for the Worker as wrangler.toml declares it (bindings, Durable Object,
 * assets, compatibility date), read once. Imported lazily: `node --test test/` also loads this
 * file on its own, and then it should cost nothing.
 */
let tomlOptions;
async function wranglerTomlOptions() {
  if (!tomlOptions) {
    const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
    tomlOptions = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml")).workerOptions;
  }
  return tomlOptions;
}

/** Turns a stream into complete lines, handing each to `push`. */
function collectLines(stream, name, push) {
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop();
    for (const line of parts) push(name, line);
  });
  stream.on("end", () => rest && push(name, rest));
}

/**
 * Starts the Worker. `vars` override wrangler.toml's [vars]; `persistDir` keeps Durable Object
 * storage on disk across servers (for the restart test); `outboundService(request)` answers the
 * Worker's outbound fetches.
 */
export async function startServer({ vars = {}, persistDir, outboundService, joinLimit = "unlimited" } = {}) {
  const lines = [];
  const waiters = new Set();
  const push = (stream, text) => {
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const line = { stream, text, json };
    lines.push(line);
    for (const waiter of waiters) waiter(line);
  };
  const toml = await wranglerTomlOptions();
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    ...toml,
    ratelimits: joinLimits(toml.ratelimits, joinLimit),
    name: "duet",
    modules: true,
    scriptPath: join(ROOT, "build/index.js"),
    bindings: { ...toml.bindings, ...vars },
    host: "127.0.0.1",
    port: 0,
    durableObjectsPersist: persistDir ?? false,
    // Answers the Worker's own outbound fetches (the Cloudflare TURN API) in tests.
    ...(outboundService && { outboundService }),
    handleRuntimeStdio(stdout, stderr) {
      collectLines(stdout, "stdout", push);
      collectLines(stderr, "stderr", push);
    },
  });
  const url = await mf.ready;
  const base = url.href.replace(/\/$/, "");
  return {
    mf,
    /** `http://127.0.0.1:port`, also the Worker's own origin. */
    origin: url.origin,
    /** Every line workerd printed, as `{stream, text, json}` (json when the line parses). */
    lines,
    http: (path) => base + path,
    ws: (path) => base.replace(/^http/, "ws") + path,
    /** The lifecycle log events of `room`, in order. */
    events(room) {
      return lines
        .filter((l) => l.stream === "stdout" && l.json?.room === room && LIFECYCLE_EVENTS.includes(l.json.event))
        .map((l) => l.json);
    },
    /** Resolves with the first line (already printed or to come) that `match` accepts. */
    waitForLine(match, timeoutMs = 5000) {
      const found = lines.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = (line) => {
          if (!match(line)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(line);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching log line within ${timeoutMs} ms; log:\n${lines.map((l) => l.text).join("\n")}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    async dispose() {
      await mf.dispose();
    },
  };
}

/**
 * The Rate Limiting bindings for one suite. Suites open far more sockets from one IP than a
 * user would, so by default JOIN_LIMITER allows a million joins a minute; `"deployed"` keeps
 * wrangler.toml's limit, `"none"` drops the binding, `{limit, period}` sets one.
 */
function joinLimits(ratelimits, joinLimit) {
  if (joinLimit === "deployed") return ratelimits;
  const { JOIN_LIMITER, ...rest } = ratelimits ?? {};
  if (joinLimit === "none") return rest;
  const simple = typeof joinLimit === "object" ? joinLimit : { limit: 1_000_000, period: 60 };
  return { ...rest, JOIN_LIMITER: { ...JOIN_LIMITER, simple } };
}

/** A temporary directory removed by the returned `remove()`. */
export function tempDir(prefix = "duet-test-") {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

// ---- sockets ------------------------------------------------------------------------------

const inboxes = new WeakMap();

function track(ws) {
  const inbox = { frames: [], waiters: [], close: null };
  inbox.closed = new Promise((resolve) => {
    ws.on("close", (code, reason) => {
      inbox.close = { code, reason: reason.toString() };
      for (const waiter of inbox.waiters.splice(0)) waiter();
      resolve(inbox.close);
    });
  });
  ws.on("message", (data, isBinary) => {
    inbox.frames.push({ text: isBinary ? null : data.toString("utf8"), binary: isBinary });
    inbox.waiters.shift()?.();
  });
  // Errors surface as a close (1006) or a refused upgrade; never as an unhandled event.
  ws.on("error", () => {});
  inboxes.set(ws, inbox);
  return ws;
}

/** Thrown by `connect` when the server answers the upgrade with an HTTP response. */
export class UpgradeRefused extends Error {
  constructor(status, body, headers) {
    super(`upgrade refused with ${status}: ${body}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/**
 * Opens a socket and resolves once it is open. Frames are buffered from the start, so none
 * is lost between `open` and the first `nextFrame`. `origin` sets the Origin header,
 * `protocols` the offered subprotocols, `headers` any other request headers.
 */
export function connect(url, { origin, protocols = [], headers, timeoutMs = 5000 } = {}) {
  const ws = track(new WebSocket(url, protocols, { ...(origin ? { origin } : {}), ...(headers ? { headers } : {}) }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`socket to ${url} did not open within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once("unexpected-response", (_req, res) => {
      clearTimeout(timer);
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        ws.terminate();
        reject(new UpgradeRefused(res.statusCode, body, res.headers));
      });
    });
    ws.once("close", () => {
      clearTimeout(timer);
      reject(new Error(`socket to ${url} closed before opening`));
    });
  });
}

/** The HTTP answer to a WebSocket upgrade that the server refuses: `{status, body, headers}`. */
export async function refusedUpgrade(url, options) {
  try {
    const ws = await connect(url, options);
    ws.terminate();
  } catch (err) {
    if (err instanceof UpgradeRefused) return { status: err.status, body: JSON.parse(err.body), headers: err.headers };
    throw err;
  }
  assert.fail(`the upgrade to ${url} was accepted`);
}

/** The raw text of the next frame on `ws` (waiting up to `timeoutMs`). */
export function nextText(ws, timeoutMs = 5000) {
  const inbox = inboxes.get(ws);
  return new Promise((resolve, reject) => {
    let timer;
    const take = () => {
      clearTimeout(timer);
      const frame = inbox.frames.shift();
      if (!frame) {
        reject(new Error(`socket closed (${inbox.close.code} ${inbox.close.reason}) while waiting for a frame`));
      } else if (frame.binary) {
        reject(new Error("the server sent a binary frame"));
      } else {
        resolve(frame.text);
      }
    };
    if (inbox.frames.length > 0 || inbox.close) return take();
    timer = setTimeout(() => {
      inbox.waiters.splice(inbox.waiters.indexOf(take), 1);
      reject(new Error(`no frame within ${timeoutMs} ms`));
    }, timeoutMs);
    inbox.waiters.push(take);
  });
}

/**
 * The next frame to arrive on any of `sockets`, parsed, as `{index, frame}` (`index` into
 * `sockets`); frames on the other sockets stay queued.
 */
export async function nextFrameFrom(sockets, timeoutMs = 5000) {
  const boxes = sockets.map((ws) => inboxes.get(ws));
  let index = boxes.findIndex((box) => box.frames.length > 0 || box.close);
  if (index < 0) {
    index = await new Promise((resolve, reject) => {
      // Each inbox calls (and drops) its first waiter on a frame or a close; these only peek.
      const peeks = boxes.map((_, i) => () => done(i));
      const done = (i) => {
        clearTimeout(timer);
        boxes.forEach((box, j) => box.waiters.includes(peeks[j]) && box.waiters.splice(box.waiters.indexOf(peeks[j]), 1));
        if (i < 0) reject(new Error(`no frame on any of ${sockets.length} sockets within ${timeoutMs} ms`));
        else resolve(i);
      };
      const timer = setTimeout(() => done(-1), timeoutMs);
      boxes.forEach((box, i) => box.waiters.push(peeks[i]));
    });
  }
  return { index, frame: await nextFrame(sockets[index]) };
}

/** The next frame on `ws`, parsed. */
export async function nextFrame(ws, timeoutMs = 5000) {
  return JSON.parse(await nextText(ws, timeoutMs));
}

/** Asserts that the next frame on `ws` is exactly `expected`. */
export async function expectFrame(ws, expected, timeoutMs) {
  assert.deepStrictEqual(await nextFrame(ws, timeoutMs), expected);
}

/** Asserts that the next frame is an `error` frame with `code` and a human-readable message. */
export async function expectError(ws, code) {
  const frame = await nextFrame(ws);
  assert.equal(typeof frame.message, "string");
  assert.ok(frame.message.length > 0, "the error message is empty");
  assert.deepStrictEqual(frame, { type: "error", code, message: frame.message });
}

/** For diagnostics: whether a close frame arrived although the connection is still up. */
function closeFrameNote(ws) {
  // `ws` keeps these internally; they only make the failure message precise.
  if (!ws._closeFrameReceived) return " (no close frame received)";
  return ` (the close frame ${ws._closeCode} "${ws._closeMessage}" arrived and was answered, but the server did not end the TCP connection)`;
}

/** Resolves with the close `{code, reason}` of `ws` once it has closed. */
export function closed(ws, timeoutMs = 5000) {
  const inbox = inboxes.get(ws);
  let timer;
  return Promise.race([
    inbox.closed.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket did not close within ${timeoutMs} ms${closeFrameNote(ws)}`)), timeoutMs);
    }),
  ]);
}

/**
 * Resolves with the `{code, reason}` of the close frame the server sent to `ws`, as soon as it
 * arrives, without waiting for the TCP connection to end. (`ws` has no public event for this;
 * its receiver's `conclude` event is it, and the `ws` version is pinned.)
 */
export function closeFrame(ws, timeoutMs = 5000) {
  if (ws._closeFrameReceived) {
    return Promise.resolve({ code: ws._closeCode, reason: ws._closeMessage.toString() });
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no close frame within ${timeoutMs} ms`)), timeoutMs);
    ws._receiver.once("conclude", (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

/** A ping that does not match the auto-response text, so the Durable Object answers it. */
export const OBJECT_PING = '{"type":"ping","probe":true}';

/**
 * Proves no frame is waiting on `ws`: the object answers a ping only after everything it did
 * before, so the pong must be the very next frame.
 */
export async function expectQuiet(ws) {
  await expectPong(ws, OBJECT_PING, "expected no frame before the pong");
}

/**
 * Sends a ping (by default the exact text, which the runtime answers) and expects exactly the
 * pong as the next frame.
 */
export async function expectPong(ws, ping = PING_TEXT, message) {
  ws.send(ping);
  assert.equal(await nextText(ws), PONG_TEXT, message);
}

export function send(ws, frame) {
  ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
}

/** Closes every socket given, without waiting. */
export function terminateAll(...sockets) {
  for (const ws of sockets.flat(Infinity)) ws?.terminate();
}

// ---- rooms ----------------------------------------------------------------------------------

/** The welcome frame expected for a fresh join, with the generated ids taken from `frame`. */
export function checkWelcome(
  frame,
  { type, room, peers, iceServers = DEFAULT_ICE_SERVERS, iceServersExpireAt = null, resumed, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES },
) {
  assert.match(frame.clientId ?? "", CLIENT_ID, "clientId");
  assert.match(frame.resumeToken ?? "", TOKEN, "resumeToken");
  const expected = {
    type,
    version: PROTOCOL_VERSION,
    room,
    clientId: frame.clientId,
    resumeToken: frame.resumeToken,
    iceServers,
    iceServersExpireAt,
    maxPeers: MAX_PEERS,
    maxMessageBytes,
    peers,
  };
  if (type === "joined") expected.resumed = resumed ?? false;
  assert.deepStrictEqual(frame, expected);
  return { id: frame.clientId, token: frame.resumeToken };
}

/** Opens the first socket of an empty room and checks its `created` frame. */
export async function openFirst(server, room, { origin, iceServers, maxMessageBytes } = {}) {
  const ws = await connect(server.ws(`/ws/${room}`), { origin });
  const { id, token } = checkWelcome(await nextFrame(ws), { type: "created", room, peers: [], iceServers, maxMessageBytes });
  return { ws, id, token };
}

/**
 * A fresh join beside `occupant` (`{ws, id}`), the one connected peer of `room`: the newcomer
 * gets `joined` listing the occupant, the occupant gets `peer-joined`, then both get `ready`
 * with the occupant as initiator. `path` overrides the socket path (to send a stale token).
 */
export async function joinBeside(server, room, occupant, { iceServers, maxMessageBytes, path = `/ws/${room}` } = {}) {
  const ws = await connect(server.ws(path));
  const welcome = checkWelcome(await nextFrame(ws), {
    type: "joined",
    room,
    peers: [occupant.id],
    iceServers,
    maxMessageBytes,
    resumed: false,
  });
  await expectFrame(occupant.ws, { type: "peer-joined", room, clientId: welcome.id, resumed: false });
  const ready = { type: "ready", room, initiator: occupant.id, peers: [occupant.id, welcome.id] };
  await expectFrame(occupant.ws, ready);
  await expectFrame(ws, ready);
  return { ws, ...welcome };
}

/**
 * A newcomer joins the full `room` where the occupant `stale` (`{ws, id}`) must be evicted for
 * its old ping and `kept` stays: checks every frame on the three sockets, in order.
 */
export async function joinEvicting(server, room, stale, kept) {
  const c = await connect(server.ws(`/ws/${room}`));
  const newcomer = checkWelcome(await nextFrame(c), { type: "joined", room, peers: [kept.id], resumed: false });
  // The close frame, not the TCP end: workerd keeps the connection of a socket that never sent
  // a frame open until the object hibernates (docs/protocol.md, known runtime quirk).
  assert.deepStrictEqual(await closeFrame(stale.ws), serverClose("STALE"));
  await expectFrame(kept.ws, { type: "peer-left", room, clientId: stale.id, reason: "stale" });
  await expectFrame(kept.ws, { type: "peer-joined", room, clientId: newcomer.id, resumed: false });
  const ready = { type: "ready", room, initiator: kept.id, peers: [kept.id, newcomer.id] };
  await expectFrame(kept.ws, ready);
  await expectFrame(c, ready);
  return { ws: c, ...newcomer };
}

/** A join that must find `room` full: `full`, then the 4409 close. `path` as for `joinBeside`. */
export async function joinFull(server, room, { path = `/ws/${room}` } = {}) {
  const c = await connect(server.ws(path));
  await expectFrame(c, { type: "full", room, maxPeers: MAX_PEERS });
  assert.deepStrictEqual(await closed(c), serverClose("ROOM_FULL"));
}

/** Two peers in a fresh room after the whole handshake (see `openFirst` and `joinBeside`). */
export async function openPair(server, { room = roomName("pair"), iceServers, maxMessageBytes } = {}) {
  const a = await openFirst(server, room, { iceServers, maxMessageBytes });
  const b = await joinBeside(server, room, a, { iceServers, maxMessageBytes });
  return { room, a, b };
}

/**
 * Takes `slot` (`{id, token}`) back in `room` with its resume token and checks the welcome:
 * `joined` with `resumed:true` listing `peers`, the same client id and a new token.
 */
export async function resume(server, room, slot, peers) {
  const ws = await connect(server.ws(`/ws/${room}?resume=${slot.token}`));
  const welcome = checkWelcome(await nextFrame(ws), { type: "joined", room, peers, resumed: true });
  assert.equal(welcome.id, slot.id, "a resume keeps the client id");
  assert.notEqual(welcome.token, slot.token, "a resume rotates the token");
  return { ws, ...welcome };
}

// ---- relay ----------------------------------------------------------------------------------

/** Sends `data` from `from` (`{ws, id}`) and expects exactly its relay frame at `to`. */
export async function relays(from, to, data) {
  send(from.ws, { type: "message", data });
  await expectFrame(to.ws, { type: "message", from: from.id, data });
}

/** Sends the messages 0 … count-1 from `from` in a row, then expects each at `to`, in order. */
export async function relayMany(from, to, count) {
  for (let n = 0; n < count; n++) send(from.ws, { type: "message", data: n });
  for (let n = 0; n < count; n++) await expectFrame(to.ws, { type: "message", from: from.id, data: n });
}

/** Checks that `a` and `b` relay to each other. */
export async function relayBothWays(a, b) {
  await relays(a, b, "from a");
  await relays(b, a, "from b");
}

/** Sends the raw JSON text `raw` as data from `from`; `to` must receive it byte for byte. */
export async function relayVerbatim(from, to, raw) {
  from.ws.send(`{"type":"message","data":${raw}}`);
  const text = await nextText(to.ws);
  assert.deepStrictEqual(JSON.parse(text), { type: "message", from: from.id, data: JSON.parse(raw) });
  assert.equal(rawField(text, "data"), raw, "data must be relayed byte for byte");
}

/**
 * The raw JSON text of the top-level field `key` of the JSON object `text`, so tests can check
 * that relayed `data` is passed through byte for byte.
 */
export function rawField(text, key) {
  let i = 0;
  const ws = () => {
    while (" \t\r\n".includes(text[i]) && i < text.length) i++;
  };
  const skipString = () => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
    return text.slice(start, i);
  };
  const skipValue = () => {
    ws();
    const start = i;
    if (text[i] === '"') {
      skipString();
    } else if (text[i] === "{" || text[i] === "[") {
      let depth = 0;
      do {
        if (text[i] === '"') {
          skipString();
          continue;
        }
        if (text[i] === "{" || text[i] === "[") depth++;
        if (text[i] === "}" || text[i] === "]") depth--;
        i++;
      } while (depth > 0);
    } else {
      while (i < text.length && !",}] \t\r\n".includes(text[i])) i++;
    }
    return text.slice(start, i);
  };
  ws();
  assert.equal(text[i++], "{", "not a JSON object");
  for (;;) {
    ws();
    if (text[i] === "}") return undefined;
    const name = JSON.parse(skipString());
    ws();
    assert.equal(text[i++], ":");
    const value = skipValue();
    if (name === key) return value;
    ws();
    if (text[i] === ",") i++;
  }
}
