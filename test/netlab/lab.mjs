// The network lab (docs/testing.md, "Network lab"): Linux network namespaces that put each
// browser of a call behind its own NAT, on a small "internet" of their own that nothing else can
// reach and that reaches nothing else.
//
//   internet  <run>-net   bridge br0 100.64.0.0/24: .1 the namespace itself, .2 and .3 coturn
//                         (STUN/TURN; two addresses for RFC 5780 NAT discovery), .4 the Duet
//                         server (`wrangler dev`); the default route goes into a sink (an ifb
//                         device that drops all it is given), so coturn can always route a
//                         relayed packet and never tears an allocation down for want of a route.
//   router    <run>-r<h>  wan 100.64.0.1N on br0, lan 10.201.N.1; nftables NAT: `masquerade`
//                         (endpoint-independent mapping: a cone) or `masquerade random,fully-random`
//                         (a new port per destination: symmetric); optionally UDP dropped.
//   home      <run>-h<h>  up0 10.201.N.2, default route through the router; Chromium runs here.
//   mobile    <run>-m<h>  a second uplink of the home (wan 100.64.0.2N, lan 10.201.10N.0/24,
//                         cone NAT), unused until `switchUplink()`.
//
// The link between a home and its router is a pair of TUN devices joined by link.py, a user-space
// forwarder that adds loss and delay and can cut the link (this kernel has no sch_netem).
//
// Every namespace of a run is named `dl<pid>-…`, with a resolv.conf of its own under
// /etc/netns/ (no name lookup leaves the lab). `removeRun(pid)` kills the processes inside a
// run's namespaces and deletes them; each run first removes what runs that died left behind, and
// starts a watchdog that does the same for it should it die without cleaning up.

import { execFile, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH, FIREFOX_PATH, FIREFOX_PREFS, freePort, startDevServer } from "../helpers/browser.mjs";

const LINK_PY = fileURLToPath(new URL("link.py", import.meta.url));
const NS_FIREFOX = fileURLToPath(new URL("ns-firefox.mjs", import.meta.url));
const TURNSERVER = process.env.TURNSERVER_PATH || "turnserver";

/** The shared secret of the lab's coturn and Duet server. */
export const TURN_SECRET = "duet-netlab-secret";
/** Addresses on the lab's internet. */
export const NET = Object.freeze({ gateway: "100.64.0.1", turn: "100.64.0.2", stun: "100.64.0.3", server: "100.64.0.4" });
export const SERVER_PORT = 8787;
export const TURN_UDP = `turn:${NET.turn}:3478?transport=udp`;
export const TURN_TCP = `turn:${NET.turn}:3478?transport=tcp`;
export const STUN_URL = `stun:${NET.stun}:3478`;

const RUN_PREFIX = "dl";
const RUN = `${RUN_PREFIX}${process.pid}`;
const runDir = (/** @type {number} */ pid) => join(tmpdir(), `duet-netlab-${pid}`);

/** Why the lab cannot run here (not root), or null. Anything else missing is an error. */
export function whyNot() {
  if (process.platform !== "linux") return "the network lab needs Linux network namespaces";
  if (process.getuid?.() !== 0) return "the network lab needs root (network namespaces, nftables); run the suite as root";
  return null;
}

/** @param {string[]} args @param {{input?: string}} [options] */
function run(args, { input } = {}) {
  try {
    return execFileSync(args[0], args.slice(1), { input, stdio: ["pipe", "pipe", "pipe"], timeout: 30_000 }).toString();
  } catch (error) {
    const e = /** @type {any} */ (error);
    throw new Error(`${args.join(" ")} failed: ${e.stderr?.toString() || e.message}`);
  }
}

/** Runs `ip -n ns …` (or plain `ip …` without a namespace). */
const ip = (/** @type {string | null} */ ns, /** @type {string[]} */ ...args) => run(ns ? ["ip", "-n", ns, ...args] : ["ip", ...args]);
/** Runs a command inside namespace `ns`. */
const inNs = (/** @type {string} */ ns, /** @type {string[]} */ ...args) => run(["ip", "netns", "exec", ns, ...args]);

function requireTools() {
  for (const [tool, pkg] of [["nft", "nftables"], [TURNSERVER, "coturn"], ["turnutils_natdiscovery", "coturn"], ["python3", "python3"]]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`the network lab needs ${tool}: \`sudo apt-get install ${pkg}\``);
    }
  }
}

/** The entries of /etc/netns (none when it does not exist). */
function netnsConfigs() {
  try {
    return readdirSync("/etc/netns");
  } catch {
    return [];
  }
}

function namespaces() {
  return run(["ip", "netns", "list"])
    .split("\n")
    .map((line) => line.split(" ")[0])
    .filter(Boolean);
}

/**
 * Makes namespace `ns` with its own `/etc/resolv.conf` (`ip netns exec` mounts
 * `/etc/netns/<ns>/resolv.conf` over it): a name server on the namespace's own loopback, where
 * nothing answers, so no process in the lab sends a name lookup anywhere (the host's resolver is
 * outside the lab).
 */
function addNamespace(ns) {
  mkdirSync(join("/etc/netns", ns), { recursive: true });
  writeFileSync(join("/etc/netns", ns, "resolv.conf"), "nameserver 127.0.0.1\n");
  ip(null, "netns", "add", ns);
}

/** Kills every process inside namespace `ns` (they are the lab's: it made the namespace), then deletes it. */
function removeNamespace(ns) {
  rmSync(join("/etc/netns", ns), { recursive: true, force: true });
  for (let round = 0; round < 20; round += 1) {
    let pids = [];
    try {
      pids = run(["ip", "netns", "pids", ns]).split("\n").filter(Boolean).map(Number);
    } catch {
      return; // already gone
    }
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    execFileSync("sleep", ["0.05"]); // the kernel reaps them; polling, not waiting for an outcome
  }
  try {
    ip(null, "netns", "del", ns);
  } catch {
    // Gone meanwhile.
  }
}

/** Removes everything of run `pid`: its namespaces (and what runs in them) and its directory. */
export function removeRun(pid) {
  const prefix = `${RUN_PREFIX}${pid}-`;
  for (const ns of namespaces().filter((name) => name.startsWith(prefix))) removeNamespace(ns);
  for (const name of netnsConfigs().filter((name) => name.startsWith(prefix))) rmSync(join("/etc/netns", name), { recursive: true, force: true });
  rmSync(runDir(pid), { recursive: true, force: true });
}

const alive = (/** @type {number} */ pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Removes what runs that are no longer alive left behind (a run killed with SIGKILL, say). */
export function removeLeftovers() {
  const pids = new Set();
  for (const ns of namespaces()) {
    const match = ns.match(/^dl(\d+)-/);
    if (match) pids.add(Number(match[1]));
  }
  for (const name of readdirSync(tmpdir())) {
    const match = name.match(/^duet-netlab-(\d+)$/);
    if (match) pids.add(Number(match[1]));
  }
  for (const name of netnsConfigs()) {
    const match = name.match(/^dl(\d+)-/);
    if (match) pids.add(Number(match[1]));
  }
  for (const pid of pids) if (pid !== process.pid && !alive(pid)) removeRun(pid);
}

/** A detached watchdog that removes this run once this process is gone, however it ended. */
function startWatchdog() {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; exec "${process.execPath}" "${fileURLToPath(import.meta.url)}" --remove ${process.pid}`;
  spawn("sh", ["-c", script], { detached: true, stdio: "ignore" }).unref();
}

let exitHooked = false;
function cleanUpOnExit() {
  if (exitHooked) return;
  exitHooked = true;
  process.once("exit", () => removeRun(process.pid));
  for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
    process.once(signal, () => {
      removeRun(process.pid);
      process.exit(130);
    });
  }
}

/** Starts coturn in namespace `ns` on the lab's TURN and STUN addresses. */
async function startCoturn(ns, dir) {
  const child = spawn("ip", [
    "netns", "exec", ns, TURNSERVER,
    "-n", `--listening-ip=${NET.turn}`, `--listening-ip=${NET.stun}`, "--listening-port=3478", `--relay-ip=${NET.turn}`,
    "--min-port=49152", "--max-port=49999",
    "--use-auth-secret", `--static-auth-secret=${TURN_SECRET}`, "--realm=duet.lab",
    "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--simple-log", "--log-file=stdout",
    `--pidfile=${join(dir, "turnserver.pid")}`, `--db=${join(dir, "turndb")}`,
  ]);
  let output = "";
  child.stdout.on("data", (chunk) => (output = (output + chunk).slice(-200_000)));
  child.stderr.on("data", (chunk) => (output = (output + chunk).slice(-200_000)));
  const deadline = Date.now() + 10_000;
  while (!/Total (UDP|General) servers/i.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`coturn did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // polling its log for readiness
  }
  return { log: () => output, stop: () => child.kill("SIGKILL") };
}

/**
 * The lab's internet with coturn and the Duet server on it. `vars` go to the server on top of
 * the lab's ICE configuration: STUN at 100.64.0.3, TURN (UDP and TCP) at 100.64.0.2.
 * @param {{vars?: Record<string, string>}} [options]
 */
export async function startInternet({ vars = {} } = {}) {
  requireTools();
  removeLeftovers();
  cleanUpOnExit();
  startWatchdog();
  const dir = runDir(process.pid);
  mkdirSync(dir, { recursive: true });
  const ns = `${RUN}-net`;
  addNamespace(ns);
  ip(ns, "link", "set", "lo", "up");
  ip(ns, "link", "add", "br0", "type", "bridge");
  for (const address of Object.values(NET)) ip(ns, "addr", "add", `${address}/24`, "dev", "br0");
  ip(ns, "link", "set", "br0", "up");
  ip(ns, "link", "add", "sink0", "type", "ifb");
  ip(ns, "link", "set", "sink0", "up");
  ip(ns, "route", "add", "default", "dev", "sink0");

  const coturn = await startCoturn(ns, dir);
  const serverOptions = {
    netns: ns,
    ip: NET.server,
    port: SERVER_PORT,
    persistDir: join(dir, "persist"),
    vars: {
      ICE_SERVERS: JSON.stringify([{ urls: STUN_URL }]),
      TURN_URLS: `${TURN_UDP},${TURN_TCP}`,
      TURN_SECRET,
      ...vars,
    },
  };
  let server = await startDevServer(serverOptions);
  /** @type {Set<Home>} */
  const homes = new Set();
  return {
    ns,
    coturn,
    origin: server.origin,
    get server() {
      return server;
    },
    /** Stops the server (SIGTERM to its process group) and starts it again on the same port and storage. */
    async restartServer() {
      await server.stop();
      server = await startDevServer(serverOptions);
    },
    /**
     * A home behind its own NAT, with Chromium available inside it; `remove()` it when done.
     * @param {"a" | "b" | "c" | "d"} name its addresses follow: home "b" is 10.201.2.2 behind 100.64.0.12
     * @param {HomeOptions} [options]
     */
    addHome(name, options = {}) {
      const home = createHome(ns, name, name.charCodeAt(0) - 96, options);
      const remove = home.remove;
      home.remove = async () => {
        homes.delete(home);
        await remove();
      };
      homes.add(home);
      return home;
    },
    async stop() {
      for (const home of [...homes]) await home.remove();
      await server.stop();
      coturn.stop();
      removeRun(process.pid);
    },
  };
}

/**
 * @typedef {object} HomeOptions
 * @property {"cone" | "symmetric"} [nat="cone"]
 * @property {boolean} [blockUdp=false] the router drops every UDP packet from the home
 * @property {boolean} [mobile=false] a second uplink for `switchUplink()`
 */

/** @typedef {ReturnType<typeof createHome>} Home */

/**
 * @param {string} inet the internet's namespace
 * @param {string} name
 * @param {number} n the home's number: its addresses
 * @param {HomeOptions} options
 */
function createHome(inet, name, n, { nat = "cone", blockUdp = false, mobile = false }) {
  const router = `${RUN}-r${name}`;
  const home = `${RUN}-h${name}`;
  const spare = `${RUN}-m${name}`;
  addNamespace(router);
  addNamespace(home);
  for (const ns of [router, home]) ip(ns, "link", "set", "lo", "up");
  attachToInternet(inet, router, `v${name}`, `100.64.0.${10 + n}`);
  natRules(router, `10.201.${n}.0/24`, nat, blockUdp);

  // The home's uplink: two TUN devices made in the router's namespace, one moved into the home.
  const link = spawn("ip", ["netns", "exec", router, "python3", LINK_PY, "lan", "up0"], { stdio: ["pipe", "pipe", "inherit"] });
  const replies = createInterface({ input: /** @type {import("node:stream").Readable} */ (link.stdout) })[Symbol.asyncIterator]();
  const nextReply = async () => {
    const { value, done } = await replies.next();
    if (done) throw new Error(`link.py of home ${name} ended`);
    return value;
  };
  const ready = nextReply().then((line) => {
    if (line !== "ready") throw new Error(`link.py said ${line}`);
    ip(router, "link", "set", "up0", "netns", home);
    ip(router, "addr", "add", `10.201.${n}.1`, "peer", `10.201.${n}.2`, "dev", "lan");
    ip(router, "link", "set", "lan", "up");
    ip(home, "addr", "add", `10.201.${n}.2`, "peer", `10.201.${n}.1`, "dev", "up0");
    ip(home, "link", "set", "up0", "up");
    ip(home, "route", "add", "default", "via", `10.201.${n}.1`);
  });

  if (mobile) {
    addNamespace(spare);
    ip(spare, "link", "set", "lo", "up");
    attachToInternet(inet, spare, `w${name}`, `100.64.0.${20 + n}`);
    natRules(spare, `10.201.${100 + n}.0/24`, "cone", false);
    ip(spare, "link", "add", "lan", "type", "veth", "peer", "name", "up1", "netns", home);
    ip(spare, "addr", "add", `10.201.${100 + n}.1/24`, "dev", "lan");
    ip(spare, "link", "set", "lan", "up");
  }

  /** @param {string} command */
  const tell = async (command) => {
    await ready;
    /** @type {import("node:stream").Writable} */ (link.stdin).write(`${command}\n`);
    const reply = await nextReply();
    if (reply !== "ok") throw new Error(`link.py answered ${reply} to ${command}`);
  };

  /** @type {{close(): Promise<void>}[]} */
  const browsers = [];
  return {
    name,
    ns: home,
    router,
    address: `10.201.${n}.2`,
    /** The router's public address on the lab's internet. */
    publicAddress: `100.64.0.${10 + n}`,
    ready,
    /** Loss (0..1) and delay (ms) on the home's uplink, each way. */
    impair: ({ loss = 0, delayMs = 0 } = {}) => tell(`loss ${loss}`).then(() => tell(`delay ${delayMs}`)),
    /** Cuts the uplink: every packet either way is dropped until `restore()`. The interface stays up. */
    cut: () => tell("cut"),
    restore: () => tell("restore"),
    /**
     * Moves the home to its second uplink as a phone leaving Wi-Fi for mobile data does: the
     * first link goes dead and loses its address, the second comes up with a new address and
     * the default route. Resolves with the time (ms since the epoch) the new network was usable.
     */
    async switchUplink() {
      if (!mobile) throw new Error(`home ${name} has no second uplink`);
      await tell("cut");
      ip(home, "addr", "flush", "dev", "up0");
      ip(home, "link", "set", "up0", "down");
      ip(home, "link", "set", "up1", "up");
      ip(home, "addr", "add", `10.201.${100 + n}.2/24`, "dev", "up1");
      ip(home, "route", "replace", "default", "via", `10.201.${100 + n}.1`);
      return Date.now();
    },
    /**
     * The NAT's behaviour as coturn's RFC 5780 discovery reports it from inside the home, e.g.
     * `{mapping: "Endpoint Independent Mapping", filtering: "Address and Port Dependent Filtering"}`.
     */
    async natBehaviour() {
      await ready;
      const output = await new Promise((resolve, reject) => {
      execFile("ip", ["netns", "exec", home, "timeout", "20", "turnutils_natdiscovery", "-m", "-f", NET.turn], (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
    });
      const found = [...output.matchAll(/NAT with (.+?)!/g)].map((m) => m[1]);
      return { mapping: found.find((f) => /Mapping/.test(f)) ?? null, filtering: found.find((f) => /Filtering/.test(f)) ?? null, output };
    },
    /** The conntrack tables of the home's routers (UDP only), for failure reports. */
    conntrack() {
      const table = (/** @type {string} */ ns) =>
        conntrackLines(ns)
          .filter((line) => / udp /.test(line))
          .map((line) => line.replace(/^ipv4\s+2\s+udp\s+17\s+/, "").replace(/ mark=.*$/, ""));
      return { router: table(router), ...(mobile ? { mobile: table(spare) } : {}) };
    },
    /**
     * Where the home sent packets that are outside the lab (neither 100.64.0.0/24 nor
     * 10.201.0.0/16), as its routers' conntrack tables saw them: should be none.
     */
    outsideDestinations() {
      const inside = (/** @type {string} */ address) => /^100\.64\.0\.\d+$/.test(address) || /^10\.201\.\d+\.\d+$/.test(address);
      const destinations = [router, ...(mobile ? [spare] : [])].flatMap((ns) =>
        conntrackLines(ns).map((line) => /dst=([\d.]+)/.exec(line)?.[1] ?? ""),
      );
      return [...new Set(destinations.filter((address) => address && !inside(address)))];
    },
    /** Chromium running inside the home (through an `ip netns exec` wrapper, over a pipe). */
    async launchChromium(/** @type {string} */ origin) {
      await ready;
      const wrapper = join(runDir(process.pid), `chromium-${name}`);
      writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${home} ${CHROMIUM_PATH} "$@"\n`);
      chmodSync(wrapper, 0o755);
      const browser = await chromium.launch({
        executablePath: wrapper,
        headless: true,
        // No name lookups: the lab has no resolver. Its own addresses stay resolvable, as
        // Chromium reaches TURN over TCP through its resolver, IP literal or not.
        args: [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${origin}`, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 100.64.0.*"],
        timeout: 30_000,
      });
      browsers.push(browser);
      return browser;
    },
    /**
     * Firefox running inside the home, driven by puppeteer over WebDriver BiDi: its port inside
     * the namespace is carried to the same port outside by `ns-firefox.mjs`.
     */
    async launchFirefox(/** @type {string} */ origin) {
      await ready;
      const wrapper = join(runDir(process.pid), `firefox-${name}`);
      writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${NS_FIREFOX}" ${home} ${FIREFOX_PATH} "$@"\n`);
      chmodSync(wrapper, 0o755);
      const browser = await puppeteer.launch({
        browser: "firefox",
        protocol: "webDriverBiDi",
        executablePath: wrapper,
        headless: true,
        debuggingPort: await freePort(),
        timeout: 60_000,
        extraPrefsFirefox: {
          ...FIREFOX_PREFS,
          // The server's plain-http origin counts as secure (camera, Web Crypto).
          "dom.securecontext.allowlist": new URL(origin).hostname,
          // No name lookups and no background traffic: nothing leaves the lab.
          "network.dns.disablePrefetch": true,
          "network.trr.mode": 5,
          "network.connectivity-service.enabled": false,
          "network.captive-portal-service.enabled": false,
        },
      });
      browsers.push(browser);
      return browser;
    },
    async remove() {
      await Promise.all(browsers.splice(0).map((browser) => browser.close().catch(() => {})));
      link.stdin?.end();
      link.kill("SIGKILL");
      // The internet's ends of the veths first: a deleted namespace takes its devices (and their
      // peers) down only when the kernel gets round to it, and the next home reuses the names.
      for (const peer of [`v${name}`, `w${name}`]) deleteLink(inet, peer);
      for (const ns of [home, router, spare]) removeNamespace(ns);
    },
  };
}

/** The lines of `/proc/net/nf_conntrack` in namespace `ns` (none once it is gone). */
function conntrackLines(ns) {
  try {
    return inNs(ns, "cat", "/proc/net/nf_conntrack").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

/** Deletes device `name` in namespace `ns` if it is there. */
function deleteLink(ns, name) {
  try {
    ip(ns, "link", "del", name);
  } catch {
    // Not there.
  }
}

/** Connects `ns` to the internet's bridge through a veth pair named `wan` (in `ns`) and `peer`. */
function attachToInternet(inet, ns, peer, address) {
  deleteLink(inet, peer); // left by an earlier home of the same name whose namespace is still going
  ip(ns, "link", "add", "wan", "type", "veth", "peer", "name", peer, "netns", inet);
  ip(inet, "link", "set", peer, "master", "br0");
  ip(inet, "link", "set", peer, "up");
  ip(ns, "addr", "add", `${address}/24`, "dev", "wan");
  ip(ns, "link", "set", "wan", "up");
  ip(ns, "route", "add", "default", "via", NET.gateway);
  inNs(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1");
}

/**
 * The router's nftables: source NAT of the home's subnet on `wan`; a filter that drops what
 * did not come from that subnet (as a provider's anti-spoofing does) and, with `blockUdp`, all
 * UDP; and, as home routers do, unsolicited packets to the router itself are dropped. That last
 * rule also keeps a cone a cone: a peer's first check, arriving before ours went out, would
 * otherwise leave a conntrack entry (answered with an ICMP error) on the very port our mapping
 * needs, and masquerade would pick another port for our packets to that peer.
 */
function natRules(ns, subnet, nat, blockUdp) {
  const masquerade = nat === "symmetric" ? "masquerade random,fully-random" : "masquerade";
  const rules = `
table ip lab {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" ct state new drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname != "wan" ip saddr != ${subnet} drop
    ${blockUdp ? 'iifname != "wan" meta l4proto udp drop' : ""}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr ${subnet} ${masquerade}
  }
}
`;
  run(["ip", "netns", "exec", ns, "nft", "-f", "-"], { input: rules });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "--remove") {
  removeRun(Number(process.argv[3]));
}
