// The Rust client (duet-client) against the real Worker: the Worker under Miniflare, five
// servers for the five configurations the tests need, and `cargo test --workspace --test live
// -- --ignored` with their URLs in DUET_* variables (`--workspace`, as `make test-rust` builds:
// the same features, so the test binary it built is reused, not rebuilt). The live tests are ignored in a plain
// `cargo test` (make test runs test-rust before the Worker is built) and fail, never skip,
// when a variable is missing. The run includes the crate's documented example
// (tests/live/quickstart.rs, the doctest of src/lib.rs).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { ROOT, startServer } from "../helpers/miniflare.mjs";

const TICKET_SECRET = "rust-client-live-secret-0123456789abcdef";
const ADMIN_SECRET = "rust-client-live-admin-secret";

/** Runs a command to its end; resolves with its exit code and output. */
function run(command, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

describe("duet-client against the Worker", () => {
  /** @type {Record<string, any>} */
  const servers = {};
  before(async () => {
    [servers.open, servers.ticketed, servers.limited, servers.broken, servers.strict] = await Promise.all([
      // TURN credentials of the shortest lifetime, so the client refreshes them within seconds.
      startServer({ vars: { TURN_SECRET: "rust-client-turn", TURN_URLS: "turn:127.0.0.1:3478", TURN_TTL_SECONDS: "10" } }),
      startServer({ vars: { JOIN_SECRET: TICKET_SECRET, ADMIN_SECRET } }),
      startServer({ joinLimit: { limit: 1, period: 60 } }),
      startServer({ vars: { JOIN_SECRET: " , " } }),
      startServer({ vars: { STALE_AFTER_MS: "300", RATE_LIMIT_BURST: "5", RATE_LIMIT_PER_SEC: "1" } }),
    ]);
  });
  after(() => Promise.all(Object.values(servers).map((s) => s?.dispose())));

  test("cargo test --workspace --test live", { timeout: 600_000 }, async () => {
    const env = {
      DUET_URL: servers.open.origin,
      DUET_TICKETED_URL: servers.ticketed.origin,
      DUET_TICKET_SECRET: TICKET_SECRET,
      DUET_ADMIN_SECRET: ADMIN_SECRET,
      DUET_LIMITED_URL: servers.limited.origin,
      DUET_BROKEN_URL: servers.broken.origin,
      DUET_STRICT_URL: servers.strict.origin,
    };
    const { code, output } = await run("cargo", ["test", "--quiet", "--workspace", "--test", "live", "--", "--ignored"], env);
    assert.equal(code, 0, output);
    // Every live test ran: none was filtered out or left ignored.
    const summary = /test result: ok\. (\d+) passed; 0 failed; 0 ignored/.exec(output);
    assert.ok(summary && Number(summary[1]) >= 10, output);
  });
});
