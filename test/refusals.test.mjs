// Refusals a browser can read (docs/access.md, "Refusals"; docs/protocol.md, "In-band
// refusals"): an upgrade that offers `duet.v1`, passes the origin check and is a valid
// handshake is refused in-band. The Worker accepts the socket itself, selects `duet.v1`,
// sends `{"type":"error","code","message"}` (with `retryAfter` for too-many-joins) and closes:
// 4401 for a ticket that is missing, invalid or expired, 4403 for a ticket for another room,
// 4429 over the join limit, 4503 when the configuration is unusable. No Durable Object is
// touched. Every other request keeps its HTTP answer, checked here for the same refusals.

import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { connect as duetConnect } from "../public/js/duet.js";
import {
  CloseCode,
  CloseReason,
  closed,
  connect,
  nextText,
  refusedUpgrade,
  roomName,
  startServer,
} from "./helpers/miniflare.mjs";

const SECRET = "in-band-refusals-secret-0123456789abcdef";
const FRIEND = "https://friend.example";
const now = () => Math.floor(Date.now() / 1000);

/** A ticket for `room`, valid for an hour unless `exp` says otherwise. */
function mint(room, sub, { exp = now() + 3600, secret = SECRET } = {}) {
  return new SignJWT({ room }).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

const MESSAGES = {
  "ticket-required": "this room needs a join ticket (subprotocol duet.ticket.<jwt> or ?ticket=)",
  "invalid-ticket": "the join ticket is not an HS256 JWT signed for this service",
  "ticket-expired": "the join ticket has expired or is not valid yet",
  "ticket-wrong-room": "the join ticket is for another room",
  "too-many-joins": "too many joins from this client; retry later",
  "config-error": "this service's configuration is unusable, so it refuses every socket; its operator has the details",
};

/** The close each refusal ends with: `[CloseCode name, CloseReason name]`. */
const CLOSES = {
  "ticket-required": "TICKET_REFUSED",
  "invalid-ticket": "TICKET_REFUSED",
  "ticket-expired": "TICKET_REFUSED",
  "ticket-wrong-room": "FORBIDDEN",
  "too-many-joins": "TOO_MANY_JOINS",
  "config-error": "MISCONFIGURED",
};

/**
 * Opens `path` offering `protocols` and expects the in-band refusal `code`: the socket opens
 * with `duet.v1` selected, exactly one frame (the exact `error` frame) arrives, then the close.
 */
async function refusedInBand(server, path, protocols, code, { origin, headers, message = MESSAGES[code] } = {}) {
  const ws = await connect(server.ws(path), { protocols, origin, headers });
  assert.equal(ws.protocol, "duet.v1", "the 101 selects duet.v1");
  const frame = code === "too-many-joins" ? { type: "error", code, message, retryAfter: 60 } : { type: "error", code, message };
  assert.equal(await nextText(ws), JSON.stringify(frame));
  const name = CLOSES[code];
  assert.deepStrictEqual(await closed(ws), { code: CloseCode[name], reason: CloseReason[name] });
  await assert.rejects(nextText(ws, 100), /socket closed/, "nothing follows the error frame");
}

/**
 * A GET with exactly `headers` (fetch() refuses to send `Upgrade`), answered with an HTTP
 * response: `{status, body}`.
 */
function rawUpgrade(url, headers) {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("upgrade", () => reject(new Error("the server accepted a handshake it should refuse")));
    req.on("error", reject);
    req.end();
  });
}

/** The Worker's log lines about `room`: a socket that reached its object logs its placement. */
const linesAbout = (server, room) => server.lines.filter((l) => l.text.includes(room));

describe("in-band refusals of a ticketed server (JOIN_SECRET set)", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { JOIN_SECRET: SECRET, ALLOWED_ORIGINS: FRIEND, MAX_TICKET_TTL_SECONDS: "7200" } });
  });
  after(() => server?.dispose());

  /** The requests of every ticket refusal for `room`: `[what, path, extra subprotocols, code]`. */
  async function ticketRefusals(room) {
    const forged = await mint(room, "ann", { secret: "a-guessed-secret-0123456789abcdefghijk" });
    return [
      ["no ticket", `/ws/${room}`, [], "ticket-required"],
      ["a forged ticket", `/ws/${room}`, [`duet.ticket.${forged}`], "invalid-ticket"],
      ["a forged ticket in the query", `/ws/${room}?ticket=${forged}`, [], "invalid-ticket"],
      ["a ticket valid for too long", `/ws/${room}`, [`duet.ticket.${await mint(room, "ann", { exp: now() + 7200 + 120 })}`], "invalid-ticket"],
      ["an expired ticket", `/ws/${room}`, [`duet.ticket.${await mint(room, "ann", { exp: now() - 60 })}`], "ticket-expired"],
      ["a ticket for another room", `/ws/${room}`, [`duet.ticket.${await mint(`${room}x`, "ann")}`], "ticket-wrong-room"],
    ];
  }

  test("each ticket refusal: the exact error frame, then 4401 or 4403; no Durable Object is touched", async () => {
    const room = roomName("in-band");
    for (const [what, path, extra, code] of await ticketRefusals(room)) {
      const message = what === "a ticket valid for too long"
        ? "the join ticket's exp is further ahead than this service allows (MAX_TICKET_TTL_SECONDS)"
        : undefined;
      await refusedInBand(server, path, ["duet.v1", ...extra], code, { message });
      // From the Worker's own origin and from an allowed one alike.
      await refusedInBand(server, path, ["duet.v1", ...extra], code, { origin: FRIEND, message });
      await refusedInBand(server, path, ["duet.v1", ...extra], code, { origin: server.origin, message });
    }
    assert.deepStrictEqual(linesAbout(server, room), [], "no room object was asked");
  });

  test("without duet.v1, or without a valid upgrade, the same refusals keep their HTTP answers", async () => {
    const room = roomName("http");
    for (const [what, path, extra, code] of await ticketRefusals(room)) {
      const answer = await refusedUpgrade(server.ws(path), { protocols: extra });
      assert.equal(answer.status, code === "ticket-wrong-room" ? 403 : 401, what);
      assert.equal(answer.body.error.code, code, what);
      const plain = await fetch(server.http(path), { headers: extra.length ? { "Sec-WebSocket-Protocol": ["duet.v1", ...extra].join(", ") } : {} });
      assert.equal(plain.status, code === "ticket-wrong-room" ? 403 : 401, `${what}, no upgrade`);
      assert.equal((await plain.json()).error.code, code, `${what}, no upgrade`);
    }
    // duet.v1 with a handshake the runtime would refuse: no socket can be made, so HTTP.
    const badKey = await rawUpgrade(server.http(`/ws/${room}`), {
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Key": "short",
      "Sec-WebSocket-Protocol": "duet.v1",
    });
    assert.deepStrictEqual([badKey.status, JSON.parse(badKey.body).error.code], [401, "ticket-required"]);
  });

  test("a foreign origin gets HTTP 403 forbidden-origin, duet.v1 or not: it learns nothing in-band", async () => {
    const room = roomName("foreign");
    const answer = await refusedUpgrade(server.ws(`/ws/${room}`), { protocols: ["duet.v1"], origin: "https://evil.example" });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error.code, "forbidden-origin");
  });

  test("a good ticket still joins, with duet.v1 selected", async () => {
    const room = roomName("good");
    const ws = await connect(server.ws(`/ws/${room}`), { protocols: ["duet.v1", `duet.ticket.${await mint(room, "ann")}`] });
    assert.equal(ws.protocol, "duet.v1");
    assert.equal(JSON.parse(await nextText(ws)).type, "created");
    ws.terminate();
  });
});

describe("duet.js against a ticketed Worker", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { JOIN_SECRET: SECRET } });
  });
  after(() => server?.dispose());

  /** A duet.js connection to `room`, resolving with its events once it has closed or been welcomed. */
  function run(room, ticket) {
    const connection = duetConnect(room, { baseUrl: server.origin, ticket, storage: null, pingIntervalMs: 0, WebSocket, backoff: { initialDelayMs: 10, maxDelayMs: 10 } });
    /** @type {{type: string, detail: any}[]} */
    const events = [];
    return new Promise((resolve) => {
      for (const type of ["refused", "reconnecting", "created", "close", "error"]) {
        connection.addEventListener(/** @type {any} */ (type), (/** @type {CustomEvent} */ e) => {
          events.push({ type, detail: e.detail });
          if (type === "close" || type === "created") resolve({ connection, events });
        });
      }
    });
  }

  test("without a ticket: `refused` ticket-required, then `close` 4401, and no retry", async () => {
    const { connection, events } = await run(roomName("lib"), null);
    assert.deepEqual(events, [
      { type: "refused", detail: { code: "ticket-required", message: MESSAGES["ticket-required"] } },
      { type: "close", detail: { code: CloseCode.TICKET_REFUSED, reason: CloseReason.TICKET_REFUSED } },
    ]);
    assert.equal(connection.state, "closed");
  });

  test("a ticket function whose ticket expired: one fresh ticket, and the join succeeds", async () => {
    const room = roomName("lib");
    const tickets = [await mint(room, "ann", { exp: now() - 60 }), await mint(room, "ann")];
    let asked = 0;
    const { connection, events } = await run(room, () => tickets[asked++]);
    assert.deepEqual(events.map((e) => e.type), ["refused", "reconnecting", "created"]);
    assert.equal(events[0].detail.code, "ticket-expired");
    assert.equal(asked, 2);
    assert.equal(connection.identity?.sub, "ann");
    connection.leave();
  });
});

describe("in-band too-many-joins (JOIN_LIMITER: 1 join per 60 s)", () => {
  let server;
  let ticketed;
  before(async () => {
    server = await startServer({ joinLimit: { limit: 1, period: 60 } });
    ticketed = await startServer({ vars: { JOIN_SECRET: SECRET }, joinLimit: { limit: 1, period: 60 } });
  });
  after(async () => {
    await server?.dispose();
    await ticketed?.dispose();
  });

  /**
   * The local limiter, like the platform's, counts per wall-clock minute: start away from its
   * end, so that a join and the refusals after it (well under a second) fall in one window.
   */
  async function earlyInAWindow() {
    while (Date.now() % 60_000 > 55_000) await new Promise((resolve) => setTimeout(resolve, 250));
  }

  test("over the join limit: the error frame with retryAfter 60, then 4429 'too many joins'", async () => {
    const room = roomName("limit");
    const headers = { "CF-Connecting-IP": "198.51.100.1" };
    await earlyInAWindow();
    const first = await connect(server.ws(`/ws/${roomName("limit")}`), { headers });
    assert.equal(JSON.parse(await nextText(first)).type, "created", "the address's one join");
    first.terminate();
    await refusedInBand(server, `/ws/${room}`, ["duet.v1"], "too-many-joins", { headers });
    assert.deepStrictEqual(server.events(room), [], "no room object was asked");
    const answer = await refusedUpgrade(server.ws(`/ws/${room}`), { headers });
    assert.equal(answer.status, 429, "without duet.v1: HTTP, as before");
    assert.equal(answer.body.error.code, "too-many-joins");
    assert.equal(answer.headers["retry-after"], "60");
  });

  test("a ticket refusal from a spent address: in-band too-many-joins too, for a good ticket as well", async () => {
    const room = roomName("spent");
    const headers = { "CF-Connecting-IP": "198.51.100.2" };
    await earlyInAWindow();
    // The refusal spends the address's one join, then the address is over the limit.
    await refusedInBand(ticketed, `/ws/${room}`, ["duet.v1"], "ticket-required", { headers });
    await refusedInBand(ticketed, `/ws/${room}`, ["duet.v1"], "too-many-joins", { headers });
    await refusedInBand(ticketed, `/ws/${room}`, ["duet.v1", `duet.ticket.${await mint(room, "ann")}`], "too-many-joins", { headers });
    const answer = await refusedUpgrade(ticketed.ws(`/ws/${room}`), { headers });
    assert.equal(answer.status, 429);
    assert.equal(answer.headers["retry-after"], "60");
  });
});

describe("in-band config-error (JOIN_SECRET without a key)", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { JOIN_SECRET: " , ", ALLOWED_ORIGINS: FRIEND } });
  });
  after(() => server?.dispose());

  test("the error frame, then 4503 'misconfigured'; HTTP 503 without duet.v1 or from a foreign origin", async () => {
    const room = roomName("misconfigured");
    await refusedInBand(server, `/ws/${room}`, ["duet.v1"], "config-error");
    await refusedInBand(server, `/ws/${room}`, ["duet.v1", "duet.ticket.a.b.c"], "config-error", { origin: FRIEND });
    for (const options of [{}, { protocols: ["duet.v1"], origin: "https://evil.example" }]) {
      const answer = await refusedUpgrade(server.ws(`/ws/${room}`), options);
      assert.equal(answer.status, 503, JSON.stringify(options));
      assert.equal(answer.body.error.code, "config-error");
    }
    assert.deepStrictEqual(server.events(room), [], "no room object was asked");
  });
});
