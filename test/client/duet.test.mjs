// The client library in Node with a scripted WebSocket:
// - the frame limit: `send()` checks the limit the server's welcome frame announces
//   (`maxMessageBytes`), and the default (or the `maxMessageBytes` option) only until then or
//   with a server that does not announce one;
// - the ICE server refresh: when it asks for fresh credentials (80% of the lifetime, no sooner
//   than MIN_ICE_REFRESH_MS), re-scheduled by every expiry, stopped by drops and leave(), on
//   node's mock clock and timers.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import { connect, DEFAULT_MAX_MESSAGE_BYTES, ICE_SERVERS_TEXT, MIN_ICE_REFRESH_MS } from "../../public/js/duet.js";

/** A WebSocket that opens at once and records what is sent; the test plays the server. */
class ScriptedSocket extends EventTarget {
  /** @type {ScriptedSocket[]} */
  static opened = [];
  readyState = 1;
  /** @type {string[]} */
  sent = [];
  /** @param {string} url */
  constructor(url) {
    super();
    this.url = url;
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
