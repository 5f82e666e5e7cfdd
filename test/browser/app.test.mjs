// What a person sees in the app, in Chromium on `wrangler dev`: a call that is over looks over,
// a drop reads as a drop and a closed tab as a departure, the controls of a call app (mute and
// camera with their state, the other side's indicators, devices, screen sharing, fullscreen,
// keyboard shortcuts), the layout at 1366×768 and on a 390×844 touch phone, and axe-core on each
// state. Assertions go by role and text; waits are on state in the page, never sleeps. The
// steps share one server and run in order; each screenshot lands in SCREENSHOTS.

import assert from "node:assert/strict";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  accessibilityProblems,
  chatArrives,
  dropResumes,
  dropsForGood,
  chromiumSuite,
  remoteVideoPlays,
  roomName,
  SCREENSHOTS,
  sendChat,
  signalingCutter,
  until,
  videoStopsAndComesBack,
} from "../helpers/browser.mjs";

const connected = () => window.duetDebug?.pc?.connectionState === "connected" && window.duetDebug.status === "connected";
const DESKTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

/** Whether the page shows a button of that exact name (hidden ones are not in the tree). */
async function showsButton(page, name) {
  return (await page.getByRole("button", { name, exact: true }).count()) > 0;
}

/** The controls a call has while it goes on; none may be left once it is over. */
const CALL_CONTROLS = ["Mute", "Unmute", "Camera off", "Camera on", "Share screen", "Fullscreen", "Devices", "Hang up", "Copy link", "Send", "Send a photo"];

/**
 * The page shows a finished call: the status says `status`, no camera or microphone is left on,
 * none of the call's controls nor the link remain, `primary` is the first action offered, and
 * axe-core finds nothing serious.
 */
async function looksFinished(page, status, primary) {
  await page.getByRole("status").filter({ hasText: status }).first().waitFor();
  await until(page, () => window.duetDebug.liveTracks === 0);
  for (const name of CALL_CONTROLS) assert.equal(await showsButton(page, name), false, `"${name}" is still offered`);
  assert.equal(await page.getByText("Send this link").isVisible(), false, "the link is still offered");
  assert.equal(await page.locator("#stage").isVisible(), false, "the video area is still there");
  const actions = page.locator("#after-call a:visible");
  assert.equal(await actions.first().textContent(), primary);
  assert.ok((await actions.count()) <= 2, "one next action and at most one alternative");
  assert.deepEqual(await accessibilityProblems(page), []);
}

/** Video frames keep arriving at `page`: its decoder's count goes up. */
async function videoArrives(page) {
  const decoded = () =>
    page.evaluate(async () => {
      const stats = await window.duetDebug.pc.getStats();
      return [...stats.values()].find((s) => s.type === "inbound-rtp" && s.kind === "video")?.framesDecoded ?? 0;
    });
  const first = await decoded();
  await until(
    page,
    async (n) => {
      const stats = await window.duetDebug.pc.getStats();
      return ([...stats.values()].find((s) => s.type === "inbound-rtp" && s.kind === "video")?.framesDecoded ?? 0) > n + 10;
    },
    first,
  );
}

describe("the app, as a person sees it", () => {
  // Two fake cameras and microphones, to choose between.
  const suite = chromiumSuite({ fakeDevices: 2 });
  const { open } = suite;
  let phone, desk; // one call: a touch phone and a 1366×768 window
  const secret = randomBytes(32).toString("base64url");
  const room = roomName("app");
  const url = (name = room) => `${suite.origin}/${name}#k=${secret}`;

  test("the start page and a waiting call page have an h1 and pass axe-core", async () => {
    const landing = await open(`${suite.origin}/`);
    await landing.getByRole("heading", { level: 1, name: "Video calls for two" }).waitFor();
    assert.deepEqual(await accessibilityProblems(landing), []);
    await landing.goto(url(roomName("waiting")));
    await until(landing, () => window.duetDebug?.status === "waiting");
    assert.equal(await landing.getByRole("heading", { level: 1 }).count(), 1);
    assert.deepEqual(await accessibilityProblems(landing), []);
    await landing.getByRole("button", { name: "Hang up" }).click();
    await looksFinished(landing, "You left the call.", "Start a new call");
    await landing.screenshot({ path: join(SCREENSHOTS, "ended.png") });
    await landing.context().close();
  });

  test("at 1366×768 a connected call fits the screen; on a phone the video comes first and large", async () => {
    phone = await open(url(), { viewport: PHONE, phone: true });
    await until(phone, () => window.duetDebug?.status === "waiting");
    desk = await open(url(), { viewport: DESKTOP });
    await Promise.all([until(phone, connected), until(desk, connected)]);
    await remoteVideoPlays(desk);
    await remoteVideoPlays(phone);

    const fits = await desk.evaluate(() => {
      const inView = (/** @type {string} */ id) => {
        const box = /** @type {HTMLElement} */ (document.getElementById(id)).getBoundingClientRect();
        return box.height > 0 && box.top >= 0 && box.bottom <= innerHeight && box.right <= innerWidth;
      };
      return {
        scrolls: document.documentElement.scrollHeight > innerHeight,
        video: inView("remote-video"),
        controls: inView("controls"),
        chatInput: inView("chat-input"),
      };
    });
    assert.deepEqual(fits, { scrolls: false, video: true, controls: true, chatInput: true });
    assert.equal(await desk.getByText("Send this link").isVisible(), false, "no link to send once the other person is here");
    await desk.getByText("Keyboard: M mute").waitFor();

    const layout = await phone.evaluate(() => {
      const stage = /** @type {HTMLElement} */ (document.getElementById("stage")).getBoundingClientRect();
      const status = /** @type {HTMLElement} */ (document.getElementById("status")).getBoundingClientRect();
      const buttons = [...document.querySelectorAll("#controls button")].filter((b) => b.getBoundingClientRect().height > 0);
      const rows = new Set(buttons.map((b) => Math.round(b.getBoundingClientRect().top)));
      const right = Math.max(...buttons.map((b) => b.getBoundingClientRect().right));
      return { videoFirst: stage.top < status.top, videoShare: stage.height / innerHeight, rows: rows.size, fitsWidth: right <= innerWidth && document.documentElement.scrollWidth <= innerWidth };
    });
    assert.ok(layout.videoFirst, "the other person's video comes before the status");
    assert.ok(layout.videoShare >= 0.5, `the video takes ${Math.round(layout.videoShare * 100)}% of the height`);
    assert.equal(layout.rows, 1, "the controls are one bar");
    assert.ok(layout.fitsWidth, "no sideways scrolling");
    // The security text is folded behind the line with the safety code.
    await phone.getByText(/Safety code \d{3} \d{3}/).waitFor();
    assert.equal(await phone.getByText("End-to-end protected: the server relays").isVisible(), false);
    assert.equal(await phone.locator("#chat-log").isVisible(), false, "the chat waits behind its button");
    for (const page of [phone, desk]) assert.deepEqual(await accessibilityProblems(page), []);
    await phone.screenshot({ path: join(SCREENSHOTS, "call-phone.png") });
  });

  test("on a phone the chat is a panel with an unread count", async () => {
    await sendChat(desk, "are you there?");
    await sendChat(desk, "on your phone?");
    const chat = phone.getByRole("button", { name: "Chat, 2 unread" });
    await chat.waitFor();
    await chat.click();
    await chatArrives(phone, "on your phone?");
    assert.equal(await phone.locator("#chat-log").isVisible(), true);
    await phone.getByRole("button", { name: "Chat", exact: true }).waitFor();
    assert.deepEqual(await accessibilityProblems(phone), []);
    await phone.screenshot({ path: join(SCREENSHOTS, "chat-phone.png") });
    await phone.getByRole("button", { name: "Close chat" }).click();
    assert.equal(await phone.locator("#chat-log").isVisible(), false);
  });

  test("mute and camera off: the labels follow, the other side sees it, and the keys do it too", async () => {
    await desk.getByRole("button", { name: "Mute", exact: true }).click();
    const unmute = desk.getByRole("button", { name: "Unmute", exact: true });
    assert.equal(await unmute.getAttribute("aria-pressed"), "true");
    await phone.locator("#stage").getByText("Muted", { exact: true }).waitFor();
    await desk.getByRole("button", { name: "Camera off", exact: true }).click();
    assert.equal(await desk.getByRole("button", { name: "Camera on", exact: true }).getAttribute("aria-pressed"), "true");
    await phone.getByText("The other person turned their camera off.").waitFor();
    assert.equal(await phone.locator("#remote-video").isVisible(), false, "no black box");
    assert.deepEqual(await desk.evaluate(() => window.duetDebug.call.media.stream.getTracks().map((t) => `${t.kind} ${t.enabled}`).sort()), ["audio false", "video false"]);
    assert.deepEqual(await accessibilityProblems(phone), []);
    await phone.screenshot({ path: join(SCREENSHOTS, "peer-muted-phone.png") });

    // The same with the keys: M and V toggle back, and the other side's indicators go.
    await desk.locator("body").press("m");
    await desk.locator("body").press("v");
    await desk.getByRole("button", { name: "Mute", exact: true }).waitFor();
    assert.equal(await desk.getByRole("button", { name: "Camera off", exact: true }).getAttribute("aria-pressed"), "false");
    await until(phone, () => window.duetDebug.peerState?.mic === "on" && window.duetDebug.peerState?.camera === "on");
    await until(phone, () => !document.getElementById("remote-video").hidden && document.getElementById("peer-muted").hidden);
    // Typing in the chat is typing, not a shortcut.
    await desk.getByLabel("Message").press("m");
    assert.equal(await desk.evaluate(() => window.duetDebug.call.mediaState("audio")), "on");
  });

  test("another camera and microphone replace the tracks without renegotiation", async () => {
    const before = await desk.evaluate(() => ({ offers: window.duetDebug.offers, pcId: window.duetDebug.pcId }));
    await desk.getByRole("button", { name: "Devices" }).click();
    const camera = desk.getByLabel("Camera", { exact: true });
    await until(desk, () => document.getElementById("camera-select").options.length === 2);
    const [current, other] = await desk.evaluate(() => {
      const select = /** @type {HTMLSelectElement} */ (document.getElementById("camera-select"));
      return [select.value, [...select.options].find((o) => !o.selected).value];
    });
    await camera.selectOption(other);
    await desk.getByText(/^Now using /).waitFor();
    const sent = await desk.evaluate(() => {
      const sender = window.duetDebug.pc.getSenders().find((s) => s.track?.kind === "video");
      return { device: sender.track.getSettings().deviceId, live: sender.track.readyState };
    });
    assert.deepEqual(sent, { device: other, live: "live" });
    assert.notEqual(other, current);
    await desk.getByLabel("Microphone").selectOption({ index: 1 });
    await desk.getByText(/^Now using /).waitFor();
    const after = await desk.evaluate(() => ({ offers: window.duetDebug.offers, pcId: window.duetDebug.pcId, live: window.duetDebug.liveTracks }));
    assert.deepEqual(after, { ...before, live: 2 }, "the same peer connection, no new offer, the old tracks stopped");
    await videoArrives(phone);
    assert.deepEqual(await accessibilityProblems(desk), []);
    await desk.getByRole("button", { name: "Devices" }).click();
  });

  test("screen sharing replaces the camera, shows on the other side, and stops", async () => {
    const offers = await desk.evaluate(() => window.duetDebug.offers);
    await desk.getByRole("button", { name: "Share screen" }).click();
    await desk.getByRole("button", { name: "Stop sharing" }).waitFor();
    await phone.locator("#stage").getByText("Sharing their screen").waitFor();
    const sending = await desk.evaluate(() => window.duetDebug.pc.getSenders().find((s) => s.track?.kind === "video").track === window.duetDebug.call.screenTrack);
    assert.ok(sending, "the screen goes out in the camera's place");
    await desk.locator("body").press("s");
    await desk.getByRole("button", { name: "Share screen" }).waitFor();
    await until(phone, () => document.getElementById("peer-sharing").hidden);
    const camera = await desk.evaluate(() => window.duetDebug.pc.getSenders().find((s) => s.track?.kind === "video").track === window.duetDebug.call.media.stream.getVideoTracks()[0]);
    assert.ok(camera, "the camera is back");
    assert.deepEqual(await desk.evaluate(() => window.duetDebug.offers), offers, "no renegotiation");
  });

  test("fullscreen shows the other person's video; F toggles it", async () => {
    await desk.getByRole("button", { name: "Fullscreen" }).click();
    await until(desk, () => document.fullscreenElement?.id === "stage");
    await desk.getByRole("button", { name: "Exit fullscreen" }).waitFor();
    await desk.locator("body").press("f");
    await until(desk, () => document.fullscreenElement === null);
    await desk.getByRole("button", { name: "Fullscreen", exact: true }).waitFor();
  });

  test("a drop reads as a drop; hanging up reads as leaving, and the call looks over", async () => {
    await dropResumes(desk, phone);
    await phone.getByRole("button", { name: "Hang up" }).click();
    await looksFinished(phone, "You left the call.", "Start a new call");
    assert.equal(await phone.getByRole("link", { name: "Rejoin this room" }).count(), 1);
    assert.equal(await phone.evaluate(() => document.activeElement?.textContent), "Start a new call", "focus moves to the next step");
    await phone.screenshot({ path: join(SCREENSHOTS, "ended-phone.png") });
    await desk.getByRole("status").filter({ hasText: "The other person left the call." }).waitFor();
    assert.equal(await desk.evaluate(() => window.duetDebug.call.peerLeftReason), "leave");
    // The one still in the room keeps the call: the link is offered again.
    await desk.getByText("Send this link").waitFor();
    assert.deepEqual(await accessibilityProblems(desk), []);
    await desk.close();
  });

  test("a full room looks over and releases the camera; closing a tab is leaving, at once", async () => {
    const name = roomName("full");
    const [carol, dave] = [await open(url(name)), await open(url(name))];
    await Promise.all([until(carol, connected), until(dave, connected)]);
    const erin = await open(url(name));
    await looksFinished(erin, "This room is full", "Start a new call");
    await erin.screenshot({ path: join(SCREENSHOTS, "full.png") });

    // Carol closes her tab: Dave is told she left, with no "dropped" spell before it.
    const seen = await dave.evaluate(() => window.duetDebug.statusHistory.length);
    await carol.close({ runBeforeUnload: true });
    await dave.getByRole("status").filter({ hasText: "The other person left the call." }).waitFor();
    const history = await dave.evaluate((n) => window.duetDebug.statusHistory.slice(n), seen);
    assert.deepEqual(history, ["peer-left"]);
    assert.equal(await dave.evaluate(() => window.duetDebug.call.peerLeftReason), "leave");
    await dave.close();
  });

  test("a link with a damaged key looks over from the start, with a new call to start", async () => {
    const page = await open(`${suite.origin}/${roomName("damaged")}#k=${secret.slice(0, 40)}`);
    await looksFinished(page, "The key in this link is damaged", "Start a new call");
    assert.equal(await page.evaluate(() => window.duetDebug.call.media.stream), null, "the camera was never turned on");
    await page.screenshot({ path: join(SCREENSHOTS, "damaged-key.png") });
  });

  test("the other person's video stopping, and a drop that lasts past the grace, each read as what they are", async () => {
    const name = roomName("gone");
    const cutter = signalingCutter();
    const [frank, gina] = [await open(url(name), { prepare: cutter.prepare }), await open(url(name))];
    await Promise.all([until(frank, connected), until(gina, connected)]);
    await remoteVideoPlays(gina);
    await videoStopsAndComesBack(frank, gina, async () => {
      assert.deepEqual(await accessibilityProblems(gina), []);
      await gina.screenshot({ path: join(SCREENSHOTS, "video-stopped.png") });
    });
    await dropsForGood(frank, cutter, gina, async () => {
      assert.deepEqual(await accessibilityProblems(gina), []);
    });
    // Gina keeps the room: the link is offered again, and axe-core is content.
    await gina.getByText("Send this link").waitFor();
    assert.deepEqual(await accessibilityProblems(gina), []);
    await gina.screenshot({ path: join(SCREENSHOTS, "peer-left-after-grace.png") });
    await Promise.all([frank.close(), gina.close()]);
  });

  test("a call without a camera can share a screen: a track of its own, renegotiated, shown on the other side, and it stops cleanly", async () => {
    const name = roomName("screen");
    const henry = await open(url(name), { denyMedia: true });
    const iris = await open(url(name));
    await Promise.all([until(henry, connected), until(iris, connected)]);
    assert.deepEqual(await henry.evaluate(() => ({ mode: window.duetDebug.mediaMode, senders: window.duetDebug.pc.getSenders().filter((s) => s.track).length })), { mode: "none", senders: 0 });
    const before = await henry.evaluate(() => ({ pcId: window.duetDebug.pcId, offers: window.duetDebug.offers.sent + window.duetDebug.offers.answered }));
    const irisBefore = await iris.evaluate(() => window.duetDebug.pcId);

    const share = henry.getByRole("button", { name: "Share screen" });
    await share.click();
    await henry.getByRole("button", { name: "Stop sharing" }).waitFor();
    await iris.locator("#stage").getByText("Sharing their screen").waitFor();
    await remoteVideoPlays(iris);
    await videoArrives(iris);
    const during = await henry.evaluate(() => ({ pcId: window.duetDebug.pcId, offers: window.duetDebug.offers.sent + window.duetDebug.offers.answered, sending: window.duetDebug.pc.getSenders().some((s) => s.track === window.duetDebug.call.screenTrack) }));
    assert.equal(during.pcId, before.pcId, "the same peer connection");
    assert.ok(during.offers > before.offers, "the new track was negotiated");
    assert.ok(during.sending, "the screen goes out");
    assert.equal(await iris.evaluate(() => window.duetDebug.pcId), irisBefore);
    assert.deepEqual(await accessibilityProblems(iris), []);
    await iris.screenshot({ path: join(SCREENSHOTS, "screen-no-camera.png") });

    // Stopping returns cleanly: nothing of ours is capturing, the other side shows no video and
    // stays connected, with no "video stopped" once its watcher has seen the frames end.
    const mark = await iris.evaluate(() => window.duetDebug.statusHistory.length);
    await henry.getByRole("button", { name: "Stop sharing" }).click();
    await share.waitFor();
    assert.equal(await henry.evaluate(() => window.duetDebug.liveTracks), 0);
    await until(iris, () => document.getElementById("peer-sharing").hidden && document.getElementById("remote-video").hidden);
    await iris.locator("#stage").getByText("The other person has no camera on.").waitFor();
    // Silence from Henry for longer than the watcher's stall times (2 s for packets, 2.5 s for
    // video frames), seen in Iris's inbound stats.
    await iris.evaluate(() => Object.assign(window, { silence: { packets: -1, since: Date.now() } }));
    await until(
      iris,
      async () => {
        const silence = /** @type {any} */ (window).silence;
        let packets = 0;
        (await window.duetDebug.pc.getStats()).forEach((s) => s.type === "inbound-rtp" && (packets += s.packetsReceived ?? 0));
        if (packets !== silence.packets) Object.assign(silence, { packets, since: Date.now() });
        return Date.now() - silence.since > 3000;
      },
      undefined,
      30_000,
    );
    assert.deepEqual(await iris.evaluate((n) => ({ status: window.duetDebug.status, since: window.duetDebug.statusHistory.slice(n) }), mark), { status: "connected", since: [] });
    assert.equal(await henry.evaluate(() => window.duetDebug.pcId), before.pcId);

    // And a second share uses the same transceiver again.
    await share.click();
    await iris.locator("#stage").getByText("Sharing their screen").waitFor();
    await videoArrives(iris);
    assert.equal(await henry.evaluate(() => window.duetDebug.pc.getTransceivers().filter((t) => t.receiver.track.kind === "video").length), 1);
    await henry.getByRole("button", { name: "Stop sharing" }).click();
    await share.waitFor();
    await Promise.all([henry.close(), iris.close()]);
  });
});
