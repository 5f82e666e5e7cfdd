// Run by test/package.test.mjs from a project that installed the duet-signaling tarball: two
// peers in Node.js with the `ws` package and no sessionStorage join the room, get `ready`,
// relay both ways and leave. Prints what each side saw as one JSON line.
// Usage: node node-peers.mjs BASE_URL ROOM

import WebSocket from "ws";
import { connect } from "duet-signaling";

const [baseUrl, room] = process.argv.slice(2);

/** The detail of the next `type` event of `connection`. */
const next = (connection, type) => new Promise((resolve) => connection.addEventListener(type, (e) => resolve(e.detail), { once: true }));

const a = connect(room, { baseUrl, WebSocket });
const created = await next(a, "created");
const b = connect(room, { baseUrl, WebSocket });
const [joined, readyA, readyB] = await Promise.all([next(b, "joined"), next(a, "ready"), next(b, "ready")]);
const initiates = { a: a.isInitiator, b: b.isInitiator };
const atB = next(b, "message");
const atA = next(a, "message");
a.send({ from: "a", list: [1, "two", null] });
b.send("from b");
const [messageAtB, messageAtA] = await Promise.all([atB, atA]);
const peerLeft = next(a, "peer-left");
const bClosed = next(b, "close");
b.leave();
const [left, closed] = await Promise.all([peerLeft, bClosed]);
const aClosed = next(a, "close");
a.leave();
console.log(
  JSON.stringify({
    created,
    joined,
    readyA,
    readyB,
    messageAtA,
    messageAtB,
    left,
    closed,
    aClosed: await aClosed,
    ids: { a: a.clientId, b: b.clientId },
    initiates,
  }),
);
