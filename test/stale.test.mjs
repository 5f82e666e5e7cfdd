// Stale eviction (STALE_AFTER_MS=1000): when a join finds the room full, an occupant whose last
// ping (or, if it never pinged, its connect time) is older than STALE_AFTER_MS is closed with
// 4408, its peer gets peer-left (stale) before the newcomer's peer-joined and ready, and the join
// proceeds. The waits below let time pass on purpose: staleness is about elapsed time.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  OBJECT_PING,
  expectFrame,
  expectPong,
  expectQuiet,
  joinEvicting,
  joinFull,
  openPair,
  sleep,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const STALE_AFTER_MS = 1000;
const PAST_STALE = STALE_AFTER_MS + 300;

describe(`stale eviction (STALE_AFTER_MS=${STALE_AFTER_MS})`, () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { STALE_AFTER_MS: String(STALE_AFTER_MS) } });
  });
  after(() => server?.dispose());

  test("an occupant whose last exact ping is too old is evicted for a newcomer", async () => {
    const { room, a, b } = await openPair(server);
    await expectPong(a.ws); // answered by the runtime's auto-response
    await sleep(PAST_STALE);
    await expectPong(b.ws);
    const c = await joinEvicting(server, room, a, b);
    // The new pair works, and the stale slot is gone for good.
    c.ws.send('{"type":"message","data":"hi"}');
    await expectFrame(b.ws, { type: "message", from: c.id, data: "hi" });
    await expectQuiet(b.ws);
    await expectQuiet(c.ws);
    await server.waitForLine((l) => l.json?.event === "leave" && l.json.room === room);
    assert.deepStrictEqual(
      server.events(room).find((e) => e.event === "leave"),
      { event: "leave", room, clientId: a.id, reason: "stale" },
    );
    terminateAll(b.ws, c.ws);
  });

  test("pings answered by the object count too", async () => {
    const { room, a, b } = await openPair(server);
    await expectPong(b.ws, OBJECT_PING);
    await sleep(PAST_STALE);
    await expectPong(b.ws, OBJECT_PING);
    const c = await joinEvicting(server, room, a, b);
    terminateAll(b.ws, c.ws);
  });

  test("of two stale occupants, the one with the older ping goes", async () => {
    const { room, a, b } = await openPair(server);
    await expectPong(b.ws);
    await sleep(100);
    await expectPong(a.ws);
    await sleep(PAST_STALE);
    const c = await joinEvicting(server, room, b, a);
    terminateAll(a.ws, c.ws);
  });

  test("a recent ping protects an occupant: the other, stale one goes", async () => {
    const { room, a, b } = await openPair(server);
    await expectPong(a.ws);
    await expectPong(b.ws);
    await sleep(PAST_STALE);
    await expectPong(a.ws);
    const c = await joinEvicting(server, room, b, a);
    terminateAll(a.ws, c.ws);
  });

  test("occupants that pinged within STALE_AFTER_MS are not evicted: full", async () => {
    const { room, a, b } = await openPair(server);
    await expectPong(a.ws);
    await expectPong(b.ws);
    await joinFull(server, room);
    await expectQuiet(a.ws);
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });

  test("occupants that never sent anything are stale from their connect time: the first goes", async () => {
    const { room, a, b } = await openPair(server);
    await sleep(PAST_STALE);
    const c = await joinEvicting(server, room, a, b);
    terminateAll(b.ws, c.ws);
  });

  test("silent occupants connected within STALE_AFTER_MS are not evicted: full", async () => {
    const { room, a, b } = await openPair(server);
    await joinFull(server, room);
    // (expectQuiet pings, so it comes only after the join.)
    await expectQuiet(a.ws);
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });
});
