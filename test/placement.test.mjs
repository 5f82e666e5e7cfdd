// Where rooms live: the location hint from the first peer's request.cf, and ROOM_JURISDICTION.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  roomName,
  startServer,
} from "./helpers/miniflare.mjs";

/** Opens a socket through Miniflare's dispatchFetch, which lets the test set `request.cf`. */
async function openWithCf(server, room, cf) {
  const response = await server.mf.dispatchFetch(server.http(`/ws/${room}`), {
    headers: { Upgrade: "websocket" },
    cf,
  });
  return response;
}

async function firstFrame(ws) {
  return new Promise((resolve) => {
    ws.addEventListener("message", (event) => resolve(JSON.parse(event.data)), { once: true });
  });
}

describe("location hints", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.dispose());

  for (const [cf, hint] of [
    [{ continent: "EU", country: "FR", longitude: "2.35" }, "weur"],
    [{ continent: "EU", country: "PL", longitude: "21.01" }, "eeur"],
    [{ continent: "NA", country: "US", longitude: "-122.42" }, "wnam"],
    [{ continent: "AS", country: "JP", longitude: "139.69" }, "apac"],
    [{ continent: "AS", country: "AE", longitude: "55.27" }, "me"],
    [{ continent: "AN" }, null],
  ]) {
    test(`a first peer in ${cf.country ?? cf.continent} places the room with hint ${hint}`, async () => {
      const room = roomName("placed");
      const response = await openWithCf(server, room, cf);
      assert.equal(response.status, 101);
      const ws = response.webSocket;
      ws.accept();
      const frame = await firstFrame(ws);
      assert.equal(frame.type, "created");
      const line = await server.waitForLine((l) => l.json?.event === "placement" && l.json.room === room);
      assert.deepStrictEqual(line.json, { event: "placement", room, ...(hint ? { locationHint: hint } : {}) });
      ws.close(1000);
    });
  }
});

describe("ROOM_JURISDICTION", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { ROOM_JURISDICTION: "eu" } });
  });
  after(() => server.dispose());

  // Local workerd has no jurisdictions, so the restricted namespace cannot be had here: the
  // request must fail closed rather than create the room outside the jurisdiction.
  test("sockets go through the restricted namespace, and fail closed where it is missing", async () => {
    const room = roomName("eu");
    const response = await openWithCf(server, room, { continent: "EU", country: "DE", longitude: "13.4" });
    assert.equal(response.status, 500);
    assert.deepStrictEqual(await response.json(), { error: { code: "internal", message: "internal error" } });
    const placement = await server.waitForLine((l) => l.json?.event === "placement" && l.json.room === room);
    assert.deepStrictEqual(placement.json, { event: "placement", room, locationHint: "weur", jurisdiction: "eu" });
    const error = await server.waitForLine((l) => l.json?.event === "internal-error");
    assert.match(error.json.message, /[Jj]urisdiction/);
    assert.equal(server.events(room).filter((e) => e.event !== "placement").length, 0, "no room object was started");
  });

  // A jurisdiction restricts where data lives: an invalid one places no room anywhere.
  test("an invalid jurisdiction is a config error and fails closed: 503 config-error, no room", async () => {
    const other = await startServer({ vars: { ROOM_JURISDICTION: "moon" } });
    try {
      const room = roomName("nowhere");
      const response = await openWithCf(other, room, { continent: "EU", country: "DE", longitude: "13.4" });
      assert.equal(response.status, 503);
      assert.equal((await response.json()).error.code, "config-error");
      const line = await other.waitForLine((l) => l.json?.event === "config-error");
      assert.match(line.json.message, /^invalid ROOM_JURISDICTION: .*; every socket is refused/);
      assert.equal(other.lines.filter((l) => l.json?.room === room).length, 0, "no placement, no room object");
    } finally {
      await other.dispose();
    }
  });
});
