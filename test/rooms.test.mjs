// Rooms of two with the default configuration: the handshake, relay, isolation between rooms,
// full rooms, leaving, closing, ping/pong and what the logs may contain.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  ErrorCode,
  MAX_PEERS,
  checkWelcome,
  closed,
  connect,
  expectError,
  expectFrame,
  expectPong,
  expectQuiet,
  joinBeside,
  joinFull,
  nextFrame,
  openFirst,
  openPair,
  relayVerbatim,
  roomName,
  send,
  serverClose,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

/** An SDP offer of about 10 KB, as a browser would produce for audio and video. */
function sdpOffer() {
  const lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1"];
  for (let m = 0; m < 2; m++) {
    lines.push(`m=${m ? "video" : "audio"} 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126`, "c=IN IP4 0.0.0.0");
    for (let i = 0; i < 60; i++) {
      lines.push(`a=candidate:${1000 + i} 1 udp 2122260223 192.168.${m}.${i} ${50000 + i} typ host generation 0 network-id 1`);
    }
    lines.push("a=ice-ufrag:Zq9x", "a=ice-pwd:2d+Jv6yZl0pvq7m4a0c2b1Rk", "a=fingerprint:sha-256 " + "AB:".repeat(31) + "CD");
  }
  return lines.join("\r\n") + "\r\n";
}

/** Client `data` values as raw JSON text; the relay must pass each through byte for byte. */
const PAYLOADS = {
  string: '"hello"',
  "nested object": '{"a":{"b":[1,2,{"c":null}],"d":true},"e":"f"}',
  null: "null",
  "true": "true",
  zero: "0",
  "negative float with exponent": "-1.5e+300",
  "integer beyond double precision": "12345678901234567890",
  "empty array": "[]",
  "empty object": "{}",
  "insignificant whitespace": '{ "spaced" : [ 1 , 2 ] ,\n\t"x" : "y" }',
  unicode: '"é中😀 \\u00e9 \\ud83d\\ude00 \\"quoted\\" \\n"',
  "SDP-sized offer": JSON.stringify({ type: "offer", sdp: sdpOffer() }),
};

describe("rooms", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.dispose());

  test("created, joined, peer-joined, then ready to both with the first peer as initiator", async () => {
    const room = roomName("handshake");
    const a = await connect(server.ws(`/ws/${room}`));
    const first = checkWelcome(await nextFrame(a), { type: "created", room, peers: [] });
    const b = await connect(server.ws(`/ws/${room}`));
    const second = checkWelcome(await nextFrame(b), { type: "joined", room, peers: [first.id], resumed: false });
    assert.notEqual(first.id, second.id);
    assert.notEqual(first.token, second.token);
    await expectFrame(a, { type: "peer-joined", room, clientId: second.id, resumed: false });
    const ready = { type: "ready", room, initiator: first.id, peers: [first.id, second.id] };
    await expectFrame(a, ready);
    await expectFrame(b, ready);
    await expectQuiet(a);
    await expectQuiet(b);
    terminateAll(a, b);
  });

  test("with ALLOWED_ORIGINS=* any origin may open sockets", async () => {
    const { ws } = await openFirst(server, roomName("any-origin"), { origin: "https://anyone.example" });
    terminateAll(ws);
  });

  for (const [name, raw] of Object.entries(PAYLOADS)) {
    test(`relay passes data through unchanged both ways: ${name}`, async () => {
      const { a, b } = await openPair(server);
      await relayVerbatim(a, b, raw);
      await relayVerbatim(b, a, raw);
      terminateAll(a.ws, b.ws);
    });
  }

  test("messages are never echoed to the sender", async () => {
    const { a, b } = await openPair(server);
    await relayVerbatim(a, b, '"to b"');
    await relayVerbatim(b, a, '"to a"');
    await expectQuiet(a.ws);
    await expectQuiet(b.ws);
    terminateAll(a.ws, b.ws);
  });

  test("50 rooms in parallel: every peer receives only its own room's messages", async () => {
    const pairs = await Promise.all(Array.from({ length: 50 }, () => openPair(server)));
    for (const { room, a, b } of pairs) {
      send(a.ws, { type: "message", data: { room, from: "a" } });
      send(b.ws, { type: "message", data: { room, from: "b" } });
    }
    await Promise.all(
      pairs.map(async ({ room, a, b }) => {
        await expectFrame(b.ws, { type: "message", from: a.id, data: { room, from: "a" } });
        await expectFrame(a.ws, { type: "message", from: b.id, data: { room, from: "b" } });
        await expectQuiet(a.ws);
        await expectQuiet(b.ws);
      }),
    );
    terminateAll(pairs.map(({ a, b }) => [a.ws, b.ws]));
  });

  test("a third peer gets full and a 4409 close; the occupants notice nothing", async () => {
    const { room, a, b } = await openPair(server);
    await joinFull(server, room);
    await expectQuiet(a.ws);
    await expectQuiet(b.ws);
    // The room still works for its two peers.
    await relayVerbatim(a, b, '"still here"');
    terminateAll(a.ws, b.ws);
  });

  test("a slot held for an away peer still counts: the room is full", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.terminate();
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    await joinFull(server, room);
    await expectQuiet(a.ws);
    terminateAll(a.ws);
  });

  test("leave: the peer gets peer-left (leave), the leaver is closed with 1000 left", async () => {
    const { room, a, b } = await openPair(server);
    send(a.ws, { type: "leave" });
    assert.deepStrictEqual(await closed(a.ws), serverClose("LEFT"));
    await expectFrame(b.ws, { type: "peer-left", room, clientId: a.id, reason: "leave" });
    await expectQuiet(b.ws);
    // The slot is free: a newcomer joins beside b, and b is now the initiator.
    const c = await joinBeside(server, room, b);
    terminateAll(b.ws, c.ws);
  });

  test("a client close with 1000 is answered and releases the slot: peer-left (leave)", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.close(1000, "bye");
    assert.equal((await closed(b.ws)).code, 1000);
    await expectFrame(a.ws, { type: "peer-left", room, clientId: b.id, reason: "leave" });
    await expectQuiet(a.ws);
    terminateAll(a.ws);
  });

  test("a client close with another code is answered with that code and marks the slot away", async () => {
    for (const code of [1001, 3000, 4001]) {
      const { room, a, b } = await openPair(server);
      b.ws.close(code, "brb");
      assert.equal((await closed(b.ws)).code, code);
      await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
      await expectQuiet(a.ws);
      terminateAll(a.ws);
    }
  });

  test("a client close without a code (1005) is answered with 1000 and marks the slot away", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.close();
    assert.equal((await closed(b.ws)).code, 1000);
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    await expectQuiet(a.ws);
    terminateAll(a.ws);
  });

  test("the exact ping text is answered with exactly the pong text", async () => {
    const { ws } = await openFirst(server, roomName("ping"));
    for (let i = 0; i < 3; i++) {
      await expectPong(ws);
    }
    terminateAll(ws);
  });

  test("other spellings of a ping are answered with pong by the object", async () => {
    const { ws } = await openFirst(server, roomName("ping"));
    for (const ping of ['{"type": "ping"}', ' {"type":"ping"}', '{"type":"ping","t":1}', '{"t":[1],"type":"ping"}', '{"type":"p\\u0069ng"}']) {
      await expectPong(ws, ping, ping);
    }
    terminateAll(ws);
  });

  test("pings are answered to the sender only, never relayed", async () => {
    const { a, b } = await openPair(server);
    await expectPong(a.ws);
    await expectPong(a.ws, '{"type":"ping","n":2}');
    await expectQuiet(b.ws);
    await relayVerbatim(a, b, '"after the pings"');
    terminateAll(a.ws, b.ws);
  });

  test("no-peer: a message with nobody else connected is refused, the socket stays open", async () => {
    const first = await openFirst(server, roomName("alone"));
    send(first.ws, { type: "message", data: "anyone?" });
    await expectError(first.ws, ErrorCode.NO_PEER);
    await expectQuiet(first.ws);
    terminateAll(first.ws);
  });

  test("no-peer: a message while the other peer is away is refused", async () => {
    const { room, a, b } = await openPair(server);
    b.ws.terminate();
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    send(a.ws, { type: "message", data: "are you there?" });
    await expectError(a.ws, ErrorCode.NO_PEER);
    terminateAll(a.ws);
  });

  test("lifecycle events are logged as JSON lines, without message contents or tokens", async () => {
    const secret = "s3cret-payload-" + roomName("x");
    const { room, a, b } = await openPair(server);
    send(a.ws, { type: "message", data: secret });
    await expectFrame(b.ws, { type: "message", from: a.id, data: secret });
    const c = await connect(server.ws(`/ws/${room}`));
    await expectFrame(c, { type: "full", room, maxPeers: MAX_PEERS });
    send(b.ws, { type: "leave" });
    await closed(b.ws);
    await server.waitForLine((l) => l.json?.event === "leave" && l.json.room === room);
    assert.deepStrictEqual(server.events(room), [
      { event: "start", room },
      { event: "join", room, clientId: a.id },
      { event: "join", room, clientId: b.id },
      { event: "ready", room, clientId: a.id },
      { event: "full", room },
      { event: "leave", room, clientId: b.id, reason: "leave" },
    ]);
    for (const line of server.lines.filter((l) => l.stream === "stdout")) {
      assert.equal(typeof line.json?.event, "string", `not a JSON event line: ${line.text}`);
    }
    for (const line of server.lines) {
      for (const forbidden of [secret, a.token, b.token]) {
        assert.ok(!line.text.includes(forbidden), `log line leaks ${forbidden}: ${line.text}`);
      }
    }
    terminateAll(a.ws, c);
  });
});
