// Stale eviction (STALE_AFTER_MS=1000): when a join finds the room full, an occupant whose last
// ping (or, if it never pinged, its connect time) is older than STALE_AFTER_MS is closed with
// 4408, its peer gets peer-left (stale) before the newcomer's peer-joined and ready, and the join
// proceeds. The waits below let time pass on purpose: staleness is about elapsed time.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  OBJECT_PING,
  PING,
  PONG,
  checkWelcome,
  closeFrame,
  closed,
  connect,
  expectFrame,
  expectQuiet,
  nextFrame,
  nextText,
  openPair,
  sleep,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const STALE_AFTER_MS = 1000;
const PAST_STALE = STALE_AFTER_MS + 300;

async function ping(ws, text = PING) {
  ws.send(text);
  assert.equal(await nextText(ws), PONG);
}

/**
 * A newcomer joins `room` where `stale` must be evicted and `kept` stays: checks every frame
 * on the three sockets, in order.
 */
async function joinEvicting(server, room, stale, kept) {
  const c = await connect(server.ws(`/ws/${room}`));
  const newcomer = checkWelcome(await nextFrame(c), { type: "joined", room, peers: [kept.id], resumed: false });
  // The close frame, not the TCP end: workerd keeps the connection of a socket that never sent
  // a frame open until the object hibernates (docs/protocol.md, known runtime quirk).
  assert.deepStrictEqual(await closeFrame(stale.ws), { code: 4408, reason: "stale" });
  await expectFrame(kept.ws, { type: "peer-left", room, clientId: stale.id, reason: "stale" });
  await expectFrame(kept.ws, { type: "peer-joined", room, clientId: newcomer.id, resumed: false });
  const ready = { type: "ready", room, initiator: kept.id, peers: [kept.id, newcomer.id] };
  await expectFrame(kept.ws, ready);
  await expectFrame(c, ready);
  return { ws: c, ...newcomer };
}

/** A join that must find the room full. */
async function joinRefused(server, room) {
  const c = await connect(server.ws(`/ws/${room}`));
  await expectFrame(c, { type: "full", room, maxPeers: 2 });
  assert.deepStrictEqual(await closed(c), { code: 4409, reason: "room full" });
}

describe(`stale eviction (STALE_AFTER_MS=${STALE_AFTER_MS})`, () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { STALE_AFTER_MS: String(STALE_AFTER_MS) } });
  });
  after(() => server?.dispose());

  test("an occupant whose last exact ping is too old is evicted for a newcomer", async () => {
    const { room, a, b } = await openPair(server);
    await ping(a.ws); // answered by the runtime's auto-response
    await sleep(PAST_STALE);
    await ping(b.ws);
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
    await sleep(PAST_STALE);
    await ping(b.ws, OBJECT_PING);
    const c = await joinEvicting(server, room, a, b);
    terminateAll(b.ws, c.ws);
  });

  test("of two stale occupants, the one with the older ping goes", async () => {
    const { room, a, b } = await openPair(server);
    await ping(b.ws);
    await sleep(100);
    await ping(a.ws);
    await sleep(PAST_STALE);
    const c = await joinEvicting(server, room, b, a);
    terminateAll(a.ws, c.ws);
  });

  test("a recent ping protects an occupant: the other, stale one goes", async () => {
    const { room, a, b } = await openPair(server);
    await ping(a.ws);
    await ping(b.ws);
    await sleep(PAST_STALE);
    await ping(a.ws);
    const c = await joinEvicting(server, room, b, a);
    terminateAll(a.ws, c.ws);
  });

  test("occupants that pinged within STALE_AFTER_MS are not evicted: full", async () => {
    const { room, a, b } = await openPair(server);
    await ping(a.ws);
    await ping(b.ws);
    await joinRefused(server, room);
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
    await joinRefused(server, room);
    // (expectQuiet pings, so it comes only after the join.)
    await expectQuiet(a.ws);
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });
});
