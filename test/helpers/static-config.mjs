// wrangler.toml without its [build] table, for serving an already built Worker: `wrangler dev`
// on such a config never rebuilds or restarts when a file under src/ changes. Used by the
// browser suites and by bench/run.sh (`node test/helpers/static-config.mjs OUT.toml`).
// The copy lives in build/, so its paths are rewritten relative to that directory.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT } from "./common.mjs";

/**
 * Writes the copy to `build/<name>` and returns its path. With `joinLimit`, JOIN_LIMITER
 * allows that many joins per minute instead (a load generator joins from one IP).
 */
export function writeStaticConfig(name, { joinLimit } = {}) {
  let toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8")
    .replace(/^\[build\][\s\S]*?(?=^\[)/m, "")
    .replace(/^main = "([^"]+)"/m, 'main = "../$1"')
    .replace(/^directory = "([^"]+)"/m, 'directory = "../$1"');
  if (joinLimit) toml = toml.replace(/^simple = \{ limit = \d+,/m, `simple = { limit = ${joinLimit},`);
  const path = join(ROOT, "build", name);
  writeFileSync(path, toml);
  return path;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [name = "wrangler.static.toml", joinLimit] = process.argv.slice(2);
  console.log(writeStaticConfig(name, { joinLimit }));
}
