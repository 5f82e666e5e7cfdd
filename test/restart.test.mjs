// A restart, as a deploy does it: the server is killed while sockets are open and started again
// on the same Durable Object storage. The slots come back as away; peers that resume keep their
// client ids, peers that never come back time out.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  checkWelcome,
  closed,
  connect,
  expectFrame,
  expectQuiet,
  nextFrame,
  openPair,
  resume,
  startServer,
  tempDir,
  terminateAll,
} from "./helpers/miniflare.mjs";

const GRACE = 2000;

describe("restart on the same storage", { timeout: 60_000 }, () => {
  const storage = tempDir("duet-restart-");
  const vars = { RESUME_GRACE_MS: String(GRACE) };
  let server;
  let oneBack; // only a comes back
  let bothBack; // both come back

  before(async () => {
    const first = await startServer({ vars, persistDir: storage.path });
    oneBack = await openPair(first);
    bothBack = await openPair(first);
    const sockets = [oneBack, bothBack].flatMap((p) => [p.a.ws, p.b.ws]);
    await first.dispose();
    await Promise.all(sockets.map((ws) => closed(ws)));
    server = await startServer({ vars, persistDir: storage.path });
  });
  after(async () => {
    await server?.dispose();
    storage.remove();
  });

  test("both slots come back away; the peer that resumes keeps its id, the other times out", async () => {
    const { room, a, b } = oneBack;
    const back = await resume(server, room, a, [b.id]);
    await expectFrame(back.ws, { type: "peer-left", room, clientId: b.id, reason: "timeout" }, GRACE + 5000);
    await expectQuiet(back.ws);
    assert.deepStrictEqual(server.events(room), [
      { event: "start", room },
      { event: "away", room, clientId: a.id },
      { event: "away", room, clientId: b.id },
      { event: "resume", room, clientId: a.id },
      { event: "leave", room, clientId: b.id, reason: "timeout" },
    ]);
    // b's token died with its slot: it is an ordinary join now.
    const late = await connect(server.ws(`/ws/${room}?resume=${b.token}`));
    const newcomer = checkWelcome(await nextFrame(late), { type: "joined", room, peers: [a.id], resumed: false });
    assert.notEqual(newcomer.id, b.id);
    terminateAll(back.ws, late);
  });

  test("when both peers resume, they keep their ids and relay again, with no second ready", async () => {
    const { room, a, b } = bothBack;
    const backA = await resume(server, room, a, [b.id]);
    const backB = await resume(server, room, b, [a.id]);
    await expectFrame(backA.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    await expectQuiet(backA.ws);
    await expectQuiet(backB.ws);
    backB.ws.send('{"type":"message","data":"after the restart"}');
    await expectFrame(backA.ws, { type: "message", from: b.id, data: "after the restart" });
    terminateAll(backA.ws, backB.ws);
  });
});
