// Configuration through [vars]: configured values reach the clients and limits, and invalid
// values are reported loudly in the logs and replaced by the defaults, never failing a request.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CRATE_VERSION,
  checkWelcome,
  connect,
  expectError,
  expectFrame,
  expectQuiet,
  nextText,
  openFirst,
  openPair,
  rawField,
  roomName,
  send,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

describe("configured values", () => {
  const ICE_SERVERS = '[{"urls":["turn:turn.example:3478?transport=udp","turns:turn.example:5349"],"username":"u","credential":"c"},{"urls":"stun:stun.example:3478"}]';
  let server;
  before(async () => {
    server = await startServer({ vars: { ICE_SERVERS, MAX_MESSAGE_BYTES: "64" } });
  });
  after(() => server?.dispose());

  test("ICE_SERVERS reaches the welcome frames byte for byte", async () => {
    const room = roomName("ice");
    const iceServers = JSON.parse(ICE_SERVERS);
    const a = await connect(server.ws(`/ws/${room}`));
    const created = await nextText(a);
    assert.equal(rawField(created, "iceServers"), ICE_SERVERS);
    const first = checkWelcome(JSON.parse(created), { type: "created", room, peers: [], iceServers, maxMessageBytes: 64 });
    const b = await connect(server.ws(`/ws/${room}`));
    const joined = await nextText(b);
    assert.equal(rawField(joined, "iceServers"), ICE_SERVERS);
    checkWelcome(JSON.parse(joined), { type: "joined", room, peers: [first.id], iceServers, maxMessageBytes: 64 });
    terminateAll(a, b);
  });

  test("MAX_MESSAGE_BYTES=64: 64 bytes pass, 65 are too-large", async () => {
    const { a, b } = await openPair(server, { iceServers: JSON.parse(ICE_SERVERS), maxMessageBytes: 64 });
    const fits = `{"type":"message","data":"${"x".repeat(64 - 28)}"}`;
    assert.equal(Buffer.byteLength(fits), 64);
    a.ws.send(fits);
    assert.equal(rawField(await nextText(b.ws), "data"), rawField(fits, "data"));
    a.ws.send(fits.replace('"x', '"xx'));
    await expectError(a.ws, "too-large");
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });
});

describe("invalid values", () => {
  const INVALID = {
    ALLOWED_ORIGINS: "https://ok.example, not an origin",
    ICE_SERVERS: '{"urls":"stun:not-an-array"}',
    MAX_MESSAGE_BYTES: "lots",
    RATE_LIMIT_BURST: "0",
    RATE_LIMIT_PER_SEC: "-5",
    RESUME_GRACE_MS: "-1",
    STALE_AFTER_MS: "soon",
  };
  let server;
  before(async () => {
    server = await startServer({ vars: INVALID });
  });
  after(() => server?.dispose());

  test("requests still work with the defaults", async () => {
    const health = await fetch(server.http("/healthz"));
    assert.equal(health.status, 200);
    assert.deepStrictEqual(await health.json(), { status: "ok", version: CRATE_VERSION });
    // ALLOWED_ORIGINS falls back to *, ICE_SERVERS to the default (checked by openPair).
    const { room, a, b } = await openPair(server);
    const other = await openFirst(server, roomName("origin"), { origin: "https://anyone.example" });
    // MAX_MESSAGE_BYTES falls back to 65536.
    const big = `{"type":"message","data":"${"x".repeat(65536 - 28)}"}`;
    a.ws.send(big);
    assert.equal(rawField(await nextText(b.ws), "data"), rawField(big, "data"));
    a.ws.send(big.replace('"x', '"xx'));
    await expectError(a.ws, "too-large");
    // RATE_LIMIT_BURST falls back to 100: with the two frames above, 100 frames in a row pass.
    for (let n = 0; n < 98; n++) send(a.ws, { type: "message", data: n });
    for (let n = 0; n < 98; n++) await expectFrame(b.ws, { type: "message", from: a.id, data: n });
    // RESUME_GRACE_MS falls back to 15000: a drop is away, not closed.
    b.ws.terminate();
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    terminateAll(a.ws, other.ws);
  });

  test("each invalid value is reported in the logs", async () => {
    for (const name of Object.keys(INVALID)) {
      const line = await server.waitForLine((l) => l.json?.event === "config-error" && l.json.message?.includes(name));
      assert.equal(line.stream, "stderr", `${name} should be reported as an error`);
    }
  });
});
