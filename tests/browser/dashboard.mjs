// Opens a running job's dashboard in headless Chromium and checks, as a user would see it,
// that the checkpoint history grows and that a restart appears; counts the Kafka partition
// tables (none for a job that reads no Kafka topic) and reads each node's watermark line;
// keeps a screenshot.
//
// node dashboard.mjs http://127.0.0.1:PORT/ SCREENSHOT.png
// (Chromium: $CHROMIUM, else /usr/bin/chromium, Debian's package.)

import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const TIMEOUT = 60_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // No sandbox as root; no background traffic to Google's hosts on a closed network.
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);

  const completed = async () => Number(await page.getByTestId("completed").innerText());
  await page.getByTestId("checkpoint-row").first().waitFor({ timeout: TIMEOUT });
  const first = await completed();
  await page.waitForFunction(
    (n) => Number(document.querySelector("[data-testid=completed]").textContent) >= n + 2,
    first, { timeout: TIMEOUT });
  const later = await completed();

  await page.getByTestId("exception").first().waitFor({ timeout: TIMEOUT });
  await page.waitForFunction(
    () => /^[1-9]\d* restarts?$/.test(document.querySelector("[data-testid=restarts]").textContent),
    null, { timeout: TIMEOUT });
  const restarts = await page.getByTestId("restarts").innerText();
  const exception = await page.getByTestId("exception").first().innerText();
  const nodes = await page.getByTestId("node").count();
  const rows = await page.getByTestId("checkpoint-row").count();
  const chart = await page.locator("[data-testid=checkpoint-chart] canvas").count();
  const partitions = await page.getByTestId("partitions").count();
  const watermarks = await page.getByTestId("watermark").allInnerTexts();
  // Let a refresh after the restart draw, then keep what the user saw.
  await page.waitForTimeout(1500);
  await page.screenshot({ path: screenshot, fullPage: true });
  if (errors.length) throw new Error(`the page threw: ${errors.join("; ")}`);
  console.log(JSON.stringify({
    first, later, restarts, exception, nodes, rows, chart, partitions, watermarks,
  }));
} finally {
  await browser.close();
}
