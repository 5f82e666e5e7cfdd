// End-to-end encrypted signaling in the app, in Chromium against `wrangler dev`: a new call link
// carries a fresh key that never reaches the server; the call connects with video while every
// frame either page sends or receives is an envelope; a relay in the middle that alters frames
// is reported and nothing it altered is applied; both pages show the same safety code, the one
// their descriptions give; plain links still work and say they are not protected; a key link on
// an insecure origin refuses to start; both sides confirm their keys, and when the links' keys
// differ both people, the one who started the call too, see the same message. Every wait is on
// a condition, never a fixed sleep.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { CHROMIUM_ARGS, CHROMIUM_PATH, launchChromium, openPage, remoteVideoPlays, roomName, SCREENSHOTS, startDevServer, until } from "../helpers/browser.mjs";

const connected = () => window.duetDebug?.pc?.connectionState === "connected" && window.duetDebug.status === "connected";
const newSecret = () => randomBytes(32).toString("base64url");
/** What must never cross the signaling server in an e2e call. */
const LEAKS = [/v=0/, /a=fingerprint/, /candidate:/, /\b\d{1,3}(\.\d{1,3}){3}\b/, /\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b/i];

/**
 * Wraps the page's WebSocket so that every text frame the page sends or receives is kept in
 * `window.wire` as `{dir: "in" | "out", text}`.
 * @param {import("playwright-core").BrowserContext} context
 */
async function recordWire(context) {
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    const wire = [];
    Object.assign(window, { wire });
    window.WebSocket = class RecordedWebSocket extends Native {
      constructor(/** @type {any[]} */ ...args) {
        super(...args);
        this.addEventListener("message", (event) => wire.push({ dir: "in", text: String(event.data) }));
      }
      send(/** @type {any} */ data) {
        wire.push({ dir: "out", text: String(data) });
        super.send(data);
      }
    };
  });
}

/**
 * A relay in the middle of a context's signaling socket: frames to the server pass untouched,
 * each `message` frame from the server goes through `alter(frame)`, which returns the frames to
 * pass on. `relay.altered` counts the message frames it handled.
 * @param {(frame: Record<string, any>) => Record<string, any>[]} alter
 */
function relayInTheMiddle(alter) {
  const relay = {
    altered: 0,
    /** @param {import("playwright-core").BrowserContext} context */
    install: (context) =>
      context.routeWebSocket(/\/ws\//, (page) => {
        const server = page.connectToServer();
        page.onMessage((message) => server.send(message));
        server.onMessage((message) => {
          const frame = JSON.parse(String(message));
          if (frame.type !== "message") return page.send(String(message));
          relay.altered += 1;
          for (const out of alter(frame)) page.send(JSON.stringify(out));
        });
      }),
  };
  return relay;
}

/** The safety code computed here, independently, from two SDPs. */
function safetyCodeOf(localSdp, remoteSdp) {
  const fingerprint = (sdp) => /^a=fingerprint:\S+ (\S+)\r?$/m.exec(sdp)[1];
  const [first, second] = [fingerprint(localSdp), fingerprint(remoteSdp)].sort();
  const n = createHash("sha256").update(`duet-sas-v1/${first}/${second}`).digest().readUInt32BE(0) % 1_000_000;
  const digits = String(n).padStart(6, "0");
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

describe("end-to-end encrypted calls", () => {
  /** @type {Awaited<ReturnType<typeof startDevServer>>} */
  let server;
  /** @type {import("playwright-core").Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openPage>>[]} */
  const pages = [];
  /** Every request and socket any page opened: URL and Referer. */
  const requests = [];

  before(async () => {
    browser = await launchChromium(); // first: without a browser, fail before starting a server
    server = await startDevServer();
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Opens `url` in a new context that records its wire and its requests. */
  const open = async (/** @type {string} */ url, /** @type {((c: import("playwright-core").BrowserContext) => Promise<void>)[]} */ extra = []) => {
    const page = await openPage(browser, url, {
      prepare: async (context) => {
        await recordWire(context);
        context.on("request", (request) => requests.push({ url: request.url(), referer: request.headers().referer ?? "" }));
        context.on("page", (page) => page.on("websocket", (ws) => requests.push({ url: ws.url(), referer: "" })));
        for (const step of extra) await step(context);
      },
    });
    pages.push(page);
    return page;
  };

  const wireOf = (/** @type {import("playwright-core").Page} */ page) => page.evaluate(() => /** @type {any} */ (window).wire);
  const messagesSent = (/** @type {import("playwright-core").Page} */ page) =>
    page.evaluate(() => /** @type {any} */ (window).wire.filter((f) => f.dir === "out" && f.text.includes('"type":"message"')).length);

  /** The safety code each page shows, and the one its peer connection's descriptions give. */
  async function safetyCodes(page) {
    await until(page, () => !document.getElementById("safety")?.hidden);
    return page.evaluate(() => ({
      shown: document.getElementById("safety-code")?.textContent,
      local: window.duetDebug.pc.localDescription.sdp,
      remote: window.duetDebug.pc.remoteDescription.sdp,
    }));
  }

  test("a new call link has a fresh key; the call connects with video and only envelopes cross the server", async (t) => {
    const alice = await open(`${server.origin}/`);
    await alice.getByRole("button", { name: "Start a call" }).click();
    await alice.waitForURL(/\/[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}#k=[A-Za-z0-9_-]{43}$/);
    const link = alice.url();
    const secret = new URL(link).hash.slice("#k=".length);
    assert.equal(Buffer.from(secret, "base64url").length, 32);
    await until(alice, () => window.duetDebug?.status === "waiting");
    // Granting replaces the page's permissions: keep the camera's, or its tracks end.
    await alice.context().grantPermissions(["camera", "microphone", "clipboard-read", "clipboard-write"], { origin: server.origin });
    await alice.getByRole("button", { name: "Copy link" }).click();
    await alice.getByText("Link copied.").waitFor();
    assert.equal(await alice.evaluate(() => navigator.clipboard.readText()), link, "the whole link, key included");
    assert.equal(await alice.locator("#room-link").inputValue(), link);

    // Bob pastes the link into the landing page's form: the key comes along.
    const bob = await open(`${server.origin}/`);
    await bob.getByLabel("Have a link or a room name?").fill(link);
    const started = performance.now();
    await bob.getByRole("button", { name: "Join", exact: true }).click();
    await bob.waitForURL(link);
    await Promise.all([until(alice, connected), until(bob, connected)]);
    t.diagnostic(`e2e call: ${Math.round(performance.now() - started)} ms from joining to connected`);
    for (const page of [alice, bob]) {
      await remoteVideoPlays(page);
      assert.equal(await page.evaluate(() => window.duetDebug.encrypted), true);
      assert.match(await page.locator("#e2e-state").textContent(), /^End-to-end protected/);
      assert.equal(await page.locator("#e2e-alert").isHidden(), true);
      assert.deepEqual(await page.evaluate(() => window.duetDebug.e2eErrors), []);
      assert.equal(await page.evaluate(() => window.duetDebug.keyConfirmed), true, "the other side's hello opened");
    }

    // Both show the same code, the one their descriptions give, and the fingerprints match across.
    const [a, b] = [await safetyCodes(alice), await safetyCodes(bob)];
    assert.match(a.shown, /^\d{3} \d{3}$/);
    assert.equal(a.shown, b.shown);
    assert.equal(a.shown, safetyCodeOf(a.local, a.remote));
    assert.equal(b.shown, safetyCodeOf(b.local, b.remote));
    assert.equal(a.local, b.remote);
    assert.match(await alice.locator("#safety").textContent(), /Safety code.*differ/s);

    // The wire: every message an envelope, no SDP, fingerprint, candidate or address, no key.
    for (const page of [alice, bob]) {
      const wire = await wireOf(page);
      const messages = wire.filter((f) => f.text.includes('"type":"message"'));
      assert.ok(messages.filter((f) => f.dir === "out").length >= 2 && messages.filter((f) => f.dir === "in").length >= 2, "offer or answer and candidates went both ways");
      for (const { text } of messages) {
        const { data } = JSON.parse(text);
        assert.deepEqual(Object.keys(data), "hello" in data ? ["e2e", "hello", "iv", "ct"] : ["e2e", "iv", "ct"]);
      }
      assert.equal(messages.filter((f) => f.dir === "out" && f.text.includes('"hello":1')).length, 1, "one hello sent");
      for (const { dir, text } of wire) {
        for (const leak of LEAKS) assert.doesNotMatch(text, leak, `${dir} frame`);
        assert.ok(!text.includes(secret), "the key is never sent");
      }
    }
    // Nothing sent to the server carries the key: no request URL, no Referer, no socket URL, no log.
    assert.ok(requests.some((r) => r.url.includes("/ws/")), "the socket requests were seen");
    for (const { url, referer } of requests) {
      assert.ok(!url.includes(secret) && !url.includes("#"), url);
      assert.ok(!referer.includes(secret), referer);
    }
    assert.ok(!server.output().includes(secret), "the server's log");

    // What encryption costs in the page, per frame, for a real description.
    const cost = await alice.evaluate(async () => {
      const e2e = await import("/js/e2e.js");
      const key = await e2e.deriveKey(e2e.newSecret(), "cost");
      const value = { kind: "signal", pc: "p", to: null, description: window.duetDebug.pc.localDescription.toJSON() };
      const rounds = 200;
      const envelopes = [];
      let begin = performance.now();
      for (let i = 0; i < rounds; i++) envelopes.push(await e2e.seal(key, "cost", "me", value));
      const sealMs = (performance.now() - begin) / rounds;
      begin = performance.now();
      for (const envelope of envelopes) await e2e.open(key, "cost", "me", envelope);
      return { bytes: JSON.stringify(value).length, sealMs, openMs: (performance.now() - begin) / rounds };
    });
    t.diagnostic(`Chromium, ${cost.bytes}-byte offer: seal ${(cost.sealMs * 1000).toFixed(0)} µs, open ${(cost.openMs * 1000).toFixed(0)} µs per frame`);

    // Hanging up and "Rejoin this room" come back into the same protected call.
    await alice.getByRole("button", { name: "Hang up" }).click();
    await until(bob, () => window.duetDebug.status === "peer-left");
    await alice.getByRole("link", { name: "Rejoin this room" }).click();
    await Promise.all([until(alice, connected), until(bob, connected)]);
    assert.equal(alice.url(), link);
    assert.equal(await alice.evaluate(() => window.duetDebug.encrypted), true);
    await Promise.all([alice, bob].map((page) => page.context().close()));

    // Another new call gets another key. (After the call: closing a page that holds the fake
    // camera ends the camera's tracks in every other page too.)
    const other = await open(`${server.origin}/`);
    await other.getByRole("button", { name: "Start a call" }).click();
    await other.waitForURL(/#k=[A-Za-z0-9_-]{43}$/);
    assert.notEqual(new URL(other.url()).hash, new URL(link).hash);
    await other.context().close();
  });

  test("a plain link still works, says it is not protected and shows a safety code", async () => {
    const url = `${server.origin}/${roomName("plain")}`;
    const [carol, dave] = [await open(url), await open(url)];
    await Promise.all([until(carol, connected), until(dave, connected)]);
    for (const page of [carol, dave]) {
      assert.equal(await page.evaluate(() => window.duetDebug.encrypted), false);
      assert.match(await page.locator("#e2e-state").textContent(), /not end-to-end protected/);
    }
    const [c, d] = [await safetyCodes(carol), await safetyCodes(dave)];
    assert.equal(c.shown, d.shown);
    assert.equal(c.shown, safetyCodeOf(c.local, c.remote));
    // The recorder does see what a plain call gives away (so its silence above means something).
    const wire = (await wireOf(carol)).map((f) => f.text).join("\n");
    for (const leak of [/v=0/, /a=fingerprint/, /candidate:/]) assert.match(wire, leak);
    await Promise.all([carol, dave].map((page) => page.context().close()));
  });

  /**
   * Opens a room through a key link: `first` joins first (and so makes the offer), the other
   * page's signaling goes through `relay`. Waits until the relay has handled every message the
   * sender sent, after its candidates are all gathered, and the receiver has judged each one.
   */
  async function callThroughRelay(relay, { relayedPageFirst }) {
    const url = `${server.origin}/${roomName("relay")}#k=${newSecret()}`;
    const openSender = () => open(url);
    const openReceiver = () => open(url, [relay.install]);
    let sender, receiver;
    if (relayedPageFirst) {
      receiver = await openReceiver();
      await until(receiver, () => window.duetDebug?.status === "waiting");
      sender = await openSender();
    } else {
      sender = await openSender();
      await until(sender, () => window.duetDebug?.status === "waiting");
      receiver = await openReceiver();
    }
    await until(sender, () => window.duetDebug.pc?.iceGatheringState === "complete");
    // Until what the sender sent, what the relay passed and what the receiver refused agree.
    for (;;) {
      const sent = await messagesSent(sender);
      await until(receiver, (n) => window.duetDebug.e2eErrors.length >= n, sent);
      if (sent > 0 && relay.altered === sent && (await messagesSent(sender)) === sent) return { sender, receiver, sent };
    }
  }

  test("a relay that alters the ciphertext: the receiver reports it and applies nothing", async () => {
    const relay = relayInTheMiddle((frame) => {
      const ct = frame.data.ct;
      return [{ ...frame, data: { ...frame.data, ct: (ct[0] === "A" ? "B" : "A") + ct.slice(1) } }];
    });
    // The sender offers; the receiver never gets a usable offer, so it never starts a call.
    const { sender, receiver, sent } = await callThroughRelay(relay, { relayedPageFirst: false });
    const state = await receiver.evaluate(() => ({
      errors: window.duetDebug.e2eErrors,
      pc: window.duetDebug.pc,
      status: window.duetDebug.status,
      alert: document.getElementById("e2e-alert")?.hidden ? null : document.getElementById("e2e-alert")?.textContent,
    }));
    // The sender's hello first (altered, it cannot confirm the key), then every signal.
    assert.deepEqual(state.errors, ["key-mismatch", ...Array(sent - 1).fill("undecryptable")]);
    assert.equal(state.pc, null, "no description was applied, so no peer connection was started");
    assert.equal(state.status, "connecting");
    assert.match(state.alert, /do not have the same key.*same link.*altering/);
    await receiver.screenshot({ path: join(SCREENSHOTS, "unverified.png") });
    assert.equal(await sender.evaluate(() => window.duetDebug.pc.signalingState), "have-local-offer", "no answer came back");
    assert.notEqual(await sender.evaluate(() => window.duetDebug.pc.connectionState), "connected");
    await Promise.all([sender, receiver].map((page) => page.context().close()));
  });

  test("a relay that alters the sender's id: the receiver reports it and applies no answer or candidate", async () => {
    const relay = relayInTheMiddle((frame) => [{ ...frame, from: randomBytes(8).toString("hex") }]);
    // The relayed page offers; the answer and candidates that come back are misattributed.
    const { sender, receiver, sent } = await callThroughRelay(relay, { relayedPageFirst: true });
    const state = await receiver.evaluate(() => ({
      errors: window.duetDebug.e2eErrors,
      signalingState: window.duetDebug.pc.signalingState,
      remoteDescription: window.duetDebug.pc.remoteDescription,
      connectionState: window.duetDebug.pc.connectionState,
      alert: !document.getElementById("e2e-alert")?.hidden,
    }));
    assert.deepEqual(state.errors, ["key-mismatch", ...Array(sent - 1).fill("undecryptable")]);
    assert.equal(state.signalingState, "have-local-offer", "the answer was never applied");
    assert.equal(state.remoteDescription, null);
    assert.notEqual(state.connectionState, "connected");
    assert.equal(state.alert, true);
    assert.notEqual(await sender.evaluate(() => window.duetDebug.pc.connectionState), "connected");
    await Promise.all([sender, receiver].map((page) => page.context().close()));
  });

  test("a relay that replays every message: the copies are reported and the call still connects", async () => {
    const relay = relayInTheMiddle((frame) => [frame, frame]);
    const url = `${server.origin}/${roomName("replay")}#k=${newSecret()}`;
    const erin = await open(url);
    const frank = await open(url, [relay.install]);
    await Promise.all([until(erin, connected), until(frank, connected)]);
    const copies = await until(frank, () => window.duetDebug.e2eErrors.length > 0 && window.duetDebug.e2eErrors);
    assert.ok(copies.every((reason) => reason === "replayed"), String(copies));
    assert.match(await frank.locator("#e2e-alert").textContent(), /came again.*ignored.*server is interfering/);
    await Promise.all([erin, frank].map((page) => page.context().close()));
  });

  test("a key on one side only: each side is told what is wrong, and nothing is applied", async () => {
    for (const keyedFirst of [false, true]) {
      const room = roomName("half");
      const keyed = `${server.origin}/${room}#k=${newSecret()}`;
      const plain = `${server.origin}/${room}`;
      // The first page offers; the other one judges the offer and its candidates.
      const first = await open(keyedFirst ? keyed : plain);
      await until(first, () => window.duetDebug?.status === "waiting");
      const second = await open(keyedFirst ? plain : keyed);
      // The plain page judges the keyed page's hello; the keyed page hears no hello at all.
      const reason = keyedFirst ? "unexpected-envelope" : "key-mismatch";
      const judged = await until(second, (r) => window.duetDebug.e2eErrors.includes(r) && {
        errors: window.duetDebug.e2eErrors,
        alert: document.getElementById("e2e-alert")?.textContent,
        pc: window.duetDebug.pc,
        state: document.getElementById("e2e-state")?.textContent,
      }, reason);
      const expected = keyedFirst ? [reason] : ["not-encrypted", reason];
      assert.ok(judged.errors.every((r) => expected.includes(r)), String(judged.errors));
      assert.equal(judged.pc, null, "the offer was not applied");
      if (keyedFirst) {
        assert.match(judged.alert, /yours has no key.*full link/);
        assert.match(judged.state, /not end-to-end protected/);
        // The keyed page started the call, and it is told too: no hello came.
        const starter = await until(first, () => window.duetDebug.keyConfirmed === false && document.getElementById("e2e-alert")?.textContent);
        assert.match(starter, /do not have the same key \(or one of them has none\)/);
      } else {
        assert.match(judged.alert, /do not have the same key \(or one of them has none\)/);
        assert.match(judged.state, /^End-to-end protected/);
      }
      await Promise.all([first, second].map((page) => page.context().close()));
    }
  });

  test("links with different keys: both people, the one who started the call too, see the same message", async () => {
    const room = roomName("mismatch");
    const starter = await open(`${server.origin}/${room}#k=${newSecret()}`);
    await until(starter, () => window.duetDebug?.status === "waiting");
    const joiner = await open(`${server.origin}/${room}#k=${newSecret()}`);
    const shown = [];
    for (const page of [starter, joiner]) {
      shown.push(await until(page, () => window.duetDebug.keyConfirmed === false && !document.getElementById("e2e-alert")?.hidden && document.getElementById("e2e-alert")?.textContent));
      assert.equal(await page.evaluate(() => window.duetDebug.e2eErrors[0]), "key-mismatch", "the hello told it first");
    }
    assert.equal(shown[0], shown[1], "the same message on both sides");
    assert.match(shown[0], /do not have the same key.*open the same link/);
    await Promise.all([starter, joiner].map((page) => page.context().close()));
  });

  test("a link with a damaged key refuses to start instead of calling unprotected", async () => {
    const page = await open(`${server.origin}/${roomName("damaged")}#k=${newSecret().slice(0, 40)}`);
    const refused = await until(page, () => window.duetDebug?.refused);
    assert.match(refused, /key in this link is damaged/);
    assert.match(await page.locator("#status").textContent(), /damaged.*copy all of it/);
    assert.equal(await page.evaluate(() => window.duetDebug.signalingState), null, "no signaling was started");
    assert.ok(!requests.some((r) => r.url.includes("/ws/") && r.url.includes("damaged")), "no socket was opened");
    await page.context().close();
  });

  test("a key link on an insecure origin refuses to start and says to use https", async () => {
    // duet.test is 127.0.0.1, but http://duet.test is not a secure context: no Web Crypto.
    const insecure = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, "--host-resolver-rules=MAP duet.test 127.0.0.1"],
    });
    try {
      const page = await insecure.newPage();
      const sockets = [];
      page.on("websocket", (ws) => sockets.push(ws.url()));
      await page.goto(`http://duet.test:${server.port}/${roomName("insecure")}#k=${newSecret()}`);
      const state = await until(page, () => window.duetDebug?.refused && { secure: window.isSecureContext, status: document.getElementById("status")?.textContent });
      assert.equal(state.secure, false);
      assert.match(state.status, /not loaded over a secure connection.*https/);
      assert.match(await page.locator("#e2e-state").textContent(), /Nothing was sent/);
      assert.equal(await page.evaluate(() => window.duetDebug.signalingState), null, "no signaling was started");
      assert.deepEqual(sockets, []);

      // A plain link there says that there is no protection and no safety code without https.
      await page.goto(`http://duet.test:${server.port}/${roomName("insecure")}`);
      const note = await until(page, () => document.getElementById("e2e-state")?.textContent);
      assert.match(note, /not end-to-end protected.*secure connection \(https\).*no safety code/);
    } finally {
      await insecure.close();
    }
  });

  test("no page had script errors or CSP violations", () => {
    assert.deepEqual(pages.flatMap((page) => page.problems), []);
  });
});
