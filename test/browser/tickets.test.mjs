// The app on a ticketed deployment (JOIN_SECRET set): each page opens its call link with its
// own ticket in the fragment (`#t=`), the call connects, each side learns who the other is, and
// no ticket ever appears in a URL the page requested (the fragment is never sent; duet.js sends
// the ticket as a WebSocket subprotocol). Waits are on conditions in the page.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SignJWT } from "jose";
import { launchChromium, openPage, remoteVideoPlays, roomName, startDevServer, until } from "../helpers/browser.mjs";

const SECRET = "browser-ticket-secret-0123456789abcdefghij";

/** A ticket for `sub` to join `room`, minted as an operator's backend would (jose). */
function mint(room, sub, name) {
  return new SignJWT({ room, name })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(SECRET));
}

describe("the app with join tickets", () => {
  /** @type {Awaited<ReturnType<typeof startDevServer>>} */
  let server;
  /** @type {import("playwright-core").Browser} */
  let browser;
  const pages = [];
  before(async () => {
    browser = await launchChromium();
    server = await startDevServer({ vars: { JOIN_SECRET: SECRET } });
  });
  after(async () => {
    const problems = pages.flatMap((page) => page.problems);
    await browser?.close();
    await server?.stop();
    assert.deepEqual(problems, [], "script errors or CSP violations");
  });

  test("two pages with their tickets in #t= call each other; no ticket is in any request URL", async () => {
    const room = roomName("ticketed");
    const tickets = [await mint(room, "ann", "Ann"), await mint(room, "ben", "Ben")];
    /** @type {string[]} */
    const urls = [];
    for (const ticket of tickets) {
      const page = await openPage(browser, `${server.origin}/${room}#t=${ticket}`, {
        prepare: async (context) => {
          context.on("request", (request) => urls.push(request.url()));
          context.on("page", (p) => p.on("websocket", (ws) => urls.push(ws.url())));
        },
      });
      page.on("websocket", (ws) => urls.push(ws.url()));
      pages.push(page);
    }
    for (const page of pages) {
      await until(page, () => window.duetDebug?.pc?.connectionState === "connected");
      await remoteVideoPlays(page);
    }
    const peers = await Promise.all(pages.map((page) => page.evaluate(() => window.duetDebug.peerIdentity?.sub ?? null)));
    assert.deepEqual(peers, ["ben", "ann"], "each side learns the other's identity");
    // And shows the name from the ticket.
    for (const [page, name] of [[pages[0], "Ben"], [pages[1], "Ann"]]) {
      await page.getByRole("status").filter({ hasText: `Connected with ${name}` }).waitFor();
      await page.locator("#stage").getByText(name, { exact: true }).waitFor();
      await page.getByRole("heading", { level: 1, name: `Call with ${name}` }).waitFor();
    }
    assert.ok(urls.some((u) => u.includes(`/ws/${room}`)), "the socket request was seen");
    for (const url of urls) {
      for (const ticket of tickets) assert.ok(!url.includes(ticket), `a ticket in ${url}`);
      assert.doesNotMatch(url, /ticket=|resume=/, url);
    }
  });

  test("a page without a ticket is told why it cannot join and what to do, instead of an endless Starting…", async () => {
    const room = roomName("no-ticket");
    const page = await openPage(browser, `${server.origin}/${room}`);
    pages.push(page);
    // Refused in-band (ticket-required, close 4401): the page reads why, and stops trying
    // ("closed" is the library's final state: no attempt is scheduled after it).
    await until(page, () => window.duetDebug?.signalingState === "closed");
    const state = await page.evaluate(() => ({
      refusal: window.duetDebug.refusalCode,
      status: window.duetDebug.status,
      clientId: window.duetDebug.clientId,
      text: document.getElementById("status")?.textContent,
    }));
    assert.deepEqual(
      { refusal: state.refusal, status: state.status, clientId: state.clientId },
      { refusal: "ticket-required", status: "error", clientId: null },
    );
    assert.match(state.text ?? "", /needs a personal invitation.*Ask whoever invited you/);
    assert.doesNotMatch(state.text ?? "", /Starting|Reconnecting|Something went wrong/);
  });
});
