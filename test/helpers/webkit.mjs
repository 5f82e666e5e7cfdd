// WebKitGTK (Safari's engine) for the browser suites: Debian's `MiniBrowser`, driven by
// `WebKitWebDriver` (package webkit2gtk-driver) over plain WebDriver classic HTTP, on an Xvfb
// display of its own. Debian's build has WebSocket, Web Crypto and getUserMedia with mock
// devices, but no RTCPeerConnection.
//
// `launchWebKit()` starts Xvfb (on a free display), WebKitWebDriver (on a free loopback port)
// and one session. Its pages are windows of that session; each has the few methods of a
// playwright page the shared helpers use (`goto`, `evaluate`, `waitForFunction`, `screenshot`,
// `close`), so `openPage`, `until` and `accessibilityProblems` of browser.mjs take them too.
// WebDriver classic has no page-error events: `problems` collects the errors and unhandled
// rejections the page reports after it loaded.

import { spawn } from "node:child_process";
import { accessSync, constants, writeFileSync } from "node:fs";
import { freePort } from "./browser.mjs";

export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER_PATH || "/usr/bin/WebKitWebDriver";
export const MINIBROWSER = process.env.MINIBROWSER_PATH || "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const XVFB = "/usr/bin/Xvfb";

/** Mock camera and microphones, granted without a prompt; `--automation` lets the driver in. */
export const MINIBROWSER_ARGS = ["--automation", "--enable-media-stream=true", "--enable-mock-capture-devices=true"];

/** Throws the install instruction when a binary is missing: the tests never download one. */
function requireBinary(/** @type {string} */ path, /** @type {string} */ debianPackage) {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`No ${path}. The WebKitGTK tests need it: on Debian/Ubuntu run \`sudo apt-get install ${debianPackage}\`. (The tests never download a browser.)`);
  }
}

/**
 * Starts Xvfb on a display it picks (`-displayfd 3`: it writes the number to fd 3 once it is
 * ready) and resolves with the process and `:N`; rejects when it exits first.
 * @param {string} command
 * @param {string[]} args
 */
function startXvfb(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe", "pipe"] });
    let output = "";
    let stderr = "";
    child.stderr?.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
    /** @type {import("node:stream").Readable} */ (child.stdio[3]).on("data", (chunk) => {
      output += chunk;
      if (output.includes("\n")) resolve({ child, display: `:${output.trim()}` });
    });
    child.once("exit", (code) => reject(new Error(`Xvfb exited (${code}) before it was ready: ${stderr}`)));
  });
}

/** Ends a child we started and waits for it. */
async function stopChild(/** @type {import("node:child_process").ChildProcess} */ child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Launches MiniBrowser under its own Xvfb through WebKitWebDriver. Returns the browser, with
 * `newPage(url, viewport)` and `close()`.
 */
export async function launchWebKit() {
  requireBinary(WEBKIT_DRIVER, "webkit2gtk-driver");
  requireBinary(MINIBROWSER, "webkit2gtk-driver");
  requireBinary(XVFB, "xvfb");
  const { child: xvfb, display } = /** @type {{child: import("node:child_process").ChildProcess, display: string}} */ (
    await startXvfb(XVFB, ["-displayfd", "3", "-screen", "0", "1400x900x24", "-nolisten", "tcp"])
  );
  const port = await freePort();
  const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`, "--host=127.0.0.1"], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, DISPLAY: display } });
  let driverLog = "";
  driver.stderr?.on("data", (chunk) => (driverLog = (driverLog + chunk).slice(-8000)));
  const base = `http://127.0.0.1:${port}`;
  const stopAll = async () => {
    await stopChild(driver);
    await stopChild(xvfb);
  };

  /**
   * One WebDriver command; a WebDriver error becomes an Error with its message.
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   */
  const command = async (method, path, body) => {
    const response = await fetch(base + path, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = /** @type {any} */ (await response.json());
    if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${json.value?.error}: ${json.value?.message}`);
    return json.value;
  };

  // The driver listens a moment after it starts: poll its status.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await command("GET", "/status")).ready) break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stopAll();
        throw new Error(`WebKitWebDriver did not answer: ${error}. Its output:\n${driverLog}`);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // polling interval, not a wait for an outcome
  }
  let session;
  try {
    session = await command("POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: MINIBROWSER, args: MINIBROWSER_ARGS } } },
    });
  } catch (error) {
    await stopAll();
    throw error;
  }
  const id = session.sessionId;
  const at = (/** @type {string} */ path) => `/session/${id}${path}`;
  await command("POST", at("/timeouts"), { script: 180_000 });
  const firstWindow = await command("GET", at("/window"));
  let current = firstWindow;
  let firstUsed = false;
  /** The windows still open: a new one is opened from one of them. */
  const openWindows = new Set([firstWindow]);

  // One command at a time: each page's command first switches the session to its window.
  let queue = Promise.resolve();
  /** @template T @param {string} handle @param {() => Promise<T>} step @returns {Promise<T>} */
  const inWindow = (handle, step) => {
    const run = queue.then(async () => {
      if (current !== handle) {
        await command("POST", at("/window"), { handle });
        current = handle;
      }
      return step();
    });
    queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };

  /**
   * Runs the function whose source is `source` on `arg` in the page and returns its JSON value;
   * a throw in the page rejects with the page's message. The source is part of the driver's
   * script, which the page's CSP does not govern (no eval in the page).
   * @param {string} handle
   * @param {string} source
   * @param {unknown} [arg]
   */
  const evaluateSource = async (handle, source, arg) => {
    const body = `const done = arguments[arguments.length - 1]; Promise.resolve().then(() => (${source})(arguments[0])).then((value) => done({ ok: true, value: value === undefined ? null : value }), (e) => done({ ok: false, error: String(e && e.message || e) + "\\n" + String(e && e.stack || "") }));`;
    const result = await inWindow(handle, () => command("POST", at("/execute/async"), { script: body, args: [arg === undefined ? null : arg] }));
    if (!result.ok) throw new Error(`in WebKit: ${result.error}`);
    return result.value;
  };

  /**
   * `fn(arg)` in the page, as playwright's `evaluate`; a string is run as a script.
   * @param {string} handle
   * @param {string | Function} fn
   * @param {unknown} [arg]
   */
  const evaluate = (handle, fn, arg) => evaluateSource(handle, typeof fn === "string" ? `() => { ${fn}\n}` : fn.toString(), arg);

  /** Collects the page's errors from when it loaded (WebDriver classic reports none). */
  const watchErrors = (/** @type {string} */ handle) =>
    evaluate(handle, () => {
      const w = /** @type {any} */ (window);
      if (w.pageProblems) return;
      w.pageProblems = [];
      addEventListener("error", (e) => w.pageProblems.push(`page error: ${e.message}`));
      addEventListener("unhandledrejection", (e) => w.pageProblems.push(`unhandled rejection: ${e.reason}`));
      document.addEventListener("securitypolicyviolation", (e) => w.pageProblems.push(`CSP: ${e.violatedDirective} ${e.blockedURI}`));
    });

  return {
    webkit: true,
    display,
    /**
     * A new window on `url` (the session's first window for the first page).
     * @param {string} url
     * @param {{width: number, height: number}} [viewport] the window's size
     */
    async newPage(url, viewport = { width: 1280, height: 800 }) {
      const from = openWindows.has(current) ? current : [...openWindows][0];
      const handle = firstUsed ? (await inWindow(from, () => command("POST", at("/window/new"), { type: "window" }))).handle : firstWindow;
      firstUsed = true;
      openWindows.add(handle);
      const page = {
        handle,
        /** @type {string[]} */
        problems: [],
        async goto(/** @type {string} */ address) {
          await inWindow(handle, () => command("POST", at("/url"), { url: address }));
          await watchErrors(handle);
        },
        evaluate: (/** @type {string | Function} */ fn, /** @type {unknown} */ arg) => evaluate(handle, fn, arg),
        /**
         * Polls `predicate(arg)` in the page every `polling` ms until it is truthy (playwright's
         * signature); its value is the handle's `jsonValue()`.
         * @param {Function} predicate
         * @param {unknown} arg
         * @param {{timeout?: number, polling?: number}} [options]
         */
        async waitForFunction(predicate, arg, { timeout = 20_000, polling = 50 } = {}) {
          const poll = `async (input) => {
            const test = (${predicate.toString()});
            const end = Date.now() + ${Number(timeout)};
            for (;;) {
              const result = await test(input);
              if (result) return result;
              if (Date.now() > end) throw new Error("waitForFunction: timed out after ${Number(timeout)} ms");
              await new Promise((resolve) => setTimeout(resolve, ${Number(polling)}));
            }
          }`;
          const value = await evaluateSource(handle, poll, arg);
          return { jsonValue: async () => value };
        },
        /** Saves a PNG of the window to `path`. */
        async screenshot(/** @type {{path: string}} */ { path }) {
          const base64 = await inWindow(handle, () => command("GET", at("/screenshot")));
          writeFileSync(path, Buffer.from(base64, "base64"));
        },
        /** Clicks the element matching `selector` as a person would (a real user gesture). */
        async click(/** @type {string} */ selector) {
          await inWindow(handle, async () => {
            const found = await command("POST", at("/element"), { using: "css selector", value: selector });
            await command("POST", at(`/element/${Object.values(found)[0]}/click`), {});
          });
        },
        /** The errors the page reported so far, with the ones collected before. */
        async collectProblems() {
          const seen = /** @type {string[]} */ ((await evaluate(handle, () => /** @type {any} */ (window).pageProblems ?? [])) ?? []);
          for (const problem of seen) if (!page.problems.includes(problem)) page.problems.push(problem);
          return page.problems;
        },
        async close() {
          await inWindow(handle, () => command("DELETE", at("/window")));
          openWindows.delete(handle);
          current = "";
        },
      };
      await inWindow(handle, () => command("POST", at("/window/rect"), viewport));
      await page.goto(url);
      return page;
    },
    async close() {
      try {
        await command("DELETE", at(""));
      } finally {
        await stopAll();
      }
    },
  };
}
