// The client as the npm package duet-signaling (public/js/package.json): `npm pack` makes a
// tarball of the very files the app serves, plus declarations that `prepack` generates from the
// JSDoc. A fresh project installs it offline, type-checks a strict TypeScript file that uses the
// API and one that must fail, and runs a Node.js script (with `ws`, without sessionStorage)
// against the Worker under Miniflare. The fixtures are in test/package/.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { ROOT, roomName, serverClose, startServer, tempDir } from "./helpers/miniflare.mjs";

const run = promisify(execFile);
const PACKAGE_DIR = join(ROOT, "public", "js");
const FIXTURES = join(ROOT, "test", "package");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

/**
 * The tarball of the `ws` version the repository pins, which `npm ci` put in npm's cache: by
 * its URL it installs offline (by name, npm would want the registry's package list).
 */
async function wsTarball() {
  const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).devDependencies.ws;
  const { stdout } = await run("npm", ["config", "get", "registry"]);
  return new URL(`ws/-/ws-${version}.tgz`, stdout.trim().replace(/\/?$/, "/")).href;
}

/**
 * Type-checks, in one strict tsc run from the project: `files` of the project (against the
 * installed package) and the app's own modules. Resolves with tsc's errors as
 * `{file, line, code, text}` (`file` relative to the project, or the module's name).
 */
async function typeCheck(projectDir, files) {
  const appModules = readdirSync(PACKAGE_DIR).filter((name) => name.endsWith(".js"));
  const config = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      allowJs: true,
      checkJs: true,
      target: "es2022",
      module: "nodenext",
      moduleResolution: "nodenext",
      lib: ["es2022", "dom"],
      types: [],
    },
    files: [...files, ...appModules.map((name) => join(PACKAGE_DIR, name))],
  };
  writeFileSync(join(projectDir, "tsconfig.json"), JSON.stringify(config));
  const output = await run(process.execPath, [TSC, "-p", "tsconfig.json", "--pretty", "false"], { cwd: projectDir }).then(
    ({ stdout }) => stdout,
    (error) => error.stdout,
  );
  return [...output.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/gm)].map(([, file, line, code, text]) => ({
    file: file.startsWith("..") || file.startsWith("/") ? file.split("/").at(-1) : file,
    line: Number(line),
    code,
    text,
  }));
}

describe("the duet-signaling package", { timeout: 180_000 }, () => {
  const project = tempDir("duet-package-");
  /** @type {{files: {path: string}[], name: string, filename: string}} */
  let packed;
  /** @type {{file: string, line: number, code: string, text: string}[]} */
  let typeErrors;
  let server;

  before(async () => {
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", project.path], { cwd: PACKAGE_DIR });
    [packed] = JSON.parse(stdout.slice(stdout.indexOf("[")));
    writeFileSync(join(project.path, "package.json"), JSON.stringify({ name: "duet-package-test", private: true, type: "module" }));
    const install = ["install", "--offline", "--no-audit", "--no-fund", join(project.path, packed.filename), await wsTarball()];
    await run("npm", install, { cwd: project.path });
    for (const fixture of ["uses-api.ts", "misuses-api.ts", "node-peers.mjs", "node-keyed.mjs"]) {
      copyFileSync(join(FIXTURES, fixture), join(project.path, fixture));
    }
    typeErrors = await typeCheck(project.path, ["uses-api.ts", "misuses-api.ts"]);
    server = await startServer();
  });

  after(async () => {
    await server?.dispose();
    project.remove();
  });

  test("the tarball holds the served files unchanged, their declarations and the README", () => {
    assert.equal(packed.name, "duet-signaling");
    const files = packed.files.map((f) => f.path).sort();
    assert.deepEqual(files, [
      "README.md",
      "backoff.js",
      "duet.js",
      "e2e.js",
      "negotiation.js",
      "package.json",
      "sas.js",
      "types/backoff.d.ts",
      "types/duet.d.ts",
      "types/e2e.d.ts",
      "types/negotiation.d.ts",
      "types/sas.d.ts",
    ]);
    for (const file of ["duet.js", "backoff.js", "e2e.js", "negotiation.js", "sas.js"]) {
      const installed = readFileSync(join(project.path, "node_modules", "duet-signaling", file), "utf8");
      assert.equal(installed, readFileSync(join(PACKAGE_DIR, file), "utf8"), `${file} is the file the app serves`);
    }
  });

  test("a strict TypeScript file that uses the API type-checks", () => {
    assert.deepEqual(typeErrors.filter((e) => e.file === "uses-api.ts"), []);
  });

  test("misspelled events, fields and options fail to type-check, each where it is", () => {
    const expected = readFileSync(join(FIXTURES, "misuses-api.ts"), "utf8")
      .split("\n")
      .flatMap((line, i) => {
        const marked = /\/\/ error (TS\d+)$/.exec(line);
        return marked ? [`${i + 1} ${marked[1]}`] : [];
      });
    assert.ok(expected.length >= 6);
    const errors = typeErrors.filter((e) => e.file === "misuses-api.ts");
    assert.deepEqual(
      errors.map((e) => `${e.line} ${e.code}`),
      expected,
      errors.map((e) => `${e.line}: ${e.text}`).join("\n"),
    );
  });

  test("in Node.js with ws and no sessionStorage: join, ready, relay both ways, leave", async () => {
    const room = roomName("package");
    const { stdout } = await run(process.execPath, ["node-peers.mjs", server.origin, room], { cwd: project.path, timeout: 30_000 });
    const seen = JSON.parse(stdout);
    const { a, b } = seen.ids;
    assert.equal(seen.created.type, "created");
    assert.equal(seen.created.clientId, a);
    assert.deepEqual(seen.joined.peers, [a]);
    const ready = { type: "ready", room, initiator: a, peers: [a, b] };
    assert.deepEqual(seen.readyA, ready);
    assert.deepEqual(seen.readyB, ready);
    assert.deepEqual(seen.initiates, { a: true, b: false });
    assert.deepEqual(seen.messageAtB, { type: "message", from: a, data: { from: "a", list: [1, "two", null] } });
    assert.deepEqual(seen.messageAtA, { type: "message", from: b, data: "from b" });
    assert.deepEqual(seen.left, { type: "peer-left", room, clientId: b, reason: "leave" });
    assert.deepEqual(seen.closed, serverClose("LEFT"));
    assert.deepEqual(seen.aClosed, serverClose("LEFT"));
  });

  test("end to end as docs/client.md says: newSecret() from duet-signaling/e2e, then connect with the key", async () => {
    const room = roomName("package-e2e");
    const { stdout } = await run(process.execPath, ["node-keyed.mjs", server.origin, room], { cwd: project.path, timeout: 30_000 });
    const seen = JSON.parse(stdout);
    assert.equal(seen.secretIsValid, true);
    assert.equal(seen.secretLength, 43);
    assert.deepEqual(seen.same, { message: { text: "only the two of us can read this" }, encrypted: [true, true] });
    // A wrong key is found by the key confirmation first (docs/e2e.md): its hello does not open.
    assert.deepEqual(seen.other, { dropped: "key-mismatch", encrypted: [true, true] });
  });

  test("the app's modules type-check with --strict too", () => {
    assert.deepEqual(typeErrors.filter((e) => !e.file.endsWith(".ts")), []);
  });
});
