// The start page's and a call page's weight as Chromium's network layer counts it: requests and
// their encodedDataLength summed (bodies and response headers, gzip as wrangler dev serves it),
// cache disabled, first load. Recorded in bench/BASELINE.md ("Start page weight").
// Usage: make build && node bench/page-weight.mjs
import { launchChromium, startDevServer } from "../test/helpers/browser.mjs";

/** @param {import("playwright-core").Browser} browser @param {string} url */
async function weigh(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  let requests = 0;
  let bytes = 0;
  cdp.on("Network.loadingFinished", (event) => {
    requests += 1;
    bytes += event.encodedDataLength;
  });
  await page.goto(url, { waitUntil: "networkidle" });
  await context.close();
  return { requests, bytes };
}

const server = await startDevServer();
const browser = await launchChromium({ fakeDevices: true });
try {
  for (const [name, path] of [["/", "/"], ["/{room}", "/weight-probe"]]) {
    const { requests, bytes } = await weigh(browser, server.origin + path);
    console.log(`${name}: ${requests} requests, ${bytes.toLocaleString("en-US")} bytes`);
  }
} finally {
  await browser.close();
  await server.stop();
}
