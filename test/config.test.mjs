// Configuration through [vars]: configured values reach the clients and limits, and invalid
// values are reported loudly in the logs and replaced by the defaults, never failing a request;
// except the settings that restrict access, which fail closed: an invalid ALLOWED_ORIGINS
// allows only the Worker's own origin, and a JOIN_SECRET without a key or an unknown
// ROOM_JURISDICTION refuses every socket with 503 config-error.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CRATE_VERSION,
  DEFAULT_MAX_MESSAGE_BYTES,
  ErrorCode,
  checkWelcome,
  closed,
  connect,
  expectError,
  expectFrame,
  expectPong,
  expectQuiet,
  joinEvicting,
  joinFull,
  nextFrame,
  nextFrameFrom,
  nextText,
  openFirst,
  openPair,
  rawField,
  refusedUpgrade,
  roomName,
  send,
  serverClose,
  sleep,
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
    await expectError(a.ws, ErrorCode.TOO_LARGE);
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });
});

/**
 * Sends `count` messages from `a` in a row and returns how many the rate limit let through to
 * `b`; each of the others must have been refused with rate-limited.
 */
async function burst(a, b, count) {
  for (let n = 0; n < count; n++) send(a.ws, { type: "message", data: n });
  let passed = 0;
  for (let n = 0; n < count; n++) {
    const { index, frame } = await nextFrameFrom([a.ws, b.ws]);
    if (index === 1) {
      assert.deepStrictEqual(frame, { type: "message", from: a.id, data: frame.data });
      passed += 1;
    } else {
      assert.equal(frame.code, ErrorCode.RATE_LIMITED);
    }
  }
  return passed;
}

describe("invalid values", () => {
  const INVALID = {
    ALLOWED_ORIGINS: "https://ok.example, not an origin",
    ICE_SERVERS: '{"urls":"stun:not-an-array"}',
    MAX_MESSAGE_BYTES: "lots",
    RATE_LIMIT_BURST: "0",
    RATE_LIMIT_PER_SEC: "-5",
    RESUME_GRACE_MS: "-1",
    STALE_AFTER_MS: "soon",
    // Without WEBHOOK_SECRET: webhooks stay off.
    WEBHOOK_URL: "http://127.0.0.1:9/hooks",
  };
  let server;
  before(async () => {
    server = await startServer({ vars: INVALID });
  });
  after(() => server?.dispose());

  test("requests still work; ICE_SERVERS and MAX_MESSAGE_BYTES fall back to STUN and 65536", async () => {
    const health = await fetch(server.http("/healthz"));
    assert.equal(health.status, 200);
    assert.deepStrictEqual(await health.json(), { status: "ok", version: CRATE_VERSION });
    // ICE_SERVERS falls back to the default list (checked by openPair).
    const { a, b } = await openPair(server);
    const big = `{"type":"message","data":"${"x".repeat(DEFAULT_MAX_MESSAGE_BYTES - 28)}"}`;
    a.ws.send(big);
    assert.equal(rawField(await nextText(b.ws), "data"), rawField(big, "data"));
    a.ws.send(big.replace('"x', '"xx'));
    await expectError(a.ws, ErrorCode.TOO_LARGE);
    terminateAll(a.ws, b.ws);
  });

  test("an invalid ALLOWED_ORIGINS fails closed: no origin but the Worker's own, never *", async () => {
    // Not even the list's one valid item: the list as a whole is unusable.
    for (const origin of ["https://anyone.example", "https://ok.example"]) {
      const answer = await refusedUpgrade(server.ws(`/ws/${roomName("origin")}`), { origin });
      assert.equal(answer.status, 403, origin);
      assert.equal(answer.body.error.code, "forbidden-origin");
    }
    const own = await openFirst(server, roomName("origin"), { origin: server.origin });
    terminateAll(own.ws);
    const line = await server.waitForLine((l) => l.json?.event === "config-error" && l.json.message?.includes("ALLOWED_ORIGINS"));
    assert.match(line.json.message, /; only the Worker's own origin may open sockets$/);
  });

  test("RATE_LIMIT_BURST and RATE_LIMIT_PER_SEC fall back to 100 and 20 per second", async () => {
    const { a, b } = await openPair(server);
    // A fresh socket's bucket is full: 100 tokens, plus what refills while the burst is handled.
    let started = performance.now();
    const first = await burst(a, b, 120);
    let refill = (20 * (performance.now() - started)) / 1000;
    assert.ok(first >= 100 && first <= 100 + Math.ceil(refill), `${first} of 120 passed; 100 + ${refill.toFixed(1)} refilled may`);
    // An empty bucket refills 20 tokens per second. (Time passing is what is tested here.)
    const emptied = performance.now();
    await sleep(1000);
    started = performance.now();
    const second = await burst(a, b, 40);
    refill = (20 * (performance.now() - emptied)) / 1000;
    const atLeast = Math.floor((20 * (started - emptied)) / 1000) - 1;
    assert.ok(second >= atLeast && second <= Math.ceil(refill) + 1, `${second} of 40 passed after ${Math.round(started - emptied)} ms`);
    terminateAll(a.ws, b.ws);
  });

  test("RESUME_GRACE_MS and STALE_AFTER_MS fall back to 15000 and 60000", { timeout: 90_000 }, async () => {
    const grace = async () => {
      const { room, a, b } = await openPair(server);
      b.ws.terminate();
      await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
      const awayAt = performance.now();
      await expectFrame(a.ws, { type: "peer-left", room, clientId: b.id, reason: "timeout" }, 20_000);
      const held = performance.now() - awayAt;
      assert.ok(held >= 15_000 - 50 && held < 17_000, `the slot was held ${Math.round(held)} ms`);
      terminateAll(a.ws);
    };
    const stale = async () => {
      const { room, a, b } = await openPair(server);
      await expectPong(a.ws);
      // b pings too: a socket that never sent anything would yield after 10 s.
      await expectPong(b.ws);
      const pingedAt = performance.now();
      await sleep(58_000);
      await joinFull(server, room); // a's ping is 58 s old: not stale yet
      await sleep(60_500 - (performance.now() - pingedAt));
      await expectPong(b.ws); // b is fresh (silent sockets go stale from their connect time)
      const c = await joinEvicting(server, room, a, b); // 60.5 s: stale
      terminateAll(b.ws, c.ws);
    };
    await Promise.all([grace(), stale()]);
  });

  test("each invalid value is reported in the logs", async () => {
    for (const name of Object.keys(INVALID)) {
      const line = await server.waitForLine((l) => l.json?.event === "config-error" && l.json.message?.includes(name));
      assert.equal(line.stream, "stderr", `${name} should be reported as an error`);
    }
  });
});

/**
 * A Worker whose `vars` make a setting that restricts access unusable: every socket request,
 * with or without a ticket, from any origin, gets 503 config-error; one config-error line
 * names the setting; the rest of the site is served.
 */
function refusesEverySocket(name, vars) {
  describe(`${name} unusable: every socket is refused`, () => {
    let server;
    before(async () => {
      server = await startServer({ vars });
    });
    after(() => server?.dispose());

    test("503 config-error for every socket request, and one config-error line naming it", async () => {
      const room = roomName("closed");
      const ticket = "eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoieCJ9.c2ln";
      for (const [path, options] of [
        [`/ws/${room}`, {}],
        [`/ws/${room}`, { origin: server.origin }],
        // Without duet.v1: offered it, the refusal is in-band (below).
        [`/ws/${room}?ticket=${ticket}`, { protocols: [`duet.ticket.${ticket}`] }],
      ]) {
        const answer = await refusedUpgrade(server.ws(path), options);
        assert.equal(answer.status, 503, JSON.stringify(answer.body));
        assert.deepStrictEqual(Object.keys(answer.body.error), ["code", "message"]);
        assert.equal(answer.body.error.code, "config-error");
        assert.ok(answer.body.error.message.length > 0);
      }
      // A client that offers duet.v1 can read the refusal: the frame, then 4503.
      const ws = await connect(server.ws(`/ws/${room}`), { protocols: ["duet.v1", `duet.ticket.${ticket}`] });
      const frame = await nextFrame(ws);
      assert.deepStrictEqual(frame, { type: "error", code: "config-error", message: frame.message });
      assert.deepStrictEqual(await closed(ws), serverClose("MISCONFIGURED"));
      const plain = await fetch(server.http(`/ws/${room}`));
      assert.equal(plain.status, 503, "refused before the upgrade check");
      assert.match(plain.headers.get("content-type"), /^application\/json/);
      const health = await fetch(server.http("/healthz"));
      assert.equal(health.status, 200, "the rest of the site is served");
      const names = (l) => l.json?.event === "config-error" && l.json.message?.includes(name);
      await server.waitForLine(names);
      const lines = server.lines.filter(names);
      assert.equal(lines.length, 1, lines.map((l) => l.text).join("\n"));
      assert.equal(lines[0].stream, "stderr");
      assert.match(lines[0].json.message, /; every socket is refused \(503 config-error\) until it is fixed$/);
    });
  });
}

// Only commas: tickets were silently off, and anyone joined.
refusesEverySocket("JOIN_SECRET", { JOIN_SECRET: " , ," });
// Not a jurisdiction: rooms were placed anywhere.
refusesEverySocket("ROOM_JURISDICTION", { ROOM_JURISDICTION: "moon" });
