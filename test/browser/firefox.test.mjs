// Calls with Firefox (Debian's firefox-esr over WebDriver BiDi) through the app on `wrangler dev`:
// Chromium and Firefox in both join orders, Firefox with Firefox, a dropped signaling socket
// in Firefox that resumes, what Firefox shows when the other person's video stops and when
// their connection drops for good, and what each engine shows when the other's connection went
// silent and the server closed it for a newcomer (STALE_AFTER_MS is 5 s on this server). Each call must show video both ways and carry chat over the data
// channel; waits are on conditions in the pages, never fixed sleeps.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  accessibilityProblems,
  chatArrives,
  closePage,
  dropResumes,
  dropsForGood,
  goesStale,
  launchChromium,
  launchFirefox,
  openPage,
  remoteVideoPlays,
  roomName,
  SCREENSHOTS,
  sendChat,
  signalingCutter,
  startDevServer,
  until,
  videoStopsAndComesBack,
} from "../helpers/browser.mjs";

const STALE_MS = 5000;
const connected = () => window.duetDebug?.pc?.connectionState === "connected" && window.duetDebug.status === "connected";

describe("calls with Firefox", () => {
  /** @type {Awaited<ReturnType<typeof startDevServer>>} */
  let server;
  /** @type {{chromium: any, firefox: any}} */
  const browsers = { chromium: null, firefox: null };
  /** @type {any[]} */
  const pages = [];

  before(async () => {
    // First: without a browser, fail before starting a server.
    browsers.firefox = await launchFirefox();
    browsers.chromium = await launchChromium();
    // A socket silent for 5 s may be evicted by a newcomer (no test here has a third page
    // join a full room but the stale one, so the short time changes nothing else).
    server = await startDevServer({ vars: { STALE_AFTER_MS: String(STALE_MS) } });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  // Whatever ran, and even after a failure: no page may have had script errors or CSP violations.
  after(async () => {
    const problems = pages.flatMap((page) => page.problems);
    await browsers.firefox?.close();
    await browsers.chromium?.close();
    await server?.stop();
    assert.deepEqual(problems, [], "script errors or CSP violations");
  });

  /**
   * Opens the same new room in `first`, then (once it waits for the other person) in `second`,
   * and checks the call: connected, video playing both ways, the remote sound playing (after
   * the "tap to hear" prompt where the browser blocks sound until a person interacts), and chat
   * both ways. Returns the two pages, still in the call.
   * @param {"chromium" | "firefox"} first
   * @param {"chromium" | "firefox"} second
   * @param {Parameters<typeof openPage>[2]} [hostOptions] for `first`'s page
   */
  async function call(first, second, hostOptions) {
    const url = `${server.origin}/${roomName(`${first}-${second}`)}`;
    const host = await openPage(browsers[first], url, hostOptions);
    pages.push(host);
    await until(host, () => window.duetDebug?.status === "waiting");
    const guest = await openPage(browsers[second], url);
    pages.push(guest);
    await Promise.all([until(host, connected), until(guest, connected)]);
    for (const [page, engine] of [[host, first], [guest, second]]) {
      await remoteVideoPlays(page);
      await hearsTheOther(page, engine);
    }
    await sendChat(host, `hello from ${first}`);
    await chatArrives(guest, `hello from ${first}`);
    await sendChat(guest, `and hello from ${second}`);
    await chatArrives(host, `and hello from ${second}`);
    return [host, guest];
  }

  test("Chromium first, Firefox second: video both ways, chat, mute and camera off shown across; hanging up in Firefox looks over", async () => {
    const [chromiumPage, firefoxPage] = await call("chromium", "firefox");
    await firefoxPage.locator("#mic").click();
    await firefoxPage.locator("#camera").click();
    const labels = await firefoxPage.evaluate(() => ["mic", "camera"].map((id) => `${document.getElementById(id)?.textContent} ${document.getElementById(id)?.getAttribute("aria-pressed")}`));
    assert.deepEqual(labels, ["Unmute true", "Camera on true"]);
    await chromiumPage.locator("#stage").getByText("Muted", { exact: true }).waitFor();
    await chromiumPage.getByText("The other person turned their camera off.").waitFor();

    await firefoxPage.locator("#hang-up").click();
    const over = await until(firefoxPage, () => {
      const shown = (/** @type {string} */ id) => !(/** @type {HTMLElement} */ (document.getElementById(id)).hidden);
      const d = window.duetDebug;
      return d.status === "ended" && d.liveTracks === 0 && { controls: shown("controls"), link: shown("share"), video: shown("stage"), next: document.querySelector("#after-call a")?.textContent };
    });
    assert.deepEqual(over, { controls: false, link: false, video: false, next: "Start a new call" });
    assert.deepEqual(await accessibilityProblems(firefoxPage), []);
    await chromiumPage.getByRole("status").filter({ hasText: "The other person left the call." }).waitFor();
    await Promise.all([chromiumPage, firefoxPage].map(closePage));
  });

  test("Firefox first, Chromium second: video both ways, chat; closing the Firefox tab is leaving, at once", async () => {
    const [firefoxPage, chromiumPage] = await call("firefox", "chromium");
    const seen = await chromiumPage.evaluate(() => window.duetDebug.statusHistory.length);
    await firefoxPage.close({ runBeforeUnload: true });
    await chromiumPage.getByRole("status").filter({ hasText: "The other person left the call." }).waitFor();
    assert.deepEqual(await chromiumPage.evaluate((n) => window.duetDebug.statusHistory.slice(n), seen), ["peer-left"]);
    await closePage(chromiumPage);
  });

  test("in Firefox, the other person's video stopping, and a drop that lasts past the grace, each read as what they are", async () => {
    const cutter = signalingCutter();
    const [chromiumPage, firefoxPage] = await call("chromium", "firefox", { prepare: cutter.prepare });
    await videoStopsAndComesBack(chromiumPage, firefoxPage, async () => {
      assert.deepEqual(await accessibilityProblems(firefoxPage), []);
    });
    await dropsForGood(chromiumPage, cutter, firefoxPage, async () => {
      assert.deepEqual(await accessibilityProblems(firefoxPage), []);
    });
    assert.deepEqual(await accessibilityProblems(firefoxPage), []);
    await Promise.all([chromiumPage, firefoxPage].map(closePage));
  });

  for (const [silentEngine, watcherEngine] of /** @type {const} */ ([
    ["chromium", "firefox"],
    ["firefox", "chromium"],
  ])) {
    test(`a connection gone silent (${silentEngine}) and closed for a newcomer reads so in ${watcherEngine === "firefox" ? "Firefox" : "Chromium"}`, async () => {
      const [silent, watcher] = await call(silentEngine, watcherEngine);
      const room = new URL(await watcher.evaluate(() => location.href)).pathname;
      const { said, newcomer, silentSays } = await goesStale(silent, watcher, async () => {
        const page = await openPage(browsers.chromium, `${server.origin}${room}`);
        pages.push(page);
        return page;
      }, STALE_MS);
      assert.ok(said.includes("The other person's connection went silent and was closed. They can come back with the same link."), `the watcher said: ${JSON.stringify(said)}`);
      assert.equal(silentSays, "Something went wrong. The server dropped this call after a long silence.");
      // The room goes on with the newcomer.
      await Promise.all([until(watcher, connected), until(newcomer, connected)]);
      await Promise.all([silent, watcher, newcomer].map(closePage));
    });
  }

  test("Firefox with Firefox; a dropped signaling socket in Firefox resumes without touching the call", async () => {
    const [host, guest] = await call("firefox", "firefox");
    await dropResumes(guest, host);
    await Promise.all([host, guest].map(closePage));
  });
});

/**
 * The remote video plays with sound. Chromium (as the suites launch it) lets it play at once;
 * Firefox blocks sound until the person interacts, so the video plays muted under the clear
 * "Tap to hear the other person" prompt, and a tap on it brings the sound.
 * @param {any} page
 * @param {"chromium" | "firefox"} engine
 */
async function hearsTheOther(page, engine) {
  const state = () => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById("remote-video"));
    const prompt = /** @type {HTMLButtonElement} */ (document.getElementById("unmute-remote"));
    return { muted: video.muted, paused: video.paused, prompt: prompt.hidden ? null : prompt.textContent };
  };
  if (engine === "firefox") {
    assert.deepEqual(await page.evaluate(state), { muted: true, paused: false, prompt: "Tap to hear the other person" });
    await page.screenshot({ path: join(SCREENSHOTS, "firefox-tap-to-hear.png") });
    await page.locator("#unmute-remote").click();
    await until(page, () => !(/** @type {HTMLVideoElement} */ (document.getElementById("remote-video")).muted));
  }
  assert.deepEqual(await page.evaluate(state), { muted: false, paused: false, prompt: null });
}
