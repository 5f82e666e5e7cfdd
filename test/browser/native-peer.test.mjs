// The native peer (duet-client/examples/native-peer, Rust with str0m) against the app in
// Chromium, through one `wrangler dev`: in both join orders, with and without an end-to-end key,
// the page reaches "connected", the native peer counts frames of the page's video, chat goes
// both ways over the data channel, and with a key both confirm it and show the same safety code;
// with different keys both report key-mismatch.
// The example is built once (`make test` builds it before the Node suites; run alone, this file
// builds it if it is missing). Every wait is on a condition (a page state or a line the example
// prints), never a fixed sleep.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chatArrives, closePage, launchChromium, openPage, ROOT, roomName, sendChat, startDevServer, until } from "../helpers/browser.mjs";

const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, "target");
const BINARY = join(TARGET, "debug", "examples", "native-peer");
/** How long the example may take to print what a step waits for. */
const LINE_TIMEOUT_MS = 30_000;

const connected = () => window.duetDebug?.pc?.connectionState === "connected" && window.duetDebug.status === "connected";

/**
 * Runs the example; `waitFor(pattern)` resolves with the match of the first line of its output
 * (seen so far or still to come) that matches, and fails after LINE_TIMEOUT_MS with its output.
 * @param {string[]} args
 */
function runNativePeer(args) {
  const child = spawn(BINARY, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, RUST_BACKTRACE: "1" } });
  /** @type {string[]} */
  const lines = [];
  let partial = "";
  /** @type {Set<() => void>} */
  const listeners = new Set();
  const onData = (/** @type {Buffer} */ chunk) => {
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
    for (const listener of listeners) listener();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", (/** @type {Buffer} */ chunk) => lines.push(...chunk.toString().split("\n").map((l) => `stderr: ${l}`)));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  exited.then(() => listeners.forEach((l) => l()));
  /** @param {RegExp} pattern @returns {Promise<RegExpMatchArray>} */
  const waitFor = (pattern) =>
    new Promise((resolve, reject) => {
      const check = () => {
        for (const line of lines) {
          const match = pattern.exec(line);
          if (match) return finish(() => resolve(match));
        }
        if (child.exitCode !== null || child.signalCode !== null) finish(() => reject(new Error(`native-peer exited before printing ${pattern}:\n${lines.join("\n")}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`native-peer did not print ${pattern} in time:\n${lines.join("\n")}`))), LINE_TIMEOUT_MS);
      const finish = (/** @type {() => void} */ settle) => {
        clearTimeout(timer);
        listeners.delete(check);
        settle();
      };
      listeners.add(check);
      check();
    });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  return { waitFor, stop, lines };
}

describe("the native peer calls the app", () => {
  /** @type {Awaited<ReturnType<typeof startDevServer>>} */
  let server;
  /** @type {import("playwright-core").Browser} */
  let browser;

  before(async () => {
    if (!existsSync(BINARY)) execFileSync("cargo", ["build", "-p", "duet-client", "--example", "native-peer"], { cwd: ROOT, stdio: "inherit" });
    browser = await launchChromium();
    server = await startDevServer();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /**
   * One call between the page and the native peer.
   * @param {{ pageFirst: boolean, key: boolean }} options
   */
  async function call({ pageFirst, key }) {
    const room = roomName("native");
    const secret = key ? randomBytes(32).toString("base64url") : null;
    const url = `${server.origin}/${room}${secret ? `#k=${secret}` : ""}`;
    const fromNative = `hello from rust ${randomBytes(4).toString("hex")}`;
    const args = ["--url", server.origin, "--room", room, "--say", fromNative, ...(secret ? ["--key", secret] : [])];
    let page;
    let native;
    try {
      if (pageFirst) {
        page = await openPage(browser, url);
        await until(page, () => window.duetDebug?.status === "waiting");
        native = runNativePeer(args);
        await native.waitFor(/^joined room /);
        await native.waitFor(/^ready: answering the call$/);
      } else {
        native = runNativePeer(args);
        await native.waitFor(/^created room .*: waiting for the other person$/);
        page = await openPage(browser, url);
        await native.waitFor(/^ready: starting the call$/);
      }
      await until(page, connected);
      await native.waitFor(/^connected$/);
      const frames = await native.waitFor(/^video frames: (\d+)$/);
      assert.ok(Number(frames[1]) > 0);
      // Chat both ways over the data channel.
      await chatArrives(page, fromNative);
      const fromPage = `hello from the page ${randomBytes(4).toString("hex")}`;
      await sendChat(page, fromPage);
      await native.waitFor(new RegExp(`^chat: ${fromPage}$`));
      // The page's mute and camera state arrived in the app's format.
      await native.waitFor(/^peer state: mic="on" camera="on"$/);
      const state = await page.evaluate(() => ({ peerState: window.duetDebug.peerState, encrypted: window.duetDebug.encrypted, e2eErrors: window.duetDebug.e2eErrors }));
      assert.deepEqual(state.peerState, { mic: "none", camera: "none", screen: false });
      assert.equal(state.encrypted, key);
      assert.deepEqual(state.e2eErrors, []);
      if (key) {
        await native.waitFor(/^key confirmed/);
        await until(page, () => window.duetDebug.keyConfirmed === true);
        await until(page, () => !document.getElementById("safety")?.hidden);
        const shown = await page.evaluate(() => document.getElementById("safety-code")?.textContent);
        const printed = await native.waitFor(/^safety code: (\d{3} \d{3})$/);
        assert.match(shown ?? "", /^\d{3} \d{3}$/);
        assert.equal(printed[1], shown, "the same safety code on both sides");
      }
      assert.ok(!native.lines.some((line) => /^e2e error/.test(line)), native.lines.join("\n"));
      assert.deepEqual(page.problems, []);
    } finally {
      await native?.stop();
      if (page) await closePage(page);
    }
  }

  test("a link with another key: both sides report key-mismatch, and no call starts", async () => {
    const room = roomName("native");
    const page = await openPage(browser, `${server.origin}/${room}#k=${randomBytes(32).toString("base64url")}`);
    const native = runNativePeer(["--url", server.origin, "--room", room, "--key", randomBytes(32).toString("base64url")]);
    try {
      await until(page, () => window.duetDebug.keyConfirmed === false && window.duetDebug.e2eErrors.includes("key-mismatch"));
      await native.waitFor(/^e2e error: key-mismatch /);
      assert.ok(!native.lines.includes("connected") && !native.lines.some((line) => line.startsWith("key confirmed")), native.lines.join("\n"));
      assert.notEqual(await page.evaluate(() => window.duetDebug.pc?.connectionState ?? null), "connected");
    } finally {
      await native.stop();
      await closePage(page);
    }
  });

  test("answers the page's call (the page is first in), plain", () => call({ pageFirst: true, key: false }));
  test("starts the call (it is first in), plain", () => call({ pageFirst: false, key: false }));
  test("answers the page's call with an end-to-end key: same safety code", () => call({ pageFirst: true, key: true }));
  test("starts the call with an end-to-end key: same safety code", () => call({ pageFirst: false, key: true }));
});
