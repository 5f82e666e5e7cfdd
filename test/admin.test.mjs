// The admin API (docs/admin.md) against the real Worker: ADMIN_SECRET unset (no API at all),
// unusable (config-error) and set with two values; each endpoint with its exact answers, frames,
// close codes and webhooks; every refusal, validated before any room is looked at; a ban that
// survives a fresh ticket, a resume, an eviction and a restart; and the join limit that refused
// secrets count against. Every answer is checked against docs/admin-openapi.json (helpers/admin).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SignJWT } from "jose";
import { admin, assertRefused } from "./helpers/admin.mjs";
import {
  ROOT,
  closeFrame,
  closed,
  connect,
  expectFrame,
  expectQuiet,
  nextFrame,
  refusedUpgrade,
  roomName,
  sleep,
  startServer,
  tempDir,
  terminateAll,
} from "./helpers/miniflare.mjs";

const JOIN_SECRET = "a-long-enough-secret-for-hs256-0123456789";
const ADMIN = "admin-secret-new";
const OLD_ADMIN = "admin-secret-old";
const GRACE = 5000;

/** A ticket for `room` and `sub`, valid for an hour. */
function mint(room, sub) {
  return new SignJWT({ room })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(JOIN_SECRET));
}

/** Opens a socket with a fresh ticket for `sub`, offering `duet.v1` unless `v1: false`. */
async function open(server, room, sub, { resume, v1 = true } = {}) {
  const ticket = await mint(room, sub);
  if (!v1) return connect(server.ws(`/ws/${room}?ticket=${ticket}${resume ? `&resume=${resume}` : ""}`));
  const protocols = ["duet.v1", `duet.ticket.${ticket}`, ...(resume ? [`duet.resume.${resume}`] : [])];
  return connect(server.ws(`/ws/${room}`), { protocols });
}

/** Ann then Ben in a fresh room, through the handshake: `{room, a, b}` with ws, id and token. */
async function pair(server, prefix = "adm") {
  const room = roomName(prefix);
  const a = await open(server, room, "ann");
  const created = await nextFrame(a);
  const b = await open(server, room, "ben");
  const joined = await nextFrame(b);
  assert.equal((await nextFrame(a)).type, "peer-joined");
  assert.equal((await nextFrame(a)).type, "ready");
  assert.equal((await nextFrame(b)).type, "ready");
  return {
    room,
    a: { ws: a, id: created.clientId, token: created.resumeToken },
    b: { ws: b, id: joined.clientId, token: joined.resumeToken },
  };
}

/** The in-band refusal of a banned identity: the error frame, then close 4403 banned. */
async function expectBanned(ws) {
  const frame = await nextFrame(ws);
  assert.deepStrictEqual(frame, { type: "error", code: "banned", message: frame.message });
  assert.ok(frame.message.length > 0);
  assert.deepStrictEqual(await closed(ws), { code: 4403, reason: "banned" });
}

/** A webhook receiver that records every event. */
async function receiver() {
  const events = [];
  const waiters = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      events.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      res.writeHead(200).end();
      for (const waiter of waiters) waiter();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    /** Resolves with the room's events once `predicate` holds for them. */
    until(room, predicate, timeoutMs = 10_000) {
      const of = () => events.filter((e) => e.room === room);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(of())) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(of());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhooks of ${room}: ${JSON.stringify(of())}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const PATHS = ["/admin", "/admin/", "/admin/rooms", "/admin/rooms/r", "/admin/rooms/r/end", "/admin/rooms/r/kick", "/admin/x/y"];

describe("ADMIN_SECRET unset: the API does not exist", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.dispose());

  test("every /admin path answers 404 not-found, whatever the method and the secret", async () => {
    for (const path of PATHS) {
      for (const method of ["GET", "POST", "PUT", "DELETE"]) {
        assertRefused(await admin(server, method, path, { secret: "anything" }), 404, "not-found");
      }
    }
  });
});

describe("ADMIN_SECRET set but unusable: fails closed", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { ADMIN_SECRET: " , " } });
  });
  after(() => server?.dispose());

  test("every admin request gets 503 config-error, whatever it carries; the problem is logged", async () => {
    for (const path of PATHS) {
      for (const secret of [null, ",", "", "x"]) {
        assertRefused(await admin(server, "GET", path, { secret }), 503, "config-error");
      }
    }
    assertRefused(await admin(server, "POST", "/admin/rooms/r/end", { secret: ",", body: {} }), 503, "config-error");
    const line = await server.waitForLine((l) => l.json?.event === "config-error" && /ADMIN_SECRET/.test(l.json.message));
    assert.match(line.json.message, /every admin request is refused \(503 config-error\)/);
  });
});

describe("the admin API (ADMIN_SECRET with two values, tickets, webhooks)", { timeout: 60_000 }, () => {
  let server;
  let hooks;
  before(async () => {
    hooks = await receiver();
    server = await startServer({
      vars: {
        ADMIN_SECRET: `${ADMIN}, ${OLD_ADMIN}`,
        JOIN_SECRET,
        RESUME_GRACE_MS: String(GRACE),
        WEBHOOK_URL: hooks.url,
        WEBHOOK_SECRET: "whsec-admin-test",
      },
    });
  });
  after(async () => {
    await server?.dispose();
    await hooks?.close();
  });

  test("a missing or wrong secret is 401 unauthorized, before anything else; both values work", async () => {
    const room = roomName("auth");
    for (const secret of [null, "wrong", { raw: ADMIN }, { raw: `Basic ${ADMIN}` }, `${ADMIN}x`, ADMIN.slice(0, -1)]) {
      assertRefused(await admin(server, "GET", `/admin/rooms/${room}`, { secret }), 401, "unauthorized");
    }
    assertRefused(await admin(server, "DELETE", "/admin/nothing"), 401, "unauthorized");
    for (const secret of [ADMIN, OLD_ADMIN]) {
      assert.equal((await admin(server, "GET", `/admin/rooms/${room}`, { secret })).status, 200);
    }
  });

  test("GET of a room never used: no peers, no bans, null times, nothing waiting", async () => {
    const room = roomName("unused");
    const answer = await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN });
    assert.deepStrictEqual(answer.body, { room, startedAt: null, callStartedAt: null, peers: [], bans: [], webhooksWaiting: 0 });
    assert.equal(answer.headers.get("cache-control"), "no-store");
  });

  test("GET of a call: both peers with their identities, since when, the call's times; nothing secret", async () => {
    const before = Date.now();
    const { room, a, b } = await pair(server);
    const { body } = await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN });
    assert.ok(body.startedAt >= before - 1000 && body.callStartedAt >= body.startedAt, JSON.stringify(body));
    assert.deepStrictEqual(
      body.peers.map(({ since, ...peer }) => peer),
      [
        { clientId: a.id, state: "connected", identity: { sub: "ann" } },
        { clientId: b.id, state: "connected", identity: { sub: "ben" } },
      ],
    );
    for (const peer of body.peers) assert.ok(peer.since >= body.startedAt);
    const text = JSON.stringify(body);
    for (const secret of [a.token, b.token, "127.0.0.1"]) assert.ok(!text.includes(secret), `the answer shows ${secret}`);
    a.ws.terminate();
    await expectFrame(b.ws, { type: "peer-away", room, clientId: a.id });
    const away = (await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN })).body.peers[0];
    assert.equal(away.state, "away");
    assert.ok(away.since >= body.peers[0].since);
    terminateAll(b.ws);
  });

  test("end: ended and close 4410 to each peer, slots cleared, peer.left ×2 then room.ended with reason ended", async () => {
    const { room, a, b } = await pair(server);
    const answer = await admin(server, "POST", `/admin/rooms/${room}/end`, { secret: ADMIN, body: { reason: "time is up" } });
    assert.deepStrictEqual(answer.body, { ended: 2 });
    for (const ws of [a.ws, b.ws]) {
      await expectFrame(ws, { type: "ended", room, reason: "time is up" });
      assert.deepStrictEqual(await closeFrame(ws), { code: 4410, reason: "ended" });
    }
    const empty = await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN });
    assert.deepStrictEqual({ ...empty.body, webhooksWaiting: 0 }, { room, startedAt: null, callStartedAt: null, peers: [], bans: [], webhooksWaiting: 0 });
    const events = await hooks.until(room, (es) => es.some((e) => e.type === "room.ended"));
    assert.deepStrictEqual(
      events.slice(-3).map((e) => [e.type, e.clientId ?? null, e.reason ?? null]),
      [
        ["peer.left", a.id, "ended"],
        ["peer.left", b.id, "ended"],
        ["room.ended", null, "ended"],
      ],
    );
    // The tokens went with the slots: a resume is a fresh join.
    const back = await open(server, room, "ann", { resume: a.token });
    const welcome = await nextFrame(back);
    assert.equal(welcome.type, "created");
    assert.notEqual(welcome.clientId, a.id);
    terminateAll(back);
  });

  test("end of an empty room or one never used: {ended: 0}, without the optional body", async () => {
    for (const raw of [undefined, "", "{}"]) {
      const room = roomName("none");
      assert.deepStrictEqual((await admin(server, "POST", `/admin/rooms/${room}/end`, { secret: ADMIN, raw })).body, { ended: 0 });
    }
  });

  test("kick by clientId: kicked and close 4403 kicked, peer-left kicked to the other, peer.left kicked; no ban", async () => {
    const { room, a, b } = await pair(server);
    const answer = await admin(server, "POST", `/admin/rooms/${room}/kick`, { secret: ADMIN, body: { clientId: a.id, reason: "spam" } });
    assert.deepStrictEqual(answer.body, { kicked: true });
    await expectFrame(a.ws, { type: "kicked", room, reason: "spam" });
    assert.deepStrictEqual(await closeFrame(a.ws), { code: 4403, reason: "kicked" });
    await expectFrame(b.ws, { type: "peer-left", room, clientId: a.id, reason: "kicked" });
    await expectQuiet(b.ws);
    const events = await hooks.until(room, (es) => es.some((e) => e.type === "peer.left"));
    assert.deepStrictEqual(
      events.filter((e) => e.type === "peer.left").map((e) => [e.clientId, e.reason]),
      [[a.id, "kicked"]],
    );
    const view = (await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN })).body;
    assert.deepStrictEqual([view.peers.map((p) => p.clientId), view.bans], [[b.id], []]);
    // Without a ban Ann may come back, as a new client: her resume token was spent.
    const back = await open(server, room, "ann", { resume: a.token });
    const welcome = await nextFrame(back);
    assert.deepStrictEqual([welcome.type, welcome.resumed], ["joined", false]);
    assert.notEqual(welcome.clientId, a.id);
    terminateAll(back, b.ws);
  });

  test("kick by sub with a ban: refused in-band with a fresh ticket, with or without duet.v1, and with the old token", async () => {
    const { room, a, b } = await pair(server);
    const before = Date.now();
    const body = { sub: "ann", reason: "abuse", banSeconds: 600 };
    assert.deepStrictEqual((await admin(server, "POST", `/admin/rooms/${room}/kick`, { secret: ADMIN, body })).body, { kicked: true });
    await expectFrame(a.ws, { type: "kicked", room, reason: "abuse" });
    assert.deepStrictEqual(await closeFrame(a.ws), { code: 4403, reason: "kicked" });
    await expectFrame(b.ws, { type: "peer-left", room, clientId: a.id, reason: "kicked" });
    await expectBanned(await open(server, room, "ann"));
    await expectBanned(await open(server, room, "ann", { v1: false }));
    await expectBanned(await open(server, room, "ann", { resume: a.token }));
    const { bans } = (await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN })).body;
    assert.equal(bans.length, 1);
    assert.equal(bans[0].sub, "ann");
    assert.ok(bans[0].until >= before + 600_000 && bans[0].until <= Date.now() + 600_000, JSON.stringify(bans));
    // Ben is not banned, and the room still has Ann's place for somebody else.
    const cat = await open(server, room, "cat");
    assert.equal((await nextFrame(cat)).type, "joined");
    terminateAll(cat, b.ws);
  });

  test("kick of an away peer: its slot goes at once, and its token with it", async () => {
    const { room, a, b } = await pair(server);
    a.ws.terminate();
    await expectFrame(b.ws, { type: "peer-away", room, clientId: a.id });
    assert.deepStrictEqual((await admin(server, "POST", `/admin/rooms/${room}/kick`, { secret: ADMIN, body: { clientId: a.id } })).body, { kicked: true });
    await expectFrame(b.ws, { type: "peer-left", room, clientId: a.id, reason: "kicked" });
    const back = await open(server, room, "ann", { resume: a.token });
    const welcome = await nextFrame(back);
    assert.deepStrictEqual([welcome.type, welcome.resumed], ["joined", false]);
    terminateAll(back, b.ws);
  });

  test("invalid requests: 400 before any lookup, and the target is left alone", async () => {
    const { room, a, b } = await pair(server);
    const kick = `/admin/rooms/${room}/kick`;
    const bad = [
      { raw: "" },
      { raw: "not json" },
      { raw: "[]" },
      { raw: `{"clientId":"${a.id}"` },
      { body: {} },
      { body: { clientId: a.id, sub: "ann" } },
      { body: { clientId: a.id, extra: 1 } },
      { body: { clientId: a.id, banSeconds: 86_401 } },
      { body: { clientId: a.id, banSeconds: -1 } },
      { body: { clientId: a.id, banSeconds: 1.5 } },
      { body: { clientId: a.id, banSeconds: "60" } },
      { body: { clientId: 7 } },
      { body: { clientId: a.id, reason: "é".repeat(201) } },
      { body: { clientId: a.id, reason: "😀".repeat(201) } },
    ];
    for (const request of bad) {
      assertRefused(await admin(server, "POST", kick, { secret: ADMIN, ...request }), 400, "invalid-request");
    }
    for (const raw of ["[]", '{"reason":5}', '{"why":"x"}', `{"reason":"${"x".repeat(201)}"}`]) {
      assertRefused(await admin(server, "POST", `/admin/rooms/${room}/end`, { secret: ADMIN, raw }), 400, "invalid-request");
    }
    assertRefused(await admin(server, "GET", "/admin/rooms/no.dots", { secret: ADMIN }), 400, "invalid-room");
    assertRefused(await admin(server, "POST", `/admin/rooms/${"x".repeat(65)}/end`, { secret: ADMIN }), 400, "invalid-room");
    assertRefused(await admin(server, "POST", `/admin/rooms/${room}`, { secret: ADMIN }), 405, "method-not-allowed");
    assertRefused(await admin(server, "GET", kick, { secret: ADMIN }), 405, "method-not-allowed");
    assertRefused(await admin(server, "GET", `/admin/rooms/${room}/peers`, { secret: ADMIN }), 404, "not-found");
    assertRefused(await admin(server, "POST", kick, { secret: ADMIN, body: { clientId: "0000000000000000" } }), 404, "not-found");
    assertRefused(await admin(server, "POST", kick, { secret: ADMIN, body: { sub: "nobody", banSeconds: 60 } }), 404, "not-found");
    const view = (await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN })).body;
    assert.deepStrictEqual([view.peers.length, view.bans], [2, []]);
    await expectQuiet(a.ws);
    await expectQuiet(b.ws);
    // The longest reason, counted in Unicode scalar values, is fine.
    const longest = "😀".repeat(200);
    assert.deepStrictEqual((await admin(server, "POST", kick, { secret: ADMIN, body: { clientId: a.id, reason: longest } })).body, { kicked: true });
    await expectFrame(a.ws, { type: "kicked", room, reason: longest });
    terminateAll(a.ws, b.ws);
  });
});

describe("refused admin secrets count against the join limit", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { ADMIN_SECRET: ADMIN }, joinLimit: { limit: 3, period: 60 } });
  });
  after(() => server?.dispose());

  test("once the address has spent its joins, a wrong secret gets 429 too-many-joins with Retry-After", async () => {
    const ip = "203.0.113.9";
    const path = `/admin/rooms/${roomName("lim")}`;
    let answer;
    for (let i = 0; i < 10 && (answer = await admin(server, "GET", path, { secret: "guess", ip })).status === 401; i++);
    assertRefused(answer, 429, "too-many-joins");
    assert.equal(answer.headers.get("retry-after"), "60");
    // Joins from that address are spent too.
    const join = await refusedUpgrade(server.ws(`/ws/${roomName("lim")}`), { headers: { "CF-Connecting-IP": ip } });
    assert.deepStrictEqual([join.status, join.body.error.code], [429, "too-many-joins"]);
    // Another address still gets 401.
    assertRefused(await admin(server, "GET", path, { secret: "guess", ip: "203.0.113.10" }), 401, "unauthorized");
  });
});

const python = spawnSync("python3", ["-c", "import sqlite3"]).status === 0;

/** What local workerd keeps of each room object on disk: `{keys, alarm}` each (storage.test.mjs). */
function stored(dir) {
  const out = spawnSync("python3", [join(ROOT, "test/helpers/do-storage.py"), join(dir, "duet-Room")], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  return Object.values(JSON.parse(out.stdout)).map(({ kv, alarm }) => ({ keys: Object.keys(kv), alarm }));
}

describe("a look at an unused room stores nothing", { skip: !python && "python3 with sqlite3 is not installed" }, () => {
  const storage = tempDir("duet-admin-look-");
  let server;
  before(async () => {
    server = await startServer({ vars: { ADMIN_SECRET: ADMIN }, persistDir: storage.path });
  });
  after(async () => {
    await server?.dispose();
    storage.remove();
  });

  test("GET and an end of nobody leave no key and no alarm behind", async () => {
    const room = roomName("look");
    assert.equal((await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN })).status, 200);
    assert.deepStrictEqual((await admin(server, "POST", `/admin/rooms/${room}/end`, { secret: ADMIN })).body, { ended: 0 });
    assert.equal((await admin(server, "POST", `/admin/rooms/${room}/kick`, { secret: ADMIN, body: { sub: "x" } })).status, 404);
    for (const object of stored(storage.path)) assert.deepStrictEqual(object, { keys: [], alarm: null });
    // The reader sees a room that is stored: a join stores one.
    const ws = await connect(server.ws(`/ws/${room}`));
    assert.equal((await nextFrame(ws)).type, "created");
    const end = Date.now() + 5000;
    while (!stored(storage.path).some((o) => o.keys.includes("room")) && Date.now() < end) await sleep(50); // polls the files; writes land asynchronously
    assert.ok(stored(storage.path).some((o) => o.keys.includes("room") && o.alarm !== null));
    terminateAll(ws);
  });
});

describe("a ban survives eviction and restart", { timeout: 90_000 }, () => {
  const storage = tempDir("duet-admin-");
  const vars = { ADMIN_SECRET: ADMIN, JOIN_SECRET };
  let server;
  before(async () => {
    server = await startServer({ vars, persistDir: storage.path });
  });
  after(async () => {
    await server?.dispose();
    storage.remove();
  });

  test("banned before an idle eviction, still banned after it and after a restart", async () => {
    const { room, a, b } = await pair(server, "evict");
    const body = { sub: "ann", banSeconds: 60 };
    assert.equal((await admin(server, "POST", `/admin/rooms/${room}/kick`, { secret: ADMIN, body })).status, 200);
    // closeFrame: workerd keeps the TCP connection of a socket that never sent a frame open.
    await closeFrame(a.ws);
    a.ws.terminate();
    b.ws.close(1000);
    await closed(b.ws);
    // Nothing reaches the object now; local workerd evicts it after about 10 s idle.
    await sleep(13_000);
    const starts = server.events(room).filter((e) => e.event === "start").length;
    await expectBanned(await open(server, room, "ann"));
    assert.equal(server.events(room).filter((e) => e.event === "start").length, starts + 1, "the object started afresh");
    await server.dispose();
    server = await startServer({ vars, persistDir: storage.path });
    await expectBanned(await open(server, room, "ann"));
    const { bans } = (await admin(server, "GET", `/admin/rooms/${room}`, { secret: ADMIN })).body;
    assert.deepStrictEqual(bans.map((ban) => ban.sub), ["ann"]);
  });
});
