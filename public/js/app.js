// @ts-check
/**
 * The start page: "Start a call" and the join form. A room's page loads the call code
 * (`callpage.js`) only when it is one, so the start page stays light.
 *
 * Call links are `/{room}#k={secret}`: the fragment carries the end-to-end key (`docs/e2e.md`)
 * and never leaves the browser. A link without `#k=` makes a plain call, and says so.
 * @module app
 */

import { newRoomName, parseRoomInput, roomFromPath } from "./rooms.js";
import { newSecret, secretFromFragment } from "./e2e.js";

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
}

const room = roomFromPath(location.pathname);
if (room) {
  import("./callpage.js").then(({ showCall }) => showCall(room));
} else {
  showLanding(location.pathname === "/" ? null : "That address is not a room. Room names use letters, digits, - and _.");
}

/** @param {string | null} problem */
function showLanding(problem) {
  $("landing").hidden = false;
  const error = $("join-error");
  const input = /** @type {HTMLInputElement} */ ($("join-room"));
  const showError = (/** @type {string | null} */ text) => {
    error.textContent = text ?? "";
    error.hidden = !text;
    input.setAttribute("aria-invalid", String(Boolean(text)));
  };
  showError(problem);
  // Said before anyone starts a call here; found by the feature, never by the user agent.
  if (typeof RTCPeerConnection !== "function") {
    const note = $("landing-problem");
    note.textContent = "This browser cannot make calls: it has no WebRTC. Open Duet in another browser, such as a current Firefox, Chrome, Edge or Safari.";
    note.hidden = false;
  }
  // Every new call gets its own secret.
  $("start").addEventListener("click", () => location.assign(`/${newRoomName()}${keyFragment(newSecret())}`));
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = parseRoomInput(input.value);
    if (name) location.assign(`/${name}${keyFragment(pastedSecret(input.value))}`);
    else showError("Enter a room link or a name of 1–64 letters, digits, - or _.");
  });
}

/** @param {string | null} secret @returns {string} `#k={secret}`, or "" without one */
function keyFragment(secret) {
  return secret ? `#k=${secret}` : "";
}

/**
 * The secret of a pasted call link, if it has one.
 * @param {string} text
 */
function pastedSecret(text) {
  try {
    return secretFromFragment(new URL(text.trim()).hash);
  } catch {
    return null; // a room name, not a link
  }
}
