// The app in a real browser: two Chromium pages with fake camera and microphone open the same
// room URL on `wrangler dev` and hold a call. The steps share one call and run in order.
// Every wait is on a condition in the page (`window.duetDebug`, the DOM), never a fixed sleep.

import assert from "node:assert/strict";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { chromiumSuite, dropResumes, remoteVideoPlays, roomName, SCREENSHOTS, until } from "../helpers/browser.mjs";

const connected = () => window.duetDebug?.pc?.connectionState === "connected" && window.duetDebug.status === "connected";

describe("a call between two browsers", () => {
  const suite = chromiumSuite();
  const { open } = suite;
  let alice, bob; // the two pages in the call
  const room = roomName("call");
  // An end-to-end protected link, as the app makes them (plain links: test/browser/e2e.test.mjs).
  const secret = randomBytes(32).toString("base64url");
  const url = () => `${suite.origin}/${room}#k=${secret}`;

  test("the landing page has security headers, starts a call and fits a phone", async () => {
    for (const path of ["/", `/${room}`]) {
      const response = await fetch(suite.origin + path);
      assert.equal(response.status, 200);
      const csp = response.headers.get("content-security-policy") ?? "";
      assert.match(csp, /script-src 'self'(;|$)/, path);
      assert.match(csp, /style-src 'self'(;|$)/, path);
      assert.match(csp, /connect-src 'self' ws: wss:/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.match(response.headers.get("permissions-policy") ?? "", /camera=\(self\), microphone=\(self\)/);
      assert.equal(response.headers.get("referrer-policy"), "no-referrer");
      assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    }
    const library = await fetch(`${suite.origin}/js/duet.js`);
    assert.equal(library.headers.get("access-control-allow-origin"), "*");

    const landing = await open(`${suite.origin}/`);
    await landing.getByRole("button", { name: "Start a call" }).waitFor();
    await landing.screenshot({ path: join(SCREENSHOTS, "landing.png") });

    await landing.getByLabel("Have a link or a room name?").fill("not a room!");
    await landing.getByRole("button", { name: "Join", exact: true }).click();
    await landing.getByRole("alert").filter({ hasText: "Enter a room link" }).waitFor();

    await landing.setViewportSize({ width: 375, height: 740 });
    assert.ok(await landing.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));

    await landing.getByRole("button", { name: "Start a call" }).click();
    await landing.waitForURL(/\/[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}#k=[A-Za-z0-9_-]{43}$/);
    await until(landing, () => window.duetDebug?.status === "waiting");
    await landing.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: suite.origin });
    await landing.getByRole("button", { name: "Copy link" }).click();
    await landing.getByText("Link copied.").waitFor();
    assert.equal(await landing.evaluate(() => navigator.clipboard.readText()), landing.url());
    assert.match(await landing.getByRole("status").first().textContent(), /Waiting for the other person/);
    assert.ok(await landing.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling on a phone");
    await landing.getByRole("button", { name: "Hang up" }).click();
    await until(landing, () => window.duetDebug.status === "ended");
  });

  test("two pages on the room URL reach a connected call with playing video", async (t) => {
    const started = performance.now();
    [alice, bob] = await Promise.all([open(url()), open(url())]);
    await Promise.all([until(alice, connected), until(bob, connected)]);
    const elapsed = performance.now() - started;
    const inPage = await Promise.all([alice, bob].map((p) => p.evaluate(() => window.duetDebug.connectedAt)));
    const message = `time from opening two pages to a connected call: ${Math.round(elapsed)} ms (in-page, from navigation: ${inPage.map(Math.round).join(" ms, ")} ms)`;
    t.diagnostic(message);

    for (const page of [alice, bob]) {
      await remoteVideoPlays(page);
      assert.match(await page.locator("#status").textContent(), /^Connected$/);
      assert.equal(await page.evaluate(() => window.duetDebug.mediaMode), "audio-video");
    }
    // Exactly one offer/answer: the initiator offered, the other answered.
    const offers = await Promise.all([alice, bob].map((p) => p.evaluate(() => window.duetDebug.offers)));
    assert.deepEqual(
      offers.map((o) => o.sent + o.answered),
      [1, 1],
    );
  });

  test("a chat message and a photo cross the data channel", async () => {
    await until(alice, () => !(/** @type {HTMLInputElement} */ (document.getElementById("chat-input")).disabled));
    await alice.getByLabel("Message").fill("hello <b>bob</b>, ça va ?");
    await alice.getByRole("button", { name: "Send", exact: true }).click();
    const received = bob.locator(".chat-item.from-peer .text");
    await received.waitFor();
    assert.equal(await received.textContent(), "hello <b>bob</b>, ça va ?");
    assert.equal(await bob.locator(".chat-item.from-peer b").count(), 0, "peer text is never HTML");

    await bob.getByLabel("Message").fill("hi alice");
    await bob.getByRole("button", { name: "Send", exact: true }).click();
    await alice.locator(".chat-item.from-peer .text", { hasText: "hi alice" }).waitFor();

    await alice.getByRole("button", { name: "Send a photo" }).click();
    const photo = await until(bob, () => {
      const image = /** @type {HTMLImageElement | null} */ (document.querySelector(".chat-item.from-peer img.photo"));
      const last = window.duetDebug.lastPhoto;
      return image?.complete && image.naturalWidth > 0 && last && { width: image.naturalWidth, height: image.naturalHeight, ...last };
    });
    assert.ok(photo.width > 0 && photo.height > 0, "the photo decodes to an image");
    assert.ok(photo.bytes > 0, "the photo has bytes");
    assert.equal(photo.type, "image/jpeg");
    assert.deepEqual(await alice.evaluate(() => window.duetDebug.lastPhotoSent), { bytes: photo.bytes, type: photo.type });
    assert.equal(await alice.locator(".chat-item.from-me img.photo").count(), 1);
    await alice.mouse.move(0, 0);
    await alice.evaluate(() => {
      /** @type {HTMLElement} */ (document.activeElement)?.blur();
      window.scrollTo(0, 0);
    });
    await alice.screenshot({ path: join(SCREENSHOTS, "call.png") });
  });

  test("a third page sees that the room is full (and joins without media when denied)", async () => {
    const carol = await open(url(), { denyMedia: true });
    await until(carol, () => window.duetDebug?.status === "full");
    assert.match(await carol.locator("#status").textContent(), /room is full/);
    assert.match(await carol.locator("#media-note").textContent(), /blocked.*chat/s);
    assert.equal(await carol.evaluate(() => window.duetDebug.mediaMode), "none");
    for (const page of [alice, bob]) assert.equal(await page.evaluate(() => window.duetDebug.status), "connected");
    await carol.context().close();
  });

  test("a dropped signaling socket resumes without touching the call", async () => {
    await dropResumes(alice, bob);
  });

  test("a reloaded page leaves, joins again, and the call comes back", async () => {
    const clientId = await alice.evaluate(() => window.duetDebug.clientId);
    const bobPc = await bob.evaluate(() => window.duetDebug.pcId);
    const seen = await bob.evaluate(() => window.duetDebug.statusHistory.length);
    await alice.reload();
    await until(alice, connected);
    await until(
      bob,
      (old) => window.duetDebug.pcId !== old && window.duetDebug.pc?.connectionState === "connected" && window.duetDebug.status === "connected",
      bobPc,
    );
    // Leaving the page leaves the room (the other side learns at once); the reload joins afresh.
    assert.notEqual(await alice.evaluate(() => window.duetDebug.clientId), clientId, "a new slot after the reload");
    const history = await bob.evaluate((n) => window.duetDebug.statusHistory.slice(n), seen);
    assert.equal(history[0], "peer-left", history.join());
    assert.ok(!history.includes("peer-reconnecting"), history.join());
    await until(alice, () => !(/** @type {HTMLInputElement} */ (document.getElementById("chat-input")).disabled));
    await alice.getByLabel("Message").fill("back again");
    await alice.getByRole("button", { name: "Send", exact: true }).click();
    await bob.locator(".chat-item.from-peer .text", { hasText: "back again" }).waitFor();
  });

  test("hanging up shows 'peer left' on the other side", async () => {
    await alice.getByRole("button", { name: "Hang up" }).click();
    await until(bob, () => window.duetDebug.status === "peer-left");
    assert.match(await bob.locator("#status").textContent(), /left the call/);
    assert.equal(await bob.evaluate(() => window.duetDebug.pc), null);
    await until(alice, () => window.duetDebug.status === "ended");
    assert.match(await alice.locator("#status").textContent(), /You left the call/);
  });

  test("a page without camera or microphone joins with data only and still sees the other", async () => {
    const other = `${suite.origin}/${roomName("data-only")}`;
    const [carol, dave] = [await open(other, { denyMedia: true }), await open(other)];
    await Promise.all([until(carol, connected), until(dave, connected)]);
    await until(carol, () => /** @type {HTMLVideoElement} */ (document.getElementById("remote-video")).videoWidth > 0);
    assert.equal(await carol.evaluate(() => window.duetDebug.mediaMode), "none");
    assert.equal(await carol.getByRole("button", { name: "Mute" }).isDisabled(), true);
    assert.match(await dave.locator("#remote-placeholder").textContent(), /no camera/);
    await until(carol, () => !(/** @type {HTMLInputElement} */ (document.getElementById("chat-input")).disabled));
    await carol.getByLabel("Message").fill("no camera here");
    await carol.getByRole("button", { name: "Send", exact: true }).click();
    await dave.locator(".chat-item.from-peer .text", { hasText: "no camera here" }).waitFor();
    await Promise.all([carol, dave].map((page) => page.context().close()));
  });

  test("?relay=1 makes the peer connection use relays only; ICE that cannot start is restarted", async () => {
    const relayRoom = `${suite.origin}/${roomName("relay")}?relay=1`;
    const [erin, frank] = [await open(relayRoom), await open(relayRoom)];
    const policies = await Promise.all(
      [erin, frank].map((page) =>
        until(page, () => {
          const pc = window.duetDebug.pc;
          return pc && pc.remoteDescription && pc.getConfiguration().iceTransportPolicy;
        }),
      ),
    );
    assert.deepEqual(policies, ["relay", "relay"]);
    // With relays only and no TURN server there is not a single candidate: ICE never starts, and
    // the initiator restarts it (a new offer, answered), as it would after a failure.
    const [initiator, other] = (await erin.evaluate(() => window.duetDebug.call.signaling.isInitiator)) ? [erin, frank] : [frank, erin];
    await until(initiator, () => window.duetDebug.stats.iceRestarts >= 1 && window.duetDebug.offers.sent >= 2);
    await until(other, () => window.duetDebug.offers.answered >= 2);
    await Promise.all([erin, frank].map((page) => page.context().close()));
  });
});
