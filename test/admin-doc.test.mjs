// docs/admin.md's examples, run as written against the real Worker: the curl commands with bash
// and the Node module imported as a file, each on a call of Ann and Ben in the docs' room. Also
// checks docs/admin-openapi.json with an OpenAPI 3.1 validator.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { SignJWT } from "jose";
import { OPENAPI, OPENAPI_PATH, assertDocumented } from "./helpers/admin.mjs";
import { ROOT, closeFrame, connect, expectFrame, nextFrame, startServer, terminateAll } from "./helpers/miniflare.mjs";

const JOIN_SECRET = "a-long-enough-secret-for-hs256-0123456789";
const ADMIN_SECRET = "docs-admin-secret";
const ROOM = "maple-otter-42";
const DOC = readFileSync(join(ROOT, "docs/admin.md"), "utf8");
const example = (name) => new RegExp(`<!-- example: ${name} -->\\s*\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(DOC)?.[1];

/** Ann and Ben in `room` with tickets: their sockets and client ids. */
async function call(server, room) {
  const open = async (sub) => {
    const ticket = await new SignJWT({ room })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(JOIN_SECRET));
    const ws = await connect(server.ws(`/ws/${room}`), { protocols: ["duet.v1", `duet.ticket.${ticket}`] });
    return { ws, id: (await nextFrame(ws)).clientId };
  };
  const ann = await open("ann");
  const ben = await open("ben");
  for (const type of ["peer-joined", "ready"]) assert.equal((await nextFrame(ann.ws)).type, type);
  assert.equal((await nextFrame(ben.ws)).type, "ready");
  return { ann, ben };
}

test("docs/admin-openapi.json is a valid OpenAPI 3.1 document", async () => {
  const validator = new Validator();
  const result = await validator.validate(OPENAPI_PATH);
  assert.deepEqual(result, { valid: true });
  assert.equal(validator.version, "3.1");
  // The validator is not vacuous: a document without its info object is refused.
  const broken = structuredClone(OPENAPI);
  delete broken.info;
  assert.equal((await new Validator().validate(broken)).valid, false);
  assert.deepEqual(Object.keys(OPENAPI.paths).sort(), ["/admin/rooms/{room}", "/admin/rooms/{room}/end", "/admin/rooms/{room}/kick"]);
});

describe("docs/admin.md's examples", () => {
  let server;
  before(async () => {
    server = await startServer({ vars: { ADMIN_SECRET, JOIN_SECRET } });
  });
  after(() => server?.dispose());

  test("the curl commands: who is in, Ann removed and banned, the call ended", async () => {
    const script = example("curl");
    assert.ok(script, "docs/admin.md has no curl example");
    const { ann, ben } = await call(server, ROOM);
    const env = { ...process.env, DUET_URL: server.origin, ADMIN_SECRET };
    const { stdout } = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", script], { env });
    const [room, kicked, ended] = stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(room.peers.map((p) => p.identity.sub), ["ann", "ben"]);
    assert.deepEqual(kicked, { kicked: true });
    assert.deepEqual(ended, { ended: 1 });
    assertDocumented("GET", `/admin/rooms/${ROOM}`, 200, room);
    assertDocumented("POST", `/admin/rooms/${ROOM}/kick`, 200, kicked);
    assertDocumented("POST", `/admin/rooms/${ROOM}/end`, 200, ended);
    await expectFrame(ann.ws, { type: "kicked", room: ROOM, reason: "Abusive language" });
    assert.deepEqual(await closeFrame(ann.ws), { code: 4403, reason: "kicked" });
    await expectFrame(ben.ws, { type: "peer-left", room: ROOM, clientId: ann.id, reason: "kicked" });
    await expectFrame(ben.ws, { type: "ended", room: ROOM, reason: "Your session time is up" });
    assert.deepEqual(await closeFrame(ben.ws), { code: 4410, reason: "ended" });
    terminateAll(ann.ws, ben.ws);
  });

  test("the Node module: the same three calls", async () => {
    const code = example("node");
    assert.ok(code, "docs/admin.md has no Node example");
    const room = "maple-otter-43";
    const { ann, ben } = await call(server, room);
    process.env.DUET_URL = server.origin;
    process.env.ADMIN_SECRET = ADMIN_SECRET;
    const file = join(ROOT, "test", ".admin.example.mjs");
    writeFileSync(file, code);
    let admin;
    try {
      admin = await import(file);
    } finally {
      rmSync(file, { force: true });
    }
    const { peers } = await admin.inspectRoom(room);
    assert.deepEqual(peers.map((p) => p.clientId), [ann.id, ben.id]);
    assert.deepEqual(await admin.kick(room, { clientId: ann.id }), { kicked: true });
    await expectFrame(ann.ws, { type: "kicked", room, reason: "" });
    await assert.rejects(admin.kick(room, { clientId: ann.id }), /404 not-found/);
    assert.deepEqual(await admin.endCall(room, "bye"), { ended: 1 });
    await expectFrame(ben.ws, { type: "peer-left", room, clientId: ann.id, reason: "kicked" });
    await expectFrame(ben.ws, { type: "ended", room, reason: "bye" });
    terminateAll(ann.ws, ben.ws);
  });
});
