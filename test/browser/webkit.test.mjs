// WebKitGTK (Safari's engine, Debian's MiniBrowser through WebKitWebDriver under Xvfb) against one
// ticketed `wrangler dev` (JOIN_SECRET set): the end-to-end vectors of docs/e2e.md in its Web
// Crypto; join tickets with duet.js (a ticket function, an in-band refusal without one, one fresh
// ticket after `ticket-expired`); an end-to-end protected pair whose frames are all envelopes and
// whose keys are confirmed, or found to differ, on both sides; and the app, which in this build
// (no RTCPeerConnection) says plainly that the browser cannot make calls, takes neither the camera
// nor a slot of the room, and offers one next action. The library's own scenarios (pairing,
// resume, keep-alive, leave) run in WebKitGTK in library.test.mjs. Waits are on state in the page.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SignJWT } from "jose";
import { accessibilityProblems, CloseCode, openPage, roomName, SCREENSHOTS, startDevServer, until } from "../helpers/browser.mjs";
import { HELLO_VECTOR, SAS_VECTOR, VECTOR } from "../helpers/e2e-vectors.mjs";
import { launchWebKit } from "../helpers/webkit.mjs";

const SECRET = "webkit-ticket-secret-0123456789abcdefghijk";

/**
 * A ticket for `sub` to join `room`, minted as an operator's backend would (jose); `expired`
 * makes one that ran out a minute ago.
 */
function mint(room, sub, { expired = false } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ room, name: sub.toUpperCase() })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt(expired ? now - 600 : now)
    .setExpirationTime(expired ? now - 60 : now + 600)
    .sign(new TextEncoder().encode(SECRET));
}

/**
 * Loads duet.js into the page as `window.duet` with `window.track(connection)`, which records a
 * connection's events and awaits the next one of a type (as library.test.mjs does).
 * @param {any} page
 */
async function installLibrary(page) {
  await page.evaluate(async () => {
    const w = /** @type {any} */ (window);
    w.duet = await import("/js/duet.js");
    const TYPES = [...w.duet.FRAME_TYPES, "reconnecting", "reconnected", "close", "refused", "e2e-confirmed", "e2e-error"];
    w.track = (connection) => {
      /** @type {{type: string, detail: any}[]} */
      const events = [];
      const waiters = [];
      for (const type of new Set(TYPES)) {
        connection.addEventListener(type, (/** @type {CustomEvent} */ e) => {
          const event = { type, detail: e.detail };
          events.push(event);
          for (const waiter of [...waiters]) waiter(event);
        });
      }
      return {
        connection,
        events,
        types: () => events.map((e) => e.type),
        next(type, ms = 10_000) {
          const found = events.find((e) => e.type === type);
          if (found) return Promise.resolve(found.detail);
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no ${type} within ${ms} ms; saw ${events.map((e) => e.type)}`)), ms);
            const waiter = (event) => {
              if (event.type !== type) return;
              waiters.splice(waiters.indexOf(waiter), 1);
              clearTimeout(timer);
              resolve(event.detail);
            };
            waiters.push(waiter);
          });
        },
      };
    };
  });
}

describe("WebKitGTK (Safari's engine)", () => {
  /** @type {Awaited<ReturnType<typeof startDevServer>>} */
  let server;
  /** @type {Awaited<ReturnType<typeof launchWebKit>>} */
  let browser;
  /** @type {any} */
  let page;
  /** @type {any[]} */
  const pages = [];

  before(async () => {
    browser = await launchWebKit(); // first: without a browser, fail before starting a server
    server = await startDevServer({ vars: { JOIN_SECRET: SECRET } });
    mkdirSync(SCREENSHOTS, { recursive: true });
    page = await openPage(browser, `${server.origin}/`);
    pages.push(page);
    await installLibrary(page);
  });

  after(async () => {
    const problems = [];
    for (const p of pages) problems.push(...(await p.collectProblems().catch(() => [])));
    await browser?.close();
    await server?.stop();
    assert.deepEqual(problems, [], "script errors or CSP violations");
  });

  test("this build has WebSocket, Web Crypto and mock getUserMedia, and no RTCPeerConnection", async () => {
    const features = await page.evaluate(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const kinds = stream.getTracks().map((t) => t.kind).sort();
      for (const track of stream.getTracks()) track.stop();
      return { webSocket: typeof WebSocket, subtle: typeof crypto.subtle?.encrypt, kinds, rtc: typeof RTCPeerConnection, secure: isSecureContext };
    });
    assert.deepEqual(features, { webSocket: "function", subtle: "function", kinds: ["audio", "video"], rtc: "undefined", secure: true });
  });

  test("the end-to-end vectors of docs/e2e.md hold in its Web Crypto, both ways", async () => {
    const result = await page.evaluate(
      async ({ vector, hello, sas }) => {
        const e2e = await import("/js/e2e.js");
        const { safetyCodeOf } = await import("/js/sas.js");
        const hex = (/** @type {Uint8Array} */ bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
        const key = await e2e.deriveKey(vector.secret, vector.room);
        const envelope = await e2e.seal(key, vector.room, vector.sender, JSON.parse(vector.plaintext), Uint8Array.from(vector.iv));
        const sealedHello = await e2e.sealHello(key, vector.room, vector.sender, hello.receiver, Uint8Array.from(hello.iv));
        let wrongSender = "";
        try {
          await e2e.open(key, vector.room, hello.receiver, JSON.parse(vector.envelope));
        } catch (error) {
          wrongSender = /** @type {any} */ (error).reason;
        }
        return {
          keyHex: hex(new Uint8Array(await e2e.deriveKeyBytes(vector.secret, vector.room))),
          envelope: JSON.stringify(envelope),
          opened: JSON.stringify(await e2e.open(key, vector.room, vector.sender, JSON.parse(vector.envelope))),
          hello: JSON.stringify(sealedHello),
          helloTo: await e2e.openHello(key, vector.room, vector.sender, JSON.parse(hello.hello)),
          wrongSender,
          code: await safetyCodeOf(sas.a, sas.b),
          codeSwapped: await safetyCodeOf(sas.b, sas.a),
        };
      },
      { vector: { ...VECTOR, iv: [...VECTOR.iv] }, hello: { ...HELLO_VECTOR, iv: [...HELLO_VECTOR.iv] }, sas: SAS_VECTOR },
    );
    assert.deepEqual(result, {
      keyHex: VECTOR.keyHex,
      envelope: VECTOR.envelope,
      opened: VECTOR.plaintext,
      hello: HELLO_VECTOR.hello,
      helloTo: HELLO_VECTOR.receiver,
      wrongSender: "undecryptable",
      code: SAS_VECTOR.code,
      codeSwapped: SAS_VECTOR.code,
    });
  });

  test("tickets: a ticket function joins with its identity; no ticket is refused in-band and final; an expired one gets one fresh ticket", async () => {
    const room = roomName("webkit-ticket");
    const tickets = { ann: await mint(room, "ann"), ben: await mint(room, "ben"), expired: await mint(room, "ben", { expired: true }) };
    const result = await page.evaluate(
      async ({ room, tickets }) => {
        const { duet, track } = /** @type {any} */ (window);
        let annCalls = 0;
        const a = track(duet.connect(room, { storage: null, ticket: () => (annCalls++, tickets.ann) }));
        const created = await a.next("created");

        const none = track(duet.connect(room, { storage: null }));
        const refused = await none.next("refused");
        const closed = await none.next("close");

        // The first ticket has expired: the join is refused as such, and the function's next
        // (fresh) ticket joins at once.
        const given = [tickets.expired, tickets.ben];
        let benCalls = 0;
        const b = track(duet.connect(room, { storage: null, ticket: async () => given[Math.min(benCalls++, 1)] }));
        const joined = await b.next("joined");
        const expired = b.events.find((e) => e.type === "refused")?.detail ?? null;
        const peerJoined = await a.next("peer-joined");
        a.connection.leave();
        b.connection.leave();
        return {
          created: { identity: created.identity },
          annCalls,
          refused: { code: refused.code },
          closed,
          noneTypes: none.types(),
          expired: expired && { code: expired.code },
          benCalls,
          joined: { identity: joined.identity },
          peerJoined: { identity: peerJoined.identity },
        };
      },
      { room, tickets },
    );
    assert.deepEqual(result.created.identity, { sub: "ann", name: "ANN" });
    assert.equal(result.annCalls, 1);
    assert.deepEqual(result.refused, { code: "ticket-required" });
    assert.equal(result.closed.code, CloseCode.TICKET_REFUSED);
    assert.deepEqual(result.noneTypes, ["refused", "close"], "no retry after a final refusal");
    assert.deepEqual(result.expired, { code: "ticket-expired" });
    assert.equal(result.benCalls, 2, "one fresh ticket after ticket-expired");
    assert.deepEqual(result.joined.identity, { sub: "ben", name: "BEN" });
    assert.deepEqual(result.peerJoined.identity, { sub: "ben", name: "BEN" });
  });

  test("end to end: only envelopes cross the server, both sides confirm their keys; different keys are key-mismatch on both", async () => {
    const room = roomName("webkit-e2e");
    const other = roomName("webkit-e2e-other");
    const tickets = { a: await mint(room, "ann"), b: await mint(room, "ben"), c: await mint(other, "cat"), d: await mint(other, "dan") };
    const keys = [randomBytes(32).toString("base64url"), randomBytes(32).toString("base64url")];
    const result = await page.evaluate(
      async ({ room, other, tickets, keys }) => {
        const { duet, track } = /** @type {any} */ (window);
        /** Every text frame the connections send or receive. */
        const wire = [];
        class RecordedWebSocket extends WebSocket {
          constructor(/** @type {[string, any]} */ ...args) {
            super(...args);
            this.addEventListener("message", (event) => wire.push(String(event.data)));
          }
          send(/** @type {string} */ text) {
            wire.push(text);
            super.send(text);
          }
        }
        const options = (/** @type {string} */ ticket, /** @type {string} */ key) => ({ storage: null, ticket, key, WebSocket: RecordedWebSocket });
        const a = track(duet.connect(room, options(tickets.a, keys[0])));
        await a.next("created");
        const b = track(duet.connect(room, options(tickets.b, keys[0])));
        const [confirmedA, confirmedB] = await Promise.all([a.next("e2e-confirmed"), b.next("e2e-confirmed")]);
        const secretText = "the plaintext never crosses the server";
        a.connection.send({ note: secretText });
        const atB = await b.next("message");
        const messages = wire.map((text) => JSON.parse(text)).filter((frame) => frame.type === "message");
        const plain = wire.filter((text) => text.includes(secretText));

        const c = track(duet.connect(other, options(tickets.c, keys[0])));
        await c.next("created");
        const d = track(duet.connect(other, options(tickets.d, keys[1])));
        const [mismatchC, mismatchD] = await Promise.all([c.next("e2e-error"), d.next("e2e-error")]);
        for (const t of [a, b, c, d]) t.connection.leave();
        return {
          confirmed: [confirmedA.peer === b.connection.clientId, confirmedB.peer === a.connection.clientId],
          atB: atB.data,
          encrypted: [a.connection.encrypted, b.connection.encrypted],
          messages: messages.length,
          allEnvelopes: messages.every((frame) => typeof frame.data?.e2e === "number" && typeof frame.data?.ct === "string" && Object.keys(frame.data).every((k) => ["e2e", "hello", "iv", "ct"].includes(k))),
          plain: plain.length,
          mismatch: [mismatchC.reason, mismatchD.reason],
          confirmedOther: [c.types().includes("e2e-confirmed"), d.types().includes("e2e-confirmed")],
        };
      },
      { room, other, tickets, keys },
    );
    assert.deepEqual(result.confirmed, [true, true]);
    assert.deepEqual(result.atB, { note: "the plaintext never crosses the server" });
    assert.deepEqual(result.encrypted, [true, true]);
    assert.ok(result.messages >= 3, `hellos and the message crossed (${result.messages} frames)`);
    assert.equal(result.allEnvelopes, true, "every relayed message is an envelope");
    assert.equal(result.plain, 0);
    assert.deepEqual(result.mismatch, ["key-mismatch", "key-mismatch"]);
    assert.deepEqual(result.confirmedOther, [false, false]);
  });

  test("the start page says plainly that this browser cannot make calls", async () => {
    const landing = await openPage(browser, `${server.origin}/`);
    pages.push(landing);
    const said = await until(landing, () => [...document.querySelectorAll('[role="status"]')].find((e) => !e.closest("[hidden]") && e.textContent)?.textContent);
    assert.equal(said, "This browser cannot make calls: it has no WebRTC. Open Duet in another browser, such as a current Firefox, Chrome, Edge or Safari.");
    assert.deepEqual(await accessibilityProblems(landing), []);
    await landing.close();
  });

  test("the app says plainly that this browser cannot make calls, takes no camera and no slot, and offers one next action", async () => {
    const room = roomName("webkit-app");
    // A link as a person would get it: a key, and their own ticket to join.
    const link = `${server.origin}/${room}#k=${randomBytes(32).toString("base64url")}&t=${await mint(room, "eve")}`;
    const app = await openPage(browser, link, { viewport: { width: 1280, height: 800 } });
    pages.push(app);
    await until(app, () => document.getElementById("call")?.dataset.finished);
    const shown = await app.evaluate(() => {
      const visible = (/** @type {Element} */ e) => e.getClientRects().length > 0 && !e.closest("[hidden]");
      const name = (/** @type {Element} */ e) => (e.getAttribute("aria-label") ?? e.textContent ?? "").trim();
      const debug = /** @type {any} */ (window).duetDebug;
      return {
        statuses: [...document.querySelectorAll('[role="status"]')].filter(visible).map(name).filter(Boolean),
        h1: [...document.querySelectorAll("h1")].filter(visible).length,
        actions: [...document.querySelectorAll("a, button")].filter(visible).map(name).filter((text) => text !== "Duet home"),
        linkShown: visible(/** @type {Element} */ (document.getElementById("share"))),
        video: visible(/** @type {Element} */ (document.getElementById("stage"))),
        camera: { stream: debug.call.media.stream, live: debug.liveTracks },
        signaling: debug.call.signaling,
      };
    });
    assert.deepEqual(shown.statuses, [
      "This browser cannot make calls: it has no WebRTC, which video calls need. Open this link in another browser, such as a current Firefox, Chrome, Edge or Safari.",
    ]);
    assert.equal(shown.h1, 1);
    assert.deepEqual(shown.actions, ["Copy the link to open it in another browser"], "one next action, and no call controls");
    assert.deepEqual({ link: shown.linkShown, video: shown.video }, { link: false, video: false });
    assert.deepEqual(shown.camera, { stream: null, live: 0 }, "the camera was never turned on");
    assert.equal(shown.signaling, null, "it never joined the room");
    assert.deepEqual(await accessibilityProblems(app), []);
    await app.screenshot({ path: join(SCREENSHOTS, "webkit-unsupported.png") });

    // The action copies the whole link, ticket included (it is for this person, in another
    // browser), or says where it is; the page stays where it is.
    assert.equal(await app.evaluate(() => /** @type {HTMLAnchorElement} */ (document.getElementById("next-primary")).href), link);
    await app.click("#next-primary");
    const said = await until(app, () => document.getElementById("after-notice")?.textContent);
    assert.match(String(said), /^(Link copied\.|Copy the link from the address bar\.)$/);
    assert.equal(await app.evaluate(() => location.pathname), `/${room}`);

    // The room is still free for the two people who can call: a join there creates it.
    const created = await page.evaluate(
      async ({ room, ticket }) => {
        const { duet, track } = /** @type {any} */ (window);
        const a = track(duet.connect(room, { storage: null, ticket }));
        const frame = await a.next("created");
        a.connection.leave();
        return frame.type;
      },
      { room, ticket: await mint(room, "ann") },
    );
    assert.equal(created, "created");
  });
});
