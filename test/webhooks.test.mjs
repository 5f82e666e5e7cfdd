// Lifecycle webhooks (docs/webhooks.md) delivered by the Worker to a real local HTTP receiver:
// each type with its fields and a valid signature (checked with the docs' own receiver code),
// retries with the same id and in order, and a receiver that is down across an eviction and a
// server restart receiving everything afterwards. The last suite takes about a minute, as the
// retry schedule does; both suites run side by side.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ROOT,
  closed,
  connect,
  joinEvicting,
  nextFrame,
  openPair,
  relays,
  roomName,
  send,
  sleep,
  startServer,
  tempDir,
  terminateAll,
} from "./helpers/miniflare.mjs";

const SECRET = "whsec-test-0123456789";
const GRACE = 1000;
const STALE_AFTER_MS = 1000;

// The receiver code of docs/webhooks.md, run as written.
const DOC = readFileSync(join(ROOT, "docs/webhooks.md"), "utf8");
const EXAMPLE = /<!-- example: receiver -->\s*```js\n([\s\S]*?)```/.exec(DOC)?.[1];
const EXAMPLE_FILE = join(ROOT, "test", ".webhook-receiver.example.mjs");
writeFileSync(EXAMPLE_FILE, EXAMPLE ?? "throw new Error('docs/webhooks.md has no receiver example');");
const { verifyDuetSignature, createReceiver } = await import(EXAMPLE_FILE);
rmSync(EXAMPLE_FILE, { force: true });

/** A loopback port with nothing listening on it. */
function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * An HTTP receiver on `port` (0: any) that records every request, valid or not, and answers
 * `status(request)` (200 unless told otherwise). `stop()` and `start()` take it down and up on
 * the same port.
 */
async function recordingReceiver(port = 0) {
  const requests = [];
  const waiters = new Set();
  let status = () => 200;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const request = {
        method: req.method,
        path: req.url,
        headers: req.headers,
        raw,
        event: JSON.parse(raw.toString("utf8")),
        valid: verifyDuetSignature(raw, req.headers["duet-signature"], SECRET),
        receivedAt: Date.now(),
      };
      requests.push(request);
      res.writeHead(status(request)).end();
      for (const waiter of waiters) waiter();
    });
  });
  const listen = (p) => new Promise((resolve) => server.listen(p, "127.0.0.1", resolve));
  await listen(port);
  const bound = server.address().port;
  return {
    url: `http://127.0.0.1:${bound}/hooks/duet`,
    port: bound,
    requests,
    setStatus(fn) {
      status = fn;
    },
    /** The requests about `room`, in arrival order. */
    of(room) {
      return requests.filter((r) => r.event.room === room);
    },
    /** Resolves once `predicate(requests of room)` holds. */
    until(room, predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(this.of(room))) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(this.of(room));
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`receiver: condition not met for ${room}; got ${JSON.stringify(this.of(room).map((r) => r.event))}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
    start: () => listen(bound),
  };
}


/** The events of `requests`, first copies only, in order. */
function firstCopies(requests) {
  const seen = new Map();
  for (const r of requests) if (!seen.has(r.event.id)) seen.set(r.event.id, r.event);
  return [...seen.values()];
}

/** The seven events of a call of `a` (initiator) and `b`, where `first` and `second` left. */
function callEvents(room, a, b, [first, second]) {
  return [
    { type: "room.started", room },
    { type: "peer.joined", room, clientId: a.id, resumed: false },
    { type: "peer.joined", room, clientId: b.id, resumed: false },
    { type: "call.ready", room, peers: [a.id, b.id], initiator: a.id },
    { type: "peer.left", room, clientId: first.id, reason: "leave" },
    { type: "peer.left", room, clientId: second.id, reason: "leave" },
    { type: "room.ended", room },
  ];
}

/** `events` without the fields whose values vary, after checking their shapes. */
function stable(events, a) {
  return events.map((e, i) => {
    assert.equal(e.id, `${a.id}-${i + 1}`, "ids count up within the call");
    assert.ok(Number.isSafeInteger(e.at) && Math.abs(Date.now() - e.at) < 600_000, `at: ${e.at}`);
    const { id, at, startedAt, endedAt, callMs, ...rest } = e;
    if (e.type === "room.ended") {
      assert.equal(startedAt, events[0].at);
      assert.equal(endedAt, e.at);
      assert.ok(callMs > 0 && callMs <= endedAt - startedAt, `callMs ${callMs}`);
    }
    return rest;
  });
}

/** A call in a fresh room: both join, relay a message, `a` leaves, then `b` closes with 1000. */
async function call(server) {
  const { room, a, b } = await openPair(server);
  await relays(a, b, "v=0 o=- secret-sdp-7f3a IN IP4 192.0.2.7");
  send(a.ws, { type: "leave" });
  await closed(a.ws);
  await nextFrame(b.ws); // peer-left
  b.ws.close(1000);
  await closed(b.ws);
  return { room, a, b };
}

describe("lifecycle webhooks", { concurrency: true }, () => {
  describe("delivery to a receiver that is up", { concurrency: 1 }, () => {
    let server;
    let receiver;
    before(async () => {
      receiver = await recordingReceiver();
      server = await startServer({
        vars: {
          WEBHOOK_URL: receiver.url,
          WEBHOOK_SECRET: SECRET,
          RESUME_GRACE_MS: String(GRACE),
          STALE_AFTER_MS: String(STALE_AFTER_MS),
        },
      });
    });
    after(async () => {
      await server?.dispose();
      await receiver?.stop();
    });

    test("a call's events arrive in order, signed, without contents or tokens", async () => {
      const { room, a, b } = await call(server);
      const requests = await receiver.until(room, (rs) => rs.some((r) => r.event.type === "room.ended"));
      assert.deepStrictEqual(stable(requests.map((r) => r.event), a), callEvents(room, a, b, [a, b]));
      for (const r of requests) {
        assert.equal(r.method, "POST");
        assert.equal(r.path, "/hooks/duet");
        assert.equal(r.headers["content-type"], "application/json");
        assert.ok(r.valid, `signature of ${r.event.type}: ${r.headers["duet-signature"]}`);
        const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(r.headers["duet-signature"]) ?? [];
        assert.ok(Math.abs(Number(t) - Date.now() / 1000) < 60, "t is the attempt's time");
        assert.equal(v1, createHmac("sha256", SECRET).update(`${t}.${r.raw}`).digest("hex"));
        for (const secret of ["secret-sdp-7f3a", "192.0.2.7", a.token, b.token, "resumeToken", "iceServers"]) {
          assert.ok(!r.raw.includes(secret), `${secret} in ${r.raw}`);
        }
      }
      // The docs' verifier refuses a changed body, another secret, and a five-minute-old t.
      const { raw, headers } = requests[0];
      const header = headers["duet-signature"];
      const t = Number(/t=(\d+)/.exec(header)[1]);
      assert.equal(verifyDuetSignature(Buffer.from(raw.toString().replace("room.started", "room.ended")), header, SECRET), false);
      assert.equal(verifyDuetSignature(raw, header, "another-secret"), false);
      assert.equal(verifyDuetSignature(raw, header, SECRET, t + 301), false);
      assert.equal(verifyDuetSignature(raw, header, SECRET, t + 299), true);
    });

    test("a client's report becomes call.connected or call.failed, marked as the client's, and a log line", async () => {
      const { room, a, b } = await openPair(server);
      send(b.ws, { type: "report", outcome: "connected", path: "relay", transport: "tcp", connectMs: 1834, iceRestarts: 1, address: "192.0.2.7" });
      send(a.ws, { type: "report", outcome: "failed", connectMs: 30000, iceRestarts: 2 });
      // A bad one is refused and changes nothing.
      send(a.ws, { type: "report", outcome: "connected", path: "p2p", transport: "udp", connectMs: 5, iceRestarts: 0 });
      assert.equal((await nextFrame(a.ws)).code, "bad-report");
      const requests = await receiver.until(room, (rs) => rs.filter((r) => r.event.type.startsWith("call.") && r.event.type !== "call.ready").length >= 2);
      // Two sockets: their reports may reach the room in either order.
      const reports = firstCopies(requests)
        .filter((e) => e.type === "call.connected" || e.type === "call.failed")
        .map(({ id, at, ...rest }) => rest)
        .sort((x, y) => x.type.localeCompare(y.type));
      assert.deepStrictEqual(reports, [
        { type: "call.connected", room, clientId: b.id, reportedBy: "client", path: "relay", transport: "tcp", connectMs: 1834, iceRestarts: 1 },
        { type: "call.failed", room, clientId: a.id, reportedBy: "client", connectMs: 30000, iceRestarts: 2 },
      ]);
      assert.ok(requests.every((r) => !r.raw.includes("192.0.2.7")), "a report's extra fields go nowhere");
      const line = await server.waitForLine((l) => l.json?.event === "call-connected" && l.json.room === room);
      assert.deepStrictEqual(line.json, { event: "call-connected", room, clientId: b.id, reason: "relay-tcp" });
      await server.waitForLine((l) => l.json?.event === "call-failed" && l.json.room === room);
      terminateAll(a.ws, b.ws);
    });

    test("peer.left says timeout and stale", async () => {
      const { room, a, b } = await openPair(server);
      await sleep(STALE_AFTER_MS + 300); // staleness is about elapsed time
      const c = await joinEvicting(server, room, a, b);
      b.ws.terminate(); // no close frame: away, then timeout after the grace
      const requests = await receiver.until(room, (rs) => rs.some((r) => r.event.reason === "timeout"), GRACE + 10_000);
      const left = firstCopies(requests)
        .filter((e) => e.type === "peer.left")
        .map((e) => [e.clientId, e.reason]);
      assert.deepStrictEqual(left, [
        [a.id, "stale"],
        [b.id, "timeout"],
      ]);
      terminateAll(c.ws);
    });

    test("a receiver answering 500 gets the event again with the same id, then the rest in order", async () => {
      const failed = new Set();
      receiver.setStatus((r) => {
        if (r.event.type !== "room.started" || failed.has(r.event.room)) return 200;
        failed.add(r.event.room);
        return 500;
      });
      const { room, a, b } = await call(server);
      const requests = await receiver.until(room, (rs) => rs.some((r) => r.event.type === "room.ended"));
      receiver.setStatus(() => 200);
      assert.equal(requests[0].event.type, "room.started");
      assert.deepStrictEqual(requests[1].event, requests[0].event, "the retry is the same event");
      assert.deepStrictEqual(requests[1].raw, requests[0].raw, "byte for byte");
      assert.ok(requests[1].receivedAt - requests[0].receivedAt >= 900, "the retry waits about a second");
      assert.deepStrictEqual(
        stable(requests.slice(1).map((r) => r.event), a),
        callEvents(room, a, b, [a, b]),
        "nothing overtook the failed event",
      );
      await server.waitForLine((l) => l.json?.event === "webhook-failed" && l.json.room === room);
    });
  });

  describe("one participant's churn while the receiver fails", { timeout: 120_000 }, () => {
    let server;
    let receiver;
    before(async () => {
      receiver = await recordingReceiver();
      server = await startServer({ vars: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET } });
    });
    after(async () => {
      await server?.dispose();
      await receiver?.stop();
    });

    test("70 join/leave cycles beside a victim drop the churner's events, never the victim's", async () => {
      const room = roomName("churn");
      receiver.setStatus((r) => (r.event.room === room ? 500 : 200));
      const victimWs = await connect(server.ws(`/ws/${room}`), { headers: { "CF-Connecting-IP": "192.0.2.10" } });
      const victim = await nextFrame(victimWs);
      assert.equal(victim.type, "created");
      const churner = { headers: { "CF-Connecting-IP": "198.51.100.66" } };
      for (let cycle = 0; cycle < 70; ) {
        const ws = await connect(server.ws(`/ws/${room}`), churner);
        const welcome = await nextFrame(ws);
        if (welcome.type === "error") {
          // Its budget pays for a join about every 150 ms (docs/access.md, "Frames").
          await closed(ws);
          await sleep(150);
          continue;
        }
        ws.close(1000);
        await closed(ws);
        for (;;) {
          const frame = await nextFrame(victimWs);
          if (frame.type === "peer-left" && frame.clientId === welcome.clientId) break;
        }
        cycle++;
      }
      await server.waitForLine((l) => l.json?.event === "webhook-dropped" && l.json.room === room && l.json.reason === "outbox-full");
      receiver.setStatus(() => 200);
      victimWs.close(1000);
      const requests = await receiver.until(room, (rs) => rs.some((r) => r.event.type === "room.ended"), 90_000);
      const delivered = firstCopies(requests);
      assert.deepStrictEqual(
        delivered.slice(0, 2).map(({ type, clientId }) => ({ type, clientId })),
        [{ type: "room.started", clientId: undefined }, { type: "peer.joined", clientId: victim.clientId }],
        "the victim's first events were delivered",
      );
      assert.ok(delivered.length <= 205, `${delivered.length} events: the outbox kept more than its bound`);
    });
  });

  describe("a receiver down across an eviction and a restart", { timeout: 150_000 }, () => {
    const storage = tempDir("duet-webhooks-");
    let server;
    let receiver;
    after(async () => {
      await server?.dispose();
      await receiver?.stop();
      storage.remove();
    });

    test("receives every event afterwards, in order", async () => {
      // A port with nothing listening: every attempt fails to connect.
      const port = await freePort();
      const url = `http://127.0.0.1:${port}/hooks/duet`;
      const vars = { WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET };
      server = await startServer({ vars, persistDir: storage.path });
      const { room, a, b } = await call(server);
      const failures = (s) => s.lines.filter((l) => l.json?.event === "webhook-failed" && l.json.room === room);
      await server.waitForLine((l) => l.json?.event === "webhook-failed" && l.json.room === room);
      // With no socket left the object is evicted once idle (~10 s); a retry's alarm then
      // starts a new instance, which logs `start` again.
      const starts = () => server.lines.filter((l) => l.json?.event === "start" && l.json.room === room).length;
      await server.waitForLine(() => starts() >= 2, 60_000);
      assert.ok(failures(server).length >= 4, "attempts went on through the eviction");
      assert.equal(failures(server).at(-1).json.reason, "network");
      // A deploy: the server is killed and started again on the same storage.
      await server.dispose();
      server = await startServer({ vars, persistDir: storage.path });
      receiver = await recordingReceiver(port);
      const requests = await receiver.until(room, (rs) => rs.some((r) => r.event.type === "room.ended"), 90_000);
      assert.ok(requests.every((r) => r.valid));
      assert.deepStrictEqual(stable(firstCopies(requests), a), callEvents(room, a, b, [a, b]));
    });
  });
});

test("the docs' receiver deduplicates and refuses bad signatures", async () => {
  const events = [];
  const server = createReceiver(SECRET, (e) => events.push(e));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  const body = JSON.stringify({ id: "x-1", type: "room.started", room: "r", at: 1 });
  const t = Math.floor(Date.now() / 1000);
  const sign = (ts) => `t=${ts},v1=${createHmac("sha256", SECRET).update(`${ts}.${body}`).digest("hex")}`;
  const post = (signature) => fetch(url, { method: "POST", body, headers: { "Duet-Signature": signature } }).then((r) => r.status);
  assert.equal(await post(sign(t)), 204);
  assert.equal(await post(sign(t)), 204);
  assert.equal(await post(sign(t - 600)), 401);
  assert.equal(await post(`t=${t},v1=${"0".repeat(64)}`), 401);
  assert.equal(await post("garbage"), 401);
  assert.deepStrictEqual(events, [JSON.parse(body)]);
  await new Promise((resolve) => server.close(resolve));
});
