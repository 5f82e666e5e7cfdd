// Shared harness for the browser suites: the real Worker under `wrangler dev` and Debian's
// Chromium driven by playwright-core.
//
// - `startDevServer({ vars })` runs `wrangler dev` on a free loopback port with a fresh
//   `--persist-to` directory and resolves once /healthz answers; its output is kept for
//   failure messages. `stop()` ends its process group.
// - `launchChromium()` starts /usr/bin/chromium (or $CHROMIUM_PATH) with fake camera and
//   microphone. Without a browser it fails with instructions; it never downloads one.
// - `openPage(browser, url)` opens a page in its own context (own storage), recording page
//   errors and CSP violations so a suite can assert there were none.
// - `until(page, predicate)` waits on a condition in the page (`window.duetDebug` state),
//   never a fixed sleep.

import { execFileSync, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT } from "./common.mjs";
import { writeStaticConfig } from "./static-config.mjs";

export * from "./common.mjs";

/**
 * Where the suites save screenshots: test/artifacts/ on every run (ignored by git); the README's
 * copies in docs/screenshots/ are refreshed with UPDATE_SCREENSHOTS=1.
 */
export const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? join(ROOT, "docs", "screenshots") : join(ROOT, "test", "artifacts");

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** Builds the Worker once and returns a build-less copy of wrangler.toml that serves it. */
function staticConfig() {
  execFileSync("make", ["--no-print-directory", "build"], { cwd: ROOT, stdio: "ignore" });
  return writeStaticConfig("wrangler.test.toml");
}

/**
 * Starts `wrangler dev` on the built Worker.
 * @param {{ vars?: Record<string, string>, timeoutMs?: number }} [options]
 */
export async function startDevServer({ vars = {}, timeoutMs = 180_000 } = {}) {
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const persistDir = mkdtempSync(join(tmpdir(), "duet-browser-"));
  const args = [
    join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    "--config", staticConfig(),
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistDir,
    "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true, // its own process group, so stop() also ends workerd
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: process.env.CI ?? "1", NO_COLOR: "1" },
  });
  let output = "";
  const keep = (/** @type {Buffer} */ chunk) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  const origin = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-(/** @type {number} */ (child.pid)), "SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-(/** @type {number} */ (child.pid)), "SIGKILL");
        } catch {
          // Already gone.
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(persistDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + timeoutMs;
  let stopped = false;
  exited.then(() => (stopped = true));
  while (!stopped && Date.now() < deadline) {
    try {
      const response = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return { origin, port, stop, output: () => output };
    } catch {
      // Not listening yet (the build runs first).
    }
    await new Promise((resolve) => setTimeout(resolve, 250)); // polling interval, not a wait for an outcome
  }
  await stop();
  throw new Error(`wrangler dev did not answer /healthz${stopped ? " (it exited)" : ""}. Its output:\n${output}`);
}

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

/** Launches Chromium with a fresh temporary profile (playwright's launch creates one). */
export async function launchChromium() {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
  } catch {
    throw new Error(
      `No Chromium at ${CHROMIUM_PATH}. The browser tests need one: on Debian/Ubuntu run ` +
        "`sudo apt-get install chromium`, or set CHROMIUM_PATH to a Chromium or Chrome binary. " +
        "(The tests never download a browser.)",
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Opens `url` in a fresh context. `denyMedia` makes getUserMedia fail as if the person said no.
 * The returned page carries `problems`: page errors and CSP violations seen so far.
 * @param {import("playwright-core").Browser} browser
 * @param {string} url
 * @param {{ denyMedia?: boolean, viewport?: {width: number, height: number} }} [options]
 */
export async function openPage(browser, url, { denyMedia = false, viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  if (denyMedia) {
    await context.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
    });
  }
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (/Content.Security.Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  await page.goto(url);
  return Object.assign(page, { problems });
}

/**
 * Waits until `predicate(arg)`, run in the page, is truthy and returns its value. Predicates
 * read `window.duetDebug`; polling a condition, never sleeping a fixed time.
 * @template T
 * @param {import("playwright-core").Page} page
 * @param {(arg: T) => unknown} predicate
 * @param {T} [arg]
 * @param {number} [timeout]
 */
export async function until(page, predicate, arg, timeout = 20_000) {
  const handle = await page.waitForFunction(predicate, arg, { timeout, polling: 50 });
  return handle.jsonValue();
}

/**
 * Waits until the page's remote video really plays: it has a size, and both its clock and its
 * decoded frame count move forward.
 * @param {import("playwright-core").Page} page
 */
export async function remoteVideoPlays(page) {
  const first = await until(page, () => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById("remote-video"));
    const frames = video.getVideoPlaybackQuality().totalVideoFrames;
    return video.videoWidth > 0 && video.currentTime > 0 && !video.paused && frames > 0 && { time: video.currentTime, frames };
  });
  await until(
    page,
    (previous) => {
      const video = /** @type {HTMLVideoElement} */ (document.getElementById("remote-video"));
      return video.currentTime > previous.time && video.getVideoPlaybackQuality().totalVideoFrames > previous.frames;
    },
    first,
  );
}
