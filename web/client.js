// wsgate browser client: a dependency-free ES module.
//
//   import { WsgateClient } from "/client.js";
//   const c = new WsgateClient("wss://example.com/ws", { token });
//   c.on("state", (s) => console.log(s));
//   c.on("event", ({ channel, data, from }) => { ... });
//   await c.subscribe("news");
//   await c.publish("news", { hello: "world" });
//   c.close();
//
// The wire protocol is described in SPEC.md ("Messages"). This file is the
// only copy of the client in the repository; the local server serves it at
// /client.js.

/**
 * Connection state.
 *
 * - "connecting": the first connection has not opened yet (also while the
 *   first handshake is being retried).
 * - "open": a connection is open; frames are sent immediately.
 * - "reconnecting": a connection was open and was lost; retrying with backoff.
 * - "closed": final. Either close() was called, or the first connection never
 *   opened within the allowed attempts.
 *
 * @typedef {"connecting" | "open" | "reconnecting" | "closed"} WsgateState
 */

/**
 * An event delivered on a subscribed channel. `from` is the publisher's user
 * id (`sub`), or "server" for events pushed through the admin API.
 *
 * @typedef {object} WsgateEvent
 * @property {string} channel
 * @property {*} data
 * @property {string} from
 */

/**
 * A frame sent to or received from the server: a JSON object with a string
 * `type`, and optionally an `id` (string or number) that the server copies
 * into its reply.
 *
 * @typedef {{ type: string, id?: string | number, [key: string]: * }} WsgateFrame
 */

/**
 * Token source: the JWT itself, or a function returning it (called before
 * every handshake, so it can hand out a refreshed token).
 *
 * @typedef {string | (() => string | Promise<string>)} WsgateTokenSource
 */

/**
 * Client options. Every field except `token` is optional.
 *
 * @typedef {object} WsgateClientOptions
 * @property {WsgateTokenSource} token JWT presented at each handshake.
 * @property {"query" | "subprotocol"} [tokenTransport="query"] How the
 *   token travels: "query" appends `token=JWT` to the URL's query string;
 *   "subprotocol" offers the subprotocols `bearer` and JWT (the token then
 *   stays out of URLs and access logs).
 * @property {number} [requestTimeout=10000] Milliseconds request() waits for
 *   its reply, counted from the call (time spent queued included).
 * @property {number} [pingInterval=300000] Milliseconds between application
 *   `{"type":"ping"}` frames while open; keeps API Gateway's 10-minute idle
 *   timeout away. A ping that gets no pong within `requestTimeout` drops the
 *   connection and reconnects. 0 disables pings.
 * @property {number} [connectTimeout=10000] Milliseconds a handshake may take
 *   before it counts as failed.
 * @property {number} [backoffInitial=1000] Upper bound of the first retry
 *   delay, in milliseconds (the delay is jittered between half and all of it).
 * @property {number} [backoffMax=10000] Cap of the retry delay, in
 *   milliseconds (at most 10000).
 * @property {number} [maxInitialAttempts=5] Handshakes tried before the first
 *   connection is given up (state "closed"). A browser cannot read why a
 *   handshake was refused, so a bad token must not retry forever. Once a
 *   connection has opened, retries are unlimited. At most 5.
 * @property {number} [initialDeadline=18000] Milliseconds after construction
 *   after which a first connection that never opened is given up. At most 20000.
 * @property {number} [maxQueue=100] Frames kept while not open; request()
 *   rejects beyond that. At most 100.
 * @property {typeof WebSocket} [WebSocket] WebSocket constructor to use
 *   (default: the global one); for tests and non-browser runtimes.
 */

/**
 * Error with which request() and its helpers reject.
 *
 * `code` is the server's error code for a `{"type":"error"}` reply
 * (`bad_request`, `unknown_type`, `forbidden`, `too_many_subscriptions`,
 * `rate_limited`, `unavailable`), or one of the client's own:
 * `timeout` (no reply within requestTimeout), `queue_full` (more than
 * maxQueue frames waiting), `disconnected` (the connection carrying the
 * request was lost before its reply), `closed` (the client is closed),
 * `invalid_frame` (not an object with a string `type`).
 */
export class WsgateError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {WsgateFrame} [frame] the server's error frame, when there is one
   */
  constructor(code, message, frame) {
    super(message);
    this.name = "WsgateError";
    /** @type {string} */
    this.code = code;
    /** @type {WsgateFrame | undefined} */
    this.frame = frame;
  }
}

const DEFAULTS = {
  tokenTransport: "query",
  requestTimeout: 10_000,
  pingInterval: 300_000,
  connectTimeout: 10_000,
  backoffInitial: 1_000,
  backoffMax: 10_000,
  maxInitialAttempts: 5,
  initialDeadline: 18_000,
  maxQueue: 100,
};

// A connection that stayed open at least this long resets the backoff.
const STABLE_MS = 5_000;

/** @param {*} v @param {number} def @param {number} max */
function clampNumber(v, def, max) {
  const n = typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : def;
  return Math.min(n, max);
}

/** @param {*} id */
function idKey(id) {
  return typeof id === "number" ? "n:" + id : "s:" + id;
}

/** Calls fn, reporting (not propagating) what it throws. */
function safeCall(fn, arg) {
  try {
    fn(arg);
  } catch (err) {
    if (typeof globalThis.reportError === "function") globalThis.reportError(err);
    else setTimeout(() => { throw err; });
  }
}

/**
 * A wsgate connection that reconnects by itself.
 *
 * Events (see on()):
 * - "state" (WsgateState): every state change, asynchronously from the
 *   constructor so a handler attached right after `new` sees "connecting".
 * - "event" (WsgateEvent): `{channel, data, from}` of each `event` frame.
 * - "message" (WsgateFrame): every frame received, parsed. Text that is not a
 *   JSON object, and binary frames, are ignored.
 */
export class WsgateClient {
  /**
   * Starts connecting at once.
   *
   * @param {string} url absolute ws:// or wss:// URL of the gateway, e.g.
   *   "ws://127.0.0.1:8080/ws"
   * @param {WsgateClientOptions} options
   * @throws {TypeError} when url is not an absolute ws:// or wss:// URL, the
   *   token is missing, or tokenTransport is unknown
   */
  constructor(url, options) {
    const o = options || /** @type {WsgateClientOptions} */ ({});
    if (o.tokenTransport !== undefined && o.tokenTransport !== "query" && o.tokenTransport !== "subprotocol") {
      throw new TypeError('tokenTransport must be "query" or "subprotocol"');
    }
    let parsed;
    try {
      parsed = new URL(String(url));
    } catch {
      throw new TypeError("url must be an absolute ws:// or wss:// URL");
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new TypeError("url must be an absolute ws:// or wss:// URL");
    }
    if (!(typeof o.token === "function" || (typeof o.token === "string" && o.token !== ""))) {
      throw new TypeError("token is required: a JWT, or a function returning one");
    }
    /** @readonly */
    this.url = parsed.toString();
    this._token = o.token;
    this._transport = o.tokenTransport || DEFAULTS.tokenTransport;
    this._requestTimeout = clampNumber(o.requestTimeout, DEFAULTS.requestTimeout, 2 ** 31 - 1);
    this._pingInterval = clampNumber(o.pingInterval, DEFAULTS.pingInterval, 2 ** 31 - 1);
    this._connectTimeout = clampNumber(o.connectTimeout, DEFAULTS.connectTimeout, 2 ** 31 - 1);
    this._backoffMax = clampNumber(o.backoffMax, DEFAULTS.backoffMax, 10_000);
    this._backoffInitial = Math.min(clampNumber(o.backoffInitial, DEFAULTS.backoffInitial, 1_000), this._backoffMax);
    this._maxInitialAttempts = Math.max(1, clampNumber(o.maxInitialAttempts, DEFAULTS.maxInitialAttempts, 5));
    this._initialDeadline = clampNumber(o.initialDeadline, DEFAULTS.initialDeadline, 20_000);
    this._maxQueue = clampNumber(o.maxQueue, DEFAULTS.maxQueue, 100);
    this._WebSocket = o.WebSocket || globalThis.WebSocket;

    /** @type {WsgateState | null} */
    this._state = null;
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
    /** @type {WebSocket | null} */
    this._ws = null;
    this._everOpened = false;
    this._closed = false;
    this._attempts = 0; // handshakes since the last stable connection
    this._openedAt = 0;
    this._startedAt = Date.now();
    this._seq = 0;
    /** Frames waiting for an open connection: {text, key, subscribes}. */
    this._queue = [];
    /** Requests waiting for a reply, by idKey. */
    this._pending = new Map();
    /** Channels to re-subscribe after a reconnect. @type {Set<string>} */
    this._channels = new Set();
    this._retryTimer = null;
    this._connectTimer = null;
    this._deadlineTimer = null;
    this._pingTimer = null;

    this._onOnline = () => {
      if (this._state === "reconnecting" && this._retryTimer !== null) {
        clearTimeout(this._retryTimer);
        this._retryTimer = null;
        this._connect();
      }
    };
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onOnline);
    }

    queueMicrotask(() => {
      if (this._closed) return;
      this._setState("connecting");
      if (this._closed) return; // a state handler closed it
      this._deadlineTimer = setTimeout(() => {
        this._deadlineTimer = null;
        if (!this._everOpened) this._giveUp();
      }, this._initialDeadline);
      this._connect();
    });
  }

  /** The current state ("connecting" until the first state event). @type {WsgateState} */
  get state() {
    return this._state || "connecting";
  }

  /**
   * Adds a handler. Returns a function that removes it.
   *
   * @overload
   * @param {"state"} event
   * @param {(state: WsgateState) => void} fn
   * @returns {() => void}
   */
  /**
   * @overload
   * @param {"event"} event
   * @param {(ev: WsgateEvent) => void} fn
   * @returns {() => void}
   */
  /**
   * @overload
   * @param {"message"} event
   * @param {(frame: WsgateFrame) => void} fn
   * @returns {() => void}
   */
  /**
   * @param {string} event
   * @param {Function} fn
   * @returns {() => void}
   */
  on(event, fn) {
    if (typeof fn !== "function") throw new TypeError("handler must be a function");
    let set = this._handlers.get(event);
    if (!set) this._handlers.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /**
   * Removes a handler added with on().
   *
   * @param {"state" | "event" | "message"} event
   * @param {Function} fn
   */
  off(event, fn) {
    const set = this._handlers.get(event);
    if (set) set.delete(fn);
  }

  /**
   * Sends a frame and waits for the reply carrying the same `id`. An `id`
   * (a string) is added when the frame has none. While not open the frame is
   * queued (at most maxQueue frames).
   *
   * Rejects with a WsgateError: on a `{"type":"error"}` reply (`code` and
   * `frame` from it), on timeout, when the queue is full, when the connection
   * is lost before the reply, or when the client is closed.
   *
   * @param {WsgateFrame} frame
   * @returns {Promise<WsgateFrame>} the reply
   */
  request(frame) {
    if (frame === null || typeof frame !== "object" || Array.isArray(frame) || typeof frame.type !== "string") {
      return Promise.reject(new WsgateError("invalid_frame", "a frame is an object with a string type"));
    }
    if (this._closed) return Promise.reject(new WsgateError("closed", "client is closed"));
    const out = { ...frame };
    if (out.id === undefined || out.id === null) out.id = "c" + ++this._seq;
    if (typeof out.id !== "string" && typeof out.id !== "number") {
      return Promise.reject(new WsgateError("invalid_frame", "id must be a string or a number"));
    }
    const key = idKey(out.id);
    if (this._pending.has(key)) {
      return Promise.reject(new WsgateError("invalid_frame", "a request with this id is already waiting"));
    }
    let text;
    try {
      text = JSON.stringify(out);
    } catch (err) {
      return Promise.reject(new WsgateError("invalid_frame", "frame is not JSON-serializable: " + err.message));
    }
    const open = this._ws !== null && this._state === "open";
    if (!open && this._queue.length >= this._maxQueue) {
      return Promise.reject(new WsgateError("queue_full", `more than ${this._maxQueue} frames waiting for a connection`));
    }
    return new Promise((resolve, reject) => {
      const entry = {
        resolve,
        reject,
        sent: false,
        timer: setTimeout(() => {
          this._dropQueued(key);
          if (this._pending.get(key) === entry) this._pending.delete(key);
          reject(new WsgateError("timeout", `no reply to ${out.type} within ${this._requestTimeout} ms`));
        }, this._requestTimeout),
      };
      this._pending.set(key, entry);
      if (open) {
        entry.sent = true;
        this._ws.send(text);
      } else {
        const subscribes = out.type === "subscribe" && typeof out.channel === "string" ? out.channel : undefined;
        this._queue.push({ text, key, subscribes });
      }
    });
  }

  /**
   * Subscribes to a channel; the client re-subscribes it after every
   * reconnect until unsubscribe() (or until the server refuses it).
   *
   * @param {string} channel
   * @returns {Promise<WsgateFrame>} the `subscribed` reply
   */
  subscribe(channel) {
    this._channels.add(channel);
    return this.request({ type: "subscribe", channel }).catch((err) => {
      if (err instanceof WsgateError && (err.frame || err.code === "queue_full" || err.code === "invalid_frame")) {
        this._channels.delete(channel);
      }
      throw err;
    });
  }

  /**
   * Unsubscribes from a channel and stops re-subscribing it.
   *
   * @param {string} channel
   * @returns {Promise<WsgateFrame>} the `unsubscribed` reply
   */
  unsubscribe(channel) {
    this._channels.delete(channel);
    return this.request({ type: "unsubscribe", channel });
  }

  /**
   * Publishes data to a channel; every other subscriber receives it as an
   * event.
   *
   * @param {string} channel
   * @param {*} data any JSON value
   * @returns {Promise<WsgateFrame>} the `published` reply (`delivered`: how
   *   many connections got the event)
   */
  publish(channel, data) {
    return this.request({ type: "publish", channel, data });
  }

  /** The channels the client keeps subscribed. @returns {string[]} */
  channels() {
    return [...this._channels];
  }

  /**
   * Closes the connection for good: state "closed", no reconnect; waiting
   * requests reject with code "closed".
   */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._teardown(true);
    this._setState("closed");
  }

  // --- internals ---

  _dropQueued(key) {
    const i = this._queue.findIndex((q) => q.key === key);
    if (i >= 0) this._queue.splice(i, 1);
  }

  _emit(event, arg) {
    const set = this._handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) safeCall(fn, arg);
  }

  _setState(s) {
    if (this._state === s) return;
    this._state = s;
    this._emit("state", s);
  }

  _giveUp() {
    if (this._closed) return;
    this._closed = true;
    this._teardown(true);
    this._setState("closed");
  }

  /** Stops timers and the socket; with final, fails every waiting request. */
  _teardown(final) {
    for (const t of ["_retryTimer", "_connectTimer", "_deadlineTimer", "_pingTimer"]) {
      if (this[t] !== null) {
        clearTimeout(this[t]);
        this[t] = null;
      }
    }
    this._dropSocket(1000, "client closed");
    if (final) {
      if (typeof globalThis.removeEventListener === "function") {
        globalThis.removeEventListener("online", this._onOnline);
      }
      this._queue = [];
      const pending = [...this._pending.values()];
      this._pending.clear();
      for (const p of pending) {
        clearTimeout(p.timer);
        p.reject(new WsgateError("closed", "client is closed"));
      }
    }
  }

  /** Detaches and closes the current socket, if any. */
  _dropSocket(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    ws.onopen = ws.onmessage = ws.onerror = null;
    ws.onclose = null;
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, reason);
    } catch {
      // closing a socket that is already going away
    }
  }

  async _connect() {
    if (this._closed) return;
    this._attempts++;
    let token;
    try {
      token = typeof this._token === "function" ? await this._token() : this._token;
    } catch {
      token = undefined;
    }
    if (this._closed) return;
    let ws;
    try {
      if (typeof token !== "string" || token === "") throw new Error("no token");
      if (this._transport === "subprotocol") {
        ws = new this._WebSocket(this.url, ["bearer", token]);
      } else {
        const u = new URL(this.url);
        u.searchParams.set("token", token);
        ws = new this._WebSocket(u.toString());
      }
    } catch {
      this._handshakeFailed();
      return;
    }
    this._ws = ws;
    ws.binaryType = "arraybuffer";
    this._connectTimer = setTimeout(() => {
      this._connectTimer = null;
      if (this._ws === ws && ws.readyState !== 1) {
        this._dropSocket(1000, "handshake timeout");
        this._handshakeFailed();
      }
    }, this._connectTimeout);
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (ev) => this._onMessage(ev);
    ws.onerror = () => {}; // the close event follows; nothing to add here
    ws.onclose = () => this._onClose(ws);
  }

  _onOpen(ws) {
    if (this._ws !== ws) return;
    if (this._connectTimer !== null) {
      clearTimeout(this._connectTimer);
      this._connectTimer = null;
    }
    if (this._deadlineTimer !== null) {
      clearTimeout(this._deadlineTimer);
      this._deadlineTimer = null;
    }
    const reconnect = this._everOpened;
    this._everOpened = true;
    this._openedAt = Date.now();
    this._setState("open");
    if (this._ws !== ws) return; // a state handler closed the client

    // Re-subscribe first (skipping channels a queued frame subscribes anyway),
    // then flush what was queued, in order.
    if (reconnect) {
      const queuedSubs = new Set();
      for (const q of this._queue) {
        if (q.subscribes !== undefined) queuedSubs.add(q.subscribes);
      }
      for (const ch of this._channels) {
        if (queuedSubs.has(ch)) continue;
        this.request({ type: "subscribe", channel: ch }).catch((err) => {
          if (err instanceof WsgateError && err.frame) this._channels.delete(ch);
        });
      }
    }
    const queue = this._queue;
    this._queue = [];
    for (const q of queue) {
      const p = this._pending.get(q.key);
      if (!p) continue; // timed out meanwhile
      p.sent = true;
      ws.send(q.text);
    }
    this._schedulePing();
  }

  _schedulePing() {
    if (this._pingInterval <= 0) return;
    if (this._pingTimer !== null) clearTimeout(this._pingTimer);
    this._pingTimer = setTimeout(() => {
      this._pingTimer = null;
      const ws = this._ws;
      if (!ws || this._state !== "open") return;
      this.request({ type: "ping" }).then(
        () => this._schedulePing(),
        (err) => {
          // No pong: treat the connection as dead and reconnect.
          if (err.code === "timeout" && this._ws === ws) {
            this._dropSocket(4000, "ping timeout");
            this._onClose(ws, true);
          }
        },
      );
    }, this._pingInterval);
  }

  _onMessage(ev) {
    if (typeof ev.data !== "string") return; // binary frames are not part of the protocol
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) return;
    this._emit("message", frame);
    if (frame.type === "event" && typeof frame.channel === "string") {
      this._emit("event", { channel: frame.channel, data: frame.data, from: frame.from });
    }
    if (typeof frame.id === "string" || typeof frame.id === "number") {
      const key = idKey(frame.id);
      const p = this._pending.get(key);
      if (p && p.sent) {
        this._pending.delete(key);
        clearTimeout(p.timer);
        if (frame.type === "error") {
          const code = typeof frame.code === "string" ? frame.code : "error";
          const msg = typeof frame.message === "string" && frame.message ? frame.message : code;
          p.reject(new WsgateError(code, msg, frame));
        } else {
          p.resolve(frame);
        }
      }
    }
  }

  _onClose(ws, detached) {
    if (!detached && this._ws !== ws) return;
    if (!detached) {
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
    if (this._connectTimer !== null) {
      clearTimeout(this._connectTimer);
      this._connectTimer = null;
    }
    if (this._pingTimer !== null) {
      clearTimeout(this._pingTimer);
      this._pingTimer = null;
    }
    // Requests already on the lost connection will get no reply.
    for (const [key, p] of this._pending) {
      if (!p.sent) continue;
      this._pending.delete(key);
      clearTimeout(p.timer);
      p.reject(new WsgateError("disconnected", "connection lost before the reply"));
    }
    if (this._closed) return;
    if (this._openedAt !== 0) {
      // This socket had opened.
      if (Date.now() - this._openedAt >= STABLE_MS) this._attempts = 0;
      this._openedAt = 0;
      this._setState("reconnecting");
      this._scheduleRetry();
    } else {
      this._handshakeFailed();
    }
  }

  _handshakeFailed() {
    if (this._closed) return;
    if (!this._everOpened) {
      const left = this._initialDeadline - (Date.now() - this._startedAt);
      if (this._attempts >= this._maxInitialAttempts || left <= 0) {
        this._giveUp();
        return;
      }
    }
    this._scheduleRetry();
  }

  _scheduleRetry() {
    if (this._closed || this._retryTimer !== null) return;
    // Exponential backoff with jitter: the n-th retry waits between half and
    // all of min(cap, initial * 2^(n-1)).
    const n = Math.max(0, this._attempts - 1);
    const ceiling = Math.min(this._backoffMax, this._backoffInitial * 2 ** Math.min(n, 20));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._connect();
    }, delay);
  }
}
