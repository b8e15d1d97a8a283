// Client behaviour that the real server cannot be made to show on demand
// (malformed frames, silence, error frames, dropped sockets), checked in
// Chromium against Playwright's WebSocket mock (page.routeWebSocket). The
// real server only serves /client.js here.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser, pageClient, readLog, startServer, waitState } from "./helpers.mjs";

const WS = "ws://127.0.0.1:9/ws"; // never reached: every socket is mocked

describe("WsgateClient against a mocked socket", { timeout: 90_000 }, () => {
  let server, browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /**
   * A page whose WebSockets to WS are answered by serve(route, frame, nth).
   * Returns the page and the list of mocked connections (each with .frames).
   */
  async function mockPage(t, serve) {
    const page = await browser.newPage();
    t.after(() => page.close());
    page.problems = [];
    page.on("pageerror", (err) => page.problems.push(err.message));
    const conns = [];
    await page.routeWebSocket(WS.replace(/\?.*/, "") + "**", (ws) => {
      const conn = { ws, frames: [], at: Date.now(), url: ws.url() };
      conns.push(conn);
      ws.onMessage((text) => {
        const frame = JSON.parse(text);
        conn.frames.push(frame);
        serve(ws, frame, conns.length);
      });
    });
    await page.goto(server.base + "/client.js");
    return { page, conns };
  }

  const pong = (ws, f) => f.type === "ping" && ws.send(JSON.stringify({ type: "pong", id: f.id }));

  test("ignores malformed frames and reports events with exactly channel, data, from", { timeout: 15_000 }, async (t) => {
    const { page } = await mockPage(t, (ws, f) => {
      if (f.type !== "ping") return;
      for (const junk of ["not json{", "[1,2]", "null", "42", '"str"', "{}", '{"type":"event"}', '{"type":"event","channel":5}']) ws.send(junk);
      ws.send(Buffer.from([0xff, 0x00]));
      ws.send(JSON.stringify({ type: "event", channel: "c", data: [1], from: "srv", extra: "dropped" }));
      pong(ws, f);
    });
    await pageClient(page, "c", WS, { token: "t" });
    await waitState(page, "c", "open");
    const reply = await page.evaluate(() => window.clients.c.request({ type: "ping" }));
    assert.equal(reply.type, "pong");
    const log = await readLog(page, "c");
    assert.deepEqual(log.events, [{ channel: "c", data: [1], from: "srv" }]);
    assert.deepEqual(
      log.messages.map((m) => m.type),
      [undefined, "event", "event", "event", "pong"],
      "every JSON object is a message; other text is dropped",
    );
    assert.deepEqual(page.problems, []);
  });

  test("refuses bad arguments", { timeout: 15_000 }, async (t) => {
    const { page } = await mockPage(t, pong);
    const r = await page.evaluate(async (url) => {
      const { WsgateClient } = await import("/client.js");
      const thrown = (f) => {
        try {
          f();
          return "no throw";
        } catch (e) {
          return e.name;
        }
      };
      const c = new WsgateClient(url, { token: "t" });
      const bad = await Promise.all(
        [null, [], { id: 1 }, { type: 5 }, { type: "ping", id: {} }].map((f) => c.request(f).catch((e) => e.code)),
      );
      c.close();
      return {
        relative: thrown(() => new WsgateClient("/ws", { token: "t" })),
        http: thrown(() => new WsgateClient("ftp://h/ws", { token: "t" })),
        noToken: thrown(() => new WsgateClient(url, {})),
        transport: thrown(() => new WsgateClient(url, { token: "t", tokenTransport: "cookie" })),
        bad,
      };
    }, WS);
    assert.deepEqual(r, {
      relative: "TypeError",
      http: "TypeError",
      noToken: "TypeError",
      transport: "TypeError",
      bad: Array(5).fill("invalid_frame"),
    });
  });

  test("an error reply rejects with .code and .frame", { timeout: 15_000 }, async (t) => {
    const { page } = await mockPage(t, (ws, f) =>
      ws.send(JSON.stringify({ type: "error", code: "rate_limited", message: "slow down", retry_after: 3, id: f.id })),
    );
    await pageClient(page, "c", WS, { token: "t" });
    const err = await page.evaluate(() =>
      window.clients.c.publish("x", 1).then(
        () => null,
        (e) => ({ isError: e instanceof Error, code: e.code, message: e.message, frame: e.frame }),
      ),
    );
    assert.equal(err.isError, true);
    assert.equal(err.code, "rate_limited");
    assert.equal(err.message, "slow down");
    assert.equal(err.frame.retry_after, 3);
    assert.equal(typeof err.frame.id, "string");
  });

  test("queues up to 100 frames before open, rejects the 101st, flushes in order", { timeout: 15_000 }, async (t) => {
    const { page, conns } = await mockPage(t, pong);
    const r = await page.evaluate(async (url) => {
      const { WsgateClient } = await import("/client.js");
      const c = new WsgateClient(url, { token: "t" }); // not open yet
      const all = [];
      for (let i = 0; i < 101; i++) all.push(c.request({ type: "ping", id: "q" + i }));
      const settled = await Promise.allSettled(all);
      c.close();
      return settled.map((s) => (s.status === "fulfilled" ? s.value.id : "rejected:" + s.reason.code));
    }, WS);
    assert.deepEqual(r.slice(0, 100), Array.from({ length: 100 }, (_, i) => "q" + i));
    assert.equal(r[100], "rejected:queue_full");
    assert.deepEqual(conns[0].frames.map((f) => f.id), Array.from({ length: 100 }, (_, i) => "q" + i));
  });

  test("a request without a reply times out", { timeout: 15_000 }, async (t) => {
    const { page } = await mockPage(t, () => {});
    await pageClient(page, "c", WS, { token: "t", requestTimeout: 300 });
    const started = Date.now();
    const code = await page.evaluate(() => window.clients.c.request({ type: "whoami" }).catch((e) => e.code));
    assert.equal(code, "timeout");
    assert.ok(Date.now() - started < 3000);
  });

  test("sends application pings; a missing pong reconnects", { timeout: 15_000 }, async (t) => {
    // The first connection answers pings twice then goes silent; the second answers all.
    const { page, conns } = await mockPage(t, (ws, f, nth) => {
      const pings = conns[nth - 1].frames.filter((x) => x.type === "ping").length;
      if (nth > 1 || pings <= 2) pong(ws, f);
    });
    await pageClient(page, "c", WS, { token: "t", pingInterval: 200, requestTimeout: 400 });
    await waitState(page, "c", "open", 2, 8000);
    assert.ok(conns[0].frames.filter((f) => f.type === "ping").length >= 3);
    assert.deepEqual((await readLog(page, "c")).states, ["connecting", "open", "reconnecting", "open"]);
  });

  test("a dropped socket reconnects within 1 s and re-subscribes; close() is final", { timeout: 15_000 }, async (t) => {
    let closedAt;
    const { page, conns } = await mockPage(t, (ws, f, nth) => {
      if (f.type === "subscribe") ws.send(JSON.stringify({ type: "subscribed", channel: f.channel, id: f.id }));
      if (nth === 1 && f.type === "subscribe") {
        closedAt = Date.now();
        ws.close({ code: 1001, reason: "going away" });
      }
    });
    await pageClient(page, "c", WS, { token: "t", tokenTransport: "subprotocol" });
    await page.evaluate(() => window.clients.c.subscribe("room"));
    await waitState(page, "c", "open", 2, 5000);
    await page.waitForFunction(() => window.log.c.messages.length >= 2, null, { timeout: 5000 });
    assert.ok(conns[1].at - closedAt < 1500, `reconnected after ${conns[1].at - closedAt} ms`);
    assert.deepEqual(conns[1].frames.map((f) => [f.type, f.channel]), [["subscribe", "room"]]);

    const r = await page.evaluate(async () => {
      const c = window.clients.c;
      const waiting = c.request({ type: "whoami" }).catch((e) => e.code);
      c.close();
      return { waiting: await waiting, state: c.state };
    });
    assert.deepEqual(r, { waiting: "closed", state: "closed" });
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(conns.length, 2, "no reconnect after close()");
    assert.deepEqual((await readLog(page, "c")).states, ["connecting", "open", "reconnecting", "open", "closed"]);
  });
});
