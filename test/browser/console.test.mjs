// The dev console page (web/index.html) served at / by the real server.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { blankPage, launchBrowser, mintToken, pageClient, repoRoot, startServer, waitState } from "./helpers.mjs";

/** Opens the console, recording console errors, page errors and every request. */
async function openConsole(browser, base) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const seen = { problems: [], requests: [], sockets: [], failed: [] };
  page.on("pageerror", (err) => seen.problems.push("pageerror: " + err.message));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") seen.problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("request", (r) => seen.requests.push({ url: r.url(), auth: r.headers().authorization }));
  page.on("requestfailed", (r) => seen.failed.push(r.url()));
  page.on("response", (r) => {
    if (r.status() >= 400) seen.failed.push(`${r.status()} ${r.url()}`);
  });
  page.on("websocket", (ws) => seen.sockets.push(ws.url()));
  await page.goto(base + "/");
  return { page, seen };
}

describe("dev console", { timeout: 120_000 }, () => {
  let server, browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("loads with no token: no console errors, no WebSocket, no /api or /dev request", { timeout: 20_000 }, async (t) => {
    const { page, seen } = await openConsole(browser, server.base);
    t.after(() => page.close());
    await page.waitForLoadState("networkidle");
    await page.waitForTimeout(1500);
    const paths = seen.requests.map((r) => new URL(r.url).pathname);
    assert.deepEqual(seen.problems, []);
    assert.deepEqual(seen.failed, []);
    assert.deepEqual(seen.sockets, []);
    assert.deepEqual(paths.filter((p) => p.startsWith("/api/") || p.startsWith("/dev/") || p.startsWith("/ws")), []);
    assert.deepEqual(seen.requests.filter((r) => r.auth), [], "no Authorization header anywhere");
    assert.ok(paths.includes("/client.js") && paths.includes("/console.js"), paths.join(" "));
    assert.equal(await page.textContent("#state"), "not connected");
    assert.equal(await page.inputValue("#ws-url"), `ws://127.0.0.1:${server.port}/ws`);
  });

  test("with an admin token shows metrics and charts; connects, subscribes and logs events", { timeout: 40_000 }, async (t) => {
    const { page, seen } = await openConsole(browser, server.base);
    const other = await blankPage(browser, server.base);
    t.after(() => Promise.all([page.close(), other.close()]));

    // Connect as a user and subscribe through the UI.
    await page.fill("#token", mintToken(server.secret, { sub: "console-user" }));
    await page.click("#connect");
    await page.waitForSelector('#state[data-state="open"]', { timeout: 10_000 });
    await page.fill("#sub-channel", "news");
    await page.click("#subscribe-form button[type=submit]");
    await page.waitForSelector('#subscriptions .chip:text-is("news")', { timeout: 5000 });
    await page.waitForSelector("#publish-note:text-is('subscribed')", { timeout: 5000 });

    // Another client publishes to it; the event shows up in the log.
    await pageClient(other, "o", server.ws, { token: mintToken(server.secret, { sub: "someone-else" }) });
    await waitState(other, "o", "open");
    const pub = await other.evaluate(() => window.clients.o.publish("news", { headline: "hello from another page" }));
    assert.equal(pub.delivered, 1);
    await page.waitForSelector('#log-list li.log-in code:has-text("hello from another page")', { timeout: 5000 });

    // Publish from the console (to a channel nobody else is on) and send a raw ping.
    await page.fill("#pub-channel", "news");
    await page.fill("#pub-data", '{"from": "console", "n": 1}');
    await page.click("#publish-form button[type=submit]");
    await page.waitForSelector("#publish-note:has-text('delivered to 0')", { timeout: 5000 });
    await page.click('#raw-form button[data-frame*="ping"]');
    await page.waitForSelector("#raw-note:text-is('pong')", { timeout: 5000 });

    // Metrics with the admin token.
    await page.fill("#admin-token", mintToken(server.secret, { sub: "ops", admin: true }));
    await page.click("#metrics-watch");
    const active = await page.waitForSelector('[data-metric="active_connections"]', { timeout: 10_000 });
    assert.match(await active.textContent(), /^\d+$/);
    assert.ok(Number(await active.textContent()) >= 2, "the console's and the other page's connections");
    for (const k of ["connections_today", "messages_sent", "messages_received", "messages_per_minute"]) {
      assert.match(await page.textContent(`[data-metric="${k}"]`), /^[\d,]+$/, k);
    }
    assert.match(await page.textContent('[data-metric="avg_connection_duration"]'), /^[\d,]+(\.\d+)?$/);
    // A second poll (every 3 s) gives each chart a line.
    await page.waitForFunction(
      () => [...document.querySelectorAll(".chart polyline")].every((l) => l.getAttribute("points").split(" ").length >= 3),
      null,
      { timeout: 10_000 },
    );
    const metricReqs = seen.requests.filter((r) => new URL(r.url).pathname === "/api/monitoring/websocket/metrics/");
    assert.ok(metricReqs.length >= 2);
    assert.ok(metricReqs.every((r) => r.auth?.startsWith("Bearer ")));
    assert.deepEqual(seen.problems, []);

    fs.mkdirSync(path.join(repoRoot, "artifacts"), { recursive: true });
    await page.screenshot({ path: path.join(repoRoot, "artifacts", "console.png"), fullPage: true });

    await page.click("#disconnect");
    await page.waitForSelector('#state[data-state="closed"]', { timeout: 5000 });
  });

  test("a non-admin token in the metrics panel is reported, not retried", { timeout: 20_000 }, async (t) => {
    const { page, seen } = await openConsole(browser, server.base);
    t.after(() => page.close());
    await page.fill("#admin-token", mintToken(server.secret, { sub: "not-staff" }));
    await page.click("#metrics-watch");
    await page.waitForSelector("#metrics-note.bad:has-text('403')", { timeout: 5000 });
    await page.waitForTimeout(4000);
    const n = seen.requests.filter((r) => r.url.includes("/api/monitoring/")).length;
    assert.equal(n, 1, "polling stops after a 403");
  });
});

describe("dev console against a dev-mode server (no key configured)", { timeout: 60_000 }, () => {
  let server, browser;

  before(async () => {
    server = await startServer({ secret: null });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('"Use dev tokens" fills both tokens, then connecting and metrics work', { timeout: 30_000 }, async (t) => {
    const { page, seen } = await openConsole(browser, server.base);
    t.after(() => page.close());
    await page.waitForLoadState("networkidle");
    assert.deepEqual(seen.requests.filter((r) => r.url.includes("/dev/")), [], "nothing fetched before the click");
    await page.click("#dev-tokens");
    await page.waitForFunction(() => document.querySelector("#token").value.split(".").length === 3, null, { timeout: 5000 });
    assert.equal((await page.inputValue("#admin-token")).split(".").length, 3);
    await page.waitForSelector('[data-metric="active_connections"]', { timeout: 10_000 });
    await page.click("#connect");
    await page.waitForSelector('#state[data-state="open"]', { timeout: 10_000 });
    assert.deepEqual(seen.problems, []);
  });
});
