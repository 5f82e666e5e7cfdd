// Shared harness for the browser suites: the real Worker under `wrangler dev`, Debian's
// Chromium driven by playwright-core and Debian's Firefox ESR driven by puppeteer-core over
// WebDriver BiDi. The helpers below take a page of either.
//
// - `startDevServer({ vars })` runs `wrangler dev` on a free loopback port with a fresh
//   `--persist-to` directory and resolves once /healthz answers; its output is kept for
//   failure messages. `stop()` ends its process group.
// - `launchChromium()` starts /usr/bin/chromium (or $CHROMIUM_PATH) with fake camera and
//   microphone. Without a browser it fails with instructions; it never downloads one.
// - `launchFirefox()` starts /usr/bin/firefox-esr (or $FIREFOX_PATH) with fake media, the same
//   way. WebKitGTK's MiniBrowser comes from `launchWebKit()` of webkit.mjs; `openPage`, `until`
//   and `accessibilityProblems` take its pages too.
// - `openPage(browser, url)` opens a page in its own context (own storage), recording page
//   errors and CSP violations so a suite can assert there were none; `closePage(page)` ends it.
// - `until(page, predicate)` waits on a condition in the page (`window.duetDebug` state),
//   never a fixed sleep.
// - `sendChat`, `chatArrives`, `remoteVideoPlays` and `dropResumes` check a call in the app.
// - `accessibilityProblems(page)` runs axe-core in the page and returns its serious and critical
//   violations.

import { execFileSync, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";
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
  // Browser suites open many pages from one IP; the join limit has its own Miniflare test.
  return writeStaticConfig("wrangler.test.toml", { joinLimit: 100000 });
}

/**
 * Starts `wrangler dev` on the built Worker. By default on a free loopback port with a fresh
 * `--persist-to` directory, which `stop()` removes. The network lab (test/netlab/) passes
 * `netns` (run inside that network namespace, with `ip` and `port` in it, readiness checked
 * from inside it) and its own `persistDir`, which outlives `stop()` so that a restart on the
 * same port finds the rooms again.
 * @param {{ vars?: Record<string, string>, timeoutMs?: number, netns?: string, ip?: string, port?: number, persistDir?: string }} [options]
 */
export async function startDevServer({ vars = {}, timeoutMs = 180_000, netns, ip = "127.0.0.1", port: fixedPort, persistDir: ownDir } = {}) {
  const [port, inspectorPort] = [fixedPort ?? (await freePort()), await freePort()];
  const persistDir = ownDir ?? mkdtempSync(join(tmpdir(), "duet-browser-"));
  const args = [
    join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    "--config", staticConfig(),
    "--ip", ip,
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistDir,
    "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  const [command, commandArgs] = netns ? ["ip", ["netns", "exec", netns, process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(command, commandArgs, {
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

  const origin = `http://${ip}:${port}`;
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
    if (!ownDir) rmSync(persistDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + timeoutMs;
  let stopped = false;
  exited.then(() => (stopped = true));
  while (!stopped && Date.now() < deadline) {
    if (await healthy(`${origin}/healthz`, netns)) return { origin, port, stop, output: () => output };
    await new Promise((resolve) => setTimeout(resolve, 250)); // polling interval, not a wait for an outcome
  }
  await stop();
  throw new Error(`wrangler dev did not answer /healthz${stopped ? " (it exited)" : ""}. Its output:\n${output}`);
}

/**
 * Whether `url` answers 2xx within 2 s, fetched from this process or, with `netns`, from a Node
 * process inside that network namespace (this one has no route there).
 * @param {string} url
 * @param {string} [netns]
 */
async function healthy(url, netns) {
  if (!netns) {
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
    } catch {
      return false; // not listening yet (the build runs first)
    }
  }
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
  return new Promise((resolve) => {
    const probe = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", script], { stdio: "ignore" });
    probe.once("exit", (code) => resolve(code === 0));
    probe.once("error", () => resolve(false));
  });
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

/**
 * Throws the install instruction when there is no browser at `path`: the tests never download one.
 * @param {string} path
 * @param {string} name
 * @param {string} debianPackage
 * @param {string} variable the environment variable that points at another binary
 */
function requireBrowser(path, name, debianPackage, variable) {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      `No ${name} at ${path}. The browser tests need one: on Debian/Ubuntu run ` +
        `\`sudo apt-get install ${debianPackage}\`, or set ${variable} to a ${name} binary. ` +
        "(The tests never download a browser.)",
    );
  }
}

/**
 * One Chromium and one `wrangler dev` for the suite that calls this inside its `describe`:
 * registers the suite's `before` (the browser first: without one, fail before starting a server)
 * and `after`, which closes both and, whatever ran and even after a failure, asserts that no page
 * opened through `open` had script errors or CSP violations.
 * @param {{ fakeDevices?: number, vars?: Record<string, string> }} [options]
 */
export function chromiumSuite({ fakeDevices, vars } = {}) {
  /** @type {import("playwright-core").Browser | undefined} */
  let browser;
  /** @type {Awaited<ReturnType<typeof startDevServer>> | undefined} */
  let server;
  /** @type {Awaited<ReturnType<typeof openPage>>[]} */
  const pages = [];
  before(async () => {
    browser = await launchChromium({ fakeDevices });
    server = await startDevServer({ vars });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  after(async () => {
    const problems = pages.flatMap((page) => page.problems);
    await browser?.close();
    await server?.stop();
    assert.deepEqual(problems, [], "script errors or CSP violations");
  });
  return {
    /** The server's origin, once `before` ran. */
    get origin() {
      return /** @type {NonNullable<typeof server>} */ (server).origin;
    },
    /**
     * Opens a page whose problems the suite checks at its end.
     * @param {string} address
     * @param {Parameters<typeof openPage>[2]} [options]
     */
    async open(address, options) {
      const page = await openPage(browser, address, options);
      pages.push(page);
      return page;
    },
  };
}

/**
 * Launches Chromium with a fresh temporary profile (playwright's launch creates one).
 * `fakeDevices` sets how many fake cameras and microphones it has (one of each by default).
 * @param {{ fakeDevices?: number }} [options]
 */
export async function launchChromium({ fakeDevices } = {}) {
  requireBrowser(CHROMIUM_PATH, "Chromium", "chromium", "CHROMIUM_PATH");
  const fake = "--use-fake-device-for-media-stream";
  const args = fakeDevices ? CHROMIUM_ARGS.map((arg) => (arg === fake ? `${fake}=device-count=${fakeDevices}` : arg)) : CHROMIUM_ARGS;
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args });
}

export const FIREFOX_PATH = process.env.FIREFOX_PATH || "/usr/bin/firefox-esr";

/**
 * Fake camera and microphone, granted without a prompt. Sound that plays by itself is blocked
 * (Firefox's default), and only a real input event counts as the person's permission: by
 * default any script puppeteer runs would count, and the "tap to hear" path would go untested.
 */
export const FIREFOX_PREFS = {
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.autoplay.default": 1,
  "media.autoplay.blocking_policy": 2,
};

/** Launches Firefox (puppeteer-core over WebDriver BiDi) with a fresh temporary profile. */
export async function launchFirefox() {
  requireBrowser(FIREFOX_PATH, "Firefox", "firefox-esr", "FIREFOX_PATH");
  return puppeteer.launch({
    browser: "firefox",
    protocol: "webDriverBiDi",
    executablePath: FIREFOX_PATH,
    headless: true,
    extraPrefsFirefox: FIREFOX_PREFS,
  });
}

/** Whether `page` is puppeteer's (Firefox) rather than playwright's (Chromium). */
const isPuppeteer = (/** @type {any} */ page) => typeof page.browserContext === "function";

/**
 * Opens `url` in a fresh context of `browser` (Chromium from `launchChromium` or Firefox from
 * `launchFirefox`). `denyMedia` makes getUserMedia fail as if the person said no. The returned
 * page carries `problems`: page errors and CSP violations seen so far. `prepare(context)` runs
 * before the page opens (init scripts, WebSocket routes; Chromium only). `phone` makes it a
 * touch phone of `viewport`'s size (Chromium only).
 * @param {any} browser
 * @param {string} url
 * @param {{ denyMedia?: boolean, viewport?: {width: number, height: number}, phone?: boolean, prepare?: (context: import("playwright-core").BrowserContext) => Promise<void> }} [options]
 */
export async function openPage(browser, url, { denyMedia = false, viewport = { width: 1280, height: 800 }, phone = false, prepare } = {}) {
  const denyScript = () => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
  };
  let page;
  if (browser.webkit) {
    // WebKitGTK (webkit.mjs): a window of its own session; it loads `url` itself.
    page = await browser.newPage(url, viewport);
    await until(page, () => !document.getElementById("landing") || !document.getElementById("landing")?.hidden || "duetDebug" in window);
    return page;
  }
  if (typeof browser.createBrowserContext === "function") {
    // A window of its own, as a person would have: a background tab gets no animation frames,
    // so its video presents no frames and puppeteer's actions wait for it forever.
    page = await (await browser.createBrowserContext()).newPage({ type: "window" });
    await page.setViewport(viewport);
    if (denyMedia) await page.evaluateOnNewDocument(denyScript);
  } else {
    const context = await browser.newContext({ viewport, ...(phone ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}) });
    await prepare?.(context);
    if (denyMedia) await context.addInitScript(denyScript);
    page = await context.newPage();
  }
  /** @type {string[]} */
  const problems = [];
  page.on("pageerror", (/** @type {Error} */ error) => problems.push(`page error: ${error.message}`));
  page.on("console", (/** @type {{text(): string}} */ message) => {
    if (/Content.Security.Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  await page.goto(url);
  // The app loads its call code after the page (app.js imports callpage.js on a room's page):
  // wait until either page of the app is shown, so `window.duetDebug` is there on a call page.
  await until(page, () => !document.getElementById("landing") || !document.getElementById("landing")?.hidden || "duetDebug" in window);
  return Object.assign(page, { problems });
}

/** Closes `page` with its context (and its storage). */
export async function closePage(/** @type {any} */ page) {
  if (typeof page.collectProblems === "function") return page.close(); // WebKitGTK
  await (isPuppeteer(page) ? page.browserContext() : page.context()).close();
}

/**
 * Waits until `predicate(arg)`, run in the page, is truthy and returns its value. Predicates
 * read `window.duetDebug`; polling a condition, never sleeping a fixed time.
 * @template T
 * @param {any} page a playwright or puppeteer page
 * @param {(arg: T) => unknown} predicate
 * @param {T} [arg]
 * @param {number} [timeout]
 */
export async function until(page, predicate, arg, timeout = 20_000) {
  const options = { timeout, polling: 50 };
  try {
    const handle = isPuppeteer(page) ? await page.waitForFunction(predicate, options, arg) : await page.waitForFunction(predicate, arg, options);
    return handle.jsonValue();
  } catch (error) {
    // Say what the page showed instead, so a failure in CI can be read without a rerun.
    const state = await page
      .evaluate(() => {
        const d = /** @type {any} */ (window).duetDebug;
        return { status: d?.status, text: document.getElementById("status")?.textContent, pc: d?.pc?.connectionState, ice: d?.pc?.iceConnectionState };
      })
      .catch(() => null);
    if (error instanceof Error) error.message += ` (the page: ${JSON.stringify(state)})`;
    throw error;
  }
}

/** Types `text` into the app's chat box and sends it, once the data channel is open. */
export async function sendChat(/** @type {any} */ page, /** @type {string} */ text) {
  await until(page, () => !(/** @type {HTMLInputElement} */ (document.getElementById("chat-input")).disabled));
  await page.locator("#chat-input").fill(text);
  await page.locator("#chat-send").click();
}

/** Waits until the app shows `text` as a chat message from the other person. */
export async function chatArrives(/** @type {any} */ page, /** @type {string} */ text) {
  await until(page, (expected) => [...document.querySelectorAll(".chat-item.from-peer .text")].some((item) => item.textContent === expected), text);
}

/**
 * Waits until the page's remote video really plays: it has a size, and both its clock and the
 * number of frames it presented move forward. (Frames are counted with
 * `requestVideoFrameCallback`: Firefox's `getVideoPlaybackQuality()` counts none for a
 * MediaStream.)
 * @param {any} page
 */
export async function remoteVideoPlays(page) {
  await page.evaluate(() => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById("remote-video"));
    const counter = { frames: 0 };
    const tick = () => {
      counter.frames += 1;
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
    Object.assign(window, { remoteFrames: counter });
  });
  const first = await until(page, () => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById("remote-video"));
    const frames = /** @type {any} */ (window).remoteFrames.frames;
    return video.videoWidth > 0 && video.currentTime > 0 && !video.paused && frames > 0 && { time: video.currentTime, frames };
  });
  await until(
    page,
    (previous) => {
      const video = /** @type {HTMLVideoElement} */ (document.getElementById("remote-video"));
      return video.currentTime > previous.time && /** @type {any} */ (window).remoteFrames.frames > previous.frames;
    },
    first,
  );
}

/**
 * In a connected call between `dropper` and `peer`, drops `dropper`'s signaling socket as a
 * network failure would, and checks that it resumes without touching the call: the peer shows
 * "reconnecting" and keeps the video meanwhile, both come back to "connected" with the same
 * slot, the same peer connection and no new negotiation, and the data channel still carries chat.
 * @param {any} dropper
 * @param {any} peer
 */
export async function dropResumes(dropper, peer) {
  const snapshot = () =>
    Promise.all(
      [dropper, peer].map((page) =>
        page.evaluate(() => {
          const d = window.duetDebug;
          return { clientId: d.clientId, pcId: d.pcId, offers: d.offers, stats: d.stats };
        }),
      ),
    );
  const before = await snapshot();
  // One look at the peer's page while the other is away: the status says so, the video stays.
  // Taken by the page itself when the status changes, as the away spell can be brief.
  await peer.evaluate(() => {
    const status = /** @type {HTMLElement} */ (document.getElementById("status"));
    Object.assign(window, { seenWhileAway: null });
    new MutationObserver((_, observer) => {
      if (status.dataset.status !== "peer-reconnecting") return;
      const videoShown = !(/** @type {HTMLElement} */ (document.getElementById("remote-video")).hidden);
      Object.assign(window, { seenWhileAway: { text: status.textContent, videoShown } });
      observer.disconnect();
    }).observe(status, { attributes: true, childList: true, subtree: true, characterData: true });
  });
  await dropper.evaluate(() => {
    window.callBeforeDrop = window.duetDebug.pc;
    window.duetDebug.dropSignaling();
  });
  await until(dropper, () => window.duetDebug.status === "reconnecting");
  const whileAway = await until(peer, () => /** @type {any} */ (window).seenWhileAway);
  assert.deepEqual(whileAway, { text: "The other person's connection dropped; waiting for them…", videoShown: true });
  await until(dropper, (n) => window.duetDebug.stats.reconnects === n && window.duetDebug.status === "connected", before[0].stats.reconnects + 1);
  // The peer's status waits for its video to be seen again (video-stopped in between), which a
  // busy machine's headless Chromium can be slow to paint.
  await until(peer, () => window.duetDebug.status === "connected", undefined, 45_000);
  const afterDrop = await snapshot();
  for (const i of [0, 1]) {
    assert.equal(afterDrop[i].clientId, before[i].clientId, "the slot was resumed");
    assert.equal(afterDrop[i].pcId, before[i].pcId, "same peer connection");
    assert.deepEqual(afterDrop[i].offers, before[i].offers, "no renegotiation");
    assert.equal(afterDrop[i].stats.peerConnections, before[i].stats.peerConnections);
    assert.equal(afterDrop[i].stats.iceRestarts, before[i].stats.iceRestarts);
  }
  assert.ok(await dropper.evaluate(() => window.callBeforeDrop === window.duetDebug.pc && window.duetDebug.pc.connectionState === "connected"));
  assert.equal(await peer.evaluate(() => window.duetDebug.pc.connectionState), "connected");
  // The data channel carried on through it all.
  await sendChat(dropper, "still here");
  await chatArrives(peer, "still here");
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core (WCAG 2.1 A and AA, and best practices) on the page as it is now and returns its
 * serious and critical violations as `"rule: selector"` strings, so a failure names them.
 * @param {any} page a playwright or puppeteer page
 */
export async function accessibilityProblems(page) {
  // Evaluated by the driver, not as a <script>: the app's CSP allows no inline script.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = /** @type {any} */ (window).axe;
    const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];
    const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
    return result.violations
      .filter((/** @type {any} */ v) => v.impact === "serious" || v.impact === "critical")
      .flatMap((/** @type {any} */ v) => v.nodes.map((/** @type {any} */ n) => `${v.id}: ${n.target.join(" ")}`));
  });
}

/**
 * Waits until an element of role `status` that is shown says exactly `text` (the way a screen
 * reader hears it), in a playwright or puppeteer page.
 * @param {any} page
 * @param {string} text
 * @param {number} [timeout]
 */
export async function statusSays(page, text, timeout = 20_000) {
  await until(page, (expected) => [...document.querySelectorAll('[role="status"]')].some((e) => e.textContent === expected && !e.closest("[hidden]")), text, timeout);
}

/**
 * In a connected call, `sender` stops sending video while its sound goes on (its video sender
 * carries no track, as when a camera fails), and `watcher` says the other person's video
 * stopped; `whileStopped()` runs then. The video comes back, and so does "Connected".
 * @param {any} sender
 * @param {any} watcher
 * @param {() => Promise<void>} [whileStopped]
 */
export async function videoStopsAndComesBack(sender, watcher, whileStopped) {
  await sender.evaluate(async () => {
    const video = window.duetDebug.pc.getSenders().find((s) => s.track?.kind === "video");
    Object.assign(window, { stoppedVideo: { sender: video, track: video.track } });
    await video.replaceTrack(null);
  });
  await statusSays(watcher, "Connected, but the other person's video stopped.");
  assert.equal(await watcher.evaluate(() => window.duetDebug.status), "video-stopped");
  await whileStopped?.();
  await sender.evaluate(() => /** @type {any} */ (window).stoppedVideo.sender.replaceTrack(/** @type {any} */ (window).stoppedVideo.track));
  await statusSays(watcher, "Connected", 45_000);
}

/**
 * A way to cut a Chromium page's signaling for good, as a network failure that lasts would: pass
 * `prepare` to `openPage` (the page's sockets then go through playwright's WebSocket routing,
 * untouched), and after `cut()` every socket the page opens is closed before it reaches the
 * server.
 */
export function signalingCutter() {
  let cut = false;
  return {
    prepare: (/** @type {import("playwright-core").BrowserContext} */ context) =>
      context.routeWebSocket(/\/ws\//, (socket) => {
        if (cut) socket.close();
        else socket.connectToServer(); // frames and closes pass both ways untouched
      }),
    cut() {
      cut = true;
    },
  };
}

/**
 * In a connected call, `dropper` (a Chromium page opened with `cutter.prepare`) loses its
 * signaling for good. `watcher` first says the other person's connection dropped (`whileAway()`
 * runs then), and once the server's resume grace (RESUME_GRACE_MS) is over, that they left
 * because it did not come back in time.
 * @param {import("playwright-core").Page} dropper
 * @param {ReturnType<typeof signalingCutter>} cutter
 * @param {any} watcher
 * @param {() => Promise<void>} [whileAway]
 */
export async function dropsForGood(dropper, cutter, watcher, whileAway) {
  cutter.cut();
  await dropper.evaluate(() => window.duetDebug.dropSignaling());
  await statusSays(watcher, "The other person's connection dropped; waiting for them…");
  await whileAway?.();
  await statusSays(watcher, "The other person left: their connection dropped and did not come back in time. They can come back with the same link.", 45_000);
  assert.equal(await watcher.evaluate(() => window.duetDebug.call.peerLeftReason), "timeout");
  assert.deepEqual(await watcher.evaluate(() => window.duetDebug.statusHistory.slice(-2)), ["peer-reconnecting", "peer-left"]);
}

/**
 * In a connected call, `silent`'s pings stop reaching the server while its page hears pongs as
 * before (as a middlebox that swallows them would leave it), so the server sees its socket go
 * silent. Once `watcher` has pinged since (its last activity is the newer) and `staleMs`
 * (the server's STALE_AFTER_MS) have passed, `join()` opens a newcomer's page on the room,
 * which finds it full: the server closes `silent` (4408) and tells `watcher` `peer-left` with
 * `stale`. Returns what `watcher`'s status said meanwhile, the newcomer's page, and what
 * `silent` says at the end.
 * @param {any} silent
 * @param {any} watcher
 * @param {() => Promise<any>} join
 * @param {number} staleMs
 */
export async function goesStale(silent, watcher, join, staleMs) {
  await watcher.evaluate(() => {
    const status = /** @type {HTMLElement} */ (document.getElementById("status"));
    const said = /** @type {string[]} */ ([]);
    Object.assign(window, { statusSaid: said, pongSince: false });
    new MutationObserver(() => said.at(-1) !== status.textContent && said.push(status.textContent ?? "")).observe(status, { childList: true, subtree: true, characterData: true });
  });
  await silent.evaluate(() => {
    const native = WebSocket.prototype.send;
    WebSocket.prototype.send = function (/** @type {any} */ data) {
      if (data !== '{"type":"ping"}') return native.call(this, data);
      setTimeout(() => this.dispatchEvent(new MessageEvent("message", { data: '{"type":"pong"}' })));
    };
  });
  const silencedAt = Date.now();
  await watcher.evaluate(() => window.duetDebug.call.signaling.addEventListener("pong", () => Object.assign(window, { pongSince: true })));
  // The app pings every 20 s: the watcher's next ping makes it the more recently active.
  await until(watcher, () => /** @type {any} */ (window).pongSince, undefined, 30_000);
  await until(watcher, (at) => Date.now() > at, silencedAt + staleMs + 500, staleMs + 30_000);
  const newcomer = await join();
  await until(watcher, () => window.duetDebug.call.peerLeftReason === "stale");
  await until(silent, () => window.duetDebug.status === "error");
  const silentSays = await silent.evaluate(() => document.getElementById("status")?.textContent);
  return { said: await watcher.evaluate(() => /** @type {any} */ (window).statusSaid), newcomer, silentSays };
}
