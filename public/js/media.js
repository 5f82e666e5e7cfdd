// @ts-check
/**
 * Camera and microphone, with a fallback: when both cannot be had, try one of them, and when
 * the person said no (or there are no devices at all) join with the data channel only.
 * @module media
 */

/**
 * @typedef {object} LocalMedia
 * @property {MediaStream | null} stream
 * @property {"audio-video" | "video" | "audio" | "none"} mode
 * @property {string | null} problem why some media is missing, for the person to read
 */

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" };

/**
 * @param {(constraints: MediaStreamConstraints) => Promise<MediaStream>} [getUserMedia]
 * @returns {Promise<LocalMedia>}
 */
export async function acquireMedia(getUserMedia) {
  const gum = getUserMedia ?? navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
  if (!gum) return { stream: null, mode: "none", problem: "This browser cannot use a camera here (a secure https page is needed)." };
  /** @type {[MediaStreamConstraints, LocalMedia["mode"]][]} */
  const attempts = [
    [{ audio: true, video: VIDEO }, "audio-video"],
    [{ video: VIDEO }, "video"],
    [{ audio: true }, "audio"],
  ];
  let problem = "No camera or microphone was found.";
  for (const [constraints, mode] of attempts) {
    try {
      const stream = await gum(constraints);
      const partial = mode === "audio-video" ? null : mode === "video" ? "No microphone available." : "No camera available.";
      return { stream, mode, problem: partial };
    } catch (error) {
      const name = error instanceof Error ? error.name : "";
      if (name === "NotAllowedError" || name === "SecurityError") {
        // The person (or a policy) said no: asking again for less would only nag.
        return { stream: null, mode: "none", problem: "Camera and microphone are blocked." };
      }
      if (name === "NotReadableError") problem = "The camera or microphone is in use by another application.";
    }
  }
  return { stream: null, mode: "none", problem };
}

/**
 * The cameras and microphones this page may use, by kind. Labels are empty until the person
 * has allowed some media once.
 * @returns {Promise<{audio: MediaDeviceInfo[], video: MediaDeviceInfo[]}>}
 */
export async function listDevices() {
  const devices = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
  return {
    audio: devices.filter((d) => d.kind === "audioinput" && d.deviceId),
    video: devices.filter((d) => d.kind === "videoinput" && d.deviceId),
  };
}

/**
 * One new track from the device `deviceId`, with the same settings as the first capture.
 * @param {"audio" | "video"} kind
 * @param {string} deviceId
 * @param {(constraints: MediaStreamConstraints) => Promise<MediaStream>} [getUserMedia]
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openDevice(kind, deviceId, getUserMedia) {
  const gum = getUserMedia ?? navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  const device = { deviceId: { exact: deviceId } };
  const stream = await gum(kind === "video" ? { video: { ...VIDEO, ...device } } : { audio: device });
  const [track] = stream.getTracks();
  if (!track) throw new Error(`no ${kind} track from that device`);
  return track;
}

/**
 * A still of what `video` shows, as an image no wider than `maxWidth`.
 * @param {HTMLVideoElement} video
 * @param {{maxWidth?: number, type?: string, quality?: number}} [options]
 * @returns {Promise<Blob>}
 */
export function captureFrame(video, { maxWidth = 640, type = "image/jpeg", quality = 0.85 } = {}) {
  const { videoWidth, videoHeight } = video;
  if (!videoWidth || !videoHeight) return Promise.reject(new Error("the video has no frame yet"));
  const scale = Math.min(1, maxWidth / videoWidth);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(videoWidth * scale);
  canvas.height = Math.round(videoHeight * scale);
  const context = canvas.getContext("2d");
  if (!context) return Promise.reject(new Error("no 2D canvas"));
  context.drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("could not encode the photo"))), type, quality),
  );
}
