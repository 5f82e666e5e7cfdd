// A V8 CPU profile of the Worker's isolate under `wrangler dev --inspector-port PORT`, and a
// summary of one: where the samples under a given frame went, by the frame it called.
//
//   node bench/cpuprofile.mjs record PORT SECONDS OUT.cpuprofile
//   node bench/cpuprofile.mjs summary OUT.cpuprofile [FRAME]
//
// Record while a duet-bench run loads the server. FRAME is a substring of a function name
// (default: the future that runs a Durable Object handler's body). Function names need a
// wasm build that keeps its name section (the release build strips it; see BASELINE.md).
// The .cpuprofile file also opens in Chrome DevTools (Performance panel) or speedscope.
import { readFileSync, writeFileSync } from "node:fs";
import WebSocket from "ws";

const [command, ...args] = process.argv.slice(2);

async function record(port, seconds, out) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let id = 0;
  const pending = new Map();
  ws.on("message", (raw) => {
    const msg = JSON.parse(raw);
    const waiter = pending.get(msg.id);
    if (!waiter) return;
    pending.delete(msg.id);
    if (msg.error) waiter.reject(new Error(JSON.stringify(msg.error)));
    else waiter.resolve(msg.result);
  });
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      pending.set(++id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 50 });
  await call("Profiler.start");
  console.error(`profiling for ${seconds} s`);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const { profile } = await call("Profiler.stop");
  writeFileSync(out, JSON.stringify(profile));
  console.error(`wrote ${out}: ${profile.samples.length} samples`);
  ws.close();
}

function summary(file, frame = "future_to_promise::{{closure}}::{{closure}}") {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n) =>
    (n.callFrame.functionName || "(anonymous)").replace(/::h[0-9a-f]{16}/g, "").slice(0, 100);
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const top = new Map();
  const below = new Map();
  let under = 0;
  for (const [id, count] of counts) {
    const path = [];
    for (let x = id; x !== undefined; x = parent.get(x)) path.unshift(nodes.get(x));
    const root = path[1] ? name(path[1]) : name(path[0]);
    top.set(root, (top.get(root) ?? 0) + count);
    const at = path.findIndex((n) => n.callFrame.functionName.includes(frame));
    if (at < 0) continue;
    under += count;
    const callee = path[at + 1] ? name(path[at + 1]) : "(self)";
    below.set(callee, (below.get(callee) ?? 0) + count);
  }
  const show = (map, of) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .forEach(([k, v]) => console.log(`${((100 * v) / of).toFixed(1).padStart(6)}%  ${k}`));
  console.log(`${total} samples; by top-level frame:`);
  show(top, total);
  console.log(`\n${under} samples (${((100 * under) / total).toFixed(1)}%) under "${frame}", by callee:`);
  show(below, under || 1);
}

if (command === "record" && args.length === 3) {
  await record(Number(args[0]), Number(args[1]), args[2]);
} else if (command === "summary" && args.length >= 1) {
  summary(args[0], args[1]);
} else {
  console.error("usage: cpuprofile.mjs record PORT SECONDS OUT | summary FILE [FRAME]");
  process.exit(2);
}
