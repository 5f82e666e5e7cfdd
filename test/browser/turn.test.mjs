// A call through a real TURN server: Debian's coturn on loopback with `use-auth-secret`, the
// Worker minting credentials with the same secret, and both pages forced to relay-only ICE.
// With a wrong secret the same setup must not connect: the credential is really checked.
// With credentials that live 20 s, the call outlives them: they are refreshed, and an ICE
// restart after the first ones expired still allocates new relays, with the refreshed ones.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort, launchChromium, openPage, remoteVideoPlays, roomName, startDevServer, until } from "../helpers/browser.mjs";

const TURNSERVER = process.env.TURNSERVER_PATH || "turnserver";
const SECRET = "duet-coturn-test-secret";

/** Starts coturn on loopback; `log()` is everything it printed. */
async function startCoturn() {
  if (spawnSync(TURNSERVER, ["--help"], { stdio: "ignore" }).error) {
    throw new Error(
      "No coturn: the TURN test needs Debian's coturn (`sudo apt-get install coturn`), " +
        "or TURNSERVER_PATH pointing at a turnserver binary.",
    );
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "duet-coturn-"));
  const minPort = 40000 + Math.floor(Math.random() * 20000);
  const child = spawn(TURNSERVER, [
    "-n", "--listening-ip=127.0.0.1", `--listening-port=${port}`, "--relay-ip=127.0.0.1",
    `--min-port=${minPort}`, `--max-port=${minPort + 200}`,
    "--use-auth-secret", `--static-auth-secret=${SECRET}`, "--realm=duet.test",
    "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--fingerprint", "--verbose",
    "--log-file=stdout", "--simple-log", `--pidfile=${join(dir, "pid")}`, `--db=${join(dir, "turndb")}`,
  ]);
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const deadline = Date.now() + 10_000;
  while (!/Total (UDP|General) servers/i.test(output) && !/listener opened on/i.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`coturn did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // polling its log for readiness
  }
  return {
    url: `turn:127.0.0.1:${port}?transport=udp`,
    log: () => output,
    stop() {
      child.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * In the page: the selected candidate pair's local candidate (id, type, port) and remote
 * candidate type, once ICE has one. With `otherThan`, only a pair of a connected peer
 * connection whose local candidate is a relay other than that one.
 * @param {string | null} [otherThan] a local candidate id
 */
async function selectedPairInPage(otherThan = null) {
  const pc = window.duetDebug.pc;
  if (!pc || (otherThan !== null && pc.connectionState !== "connected")) return null;
  const stats = await pc.getStats();
  let pairId;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId && stats.get(pairId);
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  if (otherThan !== null && (local.candidateType !== "relay" || local.id === otherThan)) return null;
  return { local: local.candidateType, remote: stats.get(pair.remoteCandidateId).candidateType, localId: local.id, localPort: local.port };
}

/**
 * Polls `fn(arg)` in the page (it may be async, which `until` cannot wait on) until it returns
 * something truthy, and returns that.
 */
async function untilAsync(page, fn, arg, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await page.evaluate(fn, arg);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`no ${fn.name}(${arg}) within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // polling interval, not a wait for an outcome
  }
}

/** The selected candidate pair's local and remote candidate types, once ICE has one. */
async function selectedPairTypes(page) {
  const pair = await page.evaluate(selectedPairInPage, null);
  return pair && { local: pair.local, remote: pair.remote };
}

/**
 * Against a Worker that uses `secret` (and further `vars`), each of `checks` (by test title)
 * gets both pages of a relay-only call in a fresh room.
 * @param {Record<string, (pages: any[], turn: any, t: any) => Promise<void>>} checks
 */
function relaySuite(name, secret, checks, vars = {}) {
  describe(name, () => {
    let turn, server, browser;
    before(async () => {
      turn = await startCoturn();
      server = await startDevServer({ vars: { TURN_SECRET: secret, TURN_URLS: turn.url, ICE_SERVERS: "[]", ...vars } });
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      await server?.stop();
      turn?.stop();
    });
    for (const [title, check] of Object.entries(checks)) {
      test(title, async (t) => {
        const url = `${server.origin}/${roomName("turn")}?relay=1`;
        const pages = [await openPage(browser, url), await openPage(browser, url)];
        try {
          await check(pages, turn, t);
        } finally {
          await Promise.all(pages.map((page) => page.context().close()));
        }
      });
    }
  });
}

/** The lifetime of the credentials in the suite with the right secret: a call outlives them. */
const SHORT_TTL_S = 20;

relaySuite(
  `TURN with the right secret (credentials of ${SHORT_TTL_S} s)`,
  SECRET,
  {
    "two relay-only pages": relayOnlyCall,
    "the call outlives its credentials: refreshed, and an ICE restart after they expired gets new relays": outlivesItsCredentials,
  },
  { TURN_TTL_SECONDS: String(SHORT_TTL_S) },
);

relaySuite("TURN with a wrong secret", "not-the-turn-secret", { "two relay-only pages": refusedCredentials });

/** Both pages connect over relays that coturn allocated for the minted usernames. */
async function relayOnlyCall(pages, turn, t) {
  const started = performance.now();
  for (const page of pages) await until(page, () => window.duetDebug.pc?.connectionState === "connected", undefined, 30_000);
  t.diagnostic(`relay-only call connected in ${Math.round(performance.now() - started)} ms`);
  for (const page of pages) {
    assert.equal(await page.evaluate(() => window.duetDebug.pc.getConfiguration().iceTransportPolicy), "relay");
    assert.deepEqual(await selectedPairTypes(page), { local: "relay", remote: "relay" });
    await remoteVideoPlays(page);
  }
  // coturn allocated relays for the minted usernames: "<expiry>:<clientId>".
  const clientIds = await Promise.all(pages.map((page) => page.evaluate(() => window.duetDebug.clientId)));
  for (const id of clientIds) {
    assert.match(turn.log(), new RegExp(`user <\\d{10}:${id}>: incoming packet ALLOCATE processed, success`), `coturn allocated for ${id}`);
  }
}

/** Each side is refused its allocation, gathers no relay candidate, and does not connect. */
async function refusedCredentials(pages, turn) {
  // Each side gets its TURN credential, tries to allocate, is refused, and so gathers no relay
  // candidate: the call cannot connect.
  for (const page of pages) {
    await until(page, () => {
      const pc = window.duetDebug.pc;
      return pc && pc.iceGatheringState === "complete" && pc.getConfiguration().iceServers.some((s) => s.username);
    }, undefined, 30_000);
  }
  for (const page of pages) {
    const candidates = await page.evaluate(async () => {
      const stats = await window.duetDebug.pc.getStats();
      return [...stats.values()].filter((s) => s.type === "local-candidate").map((s) => s.candidateType);
    });
    assert.deepEqual(candidates, [], "no relay candidate without a valid credential");
    assert.notEqual(await page.evaluate(() => window.duetDebug.pc.connectionState), "connected");
  }
  // Every first Allocate is answered with a 401 challenge (`user <>`); what shows a refused
  // credential is the 401 to the second, authenticated attempt, naming the minted username.
  const clientIds = await Promise.all(pages.map((page) => page.evaluate(() => window.duetDebug.clientId)));
  for (const id of clientIds) {
    assert.match(turn.log(), new RegExp(`user <\\d{10}:${id}>: incoming packet \\w+ processed, error 401`), `coturn refused ${id}'s credential`);
  }
  assert.doesNotMatch(turn.log(), /ALLOCATE processed, success/, "no allocation succeeded");
}

/**
 * The credentials are refreshed at 80% of their lifetime and the app applies them; after the
 * first ones expired, the relays in use still carry the call, and an ICE restart allocates new
 * relays with the refreshed ones and connects over them.
 */
async function outlivesItsCredentials(pages, turn, t) {
  const started = performance.now();
  for (const page of pages) await until(page, () => window.duetDebug.pc?.connectionState === "connected", undefined, 30_000);
  const clientIds = await Promise.all(pages.map((page) => page.evaluate(() => window.duetDebug.clientId)));
  const firstExpiry = await Promise.all(pages.map((page) => page.evaluate(() => window.duetDebug.iceServersExpireAt)));
  const firstPair = await Promise.all(pages.map((page) => page.evaluate(selectedPairInPage, null)));
  for (const [i, pair] of firstPair.entries()) {
    assert.equal(pair?.local, "relay");
    assert.equal(pair?.remote, "relay");
    assert.ok(firstExpiry[i] > Date.now() && firstExpiry[i] <= Date.now() + SHORT_TTL_S * 1000, `expiry ${firstExpiry[i]}`);
  }

  // At 80% of the lifetime each page gets fresh credentials, and the app applies them.
  const fresh = [];
  for (const [i, page] of pages.entries()) {
    fresh.push(
      await until(
        page,
        (before) => {
          const debug = window.duetDebug;
          const applied = debug.pc?.getConfiguration().iceServers.find((s) => s.username);
          return debug.iceServersExpireAt > before && debug.stats.iceServerUpdates > 0 && applied?.username.split(":")[0] * 1000 === debug.iceServersExpireAt
            ? debug.iceServersExpireAt
            : null;
        },
        firstExpiry[i],
        SHORT_TTL_S * 1000,
      ),
    );
  }
  t.diagnostic(`refreshed ${fresh.map((f, i) => f - firstExpiry[i])} ms later expiries, ${Math.round(performance.now() - started)} ms in`);

  // Past the first credentials' expiry (coturn compares whole seconds), the relays in use
  // still carry the call; then an ICE restart needs new allocations.
  const expired = Math.max(...firstExpiry) + 1000;
  await until(pages[0], (at) => Date.now() > at, expired, SHORT_TTL_S * 1000);
  for (const page of pages) assert.equal(await page.evaluate(() => window.duetDebug.pc.connectionState), "connected");
  await pages[0].evaluate(() => window.duetDebug.restartIce());
  for (const [i, page] of pages.entries()) {
    const pair = await untilAsync(page, selectedPairInPage, firstPair[i].localId, 20_000);
    assert.notEqual(pair.localPort, firstPair[i].localPort, "a new relay allocation");
    await remoteVideoPlays(page);
  }
  // The new allocations were made with refreshed usernames (the first refresh's, or a later
  // one's if the page got fresher credentials meanwhile), after the first expired.
  for (const [i, id] of clientIds.entries()) {
    const expiries = [...turn.log().matchAll(new RegExp(`user <(\\d{10}):${id}>: incoming packet ALLOCATE processed, success`, "g"))].map((m) => Number(m[1]) * 1000);
    assert.ok(
      expiries.some((expiry) => expiry >= fresh[i]),
      `coturn allocated for ${id} with a fresh credential (expiries ${expiries}, fresh ${fresh[i]})`,
    );
  }
  t.diagnostic(`ICE restart over fresh relays done ${Math.round(performance.now() - started)} ms after the first connect began`);
}
