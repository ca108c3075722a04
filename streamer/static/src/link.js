// The client's connection to its session, kept open: the transport of the moment, `auto`'s
// fallbacks (WebSocket → SSE → REST), the connect timeout (per transport), the liveness
// watchdog and the WebSocket's keep-alive pings, and reconnects with backoff (skipped when the
// network comes back or the page becomes visible again). What arrives goes to the owner
// (StreamClient) through hooks; the owner's settings are read live. Before its first
// connection it makes the session (`POST /api/sessions`), and again when the server forgot a
// session whose id it had made; the token is resolved before each connection attempt.

import { authHeaders, createSession, isFinal, resolveToken, wsCredentials } from './auth.js';
import { backoffDelay, givesUp } from './reconnect.js';
import { EventStreamTransport, RestTransport, WebSocketTransport } from './transports.js';

/** @typedef {import('./protocol.js').ServerEvent} ServerEvent */
/** @typedef {import('./protocol.js').ConnectionState} ConnectionState */
/** @typedef {import('./protocol.js').TransportChoice} TransportChoice */
/** @typedef {import('./protocol.js').TransportKind} TransportKind */
/** @typedef {import('./transports.js').LostInfo} LostInfo */
/** @typedef {WebSocketTransport|EventStreamTransport|RestTransport} Transport */
/** @typedef {import('./auth.js').SessionInfo} SessionInfo */

/**
 * The owner's settings (StreamClient's fields of the same names).
 * @typedef {object} LinkSettings
 * @property {string} baseUrl
 * @property {string|null} sessionId the session's id (null until the server has made it)
 * @property {string|null} requestedSessionId the id the application chose, or null
 * @property {import('./auth.js').TokenOption} token
 * @property {string} csrfCookie
 * @property {TransportChoice} transportChoice
 * @property {import('./reconnect.js').ReconnectPolicy|null} reconnectOptions
 * @property {ConnectTimeout} connectTimeoutMs
 * @property {boolean} restFallback
 * @property {number} pingIntervalMs
 * @property {number} heartbeatTimeoutFactor
 * @property {boolean} resumeOnReconnect
 * @property {object|null} [restored] set: `sessionId` was kept from an earlier page (persist): a
 *   server that forgot it, or that refuses it (`forbidden`: another identity's), gets a new
 *   session made at once, as when the server forgot a session whose id it had made
 */

/**
 * How long a connection attempt may take before it counts as one that could not open, in
 * ms (0 = wait for ever): one number for every transport, or one per transport (a missing
 * one takes {@link DEFAULT_CONNECT_TIMEOUT_MS}).
 * @typedef {number|{websocket?: number, sse?: number, rest?: number}} ConnectTimeout
 */

/** The connect timeout when the application gives none: 5 s (each transport). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * The connect timeout of `kind`, in ms (0 = none).
 * @param {ConnectTimeout|undefined} option
 * @param {TransportKind} kind
 * @returns {number}
 */
export function connectTimeoutOf(option, kind) {
  const ms = typeof option === 'object' && option !== null ? option[kind] : option;
  return typeof ms === 'number' && ms >= 0 ? ms : DEFAULT_CONNECT_TIMEOUT_MS;
}

/**
 * @typedef {object} LinkHooks
 * @property {(ev: ServerEvent, eventId: string|null) => void} onEvent a server event arrived
 * @property {(state: ConnectionState, extra: Record<string, any>) => void} onState
 *   the state changed (`extra`: attempt, delayMs, error, resumed, reconnect)
 * @property {() => {streamId: string, epoch: string|null, lastSeq: number}|null} cursor
 *   where to resume: the unfinished stream being delivered, if any
 * @property {() => void} onClose the connection of the moment closed (pending pings fail)
 * @property {() => Promise<any>} ping send a keep-alive `ping`
 * @property {(info: SessionInfo, recreated: boolean) => void} onSession the server made
 *   (or confirmed) the session; `recreated`: anew, after it had forgotten the one before
 */

export class Link {
  /**
   * @param {LinkSettings} settings
   * @param {LinkHooks} hooks
   */
  constructor(settings, hooks) {
    /** @private */
    this._settings = settings;
    /** @private */
    this._hooks = hooks;
    /** @type {ConnectionState} */
    this.state = 'disconnected';
    /** @type {TransportKind|null} the transport in use (or last used) */
    this.kind = null;
    /** @type {string|null} the server's id of this connection */
    this.connectionId = null;
    /** @type {number} heartbeat period announced by the server */
    this.heartbeatMs = 15000;
    /** @private @type {TransportKind} */
    this._preferred = settings.transportChoice === 'auto' ? 'websocket'
      : settings.transportChoice;
    /** @private @type {Transport|null} */
    this._transport = null;
    /** @private @type {Set<TransportKind>} transports that could not open in this round */
    this._failed = new Set();
    /** @private */
    this._wantOpen = false;
    /** @private failed attempts in a row */
    this._attempt = 0;
    /** @private */
    this._everConnected = false;
    /** @private @type {{retry: any, connect: any, ping: any, watchdog: any}} */
    this._timers = { retry: null, connect: null, ping: null, watchdog: null };
    /** @private */
    this._lastActivity = 0;
    /** @private */
    this._retryAfterMs = 0;
    /** @private @type {number|null} */
    this._sseRetryMs = null;
    /** @private @type {string|null} */
    this._lastEventId = null;
    /** @private @type {TransportKind|null} the streaming transport that last connected */
    this._lastGood = null;
    /** @private @type {{resolve: () => void, reject: (err: any) => void}[]} */
    this._waiters = [];
    /** @private whether the server has made this client's session */
    this._sessionReady = false;
    /** @private the session was made anew since the last connection: no resume cursor */
    this._newSession = false;
    /** @private a forgotten session was made anew and has not connected since */
    this._recreated = false;
    /** @private @type {object|null} the connection attempt of the moment */
    this._current = null;
    /** @private @type {AbortController|null} the attempt's session request */
    this._setup = null;
    /** @private the session id was kept from an earlier page, not yet confirmed */
    this._restored = Boolean(settings.restored && settings.sessionId);
    if (this._restored && !settings.requestedSessionId) this._sessionReady = true;
    /** @private */
    this._onWake = () => this.wake();
    /** @private */
    this._onVisibility = () => {
      if (/** @type {any} */ (globalThis).document?.visibilityState === 'visible') this.wake();
    };
  }

  /** @returns {WebSocket|null} the open WebSocket, if the transport is one */
  get socket() {
    const t = this._transport;
    return t && t.kind === 'websocket' ? t.socket : null;
  }

  /**
   * Open (and keep open until {@link close}).
   * @returns {Promise<void>} resolves when connected; rejects on giving up or {@link close}
   */
  open() {
    /** @type {Promise<void>} */
    const p = new Promise((resolve, reject) => {
      if (this.state === 'connected') resolve();
      else this._waiters.push({ resolve, reject });
    });
    if (!this._wantOpen) {
      this._wantOpen = true;
      this._attempt = 0;
      this._listen(true);
      this._open();
    }
    return p;
  }

  /** Close for good: no reconnect. */
  close() {
    this._wantOpen = false;
    this._listen(false);
    clearTimeout(this._timers.retry);
    this._teardown(1000, 'client closed');
    this._setState('disconnected');
    this._settle(new Error('client closed'));
  }

  /** Drop the connection as a network failure would: reconnect with backoff, resume. */
  drop() {
    if (!this._wantOpen) return;
    this._lost({ opened: true, error: new Error('connection dropped on purpose') });
  }

  /**
   * The network came back (`online`) or the page became visible again: a reconnect waiting
   * out its backoff goes now (the backoff starts again from its first delay), and a
   * streaming connection silent for longer than a heartbeat (a laptop that slept: its socket
   * is dead but does not know it yet) is given up and made again at once.
   */
  wake() {
    if (!this._wantOpen) return;
    if (this.state === 'connected' && this.kind !== 'rest') {
      const silentMs = Date.now() - this._lastActivity;
      if (silentMs <= this.heartbeatMs + 1000) return;
      this._lost({ opened: true, error: new Error(`no data for ${silentMs} ms (woke up)`) });
    }
    if (this.state !== 'retrying') return;
    clearTimeout(this._timers.retry);
    this._timers.retry = null;
    this._attempt = 0;
    this._open();
  }

  /**
   * (Un)listen to `online` (window) and `visibilitychange` (document), where there are such.
   * @private
   * @param {boolean} on
   */
  _listen(on) {
    const g = /** @type {any} */ (globalThis);
    const method = on ? 'addEventListener' : 'removeEventListener';
    if (typeof g[method] === 'function') g[method]('online', this._onWake);
    const doc = g.document;
    if (doc && typeof doc[method] === 'function') {
      doc[method]('visibilitychange', this._onVisibility);
    }
  }

  /**
   * Send a control message on the connection of the moment. While the link is connecting or
   * waiting to retry, the message waits for the connection (as a `start` right after page
   * load or during a reconnect should), then goes on it.
   * @param {Record<string, any>} msg
   * @returns {Promise<any>} what the transport's `send` gives; rejects at once when the link
   *   is not open (never opened, closed, given up), or with the reason the link gives up
   *   or is closed while the message waits
   */
  async send(msg) {
    while (this.state !== 'connected' || !this._transport) {
      if (!this._wantOpen) throw new Error(`not connected (${this.state})`);
      /** @type {Promise<void>} */
      const connected = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
      await connected;
    }
    return this._transport.send(msg);
  }

  /**
   * The server's `connected` event: the connection is up.
   * @param {ServerEvent} ev
   */
  connected(ev) {
    this.connectionId = ev.connection_id ?? null;
    if (typeof ev.heartbeat_ms === 'number' && ev.heartbeat_ms > 0) {
      this.heartbeatMs = ev.heartbeat_ms;
    }
    this._lastGood = this.kind;
    this._startTimers();
    this._markConnected(Boolean(ev.resumed));
  }

  /**
   * An `error` event's `retry_after_ms`: the next reconnect waits at least that long.
   * @param {number} ms
   */
  retryAfter(ms) {
    this._retryAfterMs = ms;
  }

  /**
   * @private
   * @param {ConnectionState} state
   * @param {Record<string, any>} [extra]
   */
  _setState(state, extra = {}) {
    this.state = state;
    this._hooks.onState(state, extra);
  }

  /**
   * @private
   * @param {any} err null: resolve the `open()` promises; else reject them
   */
  _settle(err) {
    const waiters = this._waiters;
    this._waiters = [];
    for (const w of waiters) (err ? w.reject(err) : w.resolve());
  }

  /** @private open the preferred transport, with a connect timeout */
  _open() {
    const { transportChoice } = this._settings;
    let kind = transportChoice === 'auto' ? this._preferred : transportChoice;
    if (kind === 'websocket' && typeof WebSocket === 'undefined') kind = 'sse';
    this.kind = kind;
    this._setState('connecting', { attempt: this._attempt });
    const attempt = {};
    this._current = attempt;
    const connectTimeoutMs = connectTimeoutOf(this._settings.connectTimeoutMs, kind);
    if (connectTimeoutMs > 0) {
      this._timers.connect = setTimeout(() => {
        if (this._current !== attempt) return;
        this._lost({ opened: false, setup: !this._transport,
          error: new Error(`${kind}: not connected after ${connectTimeoutMs} ms`) });
      }, connectTimeoutMs);
    }
    this._prepare(kind, attempt).catch((error) => {
      if (this._current === attempt) {
        this._lost({ opened: false, setup: true, fatal: isFinal(error), error });
      }
    });
  }

  /**
   * One attempt: the token, the session (when the server has not made it yet), the transport.
   * @private
   * @param {TransportKind} kind
   * @param {object} attempt stale once `this._current` is another
   */
  async _prepare(kind, attempt) {
    const settings = this._settings;
    const token = await resolveToken(settings.token);
    if (this._current !== attempt) return;
    if (!this._sessionReady) {
      const setup = new AbortController();
      this._setup = setup;
      const info = await createSession(settings.baseUrl, { sessionId: settings.requestedSessionId,
        token, csrfCookie: settings.csrfCookie, signal: setup.signal });
      if (this._current !== attempt) return;
      this._setup = null;
      this._sessionReady = true;
      // an existing session of the application's id (200) keeps a kept cursor
      this._newSession = info.created !== false || this._recreated;
      this._hooks.onSession(info, this._recreated);
    }
    const transport = this._transportOf(kind, token);
    this._transport = transport;
    transport.open();
  }

  /**
   * @private
   * @param {TransportKind} kind
   * @param {string|null} token the attempt's (POSTs resolve the token again when they go out)
   * @returns {Transport}
   */
  _transportOf(kind, token) {
    const handlers = {
      /** @type {(ev: ServerEvent, id: string|null) => void} */
      onEvent: (ev, id) => {
        if (id) this._lastEventId = id;
        this._hooks.onEvent(ev, id);
      },
      onActivity: () => {
        this._lastActivity = Date.now();
      },
      /** @type {(info: LostInfo) => void} */
      onLost: (info) => this._lost(info),
      /** @type {(ms: number) => void} */
      onRetry: (ms) => {
        this._sseRetryMs = ms;
      },
      onReady: () => this._markConnected(false),
    };
    const settings = this._settings;
    const { baseUrl, resumeOnReconnect, csrfCookie } = settings;
    const session = `${baseUrl}/api/sessions/${encodeURIComponent(this._sessionId())}`;
    const cursor = resumeOnReconnect && !this._newSession ? this._hooks.cursor() : null;
    if (kind === 'websocket') {
      return new WebSocketTransport(this._wsUrl(cursor), handlers, wsCredentials(token));
    }
    const http = {
      headers: authHeaders(token),
      post: async () => authHeaders(await resolveToken(settings.token), { json: true, csrfCookie }),
    };
    if (kind === 'sse') {
      return new EventStreamTransport({ eventsUrl: `${session}/events`,
        controlUrl: `${session}/control`, lastEventId: cursor ? this._lastEventId : null,
        ...http }, handlers);
    }
    return new RestTransport({ baseUrl, completeUrl: `${session}/complete`,
      timeoutMs: connectTimeoutOf(settings.connectTimeoutMs, 'rest') || 10000, post: http.post },
    handlers);
  }

  /**
   * @private
   * @returns {string} the session's id (made by now)
   */
  _sessionId() {
    const id = this._settings.sessionId;
    if (!id) throw new Error('streamer: no session yet');
    return id;
  }

  /**
   * The WebSocket URL, with the resume cursor.
   * @private
   * @param {{streamId: string, epoch: string|null, lastSeq: number}|null} cursor
   */
  _wsUrl(cursor) {
    const url = new URL(`${this._settings.baseUrl}/ws/stream/${encodeURIComponent(this._sessionId())}`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (cursor) {
      url.searchParams.set('stream_id', cursor.streamId);
      if (cursor.epoch) url.searchParams.set('epoch', cursor.epoch);
      url.searchParams.set('last_seq', String(cursor.lastSeq));
    }
    return url.toString();
  }

  /**
   * The server is there: `connected` (WebSocket, SSE) or the health check (REST).
   * @private
   * @param {boolean} resumed
   */
  _markConnected(resumed) {
    clearTimeout(this._timers.connect);
    this._timers.connect = null;
    const reconnect = this._everConnected;
    this._everConnected = true;
    this._newSession = false;
    this._recreated = false;
    this._restored = false;
    this._attempt = 0;
    this._failed.clear();
    this._setState('connected', { resumed, reconnect });
    this._settle(null);
  }

  /**
   * Stop timers and the connection of the moment without changing the state.
   * @private
   * @param {number} [code]
   * @param {string} [reason]
   */
  _teardown(code = 1000, reason = '') {
    const timers = this._timers;
    clearTimeout(timers.connect);
    clearInterval(timers.ping);
    clearInterval(timers.watchdog);
    timers.connect = timers.ping = timers.watchdog = null;
    this._current = null;
    this._setup?.abort();
    this._setup = null;
    const transport = this._transport;
    this._transport = null;
    transport?.close(code, reason);
    this.connectionId = null;
    this._hooks.onClose();
  }

  /**
   * The connection ended (or could not open): the next transport of `auto`'s fallbacks at
   * once, else reconnect with backoff (unless closed or given up).
   * @private
   * @param {LostInfo} info
   */
  _lost(info) {
    const failed = this.kind;
    this._teardown();
    if (!this._wantOpen) return;
    const code = /** @type {any} */ (info.error)?.code;
    const gone = code === 'session_not_found' || (code === 'forbidden' && this._restored);
    if (gone && this._forgotten()) {
      this._open();
      return;
    }
    if (code === 'session_not_found') info.fatal = true;
    const next = this._fallback(failed, info);
    if (next) {
      this._preferred = next;
      this._open();
      return;
    }
    this._failed.clear();
    const policy = this._settings.reconnectOptions;
    if (info.fatal || !policy || givesUp(policy, this._attempt)) {
      this._wantOpen = false;
      this._setState('error', { error: info.error });
      this._settle(info.error instanceof Error ? info.error
        : new Error(String(info.error || 'connection failed')));
      return;
    }
    // auto: retry with the streaming transport that last worked (WebSocket if none did)
    if (this._settings.transportChoice === 'auto') this._preferred = this._lastGood || 'websocket';
    const delay = backoffDelay(policy, this._attempt, { retryAfterMs: this._retryAfterMs,
      sseRetryMs: this.kind === 'sse' ? this._sseRetryMs : null });
    this._retryAfterMs = 0;
    this._attempt += 1;
    this._setState('retrying', { attempt: this._attempt, delayMs: Math.round(delay),
      error: info.error });
    this._timers.retry = setTimeout(() => {
      if (this._wantOpen) this._open();
    }, delay);
  }

  /**
   * The server forgot the session: whether to make a new one at once (its id was the
   * server's, and no session made anew already failed so), else the end (the application
   * chose the id: `connect()` again makes it anew under that id).
   * @private
   * @returns {boolean}
   */
  _forgotten() {
    this._sessionReady = false;
    this._restored = false;
    if (this._settings.requestedSessionId || this._recreated) return false;
    this._recreated = true;
    return true;
  }

  /**
   * `auto`: the transport to try at once after `failed` could not open (WebSocket → SSE →
   * REST, the last only when both others failed in this round), or null.
   * @private
   * @param {TransportKind|null} failed
   * @param {LostInfo} info
   * @returns {TransportKind|null}
   */
  _fallback(failed, info) {
    const { transportChoice, restFallback } = this._settings;
    if (transportChoice !== 'auto' || !failed || info.opened || info.fatal || info.setup) {
      return null;
    }
    this._failed.add(failed);
    if (failed === 'websocket') return 'sse';
    if (failed === 'sse' && restFallback && this._failed.has('websocket')) return 'rest';
    return null;
  }

  /** @private the liveness watchdog, and the WebSocket's keep-alive pings */
  _startTimers() {
    const timers = this._timers;
    clearInterval(timers.ping);
    clearInterval(timers.watchdog);
    const transport = this._transport;
    const { pingIntervalMs } = this._settings;
    this._lastActivity = Date.now();
    timers.watchdog = setInterval(() => {
      if (this._transport !== transport) return;
      const silentMs = Date.now() - this._lastActivity;
      if (silentMs > this.heartbeatMs * this._settings.heartbeatTimeoutFactor + 1000) {
        this._lost({ opened: true, error: new Error(`no data for ${silentMs} ms`) });
      }
    }, Math.max(1000, Math.min(this.heartbeatMs, 5000)));
    if (this.kind === 'websocket' && pingIntervalMs > 0) {
      timers.ping = setInterval(() => {
        if (this._transport === transport) this._hooks.ping().catch(() => {});
      }, pingIntervalMs);
    }
  }
}
