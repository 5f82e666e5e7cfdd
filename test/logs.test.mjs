// LOG_LEVEL: at `warn` a room's whole lifecycle writes no line, while webhook warnings and
// errors still do; the other suites check the lines written at the default, `info`.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { LIFECYCLE_EVENTS, openPair, relayBothWays, startServer, terminateAll } from "./helpers/miniflare.mjs";

/** A loopback port with nothing listening on it. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

describe("LOG_LEVEL=warn", () => {
  let server;
  before(async () => {
    // Webhooks to a port where nothing listens: each delivery fails and logs a warning.
    const url = `http://127.0.0.1:${await freePort()}/hooks`;
    server = await startServer({
      vars: { LOG_LEVEL: "warn", WEBHOOK_URL: url, WEBHOOK_SECRET: "a-webhook-secret", STALE_AFTER_MS: "soon" },
    });
  });
  after(() => server?.dispose());

  test("a call writes no lifecycle line; the webhook warning and the config error still come", async () => {
    const { room, a, b } = await openPair(server);
    await relayBothWays(a, b);
    // workerd prints in order: by the time the delivery of room.started has failed, every
    // line of the joins before it would have been printed.
    const warning = await server.waitForLine((l) => l.json?.event === "webhook-failed" && l.json.room === room);
    assert.equal(warning.json.reason, "network");
    const lines = server.lines.filter((l) => l.json?.room === room);
    assert.deepStrictEqual(
      lines.map((l) => l.json.event).filter((e) => LIFECYCLE_EVENTS.includes(e) || e === "placement"),
      [],
    );
    const error = await server.waitForLine((l) => l.json?.event === "config-error");
    assert.match(error.json.message, /STALE_AFTER_MS/);
    terminateAll(a.ws, b.ws);
  });
});
