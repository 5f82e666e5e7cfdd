// @ts-check
/**
 * The page: wires the landing form and the call (`call.js`) to the DOM. No call logic here.
 * Anything that came from the peer is shown with `textContent` or as a blob URL, never as HTML.
 *
 * URL options (for tests): `?relay=1` uses TURN relays only. State for tests is on
 * `window.duetDebug`.
 * @module app
 */

import { Call } from "./call.js";
import { captureFrame } from "./media.js";
import { newRoomName, parseRoomInput, roomFromPath } from "./rooms.js";

/** What each status means to a person. @type {Record<import("./status.js").Status, string>} */
const STATUS_TEXT = {
  starting: "Starting…",
  waiting: "Waiting for the other person to join. Send them the link.",
  connecting: "Connecting…",
  connected: "Connected",
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
  $("start").addEventListener("click", () => location.assign(`/${newRoomName()}`));
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = parseRoomInput(input.value);
    if (name) location.assign(`/${name}`);
    else showError("Enter a room link or a name of 1–64 letters, digits, - or _.");
  });
}

/** @param {string} room */
function showCall(room) {
  document.title = `Duet · ${room}`;
  $("call").hidden = false;
  const params = new URLSearchParams(location.search);
  const call = new Call({ room, relay: params.get("relay") === "1" });
  const link = `${location.origin}/${room}`;
  const linkInput = /** @type {HTMLInputElement} */ ($("room-link"));
  linkInput.value = link;
  /** @type {HTMLAnchorElement} */ ($("rejoin")).href = `/${room}`;

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

  // The remote video shows whenever media flows, also while either side's signaling reconnects.
  const showRemote = () => {
    const flowing = call.pc?.connectionState === "connected";
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

  call.start().catch((error) => {
    status.textContent = `${STATUS_TEXT.error} ${error instanceof Error ? error.message : error}`;
    status.dataset.status = "error";
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
    get offers() {
      return call.offers;
    },
    get stats() {
      return { ...call.stats };
    },
    get mediaMode() {
      return call.media.mode;
    },
    /** Drops the signaling WebSocket without leaving, as a network failure would. */
    dropSignaling() {
      call.dropSignaling();
    },
  };
  Object.assign(window, { duetDebug: debug });
  return debug;
}
