// Type-checked with --strict against the installed duet-signaling package: the documented
// uses of the API, with every event's detail typed by its name.
import { CloseCode, connect, ErrorCode, RefusalCode, type DuetConnection, type PeerLeftFrame } from "duet-signaling";
import { Negotiator } from "duet-signaling/negotiation";
import { isSecret, newSecret } from "duet-signaling/e2e";
import { safetyCode } from "duet-signaling/sas";

// An end-to-end protected call: a fresh secret, shared in the link's fragment.
const secret: string = newSecret();
if (isSecret(secret)) connect("my-room", { baseUrl: "https://duet.example", key: secret });
const link = `https://app.example/call#k=${secret}`;
console.log(link, (pc: RTCPeerConnection): Promise<string | null> => safetyCode(pc));

const duet: DuetConnection = connect("my-room", { baseUrl: "https://duet.example", storage: null, backoff: { initialDelayMs: 100 } });

duet.addEventListener("created", (e) => {
  const token: string = e.detail.resumeToken;
  const limit: number | undefined = e.detail.maxMessageBytes;
  console.log(token, limit);
});
duet.addEventListener("joined", (e) => console.log(e.detail.resumed, e.detail.peers.length));
duet.addEventListener("ready", (e) => {
  const initiator: string = e.detail.initiator;
  const pc = new RTCPeerConnection({ iceServers: duet.iceServers });
  const negotiator = new Negotiator(pc, { polite: initiator !== duet.clientId, send: (signal) => duet.send(signal) });
  duet.addEventListener("message", (m) => negotiator.handle(m.detail.data as Parameters<Negotiator["handle"]>[0]));
});
duet.addEventListener("peer-left", (e) => {
  const reason: PeerLeftFrame["reason"] = e.detail.reason;
  console.log(reason === "timeout" ? "the other peer went away" : "the other peer left");
});
duet.addEventListener("error", (e) => {
  if (e.detail.code === ErrorCode.NO_PEER) console.log("nobody to receive", e.detail.message);
});
duet.addEventListener("reconnecting", (e) => console.log(e.detail.attempt, e.detail.delayMs));
duet.addEventListener("reconnected", (e) => console.log(e.detail.resumed, e.detail.clientId));
duet.addEventListener("close", (e) => {
  if (e.detail.code === CloseCode.ROOM_FULL) console.log("the room is full");
});
duet.addEventListener("frame", (e) => console.log(e.detail.type));
// Fresh TURN credentials during a long call, for the peer connection's next ICE restart.
duet.addEventListener("ice-servers", (e) => {
  const expiresAt: number | null = e.detail.expiresAt;
  const pc = new RTCPeerConnection({ iceServers: duet.iceServers });
  pc.setConfiguration({ ...pc.getConfiguration(), iceServers: e.detail.iceServers });
  const asked: boolean = duet.refreshIceServers();
  console.log(expiresAt, duet.iceServersExpireAt, asked);
});

const sent: boolean = duet.send({ any: ["json", 1, null] });
const state: "connecting" | "open" | "reconnecting" | "closed" = duet.state;
const initiates: boolean | null = duet.isInitiator;
console.log(sent, state, initiates, duet.maxMessageBytes);
duet.leave();

// End-to-end encryption: the link's secret as `key`; failures have their own typed event.
const secure = connect("my-room", { baseUrl: "https://duet.example", key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" });
secure.addEventListener("e2e-error", (e) => {
  const reason: "not-encrypted" | "unexpected-envelope" | "malformed" | "undecryptable" | "replayed" | "reflected" | "key-mismatch" =
    e.detail.reason;
  const encrypted: boolean = secure.encrypted;
  console.log(reason, e.detail.from, e.detail.message, encrypted);
});
// Key confirmation: within 5 s of ready, whether the other side's link has the same key.
secure.addEventListener("e2e-confirmed", (e) => {
  const peer: string = e.detail.peer;
  const confirmed: boolean | null = secure.keyConfirmed;
  console.log(peer, confirmed);
});

// Join tickets: a string, or a function called before every (re)connect; identities on frames.
const ticketed = connect("my-room", { baseUrl: "https://duet.example", ticket: async () => "header.payload.signature" });
ticketed.addEventListener("joined", (e) => {
  const them: string | undefined = e.detail.peerIdentities?.[e.detail.peers[0]]?.name;
  console.log(them, e.detail.identity?.sub, ticketed.identity?.sub, ticketed.peerIdentities);
});
ticketed.addEventListener("peer-joined", (e) => console.log(e.detail.identity?.sub));
// A join the server refused, in-band: why, and when to try again.
ticketed.addEventListener("refused", (e) => {
  const retryAfter: number | undefined = e.detail.retryAfter;
  if (e.detail.code === RefusalCode.TICKET_EXPIRED) console.log("ask the backend for a new ticket", e.detail.message);
  console.log(retryAfter);
});
ticketed.addEventListener("close", (e) => {
  if (e.detail.code === CloseCode.TICKET_REFUSED || e.detail.code === CloseCode.FORBIDDEN) console.log("not allowed in");
});
