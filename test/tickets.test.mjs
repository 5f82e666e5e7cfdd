// Signed join tickets (JOIN_SECRET set): HS256 JWTs minted here by jose, as an operator's
// backend would. Every refusal with its status and code, in the documented order; the
// subprotocol and query forms; identities in frames; identity takeover; resume tokens bound to
// their identity; what jose will not sign (a crit header, odd times) signed by hand. Then the
// join limit (JOIN_LIMITER), which ticket refusals count against, and resume by subprotocol in
// open mode.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { SignJWT, UnsecuredJWT } from "jose";
import WebSocket from "ws";
import {
  CLIENT_ID,
  TOKEN,
  closeFrame,
  closed,
  connect,
  expectFrame,
  expectQuiet,
  nextFrame,
  openFirst,
  refusedUpgrade,
  roomName,
  startServer,
  terminateAll,
} from "./helpers/miniflare.mjs";

const SECRET = "a-long-enough-secret-for-hs256-0123456789";
const OLD_SECRET = "the-secret-before-rotation-0123456789abc";
const FRIEND = "https://friend.example";
const key = (secret) => new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

/** A ticket for `room` and `sub`, valid for an hour unless `claims` say otherwise. */
function mint(room, sub, { claims = {}, secret = SECRET, alg = "HS256", exp = now() + 3600 } = {}) {
  return new SignJWT({ room, ...claims })
    .setProtectedHeader({ alg })
    .setSubject(sub)
    .setExpirationTime(exp)
    .sign(key(secret));
}

/**
 * A ticket signed by hand (HS256 over the exact JSON texts given), for headers and claims jose
 * refuses to write: a `crit` header, `exp: 1e300`.
 */
function handSigned(headerJson, claimsJson, secret = SECRET) {
  const b64 = (text) => Buffer.from(text).toString("base64url");
  const input = `${b64(headerJson)}.${b64(claimsJson)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Opens a socket offering `duet.v1` and the ticket as a subprotocol. */
function open(server, room, ticket, { resume } = {}) {
  const protocols = ["duet.v1", `duet.ticket.${ticket}`];
  if (resume) protocols.push(`duet.resume.${resume}`);
  return connect(server.ws(`/ws/${room}`), { protocols });
}

/**
 * Ann then Ben join a fresh room with their tickets, through the whole handshake (Ann gets
 * peer-joined and ready, Ben ready): `{room, a, created, b, joined}`.
 */
async function ticketedPair(server) {
  const room = roomName("t");
  const a = await open(server, room, await mint(room, "ann"));
  const created = await nextFrame(a);
  const b = await open(server, room, await mint(room, "ben"));
  const joined = await nextFrame(b);
  assert.equal((await nextFrame(a)).type, "peer-joined");
  assert.equal((await nextFrame(a)).type, "ready");
  assert.equal((await nextFrame(b)).type, "ready");
  return { room, a, created, b, joined };
}

async function refused(server, path, options, status, code) {
  const answer = await refusedUpgrade(server.ws(path), options);
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.error.code, code);
  return answer;
}

describe("join tickets (JOIN_SECRET set)", () => {
  let server;
  before(async () => {
    server = await startServer({
      vars: {
        JOIN_SECRET: `${SECRET}, ${OLD_SECRET}`,
        ALLOWED_ORIGINS: FRIEND,
        RESUME_GRACE_MS: "5000",
        MAX_TICKET_TTL_SECONDS: "7200",
      },
    });
  });
  after(() => server?.dispose());

  test("no ticket: 401 ticket-required, after the origin check and before the upgrade check", async () => {
    const room = roomName("t");
    await refused(server, `/ws/${room}`, {}, 401, "ticket-required");
    await refused(server, `/ws/${room}`, { origin: "https://evil.example" }, 403, "forbidden-origin");
    const plain = await fetch(server.http(`/ws/${room}`));
    assert.equal(plain.status, 401);
    assert.equal((await plain.json()).error.code, "ticket-required");
    const withTicket = await fetch(server.http(`/ws/${room}?ticket=${await mint(room, "ann")}`));
    assert.equal(withTicket.status, 426, "a good ticket without an upgrade gets to the upgrade check");
  });

  test("malformed, unsigned, HS512, tampered and foreign-key tickets: 401 invalid-ticket", async () => {
    const room = roomName("t");
    const good = await mint(room, "ann");
    const [header, , signature] = good.split(".");
    const other = (await mint(room, "mallory")).split(".")[1];
    const bad = [
      "not-a-jwt",
      "a.b.c",
      new UnsecuredJWT({ room, sub: "ann" }).setExpirationTime("1h").encode(),
      await mint(room, "ann", { alg: "HS512" }),
      `${header}.${other}.${signature}`,
      await mint(room, "ann", { secret: "some-other-secret-entirely-0123456789" }),
    ];
    for (const ticket of bad) {
      await refused(server, `/ws/${room}?ticket=${encodeURIComponent(ticket)}`, {}, 401, "invalid-ticket");
    }
    // sub is required and at most 128 characters; name at most 64; meta an object of 1 KiB.
    const shapes = [
      await new SignJWT({ room }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(key(SECRET)),
      await new SignJWT({ room, sub: "ann" }).setProtectedHeader({ alg: "HS256" }).sign(key(SECRET)),
      await mint(room, "x".repeat(129)),
      await mint(room, "ann", { claims: { name: "n".repeat(65) } }),
      await mint(room, "ann", { claims: { meta: [1] } }),
      await mint(room, "ann", { claims: { meta: { a: "x".repeat(1100) } } }),
    ];
    for (const ticket of shapes) await refused(server, `/ws/${room}?ticket=${ticket}`, {}, 401, "invalid-ticket");
  });

  test("expiry with and without the 30 s leeway, and not-before: 401 ticket-expired", async () => {
    const room = roomName("t");
    await refused(server, `/ws/${room}?ticket=${await mint(room, "ann", { exp: now() - 40 })}`, {}, 401, "ticket-expired");
    const early = await new SignJWT({ room }).setProtectedHeader({ alg: "HS256" }).setSubject("ann")
      .setExpirationTime("1h").setNotBefore(now() + 120).sign(key(SECRET));
    await refused(server, `/ws/${room}?ticket=${early}`, {}, 401, "ticket-expired");
    const lately = await connect(server.ws(`/ws/${room}?ticket=${await mint(room, "ann", { exp: now() - 10 })}`));
    assert.equal((await nextFrame(lately)).type, "created", "10 s past exp is within the leeway");
    terminateAll(lately);
  });

  test("a crit header: 401 invalid-ticket, however well signed", async () => {
    const room = roomName("t");
    const claims = JSON.stringify({ room, sub: "ann", exp: now() + 600 });
    const plain = handSigned('{"alg":"HS256"}', claims);
    const ws = await connect(server.ws(`/ws/${room}?ticket=${plain}`));
    assert.equal((await nextFrame(ws)).type, "created", "the same ticket without crit is accepted");
    terminateAll(ws);
    for (const header of ['{"alg":"HS256","crit":["exp"]}', '{"alg":"HS256","crit":[]}', '{"alg":"HS256","crit":["b64"],"b64":true}']) {
      await refused(server, `/ws/${room}?ticket=${handSigned(header, claims)}`, {}, 401, "invalid-ticket");
    }
  });

  test("exp further ahead than MAX_TICKET_TTL_SECONDS (7200 here) and the leeway: 401 invalid-ticket naming it", async () => {
    const room = roomName("t");
    const answer = await refused(server, `/ws/${room}?ticket=${await mint(room, "ann", { exp: now() + 7200 + 120 })}`, {}, 401, "invalid-ticket");
    assert.match(answer.body.error.message, /MAX_TICKET_TTL_SECONDS/);
    const huge = handSigned('{"alg":"HS256"}', `{"room":"${room}","sub":"ann","exp":1e300}`);
    await refused(server, `/ws/${room}?ticket=${huge}`, {}, 401, "invalid-ticket");
    const ws = await connect(server.ws(`/ws/${room}?ticket=${await mint(room, "ann", { exp: now() + 7200 })}`));
    assert.equal((await nextFrame(ws)).type, "created", "exactly the cap ahead is accepted");
    terminateAll(ws);
  });

  test("times that are not whole seconds from 0 to 2^53 - 1: 401 invalid-ticket", async () => {
    const room = roomName("t");
    const exp = now() + 600;
    for (const times of [`"exp":${exp}.5`, `"exp":${exp},"nbf":-1`, `"exp":${exp},"iat":9007199254740992`, `"exp":"${exp}"`]) {
      const ticket = handSigned('{"alg":"HS256"}', `{"room":"${room}","sub":"ann",${times}}`);
      await refused(server, `/ws/${room}?ticket=${ticket}`, {}, 401, "invalid-ticket");
    }
    const whole = handSigned('{"alg":"HS256"}', `{"room":"${room}","sub":"ann","exp":${exp}.0,"iat":9007199254740991}`);
    const ws = await connect(server.ws(`/ws/${room}?ticket=${whole}`));
    assert.equal((await nextFrame(ws)).type, "created", "a whole number written as a float is a time");
    terminateAll(ws);
  });

  test("a ticket for another room: 403 ticket-wrong-room", async () => {
    const room = roomName("t");
    await refused(server, `/ws/${room}?ticket=${await mint(`${room}x`, "ann")}`, {}, 403, "ticket-wrong-room");
  });

  test("subprotocol form: duet.v1 is selected and the welcome carries the identity", async () => {
    const room = roomName("t");
    const ticket = await mint(room, "ann", { claims: { name: "Ann", meta: { plan: "pro" } } });
    const ws = await open(server, room, ticket);
    assert.equal(ws.protocol, "duet.v1");
    const welcome = await nextFrame(ws);
    assert.equal(welcome.type, "created");
    assert.deepStrictEqual(welcome.identity, { sub: "ann", name: "Ann", meta: { plan: "pro" } });
    assert.deepStrictEqual(welcome.peerIdentities, {});
    terminateAll(ws);
  });

  test("a ticket signed with the older secret of the rotation list is accepted", async () => {
    const room = roomName("t");
    const ws = await open(server, room, await mint(room, "ann", { secret: OLD_SECRET }));
    assert.equal((await nextFrame(ws)).identity.sub, "ann");
    terminateAll(ws);
  });

  test("peers learn who they talk to: peerIdentities and peer-joined's identity", async () => {
    const room = roomName("t");
    const a = await open(server, room, await mint(room, "ann", { claims: { name: "Ann" } }));
    const created = await nextFrame(a);
    const b = await connect(server.ws(`/ws/${room}?ticket=${await mint(room, "ben")}`));
    const joined = await nextFrame(b);
    assert.deepStrictEqual(joined.peerIdentities, { [created.clientId]: { sub: "ann", name: "Ann" } });
    assert.deepStrictEqual(joined.identity, { sub: "ben" });
    await expectFrame(a, { type: "peer-joined", room, clientId: joined.clientId, resumed: false, identity: { sub: "ben" } });
    terminateAll(a, b);
  });

  test("a second socket of the same identity takes its slot back, never the other's", async () => {
    const { room, a, created, b, joined } = await ticketedPair(server);
    const tab = await open(server, room, await mint(room, "ann"));
    const again = await nextFrame(tab);
    assert.equal(again.type, "joined");
    assert.equal(again.clientId, created.clientId);
    assert.equal(again.resumed, true);
    assert.match(again.resumeToken, TOKEN);
    // (closeFrame: workerd keeps the TCP connection of a socket that never sent a frame.)
    assert.deepStrictEqual(await closeFrame(a), { code: 4000, reason: "replaced" });
    await expectFrame(b, { type: "peer-joined", room, clientId: created.clientId, resumed: true, identity: { sub: "ann" } });
    await expectQuiet(b);
    assert.match(joined.clientId, CLIENT_ID);
    terminateAll(tab, b);
  });

  test("a resume token opens only a slot of the same identity", async () => {
    const { room, a, created, b } = await ticketedPair(server);
    a.terminate();
    await expectFrame(b, { type: "peer-away", room, clientId: created.clientId });
    // Mallory has Ann's token: with her own ticket it is ignored, and the room (Ann away) is full.
    const mal = await open(server, room, await mint(room, "mal"), { resume: created.resumeToken });
    assert.equal((await nextFrame(mal)).type, "full");
    assert.equal((await closed(mal)).code, 4409);
    const back = await open(server, room, await mint(room, "ann"), { resume: created.resumeToken });
    const welcome = await nextFrame(back);
    assert.equal(welcome.clientId, created.clientId);
    assert.equal(welcome.resumed, true);
    terminateAll(back, b);
  });
});

describe("join limit (JOIN_LIMITER: 3 joins per 10 s)", () => {
  let server;
  before(async () => {
    server = await startServer({ joinLimit: { limit: 3, period: 10 } });
  });
  after(() => server?.dispose());

  test("over the limit: 429 too-many-joins with Retry-After, then joins again once it recovers", async () => {
    const sockets = [];
    for (let n = 0; n < 3; n++) sockets.push((await openFirst(server, roomName("limit"))).ws);
    const answer = await refusedUpgrade(server.ws(`/ws/${roomName("limit")}`));
    assert.equal(answer.status, 429);
    assert.equal(answer.body.error.code, "too-many-joins");
    assert.equal(answer.headers["retry-after"], "60");
    // The window passes (the limit is time-based by definition): poll until a join succeeds.
    const deadline = Date.now() + 15_000;
    let joined;
    while (!joined && Date.now() < deadline) {
      joined = await openFirst(server, roomName("limit")).catch(() => undefined);
      if (!joined) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(joined, "joins recover after the window");
    terminateAll(sockets, joined.ws);
  });
});

describe("ticket refusals cost the address a join (JOIN_LIMITER as deployed: 60 per 60 s)", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { JOIN_SECRET: SECRET }, joinLimit: "deployed" });
  });
  after(() => server?.dispose());

  /** The limiter's window: like the platform's, the local one counts per wall-clock minute. */
  const window = () => Math.floor(Date.now() / 60_000);

  test("bad tickets spend the IP's joins: then 429 too-many-joins, for a good ticket too", async () => {
    const room = roomName("guess");
    const forged = await mint(room, "ann", { secret: "a-guessed-secret-0123456789abcdefghijk" });
    const kinds = [
      [`/ws/${room}`, 401, "ticket-required"],
      [`/ws/${room}?ticket=${forged}`, 401, "invalid-ticket"],
      [`/ws/${room}?ticket=${await mint(room, "ann", { exp: now() - 60 })}`, 401, "ticket-expired"],
      [`/ws/${room}?ticket=${await mint(`${room}x`, "ann")}`, 403, "ticket-wrong-room"],
      [`/ws/${room}?ticket=${await mint(room, "ann", { exp: now() + 86_400 + 120 })}`, 401, "invalid-ticket"],
    ];
    // The limit is time-based by definition: start early in a window, so that all of this
    // (well under a second) falls in one.
    if (Date.now() % 60_000 > 45_000) {
      const next = window() + 1;
      while (window() < next) await new Promise((r) => setTimeout(r, 250));
    }
    const started = window();
    let sent = 0;
    let answer;
    while (sent < 125) {
      const [path, status, code] = kinds[sent % kinds.length];
      answer = await refusedUpgrade(server.ws(path));
      sent += 1;
      if (answer.status === 429) break;
      assert.deepStrictEqual([answer.status, answer.body.error.code], [status, code], `refusal ${sent}`);
    }
    assert.equal(answer.status, 429, `${sent} ticket refusals and none of them cost a join`);
    assert.equal(answer.body.error.code, "too-many-joins");
    assert.equal(answer.headers["retry-after"], "60");
    const good = await refusedUpgrade(server.ws(`/ws/${room}?ticket=${await mint(room, "ann")}`)).catch((err) => err);
    if (window() === started) {
      assert.equal(sent, 61, "the 61st request of the window is refused");
      assert.equal(good.status, 429, "a good ticket from the spent address is refused too");
      assert.equal(good.headers["retry-after"], "60");
    }
  });
});

describe("no JOIN_LIMITER binding", () => {
  let server;
  before(async () => {
    server = await startServer({ joinLimit: "none" });
  });
  after(() => server?.dispose());

  test("joins are not limited, and the missing binding is logged once", async () => {
    const sockets = [];
    for (let n = 0; n < 5; n++) sockets.push((await openFirst(server, roomName("nolimit"))).ws);
    const warnings = server.lines.filter((l) => l.json?.event === "config-error" && l.json.message.includes("JOIN_LIMITER"));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].stream, "stderr");
    terminateAll(sockets);
  });
});

describe("open mode: resume by subprotocol", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.dispose());

  test("duet.resume.<token> takes the slot back without the token in the URL", async () => {
    const room = roomName("sub-resume");
    const a = await openFirst(server, room);
    a.ws.terminate();
    const back = await connect(server.ws(`/ws/${room}`), { protocols: ["duet.v1", `duet.resume.${a.token}`] });
    assert.equal(back.protocol, "duet.v1");
    const welcome = await nextFrame(back);
    assert.equal(welcome.type, "joined");
    assert.equal(welcome.clientId, a.id);
    assert.equal(welcome.resumed, true);
    assert.equal(welcome.identity, undefined, "no identities without tickets");
    terminateAll(back);
  });

  test("tickets are ignored without JOIN_SECRET", async () => {
    const room = roomName("open");
    const ws = await connect(server.ws(`/ws/${room}?ticket=whatever`));
    const welcome = await nextFrame(ws);
    assert.equal(welcome.type, "created");
    assert.equal(welcome.identity, undefined);
    terminateAll(ws);
  });
});
