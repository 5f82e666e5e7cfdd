// The client library in Node with a scripted WebSocket:
// - the frame limit: `send()` checks the limit the server's welcome frame announces
//   (`maxMessageBytes`), and the default (or the `maxMessageBytes` option) only until then or
//   with a server that does not announce one;
// - the ICE server refresh: when it asks for fresh credentials (80% of the lifetime, no sooner
//   than MIN_ICE_REFRESH_MS), re-scheduled by every expiry, stopped by drops and leave(), on
//   node's mock clock and timers;
// - the keep-alive: one ping as soon as a socket is welcomed (a socket that never sent a frame
//   leaves its slot unconfirmed), the interval counted from there, and a missing answer to that
//   first ping counts as a drop;
// - refusals in-band (docs/protocol.md, "In-band refusals"): the `refused` event, no reconnect
//   after a final refusal, one fresh ticket after `ticket-expired` from a ticket function, and
//   the wait of `retryAfter` after `too-many-joins`;
// - the key confirmation's clock (docs/e2e.md): silence for KEY_CONFIRM_MS while both sides are
//   connected is `key-mismatch`; a drop of either side stops the clock, and the returns bring
//   hellos instead.
// - the socket check: a ping at once, a resume without backoff when it is not answered, checks
//   on the browser's network events, the connect timeout;
// - the path watcher, on a scripted peer connection: a stall is noticed, ICE restarts only over
//   a socket that answered since, and after a resume that followed trouble; a plain drop
//   restarts nothing; failed restarts lead to `renew`.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import {
  CloseCode,
  CloseReason,
  connect,
  DEFAULT_MAX_MESSAGE_BYTES,
  ICE_SERVERS_TEXT,
  MIN_ICE_REFRESH_MS,
  KEY_CONFIRM_MS,
  PING_TEXT,
  PONG_TEXT,
  RefusalCode,
} from "../../public/js/duet.js";
import { deriveKey, newSecret, sealHello } from "../../public/js/e2e.js";

/** A WebSocket that opens at once and records what is sent; the test plays the server. */
class ScriptedSocket extends EventTarget {
  /** @type {ScriptedSocket[]} */
  static opened = [];
  readyState = 1;
  /** @type {string[]} */
  sent = [];
  /** @param {string} url @param {string[]} [protocols] */
  constructor(url, protocols = []) {
    super();
    this.url = url;
    this.protocols = protocols;
    ScriptedSocket.opened.push(this);
  }
  /** @param {string} text */
  send(text) {
    this.sent.push(text);
  }
  close() {
    this.readyState = 3;
  }
  /** @param {object} frame */
  receive(frame) {
    this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(frame) }));
  }
  /** The server closes the socket. @param {number} code @param {string} reason */
  serverClose(code, reason) {
    this.readyState = 3;
    this.dispatchEvent(Object.assign(new Event("close"), { code, reason }));
  }
}

const welcome = (extra = {}) => ({
  type: "created",
  version: 1,
  room: "r",
  clientId: "0123456789abcdef",
  resumeToken: "t".repeat(64),
  iceServers: [],
  maxPeers: 2,
  peers: [],
  ...extra,
});

/** A `message` frame whose JSON text is exactly `bytes` long. */
const dataOfBytes = (bytes) => "x".repeat(bytes - JSON.stringify({ type: "message", data: "" }).length);

/** A connection on a scripted socket, after the welcome frame `frame`. */
function welcomed(frame, options = {}) {
  const connection = connect("r", { baseUrl: "http://duet.test", WebSocket: /** @type {any} */ (ScriptedSocket), pingIntervalMs: 0, ...options });
  const socket = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
  const before = connection.maxMessageBytes;
  socket.receive(frame);
  return { connection, socket, before };
}

describe("the frame limit of send()", () => {
  test("is the welcome frame's maxMessageBytes once announced", () => {
    const { connection, socket, before } = welcomed(welcome({ maxMessageBytes: 100 }));
    assert.equal(before, DEFAULT_MAX_MESSAGE_BYTES);
    assert.equal(connection.maxMessageBytes, 100);
    assert.equal(connection.send(dataOfBytes(100)), true);
    assert.equal(socket.sent.at(-1)?.length, 100);
    assert.throws(() => connection.send(dataOfBytes(101)), RangeError);
    connection.leave();
  });

  test("is the default, or the option, with a server that announces none", () => {
    const plain = welcomed(welcome());
    assert.equal(plain.connection.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
    assert.equal(plain.connection.send(dataOfBytes(DEFAULT_MAX_MESSAGE_BYTES)), true);
    assert.throws(() => plain.connection.send(dataOfBytes(DEFAULT_MAX_MESSAGE_BYTES + 1)), RangeError);
    plain.connection.leave();

    const configured = welcomed(welcome(), { maxMessageBytes: 50 });
    assert.equal(configured.connection.maxMessageBytes, 50);
    assert.throws(() => configured.connection.send(dataOfBytes(51)), RangeError);
    configured.connection.leave();
  });

  test("ignores a maxMessageBytes that is not a positive whole number", () => {
    for (const bad of [0, -1, 1.5, "100", null]) {
      const { connection } = welcomed(welcome({ maxMessageBytes: bad }));
      assert.equal(connection.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, String(bad));
      connection.leave();
    }
  });
});

describe("the ICE server refresh", () => {
  const NOW = 1_700_000_000_000;
  const TURN = [{ urls: "turn:t.example:3478", username: "1700000100:0123456789abcdef", credential: "c" }];
  const FRESH = [{ urls: "turn:t.example:3478", username: "1700000180:0123456789abcdef", credential: "d" }];
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: NOW }));
  afterEach(() => mock.timers.reset());

  /** How many `ice-servers` requests went out on `socket`. */
  const requests = (/** @type {ScriptedSocket} */ socket) => socket.sent.filter((t) => t === ICE_SERVERS_TEXT).length;

  /** A connection welcomed with credentials expiring `lifetimeMs` from now, recording its `ice-servers` events. */
  function refreshing(lifetimeMs, options = {}) {
    const welcomedAt = welcomed(welcome({ iceServers: TURN, iceServersExpireAt: Date.now() + lifetimeMs }), {
      backoff: { initialDelayMs: 100, maxDelayMs: 100 },
      ...options,
    });
    /** @type {any[]} */
    const events = [];
    welcomedAt.connection.addEventListener("ice-servers", (e) => events.push(e.detail));
    return { ...welcomedAt, events };
  }

  test("asks at 80% of the lifetime, takes the answer, and asks again at 80% of the new one", () => {
    const { connection, socket, events } = refreshing(100_000);
    assert.deepEqual(connection.iceServers, TURN);
    assert.equal(connection.iceServersExpireAt, NOW + 100_000);
    mock.timers.tick(79_999);
    assert.equal(requests(socket), 0);
    mock.timers.tick(1);
    assert.equal(requests(socket), 1, "asked at 80 s of 100 s");

    const answer = { type: "ice-servers", iceServers: FRESH, expiresAt: Date.now() + 100_000 };
    socket.receive(answer);
    assert.deepEqual(events, [answer]);
    assert.deepEqual(connection.iceServers, FRESH);
    assert.equal(connection.iceServersExpireAt, NOW + 180_000);
    mock.timers.tick(79_999);
    assert.equal(requests(socket), 1);
    mock.timers.tick(1);
    assert.equal(requests(socket), 2, "asked again at 80% of the new lifetime");
    connection.leave();
  });

  test("every new expiry re-schedules the one timer", () => {
    const { connection, socket } = refreshing(100_000);
    mock.timers.tick(10_000);
    // An answer to an explicit refreshIceServers(): its later expiry replaces the first timer.
    assert.equal(connection.refreshIceServers(), true);
    socket.receive({ type: "ice-servers", iceServers: FRESH, expiresAt: Date.now() + 1_000_000 });
    mock.timers.tick(70_000); // where the first timer would have fired
    assert.equal(requests(socket), 1, "only the explicit request");
    mock.timers.tick(800_000 - 70_000);
    assert.equal(requests(socket), 2);
    connection.leave();
  });

  test("no refresh without an expiry, or with one already past; no sooner than MIN_ICE_REFRESH_MS", () => {
    const cases = [
      { expireAt: null, firstAt: null },
      { expireAt: undefined, firstAt: null }, // a server that does not announce it
      { expireAt: NOW, firstAt: null },
      { expireAt: NOW - 5_000, firstAt: null },
      { expireAt: NOW + 1_000, firstAt: MIN_ICE_REFRESH_MS },
      { expireAt: NOW + 10_000, firstAt: 8_000 },
    ];
    for (const { expireAt, firstAt } of cases) {
      mock.timers.reset();
      mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: NOW });
      const { connection, socket } = welcomed(welcome({ iceServers: TURN, iceServersExpireAt: expireAt }));
      assert.equal(connection.iceServersExpireAt, expireAt ?? null);
      if (firstAt === null) {
        mock.timers.tick(3_600_000);
        assert.equal(requests(socket), 0, `expiry ${expireAt}`);
      } else {
        mock.timers.tick(firstAt - 1);
        assert.equal(requests(socket), 0, `expiry ${expireAt}`);
        mock.timers.tick(1);
        assert.equal(requests(socket), 1, `expiry ${expireAt}`);
      }
      connection.leave();
    }
  });

  test("an ice-servers answer without an expiry stops refreshing", () => {
    const { connection, socket, events } = refreshing(100_000);
    socket.receive({ type: "ice-servers", iceServers: [], expiresAt: null });
    assert.equal(events.length, 1);
    assert.equal(connection.iceServersExpireAt, null);
    mock.timers.tick(3_600_000);
    assert.equal(requests(socket), 0);
    connection.leave();
  });

  test("leave() stops the timer", () => {
    const { connection } = refreshing(100_000);
    let asked = 0;
    connection.refreshIceServers = () => ((asked += 1), true);
    connection.leave();
    mock.timers.tick(3_600_000);
    assert.equal(asked, 0);
  });

  test("a drop stops the timer, and the resume's welcome schedules it from its own expiry", () => {
    // The next socket's welcome comes 40 s late: no connect timeout here.
    const { connection, socket } = refreshing(100_000, { connectTimeoutMs: 0 });
    let asked = 0;
    const refresh = connection.refreshIceServers.bind(connection);
    connection.refreshIceServers = () => ((asked += 1), refresh());
    mock.timers.tick(50_000);
    socket.dispatchEvent(Object.assign(new Event("close"), { code: 1006, reason: "" }));
    assert.equal(connection.state, "reconnecting");
    mock.timers.tick(100); // the backoff: a new socket, not welcomed yet
    const next = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.notEqual(next, socket);
    mock.timers.tick(40_000); // past the old timer's 80 s
    assert.equal(asked, 0, "no refresh between sockets");

    next.receive(welcome({ type: "joined", resumed: true, iceServers: FRESH, iceServersExpireAt: Date.now() + 50_000 }));
    assert.deepEqual(connection.iceServers, FRESH);
    mock.timers.tick(39_999);
    assert.equal(requests(next), 0);
    mock.timers.tick(1);
    assert.equal(requests(next), 1, "at 80% of the resumed welcome's lifetime");
    assert.equal(requests(socket), 0);
    connection.leave();
  });

  test("refreshIceServers() sends nothing while no socket is open", () => {
    const connection = connect("r", { baseUrl: "http://duet.test", WebSocket: /** @type {any} */ (ScriptedSocket), pingIntervalMs: 0 });
    const socket = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.equal(connection.refreshIceServers(), false, "before the welcome");
    assert.equal(requests(socket), 0);
    connection.leave();
    assert.equal(connection.refreshIceServers(), false, "after leave()");
  });
});

describe("the keep-alive", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 }));
  afterEach(() => mock.timers.reset());

  /** A connection whose socket has opened (not welcomed yet), pinging every 20 s. */
  function opened(options = {}) {
    const connection = connect("r", { baseUrl: "http://duet.test", WebSocket: /** @type {any} */ (ScriptedSocket), backoff: { initialDelayMs: 100, maxDelayMs: 100 }, ...options });
    const socket = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    socket.dispatchEvent(new Event("open"));
    return { connection, socket };
  }

  test("pings at once on every welcome, then every pingIntervalMs counted from that ping", () => {
    const { connection, socket } = opened({ pingIntervalMs: 20_000 });
    mock.timers.tick(5_000);
    assert.deepEqual(socket.sent, [], "nothing before the welcome");
    socket.receive(welcome());
    assert.deepEqual(socket.sent, [PING_TEXT], "the first frame after the welcome is the ping");
    socket.receive({ type: "pong" });
    mock.timers.tick(19_999);
    assert.deepEqual(socket.sent, [PING_TEXT], "the schedule starts at the welcome, not at the open");
    mock.timers.tick(1);
    assert.deepEqual(socket.sent, [PING_TEXT, PING_TEXT]);

    // A fresh welcome on the next socket (the old slot expired) pings at once as well.
    socket.dispatchEvent(Object.assign(new Event("close"), { code: 1006, reason: "" }));
    mock.timers.tick(100);
    const next = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.notEqual(next, socket);
    next.dispatchEvent(new Event("open"));
    next.receive(welcome({ type: "joined", resumed: false, clientId: "fedcba9876543210" }));
    assert.deepEqual(next.sent, [PING_TEXT]);
    connection.leave();
  });

  test("a welcome ping that gets no answer within pongTimeoutMs counts as a drop", () => {
    const { connection, socket } = opened({ pingIntervalMs: 20_000, pongTimeoutMs: 10_000 });
    socket.receive(welcome());
    mock.timers.tick(9_999);
    assert.equal(connection.state, "open");
    mock.timers.tick(1);
    assert.equal(connection.state, "reconnecting");
    connection.leave();
  });

  test("pingIntervalMs 0 sends no ping at all, not even on the welcome", () => {
    const { connection, socket } = opened({ pingIntervalMs: 0 });
    socket.receive(welcome());
    mock.timers.tick(3_600_000);
    assert.deepEqual(socket.sent, []);
    assert.equal(connection.state, "open");
    connection.leave();
  });
});

/** Lets the promises that are ready run (getStats answers, check() results). */
const flush = async () => {
  for (let i = 0; i < 5; i += 1) await Promise.resolve();
};

describe("the socket check", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 }));
  afterEach(() => mock.timers.reset());

  /** A welcomed connection recording the events named. */
  function recording(types, options = {}) {
    const at = welcomed(welcome(), { backoff: { initialDelayMs: 1000, maxDelayMs: 1000 }, ...options });
    /** @type {[string, any][]} */
    const events = [];
    for (const type of types) at.connection.addEventListener(type, (e) => events.push([type, e.detail]));
    return { ...at, events };
  }

  test("pings at once; an answer within checkTimeoutMs keeps the socket", async () => {
    const { connection, socket, events } = recording(["checked", "reconnecting"]);
    const pingsBefore = socket.sent.filter((t) => t === PING_TEXT).length;
    const result = connection.check("test");
    assert.equal(socket.sent.filter((t) => t === PING_TEXT).length, pingsBefore + 1, "the exact keep-alive text, at once");
    mock.timers.tick(1499);
    socket.dispatchEvent(new MessageEvent("message", { data: PONG_TEXT }));
    assert.equal(await result, true);
    mock.timers.tick(10_000);
    assert.deepEqual(events, [["checked", { reason: "test", ok: true, ms: 1499 }]]);
    assert.equal(ScriptedSocket.opened.at(-1), socket, "no new socket");
    connection.leave();
  });

  test("without an answer the socket is dropped and a new one dials at once, resuming the slot", async () => {
    const { connection, socket, events } = recording(["checked", "reconnecting"]);
    const result = connection.check("test");
    const second = connection.check("again"); // joins the first: one ping
    assert.equal(socket.sent.filter((t) => t === PING_TEXT).length, 1, "one ping for both");
    mock.timers.tick(1499);
    assert.equal(ScriptedSocket.opened.at(-1), socket);
    mock.timers.tick(1);
    assert.deepEqual([await result, await second], [false, false]);
    assert.equal(socket.readyState, 3, "the silent socket was closed");
    mock.timers.tick(0);
    const next = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.notEqual(next, socket, "a new socket without backoff");
    assert.ok(next.protocols.includes(`duet.resume.${"t".repeat(64)}`), "with the resume token");
    assert.deepEqual(events, [
      ["checked", { reason: "test", ok: false, ms: 1500 }],
      ["reconnecting", { attempt: 1, delayMs: 0, code: 4001, reason: "no answer to a check" }],
    ]);
    connection.leave();
  });

  test("while reconnecting it dials at once instead of waiting out the backoff", () => {
    const { connection, socket } = recording([]);
    socket.dispatchEvent(Object.assign(new Event("close"), { code: 1006, reason: "" }));
    assert.equal(connection.state, "reconnecting");
    assert.equal(ScriptedSocket.opened.at(-1), socket, "waiting out the backoff");
    connection.check("test");
    assert.notEqual(ScriptedSocket.opened.at(-1), socket, "dialed at once");
    connection.leave();
  });

  test("the browser's online, offline and connection changes each check the socket", () => {
    const target = new EventTarget();
    const connectionInfo = new EventTarget();
    const saved = { add: globalThis.addEventListener, remove: globalThis.removeEventListener };
    Object.assign(globalThis, { addEventListener: target.addEventListener.bind(target), removeEventListener: target.removeEventListener.bind(target) });
    const navigatorBefore = Object.getOwnPropertyDescriptor(globalThis, "navigator");
    Object.defineProperty(globalThis, "navigator", { value: { connection: connectionInfo }, configurable: true });
    try {
      const { connection, socket, events } = recording(["network-change"]);
      const pings = () => socket.sent.filter((t) => t === PING_TEXT).length;
      const before = pings();
      target.dispatchEvent(new Event("offline"));
      target.dispatchEvent(new Event("online"));
      connectionInfo.dispatchEvent(new Event("change"));
      assert.deepEqual(events.map(([, detail]) => detail.reason), ["offline", "online", "connection"]);
      assert.equal(pings(), before + 1, "one check, joined by the others");
      connection.leave();
      target.dispatchEvent(new Event("online"));
      assert.equal(events.length, 3, "no listener after leave()");
    } finally {
      if (navigatorBefore) Object.defineProperty(globalThis, "navigator", navigatorBefore);
      else delete (/** @type {any} */ (globalThis)).navigator;
      Object.assign(globalThis, { addEventListener: saved.add, removeEventListener: saved.remove });
    }
  });

  test("a socket without its welcome within connectTimeoutMs is abandoned for the next attempt", () => {
    const connection = connect("r", { baseUrl: "http://duet.test", WebSocket: /** @type {any} */ (ScriptedSocket), pingIntervalMs: 0, connectTimeoutMs: 3000 });
    const socket = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    /** @type {any[]} */
    const reconnecting = [];
    connection.addEventListener("reconnecting", (e) => reconnecting.push(e.detail));
    mock.timers.tick(2999);
    assert.deepEqual(reconnecting, []);
    mock.timers.tick(1);
    assert.equal(socket.readyState, 3);
    assert.equal(reconnecting[0]?.reason, "connect timed out");
    connection.leave();
  });
});

describe("refusals in-band", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 }));
  afterEach(() => mock.timers.reset());

  const MESSAGES = {
    [RefusalCode.TICKET_REQUIRED]: "this room needs a join ticket (subprotocol duet.ticket.<jwt> or ?ticket=)",
    [RefusalCode.INVALID_TICKET]: "the join ticket is not an HS256 JWT signed for this service",
    [RefusalCode.TICKET_EXPIRED]: "the join ticket has expired or is not valid yet",
    [RefusalCode.TICKET_WRONG_ROOM]: "the join ticket is for another room",
    [RefusalCode.CONFIG_ERROR]: "this service's configuration is unusable, so it refuses every socket; its operator has the details",
    [RefusalCode.BANNED]: "you are banned from this room for now",
  };
  /** The close of each refusal, by the name of its close code. */
  const CLOSES = {
    [RefusalCode.TICKET_REQUIRED]: "TICKET_REFUSED",
    [RefusalCode.INVALID_TICKET]: "TICKET_REFUSED",
    [RefusalCode.TICKET_EXPIRED]: "TICKET_REFUSED",
    [RefusalCode.TICKET_WRONG_ROOM]: "FORBIDDEN",
    [RefusalCode.CONFIG_ERROR]: "MISCONFIGURED",
    [RefusalCode.TOO_MANY_JOINS]: "TOO_MANY_JOINS",
    [RefusalCode.BANNED]: "BANNED",
  };

  /** A connection whose first socket has opened, recording its events. */
  function opened(options = {}) {
    const connection = connect("r", {
      baseUrl: "http://duet.test",
      WebSocket: /** @type {any} */ (ScriptedSocket),
      pingIntervalMs: 0,
      storage: null,
      backoff: { initialDelayMs: 100, maxDelayMs: 100 },
      ...options,
    });
    /** @type {{type: string, detail: any}[]} */
    const events = [];
    for (const type of ["refused", "error", "close", "reconnecting", "created"]) {
      connection.addEventListener(/** @type {any} */ (type), (/** @type {CustomEvent} */ e) => events.push({ type, detail: e.detail }));
    }
    return { connection, events, socket: /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1)) };
  }

  /** The server refuses `socket` in-band: the error frame, then the close of `code`. */
  function refuse(/** @type {ScriptedSocket} */ socket, /** @type {string} */ code, extra = {}) {
    socket.dispatchEvent(new Event("open"));
    socket.receive({ type: "error", code, message: MESSAGES[code] ?? "too many joins from this client; retry later", ...extra });
    const name = CLOSES[code];
    socket.serverClose(CloseCode[name], CloseReason[name]);
  }

  /** Lets the promise of a ticket function settle. */
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  test("a final refusal: `refused` with the code and message, then `close`, and no reconnect", () => {
    for (const code of [RefusalCode.TICKET_REQUIRED, RefusalCode.INVALID_TICKET, RefusalCode.TICKET_WRONG_ROOM, RefusalCode.CONFIG_ERROR, RefusalCode.BANNED]) {
      const { connection, events, socket } = opened();
      const count = ScriptedSocket.opened.length;
      refuse(socket, code);
      const name = CLOSES[code];
      assert.deepEqual(events, [
        { type: "refused", detail: { code, message: MESSAGES[code] } },
        { type: "close", detail: { code: CloseCode[name], reason: CloseReason[name] } },
      ], code);
      assert.equal(connection.state, "closed", code);
      mock.timers.tick(3_600_000);
      assert.equal(ScriptedSocket.opened.length, count, `${code}: no socket after the refusal`);
    }
  });

  test("ticket-expired with a string ticket is final", () => {
    const { connection, events, socket } = opened({ ticket: "the.only.ticket" });
    assert.ok(socket.protocols.includes("duet.ticket.the.only.ticket"));
    const count = ScriptedSocket.opened.length;
    refuse(socket, RefusalCode.TICKET_EXPIRED);
    assert.deepEqual(events.map((e) => e.type), ["refused", "close"]);
    assert.deepEqual(events[1].detail, { code: CloseCode.TICKET_REFUSED, reason: CloseReason.TICKET_REFUSED });
    mock.timers.tick(3_600_000);
    assert.equal(ScriptedSocket.opened.length, count);
    assert.equal(connection.state, "closed");
  });

  test("ticket-expired with a ticket function: one fresh ticket, one more try, then final", async () => {
    const tickets = ["first.ticket.x", "second.ticket.y", "third.ticket.z", "fourth.ticket.w"];
    let asked = 0;
    const { connection, events } = opened({ ticket: () => tickets[asked++] });
    await settle();
    const first = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.ok(first.protocols.includes("duet.ticket.first.ticket.x"));
    refuse(first, RefusalCode.TICKET_EXPIRED);
    assert.deepEqual(events.map((e) => e.type), ["refused", "reconnecting"]);
    assert.equal(events[1].detail.delayMs, 0, "at once: a fresh ticket is all it needs");
    mock.timers.tick(0);
    await settle();
    assert.equal(asked, 2, "the function was asked for a fresh ticket");
    const second = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.notEqual(second, first);
    assert.ok(second.protocols.includes("duet.ticket.second.ticket.y"));
    // The fresh ticket is refused as expired too (a backend clock far off): stop.
    refuse(second, RefusalCode.TICKET_EXPIRED);
    assert.deepEqual(events.map((e) => e.type), ["refused", "reconnecting", "refused", "close"]);
    mock.timers.tick(3_600_000);
    await settle();
    assert.equal(asked, 2, "no third ticket");
    assert.equal(connection.state, "closed");
  });

  test("the one retry with a fresh ticket comes back after every welcome", async () => {
    let asked = 0;
    const { connection, events } = opened({ ticket: () => `ticket.number.${asked++}` });
    await settle();
    refuse(/** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1)), RefusalCode.TICKET_EXPIRED);
    mock.timers.tick(0);
    await settle();
    const joined = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    joined.dispatchEvent(new Event("open"));
    joined.receive(welcome());
    assert.equal(connection.state, "open");
    // Much later the socket drops, and the ticket of the reconnect has expired meanwhile.
    joined.serverClose(1006, "");
    mock.timers.tick(100);
    await settle();
    refuse(/** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1)), RefusalCode.TICKET_EXPIRED);
    assert.equal(events.at(-1)?.type, "reconnecting", "a new try with a fresh ticket");
    mock.timers.tick(0);
    await settle();
    assert.equal(asked, 4);
    assert.notEqual(connection.state, "closed");
    connection.leave();
  });

  test("too-many-joins: `refused` with retryAfter, and the next try exactly retryAfter seconds later", () => {
    const { connection, events, socket } = opened();
    refuse(socket, RefusalCode.TOO_MANY_JOINS, { retryAfter: 60 });
    assert.deepEqual(events[0], {
      type: "refused",
      detail: { code: RefusalCode.TOO_MANY_JOINS, message: "too many joins from this client; retry later", retryAfter: 60 },
    });
    assert.equal(events[1].type, "reconnecting");
    assert.equal(events[1].detail.delayMs, 60_000);
    assert.deepEqual([events[1].detail.code, events[1].detail.reason], [CloseCode.TOO_MANY_JOINS, CloseReason.TOO_MANY_JOINS]);
    const count = ScriptedSocket.opened.length;
    mock.timers.tick(59_999);
    assert.equal(ScriptedSocket.opened.length, count, "not before retryAfter");
    mock.timers.tick(1);
    assert.equal(ScriptedSocket.opened.length, count + 1, "at retryAfter");
    const next = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    next.dispatchEvent(new Event("open"));
    next.receive(welcome());
    assert.equal(connection.state, "open");
    assert.deepEqual(events.filter((e) => e.type === "error"), [], "a refusal is no `error` event");
    connection.leave();
  });

  test("too-many-joins counts against maxReconnectAttempts", () => {
    const { connection, events, socket } = opened({ maxReconnectAttempts: 1 });
    refuse(socket, RefusalCode.TOO_MANY_JOINS, { retryAfter: 10 });
    mock.timers.tick(10_000);
    refuse(/** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1)), RefusalCode.TOO_MANY_JOINS, { retryAfter: 10 });
    assert.deepEqual(events.map((e) => e.type), ["refused", "reconnecting", "refused", "close"]);
    assert.equal(connection.state, "closed");
  });

  test("a refusal's close code without its frame is final too", () => {
    for (const name of ["TICKET_REFUSED", "FORBIDDEN", "MISCONFIGURED"]) {
      const { connection, events, socket } = opened();
      socket.dispatchEvent(new Event("open"));
      socket.serverClose(CloseCode[name], CloseReason[name]);
      assert.deepEqual(events, [{ type: "close", detail: { code: CloseCode[name], reason: CloseReason[name] } }], name);
      assert.equal(connection.state, "closed");
    }
  });
});

describe("ended and removed by the operator", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 }));
  afterEach(() => mock.timers.reset());

  for (const [type, name] of [
    ["ended", "ENDED"],
    ["kicked", "KICKED"],
  ]) {
    test(`${type}: the typed event, then close, no reconnect, and the spent resume token is forgotten`, () => {
      /** @type {Map<string, string>} */
      const stored = new Map();
      const storage = {
        getItem: (/** @type {string} */ k) => stored.get(k) ?? null,
        setItem: (/** @type {string} */ k, /** @type {string} */ v) => void stored.set(k, v),
        removeItem: (/** @type {string} */ k) => void stored.delete(k),
      };
      const { connection, socket } = welcomed(welcome(), { storage });
      assert.ok([...stored.values()].some((v) => v.includes("t".repeat(64))), "the token was kept");
      /** @type {{type: string, detail: any}[]} */
      const events = [];
      for (const t of ["ended", "kicked", "close", "reconnecting"]) {
        connection.addEventListener(/** @type {any} */ (t), (/** @type {CustomEvent} */ e) => events.push({ type: t, detail: e.detail }));
      }
      const count = ScriptedSocket.opened.length;
      socket.receive({ type, room: "r", reason: "time is up" });
      socket.serverClose(CloseCode[name], CloseReason[name]);
      assert.deepEqual(events, [
        { type, detail: { type, room: "r", reason: "time is up" } },
        { type: "close", detail: { code: CloseCode[name], reason: CloseReason[name] } },
      ]);
      assert.equal(connection.state, "closed");
      mock.timers.tick(3_600_000);
      assert.equal(ScriptedSocket.opened.length, count, "no socket after it");
      assert.ok(![...stored.values()].some((v) => v.includes("t".repeat(64))), "the token is forgotten");
    });
  }
});

describe("the key confirmation's clock", () => {
  const ME = "aaaaaaaaaaaaaaaa";
  const PEER = "bbbbbbbbbbbbbbbb";
  const ready = { type: "ready", room: "r", initiator: ME, peers: [ME, PEER] };
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 }));
  afterEach(() => mock.timers.reset());

  /**
   * Waits until `condition` holds, letting Web Crypto's work (on other threads, outside the
   * mocked timers) and the promises after it finish; gives up after 10 s of real time.
   */
  async function until(/** @type {() => boolean} */ condition, what = "the condition") {
    const deadline = performance.now() + 10_000;
    while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(condition(), `waited in vain for ${what}`);
  }

  /** The hellos sent on `socket`. */
  const hellos = (/** @type {ScriptedSocket} */ socket) => socket.sent.map((t) => JSON.parse(t)).filter((f) => f.type === "message" && f.data?.hello === 1);

  /** A keyed connection paired with PEER by a `ready`, its own hello sent; records its e2e events. */
  async function paired(secret = newSecret()) {
    const connection = connect("r", {
      baseUrl: "http://duet.test",
      WebSocket: /** @type {any} */ (ScriptedSocket),
      pingIntervalMs: 0,
      storage: null,
      key: secret,
      backoff: { initialDelayMs: 100, maxDelayMs: 100 },
    });
    /** @type {{type: string, detail: any}[]} */
    const events = [];
    for (const type of ["e2e-error", "e2e-confirmed"]) {
      connection.addEventListener(/** @type {any} */ (type), (/** @type {CustomEvent} */ e) => events.push({ type, detail: e.detail }));
    }
    const socket = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    socket.dispatchEvent(new Event("open"));
    socket.receive(welcome({ clientId: ME }));
    socket.receive({ type: "peer-joined", room: "r", clientId: PEER, resumed: false });
    socket.receive(ready);
    await until(() => hellos(socket).length === 1, "our hello");
    const peerKey = await deriveKey(secret, "r");
    /** The peer's hello to us, as it arrives. */
    const peerHello = async (to = ME, key = peerKey) => ({ type: "message", from: PEER, data: await sealHello(key, "r", PEER, to) });
    return { connection, events, socket, peerHello };
  }

  test(`silence for KEY_CONFIRM_MS (${KEY_CONFIRM_MS} ms) after ready, both connected: key-mismatch`, async () => {
    assert.equal(KEY_CONFIRM_MS, 5000);
    const { connection, events } = await paired();
    mock.timers.tick(KEY_CONFIRM_MS - 1);
    assert.deepEqual(events, []);
    assert.equal(connection.keyConfirmed, null);
    mock.timers.tick(1);
    assert.equal(events.length, 1);
    assert.deepEqual(events[0], { type: "e2e-error", detail: { reason: "key-mismatch", from: PEER, message: events[0].detail.message } });
    assert.equal(connection.keyConfirmed, false);
    connection.leave();
  });

  test("the peer's hello confirms the key, and the clock stops", async () => {
    const { connection, events, socket, peerHello } = await paired();
    socket.receive(await peerHello());
    await until(() => events.length === 1, "the confirmation");
    assert.deepEqual(events, [{ type: "e2e-confirmed", detail: { peer: PEER } }]);
    assert.equal(connection.keyConfirmed, true);
    mock.timers.tick(60_000);
    assert.equal(events.length, 1, "no mismatch after a confirmation");
    connection.leave();
  });

  test("a hello addressed to an id we do not hold says nothing; silence then decides", async () => {
    const { connection, events, socket, peerHello } = await paired();
    let ponged = false;
    connection.addEventListener("pong", () => (ponged = true));
    socket.receive(await peerHello("cccccccccccccccc"));
    socket.receive({ type: "pong" }); // delivered only after the hello before it was judged
    await until(() => ponged, "the pong after the hello");
    assert.deepEqual(events, []);
    assert.equal(connection.keyConfirmed, null);
    mock.timers.tick(KEY_CONFIRM_MS);
    assert.deepEqual(events.map((e) => e.detail.reason), ["key-mismatch"]);
    connection.leave();
  });

  test("peer-away stops the clock; on its return we say hello again, and its hello decides", async () => {
    const { connection, events, socket, peerHello } = await paired();
    socket.receive({ type: "peer-away", room: "r", clientId: PEER });
    mock.timers.tick(60_000);
    assert.deepEqual(events, [], "no verdict from silence while the peer was away");
    socket.receive({ type: "peer-joined", room: "r", clientId: PEER, resumed: true });
    await until(() => hellos(socket).length === 2, "our hello again");
    assert.equal(hellos(socket)[1].data.iv === hellos(socket)[0].data.iv, false, "a fresh IV");
    socket.receive(await peerHello(ME, await deriveKey(newSecret(), "r")));
    await until(() => events.length === 1, "the verdict");
    assert.deepEqual(events.map((e) => e.detail.reason), ["key-mismatch"]);
    assert.equal(connection.keyConfirmed, false);
    connection.leave();
  });

  test("our own drop stops the clock; back in the pairing, we say hello again", async () => {
    const { connection, events, socket, peerHello } = await paired();
    socket.serverClose(1006, "");
    mock.timers.tick(100);
    const back = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.notEqual(back, socket);
    back.dispatchEvent(new Event("open"));
    // Longer than KEY_CONFIRM_MS, shorter than the connect timeout (10 s) of the new socket.
    mock.timers.tick(9_000);
    assert.deepEqual(events, [], "no verdict from silence while we were away");
    back.receive(welcome({ type: "joined", clientId: ME, resumed: true, peers: [PEER] }));
    await until(() => hellos(back).length === 1, "our hello on the new socket");
    back.receive(await peerHello());
    await until(() => events.length === 1, "the confirmation");
    assert.deepEqual(events, [{ type: "e2e-confirmed", detail: { peer: PEER } }]);
    connection.leave();
  });
});

/**
 * A peer connection as far as the watcher sees it: the test sets its ICE and signaling states,
 * and the packets and frames that `getStats()` reports.
 */
class ScriptedPc extends EventTarget {
  iceConnectionState = "connected";
  signalingState = "stable";
  packets = 0;
  frames = 0;
  restarts = 0;
  /** The stats id of the inbound video (a renegotiation can replace it). */
  videoId = "in-v";
  /** Whether a restart's offer is answered at once (signaling back to stable). */
  answers = true;
  async getStats() {
    return new Map([
      ["in-a", { type: "inbound-rtp", id: "in-a", kind: "audio", packetsReceived: this.packets }],
      ["in-v", { type: "inbound-rtp", id: this.videoId, kind: "video", packetsReceived: this.packets, framesDecoded: this.frames }],
      ["t", { type: "transport", id: "t", selectedCandidatePairId: "p" }],
      ["p", { type: "candidate-pair", id: "p", responsesReceived: 0, localCandidateId: "l", remoteCandidateId: "r" }],
      ["l", { type: "local-candidate", id: "l", candidateType: "relay", protocol: "udp", relayProtocol: "tcp" }],
      ["r", { type: "remote-candidate", id: "r", candidateType: "srflx", protocol: "udp" }],
    ]);
  }
  restartIce() {
    this.restarts += 1;
    this.set({ signalingState: "have-local-offer" });
    if (this.answers) this.set({ signalingState: "stable" });
  }
  /** @param {Partial<{iceConnectionState: string, signalingState: string}>} states */
  set(states) {
    for (const [key, value] of Object.entries(states)) {
      /** @type {any} */ (this)[key] = value;
      this.dispatchEvent(new Event(key === "signalingState" ? "signalingstatechange" : "iceconnectionstatechange"));
    }
  }
}

describe("the path watcher", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 }));
  afterEach(() => mock.timers.reset());

  /** A welcomed connection watching a scripted pc whose media flows, with the watcher's events. */
  async function watching(options = {}) {
    const at = welcomed(welcome({ peers: ["fedcba9876543210"] }), { backoff: { initialDelayMs: 1000, maxDelayMs: 1000 } });
    const pc = new ScriptedPc();
    /** @type {[string, any][]} */
    const events = [];
    for (const type of ["media-stalled", "media-flowing", "ice-restart", "renew", "checked"]) {
      at.connection.addEventListener(/** @type {any} */ (type), (e) => events.push([type, e.detail]));
    }
    let renewed = 0;
    const watcher = at.connection.watchPeerConnection(pc, { renew: () => (renewed += 1), ...options });
    // Media flows for a second and a half.
    for (let i = 0; i < 3; i += 1) {
      pc.packets += 50;
      pc.frames += 15;
      mock.timers.tick(500);
      await flush();
    }
    return { ...at, pc, watcher, events, renewed: () => renewed };
  }

  /** Advances the clock in samples of 500 ms, letting each sample's getStats answer. */
  async function advance(ms) {
    for (let t = 0; t < ms; t += 500) {
      mock.timers.tick(500);
      await flush();
    }
  }

  const answer = (/** @type {ScriptedSocket} */ socket) => socket.dispatchEvent(new MessageEvent("message", { data: PONG_TEXT }));

  test("inbound media stopped for 2 s: checks the socket, and restarts ICE once it answered", async () => {
    const { connection, socket, pc, watcher, events } = await watching();
    const pings = socket.sent.filter((t) => t === PING_TEXT).length;
    await advance(1500);
    assert.equal(watcher.stalled, false);
    await advance(500);
    assert.equal(watcher.stalled, true);
    assert.deepEqual(events[0], ["media-stalled", { kind: "all", ms: 2000 }]);
    assert.equal(socket.sent.filter((t) => t === PING_TEXT).length, pings + 1, "a check");
    assert.equal(pc.restarts, 0, "no offer before the socket answered");
    answer(socket);
    await flush();
    assert.equal(pc.restarts, 1);
    assert.deepEqual(
      events.filter(([type]) => type === "ice-restart"),
      [["ice-restart", { reason: "media-stalled", attempt: 1 }]],
    );
    // Media comes back: flowing again, and the stall is forgotten.
    pc.packets += 10;
    await advance(500);
    assert.equal(watcher.stalled, false);
    assert.deepEqual(events.find(([type]) => type === "media-flowing"), ["media-flowing", { kind: "all", stalledMs: 2500 }]);
    connection.leave();
  });

  test("over a socket that does not answer no offer goes out: it resumes at once, then ICE restarts", async () => {
    const { connection, socket, pc } = await watching();
    pc.set({ iceConnectionState: "disconnected" });
    await advance(1000);
    assert.equal(pc.restarts, 0);
    mock.timers.tick(500); // the check's 1.5 s
    mock.timers.tick(0);
    const next = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.notEqual(next, socket);
    await flush();
    assert.equal(pc.restarts, 0, "nothing sent while no socket answered");
    next.receive(welcome({ type: "joined", resumed: true, peers: ["fedcba9876543210"] }));
    await flush();
    assert.equal(pc.restarts, 1, "restarted after the resume");
    connection.leave();
  });

  test("a network change while media flows and the socket answers restarts nothing", async () => {
    const { connection, socket, pc } = await watching();
    connection.dispatchEvent(new CustomEvent("network-change", { detail: { reason: "connection" } }));
    answer(socket);
    for (let i = 0; i < 4; i += 1) {
      pc.packets += 50;
      await advance(500);
    }
    assert.equal(pc.restarts, 0);
    // Nor does a later resume, the doubt being cleared by the media that came.
    connection.reconnect();
    mock.timers.tick(1000);
    /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1)).receive(welcome({ type: "joined", resumed: true, peers: ["fedcba9876543210"] }));
    await flush();
    assert.equal(pc.restarts, 0);
    connection.leave();
  });

  test("a network change whose socket does not answer: ICE restarts after the resume", async () => {
    const { connection, pc } = await watching();
    connection.dispatchEvent(new CustomEvent("network-change", { detail: { reason: "offline" } }));
    mock.timers.tick(1500);
    mock.timers.tick(0);
    /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1)).receive(welcome({ type: "joined", resumed: true, peers: ["fedcba9876543210"] }));
    await flush();
    assert.equal(pc.restarts, 1);
    connection.leave();
  });

  test("a socket dropped while media flows resumes without an ICE restart", async () => {
    const { connection, pc } = await watching();
    connection.reconnect();
    mock.timers.tick(1000);
    const next = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    next.receive(welcome({ type: "joined", resumed: true, peers: ["fedcba9876543210"] }));
    pc.packets += 10;
    await advance(500);
    assert.equal(pc.restarts, 0);
    connection.leave();
  });

  test("ICE back to connected with media flowing before the socket answered: no restart", async () => {
    const { connection, socket, pc } = await watching();
    pc.set({ iceConnectionState: "disconnected" });
    pc.set({ iceConnectionState: "connected" });
    pc.packets += 10;
    await advance(500);
    answer(socket);
    await flush();
    assert.equal(pc.restarts, 0);
    connection.leave();
  });

  test("after two negotiated restarts that brought nothing back, renew", async () => {
    const { connection, socket, pc, events, renewed } = await watching({ restartTimeoutMs: 3000 });
    await advance(2000); // stalled
    answer(socket);
    await flush();
    assert.equal(pc.restarts, 1);
    for (const expected of [2, 2]) {
      await advance(3000); // the restart timed out: doubt again, check, restart
      answer(socket);
      await flush();
      assert.equal(pc.restarts, expected);
    }
    assert.equal(renewed(), 1, "the third doubt renews instead of restarting");
    assert.deepEqual(events.find(([type]) => type === "renew"), ["renew", { restarts: 2 }]);
    // Giving up is reported to the server once (docs/protocol.md, "Reports").
    const failed = socket.sent.filter((t) => t.includes('"report"')).map((t) => JSON.parse(t));
    assert.equal(failed.length, 1);
    assert.deepEqual({ ...failed[0], connectMs: typeof failed[0].connectMs }, { type: "report", outcome: "failed", connectMs: "number", iceRestarts: 2 });
    connection.leave();
  });

  test("the first connected path is reported to the server once, without an address", async () => {
    const at = welcomed(welcome({ peers: ["fedcba9876543210"] }));
    const pc = new ScriptedPc();
    pc.iceConnectionState = "checking";
    at.connection.watchPeerConnection(pc, { renew: () => {} });
    const reports = () => at.socket.sent.filter((t) => t.includes('"report"'));
    mock.timers.tick(1200);
    pc.set({ iceConnectionState: "connected" });
    await flush();
    // The scripted pair: a local relay candidate reached over TCP, a server-reflexive remote.
    assert.deepEqual(reports(), ['{"type":"report","outcome":"connected","path":"relay","transport":"tcp","connectMs":1200,"iceRestarts":0}']);
    pc.set({ iceConnectionState: "disconnected" });
    pc.set({ iceConnectionState: "connected" });
    await flush();
    assert.equal(reports().length, 1, "once per watcher");
    at.connection.leave();
  });

  test("a restart whose offer was never answered does not count as failed", async () => {
    const { connection, socket, pc, renewed } = await watching({ restartTimeoutMs: 3000 });
    pc.answers = false;
    await advance(2000);
    answer(socket);
    await flush();
    assert.equal(pc.restarts, 1);
    for (let i = 0; i < 4; i += 1) {
      await advance(3000);
      answer(socket);
      await flush();
    }
    assert.equal(pc.restarts, 1, "the offer is out: no second restart");
    assert.equal(renewed(), 0);
    connection.leave();
  });

  test("media back while signaling reconnects: it dials at once", async () => {
    const { connection, socket, pc } = await watching();
    await advance(2000); // stalled, checking
    mock.timers.tick(1500); // no answer: dropped, a new socket dials
    mock.timers.tick(0);
    const dialing = /** @type {ScriptedSocket} */ (ScriptedSocket.opened.at(-1));
    assert.notEqual(dialing, socket);
    await advance(2000); // the new socket hangs (a link that drops everything)
    pc.packets += 10;
    await advance(500); // media flows: the network is back
    mock.timers.tick(0);
    assert.notEqual(ScriptedSocket.opened.at(-1), dialing, "the hung attempt was replaced at once");
    connection.leave();
  });

  test("a stats object replaced by a new one, counting from 0 again, still counts as media arriving", async () => {
    const { connection, pc, watcher, events } = await watching();
    pc.videoId = "in-v-2";
    const before = pc.frames;
    pc.frames = 1; // far below the old object's count
    await advance(500);
    for (let i = 0; i < 6; i += 1) {
      pc.packets += 50;
      pc.frames += 5;
      await advance(500);
    }
    assert.ok(before > pc.frames, "the new object never reached the old one's count");
    assert.equal(watcher.videoStalled, false);
    assert.deepEqual(events.filter(([type]) => type === "media-stalled"), []);
    connection.leave();
  });

  test("report(): the selected path, the time ICE took to connect, the stalls and restarts", async () => {
    const at = welcomed(welcome({ peers: ["fedcba9876543210"] }));
    const pc = new ScriptedPc();
    pc.iceConnectionState = "checking";
    const watcher = at.connection.watchPeerConnection(pc);
    mock.timers.tick(1234);
    pc.set({ iceConnectionState: "connected" });
    assert.deepEqual(await watcher.report(), {
      path: "relay",
      local: "relay",
      remote: "srflx",
      protocol: "udp",
      relayProtocol: "tcp",
      connectMs: 1234,
      iceRestarts: 0,
      stalls: 0,
    });
    at.connection.leave();
  });

  test("remote video that stops decoding while audio flows is a video stall, not a broken path", async () => {
    const { connection, socket, pc, watcher, events } = await watching();
    const pings = socket.sent.filter((t) => t === PING_TEXT).length;
    for (let i = 0; i < 6; i += 1) {
      pc.packets += 50;
      await advance(500);
    }
    assert.equal(watcher.videoStalled, true);
    assert.equal(watcher.stalled, false);
    assert.deepEqual(events[0], ["media-stalled", { kind: "video", ms: 2500 }]);
    assert.equal(socket.sent.filter((t) => t === PING_TEXT).length, pings, "no check");
    assert.equal(pc.restarts, 0);
    connection.leave();
  });

  test("expectsMedia: silence the peer announced is no stall, until its media flowed again", async () => {
    let sends = true;
    const { connection, socket, pc, watcher, events } = await watching({ expectsMedia: () => sends });
    const pings = socket.sent.filter((t) => t === PING_TEXT).length;
    sends = false; // the peer stopped sending on purpose
    await advance(6000);
    assert.deepEqual([watcher.stalled, watcher.videoStalled], [false, false]);
    assert.deepEqual(events, []);
    assert.equal(socket.sent.filter((t) => t === PING_TEXT).length, pings, "no check");
    assert.equal(pc.restarts, 0);
    // It sends again, and then stops without saying so: that is a stall.
    sends = true;
    pc.packets += 50;
    pc.frames += 15;
    await advance(500);
    await advance(2000);
    assert.equal(watcher.stalled, true);
    assert.deepEqual(events[0], ["media-stalled", { kind: "all", ms: 2000 }]);
    connection.leave();
  });
});
