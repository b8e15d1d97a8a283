// wsgate dev console: drives a WsgateClient and watches the admin metrics.
//
// Nothing here sends a token anywhere until the user enters one (or clicks
// "Use dev tokens"): loading the page makes no WebSocket and no /api request.
// Errors are shown on the page, never thrown or written to the console.

import { WsgateClient } from "/client.js";

const METRICS_URL = "/api/monitoring/websocket/metrics/";
const METRICS_EVERY_MS = 3000;
const CHART_POINTS = 60;
const LOG_MAX = 500;

const $ = (id) => document.getElementById(id);

const ui = {
  state: $("state"),
  wsUrl: $("ws-url"),
  token: $("token"),
  transport: $("transport"),
  connect: $("connect"),
  disconnect: $("disconnect"),
  devTokens: $("dev-tokens"),
  connectionNote: $("connection-note"),
  subChannel: $("sub-channel"),
  subscriptions: $("subscriptions"),
  pubChannel: $("pub-channel"),
  pubData: $("pub-data"),
  publishNote: $("publish-note"),
  rawFrame: $("raw-frame"),
  rawNote: $("raw-note"),
  adminToken: $("admin-token"),
  metricsStop: $("metrics-stop"),
  metricsNote: $("metrics-note"),
  metricsValues: $("metrics-values"),
  logList: $("log-list"),
};

ui.wsUrl.value = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

// --- log ---

function time() {
  return new Date().toLocaleTimeString(undefined, { hour12: false });
}

/**
 * Adds a log line. kind: "in" | "out" | "state" | "error" | "info".
 * @param {string} kind
 * @param {string} text
 */
function log(kind, text) {
  const li = document.createElement("li");
  li.className = "log-" + kind;
  const t = document.createElement("time");
  t.textContent = time();
  const k = document.createElement("span");
  k.className = "kind";
  k.textContent = kind === "in" ? "←" : kind === "out" ? "→" : kind;
  const body = document.createElement("code");
  body.textContent = text;
  li.append(t, k, body);
  ui.logList.prepend(li);
  while (ui.logList.childElementCount > LOG_MAX) ui.logList.lastElementChild.remove();
}

$("log-clear").addEventListener("click", () => ui.logList.replaceChildren());

function note(el, text, bad = false) {
  el.textContent = text;
  el.classList.toggle("bad", bad);
}

/** Parses JSON typed by the user; returns {value} or {error}. */
function parseJSON(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: err.message };
  }
}

// --- connection ---

/** @type {WsgateClient | null} */
let client = null;
let userClosed = false;

function setStateBadge(s) {
  ui.state.dataset.state = s;
  ui.state.textContent = s === "idle" ? "not connected" : s;
}

function renderSubscriptions() {
  const channels = client ? client.channels() : [];
  ui.subscriptions.replaceChildren(
    ...channels.map((ch) => {
      const li = document.createElement("li");
      const name = document.createElement("button");
      name.type = "button";
      name.className = "chip";
      name.textContent = ch;
      name.title = "publish to " + ch;
      name.addEventListener("click", () => {
        ui.pubChannel.value = ch;
        ui.pubData.focus();
      });
      const x = document.createElement("button");
      x.type = "button";
      x.className = "chip-x";
      x.textContent = "×";
      x.title = "unsubscribe " + ch;
      x.setAttribute("aria-label", "unsubscribe " + ch);
      x.addEventListener("click", () => send({ type: "unsubscribe", channel: ch }, ui.publishNote));
      li.append(name, x);
      return li;
    }),
  );
}

function connect() {
  const token = ui.token.value.trim();
  if (!token) {
    note(ui.connectionNote, "Enter a token first.", true);
    ui.token.focus();
    return;
  }
  let url;
  try {
    url = new URL(ui.wsUrl.value);
    if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Error("not a ws:// or wss:// URL");
  } catch (err) {
    note(ui.connectionNote, "Bad WebSocket URL: " + err.message, true);
    return;
  }
  disconnect(false);
  userClosed = false;
  note(ui.connectionNote, "");
  let c;
  try {
    c = new WsgateClient(url.toString(), { token, tokenTransport: ui.transport.value === "subprotocol" ? "subprotocol" : "query" });
  } catch (err) {
    note(ui.connectionNote, err.message, true);
    return;
  }
  client = c;
  c.on("state", (s) => {
    if (client !== c) return;
    setStateBadge(s);
    log("state", s);
    ui.connect.disabled = s !== "closed";
    ui.disconnect.disabled = s === "closed";
    if (s === "open") note(ui.connectionNote, "Connected as " + (tokenSubject(token) ?? "?") + ".");
    if (s === "reconnecting") note(ui.connectionNote, "Connection lost; retrying with backoff…");
    if (s === "closed" && !userClosed) {
      note(
        ui.connectionNote,
        "Gave up: the handshake kept failing. A browser cannot see why; usually a bad or expired token, a refused Origin, a connection limit, or the server is down.",
        true,
      );
    }
    renderSubscriptions();
  });
  c.on("message", (frame) => log(frame.type === "error" ? "error" : "in", JSON.stringify(frame)));
}

function disconnect(byUser = true) {
  if (!client) return;
  userClosed = true;
  const c = client;
  c.close();
  if (byUser) note(ui.connectionNote, "Disconnected.");
  renderSubscriptions();
}

/** The `sub` of a JWT, read without checking it (display only). */
function tokenSubject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return typeof claims.sub === "string" ? claims.sub : null;
  } catch {
    return null;
  }
}

/**
 * Sends a frame through the client, logging it and its outcome.
 * @param {object} frame
 * @param {HTMLElement} noteEl where to report the outcome
 */
function send(frame, noteEl) {
  if (!client || client.state === "closed") {
    note(noteEl, "Not connected.", true);
    return;
  }
  let p;
  if (frame.type === "subscribe") p = client.subscribe(frame.channel);
  else if (frame.type === "unsubscribe") p = client.unsubscribe(frame.channel);
  else p = client.request(frame);
  log("out", JSON.stringify(frame));
  renderSubscriptions();
  note(noteEl, "…");
  p.then(
    (reply) => {
      note(noteEl, reply.type + (reply.delivered !== undefined ? ": delivered to " + reply.delivered : ""));
      renderSubscriptions();
    },
    (err) => {
      note(noteEl, (err.code || "error") + ": " + err.message, true);
      if (!err.frame) log("error", `${frame.type}: ${err.code || "error"}: ${err.message}`);
      renderSubscriptions();
    },
  );
}

$("connect-form").addEventListener("submit", (e) => {
  e.preventDefault();
  connect();
});
ui.disconnect.addEventListener("click", () => disconnect());

$("subscribe-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const ch = ui.subChannel.value.trim();
  if (!ch) return;
  send({ type: "subscribe", channel: ch }, ui.publishNote);
  if (!ui.pubChannel.value) ui.pubChannel.value = ch;
});

$("publish-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const ch = ui.pubChannel.value.trim();
  const parsed = parseJSON(ui.pubData.value);
  if ("error" in parsed) {
    note(ui.publishNote, "Data is not JSON: " + parsed.error, true);
    return;
  }
  send({ type: "publish", channel: ch, data: parsed.value }, ui.publishNote);
});

function sendRaw(text) {
  const parsed = parseJSON(text);
  if ("error" in parsed) {
    note(ui.rawNote, "Not JSON: " + parsed.error, true);
    return;
  }
  const f = parsed.value;
  if (f === null || typeof f !== "object" || Array.isArray(f) || typeof f.type !== "string") {
    note(ui.rawNote, 'A frame is a JSON object with a string "type".', true);
    return;
  }
  send(f, ui.rawNote);
}

$("raw-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sendRaw(ui.rawFrame.value);
});
for (const b of document.querySelectorAll("#raw-form [data-frame]")) {
  b.addEventListener("click", () => sendRaw(b.dataset.frame));
}

// --- dev tokens (only on click: elsewhere the 404 would be a console error) ---

ui.devTokens.addEventListener("click", async () => {
  ui.devTokens.disabled = true;
  try {
    const res = await fetch("/dev/tokens", { cache: "no-store" });
    if (!res.ok) {
      note(ui.connectionNote, `No dev tokens here (${res.status}): only a dev server with no configured key hands them out, and only to loopback.`, true);
      return;
    }
    const body = await res.json();
    if (typeof body.user === "string") ui.token.value = body.user;
    if (typeof body.admin === "string") ui.adminToken.value = body.admin;
    note(ui.connectionNote, "Dev tokens filled in (DEV ONLY). Connect when ready.");
    log("info", "dev tokens filled in");
    if (ui.adminToken.value) startMetrics();
  } catch (err) {
    note(ui.connectionNote, "Could not fetch dev tokens: " + err.message, true);
  } finally {
    ui.devTokens.disabled = false;
  }
});

// --- metrics ---

const LABELS = {
  active_connections: "active connections",
  connections_today: "connections today",
  messages_sent: "messages sent",
  messages_received: "messages received",
  avg_connection_duration: "avg connection (s)",
  messages_per_minute: "messages / minute",
};

let metricsTimer = null;
let metricsGen = 0;
const series = { mpm: [], active: [] };

function stopMetrics(text) {
  metricsGen++;
  clearTimeout(metricsTimer);
  metricsTimer = null;
  ui.metricsStop.disabled = true;
  if (text !== undefined) note(ui.metricsNote, text);
}

function startMetrics() {
  const token = ui.adminToken.value.trim();
  if (!token) {
    note(ui.metricsNote, "Enter an admin token first.", true);
    return;
  }
  stopMetrics();
  series.mpm.length = 0;
  series.active.length = 0;
  ui.metricsStop.disabled = false;
  note(ui.metricsNote, "Polling every " + METRICS_EVERY_MS / 1000 + " s…");
  const gen = metricsGen;
  const poll = async () => {
    let res;
    try {
      res = await fetch(METRICS_URL, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    } catch (err) {
      if (gen !== metricsGen) return;
      note(ui.metricsNote, "Server unreachable (" + err.message + "); retrying.", true);
      metricsTimer = setTimeout(poll, METRICS_EVERY_MS);
      return;
    }
    if (gen !== metricsGen) return;
    if (res.status === 401 || res.status === 403) {
      stopMetrics();
      note(ui.metricsNote, res.status === 401 ? "401: the admin token was refused (bad or expired)." : "403: valid token, but not an admin.", true);
      return;
    }
    if (!res.ok) {
      note(ui.metricsNote, `HTTP ${res.status}; retrying.`, true);
    } else {
      let m;
      try {
        m = await res.json();
      } catch {
        m = null;
      }
      if (gen !== metricsGen) return;
      if (m && typeof m === "object") {
        renderMetrics(m);
        note(ui.metricsNote, "Updated " + (typeof m.timestamp === "string" ? m.timestamp : time()) + ".");
      } else {
        note(ui.metricsNote, "The metrics reply was not a JSON object; retrying.", true);
      }
    }
    metricsTimer = setTimeout(poll, METRICS_EVERY_MS);
  };
  poll();
}

function formatValue(key, v) {
  if (typeof v === "number") {
    return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(2);
  }
  if (v !== null && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function renderMetrics(m) {
  const keys = Object.keys(LABELS).filter((k) => k in m);
  for (const k of Object.keys(m)) if (!(k in LABELS) && k !== "timestamp") keys.push(k);
  ui.metricsValues.replaceChildren(
    ...keys.map((k) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = LABELS[k] || k.replace(/_/g, " ");
      const dd = document.createElement("dd");
      dd.dataset.metric = k;
      dd.textContent = formatValue(k, m[k]);
      div.append(dt, dd);
      return div;
    }),
  );
  push(series.mpm, m.messages_per_minute);
  push(series.active, m.active_connections);
  drawChart("chart-mpm", "mpm", series.mpm);
  drawChart("chart-active", "active", series.active);
}

function push(arr, v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return;
  arr.push(v);
  if (arr.length > CHART_POINTS) arr.shift();
}

/** Draws a sparkline of values (oldest left) into the SVG's polyline. */
function drawChart(svgId, name, values) {
  const svg = $(svgId);
  const line = svg.querySelector("polyline");
  const [w, h, pad] = [300, 80, 4];
  const max = Math.max(1, ...values) * 1.25; // headroom: a flat line stays off the top edge
  // Right-aligned; the x scale widens until CHART_POINTS samples fill it.
  const step = w / (Math.min(CHART_POINTS, Math.max(values.length, 10)) - 1);
  const x0 = w - (values.length - 1) * step;
  const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - pad - (v / max) * (h - 2 * pad)).toFixed(1)}`);
  if (pts.length === 1) pts.unshift(`${(w - step).toFixed(1)},${pts[0].split(",")[1]}`);
  line.setAttribute("points", pts.join(" "));
  const range = document.querySelector(`[data-range="${name}"]`);
  if (range && values.length) range.textContent = `now ${values[values.length - 1]}, max ${Math.max(...values)}`;
}

$("metrics-form").addEventListener("submit", (e) => {
  e.preventDefault();
  startMetrics();
});
ui.metricsStop.addEventListener("click", () => stopMetrics("Stopped."));
