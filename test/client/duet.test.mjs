// The client library's frame limit, in Node with a scripted WebSocket: `send()` checks the
// limit the server's welcome frame announces (`maxMessageBytes`), and the default (or the
// `maxMessageBytes` option) only until then or with a server that does not announce one.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { connect, DEFAULT_MAX_MESSAGE_BYTES } from "../../public/js/duet.js";

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
