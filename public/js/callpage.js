// @ts-check
/**
 * The call page: wires one call (`call.js`) to the DOM of `index.html`. Loaded by `app.js` only
 * on a room's page, so the start page stays light. No call logic here. Anything that came from
 * the peer (chat, photos, their name) is shown with `textContent` or as a blob URL, never as HTML.
 *
 * A call that is over (hung up, room full, refused, replaced by another tab, ended by the
 * operator, removed by the operator, a key that cannot be used, or any error) looks over: camera and microphone are released, the call controls and the
 * link are gone, and one next action is offered. Closing or leaving the page leaves the room, so
 * the other person learns at once; a drop is shown as a drop.
 *
 * URL options (for tests): `?relay=1` uses TURN relays only. State for tests is on
 * `window.duetDebug`.
 * @module callpage
 */

import { Call } from "./call.js";
import { captureFrame, listDevices } from "./media.js";
import { newRoomName } from "./rooms.js";
import { cryptoAvailable, isSecret, newSecret, secretFromFragment } from "./e2e.js";

/** Statuses after which the call is over for this page ("refused": a refusal the server explained). */
const FINISHED = new Set(["ended", "full", "replaced", "error", "refused", "call-ended", "removed"]);
/** Statuses in which the link is worth sending: nobody is with us. */
const ALONE = new Set(["starting", "waiting", "peer-left"]);
/** Chat beside the video (and always open) from this width on; below, a panel. */
const WIDE = "(min-width: 900px)";

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
}

/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id));

/** @param {string | null} secret @returns {string} `#k={secret}`, or "" without one */
function keyFragment(secret) {
  return secret ? `#k=${secret}` : "";
}

/** A new call's address: a fresh room with a fresh key. */
function newCallPath() {
  return `/${newRoomName()}${keyFragment(newSecret())}`;
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

/**
 * Why this browser cannot make calls at all, or null. Found by the features a call needs, never
 * by the user agent: WebKitGTK builds without WebRTC, say, have no RTCPeerConnection.
 */
function browserProblem() {
  if (typeof RTCPeerConnection !== "function") {
    return "This browser cannot make calls: it has no WebRTC, which video calls need. Open this link in another browser, such as a current Firefox, Chrome, Edge or Safari.";
  }
  return null;
}

/**
 * The other person's name from their join ticket, when the server has tickets.
 * @param {Call} call
 */
function peerName(call) {
  const identity = call.peerIdentity;
  const name = typeof identity?.name === "string" && identity.name.trim() ? identity.name.trim() : identity?.sub;
  return name ? name.slice(0, 64) : null;
}

/**
 * What the call's status means to a person.
 * @param {Call} call
 * @param {boolean} wasConnected whether this page's call has been connected before
 */
function statusText(call, wasConnected) {
  // While the server refuses our join: why, and what to do (nothing about connecting).
  if (call.refusal && call.problem) return call.problem;
  const name = peerName(call);
  const they = name ?? "The other person";
  switch (call.status) {
    case "starting":
      return "Starting…";
    case "waiting":
      return "Waiting for the other person to join. Send them the link.";
    case "connecting":
      // The media path broke while both are still in the room. The server may not tell of a
      // drop (docs/protocol.md, "Budget"), so this does not wait for `peer-away`.
      if (wasConnected && ["disconnected", "failed"].includes(call.pc?.connectionState ?? "")) return "The connection dropped; reconnecting…";
      return name ? `Connecting to ${name}…` : "Connecting…";
    case "connected":
      return name ? `Connected with ${name}` : "Connected";
    case "interrupted":
      return `The connection to ${name ?? "the other person"} was interrupted. Reconnecting…`;
    case "video-stopped":
      return `Connected, but ${name ? `${name}'s` : "the other person's"} video stopped.`;
    case "reconnecting":
      return "Lost the connection to the server. Reconnecting…";
    case "peer-reconnecting":
      return `${they}'s connection dropped; waiting for them…`;
    case "peer-left":
      return peerLeftText(they, call.peerLeftReason);
    case "full":
      return "This room is full: two people are already in it.";
    case "ended":
      return "You left the call.";
    case "replaced":
      return "This call continued in another tab.";
    case "call-ended":
      return call.operatorReason ? `The call was ended: ${call.operatorReason}` : "The call was ended.";
    case "removed":
      return call.operatorReason ? `You were removed from this call: ${call.operatorReason}` : "You were removed from this call.";
    default:
      return call.problem ? `Something went wrong. ${call.problem}` : "Something went wrong.";
  }
}

/**
 * "Left" only for a real leave or the end of the grace; a drop says so.
 * @param {string} they
 * @param {string | null} reason of `peer-left` (`docs/protocol.md`)
 */
function peerLeftText(they, reason) {
  const back = " They can come back with the same link.";
  if (reason === "timeout") return `${they} left: their connection dropped and did not come back in time.${back}`;
  if (reason === "closed") return `${they}'s connection dropped.${back}`;
  if (reason === "stale") return `${they}'s connection went silent and was closed.${back}`;
  return `${they} left the call.`;
}

/** @param {string} room */
export function showCall(room) {
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
  /** @type {HTMLInputElement} */ ($("room-link")).value = link;
  addEventListener("hashchange", () => location.reload());
  const unsupported = browserProblem();
  const problem = unsupported ?? keyProblem(secret);
  const debug = exposeDebug(call);
  showProtection(call, secret === null ? "plain" : problem ? "refused" : "protected");

  const status = $("status");
  const render = () => {
    status.textContent = statusText(call, debug.connectedAt !== null);
    status.dataset.status = call.status;
    $("call-title").textContent = peerName(call) ? `Call with ${peerName(call)}` : "Video call";
    if (call.status === "connected" && debug.connectedAt === null) debug.connectedAt = performance.now();
    if (FINISHED.has(call.status)) finish(call, call.status);
    else if (call.status !== "reconnecting") $("share").hidden = !ALONE.has(call.status);
  };
  call.addEventListener("status", render);

  wireStage(call);
  wireControls(call);
  wireDevices(call);
  wireChat(call, debug);
  wireShortcuts();
  wireShare(link);

  // Nothing starts: no camera, and no room slot taken from the person who sent the link.
  if (unsupported) {
    status.textContent = unsupported;
    status.dataset.status = "unsupported";
    debug.refused = unsupported;
    finish(call, "unsupported");
    return;
  }
  if (problem) {
    status.textContent = `Something went wrong. ${problem}`;
    status.dataset.status = "error";
    debug.refused = problem;
    finish(call, "key");
    return;
  }
  // Closing the tab or going elsewhere leaves the room, so the other person learns at once
  // instead of after the resume grace (a reload joins afresh). A page restored from the
  // back/forward cache has left: load it again to rejoin.
  addEventListener("pagehide", () => call.status !== "ended" && call.hangUp());
  addEventListener("pageshow", (event) => event.persisted && location.reload());
  call.start().catch((error) => {
    status.textContent = `Something went wrong. ${error instanceof Error ? error.message : error}`;
    status.dataset.status = "error";
    finish(call, "error");
  });
}

/**
 * The call is over for this page: camera and microphone off, the controls and the link gone,
 * and one next action (with at most one alternative).
 * @param {Call} call
 * @param {string} why a finished status, "key" for a key link that cannot be used here, or
 *   "unsupported" for a browser that cannot make calls (its one action copies the page's whole
 *   address, a personal ticket included: it is for this person, in another browser)
 */
function finish(call, why) {
  call.releaseMedia();
  const callSection = $("call");
  if (callSection.dataset.finished === why) return;
  callSection.dataset.finished = why;
  // A keyboard user whose button just went (Hang up, say) lands on the next step, not nowhere.
  const hadFocus = callSection.contains(document.activeElement);
  for (const id of ["stage", "media-note", "controls", "devices", "shortcuts", "share", "chat-form", "security-details"]) $(id).hidden = true;
  const localVideo = /** @type {HTMLVideoElement} */ ($("local-video"));
  localVideo.srcObject = null;
  callSection.classList.remove("chat-open");
  // The chat's messages stay readable; an empty chat goes with the call.
  $("chat").hidden = $("chat-log").childElementCount === 0;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});

  const reload = { text: "Rejoin this room", href: location.href, reload: true, copy: false };
  const fresh = { text: "Start a new call", href: newCallPath(), reload: false, copy: false };
  const actions = {
    ended: [fresh, reload],
    full: [fresh, { ...reload, text: "Try again" }],
    replaced: [{ ...reload, text: "Use this tab instead" }],
    error: [reload, fresh],
    key: [fresh],
    unsupported: [{ text: "Copy the link to open it in another browser", href: location.href, reload: false, copy: true }],
  }[why] ?? [fresh];
  const links = [/** @type {HTMLAnchorElement} */ ($("next-primary")), /** @type {HTMLAnchorElement} */ ($("next-secondary"))];
  links.forEach((anchor, i) => {
    const action = actions[i];
    anchor.hidden = !action;
    if (!action) return;
    anchor.textContent = action.text;
    anchor.href = action.href;
    // The same URL with a fragment would only scroll; the key is per page load, so load again.
    anchor.onclick = action.reload
      ? (event) => {
          event.preventDefault();
          location.reload();
        }
      : action.copy
        ? (event) => {
            event.preventDefault();
            copyLink(action.href, $("after-notice"));
          }
        : null;
  });
  $("after-call").hidden = false;
  if (hadFocus) links[0].focus();
}

/**
 * The remote video, what the other person says of their media, and your own preview.
 * @param {Call} call
 */
function wireStage(call) {
  const localVideo = /** @type {HTMLVideoElement} */ ($("local-video"));
  const remoteVideo = /** @type {HTMLVideoElement} */ ($("remote-video"));
  const placeholder = $("remote-placeholder");

  // The remote video shows whenever media flows, also while either side's signaling reconnects.
  // The remote video stays (frozen, the status says why) while ICE is disconnected: no flicker
  // on a blip.
  const showRemote = () => {
    const state = call.pc?.connectionState;
    const flowing = state === "connected" || state === "disconnected";
    const peer = call.peerState;
    const cameraOff = peer?.camera === "off" && !peer.screen;
    // No camera and no screen: a track left from a stopped share shows nothing.
    const noVideo = peer?.camera === "none" && !peer.screen;
    const hasVideo = flowing && Boolean(call.remoteStream?.getVideoTracks().length) && !cameraOff && !noVideo;
    const they = peerName(call) ?? "The other person";
    remoteVideo.hidden = !hasVideo;
    placeholder.hidden = hasVideo;
    placeholder.textContent = !flowing ? "Waiting for the other person…" : cameraOff ? `${they} turned their camera off.` : `${they} has no camera on.`;
    const badges = {
      "peer-muted": peer?.mic === "off",
      "peer-no-mic": peer?.mic === "none",
      "peer-camera-off": cameraOff,
      "peer-sharing": Boolean(peer?.screen),
    };
    for (const [id, shown] of Object.entries(badges)) $(id).hidden = !(flowing && shown);
    $("peer-name").textContent = peerName(call) ?? "";
    $("peer-label").hidden = !flowing || (!peerName(call) && !Object.values(badges).some(Boolean));
  };
  for (const type of ["connectionstate", "status", "peerstate", "channel"]) call.addEventListener(type, showRemote);

  const showLocal = () => {
    const sharing = call.screenTrack;
    const stream = call.media.stream;
    const shown = /** @type {MediaStream | null} */ (localVideo.srcObject);
    const preview = !sharing ? stream : shown?.getTracks()[0] === sharing ? shown : new MediaStream([sharing]);
    if (shown !== preview) localVideo.srcObject = preview;
    localVideo.classList.toggle("mirrored", !sharing);
    localVideo.hidden = !sharing && call.mediaState("video") !== "on";
  };
  call.addEventListener("localstream", showLocal);
  call.addEventListener("screen", showLocal);
  call.addEventListener("mediastate", showLocal);

  call.addEventListener("remotestream", () => {
    if (remoteVideo.srcObject !== call.remoteStream) remoteVideo.srcObject = call.remoteStream;
    if (call.remoteStream) playRemote(remoteVideo);
    showRemote();
  });

  $("unmute-remote").addEventListener("click", () => {
    remoteVideo.muted = false;
    remoteVideo.play().catch(() => {});
    $("unmute-remote").hidden = true;
  });
}

/**
 * A toggle's label says what pressing it does; `aria-pressed` says whether it is on.
 * @param {HTMLButtonElement} control
 * @param {boolean} pressed
 * @param {[string, string]} labels when not pressed, when pressed
 */
function setToggle(control, pressed, [off, on]) {
  control.setAttribute("aria-pressed", String(pressed));
  const label = /** @type {HTMLElement} */ (control.querySelector(".label"));
  label.textContent = pressed ? on : off;
}

/** @param {Call} call */
function wireControls(call) {
  const mic = button("mic");
  const camera = button("camera");
  const screen = button("screen");
  const fullscreen = button("fullscreen");
  const stage = $("stage");
  const canShare = typeof navigator.mediaDevices?.getDisplayMedia === "function";
  screen.hidden = !canShare;
  fullscreen.hidden = !document.fullscreenEnabled;

  call.addEventListener("localstream", () => {
    mic.disabled = !call.hasTrack("audio");
    camera.disabled = !call.hasTrack("video");
    // Without a camera, a shared screen goes out as a video of its own.
    screen.disabled = false;
    const note = $("media-note");
    if (call.media.problem) {
      note.textContent =
        call.media.mode === "none"
          ? `${call.media.problem} You can still join and chat; the other person will not see or hear you.`
          : call.media.problem;
      note.hidden = false;
    }
  });

  const toggle = (/** @type {"audio" | "video"} */ kind) => {
    const enabled = call.mediaState(kind) !== "on";
    call.setEnabled(kind, enabled);
    if (kind === "audio") setToggle(mic, !enabled, ["Mute", "Unmute"]);
    else setToggle(camera, !enabled, ["Camera off", "Camera on"]);
  };
  mic.addEventListener("click", () => toggle("audio"));
  camera.addEventListener("click", () => toggle("video"));

  screen.addEventListener("click", async () => {
    try {
      if (call.screenTrack) await call.stopSharing();
      else await call.shareScreen();
    } catch (error) {
      // The person closed the browser's picker: nothing to say.
      if (!(error instanceof Error && error.name === "NotAllowedError")) notice(`Could not share the screen: ${error instanceof Error ? error.message : error}`);
    }
  });
  call.addEventListener("screen", () => setToggle(screen, call.screenTrack !== null, ["Share screen", "Stop sharing"]));

  fullscreen.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else stage.requestFullscreen().catch((error) => notice(`Could not go fullscreen: ${error.message}`));
  });
  document.addEventListener("fullscreenchange", () => setToggle(fullscreen, document.fullscreenElement === stage, ["Fullscreen", "Exit fullscreen"]));

  button("hang-up").addEventListener("click", () => call.hangUp());
}

/**
 * Choice of camera and microphone; a new choice replaces the track in the call.
 * @param {Call} call
 */
function wireDevices(call) {
  const panel = $("devices");
  const toggleButton = button("devices-toggle");
  const selects = { video: /** @type {HTMLSelectElement} */ ($("camera-select")), audio: /** @type {HTMLSelectElement} */ ($("mic-select")) };
  const fill = async () => {
    const devices = await listDevices();
    for (const kind of /** @type {const} */ (["video", "audio"])) {
      const select = selects[kind];
      const current = call.media.stream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
      select.replaceChildren(
        ...devices[kind].map((device, i) => {
          const option = new Option(device.label || `${kind === "video" ? "Camera" : "Microphone"} ${i + 1}`, device.deviceId);
          option.selected = device.deviceId === current;
          return option;
        }),
      );
      select.disabled = !current || devices[kind].length < 2;
    }
  };
  toggleButton.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    toggleButton.setAttribute("aria-expanded", String(open));
    if (open) fill().catch(() => {});
  });
  navigator.mediaDevices?.addEventListener?.("devicechange", () => !panel.hidden && fill().catch(() => {}));
  for (const kind of /** @type {const} */ (["video", "audio"])) {
    selects[kind].addEventListener("change", async () => {
      const select = selects[kind];
      try {
        await call.useDevice(kind, select.value);
        $("devices-note").textContent = `Now using ${select.selectedOptions[0]?.textContent ?? "the chosen device"}.`;
      } catch (error) {
        $("devices-note").textContent = `Could not switch: ${error instanceof Error ? error.message : error}`;
        fill().catch(() => {});
      }
    });
  }
}

/**
 * Below the wide layout, the chat is a panel opened from the bar, with an unread count.
 * @param {ReturnType<typeof exposeDebug>} debug
 * @returns {(from: "me" | "peer") => void} to call for each message shown
 */
function wireChatPanel(debug) {
  const callSection = $("call");
  const chatInput = /** @type {HTMLInputElement} */ ($("chat-input"));
  const toggleButton = button("chat-toggle");
  const wide = matchMedia(WIDE);
  let unread = 0;
  const showUnread = () => {
    const badge = $("unread");
    badge.hidden = unread === 0;
    badge.textContent = String(unread);
    if (unread) toggleButton.setAttribute("aria-label", `Chat, ${unread} unread`);
    else toggleButton.removeAttribute("aria-label");
  };
  const setOpen = (/** @type {boolean} */ open) => {
    callSection.classList.toggle("chat-open", open);
    toggleButton.setAttribute("aria-expanded", String(open));
    if (open) {
      unread = 0;
      showUnread();
      // Not on a touch screen, where focus would raise the keyboard over the messages.
      if (!chatInput.disabled && matchMedia("(pointer: fine)").matches) chatInput.focus();
    }
  };
  const chatVisible = () => wide.matches || callSection.classList.contains("chat-open");
  toggleButton.addEventListener("click", () => setOpen(!callSection.classList.contains("chat-open")));
  button("chat-close").addEventListener("click", () => {
    setOpen(false);
    toggleButton.focus();
  });
  Object.assign(debug, { setChatOpen: setOpen });
  return (from) => {
    if (from === "peer" && !chatVisible()) {
      unread += 1;
      showUnread();
    }
  };
}

/**
 * Chat and photos.
 * @param {Call} call
 * @param {ReturnType<typeof exposeDebug>} debug
 */
function wireChat(call, debug) {
  const chatInput = /** @type {HTMLInputElement} */ ($("chat-input"));
  const chatSend = button("chat-send");
  const snap = button("snap");
  const arrived = wireChatPanel(debug);

  call.addEventListener("channel", (event) => {
    const open = /** @type {CustomEvent} */ (event).detail.open;
    chatInput.disabled = !open;
    chatSend.disabled = !open;
    snap.disabled = !open || !call.hasTrack("video");
  });

  call.addEventListener("chat", (event) => {
    const { from, text } = /** @type {CustomEvent} */ (event).detail;
    const item = chatItem(from, peerName(call));
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(body);
    arrived(from);
  });

  call.addEventListener("photo", (event) => {
    const { from, blob } = /** @type {CustomEvent} */ (event).detail;
    const item = chatItem(from, peerName(call));
    const image = document.createElement("img");
    image.className = "photo";
    image.alt = from === "me" ? "The photo you sent" : "A photo from the other person";
    image.src = URL.createObjectURL(blob);
    item.append(image);
    if (from === "peer") debug.lastPhoto = { bytes: blob.size, type: blob.type };
    else debug.lastPhotoSent = { bytes: blob.size, type: blob.type };
    arrived(from);
  });

  snap.addEventListener("click", async () => {
    snap.disabled = true;
    try {
      await call.sendPhoto(await captureFrame(/** @type {HTMLVideoElement} */ ($("local-video"))));
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
}

/**
 * Keys for the controls, documented on the page (`#shortcuts`) and in README.md: M mute, V
 * camera, S share screen, F fullscreen, C chat, Escape closes a panel. None hangs up: a stray key
 * must never end a call. Ignored while typing, and with Ctrl, Alt or ⌘ (the browser's keys).
 */
function wireShortcuts() {
  /** @type {Record<string, string>} */
  const keys = { m: "mic", v: "camera", s: "screen", f: "fullscreen" };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = /** @type {HTMLElement | null} */ (event.target);
    if (target?.closest("input, textarea, select, [contenteditable]")) return;
    if ($("call").dataset.finished) return;
    const key = event.key.toLowerCase();
    if (key === "escape") {
      if ($("call").classList.contains("chat-open")) button("chat-close").click();
      else if (!$("devices").hidden) button("devices-toggle").click();
      return;
    }
    if (key === "c") {
      event.preventDefault();
      if (matchMedia(WIDE).matches) /** @type {HTMLInputElement} */ ($("chat-input")).focus();
      else button("chat-toggle").click();
      return;
    }
    const id = keys[key];
    if (!id) return;
    const control = button(id);
    if (control.hidden || control.disabled) return;
    event.preventDefault();
    control.click();
  });
}

/** @param {string} link */
function wireShare(link) {
  button("copy-link").addEventListener("click", () => copyLink(link, $("copy-notice"), /** @type {HTMLInputElement} */ ($("room-link"))));
}

/**
 * Copies `link` to the clipboard and says so in `said`. Without clipboard access, selects it in
 * `field` for the person to copy, or says where else it is.
 * @param {string} link
 * @param {HTMLElement} said
 * @param {HTMLInputElement} [field]
 */
async function copyLink(link, said, field) {
  try {
    await navigator.clipboard.writeText(link);
    said.textContent = "Link copied.";
  } catch {
    field?.select();
    said.textContent = field ? "Press Ctrl+C (or ⌘C) to copy the selected link." : "Copy the link from the address bar.";
  }
}

/**
 * Says whether the call is end-to-end protected, shows the safety code once connected, and warns
 * when the other side's messages could not be verified. The explanation is folded behind the
 * summary line, which carries the safety code.
 * @param {Call} call
 * @param {"protected" | "plain" | "refused"} mode a key link, a link without a key, or a key
 *   link that cannot be used here (the status says why)
 */
function showProtection(call, mode) {
  $("security").dataset.protected = String(mode !== "plain");
  $("e2e-summary").textContent = mode === "plain" ? "Not end-to-end protected" : "End-to-end protected";
  $("e2e-state").textContent = {
    protected: "End-to-end protected: the server relays this call's setup without being able to read it or change it unnoticed.",
    plain:
      "This call is not end-to-end protected: its link has no key, so the server can read the call's setup. Start a new call for a protected link, and compare the safety code." +
      (cryptoAvailable() ? "" : " This page is not on a secure connection (https), so there is no safety code either."),
    refused: "Nothing was sent: a link with a key is never used for an unprotected call.",
  }[mode];
  const showCode = () => {
    const code = call.pc?.connectionState === "connected" ? call.safetyCode : null;
    $("safety-code").textContent = code ?? "";
    $("safety-short").hidden = !code;
    $("safety").hidden = !code;
  };
  call.addEventListener("safetycode", showCode);
  call.addEventListener("connectionstate", showCode);
  call.addEventListener("e2e-error", (event) => {
    const { reason } = /** @type {CustomEvent} */ (event).detail;
    const alert = $("e2e-alert");
    // The keys differ: the clearest thing to say, and what both people see; it stays.
    if (alert.dataset.reason === KEY_MISMATCH && !alert.hidden) return;
    alert.dataset.reason = reason;
    alert.textContent =
      reason === KEY_MISMATCH
        ? KEY_MISMATCH_TEXT
        : reason === "unexpected-envelope"
          ? "The other person joined with an end-to-end protected link, but yours has no key. Open the full link they sent, including the part after #."
          : reason === "replayed" || reason === "reflected"
            ? "Some messages came again, or came back as if from you, and were ignored: the server is interfering."
            : "Messages from the other side could not be verified and were not used: the link may be wrong or altered (each of you opened a different one), or the server is interfering.";
    alert.hidden = false;
  });
  call.addEventListener("e2e-confirmed", () => showKeyConfirmed());
}

const KEY_MISMATCH = "key-mismatch";
const KEY_MISMATCH_TEXT =
  "Your link and the other person's link do not have the same key (or one of them has none), so this call cannot be set up. Both of you need to open the same link: whoever started the call can send it again, including the part after #. (If you did open the same link, something between you is altering the call's messages.)";

/** The keys match after all (a hello came late): a key-mismatch warning no longer holds. */
function showKeyConfirmed() {
  const alert = $("e2e-alert");
  if (alert.dataset.reason === KEY_MISMATCH) alert.hidden = true;
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

/**
 * @param {"me" | "peer"} from
 * @param {string | null} name the other person's name, when known
 */
function chatItem(from, name) {
  const log = $("chat-log");
  const item = document.createElement("li");
  item.className = `chat-item from-${from}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = from === "me" ? "You" : (name ?? "Them");
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
      return call.peerIdentity;
    },
    /** What the other person last said of their media (`{mic, camera, screen}`), or null. */
    get peerState() {
      return call.peerState;
    },
    /** Camera, microphone and screen tracks of ours still capturing. */
    get liveTracks() {
      return call.liveTracks;
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
    /** With a key: whether the other side's key is ours (`true`), not (`false`), or unknown. */
    get keyConfirmed() {
      return call.signaling?.keyConfirmed ?? null;
    },
    /** Why the page did not join (a link whose key cannot be used here). @type {string | null} */
    refused: null,
    /** The code of the server's refusal of our join (`duet.js` `refused`), or null. */
    get refusalCode() {
      return call.refusal?.code ?? null;
    },
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
