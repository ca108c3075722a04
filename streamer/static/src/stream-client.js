// StreamClient: one session's connection (WebSocket, else SSE, else the REST fallback), its
// state, reconnects with exact resume (across page loads too, with `persist`), the control
// messages, and the per-stream mirrors that the server's events build.

import { Emitter } from './emitter.js';
import { DocumentMirror } from './mirror.js';
import { PROTOCOL_VERSION, StreamerError, startMessage } from './protocol.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, Link } from './link.js';
import { finishedEvents } from './transports.js';
import { reconnectPolicy } from './reconnect.js';
import { fetchMessages, resolveToken } from './auth.js';
import { keepInTab, restoreKept, tabMemory } from './persist.js';

/** @typedef {import('./protocol.js').ServerEvent} ServerEvent */
/** @typedef {import('./protocol.js').ConnectionState} ConnectionState */
/** @typedef {import('./protocol.js').TransportChoice} TransportChoice */
/** @typedef {import('./protocol.js').TransportKind} TransportKind */
/** @typedef {import('./protocol.js').StartOptions} StartOptions */
/** @typedef {import('./reconnect.js').ReconnectOptions} ReconnectOptions */
/** @typedef {import('./auth.js').TokenOption} TokenOption */
/** @typedef {import('./auth.js').StoredMessage} StoredMessage */
/** @typedef {import('./link.js').ConnectTimeout} ConnectTimeout */
/** @typedef {import('./persist.js').PersistOptions} PersistOptions */

/**
 * @typedef {object} StreamClientOptions
 * @property {string} [baseUrl] server origin (default: the page's origin)
 * @property {string} [sessionId] an id of the application's (8–64 characters of A–Z, a–z,
 *   0–9, `_`, `-`; not starting `sess_`), made or claimed with `POST /api/sessions`
 *   before the first connection; omitted: the server makes one (`sess_` + 128 random bits)
 * @property {TokenOption} [token] an API key or JWT, or a function giving one (or a Promise
 *   of one), called before each connection attempt and each POST so it can be refreshed:
 *   WebSocket subprotocols `streamer` + `bearer.<token>`, HTTP `Authorization: Bearer`.
 *   Omitted: no credentials (auth `none`, or a cookie the browser sends itself)
 * @property {string} [csrfCookie='streamer_csrf'] with cookie auth, POSTs send this cookie's
 *   value as `X-CSRF-Token` (when the page can read it)
 * @property {TransportChoice} [transport='auto'] `auto` = WebSocket, falling back to SSE when
 *   a WebSocket cannot connect, and to the REST `complete` endpoint when SSE cannot either
 * @property {ReconnectOptions|false} [reconnect] backoff settings, or `false` for no reconnect
 * @property {ConnectTimeout} [connectTimeoutMs=5000] a connection that has not had the
 *   server's `connected` event by then counts as one that could not open (`auto` tries the
 *   next transport at once): ms, for every transport or per transport
 *   (`{websocket: 3000, sse: 8000}`; 0 = wait for ever)
 * @property {boolean} [restFallback=true] `auto`: when both a WebSocket and SSE could not
 *   open, use `POST /api/sessions/{id}/complete` (whole answers, no controls)
 * @property {number} [pingIntervalMs=15000] WebSocket keep-alive `ping` period (0 = never)
 * @property {number} [heartbeatTimeoutFactor=2.5] a connection silent for this many
 *   `heartbeat_ms` is considered dead and reconnected
 * @property {boolean} [resumeOnReconnect=true] on a reconnect, ask for the events after the
 *   last applied `seq` of an unfinished stream (WebSocket: `?stream_id=…&last_seq=…` on the
 *   URL; SSE: the `Last-Event-ID` header). Chunks at or below that seq are ignored anyway.
 * @property {boolean|string|PersistOptions} [persist=false] keep the session's id and the
 *   unfinished answer's cursor (with its blocks) in `sessionStorage` under
 *   `streamer:<key>` (`true`: key `client`; a string: that key), so that a client made after
 *   a page reload continues the conversation ({@link StreamClient#messages}) and resumes the
 *   answer in progress exactly
 */

/**
 * What listeners get with each server event: the stream's mirror for stream events, whether
 * a `chunk` was new (`applied`), the SSE id, the round trip for `pong`.
 * @typedef {{mirror?: DocumentMirror, applied?: boolean, eventId?: string|null,
 *            rttMs?: number|null}} EventContext
 */

/** The handler of each server event type that needs one (`this` is the client). */
const EVENT_HANDLERS = /** @type {const} */ ({
  connected: '_onConnected',
  stream_start: '_onStreamStart',
  chunk: '_onChunk',
  snapshot: '_onSnapshot',
  stream_complete: '_onComplete',
  progress: '_onStreamEvent',
  state: '_onStreamEvent',
  tool_call: '_onStreamEvent',
  reasoning: '_onStreamEvent',
  sources: '_onStreamEvent',
  pong: '_onPong',
  error: '_onError',
});

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
 * - `session`: `fn({sessionId, recreated})` when the server has made (or confirmed) the
 *   session, before the first connection; `recreated`: the server had forgotten the session
 *   whose id it had made, and made a new one (an unfinished stream of the old one is gone).
 *
 * An `unauthorized` or `forbidden` refusal of the connection (or of the session's creation)
 * is final: state `error` with that {@link StreamerError} (`connect()` rejects with it), no
 * reconnect loop. Give a valid `token` (`client.token = …`) and `connect()` again.
 *
 * Note the server's `state` event (streaming/paused/…) is about delivery, not the connection.
 */
export class StreamClient {
  /** @param {StreamClientOptions} [options] */
  constructor(options = {}) {
    const origin = typeof location !== 'undefined' ? location.origin : 'http://localhost';
    /** @type {string} */
    this.baseUrl = (options.baseUrl || origin).replace(/\/+$/, '');
    /** @type {string|null} the session's id: the server's answer to `POST /api/sessions` */
    this.sessionId = options.sessionId || null;
    /** @type {string|null} the id the application chose (null: the server makes one) */
    this.requestedSessionId = options.sessionId || null;
    /** @type {TokenOption} read before each connection attempt and each POST */
    this.token = options.token;
    /** @type {string} */
    this.csrfCookie = options.csrfCookie ?? 'streamer_csrf';
    /** @type {TransportChoice} */
    this.transportChoice = options.transport || 'auto';
    /** @type {import('./reconnect.js').ReconnectPolicy|null} backoff settings (null: none) */
    this.reconnectOptions = reconnectPolicy(options.reconnect);
    /** @type {ConnectTimeout} */
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.restFallback = options.restFallback ?? true;
    this.pingIntervalMs = options.pingIntervalMs ?? 15000;
    this.heartbeatTimeoutFactor = options.heartbeatTimeoutFactor ?? 2.5;
    this.resumeOnReconnect = options.resumeOnReconnect ?? true;
    /** @private */
    this._memory = tabMemory(options.persist, this.baseUrl);
    const kept = this._memory?.load(this.requestedSessionId) ?? null;
    if (kept) this.sessionId = kept.sessionId;
    /**
     * What this client took over from an earlier page of the tab (`persist`): the session,
     * and the unfinished answer it resumes (null: nothing was kept)
     * @type {{sessionId: string, streamId: string|null}|null}
     */
    this.restored = kept && { sessionId: kept.sessionId, streamId: kept.stream?.streamId ?? null };

    /** @type {Map<string, DocumentMirror>} one mirror per stream id */
    this.streams = new Map();
    /** @type {string|null} the stream being delivered now */
    this.activeStreamId = null;
    /** @type {number|null} last measured ping round trip */
    this.rttMs = null;
    /** @private */
    this._emitter = new Emitter();
    /**
     * @private
     * @type {Map<number, {sentAt: number, resolve: (ms: number) => void,
     *                     reject: (err: any) => void}>}
     */
    this._pendingPings = new Map();
    /** @private */
    this._link = new Link(this, {
      onEvent: (ev, id) => this._dispatch(ev, id),
      onState: (state, extra) => {
        this._emitter.emit('connection', { state, transport: this.transport, ...extra });
      },
      cursor: () => this._unfinishedStream(),
      onClose: () => {
        for (const { reject } of this._pendingPings.values()) reject(new Error('connection closed'));
        this._pendingPings.clear();
      },
      ping: () => this.ping(),
      onSession: (info, recreated) => {
        this.sessionId = info.session_id;
        if (recreated) this.activeStreamId = null;
        this._emitter.emit('session', { sessionId: this.sessionId, recreated });
      },
    });
    if (kept) restoreKept(this, kept);
    /** @private @type {(() => void)|null} */
    this._unkeep = null;
  }

  /** @type {ConnectionState} */
  get state() {
    return this._link.state;
  }

  /** @type {TransportKind|null} the transport in use (or last used) */
  get transport() {
    return this._link.kind;
  }

  /** @type {string|null} the server's id of this connection (targets SSE control POSTs) */
  get connectionId() {
    return this._link.connectionId;
  }

  /** @type {number} heartbeat period announced by the server, in ms */
  get heartbeatMs() {
    return this._link.heartbeatMs;
  }

  // ----------------------------------------------------------------- events

  /**
   * @param {string} type a server event type, `*`, `connection` or `resync`
   * @param {(...args: any[]) => void} fn
   * @returns {() => void} unsubscribe
   */
  on(type, fn) {
    return this._emitter.on(type, fn);
  }

  /**
   * @param {string} type
   * @param {(...args: any[]) => void} fn
   */
  off(type, fn) {
    this._emitter.off(type, fn);
  }

  /**
   * @param {string} type
   * @param {(...args: any[]) => void} fn
   * @returns {() => void} unsubscribe
   */
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
   * The first time, the session is made first (`POST /api/sessions`).
   * @returns {Promise<void>} resolves on the server's `connected` event (the REST fallback:
   *   its health check); rejects if the client gives up (state `error`: a final refusal such
   *   as `unauthorized` rejects with its {@link StreamerError}) or is closed first
   */
  connect() {
    if (this._memory && !this._unkeep) this._unkeep = keepInTab(this, this._memory);
    return this._link.open();
  }

  /**
   * Close for good: no reconnect. Streams keep running on the server (see protocol.md).
   * With `persist`, what the tab keeps is written first (a new client takes over).
   */
  close() {
    this._unkeep?.();
    this._unkeep = null;
    this._link.close();
  }

  /**
   * `persist`: forget what this tab kept (the next client makes a new session).
   */
  forget() {
    this._unkeep?.();
    this._unkeep = null;
    this._memory?.clear();
  }

  /**
   * The session's conversation as the server stored it, oldest first:
   * `GET /api/sessions/{id}/messages` (an answer still streaming is there as it is now,
   * `status: 'streaming'`; an assistant message's `message_id` is its stream's id).
   * @returns {Promise<StoredMessage[]>}
   * @throws {StreamerError} refused (`session_not_found`, `forbidden`, …; `status`)
   * @throws {Error} no session yet (before the `session` event), or the request failed
   */
  async messages() {
    if (!this.sessionId) throw new Error('streamer: no session yet');
    return fetchMessages(this.baseUrl, this.sessionId, await resolveToken(this.token));
  }

  /**
   * Drop the current connection as a network failure would (for trying resume by hand, and
   * for tests): the client reconnects with backoff and resumes after its last applied `seq`.
   */
  dropConnection() {
    this._link.drop();
  }

  /**
   * The open WebSocket, if the transport is one (tests close it to play a network failure).
   * @returns {WebSocket|null}
   */
  get _ws() {
    return this._link.socket;
  }

  /** @private the mirror of the stream being delivered, if it is unfinished and begun */
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

  /**
   * @private
   * @param {ServerEvent} ev
   * @param {string|null} eventId
   */
  _dispatch(ev, eventId) {
    /** @type {EventContext} */
    const ctx = { eventId };
    const name = EVENT_HANDLERS[/** @type {keyof typeof EVENT_HANDLERS} */ (ev.type)];
    // heartbeat and unknown types need nothing but the emit; a handler's false drops a replay
    if (name && this[name](ev, ctx) === false) return;
    this._emitter.emit(ev.type, ev, ctx);
    this._emitter.emit('*', ev, ctx);
  }

  /**
   * @private
   * @param {ServerEvent} ev
   */
  _onConnected(ev) {
    if (ev.protocol !== undefined && ev.protocol !== PROTOCOL_VERSION) {
      console.warn(`streamer: server speaks protocol ${ev.protocol}, client ${PROTOCOL_VERSION}`);
    }
    this._link.connected(ev);
  }

  /**
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   */
  _onStreamStart(ev, ctx) {
    const m = this._streamOf(ev, ctx);
    m.start = ev;
    if (!ev.queued) this.activeStreamId = m.streamId;
  }

  /**
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   */
  _onChunk(ev, ctx) {
    const m = this._streamOf(ev, ctx);
    if (!this.activeStreamId) this.activeStreamId = m.streamId;
    try {
      ctx.applied = m.applyChunk(ev);
    } catch (err) {
      ctx.applied = false;
      this._emitter.emit('error', {
        type: 'error', code: 'client_desync', stream_id: ev.stream_id, retryable: false,
        message: `chunk seq ${ev.seq} did not fit the document: ${/** @type {Error} */ (err).message}`,
      }, ctx);
    }
  }

  /**
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   */
  _onSnapshot(ev, ctx) {
    const m = this._streamOf(ev, ctx);
    ctx.applied = m.applySnapshot(ev);
    if (!this.activeStreamId) this.activeStreamId = m.streamId;
  }

  /**
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   */
  _onComplete(ev, ctx) {
    const m = this._streamOf(ev, ctx);
    if (m.applyComplete(ev)) this._emitter.emit('resync', { streamId: m.streamId, mirror: m });
    if (this.activeStreamId === m.streamId) this.activeStreamId = null;
  }

  /**
   * `progress`, `state`, `tool_call`, `reasoning`, `sources`: ordered by `seq` with the chunks.
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   * @returns {boolean|void} false: seen before a reconnect, dropped
   */
  _onStreamEvent(ev, ctx) {
    if (!ev.stream_id) return;
    return this._streamOf(ev, ctx).applyEvent(ev);
  }

  /**
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   */
  _onPong(ev, ctx) {
    const pending = this._pendingPings.get(ev.ts);
    if (pending) {
      this._pendingPings.delete(ev.ts);
      this.rttMs = Date.now() - pending.sentAt;
      pending.resolve(this.rttMs);
    }
    ctx.rttMs = this.rttMs;
  }

  /**
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   */
  _onError(ev, ctx) {
    if (typeof ev.retry_after_ms === 'number') this._link.retryAfter(ev.retry_after_ms);
    if (!ev.stream_id) return;
    this._streamOf(ev, ctx);
    // the stream a cursor named is gone: resume it no more
    if (ev.code === 'stream_not_found' && this.activeStreamId === ev.stream_id) {
      this.activeStreamId = null;
    }
  }

  /**
   * The event's stream mirror, also put on the context.
   * @private
   * @param {ServerEvent} ev
   * @param {EventContext} ctx
   * @returns {DocumentMirror}
   */
  _streamOf(ev, ctx) {
    const m = this.mirror(/** @type {string} */ (ev.stream_id));
    ctx.mirror = m;
    return m;
  }

  // ----------------------------------------------------------------- control messages

  /**
   * Send one control message on the current connection.
   * @private
   * @param {Record<string, any>} msg
   * @returns {Promise<any>} WebSocket: resolves once queued; SSE: when the POST is accepted;
   *   REST: with the finished message (`start`). Rejects with {@link StreamerError} (also
   *   emitted as an `error` event), when the client is not open, or when it gives up or is
   *   closed while the message waits for a connection.
   */
  async _send(msg) {
    try {
      return await this._link.send(msg);
    } catch (err) {
      if (err instanceof StreamerError && err.event.control) {
        this._emitter.emit('error', err.event, {});
      }
      throw err;
    }
  }

  /**
   * Start a stream (queued by the server if one is running). Over the REST fallback this
   * waits for the whole answer, then feeds it through as `stream_start`, `snapshot`, (an
   * `error` if the answer failed) and `stream_complete`.
   * @param {StartOptions} opts
   * @returns {Promise<void>}
   */
  async start(opts) {
    const msg = startMessage(opts);
    const finished = await this._send(msg);
    if (!finished || typeof finished !== 'object') return;
    for (const ev of finishedEvents(msg, finished, this.sessionId)) this._dispatch(ev, null);
  }

  /**
   * Stop delivery to this connection (generation continues on the server).
   * @returns {Promise<void>}
   */
  pause() {
    return this._send({ type: 'pause' });
  }

  /**
   * Restart delivery after {@link pause}.
   * @returns {Promise<void>}
   */
  resume() {
    return this._send({ type: 'resume' });
  }

  /**
   * Ask for the events of a stream after `lastSeq` (defaults to the mirror's), then follow it.
   * @param {string} streamId
   * @param {number} [lastSeq]
   * @returns {Promise<void>}
   */
  resumeStream(streamId, lastSeq) {
    const mirror = this.streams.get(streamId);
    const seq = lastSeq ?? mirror?.lastSeq ?? 0;
    /** @type {Record<string, any>} */
    const msg = { type: 'resume', stream_id: streamId, last_seq: seq };
    if (mirror?.epoch) msg.epoch = mirror.epoch;
    return this._send(msg);
  }

  /**
   * Deliver everything received so far at once, then follow unpaced.
   * @returns {Promise<void>}
   */
  skip() {
    return this._send({ type: 'skip' });
  }

  /**
   * @param {number} cps new delivery rate, characters per second
   * @returns {Promise<void>}
   */
  speed(cps) {
    return this._send({ type: 'speed', cps });
  }

  /**
   * Remove a queued stream (it never starts).
   * @param {string} streamId
   * @returns {Promise<void>}
   */
  queueRemove(streamId) {
    return this._send({ type: 'queue_remove', stream_id: streamId });
  }

  /**
   * Move a queued stream to `position` in the queue (0 = next).
   * @param {string} streamId
   * @param {number} position
   * @returns {Promise<void>}
   */
  queueMove(streamId, position) {
    return this._send({ type: 'queue_move', stream_id: streamId, position });
  }

  /**
   * Cancel generation. (REST fallback: stop waiting for the answers asked for; the server
   * ends them as it ends a stream nobody follows.)
   * @param {string} [streamId]
   * @returns {Promise<void>}
   */
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
