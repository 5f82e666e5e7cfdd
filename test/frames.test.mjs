// Refused client frames with the default configuration: each error code, binary frames and the
// MAX_MESSAGE_BYTES limit (65536). A refused frame is answered with an error, dropped, and the
// socket stays open.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  DEFAULT_MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES,
  ErrorCode,
  LEAVE_TEXT,
  PING_TEXT,
  expectError,
  expectPong,
  expectQuiet,
  nextText,
  openPair,
  rawField,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

/**
 * A message frame of exactly `bytes` UTF-8 bytes whose data is a string of `char` repeated
 * (`char` may be multi-byte), padded with ASCII to hit the size exactly.
 */
function messageOfBytes(bytes, char = "x") {
  const shell = Buffer.byteLength('{"type":"message","data":""}');
  const width = Buffer.byteLength(char);
  const count = Math.floor((bytes - shell) / width);
  const text = `{"type":"message","data":"${char.repeat(count)}${"y".repeat(bytes - shell - count * width)}"}`;
  assert.equal(Buffer.byteLength(text), bytes);
  return text;
}

describe("refused frames", () => {
  let server;
  let pair;
  before(async () => {
    server = await startServer();
    pair = await openPair(server);
  });
  after(async () => {
    terminateAll(pair?.a.ws, pair?.b.ws);
    await server?.dispose();
  });

  /** Sends `frame` from a, expects error `code` on a and nothing at all on b. */
  async function refused(frame, code, options) {
    const { a, b } = pair;
    a.ws.send(frame, options);
    await expectError(a.ws, code);
    await expectQuiet(a.ws);
    await expectQuiet(b.ws);
  }

  test("bad-message: not JSON, not an object, missing or unknown type, message without data", async () => {
    const bad = [
      "",
      "not json",
      "{",
      '{"type":"message","data":1',
      "[]",
      '["message"]',
      "42",
      "null",
      "true",
      '"message"',
      "{}",
      '{"data":1}',
      '{"type":7}',
      '{"type":null}',
      '{"type":["ping"]}',
      '{"type":"shout"}',
      '{"type":"Message","data":1}',
      '{"type":"PING"}',
      '{"type":""}',
      '{"type":"message"}',
      '{"type":"message","Data":1}',
    ];
    for (const frame of bad) {
      await refused(frame, ErrorCode.BAD_MESSAGE);
    }
  });

  test("unsupported-binary: any binary frame, whatever its bytes", async () => {
    const frames = [
      Buffer.alloc(0),
      Buffer.from([0, 1, 2, 255]),
      Buffer.from('{"type":"message","data":"binary"}'),
      Buffer.from(PING_TEXT),
      Buffer.from(LEAVE_TEXT),
    ];
    for (const frame of frames) {
      await refused(frame, ErrorCode.UNSUPPORTED_BINARY, { binary: true });
    }
  });

  test("a binary frame over the size limit is still unsupported-binary", async () => {
    await refused(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x61), ErrorCode.UNSUPPORTED_BINARY, { binary: true });
  });

  test("a frame of exactly MAX_MESSAGE_BYTES bytes is accepted and relayed unchanged", async () => {
    const { a, b } = pair;
    const frame = messageOfBytes(MAX_MESSAGE_BYTES);
    a.ws.send(frame);
    const text = await nextText(b.ws);
    assert.equal(rawField(text, "data"), rawField(frame, "data"));
    assert.deepStrictEqual(JSON.parse(text), { type: "message", from: a.id, data: JSON.parse(frame).data });
    await expectQuiet(a.ws);
  });

  test("too-large: MAX_MESSAGE_BYTES + 1 bytes", async () => {
    await refused(messageOfBytes(MAX_MESSAGE_BYTES + 1), ErrorCode.TOO_LARGE);
  });

  test("the limit counts UTF-8 bytes, not characters", async () => {
    // 3-byte characters: well under the limit in UTF-16 code units, one byte over in UTF-8.
    const over = messageOfBytes(MAX_MESSAGE_BYTES + 1, "€");
    assert.ok(over.length < MAX_MESSAGE_BYTES);
    await refused(over, ErrorCode.TOO_LARGE);
    const { a, b } = pair;
    const fits = messageOfBytes(MAX_MESSAGE_BYTES, "€");
    a.ws.send(fits);
    assert.equal(rawField(await nextText(b.ws), "data"), rawField(fits, "data"));
  });

  test("size is checked before syntax: oversize garbage is too-large, not bad-message", async () => {
    await refused("x".repeat(MAX_MESSAGE_BYTES + 1), ErrorCode.TOO_LARGE);
  });

  test("the socket stays usable after refused frames", async () => {
    const { a, b } = pair;
    a.ws.send("not json");
    await expectError(a.ws, ErrorCode.BAD_MESSAGE);
    a.ws.send('{"type":"message","data":"after"}');
    assert.equal(rawField(await nextText(b.ws), "data"), '"after"');
    await expectPong(b.ws, '{"type":"ping","x":1}');
  });
});
