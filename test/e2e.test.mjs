// End-to-end encrypted signaling through the real Worker (Miniflare): two `duet.js` clients
// with `connect(room, {key})` in Node, raw `ws` peers that send crafted envelopes, and a fake
// server for what the real one never does (reflecting a message to its sender). Every "nothing
// was delivered" is proven by a later message that was. The key confirmation (docs/e2e.md):
// after `ready` both sides learn whether their keys match, the one who started the call too.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { connect as duetConnect } from "../public/js/duet.js";
import { deriveKey, envelopeFrameBytes, newSecret, seal, sealHello } from "../public/js/e2e.js";
import { connect as rawConnect, nextFrame, roomName, send, startServer, terminateAll } from "./helpers/miniflare.mjs";

/** A `ws` WebSocket that records every text frame it sends and receives, for all instances. */
const wire = [];
class RecordingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => wire.push({ dir: "in", text: String(event.data) }));
  }
  send(text) {
    wire.push({ dir: "out", text: String(text) });
    super.send(text);
  }
}

/**
 * Records every event of a DuetConnection; `next(type)` awaits the first event of `type` at or
 * after index `from` (already seen or to come).
 */
function track(connection) {
  const TYPES = ["created", "joined", "ready", "message", "peer-left", "error", "e2e-error", "e2e-confirmed", "close"];
  const events = [];
  const waiters = new Set();
  for (const type of TYPES) {
    connection.addEventListener(type, (event) => {
      events.push({ type, detail: event.detail });
      for (const waiter of [...waiters]) waiter();
    });
  }
  return {
    connection,
    events,
    /** Events after `from`, as `type` or `type:reason` (e2e-error) strings. */
    since: (from) => events.slice(from).map((e) => (e.type === "e2e-error" ? `e2e-error:${e.detail.reason}` : e.type)),
    next(type, from = 0, ms = 5000) {
      return new Promise((resolve, reject) => {
        const look = () => {
          const index = events.findIndex((e, i) => i >= from && e.type === type);
          if (index < 0) return false;
          waiters.delete(look);
          clearTimeout(timer);
          resolve({ ...events[index], index });
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(look);
          reject(new Error(`no ${type} within ${ms} ms; saw ${events.map((e) => e.type)}`));
        }, ms);
        if (!look()) waiters.add(look);
      });
    },
  };
}

describe("end-to-end encrypted signaling through the Worker", () => {
  let server;
  const opened = [];
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    for (const c of opened) c.connection.leave();
    await server?.dispose();
  });

  /** A duet.js client in `room`, tracked; resolves after its welcome frame. */
  async function client(room, key, options = {}) {
    const connection = duetConnect(room, { baseUrl: server.origin, key, storage: null, pingIntervalMs: 0, WebSocket: RecordingWebSocket, ...options });
    const tracked = track(connection);
    opened.push(tracked);
    await Promise.race([tracked.next("created"), tracked.next("joined")]);
    return tracked;
  }

  /** Two clients in a fresh room, both past `ready`. */
  async function pair(keyA, keyB = keyA) {
    const room = roomName("e2e");
    const a = await client(room, keyA);
    const b = await client(room, keyB);
    await Promise.all([a.next("ready"), b.next("ready")]);
    return { room, a, b };
  }

  test("values arrive decrypted and in order, while the wire carries only envelopes", async () => {
    const { a, b } = await pair(newSecret());
    assert.equal(a.connection.encrypted, true);
    const start = wire.length;
    const sdp = `v=0\r\na=fingerprint:sha-256 ${"AB:".repeat(31)}AB\r\na=candidate:1 1 udp 2113937151 192.0.2.7 54400 typ host\r\n`;
    const values = Array.from({ length: 40 }, (_, n) => ({ kind: "signal", n, sdp, text: "ça va ? 👋".repeat(n % 5) }));
    for (const value of values) assert.equal(a.connection.send(value), true);
    const received = [];
    for (let i = 0; received.length < values.length; ) {
      const { detail, index } = await b.next("message", i);
      received.push(detail);
      i = index + 1;
    }
    assert.deepEqual(received.map((m) => m.data), values, "every value, decrypted, in the order sent");
    assert.ok(received.every((m) => m.from === a.connection.clientId));

    b.connection.send({ kind: "reply" });
    assert.deepEqual((await a.next("message")).detail.data, { kind: "reply" });

    const frames = wire.slice(start).filter((f) => f.text.includes('"type":"message"') && !f.text.includes('"hello":1'));
    assert.equal(frames.length, 2 * (values.length + 1), "each message went out once and came in once");
    for (const { text } of frames) {
      const { data } = JSON.parse(text);
      assert.deepEqual(Object.keys(data), ["e2e", "iv", "ct"]);
      assert.doesNotMatch(text, /v=0|fingerprint|candidate|192\.0\.2\.7|signal|reply/);
    }
    assert.deepEqual(b.since(0).filter((t) => t.startsWith("e2e-error")), []);
  });

  test("messages sent just before leave() arrive before peer-left", async () => {
    const { a, b } = await pair(newSecret());
    a.connection.send({ n: 1 });
    a.connection.send({ n: 2 });
    a.connection.leave();
    await b.next("peer-left");
    const types = b.since(0).filter((t) => t === "message" || t === "peer-left");
    assert.deepEqual(types, ["message", "message", "peer-left"]);
    assert.deepEqual(
      b.events.filter((e) => e.type === "message").map((e) => e.detail.data),
      [{ n: 1 }, { n: 2 }],
    );
  });

  test("different keys: nothing is delivered either way, each side reports undecryptable", async () => {
    const { a, b } = await pair(newSecret(), newSecret());
    // Both hellos are judged first: they left before anything else.
    await Promise.all([a.next("e2e-error"), b.next("e2e-error")]);
    const from = [a.events.length, b.events.length];
    a.connection.send({ kind: "signal" });
    b.connection.send({ kind: "signal" });
    const [ea, eb] = await Promise.all([a.next("e2e-error", from[0]), b.next("e2e-error", from[1])]);
    assert.deepEqual(eb.detail, { reason: "undecryptable", from: a.connection.clientId, message: eb.detail.message });
    assert.equal(ea.detail.reason, "undecryptable");
    assert.match(ea.detail.message, /does not decrypt/);
    assert.equal(a.events.filter((e) => e.type === "message").length + b.events.filter((e) => e.type === "message").length, 0);
  });

  test("the same key: both sides confirm it after ready, and the hellos are never delivered", async () => {
    const start = wire.length;
    const { a, b } = await pair(newSecret());
    const [ca, cb] = await Promise.all([a.next("e2e-confirmed"), b.next("e2e-confirmed")]);
    assert.deepEqual(ca.detail, { peer: b.connection.clientId });
    assert.deepEqual(cb.detail, { peer: a.connection.clientId });
    assert.equal(a.connection.keyConfirmed, true);
    assert.equal(b.connection.keyConfirmed, true);
    // Each side sent one hello right after ready, sealed, with nothing of its plaintext in clear.
    const hellos = wire.slice(start).filter((f) => f.dir === "out" && f.text.includes('"hello":1'));
    assert.equal(hellos.length, 2);
    for (const { text } of hellos) {
      const { type, data } = JSON.parse(text);
      assert.equal(type, "message");
      assert.deepEqual(Object.keys(data), ["e2e", "hello", "iv", "ct"]);
      assert.doesNotMatch(text, new RegExp(`${a.connection.clientId}|${b.connection.clientId}`));
    }
    // Proven by a message that arrived after them: neither hello was delivered, no error.
    a.connection.send({ kind: "after" });
    assert.deepEqual((await b.next("message")).detail.data, { kind: "after" });
    for (const side of [a, b]) {
      assert.deepEqual(side.since(0).filter((t) => t === "message" || t.startsWith("e2e-error")), side === b ? ["message"] : []);
    }
  });

  test("different keys: each side is told key-mismatch by the other's hello, the one who started the call too", async () => {
    const { a, b } = await pair(newSecret(), newSecret());
    const [ea, eb] = await Promise.all([a.next("e2e-error"), b.next("e2e-error")]);
    assert.deepEqual(ea.detail, { reason: "key-mismatch", from: b.connection.clientId, message: ea.detail.message });
    assert.deepEqual(eb.detail, { reason: "key-mismatch", from: a.connection.clientId, message: eb.detail.message });
    assert.equal(a.connection.initiator, a.connection.clientId, "a started the call");
    assert.match(ea.detail.message, /different key/);
    assert.equal(a.connection.keyConfirmed, false);
    assert.equal(b.connection.keyConfirmed, false);
    assert.deepEqual([...a.since(0), ...b.since(0)].filter((t) => t === "e2e-confirmed"), []);
  });

  test("a key on one side only: the keyed side is told key-mismatch when no hello comes", async () => {
    for (const keyedFirst of [true, false]) {
      const room = roomName("e2e");
      const keyed = (c) => client(room, newSecret(), { keyConfirmMs: 1000, ...c });
      const first = keyedFirst ? await keyed() : await client(room, null);
      const second = keyedFirst ? await client(room, null) : await keyed();
      await Promise.all([first.next("ready"), second.next("ready")]);
      const [withKey, withoutKey] = keyedFirst ? [first, second] : [second, first];
      const mismatch = await withKey.next("e2e-error");
      assert.deepEqual(mismatch.detail, { reason: "key-mismatch", from: withoutKey.connection.clientId, message: mismatch.detail.message });
      assert.equal(withKey.connection.keyConfirmed, false);
      // The side without a key is told by the hello itself.
      assert.equal((await withoutKey.next("e2e-error")).detail.reason, "unexpected-envelope");
    }
  });

  test("a key on one side only: plaintext is refused by the keyed side, envelopes by the other", async () => {
    const { a, b } = await pair(newSecret(), null);
    assert.equal(b.connection.encrypted, false);
    a.connection.send({ kind: "signal", secret: "from a" });
    b.connection.send({ kind: "signal", secret: "from b" });
    const [ea, eb] = await Promise.all([a.next("e2e-error"), b.next("e2e-error")]);
    assert.equal(ea.detail.reason, "not-encrypted");
    assert.equal(eb.detail.reason, "unexpected-envelope");
    assert.equal(a.events.filter((e) => e.type === "message").length + b.events.filter((e) => e.type === "message").length, 0);
  });

  test("without a key nothing changes: data is relayed as plain JSON", async () => {
    const room = roomName("plain");
    const a = await client(room, undefined);
    const raw = await rawConnect(server.ws(`/ws/${room}`));
    assert.equal((await nextFrame(raw)).type, "joined");
    await a.next("ready");
    a.connection.send({ kind: "signal", n: 1 });
    let frame;
    do frame = await nextFrame(raw);
    while (frame.type !== "message");
    assert.deepEqual(frame.data, { kind: "signal", n: 1 });
    send(raw, { type: "message", data: { kind: "plain" } });
    assert.deepEqual((await a.next("message")).detail.data, { kind: "plain" });
    terminateAll(raw);
  });

  test("each failure reason from a peer that crafts its own frames; the next good message still arrives", async () => {
    const secret = newSecret();
    const room = roomName("crafted");
    const c = await client(room, secret);
    const raw = await rawConnect(server.ws(`/ws/${room}`));
    const rawId = (await nextFrame(raw)).clientId;
    await c.next("ready");
    const key = await deriveKey(secret, room);
    // The raw peer confirms the key, as a client with the same key does after ready.
    send(raw, { type: "message", data: await sealHello(key, room, rawId, c.connection.clientId) });
    await c.next("e2e-confirmed");
    const good = (n) => seal(key, room, rawId, { kind: "good", n });
    const flip = (text, at) => text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    const valid = await good(0);

    const cases = [
      ["plaintext", "not-encrypted", { kind: "signal", description: { type: "offer", sdp: "v=0" } }],
      ["a wrong version", "malformed", { ...(await good(-1)), e2e: 2 }],
      ["a short IV", "malformed", { ...(await good(-1)), iv: "AAAA" }],
      ["another key", "undecryptable", await seal(await deriveKey(newSecret(), room), room, rawId, { kind: "evil" })],
      ["another sender's additional data", "undecryptable", await seal(key, room, c.connection.clientId, { kind: "evil" })],
      ["an altered ciphertext", "undecryptable", { ...valid, ct: flip(valid.ct, 5) }],
      ["an altered IV", "undecryptable", { ...valid, iv: flip(valid.iv, 5) }],
      ["a first valid envelope", null, valid],
      ["the same envelope again", "replayed", valid],
    ];
    let from = c.events.length;
    for (const [what, reason, data] of cases) {
      const n = cases.findIndex((entry) => entry[0] === what) + 1;
      send(raw, { type: "message", data });
      send(raw, { type: "message", data: await good(n) });
      let delivered = await c.next("message", from);
      if (!reason) delivered = await c.next("message", delivered.index + 1); // both are good
      const expected = reason ? [`e2e-error:${reason}`, "message"] : ["message", "message"];
      assert.deepEqual(c.since(from), expected, what);
      assert.deepEqual(delivered.detail.data, { kind: "good", n }, what);
      if (reason) assert.equal(c.events[from].detail.from, rawId, what);
      else assert.deepEqual(c.events[from].detail.data, { kind: "good", n: 0 }, what);
      from = c.events.length;
    }
    terminateAll(raw);
  });

  test("with a key, send() knows the envelope's size and refuses what the server would", async () => {
    const { a } = await pair(newSecret());
    // The largest string whose envelope frame fits in 65536 bytes, and one character more.
    let length = 0;
    while (envelopeFrameBytes(length + 1 + 2) <= 65536) length += 1;
    assert.equal(a.connection.send("x".repeat(length)), true);
    assert.throws(() => a.connection.send("x".repeat(length + 1)), RangeError);
    assert.equal(JSON.stringify("x".repeat(length)).length, 49_085, "the limit docs/e2e.md gives");
  });

  test("a bad key is refused at once, never ignored", () => {
    for (const key of ["", "too-short", `${newSecret()}x`]) {
      assert.throws(() => duetConnect("room", { baseUrl: server.origin, key, storage: null, WebSocket: RecordingWebSocket }), TypeError);
    }
  });
});

/**
 * A stand-in server for the one thing the Worker never does: it welcomes the client and then
 * sends back, as if from the client itself, the envelope the client just sent.
 */
class ReflectingSocket extends EventTarget {
  static OPEN = 1;
  readyState = 0;
  constructor() {
    super();
    queueMicrotask(() => {
      this.readyState = 1;
      this.dispatchEvent(new Event("open"));
      this.#deliver({ type: "created", version: 1, room: "mirror", clientId: "c1", resumeToken: "t", iceServers: [], maxPeers: 2, peers: [] });
    });
  }
  #deliver(frame) {
    const event = new MessageEvent("message", { data: JSON.stringify(frame) });
    this.dispatchEvent(event);
  }
  send(text) {
    const frame = JSON.parse(text);
    if (frame.type === "message") this.#deliver({ type: "message", from: "c1", data: frame.data });
  }
  close() {
    this.readyState = 3;
  }
}

describe("a server that reflects messages", () => {
  test("an envelope relayed back to its own sender is refused as reflected", async () => {
    const connection = duetConnect("mirror", { baseUrl: "http://mirror.invalid", key: newSecret(), storage: null, pingIntervalMs: 0, WebSocket: ReflectingSocket });
    const tracked = track(connection);
    await tracked.next("created");
    connection.send({ kind: "signal" });
    const { detail } = await tracked.next("e2e-error");
    assert.deepEqual(detail, { reason: "reflected", from: "c1", message: detail.message });
    assert.equal(tracked.events.filter((e) => e.type === "message").length, 0);
    connection.leave();
  });
});
