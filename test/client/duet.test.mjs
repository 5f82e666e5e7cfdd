// The client library in Node with a scripted WebSocket:
// - the frame limit: `send()` checks the limit the server's welcome frame announces
//   (`maxMessageBytes`), and the default (or the `maxMessageBytes` option) only until then or
//   with a server that does not announce one;
// - the ICE server refresh: when it asks for fresh credentials (80% of the lifetime, no sooner
//   than MIN_ICE_REFRESH_MS), re-scheduled by every expiry, stopped by drops and leave(), on
//   node's mock clock and timers;
// - the socket check: a ping at once, a resume without backoff when it is not answered, checks
//   on the browser's network events, the connect timeout;
// - the path watcher, on a scripted peer connection: a stall is noticed, ICE restarts only over
//   a socket that answered since, and after a resume that followed trouble; a plain drop
//   restarts nothing; failed restarts lead to `renew`.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import { connect, DEFAULT_MAX_MESSAGE_BYTES, ICE_SERVERS_TEXT, MIN_ICE_REFRESH_MS, PING_TEXT, PONG_TEXT } from "../../public/js/duet.js";

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
    connection.leave();
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
});
