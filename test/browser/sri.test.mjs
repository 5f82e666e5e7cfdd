// The Subresource Integrity recipe of docs/e2e.md ("Who is still trusted"), as written there, in
// Chromium and Firefox. Two loopback origins: one serves the client's modules (public/js, with
// `Access-Control-Allow-Origin: *` as a Duet server does), optionally with a changed `e2e.js`;
// the other serves a page made of the docs' import map, whose hashes come from running the docs'
// shell recipe on a copy of public/js. The page imports `duet.js` and `negotiation.js` as the
// docs' example does and reports what ran:
//
// - the honest modules load under the map;
// - a changed `e2e.js`, which only `duet.js` imports, stops the import and never runs;
// - without the map, an `integrity` attribute on `<script type="module">` does not protect
//   `e2e.js` (which is why the docs say so);
// - under a Content-Security-Policy, the map allowed by its hash still protects, and a map the
//   policy blocks is ignored, so the changed module runs (which is why the docs say to allow it);
// - the map names every module that `duet.js` and `negotiation.js` import, transitively.
//
// No Worker is needed: the page's origin stands for "your own site", the modules' origin for the
// Duet server. Waits are on the page's result, never sleeps.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { closePage, launchChromium, launchFirefox, openPage, ROOT, until } from "../helpers/browser.mjs";

const JS_DIR = join(ROOT, "public", "js");
const DOCS = readFileSync(join(ROOT, "docs", "e2e.md"), "utf8");
/** What the changed `e2e.js` does besides its job: a mark the page can see. */
const TAMPERING = "\nglobalThis.tampered = true;\n";

/** The fenced code block of `language` in docs/e2e.md that contains `marker`, dedented. */
function docsBlock(language, marker) {
  for (const [, indent, lang, body] of DOCS.matchAll(/^( *)```(\w+)\n([\s\S]*?)^\1```$/gm)) {
    if (lang !== language || !body.includes(marker)) continue;
    return body
      .split("\n")
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      .join("\n");
  }
  throw new Error(`docs/e2e.md has no ${language} block with ${marker}`);
}

/** The docs' hash recipe, run on a copy of public/js as if it were the unpacked tarball. */
function recipeHashes() {
  const recipe = docsBlock("sh", "openssl dgst -sha384");
  const work = mkdtempSync(join(tmpdir(), "duet-sri-"));
  try {
    mkdirSync(join(work, "package"));
    for (const name of readdirSync(JS_DIR).filter((n) => n.endsWith(".js"))) copyFileSync(join(JS_DIR, name), join(work, "package", name));
    // Everything but fetching and unpacking the tarball, which the copy stands for.
    const script = recipe
      .split("\n")
      .filter((line) => !line.startsWith("npm pack"))
      .join("\n");
    const output = execFileSync("bash", ["-euo", "pipefail", "-c", script], { cwd: work, encoding: "utf8" });
    return new Map(output.trim().split("\n").map((line) => /** @type {[string, string]} */ (line.split(" "))));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** sha384 integrity metadata of `bytes`, computed independently of the recipe. */
const sri = (/** @type {Buffer} */ bytes) => `sha384-${createHash("sha384").update(bytes).digest("base64")}`;

/** The modules that `names` import, transitively, by file name (the client's imports are all `./x.js`). */
function moduleGraph(names) {
  const seen = new Set();
  const visit = (/** @type {string} */ name) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const [, imported] of readFileSync(join(JS_DIR, name), "utf8").matchAll(/^import [^;]*? from "\.\/([\w-]+\.js)";/gm)) visit(imported);
  };
  names.forEach(visit);
  return [...seen].sort();
}

describe("Subresource Integrity for the client modules (docs/e2e.md)", () => {
  /** @type {{chromium: any, firefox: any}} */
  const browsers = { chromium: null, firefox: null };
  let tamper = false;
  let html = "";
  let csp = "";
  /** @type {import("node:http").Server[]} */
  const servers = [];
  let modulesOrigin = "";
  let pageOrigin = "";
  /** @type {Map<string, string>} */
  let hashes;

  /** Starts a loopback HTTP server on a free port; resolves with its origin. */
  async function serve(/** @type {import("node:http").RequestListener} */ handler) {
    const server = createServer(handler);
    servers.push(server);
    await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
    return `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (server.address()).port}`;
  }

  before(async () => {
    browsers.chromium = await launchChromium();
    browsers.firefox = await launchFirefox();
    hashes = recipeHashes();
    modulesOrigin = await serve((request, response) => {
      const name = new URL(request.url ?? "/", "http://x").pathname.replace(/^\/js\//, "");
      if (!/^[\w-]+\.js$/.test(name)) return void response.writeHead(404).end();
      let body = readFileSync(join(JS_DIR, name));
      if (tamper && name === "e2e.js") body = Buffer.concat([body, Buffer.from(TAMPERING)]);
      response.writeHead(200, { "content-type": "text/javascript", "access-control-allow-origin": "*", "cache-control": "no-store" });
      response.end(body);
    });
    pageOrigin = await serve((request, response) => {
      if (request.url === "/probe.js") {
        // The probe for pages with a Content-Security-Policy, which allows no inline module.
        response.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" });
        return void response.end(`Promise.all([import("${modulesOrigin}/js/duet.js"), import("${modulesOrigin}/js/negotiation.js")])
          .then(() => (window.result = "loaded"), () => (window.result = "refused"));`);
      }
      response.writeHead(200, { "content-type": "text/html", "cache-control": "no-store", ...(csp ? { "content-security-policy": csp } : {}) });
      response.end(html);
    });
  });

  after(async () => {
    await browsers.chromium?.close();
    await browsers.firefox?.close();
    for (const server of servers) server.close();
  });

  /** The docs' import map, for the modules' origin, with the recipe's hashes in place of `sha384-…`. */
  function importMap() {
    const block = docsBlock("html", '<script type="importmap">');
    const map = block.slice(0, block.indexOf("</script>") + "</script>".length);
    return map.replace(/"https:\/\/duet\.example\/js\/([\w-]+\.js)": "sha384-…"/g, (_, name) => {
      assert.ok(hashes.has(name), `the recipe hashes ${name}`);
      return `"${modulesOrigin}/js/${name}": "${hashes.get(name)}"`;
    });
  }

  /** A module script that imports what the docs' example imports, and reports the outcome. */
  const probe = () =>
    `<script type="module" onerror="window.result = 'refused'">
      import { connect } from "${modulesOrigin}/js/duet.js";
      import { Negotiator } from "${modulesOrigin}/js/negotiation.js";
      window.result = typeof connect === "function" && typeof Negotiator === "function" ? "loaded" : "incomplete";
    </script>`;

  /** Opens `body` in a fresh page of `browser`; resolves with what ran. */
  async function outcome(/** @type {"chromium" | "firefox"} */ browser, /** @type {string} */ body, /** @type {boolean} */ changed, policy = "") {
    tamper = changed;
    csp = policy;
    html = `<!doctype html><meta charset="utf-8"><title>SRI</title>${body}`;
    const page = await openPage(browsers[browser], `${pageOrigin}/`);
    try {
      return await until(page, () => window.result && { result: window.result, tampered: globalThis.tampered === true });
    } finally {
      await closePage(page);
    }
  }

  test("the recipe's hashes are the sha384 of the files, and the map names every module the example imports", () => {
    for (const [name, hash] of hashes) assert.equal(hash, sri(readFileSync(join(JS_DIR, name))), name);
    const named = [...importMap().matchAll(/"http:\/\/127\.0\.0\.1:\d+\/js\/([\w-]+\.js)"/g)].map((m) => m[1]).sort();
    assert.deepEqual(named, moduleGraph(["duet.js", "negotiation.js"]));
  });

  for (const browser of /** @type {const} */ (["chromium", "firefox"])) {
    test(`${browser}: the map loads the honest modules and refuses a changed e2e.js`, async () => {
      assert.deepEqual(await outcome(browser, importMap() + probe(), false), { result: "loaded", tampered: false });
      assert.deepEqual(await outcome(browser, importMap() + probe(), true), { result: "refused", tampered: false });
    });

    test(`${browser}: an integrity attribute on the script alone lets a changed e2e.js run`, async () => {
      const script = `<script type="module" src="${modulesOrigin}/js/duet.js" integrity="${sri(readFileSync(join(JS_DIR, "duet.js")))}"
        onload="window.result = 'loaded'" onerror="window.result = 'refused'"></script>`;
      assert.deepEqual(await outcome(browser, script, true), { result: "loaded", tampered: true });
    });

    test(`${browser}: under a Content-Security-Policy the map protects when allowed by its hash, and is ignored when blocked`, async () => {
      const map = importMap();
      const text = map.slice(map.indexOf(">") + 1, map.lastIndexOf("</script>"));
      const allowed = `script-src 'self' ${modulesOrigin} 'sha256-${createHash("sha256").update(text).digest("base64")}'`;
      const body = `${map}<script type="module" src="/probe.js"></script>`;
      assert.deepEqual(await outcome(browser, body, true, allowed), { result: "refused", tampered: false });
      // Blocked, the map is as good as absent: the changed module runs.
      assert.deepEqual(await outcome(browser, body, true, `script-src 'self' ${modulesOrigin}`), { result: "loaded", tampered: true });
    });
  }
});
