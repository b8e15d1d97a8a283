// Shared helpers for the browser tests: JWT minting, the real server process,
// and a headless Chromium. Not a test file itself (it registers no tests).
import { spawn, execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A random HS256 secret for one test server. */
export function newSecret() {
  return crypto.randomBytes(32).toString("hex");
}

/**
 * Mints an HS256 JWT with sub, iat and exp (plus is_staff for admins).
 * @param {string} secret
 * @param {{sub?: string, admin?: boolean, ttl?: number, claims?: object}} [o]
 */
export function mintToken(secret, o = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: o.sub ?? "user-1", iat: now, exp: now + (o.ttl ?? 3600), ...(o.admin ? { is_staff: true } : {}), ...o.claims };
  const enc = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = enc({ alg: "HS256", typ: "JWT" }) + "." + enc(claims);
  return head + "." + crypto.createHmac("sha256", secret).update(head).digest("base64url");
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...opts, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

let binary;

/**
 * The server binary: $WSGATE_BIN, or bin/wsgate-local built from ./cmd/local.
 * Test files run in parallel processes, so the build is serialized with a
 * lock directory; after the first build the others are no-ops for `go build`.
 */
export async function serverBinary() {
  if (process.env.WSGATE_BIN) return path.resolve(process.env.WSGATE_BIN);
  if (binary) return binary;
  const out = path.join(repoRoot, "bin", "wsgate-local");
  const lock = path.join(repoRoot, "bin", ".build.lock");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 180_000) fs.rmSync(lock, { recursive: true, force: true });
      } catch {
        // the holder just released it
      }
      if (Date.now() > deadline) throw new Error("timed out waiting for " + lock);
      await sleep(200);
    }
  }
  try {
    await run("go", ["build", "-o", out, "./cmd/local"], { cwd: repoRoot });
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  binary = out;
  return out;
}

/**
 * Starts the server on 127.0.0.1:port and waits for GET /healthz to answer 200.
 * @param {{port?: number, secret?: string | null, env?: object}} [o] secret null: start without a key (dev mode)
 */
export async function startServer(o = {}) {
  const bin = await serverBinary();
  const port = o.port ?? (await freePort());
  const env = {
    ...process.env,
    WSGATE_ADDR: `127.0.0.1:${port}`,
    // Generous limits: every test connects from 127.0.0.1.
    WSGATE_MAX_CONNECTIONS_PER_IP: "50",
    WSGATE_MAX_CONNECTS_PER_HOUR: "1000",
    ...o.env,
  };
  delete env.WSGATE_BIN;
  if (o.secret === null) delete env.WSGATE_JWT_SECRET;
  else env.WSGATE_JWT_SECRET = o.secret ?? newSecret();
  const proc = spawn(bin, [], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (d) => {
    output += d.toString();
    if (output.length > 1 << 20) output = output.slice(-(1 << 19));
  };
  proc.stdout.on("data", keep);
  proc.stderr.on("data", keep);
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const server = {
    proc,
    port,
    base,
    ws: `ws://127.0.0.1:${port}/ws`,
    secret: env.WSGATE_JWT_SECRET,
    exited,
    output: () => output,
    /** SIGKILL: a crash, no graceful close frames. */
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
    /** SIGTERM, then SIGKILL after 5 s. */
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + 20_000;
  let dead = false;
  exited.then(() => (dead = true));
  for (;;) {
    if (dead) throw new Error(`server exited during start-up:\n${output}`);
    try {
      const res = await fetch(base + "/healthz", { signal: AbortSignal.timeout(1000) });
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.kill();
      throw new Error(`server did not answer /healthz within 20 s:\n${output}`);
    }
    await sleep(100);
  }
}

/** Launches the system Chromium headless. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Opens a page on the server's origin with console errors and page errors
 * collected in page.problems. The document is the served /client.js itself:
 * a real document from the loopback server (a document made up with
 * page.route has no address space, and Chromium's Local Network Access
 * checks would then block its WebSockets to 127.0.0.1).
 */
export async function blankPage(browser, base) {
  const page = await browser.newPage();
  page.problems = [];
  page.on("pageerror", (err) => page.problems.push("pageerror: " + err.message));
  page.on("console", (m) => {
    // Viewing /client.js as a document makes Chromium ask for /favicon.ico.
    if (m.type() === "error" && !m.location().url.endsWith("/favicon.ico")) page.problems.push("console: " + m.text());
  });
  const res = await page.goto(base + "/client.js");
  if (!res.ok()) throw new Error(`GET /client.js: ${res.status()}`);
  return page;
}

/**
 * Creates a WsgateClient in the page as window.clients[name], recording its
 * states, events and messages in window.log[name].
 */
export async function pageClient(page, name, url, options) {
  await page.evaluate(
    async ({ name, url, options }) => {
      const { WsgateClient } = await import("/client.js");
      window.clients ??= {};
      window.log ??= {};
      const log = (window.log[name] = { states: [], events: [], messages: [] });
      const c = new WsgateClient(url, options);
      c.on("state", (s) => log.states.push(s));
      c.on("event", (e) => log.events.push(e));
      c.on("message", (m) => log.messages.push(m));
      window.clients[name] = c;
    },
    { name, url, options },
  );
}

/** Waits until the named client has reached state s (n-th time, default 1st). */
export function waitState(page, name, s, n = 1, timeout = 10_000) {
  return page.waitForFunction(
    ({ name, s, n }) => window.log[name].states.filter((x) => x === s).length >= n,
    { name, s, n },
    { timeout },
  );
}

/** Reads window.log[name]. */
export function readLog(page, name) {
  return page.evaluate((name) => window.log[name], name);
}
