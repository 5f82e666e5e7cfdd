// One client's budget across leaves, rejoins and resumes (docs/access.md, "Frames"): whatever
// one client makes the room send to the other peer, its relayed messages and the lifecycle
// frames its own joins, drops, resumes and leaves cause, stays within
// RATE_LIMIT_BURST + RATE_LIMIT_PER_SEC × t in any window t (one frame more at most: the
// peer-left of a final leave). The attacks measured against the earlier build: a leave and a
// new join refilled the bucket, and every resume sent the peer two frames for free.
// Also: a socket that never sends anything yields its slot after UNCONFIRMED_AFTER_MS.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SignJWT } from "jose";
import {
  CloseCode,
  ErrorCode,
  PING_TEXT,
  closed,
  closeFrame,
  connect,
  expectPong,
  nextFrame,
  openFirst,
  roomName,
  send,
  serverClose,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const BURST = 10;
const PER_SEC = 2;
/** How long each attack runs. */
const ATTACK_MS = 4000;

/** The victim's frames, read as they come: `until` reads (and keeps) up to a matching one. */
function watch(ws) {
  const seen = [];
  return {
    seen,
    async until(match) {
      for (;;) {
        const frame = await nextFrame(ws);
        seen.push(frame);
        if (match(frame)) return frame;
      }
    },
    /** Reads every frame queued before the pong to a ping sent now. */
    async drain() {
      ws.send(PING_TEXT);
      await this.until((f) => f.type === "pong");
      seen.pop();
    },
  };
}

/** The frames of `frames` caused by the clients in `ids`: their messages and lifecycle. */
function causedBy(frames, ids) {
  return frames.filter((f) => ids.has(f.from) || ids.has(f.clientId) || (f.type === "ready" && f.peers.some((p) => ids.has(p) && p !== f.initiator)));
}

/** The budget of a window of `ms`: RATE_LIMIT_BURST + RATE_LIMIT_PER_SEC × t, plus the one frame a final leave may add. */
const budget = (ms) => BURST + (PER_SEC * ms) / 1000 + 1;

/**
 * Joins `room` with `options` and, when admitted, sends `count` messages and closes (a leave); a join
 * the budget cannot pay for gets `rate-limited` and 4429. Returns the client id, if admitted.
 */
async function joinSpendLeave(server, room, options, count, victim) {
  const ws = await connect(server.ws(`/ws/${room}`), options);
  const welcome = await nextFrame(ws);
  if (welcome.type === "error") {
    assert.equal(welcome.code, ErrorCode.RATE_LIMITED);
    assert.deepStrictEqual(await closed(ws), serverClose("RATE_LIMITED"));
    return null;
  }
  assert.equal(welcome.type, "joined", JSON.stringify(welcome));
  for (let i = 0; i < count; i++) send(ws, { type: "message", data: i });
  // A clean close is a leave, and unlike a `leave` frame it needs no token.
  const gone = closed(ws);
  ws.close(1000);
  if ((await gone).code === CloseCode.RATE_LIMITED) {
    // Closed for its refusals first: the slot is away, so take it back and leave from there.
    const back = await connect(server.ws(`/ws/${room}?resume=${welcome.resumeToken}`), options);
    assert.equal((await nextFrame(back)).resumed, true);
    const left = closed(back);
    back.close(1000);
    await left;
  }
  await victim.until((f) => f.type === "peer-left" && f.clientId === welcome.clientId);
  return welcome.clientId;
}

/** Runs `cycle` for ATTACK_MS, then returns the attack's length in ms. */
async function attackFor(cycle) {
  const start = Date.now();
  while (Date.now() - start < ATTACK_MS) await cycle();
  return Date.now() - start;
}

describe(`a client's budget (burst ${BURST}, ${PER_SEC}/s)`, () => {
  let server;
  const SECRET = "a-long-enough-secret-for-hs256-0123456789";
  let ticketed;
  before(async () => {
    const vars = { RATE_LIMIT_BURST: String(BURST), RATE_LIMIT_PER_SEC: String(PER_SEC) };
    [server, ticketed] = await Promise.all([startServer({ vars }), startServer({ vars: { ...vars, JOIN_SECRET: SECRET } })]);
  });
  after(() => Promise.all([server?.dispose(), ticketed?.dispose()]));

  for (const [what, headers] of [
    ["from one address", { "CF-Connecting-IP": "198.51.100.66" }],
    // `wrangler dev` sets no CF-Connecting-IP: such clients share one budget, as one address.
    ["without an address (a local runtime)", undefined],
  ]) {
    test(`leaving and rejoining ${what} does not refill it`, async () => {
      const room = roomName("churn");
      const victim = await openFirst(server, room);
      const watched = watch(victim.ws);
      const attacker = headers ? { headers } : {};
      const ids = new Set();
      const ms = await attackFor(async () => {
        const id = await joinSpendLeave(server, room, attacker, BURST, watched);
        if (id) ids.add(id);
      });
      await watched.drain();
      const caused = causedBy(watched.seen, ids);
      assert.ok(caused.length <= budget(ms), `${caused.length} frames in ${ms} ms, over the budget of ${budget(ms)}`);
      assert.ok(caused.some((f) => f.type === "message"), "the attacker's first messages went through");
      terminateAll(victim.ws);
    });
  }

  test("someone from another address joins at once with a budget of their own", async () => {
    const room = roomName("churn-other");
    const victim = await openFirst(server, room);
    const watched = watch(victim.ws);
    const attacker = { headers: { "CF-Connecting-IP": "198.51.100.67" } };
    await attackFor(() => joinSpendLeave(server, room, attacker, BURST, watched));
    const other = await connect(server.ws(`/ws/${room}`), { headers: { "CF-Connecting-IP": "203.0.113.5" } });
    const joined = await nextFrame(other);
    assert.equal(joined.type, "joined");
    // A whole burst less the join's two frames, at once.
    for (let i = 0; i < BURST - 2; i++) send(other, { type: "message", data: i });
    for (let i = 0; i < BURST - 2; i++) await watched.until((f) => f.type === "message" && f.from === joined.clientId && f.data === i);
    terminateAll(victim.ws, other);
  });

  test("with tickets, one identity does not refill it from new addresses", async () => {
    const room = roomName("churn-t");
    const mint = (sub) =>
      new SignJWT({ room }).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
    const open = async (sub, ip) => ({ protocols: ["duet.v1", `duet.ticket.${await mint(sub)}`], headers: { "CF-Connecting-IP": ip } });
    const victimWs = await connect(ticketed.ws(`/ws/${room}`), await open("vic", "192.0.2.1"));
    assert.equal((await nextFrame(victimWs)).type, "created");
    const watched = watch(victimWs);
    const ids = new Set();
    let n = 0;
    const ms = await attackFor(async () => {
      const id = await joinSpendLeave(ticketed, room, await open("eve", `198.51.100.${++n % 250}`), BURST, watched);
      if (id) ids.add(id);
    });
    await watched.drain();
    const caused = causedBy(watched.seen, ids);
    assert.ok(caused.length <= budget(ms), `${caused.length} frames in ${ms} ms, over the budget of ${budget(ms)}`);
    terminateAll(victimWs);
  });

  test("resuming again and again does not flood the peer with lifecycle frames", async () => {
    const room = roomName("resumes");
    const victim = await openFirst(server, room);
    const watched = watch(victim.ws);
    let ws = await connect(server.ws(`/ws/${room}`));
    let welcome = await nextFrame(ws);
    const ids = new Set([welcome.clientId]);
    const ms = await attackFor(async () => {
      // A drop (no close frame), then a resume with the newest token.
      const gone = new Promise((resolve) => ws.once("close", resolve));
      ws.terminate();
      await gone;
      ws = await connect(server.ws(`/ws/${room}?resume=${welcome.resumeToken}`));
      welcome = await nextFrame(ws);
      assert.equal(welcome.resumed, true, JSON.stringify(welcome));
    });
    await watched.drain();
    const caused = causedBy(watched.seen, ids);
    assert.ok(caused.length <= budget(ms), `${caused.length} frames in ${ms} ms, over the budget of ${budget(ms)}`);
    terminateAll(victim.ws, ws);
  });
});

describe("a socket that never sends anything (UNCONFIRMED_AFTER_MS 1000)", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { UNCONFIRMED_AFTER_MS: "1000" } });
  });
  after(() => server?.dispose());

  /** Joins `room` until a newcomer is admitted, for up to `ms`; returns when, or null. */
  async function joinUntilAdmitted(room, ms) {
    const start = Date.now();
    while (Date.now() - start < ms) {
      const ws = await connect(server.ws(`/ws/${room}`));
      const frame = await nextFrame(ws);
      if (frame.type === "joined") return { ws, at: Date.now() - start, frame };
      assert.equal(frame.type, "full");
      assert.deepStrictEqual(await closed(ws), serverClose("ROOM_FULL"));
    }
    return null;
  }

  test("two silent sockets hold the room for a second, then yield to a newcomer", async () => {
    const room = roomName("phantom");
    const opened = Date.now();
    const silent = [await connect(server.ws(`/ws/${room}`)), await connect(server.ws(`/ws/${room}`))];
    for (const ws of silent) assert.match((await nextFrame(ws)).type, /^(created|joined)$/);
    const newcomer = await joinUntilAdmitted(room, 6000);
    assert.ok(newcomer, "no newcomer was admitted within 6 s");
    assert.ok(Date.now() - opened >= 1000, "a silent socket yielded before UNCONFIRMED_AFTER_MS");
    assert.deepStrictEqual(await closeFrame(silent[0]), serverClose("STALE"));
    terminateAll(newcomer.ws, ...silent);
  });

  test("sockets that pinged keep their slots past it", async () => {
    const room = roomName("pinged");
    const a = await connect(server.ws(`/ws/${room}`));
    assert.equal((await nextFrame(a)).type, "created");
    const b = await connect(server.ws(`/ws/${room}`));
    assert.deepStrictEqual([(await nextFrame(b)).type, (await nextFrame(b)).type], ["joined", "ready"]);
    assert.deepStrictEqual([(await nextFrame(a)).type, (await nextFrame(a)).type], ["peer-joined", "ready"]);
    for (const ws of [a, b]) await expectPong(ws, PING_TEXT);
    assert.equal(await joinUntilAdmitted(room, 2500), null, "a confirmed socket lost its slot");
    terminateAll(a, b);
  });
});
