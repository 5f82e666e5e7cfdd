// The client against a server that attacks it: a `ws` WebSocketServer on 127.0.0.1 that speaks
// just enough of protocol v1 (docs/protocol.md) to welcome duet.js, capture what it sends, drop
// it, welcome it afresh under a new client id, and then relay to it what it likes. What the
// honest Worker never does is exactly what these tests need, so there is no Worker here.
//
// - reflection across an id change: the client's own envelope, relayed back under the id the
//   client held before a fresh welcome, is refused as `reflected` (docs/e2e.md, Receiving), as
//   is one sealed under the id of the slot a reloaded page found in its storage;
// - the replay set survives the id change: the peer's envelope accepted before is `replayed`;
// - every welcome is answered at once with the exact ping (a socket that never sent a frame
//   leaves its slot unconfirmed), before anything else the client sends.
//
// Every "nothing was delivered" is proven by a later message that was.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { connect, LEAVE_TEXT, PING_TEXT, PONG_TEXT, SUBPROTOCOL } from "../../public/js/duet.js";
import { deriveKey, newSecret, seal } from "../../public/js/e2e.js";

const ROOM = "hostile-room";
const FIRST_ID = "aaaaaaaaaaaaaaaa";
const SECOND_ID = "bbbbbbbbbbbbbbbb";
const PEER_ID = "cccccccccccccccc";

/** The welcome frame of protocol v1, as the Worker sends it. */
const welcome = (type, clientId, extra = {}) => ({
  type,
  version: 1,
  room: ROOM,
  clientId,
  resumeToken: clientId.repeat(4),
  iceServers: [],
  iceServersExpireAt: null,
  maxPeers: 2,
  maxMessageBytes: 65536,
  peers: [],
  ...extra,
});

/**
 * A fake Duet server. `nextSocket()` resolves with the next client socket to connect, whose
 * `nextFrame()` resolves with the next frame the client sent (its text, and the parsed frame).
 */
async function startFakeServer() {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
  await new Promise((resolve) => wss.once("listening", resolve));
  const address = /** @type {import("node:net").AddressInfo} */ (wss.address());
  const arrived = queue();
  wss.on("connection", (ws, request) => {
    const frames = queue();
    ws.on("message", (data) => frames.push({ text: String(data), frame: JSON.parse(String(data)) }));
    // The runtime's answer to the exact ping; after a leave, close as the Worker does, so the client's own fallback timer is not needed.
    ws.on("message", (data) => String(data) === PING_TEXT && ws.send(PONG_TEXT));
    ws.on("message", (data) => String(data) === LEAVE_TEXT && ws.close(1000, "left"));
    arrived.push({
      ws,
      protocols: String(request.headers["sec-websocket-protocol"] ?? "").split(/,\s*/),
      nextFrame: frames.next,
      /** @param {object} frame */
      send: (frame) => ws.send(JSON.stringify(frame)),
    });
  });
  return {
    origin: `http://127.0.0.1:${address.port}`,
    nextSocket: arrived.next,
    close: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(resolve);
      }),
  };
}

/** Items in arrival order; `next()` resolves with the next one not taken yet, or fails after `ms`. */
function queue() {
  /** @type {any[]} */
  const items = [];
  /** @type {((item: any) => void)[]} */
  const waiting = [];
  return {
    push(/** @type {any} */ item) {
      const waiter = waiting.shift();
      if (waiter) waiter(item);
      else items.push(item);
    },
    next(ms = 5000) {
      if (items.length > 0) return Promise.resolve(items.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(deliver), 1);
          reject(new Error(`nothing arrived within ${ms} ms`));
        }, ms);
        const deliver = (/** @type {any} */ item) => {
          clearTimeout(timer);
          resolve(item);
        };
        waiting.push(deliver);
      });
    },
  };
}

/** Records a connection's events; `next(type)` resolves with the next unseen one of `type`. */
function track(connection) {
  const TYPES = ["created", "joined", "message", "reconnected", "e2e-error", "close"];
  /** @type {{type: string, detail: any}[]} */
  const events = [];
  const byType = new Map(TYPES.map((type) => [type, queue()]));
  for (const type of TYPES) {
    connection.addEventListener(type, (/** @type {CustomEvent} */ event) => {
      events.push({ type, detail: event.detail });
      byType.get(type)?.push(event.detail);
    });
  }
  return { events, next: (/** @type {string} */ type) => /** @type {any} */ (byType.get(type)).next() };
}

describe("a server that relays the client's own messages back", () => {
  let server;
  before(async () => {
    server = await startFakeServer();
  });
  after(() => server?.close());

  test("after a fresh welcome, an envelope from the id held before is refused as reflected, and the peer's old one as replayed", async () => {
    const secret = newSecret();
    const peerKey = await deriveKey(secret, ROOM);
    const connection = connect(ROOM, { baseUrl: server.origin, key: secret, storage: null, WebSocket, backoff: { initialDelayMs: 10, maxDelayMs: 10 } });
    const events = track(connection);

    // First socket: welcomed as FIRST_ID; the client pings at once, then sends an offer.
    const first = await server.nextSocket();
    first.send(welcome("created", FIRST_ID));
    await events.next("created");
    assert.equal((await first.nextFrame()).text, PING_TEXT, "the first frame after the welcome is the ping");
    assert.equal(connection.send({ kind: "offer", sdp: "v=0 ours" }), true);
    const { frame: sent } = await first.nextFrame();
    assert.equal(sent.type, "message");
    assert.equal(sent.data.e2e, 1, "the offer left encrypted");

    // The peer's envelope is accepted once.
    const peerEnvelope = await seal(peerKey, ROOM, PEER_ID, { kind: "answer", n: 1 });
    first.send({ type: "message", from: PEER_ID, data: peerEnvelope });
    assert.deepEqual((await events.next("message")).data, { kind: "answer", n: 1 });

    // The server drops the socket, and welcomes the reconnect afresh under a new id (as an
    // honest server also does once the resume grace has run out).
    first.ws.close(1011, "gone");
    const second = await server.nextSocket();
    assert.ok(second.protocols.includes(`duet.resume.${FIRST_ID.repeat(4)}`), "the client tried to resume");
    second.send(welcome("joined", SECOND_ID, { resumed: false, peers: [PEER_ID] }));
    assert.deepEqual(await events.next("reconnected"), { resumed: false, clientId: SECOND_ID });
    assert.equal((await second.nextFrame()).text, PING_TEXT, "the fresh welcome is answered with a ping too");

    // The attack: the client's own offer, relayed under the id it held before.
    second.send({ type: "message", from: FIRST_ID, data: sent.data });
    // The peer's first envelope again: the id change did not reset the replay set.
    second.send({ type: "message", from: PEER_ID, data: peerEnvelope });
    // A new message of the peer's, which must arrive after the two above were judged.
    second.send({ type: "message", from: PEER_ID, data: await seal(peerKey, ROOM, PEER_ID, { kind: "answer", n: 2 }) });
    assert.deepEqual((await events.next("message")).data, { kind: "answer", n: 2 });

    const judged = events.events.filter((e) => e.type === "message" || e.type === "e2e-error");
    assert.deepEqual(
      judged.map((e) => (e.type === "message" ? ["message", e.detail.from, e.detail.data] : ["e2e-error", e.detail.from, e.detail.reason])),
      [
        ["message", PEER_ID, { kind: "answer", n: 1 }],
        ["e2e-error", FIRST_ID, "reflected"],
        ["e2e-error", PEER_ID, "replayed"],
        ["message", PEER_ID, { kind: "answer", n: 2 }],
      ],
    );
    connection.leave();
    await events.next("close");
  });

  test("a reloaded page refuses, as reflected, an envelope under the id of the slot its storage names", async () => {
    const secret = newSecret();
    const key = await deriveKey(secret, ROOM);
    // What the page before the reload left in sessionStorage, and one of the messages it sent.
    /** @type {Map<string, string>} */
    const stored = new Map([[`duet:${server.origin.replace("http:", "ws:")}/ws/${ROOM}`, JSON.stringify({ token: FIRST_ID.repeat(4), clientId: FIRST_ID, initiator: null })]]);
    const storage = { getItem: (k) => stored.get(k) ?? null, setItem: (k, v) => void stored.set(k, v), removeItem: (k) => void stored.delete(k) };
    const before = await seal(key, ROOM, FIRST_ID, { kind: "offer", sdp: "v=0 before the reload" });

    const connection = connect(ROOM, { baseUrl: server.origin, key: secret, storage, WebSocket });
    const events = track(connection);
    const socket = await server.nextSocket();
    assert.ok(socket.protocols.includes(`duet.resume.${FIRST_ID.repeat(4)}`), "the stored slot is the one the page found");
    // The slot is not resumed: a fresh id, and the old page's message relayed as if from a peer.
    socket.send(welcome("joined", SECOND_ID, { resumed: false, peers: [FIRST_ID] }));
    await events.next("joined");
    socket.send({ type: "message", from: FIRST_ID, data: before });
    socket.send({ type: "message", from: PEER_ID, data: await seal(key, ROOM, PEER_ID, { kind: "answer" }) });
    assert.deepEqual((await events.next("message")).from, PEER_ID);
    assert.deepEqual(
      events.events.filter((e) => e.type === "message" || e.type === "e2e-error").map((e) => e.detail.reason ?? e.type),
      ["reflected", "message"],
    );
    connection.leave();
    await events.next("close");
  });
});
