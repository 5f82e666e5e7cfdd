// The browser app's pure modules, run in Node with exact values (no browser, no server).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backoffDelay } from "../../public/js/backoff.js";
import { isRoomName, newRoomName, parseRoomInput, ROOM_PATTERN, roomFromPath } from "../../public/js/rooms.js";
import { deriveStatus } from "../../public/js/status.js";
import { chunk, CHUNK_BYTES, MAX_PHOTO_BYTES, PhotoReceiver } from "../../public/js/transfer.js";
import { ROOM_NAME, socketUrl } from "../../public/js/duet.js";

describe("backoff", () => {
  test("doubles from the initial delay up to the cap, with half of each delay random", () => {
    const low = () => 0;
    const high = () => 1;
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, {}, low)), [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, {}, high)), [500, 1000, 2000, 4000, 8000, 10000, 10000]);
    assert.equal(backoffDelay(0, { initialDelayMs: 100 }, () => 0.5), 75);
    assert.equal(backoffDelay(3, { initialDelayMs: 100, factor: 3, maxDelayMs: 60_000 }, high), 2700);
  });
});

describe("room names", () => {
  test("new names are 20 random symbols (100 bits) in four groups and valid room names", () => {
    const names = new Set(Array.from({ length: 200 }, () => newRoomName()));
    assert.equal(names.size, 200);
    for (const name of names) {
      assert.match(name, /^[a-km-np-z2-9]{5}-[a-km-np-z2-9]{5}-[a-km-np-z2-9]{5}-[a-km-np-z2-9]{5}$/);
      assert.ok(isRoomName(name));
    }
  });

  test("the start page's pattern is the client library's", () => {
    assert.equal(ROOM_PATTERN.source, ROOM_NAME.source);
    assert.equal(ROOM_PATTERN.flags, ROOM_NAME.flags);
  });

  test("paths and typed input", () => {
    assert.equal(roomFromPath("/"), null);
    assert.equal(roomFromPath("/abc_D-9"), "abc_D-9");
    assert.equal(roomFromPath("/a/b"), null);
    assert.equal(roomFromPath("/favicon.ico"), null);
    assert.equal(roomFromPath(`/${"a".repeat(65)}`), null);
    assert.equal(parseRoomInput("  my-room "), "my-room");
    assert.equal(parseRoomInput("https://duet.example/k7dmq-x3hva-pe9tw?relay=1"), "k7dmq-x3hva-pe9tw");
    assert.equal(parseRoomInput("not a room!"), null);
    assert.equal(parseRoomInput("https://duet.example/"), null);
  });
});

describe("status", () => {
  const base = { phase: "in-room", signaling: "open", peer: "present", media: "connected" };
  test("one word from the facts, most important first", () => {
    assert.equal(deriveStatus({ ...base, phase: "starting" }), "starting");
    assert.equal(deriveStatus({ ...base, phase: "full" }), "full");
    assert.equal(deriveStatus({ ...base, phase: "ended", signaling: "closed" }), "ended");
    assert.equal(deriveStatus({ ...base, signaling: "reconnecting", peer: "away" }), "reconnecting");
    assert.equal(deriveStatus({ ...base, peer: "away" }), "peer-reconnecting");
    assert.equal(deriveStatus({ ...base, peer: "left", media: null }), "peer-left");
    assert.equal(deriveStatus({ ...base, peer: "none", media: null }), "waiting");
    assert.equal(deriveStatus({ ...base, media: "new" }), "connecting");
    assert.equal(deriveStatus({ ...base, media: "failed" }), "connecting");
    assert.equal(deriveStatus(base), "connected");
  });

  test("connected only while media arrives and the peer's video decodes", () => {
    assert.equal(deriveStatus({ ...base, inbound: "flowing", video: "flowing", wasConnected: true }), "connected");
    // ICE still says connected, but nothing arrives: the path broke.
    assert.equal(deriveStatus({ ...base, inbound: "stalled", wasConnected: true }), "interrupted");
    assert.equal(deriveStatus({ ...base, media: "disconnected", wasConnected: true }), "interrupted");
    assert.equal(deriveStatus({ ...base, media: "failed", wasConnected: true }), "interrupted");
    assert.equal(deriveStatus({ ...base, media: "connecting", wasConnected: true }), "interrupted");
    assert.equal(deriveStatus({ ...base, media: "failed", wasConnected: false }), "connecting");
    // Sound arrives, pictures do not.
    assert.equal(deriveStatus({ ...base, video: "stalled", wasConnected: true }), "video-stopped");
    // Signaling and the peer's presence come first.
    assert.equal(deriveStatus({ ...base, inbound: "stalled", signaling: "reconnecting", wasConnected: true }), "reconnecting");
    assert.equal(deriveStatus({ ...base, inbound: "stalled", peer: "away", wasConnected: true }), "peer-reconnecting");
  });
});

describe("photo transfer", () => {
  test("chunks cover the bytes in order", () => {
    const bytes = Uint8Array.from({ length: 40_000 }, (_, i) => i % 251);
    const parts = chunk(bytes);
    assert.deepEqual(parts.map((p) => p.length), [CHUNK_BYTES, CHUNK_BYTES, 40_000 - 2 * CHUNK_BYTES]);
    assert.deepEqual(Buffer.concat(parts), Buffer.from(bytes));
    assert.deepEqual(chunk(new Uint8Array(0)), []);
  });

  test("the receiver rebuilds a photo from its header and chunks", async () => {
    const bytes = Uint8Array.from({ length: 20_000 }, (_, i) => i % 7);
    const receiver = new PhotoReceiver();
    assert.equal(receiver.begin({ kind: "photo", id: "p1", size: bytes.length, type: "image/jpeg" }), true);
    const [first, second] = chunk(bytes);
    assert.equal(receiver.push(first.slice().buffer), null);
    const done = receiver.push(second.slice().buffer);
    assert.equal(done?.id, "p1");
    assert.equal(done?.blob.type, "image/jpeg");
    assert.deepEqual(new Uint8Array(await done.blob.arrayBuffer()), bytes);
    assert.equal(receiver.push(first.slice().buffer), null, "chunks without a header are dropped");
  });

  test("the receiver refuses what is not a sane photo", () => {
    const receiver = new PhotoReceiver();
    assert.equal(receiver.begin({ id: "x", size: 10, type: "text/html" }), false);
    assert.equal(receiver.push(new Uint8Array(10)), null);
    assert.equal(receiver.begin({ id: "x", size: MAX_PHOTO_BYTES + 1, type: "image/png" }), false);
    assert.equal(receiver.begin({ id: "x", size: -1, type: "image/png" }), false);
    assert.equal(receiver.begin({ id: 7, size: 10, type: "image/png" }), false);
    assert.equal(receiver.begin({ id: "x", size: 4, type: "image/png" }), true);
    assert.equal(receiver.push(new Uint8Array(5)), null, "more bytes than announced");
    assert.equal(receiver.push(new Uint8Array(4)), null, "and the photo is abandoned");
  });
});

describe("socket URLs", () => {
  test("http(s) and ws(s) base URLs", () => {
    assert.equal(socketUrl("https://duet.example", "r1").href, "wss://duet.example/ws/r1");
    assert.equal(socketUrl("http://127.0.0.1:8787/some/page", "r1").href, "ws://127.0.0.1:8787/ws/r1");
    assert.equal(socketUrl("wss://duet.example", "r1").href, "wss://duet.example/ws/r1");
    assert.throws(() => socketUrl("ftp://duet.example", "r1"), TypeError);
    assert.throws(() => socketUrl(undefined, "r1"), /baseUrl is required/);
  });
});
