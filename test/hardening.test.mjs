// Requests an attacker would send: upgrades the runtime refuses, a client's answer to a
// server's close, and close reasons longer than a close frame may carry. (An empty Origin header
// is refused by the routing core, `route.rs`; the local runtime drops empty header values before
// the Worker sees them, so it cannot be sent through Miniflare.)

import assert from "node:assert/strict";
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  closeFrame,
  connect,
  expectFrame,
  expectQuiet,
  nextFrame,
  openFirst,
  openPair,
  resume,
  roomName,
  send,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const FRIEND = "https://friend.example";
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** A raw HTTP request to `url` with exactly `headers`: `{status, body}` or `{upgraded}`. */
function rawRequest(url, { method = "GET", headers }) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, setHost: true });
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, type: res.headers["content-type"], body }));
    });
    req.once("upgrade", (_res, socket) => {
      socket.destroy();
      resolve({ upgraded: true });
    });
    req.once("error", reject);
    req.end();
  });
}

const upgradeHeaders = (extra) => ({ Connection: "Upgrade", Upgrade: "websocket", ...extra });

describe("hardening", () => {
  let server;
  before(async () => {
    server = await startServer({
      vars: { ALLOWED_ORIGINS: FRIEND, RATE_LIMIT_BURST: "3", RATE_LIMIT_PER_SEC: "0.01", RESUME_GRACE_MS: "5000" },
    });
  });
  after(() => server?.dispose());

  test("upgrades the runtime would refuse get 400 bad-upgrade and take no slot", async () => {
    const room = roomName("bad-upgrade");
    const url = server.http(`/ws/${room}`);
    const cases = [
      { "Sec-WebSocket-Version": "13" },
      { "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "8" },
      { "Sec-WebSocket-Key": KEY },
      { "Sec-WebSocket-Key": "not-a-key", "Sec-WebSocket-Version": "13" },
    ];
    for (const headers of cases) {
      const answer = await rawRequest(url, { headers: upgradeHeaders(headers) });
      assert.equal(answer.status, 400, JSON.stringify(headers));
      assert.match(answer.type ?? "", /^application\/json/);
      assert.equal(JSON.parse(answer.body).error.code, "bad-upgrade");
    }
    // The room is still empty: the next two peers pair up with no phantom between them.
    const { a, b } = await openPair(server, { room });
    assert.deepStrictEqual(
      server.events(room).map((e) => e.event),
      ["start", "join", "join", "ready"],
    );
    terminateAll(a.ws, b.ws);
  });

  test("a valid raw upgrade is still accepted", async () => {
    const room = roomName("raw-upgrade");
    const answer = await rawRequest(server.http(`/ws/${room}`), {
      headers: upgradeHeaders({ "Sec-WebSocket-Key": randomBytes(16).toString("base64"), "Sec-WebSocket-Version": "13" }),
    });
    assert.deepStrictEqual(answer, { upgraded: true });
  });

  test("a client that answers a 4429 close with 1000 keeps its slot away, not left", async () => {
    // b floods: it joined second, so its join's peer-joined and ready left it one token; a,
    // with its whole burst, watches.
    const { room, a, b } = await openPair(server);
    // Answer the server's close frame with 1000 instead of echoing its code.
    b.ws._receiver.removeAllListeners("conclude");
    const frame = new Promise((resolve) => b.ws._receiver.once("conclude", (code) => resolve(code)));
    b.ws._receiver.once("conclude", () => b.ws.close(1000, "bye"));
    send(b.ws, { type: "message", data: 0 });
    await expectFrame(a.ws, { type: "message", from: b.id, data: 0 });
    for (let n = 0; n < 4; n++) send(b.ws, { type: "message", data: "flood" });
    assert.equal(await frame, 4429);
    // b's bucket is spent, so its drop goes untold (docs/access.md, "Frames"); and no
    // peer-left follows: the next frame a gets is the answer to its own ping.
    await expectQuiet(a.ws);
    // The slot was kept: b resumes it, and on its still empty bucket a is not told.
    const back = await resume(server, room, b, [a.id]);
    await expectQuiet(a.ws);
    terminateAll(back.ws, a.ws);
  });

  test("a close reason over 123 bytes is answered at once with a valid close frame", async () => {
    const room = roomName("long-reason");
    const first = await openFirst(server, room);
    const reason = Buffer.from("r".repeat(200));
    const payload = Buffer.concat([Buffer.from([0x0f, 0xa1]), reason]); // code 4001
    // A masked close frame with a 16-bit length: ws itself refuses to send one.
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
    const header = Buffer.from([0x88, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const reply = closeFrame(first.ws, 3000);
    first.ws._socket.write(Buffer.concat([header, mask, masked]));
    const { code, reason: text } = await reply;
    assert.equal(code, 4001);
    assert.ok(Buffer.byteLength(text) <= 123, `reason of ${Buffer.byteLength(text)} bytes`);
    // The slot is released like any close of a connected socket with a non-1000 code: away.
    const next = await connect(server.ws(`/ws/${room}`));
    const welcome = await nextFrame(next);
    assert.deepStrictEqual(welcome.peers, [first.id]);
    terminateAll(next, first.ws);
  });
});
