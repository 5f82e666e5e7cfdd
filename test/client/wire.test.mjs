// The wire constants of the JavaScript side, checked against the Rust crate's own definitions:
// `cargo run --example wire_constants` prints them from src/protocol.rs, src/route.rs and
// src/config.rs. The client library (public/js/duet.js) and the app must match them, and the
// test helpers must use the library's constants rather than copies.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { before, describe, test } from "node:test";
import * as duet from "../../public/js/duet.js";
import { isRoomName } from "../../public/js/rooms.js";
import * as common from "../helpers/common.mjs";
import * as miniflare from "../helpers/miniflare.mjs";
import * as browser from "../helpers/browser.mjs";

/** Rust's `RoomFull` is JavaScript's `ROOM_FULL`. */
const constantName = (/** @type {string} */ rust) => rust.replace(/(?<=[a-z0-9])(?=[A-Z])/g, "_").toUpperCase();

describe("wire constants match src/protocol.rs", () => {
  /** @type {any} */
  let rust;
  before(() => {
    const json = execFileSync("cargo", ["run", "--quiet", "--example", "wire_constants"], { cwd: common.ROOT, encoding: "utf8" });
    rust = JSON.parse(json);
  });

  test("close codes and their reasons; the client's own code is none of the server's", () => {
    const serverNames = rust.closeCodes.map((/** @type {any} */ c) => constantName(c.name));
    for (const { name, code, reason } of rust.closeCodes) {
      assert.equal(duet.CloseCode[constantName(name)], code, name);
      assert.equal(duet.CloseReason[constantName(name)], reason, name);
    }
    const clientOnly = Object.keys(duet.CloseCode).filter((name) => !serverNames.includes(name));
    assert.deepEqual(clientOnly, ["CLIENT_DROP"]);
    assert.deepEqual(Object.keys(duet.CloseReason), Object.keys(duet.CloseCode));
    assert.ok(!rust.closeCodes.some((/** @type {any} */ c) => c.code === duet.CloseCode.CLIENT_DROP));
  });

  test("error codes", () => {
    const expected = Object.fromEntries(rust.errorCodes.map((/** @type {any} */ c) => [constantName(c.name), c.code]));
    assert.deepEqual({ ...duet.ErrorCode }, expected);
  });

  test("refusal codes, each closed with a close code of the client's, retryAfter exactly for too-many-joins", () => {
    const expected = Object.fromEntries(rust.refusals.map((/** @type {any} */ r) => [constantName(r.name), r.code]));
    assert.deepEqual({ ...duet.RefusalCode }, expected);
    const codes = Object.values(duet.CloseCode);
    for (const { code, close, retryAfter } of rust.refusals) {
      assert.ok(codes.includes(close), `${code} closes with ${close}`);
      assert.equal(retryAfter !== null, code === duet.RefusalCode.TOO_MANY_JOINS, code);
    }
    // Refusals and the errors of frames on a joined socket never share a code.
    for (const code of Object.values(duet.RefusalCode)) assert.ok(!Object.values(duet.ErrorCode).includes(/** @type {any} */ (code)), code);
  });

  test("server frame types: each one an event of the client", () => {
    assert.deepEqual([...duet.FRAME_TYPES].sort(), [...rust.serverFrameTypes].sort());
  });

  test("the ping and pong texts, the protocol version, the room size, the default frame limit", () => {
    assert.equal(duet.PING_TEXT, rust.pingText);
    assert.equal(duet.PONG_TEXT, rust.pongText);
    assert.equal(duet.PROTOCOL_VERSION, rust.version);
    assert.equal(duet.MAX_PEERS, rust.maxPeers);
    assert.equal(duet.DEFAULT_MAX_MESSAGE_BYTES, rust.maxMessageBytes);
    assert.deepEqual(common.DEFAULT_ICE_SERVERS, rust.defaultIceServers);
  });

  test("room names: the same characters and lengths as route::is_room_name", () => {
    const { minLen, maxLen, chars } = rust.roomName;
    for (let point = 0; point <= 0x2ff; point++) {
      const char = String.fromCodePoint(point);
      const valid = chars.includes(char);
      assert.equal(duet.ROOM_NAME.test(char), valid, `U+${point.toString(16)}`);
      assert.equal(isRoomName(char), valid, `U+${point.toString(16)}`);
    }
    for (const [length, valid] of [[minLen - 1, false], [minLen, true], [maxLen, true], [maxLen + 1, false]]) {
      assert.equal(duet.ROOM_NAME.test("a".repeat(length)), valid, `${length} characters`);
      assert.equal(isRoomName("a".repeat(length)), valid, `${length} characters`);
    }
  });

  test("the test helpers use the library's constants, not copies", () => {
    const names = ["CloseCode", "CloseReason", "ErrorCode", "LEAVE_TEXT", "PING_TEXT", "PONG_TEXT", "PROTOCOL_VERSION", "MAX_PEERS", "DEFAULT_MAX_MESSAGE_BYTES"];
    for (const helpers of [common, miniflare, browser]) {
      for (const name of names) assert.equal(/** @type {any} */ (helpers)[name], /** @type {any} */ (duet)[name], name);
    }
  });
});
