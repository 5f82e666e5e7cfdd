// @ts-check
/**
 * The page: wires the landing form and the call (`call.js`) to the DOM. No call logic here.
 * Anything that came from the peer is shown with `textContent` or as a blob URL, never as HTML.
 *
 * Call links are `/{room}#k={secret}`: the fragment carries the end-to-end key (`docs/e2e.md`)
 * and never leaves the browser. A link without `#k=` makes a plain call, and says so.
 *
 * URL options (for tests): `?relay=1` uses TURN relays only. State for tests is on
 * `window.duetDebug`.
 * @module app
 */

import { Call } from "./call.js";
import { captureFrame } from "./media.js";
import { newRoomName, parseRoomInput, roomFromPath } from "./rooms.js";
import { cryptoAvailable, isSecret, newSecret, secretFromFragment } from "./e2e.js";

/** What each status means to a person. @type {Record<import("./status.js").Status, string>} */
const STATUS_TEXT = {
  starting: "Starting…",
  waiting: "Waiting for the other person to join. Send them the link.",
  connecting: "Connecting…",
  connected: "Connected",
  interrupted: "The connection to the other person was interrupted. Reconnecting…",
  "video-stopped": "Connected, but the other person's video stopped.",
  reconnecting: "Lost the connection to the server. Reconnecting…",
  "peer-reconnecting": "The other person is reconnecting…",
  "peer-left": "The other person left the call.",
  full: "This room is full: two people are already in it.",
  ended: "You left the call.",
  replaced: "This call continued in another tab.",
  error: "Something went wrong.",
};

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
}

const room = roomFromPath(location.pathname);
if (room) {
  showCall(room);
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

/**
 * Why a link with a key cannot be used here, or null. Such a link never falls back to plaintext.
 * @param {string | null} secret
 */
function keyProblem(secret) {
  if (secret === null) return null;
  if (!isSecret(secret)) {
    return "The key in this link is damaged (the part after #k= should be 43 letters, digits, - or _). Ask for the link again and copy all of it.";
  }
  if (!cryptoAvailable()) {
    return "This page was not loaded over a secure connection, so the browser offers no encryption and the call cannot be protected. Open the link over https:// (whoever runs this server: serve it over https).";
  }
  return null;
}

/** @param {string} room */
function showCall(room) {
  document.title = `Duet · ${room}`;
  $("call").hidden = false;
  const params = new URLSearchParams(location.search);
  const secret = secretFromFragment(location.hash);
  // A join ticket, for deployments that require one (`docs/access.md`): personal, so it is
  // neither in the copied link nor ever sent anywhere but as the socket's subprotocol.
  const ticket = new URLSearchParams(location.hash.replace(/^#/, "")).get("t");
  const call = new Call({ room, relay: params.get("relay") === "1", key: secret, signaling: { ticket } });
  // The whole link, key included: it is only ever shown and copied, never sent to the server.
  const link = `${location.origin}/${room}${keyFragment(secret)}`;
  const linkInput = /** @type {HTMLInputElement} */ ($("room-link"));
  linkInput.value = link;
  const rejoin = /** @type {HTMLAnchorElement} */ ($("rejoin"));
  rejoin.href = `/${room}${keyFragment(secret)}`;
  // The same URL with a fragment would only scroll; the key is per page load, so load again.
  rejoin.addEventListener("click", (event) => {
    event.preventDefault();
    location.reload();
  });
  addEventListener("hashchange", () => location.reload());
  const problem = keyProblem(secret);

  const status = $("status");
  const localVideo = /** @type {HTMLVideoElement} */ ($("local-video"));
  const remoteVideo = /** @type {HTMLVideoElement} */ ($("remote-video"));
  const placeholder = $("remote-placeholder");
  const mic = /** @type {HTMLButtonElement} */ ($("mic"));
  const camera = /** @type {HTMLButtonElement} */ ($("camera"));
  const snap = /** @type {HTMLButtonElement} */ ($("snap"));
  const chatInput = /** @type {HTMLInputElement} */ ($("chat-input"));
  const chatSend = /** @type {HTMLButtonElement} */ ($("chat-send"));
  const debug = exposeDebug(call);
  showProtection(call, secret === null ? "plain" : problem ? "refused" : "protected");

  // The remote video shows whenever media flows, also while either side's signaling reconnects,
  // and stays (frozen, the status says why) while ICE is disconnected: no flicker on a blip.
  const showRemote = () => {
    const state = call.pc?.connectionState;
    const flowing = state === "connected" || state === "disconnected";
    const hasVideo = flowing && Boolean(call.remoteStream?.getVideoTracks().length);
    remoteVideo.hidden = !hasVideo;
    placeholder.hidden = hasVideo;
    placeholder.textContent = flowing ? "The other person has no camera on." : "Waiting for the other person…";
  };
  call.addEventListener("connectionstate", showRemote);

  call.addEventListener("status", () => {
    const text = STATUS_TEXT[call.status];
    status.textContent = call.status === "error" && call.problem ? `${text} ${call.problem}` : text;
    status.dataset.status = call.status;
    if (call.status === "connected" && debug.connectedAt === null) debug.connectedAt = performance.now();
    const over = ["ended", "full", "replaced", "error"].includes(call.status);
    $("after-call").hidden = !over;
    $("hang-up").hidden = over;
    showRemote();
  });

  call.addEventListener("localstream", () => {
    const stream = call.media.stream;
    localVideo.srcObject = stream;
    localVideo.hidden = !call.hasTrack("video");
    mic.disabled = !call.hasTrack("audio");
    camera.disabled = !call.hasTrack("video");
    const note = $("media-note");
    if (call.media.problem) {
      note.textContent =
        call.media.mode === "none"
          ? `${call.media.problem} You can still join and chat; the other person will not see or hear you.`
          : call.media.problem;
      note.hidden = false;
    }
  });

  call.addEventListener("remotestream", () => {
    if (remoteVideo.srcObject !== call.remoteStream) remoteVideo.srcObject = call.remoteStream;
    if (call.remoteStream) playRemote(remoteVideo);
    showRemote();
  });

  call.addEventListener("channel", (event) => {
    const open = /** @type {CustomEvent} */ (event).detail.open;
    chatInput.disabled = !open;
    chatSend.disabled = !open;
    snap.disabled = !open || !call.hasTrack("video");
  });

  call.addEventListener("chat", (event) => {
    const { from, text } = /** @type {CustomEvent} */ (event).detail;
    const item = chatItem(from);
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(body);
  });

  call.addEventListener("photo", (event) => {
    const { from, blob } = /** @type {CustomEvent} */ (event).detail;
    const item = chatItem(from);
    const image = document.createElement("img");
    image.className = "photo";
    image.alt = from === "me" ? "The photo you sent" : "A photo from the other person";
    image.src = URL.createObjectURL(blob);
    item.append(image);
    if (from === "peer") debug.lastPhoto = { bytes: blob.size, type: blob.type };
    else debug.lastPhotoSent = { bytes: blob.size, type: blob.type };
  });

  mic.addEventListener("click", () => toggle(mic, "audio"));
  camera.addEventListener("click", () => toggle(camera, "video"));
  /** @param {HTMLButtonElement} button @param {"audio" | "video"} kind */
  function toggle(button, kind) {
    const off = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(off));
    call.setEnabled(kind, !off);
  }

  snap.addEventListener("click", async () => {
    snap.disabled = true;
    try {
      await call.sendPhoto(await captureFrame(localVideo));
    } catch (error) {
      notice(`Could not send the photo: ${error instanceof Error ? error.message : error}`);
    } finally {
      snap.disabled = call.channel?.readyState !== "open";
    }
  });

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (call.sendChat(chatInput.value)) chatInput.value = "";
  });

  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link);
      notice("Link copied.");
    } catch {
      linkInput.select(); // no clipboard access: let the person copy it
      notice("Press Ctrl+C (or ⌘C) to copy the selected link.");
    }
  });

  $("hang-up").addEventListener("click", () => call.hangUp());

  $("unmute-remote").addEventListener("click", () => {
    remoteVideo.muted = false;
    remoteVideo.play().catch(() => {});
    $("unmute-remote").hidden = true;
  });

  if (problem) {
    status.textContent = `${STATUS_TEXT.error} ${problem}`;
    status.dataset.status = "error";
    debug.refused = problem;
    return;
  }
  call.start().catch((error) => {
    status.textContent = `${STATUS_TEXT.error} ${error instanceof Error ? error.message : error}`;
    status.dataset.status = "error";
  });
}

/**
 * Says whether the call is end-to-end protected, shows the safety code once connected, and warns
 * when the other side's messages could not be verified.
 * @param {Call} call
 * @param {"protected" | "plain" | "refused"} mode a key link, a link without a key, or a key
 *   link that cannot be used here (the status says why)
 */
function showProtection(call, mode) {
  const state = $("e2e-state");
  $("security").dataset.protected = String(mode !== "plain");
  state.textContent = {
    protected: "End-to-end protected: the server relays this call's setup without being able to read it or change it unnoticed.",
    plain:
      "This call is not end-to-end protected: its link has no key, so the server can read the call's setup. Start a new call for a protected link, and compare the safety code." +
      (cryptoAvailable() ? "" : " This page is not on a secure connection (https), so there is no safety code either."),
    refused: "Nothing was sent: a link with a key is never used for an unprotected call.",
  }[mode];
  const safety = $("safety");
  const showCode = () => {
    const code = call.pc?.connectionState === "connected" ? call.safetyCode : null;
    $("safety-code").textContent = code ?? "";
    safety.hidden = !code;
  };
  call.addEventListener("safetycode", showCode);
  call.addEventListener("connectionstate", showCode);
  call.addEventListener("e2e-error", (event) => {
    const { reason } = /** @type {CustomEvent} */ (event).detail;
    const alert = $("e2e-alert");
    alert.textContent =
      reason === "unexpected-envelope"
        ? "The other person joined with an end-to-end protected link, but yours has no key. Open the full link they sent, including the part after #."
        : reason === "replayed" || reason === "reflected"
          ? "Some messages came again, or came back as if from you, and were ignored: the server is interfering."
          : "Messages from the other side could not be verified and were not used: the link may be wrong or altered (each of you opened a different one), or the server is interfering.";
    alert.hidden = false;
  });
}

/**
 * Plays the remote video; where the browser blocks playback with sound until the person
 * interacts, plays it muted and offers a button to unmute.
 * @param {HTMLVideoElement} video
 */
function playRemote(video) {
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
    $("unmute-remote").hidden = false;
  });
}

/** @param {"me" | "peer"} from */
function chatItem(from) {
  const log = $("chat-log");
  const item = document.createElement("li");
  item.className = `chat-item from-${from}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = from === "me" ? "You" : "Them";
  item.append(who);
  log.append(item);
  log.scrollTop = log.scrollHeight;
  return item;
}

/** @param {string} text */
function notice(text) {
  $("copy-notice").textContent = text;
}

/**
 * State for tests and debugging, instead of scraping the page.
 * @param {Call} call
 */
function exposeDebug(call) {
  const debug = {
    call,
    /** `performance.now()` when the call first showed "connected". @type {number | null} */
    connectedAt: null,
    /** Size and type of the last photo received and sent. @type {{bytes: number, type: string} | null} */
    lastPhoto: null,
    /** @type {{bytes: number, type: string} | null} */
    lastPhotoSent: null,
    get pc() {
      return call.pc;
    },
    get pcId() {
      return call.pcId;
    },
    get status() {
      return call.status;
    },
    get statusHistory() {
      return [...call.statusHistory];
    },
    get clientId() {
      return call.signaling?.clientId ?? null;
    },
    get signalingState() {
      return call.signaling?.state ?? null;
    },
    /** With join tickets: who the other person is, as their ticket says. */
    get peerIdentity() {
      const signaling = call.signaling;
      const peer = signaling?.peers[0];
      return peer ? (signaling.peerIdentities[peer] ?? null) : null;
    },
    get offers() {
      return call.offers;
    },
    get stats() {
      return { ...call.stats };
    },
    get mediaMode() {
      return call.media.mode;
    },
    /** Whether signaling is end-to-end encrypted. */
    get encrypted() {
      return call.signaling?.encrypted ?? false;
    },
    /** The safety code computed for the current peer connection. */
    get safetyCode() {
      return call.safetyCode;
    },
    /** Reasons of the peer's messages that were dropped. */
    get e2eErrors() {
      return [...call.e2eErrors];
    },
    /** Why the page did not join (a link whose key cannot be used here). @type {string | null} */
    refused: null,
    /** Drops the signaling WebSocket without leaving, as a network failure would. */
    dropSignaling() {
      call.dropSignaling();
    },
    /** When the TURN credentials of the latest ICE servers expire (ms), or null. */
    get iceServersExpireAt() {
      return call.signaling?.iceServersExpireAt ?? null;
    },
    /** Restarts ICE on the current peer connection. */
    restartIce() {
      call.restartIce();
    },
    /** The call's media path and recovery counts (`call.report()`). */
    report() {
      return call.report();
    },
  };
  Object.assign(window, { duetDebug: debug });
  return debug;
}
