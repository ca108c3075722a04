// streamer browser client: WebSocket (with SSE fallback) transport, control messages, and a
// per-stream DocumentMirror that applies the server's block ops exactly as streamer/render/ops.py does.
//
// Framework-agnostic ES module, no dependencies. The wire contract is docs/protocol.md
// (protocol version 2).
//
//   import { StreamClient } from '/static/client.js';
//   const client = new StreamClient({ transport: 'auto' });
//   client.on('chunk', (ev, { mirror }) => console.log(mirror.html));
//   await client.connect();
//   await client.start({ prompt: 'Hello', provider: 'echo' });

/** Protocol version this client speaks. */
export const PROTOCOL_VERSION = 2;

/**
 * Connection states, emitted as the `connection` event (`client.on('connection', fn)`).
 * @typedef {'connecting'|'connected'|'retrying'|'disconnected'|'error'} ConnectionState
 */

/**
 * @typedef {'auto'|'websocket'|'sse'} TransportChoice
 */

/**
 * A server → client event (protocol.md, "Server → client events"). Always has `type`.
 * @typedef {{type: string, session_id?: string, stream_id?: string, seq?: number,
 *            [key: string]: any}} ServerEvent
 */

/**
 * @typedef {object} ReconnectOptions
 * @property {number} [initialDelayMs=500] first retry delay
 * @property {number} [maxDelayMs=15000] upper bound of the delay
 * @property {number} [factor=2] growth per failed attempt
 * @property {number} [jitter=0.5] fraction of the delay that is randomised (0 = none, 1 = full)
 * @property {number} [maxAttempts=Infinity] give up (state `error`) after this many failures in a row
 */

/**
 * @typedef {object} StreamClientOptions
 * @property {string} [baseUrl] server origin (default: the page's origin)
 * @property {string} [sessionId] URL-safe 8–64 chars; invented if omitted
 * @property {TransportChoice} [transport='auto'] `auto` = WebSocket, falling back to SSE when
 *   a WebSocket cannot be opened
 * @property {ReconnectOptions|false} [reconnect] backoff settings, or `false` for no reconnect
 * @property {number} [pingIntervalMs=15000] WebSocket keep-alive `ping` period (0 = never)
 * @property {number} [heartbeatTimeoutFactor=2.5] a connection silent for this many
 *   `heartbeat_ms` is considered dead and reconnected
 * @property {boolean} [resumeOnReconnect=true] on a reconnect, ask for the events after the
 *   last applied `seq` of an unfinished stream (WebSocket: `?stream_id=…&last_seq=…` on the
 *   URL; SSE: the `Last-Event-ID` header). Chunks at or below that seq are ignored anyway.
 */

/**
 * @typedef {object} StartOptions
 * @property {string} [prompt] the user's prompt (or give `messages`)
 * @property {{role: 'system'|'user'|'assistant', content: string}[]} [messages]
 * @property {string} [provider] `local` (default on the server), `echo`, `openai`, …
 * @property {string} [model]
 * @property {string} [system]
 * @property {number} [max_tokens]
 * @property {number} [temperature]
 * @property {{mode?: 'off'|'smooth'|'fixed', cps?: number}} [pacing]
 * @property {{delta_chars?: number, interval_ms?: number}} [echo] echo provider options
 * @property {'html'|'markdown'} [format]
 */

// --------------------------------------------------------------------------- block ops

/** One closing tag, anchored (a block's trailer is a run of these and newlines). */
const CLOSING_TAG_RE = /^<\/[a-zA-Z][a-zA-Z0-9]*>$/;

const TEXT_ESCAPES = { '&': '&amp;', '\u00a0': '&nbsp;', '<': '&lt;', '>': '&gt;' };

/**
 * Escape plain text exactly as the server's sanitizer (html5ever) serializes a text node:
 * `&`, U+00A0, `<` and `>`; quotes are left alone. Mirrors `streamer.ops.escape_text`.
 * @param {string} text
 * @returns {string}
 */
export function escapeText(text) {
  return text.replace(/[&\u00a0<>]/g, (c) => TEXT_ESCAPES[c]);
}

/**
 * Split a block's HTML at its *last text position*: `[head, trailer]` where `trailer` is the
 * longest suffix made only of closing tags (`</name>`) and newlines. Scans backwards, so the
 * cost is the trailer's length. Mirrors `streamer.ops.split_trailer`.
 * @param {string} html
 * @returns {[string, string]}
 */
export function splitTrailer(html) {
  let cut = html.length;
  while (cut > 0) {
    const c = html[cut - 1];
    if (c === '\n') {
      cut -= 1;
      continue;
    }
    if (c !== '>') break;
    const start = cut >= 2 ? html.lastIndexOf('<', cut - 2) : -1;
    if (start < 0 || !CLOSING_TAG_RE.test(html.slice(start, cut))) break;
    cut = start;
  }
  return [html.slice(0, cut), html.slice(cut)];
}

/**
 * The `text` op on one block: `text` (plain, unescaped) inserted at the last text position.
 * @param {string} html
 * @param {string} text
 * @returns {string}
 */
export function appendText(html, text) {
  const [head, trailer] = splitTrailer(html);
  return head + escapeText(text) + trailer;
}

/**
 * Apply one op to a block list in place, exactly as `streamer.ops.apply_op`.
 * @param {string[]} blocks
 * @param {{op: string, block: number, html?: string|null, text?: string|null, trim?: number}} op
 * @throws {RangeError} the op does not fit the list (a correct server never causes this)
 */
export function applyOp(blocks, op) {
  const i = op.block;
  if (op.op === 'append') {
    if (i !== blocks.length || typeof op.html !== 'string') {
      throw new RangeError(`append at ${i} to a list of ${blocks.length} blocks`);
    }
    blocks.push(op.html);
  } else if (op.op === 'replace') {
    if (!(i >= 0 && i < blocks.length) || typeof op.html !== 'string') {
      throw new RangeError(`replace of block ${i} in a list of ${blocks.length}`);
    }
    blocks[i] = op.html;
  } else if (op.op === 'text') {
    if (!(i >= 0 && i < blocks.length) || typeof op.text !== 'string') {
      throw new RangeError(`text into block ${i} in a list of ${blocks.length}`);
    }
    blocks[i] = appendText(blocks[i], op.text);
  } else if (op.op === 'splice') {
    // the block's last `trim` characters (ASCII: the same count in UTF-16) give way to `html`
    const trim = op.trim;
    if (!(i >= 0 && i < blocks.length) || typeof op.html !== 'string'
        || !Number.isInteger(trim) || trim < 0 || trim > blocks[i].length) {
      throw new RangeError(`splice of block ${i} in a list of ${blocks.length}`);
    }
    blocks[i] = blocks[i].slice(0, blocks[i].length - trim) + op.html;
  } else {
    throw new RangeError(`unknown op ${JSON.stringify(op.op)}`);
  }
}

/**
 * A change notification from a {@link DocumentMirror}: one block changed (`block` is its index;
 * an `append` is a change of the new last index), or the whole list was replaced (`reset`).
 * @typedef {{kind: 'block', block: number} | {kind: 'reset'}} MirrorChange
 */

/**
 * The client's copy of one stream's document: a list of top-level blocks (HTML strings; `""`
 * is a block the renderer folded into another: keep its slot, show nothing).
 */
export class DocumentMirror {
  /** @param {string} streamId */
  constructor(streamId) {
    /** @type {string} */
    this.streamId = streamId;
    /** @type {string[]} */
    this.blocks = [];
    /** @type {boolean[]} `final` flag per block */
    this.final = [];
    /** Highest `seq` applied (0 = none): what a resume asks to continue after. */
    this.lastSeq = 0;
    /** @type {string|null} the server log's `epoch` that {@link lastSeq} belongs to */
    this.epoch = null;
    /** @type {ServerEvent|null} the `stream_start` event */
    this.start = null;
    /** @type {ServerEvent|null} the `stream_complete` event, once the stream is over */
    this.complete = null;
    /** True when an op did not fit the list; the final `html` of `stream_complete` repairs it. */
    this.desynced = false;
    /** @type {Set<(change: MirrorChange) => void>} */
    this._listeners = new Set();
  }

  /** The document so far: the blocks joined. */
  get html() {
    return this.blocks.join('');
  }

  /**
   * Listen to changes. Called synchronously after each applied op.
   * @param {(change: MirrorChange) => void} fn
   * @returns {() => void} unsubscribe
   */
  onChange(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  /** @param {MirrorChange} change */
  _notify(change) {
    for (const fn of [...this._listeners]) {
      try {
        fn(change);
      } catch (err) {
        console.error('streamer: mirror listener failed', err);
      }
    }
  }

  /**
   * Apply a `chunk` event. Chunks whose `seq` is not above {@link lastSeq} are ignored
   * (a replay after a reconnect may repeat them).
   * @param {ServerEvent} ev
   * @returns {boolean} whether the chunk was applied
   */
  applyChunk(ev) {
    if (typeof ev.seq === 'number' && ev.seq <= this.lastSeq) return false;
    try {
      applyOp(this.blocks, ev);
    } catch (err) {
      this.desynced = true;
      throw err;
    } finally {
      if (typeof ev.seq === 'number') this.lastSeq = ev.seq;
      if (ev.epoch) this.epoch = ev.epoch;
    }
    this.final[ev.block] = Boolean(ev.final);
    this._notify({ kind: 'block', block: ev.block });
    return true;
  }

  /**
   * Apply a `snapshot` event: the whole document as of its `seq`.
   * @param {ServerEvent} ev
   * @returns {boolean} whether it was applied (an older snapshot than what we have is ignored)
   */
  applySnapshot(ev) {
    if (typeof ev.seq === 'number' && ev.seq < this.lastSeq) return false;
    this.reset(Array.isArray(ev.blocks) ? ev.blocks.slice() : []);
    if (typeof ev.seq === 'number') this.lastSeq = ev.seq;
    if (ev.epoch) this.epoch = ev.epoch;
    return true;
  }

  /**
   * Note a non-document event of the stream that carries a `seq` (`reasoning`, `tool_call`,
   * a `retrying` state): `seq` orders them with the chunks.
   * @param {ServerEvent} ev
   * @returns {boolean} false when it was already seen (a replay after a reconnect)
   */
  applyEvent(ev) {
    if (typeof ev.seq !== 'number') return true;
    if (ev.seq <= this.lastSeq) return false;
    this.lastSeq = ev.seq;
    if (ev.epoch) this.epoch = ev.epoch;
    return true;
  }

  /**
   * Replace the whole block list (a snapshot, or the final HTML after a desync).
   * @param {string[]} blocks
   */
  reset(blocks) {
    this.blocks = blocks;
    this.final = blocks.map(() => false);
    this.desynced = false;
    this._notify({ kind: 'reset' });
  }

  /**
   * Record `stream_complete`. Its `html` is the exact final document: if the blocks do not
   * join to it (ops missed or not all delivered, e.g. a `stop` with a backlog), the mirror
   * resets to one block holding that HTML.
   * @param {ServerEvent} ev
   * @returns {boolean} true if the mirror had to be resynchronised
   */
  applyComplete(ev) {
    this.complete = ev;
    if (typeof ev.html === 'string' && (this.desynced || this.html !== ev.html)) {
      this.reset([ev.html]);
      return true;
    }
    return false;
  }
}

// --------------------------------------------------------------------------- event emitter

/** Minimal synchronous event emitter. `*` listeners get every server event. */
class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
  }

  /**
   * @param {string} type
   * @param {Function} fn
   * @returns {() => void} unsubscribe
   */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** @param {string} type @param {Function} fn */
  off(type, fn) {
    this._handlers.get(type)?.delete(fn);
  }

  /**
   * @param {string} type
   * @param {Function} fn
   * @returns {() => void} unsubscribe
   */
  once(type, fn) {
    const off = this.on(type, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /** @param {string} type @param {...any} args */
  emit(type, ...args) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`streamer: '${type}' listener failed`, err);
      }
    }
  }
}

// --------------------------------------------------------------------------- SSE over fetch

/**
 * Parse a `text/event-stream` body (WHATWG HTML §9.2.6) from a fetch Response.
 * Uses fetch rather than EventSource to send `Last-Event-ID` on our own reconnects, to see the
 * `: ping` comments (liveness), and to read error statuses.
 * @param {Response} response
 * @param {(ev: {event: string, data: string, id: string|null}) => void} onEvent
 * @param {() => void} onActivity called for every line (comments included)
 * @param {(retryMs: number) => void} onRetry
 */
async function readEventStream(response, onEvent, onActivity, onRetry) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let eventType = '';
  let data = [];
  let id = null;
  let first = true;
  const line = (text) => {
    onActivity();
    if (text === '') {
      if (data.length) onEvent({ event: eventType || 'message', data: data.join('\n'), id });
      eventType = '';
      data = [];
      return;
    }
    if (text[0] === ':') return; // comment: the server's heartbeat
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') eventType = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    if (first && buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
    first = false;
    let start = 0;
    for (;;) {
      const i = buffer.slice(start).search(/[\r\n]/);
      if (i < 0) break;
      const end = start + i;
      // a CR at the very end may be the first half of a CRLF: wait for the next chunk
      if (buffer[end] === '\r' && end + 1 === buffer.length) break;
      line(buffer.slice(start, end));
      start = end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1);
    }
    buffer = buffer.slice(start);
  }
}

// --------------------------------------------------------------------------- the client

/** An `error` event, or a failed control POST, as a JS Error. */
export class StreamerError extends Error {
  /** @param {ServerEvent} ev */
  constructor(ev) {
    super(ev.message || ev.code || 'streamer error');
    this.name = 'StreamerError';
    /** @type {string} */
    this.code = ev.code || 'internal_error';
    /** @type {boolean} */
    this.retryable = Boolean(ev.retryable);
    /** @type {number|undefined} */
    this.retryAfterMs = ev.retry_after_ms;
    this.event = ev;
  }
}

const DEFAULT_RECONNECT = {
  initialDelayMs: 500,
  maxDelayMs: 15000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Infinity,
};

/** WebSocket close codes after which reconnecting cannot help. */
const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1008]);

function inventSessionId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Connects to a streamer session and turns its events into per-stream documents.
 *
 * Events (`client.on(type, fn)`, returns an unsubscribe function):
 * - every server event type under its own name (`connected`, `stream_start`, `chunk`,
 *   `snapshot`, `progress`, `state`, `stream_complete`, `error`, `pong`, `tool_call`, …),
 *   called as `fn(event, context)`; for stream events `context.mirror` is the stream's
 *   {@link DocumentMirror} and, for `chunk`, `context.applied` says whether it was new.
 *   Unknown types are emitted too and otherwise ignored; `*` receives every server event.
 * - `connection`: `fn({state, transport, attempt, delayMs, error})` whenever the connection
 *   state changes (`connecting`, `connected`, `retrying`, `disconnected`, `error`).
 * - `resync`: `fn({streamId, mirror})` when `stream_complete.html` differed from the mirror.
 *
 * Note the server's `state` event (streaming/paused/…) is about delivery, not the connection.
 */
export class StreamClient {
  /** @param {StreamClientOptions} [options] */
  constructor(options = {}) {
    const origin = typeof location !== 'undefined' ? location.origin : 'http://localhost';
    /** @type {string} */
    this.baseUrl = (options.baseUrl || origin).replace(/\/+$/, '');
    /** @type {string} */
    this.sessionId = options.sessionId || inventSessionId();
    /** @type {TransportChoice} */
    this.transportChoice = options.transport || 'auto';
    this.reconnectOptions =
      options.reconnect === false ? null : { ...DEFAULT_RECONNECT, ...(options.reconnect || {}) };
    this.pingIntervalMs = options.pingIntervalMs ?? 15000;
    this.heartbeatTimeoutFactor = options.heartbeatTimeoutFactor ?? 2.5;
    this.resumeOnReconnect = options.resumeOnReconnect ?? true;

    /** @type {ConnectionState} */
    this.state = 'disconnected';
    /** @type {'websocket'|'sse'|null} the transport in use (or last used) */
    this.transport = null;
    /** @type {string|null} the server's id of this connection (targets SSE control POSTs) */
    this.connectionId = null;
    /** @type {number} heartbeat period announced by the server */
    this.heartbeatMs = 15000;
    /** @type {Map<string, DocumentMirror>} one mirror per stream id */
    this.streams = new Map();
    /** @type {string|null} the stream being delivered now */
    this.activeStreamId = null;
    /** @type {number|null} last measured ping round trip */
    this.rttMs = null;

    this._emitter = new Emitter();
    this._preferred = this.transportChoice === 'sse' ? 'sse' : 'websocket';
    this._ws = null;
    this._sseAbort = null;
    this._wantOpen = false;
    this._attempt = 0;
    this._everConnected = false;
    this._retryTimer = null;
    this._pingTimer = null;
    this._watchdog = null;
    this._lastActivity = 0;
    this._retryAfterMs = 0;
    this._sseRetryMs = null;
    this._lastEventId = null;
    this._lastGood = null;
    this._pendingPings = new Map();
    this._connectWaiters = [];
    this._generation = 0; // bumps on every (re)connect; stale sockets check it
  }

  // ----------------------------------------------------------------- events

  /**
   * @param {string} type a server event type, `*`, `connection` or `resync`
   * @param {Function} fn
   * @returns {() => void} unsubscribe
   */
  on(type, fn) {
    return this._emitter.on(type, fn);
  }

  /** @param {string} type @param {Function} fn */
  off(type, fn) {
    this._emitter.off(type, fn);
  }

  /** @param {string} type @param {Function} fn @returns {() => void} */
  once(type, fn) {
    return this._emitter.once(type, fn);
  }

  /**
   * The mirror of one stream (created on first use).
   * @param {string} streamId
   * @returns {DocumentMirror}
   */
  mirror(streamId) {
    let m = this.streams.get(streamId);
    if (!m) {
      m = new DocumentMirror(streamId);
      this.streams.set(streamId, m);
    }
    return m;
  }

  // ----------------------------------------------------------------- connection

  /**
   * Open the connection (and keep it open, reconnecting with backoff, until {@link close}).
   * @returns {Promise<void>} resolves on the server's `connected` event; rejects if the client
   *   gives up (state `error`) or is closed first
   */
  connect() {
    const p = new Promise((resolve, reject) => {
      if (this.state === 'connected') resolve();
      else this._connectWaiters.push({ resolve, reject });
    });
    if (!this._wantOpen) {
      this._wantOpen = true;
      this._attempt = 0;
      this._open();
    }
    return p;
  }

  /** Close for good: no reconnect. Streams keep running on the server (see protocol.md). */
  close() {
    this._wantOpen = false;
    clearTimeout(this._retryTimer);
    this._teardown(1000, 'client closed');
    this._setState('disconnected');
    this._settleWaiters(new Error('client closed'));
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emitter.emit('connection', { state, transport: this.transport, ...extra });
  }

  _settleWaiters(err) {
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) (err ? w.reject(err) : w.resolve());
  }

  _open() {
    const gen = ++this._generation;
    const kind = this.transportChoice === 'auto' ? this._preferred : this.transportChoice;
    this.transport = kind;
    this._setState('connecting', { attempt: this._attempt });
    if (kind === 'websocket' && typeof WebSocket !== 'undefined') this._openWebSocket(gen);
    else this._openSSE(gen);
  }

  /**
   * Drop the current connection as a network failure would (for trying resume by hand, and
   * for tests): the client reconnects with backoff and resumes after its last applied `seq`.
   */
  dropConnection() {
    if (!this._wantOpen) return;
    this._lost({ opened: true, error: new Error('connection dropped on purpose') });
  }

  /** Stop timers and the current socket/response without changing the state. */
  _teardown(code = 1000, reason = '') {
    this._generation += 1;
    clearInterval(this._pingTimer);
    clearInterval(this._watchdog);
    this._pingTimer = this._watchdog = null;
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      try {
        ws.close(code, reason);
      } catch {
        /* already closing */
      }
    }
    if (this._sseAbort) {
      this._sseAbort.abort();
      this._sseAbort = null;
    }
    this.connectionId = null;
    for (const { reject } of this._pendingPings.values()) reject(new Error('connection closed'));
    this._pendingPings.clear();
  }

  /**
   * The current connection ended (or could not open). Reconnect with backoff unless closed.
   * @param {{opened: boolean, fatal?: boolean, error?: any}} info
   */
  _lost(info) {
    this._teardown();
    if (!this._wantOpen) return;
    // auto: a WebSocket that never opened (proxy, blocked) → try SSE right away
    if (this.transportChoice === 'auto' && this.transport === 'websocket' && !info.opened &&
        !info.fatal) {
      this._preferred = 'sse';
      this._open();
      return;
    }
    const opts = this.reconnectOptions;
    if (info.fatal || !opts || this._attempt >= opts.maxAttempts) {
      this._wantOpen = false;
      this._setState('error', { error: info.error });
      this._settleWaiters(info.error instanceof Error ? info.error
        : new Error(String(info.error || 'connection failed')));
      return;
    }
    // auto: retry with the transport that last worked (WebSocket if none did)
    if (this.transportChoice === 'auto') this._preferred = this._lastGood || 'websocket';
    const base = this.transport === 'sse' && this._sseRetryMs != null
      ? Math.max(this._sseRetryMs, opts.initialDelayMs) : opts.initialDelayMs;
    let delay = Math.min(opts.maxDelayMs, base * Math.pow(opts.factor, this._attempt));
    delay = delay * (1 - opts.jitter * Math.random());
    delay = Math.max(delay, this._retryAfterMs);
    this._retryAfterMs = 0;
    this._attempt += 1;
    this._setState('retrying', { attempt: this._attempt, delayMs: Math.round(delay),
      error: info.error });
    this._retryTimer = setTimeout(() => {
      if (this._wantOpen) this._open();
    }, delay);
  }

  _startTimers(gen) {
    this._lastActivity = Date.now();
    this._watchdog = setInterval(() => {
      if (gen !== this._generation) return;
      const silentMs = Date.now() - this._lastActivity;
      if (silentMs > this.heartbeatMs * this.heartbeatTimeoutFactor + 1000) {
        this._lost({ opened: true, error: new Error(`no data for ${silentMs} ms`) });
      }
    }, Math.max(1000, Math.min(this.heartbeatMs, 5000)));
    if (this.transport === 'websocket' && this.pingIntervalMs > 0) {
      this._pingTimer = setInterval(() => {
        if (gen === this._generation) this.ping().catch(() => {});
      }, this.pingIntervalMs);
    }
  }

  _wsUrl() {
    const url = new URL(`${this.baseUrl}/ws/stream/${encodeURIComponent(this.sessionId)}`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const open = this.resumeOnReconnect ? this._unfinishedStream() : null;
    if (open) {
      url.searchParams.set('stream_id', open.streamId);
      if (open.epoch) url.searchParams.set('epoch', open.epoch);
      url.searchParams.set('last_seq', String(open.lastSeq));
    }
    return url.toString();
  }

  _openWebSocket(gen) {
    let ws;
    let opened = false;
    try {
      ws = new WebSocket(this._wsUrl());
    } catch (error) {
      queueMicrotask(() => this._lost({ opened: false, error }));
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (msg) => {
      if (gen !== this._generation) return;
      this._lastActivity = Date.now();
      let ev;
      try {
        ev = JSON.parse(msg.data);
      } catch {
        console.warn('streamer: non-JSON frame ignored', msg.data);
        return;
      }
      this._dispatch(ev, null);
    };
    ws.onclose = (e) => {
      if (gen !== this._generation) return;
      this._lost({
        opened,
        fatal: FATAL_CLOSE_CODES.has(e.code),
        error: new Error(`WebSocket closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`),
      });
    };
    // onerror is always followed by onclose, which decides
    ws.onerror = () => {};
  }

  async _openSSE(gen) {
    const abort = new AbortController();
    this._sseAbort = abort;
    const url = `${this.baseUrl}/api/sessions/${encodeURIComponent(this.sessionId)}/events`;
    /** @type {Record<string, string>} */
    const headers = { Accept: 'text/event-stream' };
    if (this.resumeOnReconnect && this._lastEventId && this._unfinishedStream()) {
      headers['Last-Event-ID'] = this._lastEventId;
    }
    let opened = false;
    try {
      const response = await fetch(url, { headers, signal: abort.signal, cache: 'no-store' });
      if (!response.ok) {
        // reported through the `connection` state (retrying/error), not as a server event
        const ev = await this._errorFromResponse(response);
        const fatal = !ev.retryable && response.status >= 400 && response.status < 500 &&
          response.status !== 404 && response.status !== 429;
        if (gen === this._generation) {
          this._lost({ opened: false, fatal, error: new StreamerError(ev) });
        }
        return;
      }
      opened = true;
      await readEventStream(
        response,
        ({ event, data, id }) => {
          if (gen !== this._generation) return;
          if (id) this._lastEventId = id;
          let ev;
          try {
            ev = JSON.parse(data);
          } catch {
            console.warn('streamer: non-JSON SSE data ignored', data);
            return;
          }
          if (!ev.type) ev.type = event;
          this._dispatch(ev, id);
        },
        () => {
          if (gen === this._generation) this._lastActivity = Date.now();
        },
        (ms) => {
          this._sseRetryMs = ms;
        },
      );
      if (gen === this._generation) {
        this._lost({ opened, error: new Error('event stream ended') });
      }
    } catch (error) {
      if (gen === this._generation && !abort.signal.aborted) this._lost({ opened, error });
    }
  }

  /** @param {Response} response @returns {Promise<ServerEvent>} */
  async _errorFromResponse(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      /* not JSON */
    }
    if (body && typeof body === 'object' && body.code) return { type: 'error', ...body };
    return {
      type: 'error',
      code: response.status === 404 ? 'session_not_found' : 'internal_error',
      message: `HTTP ${response.status} ${response.statusText}`,
      retryable: response.status >= 500 || response.status === 429,
    };
  }

  _unfinishedStream() {
    const id = this.activeStreamId;
    const m = id ? this.streams.get(id) : null;
    return m && !m.complete && m.lastSeq > 0 ? m : null;
  }

  // ----------------------------------------------------------------- incoming events

  /**
   * Feed one server event through the client, exactly as if it had arrived on the socket.
   * (Used by transports, and by tests to inject events.)
   * @param {ServerEvent} ev
   * @param {string|null} [eventId] SSE `id:`
   */
  handleEvent(ev, eventId = null) {
    this._dispatch(ev, eventId);
  }

  /** @param {ServerEvent} ev @param {string|null} eventId */
  _dispatch(ev, eventId) {
    /** @type {{mirror?: DocumentMirror, applied?: boolean, eventId?: string|null}} */
    const ctx = { eventId };
    const streamId = ev.stream_id;
    switch (ev.type) {
      case 'connected': {
        const reconnect = this._everConnected;
        this.connectionId = ev.connection_id ?? null;
        if (typeof ev.heartbeat_ms === 'number' && ev.heartbeat_ms > 0) {
          this.heartbeatMs = ev.heartbeat_ms;
        }
        if (ev.protocol !== undefined && ev.protocol !== PROTOCOL_VERSION) {
          console.warn(`streamer: server speaks protocol ${ev.protocol}, client ${PROTOCOL_VERSION}`);
        }
        this._everConnected = true;
        this._attempt = 0;
        this._lastGood = this.transport;
        clearInterval(this._pingTimer);
        clearInterval(this._watchdog);
        this._startTimers(this._generation);
        this._setState('connected', { resumed: Boolean(ev.resumed), reconnect });
        this._settleWaiters(null);
        break;
      }
      case 'stream_start': {
        const m = this.mirror(streamId);
        m.start = ev;
        ctx.mirror = m;
        if (!ev.queued) this.activeStreamId = streamId;
        break;
      }
      case 'chunk': {
        const m = this.mirror(streamId);
        ctx.mirror = m;
        if (!this.activeStreamId) this.activeStreamId = streamId;
        try {
          ctx.applied = m.applyChunk(ev);
        } catch (err) {
          ctx.applied = false;
          this._emitter.emit('error', {
            type: 'error', code: 'client_desync', stream_id: streamId, retryable: false,
            message: `chunk seq ${ev.seq} did not fit the document: ${err.message}`,
          }, ctx);
        }
        break;
      }
      case 'snapshot': {
        const m = this.mirror(streamId);
        ctx.mirror = m;
        ctx.applied = m.applySnapshot(ev);
        if (!this.activeStreamId) this.activeStreamId = streamId;
        break;
      }
      case 'stream_complete': {
        const m = this.mirror(streamId);
        ctx.mirror = m;
        if (m.applyComplete(ev)) this._emitter.emit('resync', { streamId, mirror: m });
        if (this.activeStreamId === streamId) this.activeStreamId = null;
        break;
      }
      case 'progress':
      case 'state':
      case 'tool_call':
      case 'reasoning':
        if (streamId) {
          ctx.mirror = this.mirror(streamId);
          if (!ctx.mirror.applyEvent(ev)) return;  // seen before a reconnect: drop it
        }
        break;
      case 'pong': {
        const pending = this._pendingPings.get(ev.ts);
        if (pending) {
          this._pendingPings.delete(ev.ts);
          this.rttMs = Date.now() - pending.sentAt;
          pending.resolve(this.rttMs);
        }
        ctx.rttMs = this.rttMs;
        break;
      }
      case 'error':
        if (typeof ev.retry_after_ms === 'number') this._retryAfterMs = ev.retry_after_ms;
        if (streamId) ctx.mirror = this.mirror(streamId);
        break;
      default:
        // heartbeat and unknown types: nothing to do (emitted below)
        break;
    }
    this._emitter.emit(ev.type, ev, ctx);
    this._emitter.emit('*', ev, ctx);
  }

  // ----------------------------------------------------------------- control messages

  /**
   * Send one control message on the current connection.
   * @param {Record<string, any>} msg
   * @returns {Promise<void>} WebSocket: resolves once queued; SSE: when the POST is accepted.
   *   Rejects with {@link StreamerError} (also emitted as an `error` event) or when not connected.
   */
  async _send(msg) {
    if (this.state !== 'connected') throw new Error(`not connected (${this.state})`);
    if (this.transport === 'websocket' && this._ws) {
      this._ws.send(JSON.stringify(msg));
      return;
    }
    const cid = this.connectionId ? `?connection_id=${encodeURIComponent(this.connectionId)}` : '';
    const response = await fetch(
      `${this.baseUrl}/api/sessions/${encodeURIComponent(this.sessionId)}/control${cid}`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(msg) },
    );
    if (!response.ok) {
      const ev = await this._errorFromResponse(response);
      ev.control = msg.type;
      this._emitter.emit('error', ev, {});
      throw new StreamerError(ev);
    }
  }

  /**
   * Start a stream (queued by the server if one is running).
   * @param {StartOptions} opts
   */
  start(opts) {
    /** @type {Record<string, any>} */
    const msg = { type: 'start' };
    for (const key of ['prompt', 'messages', 'provider', 'model', 'system', 'max_tokens',
      'temperature', 'pacing', 'echo', 'format', 'tools']) {
      if (opts[key] !== undefined && opts[key] !== null && opts[key] !== '') msg[key] = opts[key];
    }
    return this._send(msg);
  }

  /** Stop delivery to this connection (generation continues on the server). */
  pause() {
    return this._send({ type: 'pause' });
  }

  /** Restart delivery after {@link pause}. */
  resume() {
    return this._send({ type: 'resume' });
  }

  /**
   * Ask for the events of a stream after `lastSeq` (defaults to the mirror's), then follow it.
   * @param {string} streamId
   * @param {number} [lastSeq]
   */
  resumeStream(streamId, lastSeq) {
    const mirror = this.streams.get(streamId);
    const seq = lastSeq ?? mirror?.lastSeq ?? 0;
    const msg = { type: 'resume', stream_id: streamId, last_seq: seq };
    if (mirror?.epoch) msg.epoch = mirror.epoch;
    return this._send(msg);
  }

  /** Deliver everything received so far at once, then follow unpaced. */
  skip() {
    return this._send({ type: 'skip' });
  }

  /** @param {number} cps new delivery rate, characters per second */
  speed(cps) {
    return this._send({ type: 'speed', cps });
  }

  /**
   * Remove a queued stream (it never starts).
   * @param {string} streamId
   */
  queueRemove(streamId) {
    return this._send({ type: 'queue_remove', stream_id: streamId });
  }

  /**
   * Move a queued stream to `position` in the queue (0 = next).
   * @param {string} streamId
   * @param {number} position
   */
  queueMove(streamId, position) {
    return this._send({ type: 'queue_move', stream_id: streamId, position });
  }

  /** Cancel generation. @param {string} [streamId] */
  stop(streamId) {
    return this._send(streamId ? { type: 'stop', stream_id: streamId } : { type: 'stop' });
  }

  /**
   * Send a `ping`; resolves with the round trip in ms when the `pong` arrives.
   * @param {number} [timeoutMs=10000]
   * @returns {Promise<number>}
   */
  ping(timeoutMs = 10000) {
    let ts = Date.now();
    while (this._pendingPings.has(ts)) ts += 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pendingPings.delete(ts);
        reject(new Error('ping timed out'));
      }, timeoutMs);
      this._pendingPings.set(ts, {
        sentAt: Date.now(),
        resolve: (ms) => {
          clearTimeout(timer);
          resolve(ms);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this._send({ type: 'ping', ts }).catch((err) => {
        this._pendingPings.delete(ts);
        clearTimeout(timer);
        reject(err);
      });
    });
  }
}
