// What the people in a call see when its operator acts (docs/admin.md), in Chromium on
// `wrangler dev`: the one removed reads "You were removed from this call: {reason}", the one
// whose call is ended reads "The call was ended: {reason}"; each page releases camera and
// microphone, keeps none of the call's controls, offers one next action, does not reconnect,
// and passes axe-core. Waits are on state in the page, never sleeps.

import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { accessibilityProblems, chromiumSuite, roomName, SCREENSHOTS, until } from "../helpers/browser.mjs";

const ADMIN_SECRET = "browser-admin-secret";
const connected = () => window.duetDebug?.pc?.connectionState === "connected" && window.duetDebug.status === "connected";

/**
 * POSTs an admin verb to the suite's server and returns its JSON answer.
 * @param {{ origin: string }} server @param {string} path @param {object} body
 */
async function admin(server, path, body) {
  const response = await fetch(`${server.origin}/admin/rooms/${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200);
  return response.json();
}

/**
 * The page shows a call the operator finished: `text` in the status region, no live camera or
 * microphone track, no call controls, one next action, no reconnect, nothing axe-core minds.
 */
async function showsFinished(page, text) {
  await page.getByRole("status").filter({ hasText: text }).first().waitFor();
  assert.equal(await page.getByRole("status").first().textContent(), text);
  await until(page, () => window.duetDebug.liveTracks === 0);
  for (const name of ["Mute", "Camera off", "Hang up", "Share screen"]) {
    assert.equal(await page.getByRole("button", { name, exact: true }).count(), 0, `"${name}" is still offered`);
  }
  const actions = page.locator("#after-call a:visible");
  assert.equal(await actions.count(), 1, "one next action");
  assert.equal(await actions.first().textContent(), "Start a new call");
  assert.equal(await page.evaluate(() => window.duetDebug.signalingState), "closed", "it does not reconnect");
  assert.deepEqual(await accessibilityProblems(page), []);
}

describe("the operator ends a call and removes a person", () => {
  const suite = chromiumSuite({ vars: { ADMIN_SECRET } });

  /** Two pages in a fresh room, connected to each other. */
  async function call() {
    const room = roomName("op");
    const first = await suite.open(`${suite.origin}/${room}`);
    await until(first, () => window.duetDebug?.status === "waiting");
    const second = await suite.open(`${suite.origin}/${room}`);
    await Promise.all([until(first, connected), until(second, connected)]);
    return { room, first, second };
  }

  test("the removed person is told why; the other sees them leave", async () => {
    const { room, first, second } = await call();
    const clientId = await second.evaluate(() => window.duetDebug.clientId);
    assert.deepEqual(await admin(suite, `${room}/kick`, { clientId, reason: "Please keep it civil" }), { kicked: true });
    await showsFinished(second, "You were removed from this call: Please keep it civil");
    await second.screenshot({ path: join(SCREENSHOTS, "removed.png") });
    await until(first, () => window.duetDebug.status === "peer-left");
    assert.equal(await first.evaluate(() => window.duetDebug.liveTracks > 0), true, "the other call goes on");
  });

  test("everyone in an ended call is told why", async () => {
    const { room, first, second } = await call();
    assert.deepEqual(await admin(suite, `${room}/end`, { reason: "Your session time is up" }), { ended: 2 });
    for (const page of [first, second]) await showsFinished(page, "The call was ended: Your session time is up");
    await first.screenshot({ path: join(SCREENSHOTS, "call-ended.png") });
  });
});
