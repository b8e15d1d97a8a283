// The client survives a server crash: the server process is killed and
// restarted on the same port; the client reconnects by itself and its
// channel subscription is restored without the page doing anything.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { blankPage, launchBrowser, mintToken, newSecret, pageClient, readLog, startServer, waitState } from "./helpers.mjs";

let server, browser;
const secret = newSecret();

before(async () => {
  server = await startServer({ secret });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.kill();
});

test("reconnects after a server restart and still receives its channel's events", { timeout: 60_000 }, async (t) => {
  const pa = await blankPage(browser, server.base);
  const pb = await blankPage(browser, server.base);
  t.after(() => Promise.all([pa.close(), pb.close()]));
  await pageClient(pa, "a", server.ws, { token: mintToken(secret, { sub: "alice" }) });
  await pageClient(pb, "b", server.ws, { token: mintToken(secret, { sub: "bob" }) });
  await Promise.all([waitState(pa, "a", "open"), waitState(pb, "b", "open")]);
  await pa.evaluate(() => window.clients.a.subscribe("news"));
  assert.equal((await pb.evaluate(() => window.clients.b.publish("news", "before"))).delivered, 1);

  // Crash the server: no close frames, the sockets just die.
  await server.kill();
  await Promise.all([waitState(pa, "a", "reconnecting"), waitState(pb, "b", "reconnecting")]);
  await sleep(1500); // a few handshakes fail while it is down
  server = await startServer({ secret, port: server.port });
  const restarted = Date.now();

  // First retry within 1 s, then 2, 4 s... (jittered): back within ~10 s.
  await Promise.all([waitState(pa, "a", "open", 2, 15_000), waitState(pb, "b", "open", 2, 15_000)]);
  t.diagnostic(`reopened ${Date.now() - restarted} ms after the restart`);
  // The client re-subscribes "news" by itself right after it reopens.
  await pa.waitForFunction(() => window.log.a.messages.filter((m) => m.type === "subscribed" && m.channel === "news").length >= 2, null, { timeout: 5000 });

  const pub = await pb.evaluate(() => window.clients.b.publish("news", { after: true }));
  assert.equal(pub.delivered, 1);
  await pa.waitForFunction(() => window.log.a.events.length >= 2, null, { timeout: 5000 });
  const a = await readLog(pa, "a");
  assert.deepEqual(a.states, ["connecting", "open", "reconnecting", "open"]);
  assert.deepEqual(a.events, [
    { channel: "news", data: "before", from: "bob" },
    { channel: "news", data: { after: true }, from: "bob" },
  ]);
  assert.deepEqual(await pa.evaluate(() => window.clients.a.channels()), ["news"]);
});
