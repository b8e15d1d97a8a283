// The browser client (web/client.js) against the real server, in headless Chromium.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { blankPage, launchBrowser, mintToken, pageClient, readLog, startServer, waitState } from "./helpers.mjs";

describe("WsgateClient against the server", { timeout: 90_000 }, () => {
  let server, browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("connects with a query token, answers ping with pong, echoes ids", { timeout: 20_000 }, async (t) => {
    const page = await blankPage(browser, server.base);
    t.after(() => page.close());
    const token = mintToken(server.secret, { sub: "alice" });
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));

    await pageClient(page, "a", server.ws, { token });
    await waitState(page, "a", "open");
    assert.deepEqual((await readLog(page, "a")).states, ["connecting", "open"]);
    assert.equal(sockets.length, 1);
    assert.equal(new URL(sockets[0]).searchParams.get("token"), token);

    const r = await page.evaluate(async () => {
      const c = window.clients.a;
      const pong = await c.request({ type: "ping" });
      const numbered = await c.request({ type: "ping", id: 7 });
      const who = await c.request({ type: "whoami" });
      let err;
      try {
        await c.request({ type: "no-such-type" });
      } catch (e) {
        err = { name: e.name, code: e.code, isError: e instanceof Error, frameType: e.frame?.type, sameId: e.frame?.id !== undefined };
      }
      return { pong, numbered, who, err };
    });
    assert.equal(r.pong.type, "pong");
    assert.equal(typeof r.pong.id, "string", "request() adds a string id");
    assert.deepEqual(r.numbered, { type: "pong", id: 7 });
    assert.equal(r.who.type, "whoami");
    assert.equal(r.who.user, "alice");
    assert.ok(typeof r.who.connection_id === "string" && r.who.connection_id.length > 0);
    assert.deepEqual(r.err, { name: "WsgateError", code: "unknown_type", isError: true, frameType: "error", sameId: true });
    assert.deepEqual(page.problems, []);

    await page.evaluate(() => window.clients.a.close());
    await waitState(page, "a", "closed");
  });

  test("subprotocol transport keeps the token out of the URL", { timeout: 20_000 }, async (t) => {
    const page = await blankPage(browser, server.base);
    t.after(() => page.close());
    const token = mintToken(server.secret, { sub: "bob" });
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));

    await pageClient(page, "b", server.ws, { token, tokenTransport: "subprotocol" });
    await waitState(page, "b", "open");
    const who = await page.evaluate(() => window.clients.b.request({ type: "whoami" }));
    assert.equal(who.user, "bob");
    assert.equal(sockets.length, 1);
    assert.ok(!sockets[0].includes(token), "token not in the URL");
    await page.evaluate(() => window.clients.b.close());
  });

  test("two pages exchange an event over a channel", { timeout: 20_000 }, async (t) => {
    const pa = await blankPage(browser, server.base);
    const pb = await blankPage(browser, server.base);
    t.after(() => Promise.all([pa.close(), pb.close()]));
    await pageClient(pa, "a", server.ws, { token: mintToken(server.secret, { sub: "alice" }) });
    await pageClient(pb, "b", server.ws, { token: mintToken(server.secret, { sub: "bob" }), tokenTransport: "subprotocol" });
    await Promise.all([waitState(pa, "a", "open"), waitState(pb, "b", "open")]);

    const sub = await pa.evaluate(() => window.clients.a.subscribe("room.1"));
    assert.equal(sub.type, "subscribed");
    assert.equal(sub.channel, "room.1");

    const data = { text: "héllo ✓", n: [1, 2, { deep: null }] };
    const pub = await pb.evaluate((data) => window.clients.b.publish("room.1", data), data);
    assert.equal(pub.type, "published");
    assert.equal(pub.delivered, 1);

    await pa.waitForFunction(() => window.log.a.events.length >= 1, null, { timeout: 5000 });
    const events = (await readLog(pa, "a")).events;
    assert.deepEqual(events, [{ channel: "room.1", data, from: "bob" }]);
    assert.deepEqual(Object.keys(events[0]).sort(), ["channel", "data", "from"]);
    assert.deepEqual((await readLog(pb, "b")).events, [], "the publisher does not get its own event");

    const unsub = await pa.evaluate(() => window.clients.a.unsubscribe("room.1"));
    assert.equal(unsub.type, "unsubscribed");
    const pub2 = await pb.evaluate(() => window.clients.b.publish("room.1", 2));
    assert.equal(pub2.delivered, 0);
    assert.deepEqual(pa.problems, []);
    assert.deepEqual(pb.problems, []);
  });

  test("a bad token ends in closed after at most 5 handshakes, within 20 s", { timeout: 30_000 }, async (t) => {
    const page = await blankPage(browser, server.base);
    t.after(() => page.close());
    let handshakes = 0;
    page.on("websocket", () => handshakes++);
    const bad = mintToken("not-the-server-secret", { sub: "mallory" });
    const started = Date.now();
    await pageClient(page, "m", server.ws, { token: bad });
    await waitState(page, "m", "closed", 1, 25_000);
    const elapsed = Date.now() - started;
    const atClose = handshakes;
    assert.ok(elapsed < 20_000, `closed after ${elapsed} ms`);
    assert.ok(atClose >= 2 && atClose <= 5, `${atClose} handshakes`);
    assert.deepEqual((await readLog(page, "m")).states, ["connecting", "closed"]);
    // Closed means closed: no more attempts, and requests fail at once.
    const code = await page.evaluate(() => window.clients.m.request({ type: "ping" }).catch((e) => e.code));
    assert.equal(code, "closed");
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(handshakes, atClose);
  });
});
