// Real eviction: local workerd evicts a Durable Object that has been idle for ~10 s while its
// sockets hibernate. Three rooms are set up, left idle for 13 s, and then each must show that
// its object was re-created (a `wake` log line) and that nothing was lost: relay, ping/pong,
// leave, the last ping (for stale eviction) and a held slot's resume token.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  OBJECT_PING,
  closed,
  expectFrame,
  expectPong,
  expectQuiet,
  joinBeside,
  joinEvicting,
  openPair,
  resume,
  send,
  serverClose,
  sleep,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const IDLE_MS = 13_000;
const STALE_AFTER_MS = 5000;

describe("rooms survive eviction", { timeout: 60_000 }, () => {
  let server;
  let relayRoom; // a, b: untouched while idle
  let staleRoom; // a, b: b pinged once before the idle period
  let awayRoom; // a, b: b dropped just before the idle period
  let idleFrom; // index of the first log line printed after the idle period

  before(async () => {
    server = await startServer({
      vars: { STALE_AFTER_MS: String(STALE_AFTER_MS), RESUME_GRACE_MS: "60000" },
    });
    relayRoom = await openPair(server);
    staleRoom = await openPair(server);
    await expectPong(staleRoom.b.ws);
    awayRoom = await openPair(server);
    awayRoom.b.ws.terminate();
    await expectFrame(awayRoom.a.ws, { type: "peer-away", room: awayRoom.room, clientId: awayRoom.b.id });
    await server.waitForLine((l) => l.json?.event === "away" && l.json.room === awayRoom.room);
    // Nothing reaches the objects now; the runtime hibernates the sockets and evicts them.
    await sleep(IDLE_MS);
    idleFrom = server.lines.length;
  });
  after(async () => {
    terminateAll([relayRoom, staleRoom, awayRoom].map((p) => [p?.a.ws, p?.b.ws]));
    await server?.dispose();
  });

  /** Waits for the `wake` line of `room`, printed after the idle period. */
  async function woke(room) {
    const line = await server.waitForLine((l) => l.json?.event === "wake" && l.json.room === room);
    assert.ok(server.lines.indexOf(line) >= idleFrom, "the object woke before the idle period ended");
    assert.deepStrictEqual(line.json, { event: "wake", room });
    assert.equal(server.events(room).filter((e) => e.event === "start").length, 1);
  }

  test("relay both ways, ping/pong and leave work on the hibernated sockets", async () => {
    const { room, a, b } = relayRoom;
    send(a.ws, { type: "message", data: { after: "eviction" } });
    await expectFrame(b.ws, { type: "message", from: a.id, data: { after: "eviction" } });
    await woke(room);
    send(b.ws, { type: "message", data: "and back" });
    await expectFrame(a.ws, { type: "message", from: b.id, data: "and back" });
    for (const ws of [a.ws, b.ws]) {
      await expectPong(ws);
      await expectPong(ws, OBJECT_PING);
    }
    send(a.ws, { type: "leave" });
    assert.deepStrictEqual(await closed(a.ws), serverClose("LEFT"));
    await expectFrame(b.ws, { type: "peer-left", room, clientId: a.id, reason: "leave" });
    // The stored room is intact: a newcomer takes the free slot beside b.
    const c = await joinBeside(server, room, b);
    terminateAll(c.ws);
  });

  test("pings are read across eviction: of b's ping before it and a's after it, b's is stale", async () => {
    const { room, a, b } = staleRoom;
    await expectPong(a.ws); // answered by the runtime, without waking the object
    const c = await joinEvicting(server, room, b, a);
    await woke(room);
    terminateAll(c.ws);
  });

  test("a slot held for an away peer can be resumed after eviction", async () => {
    const { room, a, b } = awayRoom;
    const back = await resume(server, room, b, [a.id]);
    await woke(room);
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    await expectQuiet(a.ws);
    await expectQuiet(back.ws);
    terminateAll(back.ws);
  });
});
