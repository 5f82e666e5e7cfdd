// wrangler.toml without its [build] table, for serving an already built Worker: `wrangler dev`
// on such a config never rebuilds or restarts when a file under src/ changes. Used by the
// browser suites and by bench/run.sh (`node test/helpers/static-config.mjs OUT.toml`).
// The copy lives in build/, so its paths are rewritten relative to that directory.
// `--floor FLOOR.toml OUT.toml` writes a floor of bench/floor/ with wrangler.toml's [assets]
// table added, so that it sits behind the same assets' router as Duet (bench/floor.sh).

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
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

/** wrangler.toml's `[assets]` table, with its directory made absolute. */
function assetsTable() {
  const table = readFileSync(join(ROOT, "wrangler.toml"), "utf8").match(/^\[assets\][\s\S]*?(?=^\[)/m);
  if (!table) throw new Error("wrangler.toml has no [assets] table");
  return table[0].replace(/^directory = "([^"]+)"/m, (_, dir) => `directory = "${join(ROOT, dir)}"`);
}

/** Writes the floor `floorToml` with Duet's `[assets]` to `out` and returns `out`. */
export function writeFloorConfig(floorToml, out) {
  const dir = dirname(resolve(floorToml));
  const toml = readFileSync(floorToml, "utf8");
  if (/^\[assets\]/m.test(toml)) throw new Error(`${floorToml} has an [assets] table of its own`);
  const main = toml.replace(/^main = "([^"]+)"/m, (_, file) => `main = "${join(dir, file)}"`);
  writeFileSync(out, `${main}\n${assetsTable()}`);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === "--floor") {
    const [floorToml, out] = process.argv.slice(3);
    console.log(writeFloorConfig(floorToml, out));
  } else {
    const [name = "wrangler.static.toml", joinLimit] = process.argv.slice(2);
    console.log(writeStaticConfig(name, { joinLimit }));
  }
}
