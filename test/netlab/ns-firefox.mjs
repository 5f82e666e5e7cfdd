// Firefox inside a network namespace, for puppeteer (test/netlab/lab.mjs, `launchFirefox`).
// puppeteer drives Firefox over WebDriver BiDi on a TCP port (it has no pipe transport for
// Firefox), and a port inside the namespace is out of reach from outside it. So this wrapper,
// run as puppeteer's executable with `--remote-debugging-port=PORT` among the arguments:
// - starts Firefox in the namespace (its output passes through, so puppeteer reads the
//   "WebDriver BiDi listening on ws://127.0.0.1:PORT" line as usual);
// - listens on 127.0.0.1:PORT outside, and carries each connection through a Unix socket (the
//   file system is shared between namespaces) to a relay inside the namespace that connects to
//   Firefox's 127.0.0.1:PORT there.
// Usage: node ns-firefox.mjs NAMESPACE FIREFOX [firefox arguments…]
//        node ns-firefox.mjs --relay SOCKET PORT   (the relay; run inside the namespace)

import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Pipes two sockets into each other; either ending or failing ends both. */
function join2(/** @type {import("node:net").Socket} */ a, /** @type {import("node:net").Socket} */ b) {
  a.pipe(b).pipe(a);
  for (const [one, other] of [[a, b], [b, a]]) {
    one.on("error", () => other.destroy());
    one.on("close", () => other.destroy());
  }
}

if (process.argv[2] === "--relay") {
  const [socket, port] = process.argv.slice(3);
  rmSync(socket, { force: true });
  createServer((client) => join2(client, connect(Number(port), "127.0.0.1"))).listen(socket);
} else {
  const [ns, firefox, ...args] = process.argv.slice(2);
  const port = args.map((arg) => /^--remote-debugging-port=(\d+)$/.exec(arg)?.[1]).find(Boolean);
  if (!port || port === "0") throw new Error("ns-firefox.mjs needs --remote-debugging-port=PORT with a fixed port");
  const socket = join(tmpdir(), `duet-netlab-${ns}-${port}.sock`);
  const relay = spawn("ip", ["netns", "exec", ns, process.execPath, fileURLToPath(import.meta.url), "--relay", socket, port], { stdio: "inherit" });
  const outside = createServer((client) => join2(client, connect(socket))).listen(Number(port), "127.0.0.1");
  const browser = spawn("ip", ["netns", "exec", ns, firefox, ...args], { stdio: "inherit" });
  const end = () => {
    relay.kill("SIGKILL");
    outside.close();
    rmSync(socket, { force: true });
  };
  browser.on("exit", (code, signal) => {
    end();
    process.exit(code ?? (signal ? 1 : 0));
  });
  for (const signal of /** @type {const} */ (["SIGTERM", "SIGINT", "SIGHUP"])) {
    process.on(signal, () => {
      browser.kill(signal);
      end();
    });
  }
}
