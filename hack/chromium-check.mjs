// Loads one HTML page in headless Chromium (Debian's, driven by playwright-core over the DevTools
// protocol), saves a full-page PNG screenshot and exits 1 on any console error or warning, uncaught
// exception, failed or network request, or a missing expected element.
// Usage: node hack/chromium-check.mjs PAGE.html SHOT.png [PARETO_POINTS]
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require(path.resolve(process.env.PW_DIR, "node_modules/playwright-core"));
const [page, shot, paretoPoints] = process.argv.slice(2);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const problems = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await ctx.newPage();
  p.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`);
  });
  p.on("pageerror", (e) => problems.push(`uncaught exception: ${e.message}`));
  p.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
  p.on("request", (r) => {
    if (!/^(file|data):/.test(r.url())) problems.push(`network request: ${r.url()}`);
  });
  await p.goto("file://" + path.resolve(page), { waitUntil: "load" });
  await p.waitForTimeout(300);
  const charts = await p.$$eval("svg", (s) => s.filter((e) => e.getBoundingClientRect().width > 200).length);
  if (charts === 0) problems.push("no chart is rendered");
  if (paretoPoints !== undefined) {
    const n = await p.$$eval("svg#pareto circle.pt", (e) => e.length);
    if (n !== Number(paretoPoints)) problems.push(`#pareto shows ${n} points, expected ${paretoPoints}`);
    const box = await p.locator("svg#pareto").boundingBox();
    if (!box || box.width < 400 || box.height < 200) problems.push(`#pareto is not visible: ${JSON.stringify(box)}`);
  }
  await p.screenshot({ path: shot, fullPage: true });
  console.log(`${page}: ${charts} charts rendered, screenshot ${shot}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(`${page}: ${problems.join("\n  ")}`);
  process.exit(1);
}
