// Drives Debian's chromium through the admin page of a running `sylvan
// proxy` for tests/admin_page.rs: waits until both upstreams show `up`,
// says READY (the test then kills one upstream), waits until a row changes,
// saves a screenshot, and fails if the page asked for anything from
// another origin.
// usage: node admin_page.js URL SCREENSHOT.png
const { chromium } = require("playwright-core");
const [url, shot] = process.argv.slice(2);
const states = () =>
  [...document.querySelectorAll('#x-upstreams td[data-col="state"]')].map(td => td.textContent);
(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-background-networking"],
  });
  const origin = new URL(url).origin;
  const foreign = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on("request", r => { if (!r.url().startsWith(origin)) foreign.push(r.url()); });
  await page.goto(url);
  await page.waitForFunction(
    s => { const v = eval(s)(); return v.length === 2 && v.every(x => x === "up"); },
    states.toString(), { timeout: 30000 });
  const hubs = await page.$$eval("#hubs tr", rows => rows.length - 1);
  const slow = await page.$$eval("#slow tr", rows => rows.length - 1);
  console.log(`READY hubs=${hubs} slow=${slow}`);
  await page.waitForFunction(
    s => eval(s)().some(x => x !== "up"),
    states.toString(), { timeout: 30000 });
  // Let a few refreshes draw the lag chart.
  await page.waitForFunction(() => Number(document.body.dataset.updates || 0) >= 4, null, { timeout: 30000 });
  const rows = await page.$$eval("#x-upstreams tr", trs => trs.slice(1).map(tr => tr.innerText.replace(/\s+/g, " ")));
  await page.screenshot({ path: shot, fullPage: true });
  console.log("CHANGED " + JSON.stringify(rows));
  await browser.close();
  if (foreign.length) {
    console.log("FOREIGN " + foreign.join(" "));
    process.exit(3);
  }
  console.log("DONE");
})().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
