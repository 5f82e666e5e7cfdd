// The client library (public/js/duet.js) in Chromium, Firefox and WebKitGTK (Safari's engine)
// against `wrangler dev`: pairing, relay, full, resume by token (from sessionStorage),
// keep-alive, leave, and use from another origin. Scenarios run inside the page; each awaits the
// events it expects, never a sleep. WebKitGTK has no RTCPeerConnection, so the example's video
// call is not tried there (webkit.test.mjs has its tickets, end-to-end envelope and the app).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  closePage,
  CloseCode,
  DEFAULT_ICE_SERVERS,
  launchChromium,
  launchFirefox,
  LEAVE_TEXT,
  openPage,
  PING_TEXT,
  PONG_TEXT,
  PROTOCOL_VERSION,
  ROOT,
  roomName,
  serverClose,
  startDevServer,
  TOKEN,
  until,
} from "../helpers/browser.mjs";
import { launchWebKit } from "../helpers/webkit.mjs";

/**
 * Loads the library into the page as `window.duet` and adds `window.track(connection)`, which
 * records every event of a connection and lets a scenario await the next one of a type.
 * @param {import("playwright-core").Page} page
 * @param {string} libraryUrl
 */
async function installLibrary(page, libraryUrl) {
  await page.evaluate(async (url) => {
    const w = /** @type {any} */ (window);
    w.duet = await import(url);
    const TYPES = [...w.duet.FRAME_TYPES, "reconnecting", "reconnected", "close"];
    w.track = (connection) => {
      /** @type {{type: string, detail: any}[]} */
      const events = [];
      const waiters = [];
      for (const type of TYPES) {
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
        /** The first event of `type` after index `from` (awaited if it has not come yet). */
        next(type, from = 0, ms = 10_000) {
          const found = events.slice(from).find((e) => e.type === type);
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
  }, libraryUrl);
}

for (const [engine, launch] of [
  ["Chromium", launchChromium],
  ["Firefox", launchFirefox],
  ["WebKitGTK", launchWebKit],
]) describe(`the duet.js client library in ${engine}`, () => {
  /** @type {Awaited<ReturnType<typeof startDevServer>>} */
  let server;
  /** @type {any} */
  let browser;
  /** @type {any} */
  let page;

  // A stand-in for another site: plain pages on another loopback port (a real server, so
  // Chromium's local-network-access rules see a loopback page talking to loopback). It serves
  // an empty page and the example from docs/client.md, pointed at the test server.
  /** @type {import("node:http").Server} */
  let site;
  let otherOrigin = "";
  const exampleRoom = roomName("example");

  before(async () => {
    browser = await launch(); // first: without a browser, fail before starting a server
    server = await startDevServer();
    page = await openPage(browser, `${server.origin}/`);
    await installLibrary(page, "/js/duet.js");
    const docs = readFileSync(join(ROOT, "docs", "client.md"), "utf8");
    const example = /```html\n([\s\S]*?)```/.exec(docs)?.[1];
    assert.ok(example, "docs/client.md has an html example");
    site = createServer((request, response) => {
      response.writeHead(200, { "content-type": "text/html" });
      response.end(
        request.url?.startsWith("/example.html")
          ? example.replaceAll("https://duet.example", server.origin)
          : "<!doctype html><title>Another site</title>",
      );
    });
    await new Promise((resolve) => site.listen(0, "127.0.0.1", () => resolve(undefined)));
    otherOrigin = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (site.address()).port}`;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    site?.close();
  });

  test("pairs two peers, names the initiator and relays JSON unchanged; a third gets full", async () => {
    const result = await page.evaluate(async (room) => {
      const { duet, track } = /** @type {any} */ (window);
      const a = track(duet.connect(room, { storage: null }));
      const created = await a.next("created");
      const b = track(duet.connect(room, { storage: null }));
      const [joined, readyA, readyB] = await Promise.all([b.next("joined"), a.next("ready"), b.next("ready")]);
      const payload = { text: "hé", list: [1, 2.5, null, true], nested: { deep: { x: "<b>" } } };
      a.connection.send(payload);
      b.connection.send("plain string");
      const [atB, atA] = await Promise.all([b.next("message"), a.next("message")]);

      const c = track(duet.connect(room, { storage: null }));
      const closed = await c.next("close");
      // (No object twice in the result: WebDriver BiDi sends a repeat as a reference that
      // puppeteer does not resolve, so `ice` is a copy of what `created` also holds.)
      return {
        created,
        joined,
        readyA,
        readyB,
        atB,
        atA,
        closed,
        cTypes: c.types(),
        cState: c.connection.state,
        a: { id: a.connection.clientId, peers: a.connection.peers, initiator: a.connection.isInitiator, ice: structuredClone(a.connection.iceServers) },
        b: { id: b.connection.clientId, peers: b.connection.peers, initiator: b.connection.isInitiator },
        payload,
      };
    }, roomName("lib"));
    assert.equal(result.created.type, "created");
    assert.equal(result.created.version, PROTOCOL_VERSION);
    assert.match(result.created.resumeToken, TOKEN);
    assert.deepEqual(result.joined.peers, [result.a.id]);
    assert.equal(result.joined.resumed, false);
    assert.equal(result.readyA.initiator, result.a.id, "the peer there first initiates");
    assert.deepEqual(result.readyB, result.readyA);
    assert.equal(result.a.initiator, true);
    assert.equal(result.b.initiator, false);
    assert.deepEqual(result.a.peers, [result.b.id]);
    assert.deepEqual(result.b.peers, [result.a.id]);
    assert.deepEqual(result.a.ice, DEFAULT_ICE_SERVERS);
    assert.deepEqual(result.atB, { type: "message", from: result.a.id, data: result.payload });
    assert.deepEqual(result.atA, { type: "message", from: result.b.id, data: "plain string" });
    assert.deepEqual(result.closed, serverClose("ROOM_FULL"));
    assert.deepEqual(result.cTypes, ["full", "close"], "full is final: no reconnect");
    assert.equal(result.cState, "closed");
  });

  test("reconnect() resumes the same slot: peer-away, then peer-joined (resumed), no second ready", async () => {
    const result = await page.evaluate(async (room) => {
      const { duet, track } = /** @type {any} */ (window);
      const fast = { initialDelayMs: 100 };
      const a = track(duet.connect(room, { storage: null, backoff: fast }));
      await a.next("created");
      const b = track(duet.connect(room, { storage: null, backoff: fast }));
      await Promise.all([a.next("ready"), b.next("ready")]);
      const marks = { a: a.events.length, b: b.events.length };
      const idBefore = b.connection.clientId;
      b.connection.reconnect();
      const reconnecting = await b.next("reconnecting", marks.b);
      const stateWhileDown = b.connection.state;
      const sentWhileDown = b.connection.send("lost");
      const away = await a.next("peer-away", marks.a);
      const reconnected = await b.next("reconnected", marks.b);
      const joined = await b.next("joined", marks.b);
      const back = await a.next("peer-joined", marks.a);
      // Relayed messages after the resume are a barrier: a `ready` would have come before them.
      b.connection.send("after-b");
      a.connection.send("after-a");
      const [atA, atB] = await Promise.all([a.next("message", marks.a), b.next("message", marks.b)]);
      return {
        idBefore,
        idAfter: b.connection.clientId,
        reconnecting,
        stateWhileDown,
        sentWhileDown,
        away,
        reconnected,
        joined,
        back,
        atA: atA.data,
        atB: atB.data,
        aTypes: a.types().slice(marks.a),
        bTypes: b.types().slice(marks.b),
        initiator: b.connection.isInitiator,
      };
    }, roomName("lib"));
    assert.equal(result.idAfter, result.idBefore);
    assert.equal(result.reconnecting.attempt, 1);
    assert.equal(result.reconnecting.code, CloseCode.CLIENT_DROP);
    assert.equal(result.stateWhileDown, "reconnecting");
    assert.equal(result.sentWhileDown, false, "nothing is queued while the socket is down");
    assert.equal(result.away.clientId, result.idBefore);
    assert.deepEqual(result.reconnected, { resumed: true, clientId: result.idBefore });
    assert.equal(result.joined.resumed, true);
    assert.equal(result.back.resumed, true);
    assert.equal(result.back.clientId, result.idBefore);
    assert.equal(result.atA, "after-b");
    assert.equal(result.atB, "after-a");
    assert.deepEqual(result.aTypes, ["peer-away", "peer-joined", "message"]);
    assert.deepEqual(result.bTypes, ["reconnecting", "joined", "reconnected", "pong", "message"], "a welcomed socket pings at once");
    assert.equal(result.initiator, false, "the pairing survives a resume");
  });

  test("the resume token lives in sessionStorage: a new page resumes, the old socket is replaced (4000, final), leave forgets", async () => {
    const result = await page.evaluate(async (room) => {
      const { duet, track } = /** @type {any} */ (window);
      const first = track(duet.connect(room));
      const created = await first.next("created");
      const key = Object.keys(sessionStorage).find((k) => k.endsWith(`/ws/${room}`));
      const stored = JSON.parse(sessionStorage.getItem(key) ?? "null");
      // What a reloaded page does: connect again with the same sessionStorage.
      const second = track(duet.connect(room));
      const joined = await second.next("joined");
      const replaced = await first.next("close");
      const rotated = JSON.parse(sessionStorage.getItem(key) ?? "null");
      second.connection.leave();
      const left = await second.next("close");
      return {
        created,
        key,
        stored,
        joined,
        replaced,
        firstTypes: first.types(),
        rotated,
        left,
        afterLeave: sessionStorage.getItem(key),
      };
    }, roomName("lib"));
    assert.ok(result.key, "a sessionStorage entry for the room");
    assert.equal(result.stored.token, result.created.resumeToken);
    assert.equal(result.stored.clientId, result.created.clientId);
    assert.equal(result.joined.resumed, true);
    assert.equal(result.joined.clientId, result.created.clientId);
    assert.deepEqual(result.replaced, serverClose("REPLACED"));
    assert.deepEqual(result.firstTypes, ["created", "pong", "close"], "the first ping goes out on welcome; no reconnect after 4000");
    assert.match(result.rotated.token, TOKEN);
    assert.notEqual(result.rotated.token, result.stored.token, "the token rotates on resume");
    assert.deepEqual(result.left, serverClose("LEFT"));
    assert.equal(result.afterLeave, null);
  });

  test("keep-alive sends the exact ping and gets the pong; leave gives the peer peer-left", async () => {
    const result = await page.evaluate(async (room) => {
      const { duet, track } = /** @type {any} */ (window);
      /** @type {string[]} */
      const sent = [];
      class SpyingWebSocket extends WebSocket {
        send(/** @type {string} */ text) {
          sent.push(text);
          super.send(text);
        }
      }
      const a = track(duet.connect(room, { storage: null, pingIntervalMs: 100, WebSocket: SpyingWebSocket }));
      await a.next("created");
      const pong = await a.next("pong");
      const b = track(duet.connect(room, { storage: null }));
      await b.next("ready");
      a.connection.leave();
      const [left, closed] = await Promise.all([b.next("peer-left"), a.next("close")]);
      return { sent, pong, left, closed, aId: a.connection.clientId, bPeers: b.connection.peers };
    }, roomName("lib"));
    assert.equal(result.sent[0], PING_TEXT);
    assert.deepEqual(result.pong, JSON.parse(PONG_TEXT));
    assert.equal(result.sent.at(-1), LEAVE_TEXT);
    assert.deepEqual(result.left, { type: "peer-left", room: result.left.room, clientId: result.aId, reason: "leave" });
    assert.deepEqual(result.closed, serverClose("LEFT"));
    assert.deepEqual(result.bPeers, []);
  });

  test("another site can import the library and connect with a base URL", async () => {
    const other = await openPage(browser, `${otherOrigin}/`);
    await installLibrary(other, `${server.origin}/js/duet.js`);
    const result = await other.evaluate(
      async ([room, baseUrl]) => {
        const { duet, track } = /** @type {any} */ (window);
        const a = track(duet.connect(room, { baseUrl, storage: null }));
        const created = await a.next("created");
        a.connection.leave();
        return { origin: location.origin, created };
      },
      [roomName("lib"), server.origin],
    );
    assert.equal(result.origin, otherOrigin);
    assert.equal(result.created.type, "created");
    await closePage(other);
  });

  const noWebRtc = engine === "WebKitGTK" && "this WebKitGTK build has no RTCPeerConnection";
  test("the copy-paste example of docs/client.md makes a video call from another site", { skip: noWebRtc }, async () => {
    const key = randomBytes(32).toString("base64url"); // end-to-end, as the example shows
    const pages = await Promise.all(
      [0, 1].map(() => openPage(browser, `${otherOrigin}/example.html?room=${exampleRoom}#k=${key}`)),
    );
    for (const example of pages) {
      await until(example, () => /** @type {HTMLVideoElement} */ (document.getElementById("remote")).videoWidth > 0);
    }
    await Promise.all(pages.map(closePage));
  });

  test("room names are checked before connecting", async () => {
    const error = await page.evaluate(() => {
      try {
        /** @type {any} */ (window).duet.connect("no/slashes");
        return null;
      } catch (e) {
        return e instanceof TypeError ? e.message : String(e);
      }
    });
    assert.match(error ?? "", /room names/);
  });
});
