// docs/access.md's ticket examples, run as they are written: the Node one (jose) always, the
// Python one (PyJWT) where PyJWT is installed (.ci/run installs it). Each mints a ticket that a
// ticketed server accepts, with the identity it names.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROOT, connect, nextFrame, roomName, startServer, terminateAll } from "./helpers/miniflare.mjs";

const SECRET = "docs-example-secret-0123456789abcdefghij";
const DOC = readFileSync(join(ROOT, "docs/access.md"), "utf8");

/** The fenced code block after `<!-- example: NAME -->` in docs/access.md. */
function example(name) {
  const match = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  assert.ok(match, `docs/access.md has no ${name} example`);
  return match[1];
}

async function joinsWith(server, ticket, room, sub, name) {
  const ws = await connect(server.ws(`/ws/${room}`), { protocols: ["duet.v1", `duet.ticket.${ticket}`] });
  const welcome = await nextFrame(ws);
  assert.equal(welcome.type, "created");
  assert.deepStrictEqual(welcome.identity, { sub, name });
  terminateAll(ws);
}

describe("docs/access.md examples", () => {
  let server;
  const files = [];
  before(async () => {
    server = await startServer({ vars: { JOIN_SECRET: SECRET } });
  });
  after(() => {
    for (const file of files) rmSync(file, { force: true });
    return server?.dispose();
  });

  /**
   * Writes example `name` to `file` (inside the repository, so `import "jose"` resolves from its
   * node_modules), runs it with `interpreter` to mint a ticket for a fresh room, and joins with it.
   */
  async function mintAndJoin(name, interpreter, file, sub, displayName) {
    const path = join(ROOT, "test", file);
    files.push(path);
    writeFileSync(path, example(name));
    const room = roomName(`doc-${name}`);
    const ticket = execFileSync(interpreter, [path, room, sub, displayName], {
      env: { ...process.env, JOIN_SECRET: SECRET },
      encoding: "utf8",
    }).trim();
    await joinsWith(server, ticket, room, sub, displayName);
  }

  test("the Node example (jose) mints a ticket the server accepts", () =>
    mintAndJoin("node", "node", ".mint-ticket.example.mjs", "user-42", "Ada"));

  test("the Python example (PyJWT) mints a ticket the server accepts", async (t) => {
    if (spawnSync("python3", ["-c", "import jwt"]).status !== 0) {
      t.skip("PyJWT is not installed (pip install pyjwt); .ci/run installs it");
      return;
    }
    await mintAndJoin("python", "python3", ".mint_ticket_example.py", "user-7", "Grace");
  });
});
