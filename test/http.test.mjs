// The Worker's HTTP routes: statuses, JSON error bodies, the order of the /ws checks, origins,
// /healthz, /api and the static app. ALLOWED_ORIGINS is a list here, so origins are checked.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  CRATE_VERSION,
  ROOT,
  closed,
  openFirst,
  refusedUpgrade,
  roomName,
  startServer,
} from "./helpers/miniflare.mjs";

const FRIEND = "https://friend.example";
const OTHER = "http://localhost:3000";
const APP_PAGE = readFileSync(join(ROOT, "public/index.html"), "utf8");

/** Asserts the `{"error":{"code","message"}}` body of a refused request. */
function assertErrorBody(body, code) {
  assert.equal(typeof body?.error?.message, "string");
  assert.ok(body.error.message.length > 0, "the error message is empty");
  assert.deepStrictEqual(body, { error: { code, message: body.error.message } });
}

async function assertHttpError(response, status, code) {
  assert.equal(response.status, status);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  assertErrorBody(await response.json(), code);
}

describe("HTTP routes", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { ALLOWED_ORIGINS: `${FRIEND}, ${OTHER}` } });
  });
  after(() => server?.dispose());

  test("GET /healthz answers 200 with the crate version", async () => {
    const response = await fetch(server.http("/healthz"));
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepStrictEqual(await response.json(), { status: "ok", version: CRATE_VERSION });
  });

  test("unknown /api paths answer 404 not-found", async () => {
    for (const path of ["/api", "/api/", "/api/rooms", "/api/rooms/abc"]) {
      await assertHttpError(await fetch(server.http(path)), 404, "not-found");
    }
  });

  test("/ serves the app page", async () => {
    const response = await fetch(server.http("/"));
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(await response.text(), APP_PAGE);
  });

  test("a room path like /foo serves the app page", async () => {
    for (const path of ["/foo", "/My_Room-42", `/${"r".repeat(64)}`]) {
      const response = await fetch(server.http(path));
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get("content-type") ?? "", /^text\/html/, path);
      assert.equal(await response.text(), APP_PAGE, path);
    }
  });

  test("the npm package's own files in public/js are not served (public/.assetsignore)", async () => {
    for (const path of ["/js/package.json", "/js/README.md"]) {
      const response = await fetch(server.http(path));
      assert.equal(await response.text(), APP_PAGE, `${path} falls back to the app page`);
    }
    assert.match((await fetch(server.http("/js/duet.js"))).headers.get("content-type") ?? "", /javascript/);
  });

  test("GET /ws/{room} without an upgrade answers 426 upgrade-required", async () => {
    await assertHttpError(await fetch(server.http("/ws/some-room")), 426, "upgrade-required");
  });

  test("every other method on /ws/... answers 405 method-not-allowed", async () => {
    // No request body: the Worker answers without reading one, and a body still being sent
    // when the answer closes the connection makes fetch fail now and then on a loaded machine.
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const response = await fetch(server.http("/ws/some-room"), { method });
      await assertHttpError(response, 405, "method-not-allowed");
    }
  });

  test("HEAD on /ws/... answers 405 (with no body)", async () => {
    const response = await fetch(server.http("/ws/some-room"), { method: "HEAD" });
    assert.equal(response.status, 405);
    assert.equal(await response.text(), "");
  });

  test("invalid room names answer 400 invalid-room", async () => {
    const paths = [
      "/ws",
      "/ws/", // empty
      `/ws/${"a".repeat(65)}`, // 65 characters
      "/ws/a/b",
      "/ws/a/",
      "/ws/a.b",
      "/ws/a%20b",
      "/ws/%C3%A9t%C3%A9", // "été"
      "/ws/a+b",
      "/ws/a~b",
    ];
    for (const path of paths) {
      const response = await fetch(server.http(path));
      assert.equal(response.status, 400, path);
      assertErrorBody(await response.json(), "invalid-room");
    }
  });

  test("invalid room names are refused on real upgrades too", async () => {
    for (const path of ["/ws/a/b", "/ws/a/", `/ws/${"a".repeat(65)}`]) {
      const { status, body } = await refusedUpgrade(server.ws(path));
      assert.equal(status, 400, path);
      assertErrorBody(body, "invalid-room");
    }
  });

  test("a 64-character room name of every allowed character class is accepted", async () => {
    const room = ("Az09_-".repeat(11) + "abcd").slice(0, 64);
    assert.equal(room.length, 64);
    const { ws } = await openFirst(server, room);
    ws.close(1000);
    assert.equal((await closed(ws)).code, 1000);
  });

  test("checks run in the order method, room name, origin, upgrade", async () => {
    const evil = { Origin: "https://evil.example" };
    // A bad method wins over everything else.
    let response = await fetch(server.http("/ws/a/b"), { method: "POST", headers: evil, body: "x" });
    await assertHttpError(response, 405, "method-not-allowed");
    response = await fetch(server.http("/ws/a%20b"), { method: "HEAD", headers: evil });
    assert.equal(response.status, 405);
    // Then the room name, before the origin.
    await assertHttpError(await fetch(server.http("/ws/a/b"), { headers: evil }), 400, "invalid-room");
    // Then the origin, before the upgrade.
    await assertHttpError(await fetch(server.http("/ws/ok"), { headers: evil }), 403, "forbidden-origin");
    // An allowed origin without an upgrade reaches the last check.
    const friendly = { Origin: FRIEND };
    await assertHttpError(await fetch(server.http("/ws/ok"), { headers: friendly }), 426, "upgrade-required");
  });

  test("an origin that is neither the Worker's own nor listed answers 403, before any Durable Object", async () => {
    const room = roomName("forbidden");
    for (const origin of ["https://evil.example", "null", "https://friend.example.evil", "http://friend.example"]) {
      const { status, body } = await refusedUpgrade(server.ws(`/ws/${room}`), { origin });
      assert.equal(status, 403, origin);
      assertErrorBody(body, "forbidden-origin");
    }
    // The room's object never ran: a later join in another room logs, this room never did.
    const witness = roomName("witness");
    const { ws } = await openFirst(server, witness);
    await server.waitForLine((line) => line.json?.event === "join" && line.json.room === witness);
    assert.deepStrictEqual(server.events(room), []);
    ws.close(1000);
    await closed(ws);
  });

  test("the Worker's own origin, listed origins and no Origin header may open sockets", async () => {
    for (const origin of [server.origin, FRIEND, OTHER, undefined]) {
      const room = roomName("origin");
      const { ws } = await openFirst(server, room, { origin });
      ws.close(1000);
      assert.equal((await closed(ws)).code, 1000, String(origin));
    }
  });
});
