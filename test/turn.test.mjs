// TURN credentials in the welcome frame and in the answer to `ice-servers`: the shared-secret
// scheme minted per client, and Cloudflare's managed TURN with its API mocked (success, error
// status, timeout, garbage). Every welcome says when its credentials expire.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  DEFAULT_ICE_SERVERS,
  connect,
  expectQuiet,
  nextFrame,
  roomName,
  send,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const SECRET = "turn-shared-secret-for-tests";
const API_TOKEN = "cf-api-token-for-tests";
const TURN_URLS = ["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"];

const nowS = () => Math.floor(Date.now() / 1000);

/** Resolves once the clock is past the second `second` (unix time): a later mint names a later expiry. */
async function pastSecond(second) {
  while (nowS() <= second) await new Promise((resolve) => setTimeout(resolve, 20)); // polling the clock
}

/** The welcome frame of a fresh socket in `room`. */
async function welcome(server, room = roomName("turn")) {
  const ws = await connect(server.ws(`/ws/${room}`));
  const frame = await nextFrame(ws);
  return { ws, frame, room };
}

/**
 * Stops `server`, then checks that nothing it printed during the suite's tests contains
 * `secret`: an `after` hook, so the check covers every test that ran, and fails the suite.
 */
async function disposeUnlogged(server, secret) {
  if (!server) return;
  await server.dispose();
  for (const line of server.lines) assert.ok(!line.text.includes(secret), `logged a secret: ${line.text}`);
}

describe("shared-secret TURN (TURN REST API)", () => {
  let server;
  before(async () => {
    server = await startServer({
      vars: { TURN_SECRET: SECRET, TURN_URLS: TURN_URLS.join(","), TURN_TTL_SECONDS: "600" },
    });
  });
  after(() => disposeUnlogged(server, SECRET));

  /** Checks the TURN entry minted for `clientId` and returns its expiry. */
  function checkTurnEntry(iceServers, clientId) {
    assert.deepStrictEqual(iceServers.slice(0, 1), DEFAULT_ICE_SERVERS, "ICE_SERVERS come first");
    assert.equal(iceServers.length, 2);
    const turn = iceServers[1];
    assert.deepStrictEqual(Object.keys(turn).sort(), ["credential", "urls", "username"]);
    assert.deepStrictEqual(turn.urls, TURN_URLS);
    const [expiry, id] = turn.username.split(":");
    assert.equal(id, clientId, "the username names the client");
    const lifetime = Number(expiry) - nowS();
    assert.ok(lifetime > 590 && lifetime <= 600, `expiry ${lifetime} s ahead, TURN_TTL_SECONDS is 600`);
    const expected = createHmac("sha1", SECRET).update(turn.username).digest("base64");
    assert.equal(turn.credential, expected, "credential = base64(HMAC-SHA1(secret, username))");
    return Number(expiry);
  }

  test("each client gets its own credential, and its expiry as iceServersExpireAt", async () => {
    const first = await welcome(server);
    assert.equal(first.frame.type, "created");
    const expiry = checkTurnEntry(first.frame.iceServers, first.frame.clientId);
    assert.equal(first.frame.iceServersExpireAt, expiry * 1000);
    const second = await connect(server.ws(`/ws/${first.room}`));
    const joined = await nextFrame(second);
    assert.equal(joined.type, "joined");
    assert.equal(joined.iceServersExpireAt, checkTurnEntry(joined.iceServers, joined.clientId) * 1000);
    assert.notEqual(joined.iceServers[1].username, first.frame.iceServers[1].username);
    terminateAll(first.ws, second);
  });

  test("a resumed client gets fresh credentials for the same client id", async () => {
    const { ws, frame, room } = await welcome(server);
    const before = checkTurnEntry(frame.iceServers, frame.clientId);
    await pastSecond(nowS());
    ws.terminate();
    const back = await connect(server.ws(`/ws/${room}?resume=${frame.resumeToken}`));
    const again = await nextFrame(back);
    assert.equal(again.clientId, frame.clientId);
    assert.equal(again.resumed, true);
    const expiry = checkTurnEntry(again.iceServers, frame.clientId);
    assert.ok(expiry > before, "a newer expiry");
    assert.equal(again.iceServersExpireAt, expiry * 1000);
    back.terminate();
  });

  test("ice-servers is answered with credentials minted now for the same client id", async () => {
    const { ws, frame, room } = await welcome(server);
    const before = checkTurnEntry(frame.iceServers, frame.clientId);
    const peer = await connect(server.ws(`/ws/${room}`));
    await nextFrame(peer); // joined
    await nextFrame(ws); // peer-joined
    await nextFrame(ws); // ready
    await nextFrame(peer); // ready
    await pastSecond(before - 600);
    // Unknown fields are ignored, as in every frame.
    send(ws, { type: "ice-servers", reason: "ahead of expiry" });
    const answer = await nextFrame(ws);
    assert.deepStrictEqual(Object.keys(answer), ["type", "iceServers", "expiresAt"]);
    assert.equal(answer.type, "ice-servers");
    const expiry = checkTurnEntry(answer.iceServers, frame.clientId);
    assert.ok(expiry > before, `a later expiry than the welcome's: ${expiry} > ${before}`);
    assert.equal(answer.expiresAt, expiry * 1000);
    await expectQuiet(peer); // for the sender only
    terminateAll(ws, peer);
  });
});

describe("half-configured TURN stays off", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { TURN_SECRET: SECRET } });
  });
  after(() => disposeUnlogged(server, SECRET));

  test("STUN only, and a config-error names the missing setting", async () => {
    const { ws, frame } = await welcome(server);
    assert.deepStrictEqual(frame.iceServers, DEFAULT_ICE_SERVERS);
    const line = await server.waitForLine((l) => l.json?.event === "config-error");
    assert.match(line.json.message, /TURN_URLS/);
    ws.terminate();
  });
});

const CF_SERVERS = [
  { urls: ["stun:stun.cloudflare.com:3478", "stun:stun.cloudflare.com:53"] },
  {
    urls: ["turn:turn.cloudflare.com:3478?transport=udp", "turn:turn.cloudflare.com:53?transport=udp", "turns:turn.cloudflare.com:443?transport=tcp"],
    username: "cf-user",
    credential: "cf-credential",
  },
];
/** What the welcome frame carries after a successful call: port-53 URLs dropped. */
const CF_IN_WELCOME = [
  ...DEFAULT_ICE_SERVERS,
  { urls: ["stun:stun.cloudflare.com:3478"] },
  { credential: "cf-credential", urls: ["turn:turn.cloudflare.com:3478?transport=udp", "turns:turn.cloudflare.com:443?transport=tcp"], username: "cf-user" },
];

/**
 * A Worker whose calls to Cloudflare's API are answered by `answer(request)`; `calls` records
 * each request (method, URL, authorization, body).
 */
async function cloudflareServer(answer) {
  const calls = [];
  const server = await startServer({
    vars: { CF_TURN_KEY_ID: "key-123", CF_TURN_API_TOKEN: API_TOKEN, TURN_TTL_SECONDS: "7200" },
    async outboundService(request) {
      calls.push({
        method: request.method,
        url: request.url,
        authorization: request.headers.get("authorization"),
        body: await request.text(),
      });
      return answer(request);
    },
  });
  return { server, calls };
}

describe("Cloudflare TURN: success and cache", () => {
  let server, calls;
  before(async () => {
    ({ server, calls } = await cloudflareServer(
      () => new Response(JSON.stringify({ iceServers: CF_SERVERS }), { status: 201, headers: { "content-type": "application/json" } }),
    ));
  });
  after(() => disposeUnlogged(server, API_TOKEN));

  test("the API's servers follow ICE_SERVERS, without port 53", async () => {
    const asked = Date.now();
    const { ws, frame } = await welcome(server);
    assert.deepStrictEqual(frame.iceServers, CF_IN_WELCOME);
    // Their expiry: when they were fetched, during this join, + TURN_TTL_SECONDS.
    assert.ok(frame.iceServersExpireAt >= asked + 7_200_000 && frame.iceServersExpireAt <= Date.now() + 7_200_000, `${frame.iceServersExpireAt}`);
    assert.deepStrictEqual(calls, [
      {
        method: "POST",
        url: "https://rtc.live.cloudflare.com/v1/turn/keys/key-123/credentials/generate-ice-servers",
        authorization: `Bearer ${API_TOKEN}`,
        body: '{"ttl":7200}',
      },
    ]);
    ws.terminate();
  });

  test("a burst of joins makes no further API calls", async () => {
    const sockets = [];
    for (let i = 0; i < 10; i++) {
      const { ws, frame } = await welcome(server);
      assert.deepStrictEqual(frame.iceServers, CF_IN_WELCOME);
      sockets.push(ws);
    }
    assert.equal(calls.length, 1, "one call for eleven joins");
    terminateAll(...sockets);
  });

  test("ice-servers brings the cached servers with the expiry of their fetch", async () => {
    const { ws, frame } = await welcome(server);
    send(ws, { type: "ice-servers" });
    assert.deepStrictEqual(await nextFrame(ws), { type: "ice-servers", iceServers: CF_IN_WELCOME, expiresAt: frame.iceServersExpireAt });
    assert.equal(calls.length, 1, "still the one call");
    ws.terminate();
  });
});

for (const [name, answer, kind] of [
  ["an error status", () => new Response("unauthorized", { status: 401 }), "status"],
  ["garbage", () => new Response("<html>oops</html>", { status: 201 }), "malformed"],
  ["JSON of the wrong shape", () => new Response('{"iceServers":[{"urls":["turn:x:3478"]}]}', { status: 201 }), "malformed"],
  ["no answer (timeout)", () => new Promise((resolve) => setTimeout(() => resolve(new Response("late")), 10_000)), "timeout"],
]) {
  describe(`Cloudflare TURN: ${name}`, () => {
    let server, calls;
    before(async () => {
      ({ server, calls } = await cloudflareServer(answer));
    });
    after(() => disposeUnlogged(server, API_TOKEN));

    test("the join still succeeds with the STUN list, and the failure is logged", async () => {
      const started = Date.now();
      const { ws, frame } = await welcome(server);
      assert.equal(frame.type, "created");
      assert.deepStrictEqual(frame.iceServers, DEFAULT_ICE_SERVERS);
      assert.equal(frame.iceServersExpireAt, null, "nothing that expires");
      assert.ok(Date.now() - started < 6000, "a TURN outage does not hold the join for long");
      const line = await server.waitForLine((l) => l.json?.event === "turn-error");
      assert.equal(line.json.kind, kind);
      assert.equal(line.json.status ?? null, kind === "status" ? 401 : null, "a status only when there was one");
      ws.terminate();
    });

    test("after a failure the API is not called again at once", async () => {
      const { ws, frame } = await welcome(server);
      assert.deepStrictEqual(frame.iceServers, DEFAULT_ICE_SERVERS);
      send(ws, { type: "ice-servers" });
      assert.deepStrictEqual(await nextFrame(ws), { type: "ice-servers", iceServers: DEFAULT_ICE_SERVERS, expiresAt: null });
      assert.equal(calls.length, 1);
      ws.terminate();
    });
  });
}
