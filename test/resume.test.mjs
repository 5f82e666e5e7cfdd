// Dropped sockets and resumes: peer-away, resuming a slot with its token (same client id, 4000
// on a socket still open, rotated token, a retry after a lost welcome, no second ready), the
// resume grace running out, a fresh join beside an away peer, and RESUME_GRACE_MS=0.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  checkWelcome,
  closed,
  closeFrame,
  connect,
  expectFrame,
  expectPong,
  expectQuiet,
  joinBeside,
  joinFull,
  nextFrame,
  openFirst,
  openPair,
  relayBothWays,
  resume,
  roomName,
  serverClose,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

describe("resume (RESUME_GRACE_MS=1500)", () => {
  const GRACE = 1500;
  let server;
  before(async () => {
    server = await startServer({ vars: { RESUME_GRACE_MS: String(GRACE) } });
  });
  after(() => server?.dispose());

  /** `back` resumed its slot beside `a`: a gets peer-joined (resumed) and nothing else, and they relay. */
  async function backWithoutReady(room, a, back) {
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: back.id, resumed: true });
    await expectQuiet(a.ws);
    await expectQuiet(back.ws);
    await relayBothWays(a, back);
    terminateAll(a.ws, back.ws);
  }

  // The initiator keeps its place too: no new ready, so no new pairing.
  for (const dropped of ["joiner", "initiator"]) {
    test(`a dropped socket (the ${dropped}) makes its peer get peer-away; a resume brings it back without a second ready`, async () => {
      const pair = await openPair(server);
      const [gone, stays] = dropped === "joiner" ? [pair.b, pair.a] : [pair.a, pair.b];
      gone.ws.terminate();
      await expectFrame(stays.ws, { type: "peer-away", room: pair.room, clientId: gone.id });
      const back = await resume(server, pair.room, gone, [stays.id]);
      await backWithoutReady(pair.room, stays, back);
    });
  }

  test("resuming a slot whose socket is still open closes that socket with 4000 replaced", async () => {
    const { room, a, b } = await openPair(server);
    // The old socket has been used (a ping answered by the runtime).
    await expectPong(b.ws);
    const back = await resume(server, room, b, [a.id]);
    assert.deepStrictEqual(await closed(b.ws), serverClose("REPLACED"));
    // The other peer sees only peer-joined: no peer-away, no peer-left, no ready.
    await backWithoutReady(room, a, back);
  });

  // workerd leaves the TCP connection of a hibernatable socket that never sent a frame open
  // after the close handshake (until the object hibernates), so for such a socket only the
  // close frame is prompt; the bundled client pings as soon as it is welcomed, which avoids
  // the case. The test above checks the full close of a socket that has sent a frame.
  test("a replaced socket that never sent a frame gets the close frame 4000 replaced", async () => {
    const { room, a, b } = await openPair(server);
    const back = await resume(server, room, b, [a.id]);
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    assert.deepStrictEqual(await closeFrame(b.ws), serverClose("REPLACED"));
    terminateAll(a.ws, back.ws);
  });

  test("the token is rotated: once the new one is used, the old one no longer resumes", async () => {
    const { room, a, b } = await openPair(server);
    const back = await resume(server, room, b, [a.id]);
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    await expectPong(back.ws);
    const again = await resume(server, room, back, [a.id]);
    assert.deepStrictEqual(await closed(back.ws), serverClose("REPLACED"));
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    // The first token is now unknown, so it is an ordinary join, and the room is full.
    await joinFull(server, room, { path: `/ws/${room}?resume=${b.token}` });
    await expectQuiet(a.ws);
    terminateAll(a.ws, again.ws);
  });

  // The welcome carrying the new token can be lost with its socket (a deploy, a network drop
  // right after the upgrade): the client then knows only the token it resumed with.
  test("a resume whose welcome was lost is retried with the same token and keeps the slot", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.terminate();
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    const lost = await resume(server, room, b, [a.id]);
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    lost.ws.terminate();
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    const retry = await resume(server, room, b, [a.id]);
    assert.notEqual(retry.token, lost.token);
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    await expectQuiet(a.ws);
    await relayBothWays(a, retry);
    // The token that never arrived opens nothing now; the one retried with still does, until
    // the newest is used.
    await joinFull(server, room, { path: `/ws/${room}?resume=${lost.token}` });
    await expectPong(retry.ws);
    const newest = await resume(server, room, retry, [a.id]);
    assert.deepStrictEqual(await closed(retry.ws), serverClose("REPLACED"));
    await expectFrame(a.ws, { type: "peer-joined", room, clientId: b.id, resumed: true });
    await joinFull(server, room, { path: `/ws/${room}?resume=${b.token}` });
    await expectQuiet(a.ws);
    terminateAll(a.ws, newest.ws);
  });

  test("an unknown token, or a token of another room, is an ordinary join", async () => {
    const unknown = randomBytes(32).toString("hex");
    const room = roomName("unknown-token");
    const ws = await connect(server.ws(`/ws/${room}?resume=${unknown}`));
    const first = { ws, ...checkWelcome(await nextFrame(ws), { type: "created", room, peers: [] }) };
    const elsewhere = await openFirst(server, roomName("elsewhere"));
    const second = await joinBeside(server, room, first, { path: `/ws/${room}?resume=${elsewhere.token}` });
    assert.notEqual(second.id, elsewhere.id);
    // The slot in the other room is untouched.
    await expectQuiet(elsewhere.ws);
    terminateAll(ws, second.ws, elsewhere.ws);
  });

  test("when nobody resumes within RESUME_GRACE_MS the peer gets peer-left (timeout)", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.terminate();
    const awayAt = Date.now();
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    await expectFrame(a.ws, { type: "peer-left", room, clientId: b.id, reason: "timeout" }, GRACE + 5000);
    assert.ok(Date.now() - awayAt >= GRACE - 50, "the slot was released before the grace ran out");
    await expectQuiet(a.ws);
    // The expired token is unknown now: an ordinary join beside a, which gets a new ready.
    const late = await joinBeside(server, room, a, { path: `/ws/${room}?resume=${b.token}` });
    assert.notEqual(late.id, b.id);
    terminateAll(a.ws, late.ws);
  });

  test("a lone peer that drops and resumes gets its room back", async () => {
    const room = roomName("lone");
    const first = await openFirst(server, room);
    first.ws.terminate();
    // Nobody is there to be told; the resume finds the slot held.
    const back = await resume(server, room, first, []);
    await expectQuiet(back.ws);
    terminateAll(back.ws);
  });

  test("a fresh join beside an away peer lists it; ready waits until both are connected", async () => {
    const room = roomName("beside-away");
    const first = await openFirst(server, room);
    first.ws.terminate();
    // The newcomer joins while the first slot is away.
    const c = await connect(server.ws(`/ws/${room}`));
    const newcomer = checkWelcome(await nextFrame(c), { type: "joined", room, peers: [first.id], resumed: false });
    await expectQuiet(c);
    // The first peer resumes: the pair is complete for the first time, so both get ready.
    const back = await resume(server, room, first, [newcomer.id]);
    await expectFrame(c, { type: "peer-joined", room, clientId: first.id, resumed: true });
    const ready = { type: "ready", room, initiator: first.id, peers: [first.id, newcomer.id] };
    await expectFrame(c, ready);
    await expectFrame(back.ws, ready);
    await relayBothWays(back, { ws: c, id: newcomer.id });
    terminateAll(back.ws, c);
  });

  test("the peer beside an away slot that times out is told, and the room is free again", async () => {
    const room = roomName("beside-timeout");
    const first = await openFirst(server, room);
    first.ws.terminate();
    const c = await connect(server.ws(`/ws/${room}`));
    const newcomer = { ws: c, ...checkWelcome(await nextFrame(c), { type: "joined", room, peers: [first.id], resumed: false }) };
    await expectFrame(c, { type: "peer-left", room, clientId: first.id, reason: "timeout" }, GRACE + 5000);
    const d = await joinBeside(server, room, newcomer);
    terminateAll(c, d.ws);
  });
});

describe("no resume grace (RESUME_GRACE_MS=0)", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { RESUME_GRACE_MS: "0" } });
  });
  after(() => server?.dispose());

  test("a dropped socket releases its slot at once: peer-left (closed)", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.terminate();
    await expectFrame(a.ws, { type: "peer-left", room, clientId: b.id, reason: "closed" });
    await expectQuiet(a.ws);
    // The token died with the slot: it is an ordinary join now.
    const late = await connect(server.ws(`/ws/${room}?resume=${b.token}`));
    const newcomer = checkWelcome(await nextFrame(late), { type: "joined", room, peers: [a.id], resumed: false });
    assert.notEqual(newcomer.id, b.id);
    terminateAll(a.ws, late);
  });

  test("a close with a code other than 1000 also releases the slot as closed", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.close(4001, "gone");
    await expectFrame(a.ws, { type: "peer-left", room, clientId: b.id, reason: "closed" });
    terminateAll(a.ws);
  });

  test("a client close with 1000 is still a leave", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.close(1000);
    await expectFrame(a.ws, { type: "peer-left", room, clientId: b.id, reason: "leave" });
    terminateAll(a.ws);
  });
});
