// Run by test/package.test.mjs from a project that installed the duet-signaling tarball: the
// steps of docs/client.md "End-to-end encryption", in Node.js with `ws`. A secret from
// `newSecret()` (the `duet-signaling/e2e` entry), both peers connect with it as `key`, and a
// message crosses encrypted; a peer with another key cannot read it. Prints one JSON line.
// Usage: node node-keyed.mjs BASE_URL ROOM

import WebSocket from "ws";
import { connect } from "duet-signaling";
import { isSecret, newSecret } from "duet-signaling/e2e";

const [baseUrl, room] = process.argv.slice(2);

/** The detail of the next `type` event of `connection`. */
const next = (connection, type) => new Promise((resolve) => connection.addEventListener(type, (e) => resolve(e.detail), { once: true }));

/** Two peers with `keys` in a room of their own; `a` sends, and what `b` got is returned. */
async function exchange(name, [keyA, keyB]) {
  const a = connect(name, { baseUrl, WebSocket, key: keyA });
  await next(a, "created");
  const b = connect(name, { baseUrl, WebSocket, key: keyB });
  await Promise.all([next(a, "ready"), next(b, "ready")]);
  const got = Promise.race([next(b, "message").then((m) => ({ message: m.data })), next(b, "e2e-error").then((e) => ({ dropped: e.reason }))]);
  a.send({ text: "only the two of us can read this" });
  const result = { ...(await got), encrypted: [a.encrypted, b.encrypted] };
  b.leave();
  a.leave();
  return result;
}

const secret = newSecret();
console.log(
  JSON.stringify({
    secretIsValid: isSecret(secret),
    secretLength: secret.length,
    same: await exchange(`${room}-same`, [secret, secret]),
    other: await exchange(`${room}-other`, [secret, newSecret()]),
  }),
);
