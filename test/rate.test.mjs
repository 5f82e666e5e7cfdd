// The per-socket rate limit: RATE_LIMIT_BURST frames at once, refilled at RATE_LIMIT_PER_SEC;
// refused frames get `rate-limited`, and more than RATE_LIMIT_BURST refusals within 10 s close
// the socket with 4429, which leaves its slot away (resumable) like any other drop.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CloseCode,
  DEFAULT_ICE_SERVERS,
  ErrorCode,
  OBJECT_PING,
  closed,
  expectError,
  expectFrame,
  expectPong,
  expectQuiet,
  nextFrameFrom,
  openPair,
  relayMany,
  resume,
  send,
  serverClose,
  sleep,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const message = (n) => ({ type: "message", data: n });

describe("rate limit (burst 5, refill 0.01/s)", () => {
  const BURST = 5;
  const GRACE = 1000;
  let server;
  before(async () => {
    server = await startServer({
      vars: { RATE_LIMIT_BURST: String(BURST), RATE_LIMIT_PER_SEC: "0.01", RESUME_GRACE_MS: String(GRACE) },
    });
  });
  after(() => server?.dispose());

  /**
   * With `a`'s bucket empty: RATE_LIMIT_BURST refusals leave the socket open (in this 10 s
   * window), one more closes it with 4429.
   */
  async function refuseUntilClosed(a) {
    for (let i = 0; i < BURST; i++) send(a.ws, message("refused"));
    for (let i = 0; i < BURST; i++) await expectError(a.ws, ErrorCode.RATE_LIMITED);
    await expectPong(a.ws, undefined, "RATE_LIMIT_BURST refusals in one window must not close");
    send(a.ws, message("the last straw"));
    await expectError(a.ws, ErrorCode.RATE_LIMITED);
    assert.deepStrictEqual(await closed(a.ws), serverClose("RATE_LIMITED"));
  }

  test("ice-servers frames count against the bucket like every frame", async () => {
    const { a, b } = await openPair(server);
    for (let i = 0; i < BURST; i++) send(a.ws, { type: "ice-servers" });
    for (let i = 0; i < BURST; i++) {
      // Without TURN configured: the static list, which never expires.
      await expectFrame(a.ws, { type: "ice-servers", iceServers: DEFAULT_ICE_SERVERS, expiresAt: null });
    }
    send(a.ws, { type: "ice-servers" });
    await expectError(a.ws, ErrorCode.RATE_LIMITED);
    send(b.ws, message("b's bucket is its own"));
    await expectFrame(a.ws, { type: "message", from: b.id, data: "b's bucket is its own" });
    terminateAll(a.ws, b.ws);
  });

  test("RATE_LIMIT_BURST frames pass; the next is refused with rate-limited and dropped", async () => {
    const { a, b } = await openPair(server);
    await relayMany(a, b, BURST);
    send(a.ws, message("one too many"));
    await expectError(a.ws, ErrorCode.RATE_LIMITED);
    // The exact ping is answered by the runtime, not the object, so it costs no token.
    await expectPong(a.ws);
    // Any other ping reaches the object and is refused like every other frame.
    a.ws.send(OBJECT_PING);
    await expectError(a.ws, ErrorCode.RATE_LIMITED);
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });

  test("every frame that reaches the object costs a token, refused ones included", async () => {
    const { a, b } = await openPair(server);
    for (const frame of ["not json", "{}", '{"type":"message"}']) {
      a.ws.send(frame);
      await expectError(a.ws, ErrorCode.BAD_MESSAGE);
    }
    a.ws.send(Buffer.from("binary"), { binary: true });
    await expectError(a.ws, ErrorCode.UNSUPPORTED_BINARY);
    send(a.ws, message("the fifth"));
    await expectFrame(b.ws, { type: "message", from: a.id, data: "the fifth" });
    send(a.ws, message("the sixth"));
    await expectError(a.ws, ErrorCode.RATE_LIMITED);
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });

  test("more than RATE_LIMIT_BURST refusals close with 4429; the slot goes away, then times out", async () => {
    const { room, a, b } = await openPair(server);
    await relayMany(a, b, BURST);
    await refuseUntilClosed(a);
    // Its bucket is spent, so the drop goes untold (docs/access.md, "Frames"); the grace's
    // end is told all the same.
    await expectFrame(b.ws, { type: "peer-left", room, clientId: a.id, reason: "timeout" }, GRACE + 5000);
    await expectQuiet(b.ws);
    terminateAll(b.ws);
  });

  test("a peer closed with 4429 resumes with the bucket it left with: its next frame closes it again", async () => {
    const { room, a, b } = await openPair(server);
    await relayMany(a, b, BURST);
    for (let i = 0; i <= BURST; i++) send(a.ws, message("refused"));
    assert.equal((await closed(a.ws)).code, CloseCode.RATE_LIMITED);
    // On a spent bucket neither the drop nor the return is told to b.
    const again = await resume(server, room, a, [b.id]);
    send(again.ws, message("after the resume"));
    await expectError(again.ws, "rate-limited");
    assert.deepStrictEqual(await closed(again.ws), { code: 4429, reason: "rate limited" });
    await expectQuiet(b.ws);
    terminateAll(b.ws);
  });

  test("resuming over and over relays no more than RATE_LIMIT_BURST in all", async () => {
    const { room, a, b } = await openPair(server);
    let slot = a;
    // Cycle 1: BURST - 1 frames pass.
    for (let n = 0; n < BURST - 1; n++) send(slot.ws, message(`one-${n}`));
    for (let n = 0; n < BURST - 1; n++) await expectFrame(b.ws, { type: "message", from: a.id, data: `one-${n}` });
    // The resume's peer-joined to b takes the one token left.
    slot = await resume(server, room, slot, [b.id]);
    await expectFrame(b.ws, { type: "peer-joined", room, clientId: a.id, resumed: true });
    // Cycle 2, on a new socket: every frame is refused.
    for (let n = 0; n < BURST - 1; n++) send(slot.ws, message(`two-${n}`));
    for (let n = 0; n < BURST - 1; n++) await expectError(slot.ws, "rate-limited");
    await expectQuiet(b.ws);
    terminateAll(slot.ws, b.ws);
  });

  test("refusals are counted over 10 s: RATE_LIMIT_BURST refusals per window do not close", async () => {
    const { a, b } = await openPair(server);
    const start = Date.now();
    await relayMany(a, b, BURST);
    for (let i = 0; i < BURST; i++) send(a.ws, message("refused"));
    for (let i = 0; i < BURST; i++) await expectError(a.ws, ErrorCode.RATE_LIMITED);
    // Let the 10 s window pass. b keeps the object busy meanwhile (a ping every 3.5 s, within
    // the three tokens its join left it), so the object is not evicted.
    while (Date.now() - start < 10_200) {
      await expectPong(b.ws, OBJECT_PING);
      await sleep(Math.min(3500, 10_200 - (Date.now() - start)));
    }
    await refuseUntilClosed(a);
    terminateAll(b.ws);
  });
});

describe("rate limit refill (burst 3, 2/s)", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { RATE_LIMIT_BURST: "3", RATE_LIMIT_PER_SEC: "2" } });
  });
  after(() => server?.dispose());

  test("tokens come back at RATE_LIMIT_PER_SEC", async () => {
    // 2 tokens per second: between 0.5 s and 1 s after the bucket's last token went, exactly one
    // frame may pass again. The probes go out 0.6 s after the last relay arrived. The refill is
    // time itself, so there is no state to wait on but the clock; what a busy machine can spoil
    // is the window: if the second probe was relayed (a second token) and the object may have
    // handled it a second or more after the last token went (measured from before the relays were
    // sent until its relay arrived), the attempt proves nothing either way, and is made again on
    // a fresh pair, with a full bucket (at most 5 attempts). Any other outcome is judged.
    for (let attempt = 1; ; attempt++) {
      const { a, b } = await openPair(server);
      const sentAt = Date.now();
      await relayMany(a, b, 3);
      const relayedAt = Date.now();
      send(a.ws, message("too soon"));
      await expectError(a.ws, ErrorCode.RATE_LIMITED);
      await sleep(Math.max(0, 600 - (Date.now() - relayedAt)));
      send(a.ws, message("refilled"));
      send(a.ws, message("too soon again"));
      await expectFrame(b.ws, { type: "message", from: a.id, data: "refilled" });
      const next = await nextFrameFrom([a.ws, b.ws]);
      if (next.index === 1 && Date.now() - sentAt >= 1000 && attempt < 5) {
        terminateAll(a.ws, b.ws);
        continue;
      }
      assert.equal(next.index, 0, `the second probe was relayed: ${JSON.stringify(next.frame)}`);
      assert.deepStrictEqual(next.frame, { type: "error", code: ErrorCode.RATE_LIMITED, message: next.frame.message });
      await expectQuiet(b.ws);
      terminateAll(a.ws, b.ws);
      return;
    }
  });

  test("after a 4429 close and a refill, the resumed slot relays again", async () => {
    const { room, a, b } = await openPair(server);
    await relayMany(a, b, 3);
    for (let i = 0; i < 4; i++) send(a.ws, message("refused"));
    assert.equal((await closed(a.ws)).code, 4429);
    // The refill is the rule under test: 1.6 s at 2/s brings back all three tokens. The
    // drop went untold (the bucket was spent); the return costs one token for peer-joined.
    await sleep(1600);
    const again = await resume(server, room, a, [b.id]);
    await expectFrame(b.ws, { type: "peer-joined", room, clientId: a.id, resumed: true });
    await relayMany(again, b, 2);
    send(again.ws, message("the budget's end"));
    await expectError(again.ws, ErrorCode.RATE_LIMITED);
    await expectQuiet(b.ws);
    terminateAll(again.ws, b.ws);
  });
});
