// The client's transports, one connection each: a WebSocket, SSE read with fetch (+ control
// POSTs), and the REST fallback (`POST …/complete`, no streaming). Each reports what it receives
// to its handlers and calls `onLost` at most once; after `close()` it reports nothing more.

import { isFinal } from './auth.js';
import { StreamerError, errorFromResponse } from './protocol.js';
import { readEventStream } from './sse.js';

/** @typedef {import('./protocol.js').ServerEvent} ServerEvent */

/**
 * Why a connection ended (or never opened).
 * @typedef {object} LostInfo
 * @property {boolean} opened whether it had opened (a WebSocket's `open`, an `ok` SSE response)
 * @property {boolean} [fatal] reconnecting cannot help (a protocol violation, a refusal)
 * @property {boolean} [setup] it failed before any transport: the token, or the session's
 *   creation (`auto` does not try another transport then)
 * @property {any} [error] a {@link StreamerError} when the server refused (`unauthorized`,
 *   `forbidden`, `session_not_found`, …)
 */

/**
 * The headers of an HTTP transport's requests: `headers` for its GET (the token of the
 * connection attempt), `post()` for each POST (the token resolved again, the JSON type and
 * the CSRF header).
 * @typedef {{headers?: Record<string, string>,
 *            post?: () => Promise<Record<string, string>>}} HttpCredentials
 */

/** POST headers when none are given: JSON. */
const JSON_ONLY = async () => ({ 'Content-Type': 'application/json' });

/**
 * @typedef {object} TransportHandlers
 * @property {(ev: ServerEvent, eventId: string|null) => void} onEvent a server event
 *   (`eventId`: the SSE `id:`, else null)
 * @property {() => void} onActivity anything arrived (an event, a frame, a `: ping` comment)
 * @property {(info: LostInfo) => void} onLost the connection ended or could not open
 * @property {(retryMs: number) => void} [onRetry] the SSE stream's `retry:` field
 * @property {() => void} [onReady] REST only: the server answered, answers can be asked for
 */

/** The abort reason of a REST request given up by `stop`. */
const STOPPED = 'stopped';

/** WebSocket close codes after which reconnecting cannot help. */
export const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1008]);

/** Shared by the transports: the `onLost` that fires once, and `close()`. */
class Connection {
  /** @param {TransportHandlers} handlers */
  constructor(handlers) {
    /** @protected */
    this.handlers = handlers;
    /** True once closed by `close()` or lost: nothing is reported any more. */
    this.closed = false;
  }

  /**
   * @protected
   * @param {LostInfo} info
   */
  lose(info) {
    if (this.closed) return;
    this.closed = true;
    this.release();
    this.handlers.onLost(info);
  }

  /**
   * Close for good, without reporting it.
   * @param {number} [code] WebSocket close code
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    this.closed = true;
    this.release(code, reason);
  }

  /**
   * Free the connection's resources (the socket, the pending requests).
   * @protected
   * @param {number} [code]
   * @param {string} [reason]
   */
  release(code, reason) {} // eslint-disable-line no-unused-vars

  /**
   * Parse one JSON event and hand it on; a frame that is not JSON is logged and dropped.
   * @protected
   * @param {string} data
   * @param {string|null} eventId
   * @param {string} [type] the SSE `event:` name, for events without their own `type`
   * @returns {ServerEvent|null} the event handed on
   */
  deliver(data, eventId, type) {
    if (this.closed) return null;
    let ev;
    try {
      ev = JSON.parse(data);
    } catch {
      console.warn('streamer: non-JSON event ignored', data);
      return null;
    }
    if (!ev.type && type) ev.type = type;
    this.handlers.onEvent(ev, eventId);
    return ev;
  }
}

/**
 * One WebSocket: `GET /ws/stream/{session_id}`, a JSON object per text frame either way.
 * Credentials go in the subprotocols (`streamer`, `bearer.<token>`), or in a first `auth`
 * message (see auth.js `wsCredentials`).
 */
export class WebSocketTransport extends Connection {
  /**
   * @param {string} url the `ws:`/`wss:` URL, resume cursor included
   * @param {TransportHandlers} handlers
   * @param {{protocols: string[], message: string|null}} [credentials] subprotocols to offer,
   *   and a message to send first
   */
  constructor(url, handlers, credentials = { protocols: [], message: null }) {
    super(handlers);
    /** @type {'websocket'} */
    this.kind = 'websocket';
    this.url = url;
    /** @private */
    this._credentials = credentials;
    /** @type {WebSocket|null} the socket (tests close it to play a network failure) */
    this.socket = null;
    /** @private @type {ServerEvent|null} an `error` of the session just before the close */
    this._refusal = null;
  }

  open() {
    let opened = false;
    let ws;
    const { protocols, message } = this._credentials;
    try {
      ws = protocols.length ? new WebSocket(this.url, protocols) : new WebSocket(this.url);
    } catch (error) {
      queueMicrotask(() => this.lose({ opened: false, error }));
      return;
    }
    this.socket = ws;
    ws.onopen = () => {
      opened = true;
      if (message && !this.closed) ws.send(message);
    };
    ws.onmessage = (msg) => {
      if (this.closed) return;
      this.handlers.onActivity();
      const ev = this.deliver(msg.data, null);
      this._refusal = ev && ev.type === 'error' && !ev.stream_id ? ev : null;
    };
    ws.onclose = (e) => this.lose(this._closed(opened, e.code, e.reason));
    ws.onerror = () => {}; // always followed by onclose, which decides
  }

  /**
   * Why the socket closed: a refusal (close 1008, or 4000-4999, right after an `error`) is
   * that error, final when it is `unauthorized` or `forbidden`.
   * @private
   * @param {boolean} opened
   * @param {number} code
   * @param {string} reason
   * @returns {LostInfo}
   */
  _closed(opened, code, reason) {
    const refused = FATAL_CLOSE_CODES.has(code) || (code >= 4000 && code < 5000);
    if (refused && this._refusal) {
      const error = new StreamerError(this._refusal);
      return { opened, fatal: FATAL_CLOSE_CODES.has(code) || isFinal(error), error };
    }
    return { opened, fatal: FATAL_CLOSE_CODES.has(code),
      error: new Error(`WebSocket closed (${code}${reason ? ` ${reason}` : ''})`) };
  }

  /**
   * @param {Record<string, any>} msg a control message
   * @returns {Promise<void>} once queued
   */
  async send(msg) {
    if (!this.socket || this.closed) throw new Error('the WebSocket is closed');
    this.socket.send(JSON.stringify(msg));
  }

  /**
   * @protected
   * @param {number} [code]
   * @param {string} [reason]
   */
  release(code = 1000, reason = '') {
    const ws = this.socket;
    if (!ws) return;
    try {
      ws.close(code, reason);
    } catch {
      /* already closing */
    }
  }
}

/**
 * SSE: `GET /api/sessions/{id}/events` read with fetch, controls as
 * `POST /api/sessions/{id}/control?connection_id=…`.
 */
export class EventStreamTransport extends Connection {
  /**
   * @param {{eventsUrl: string, controlUrl: string, lastEventId?: string|null}
   *         & HttpCredentials} urls `lastEventId` goes out as the `Last-Event-ID` header
   *   (resume)
   * @param {TransportHandlers} handlers
   */
  constructor({ eventsUrl, controlUrl, lastEventId = null, headers = {}, post = JSON_ONLY },
    handlers) {
    super(handlers);
    /** @type {'sse'} */
    this.kind = 'sse';
    this.eventsUrl = eventsUrl;
    this.controlUrl = controlUrl;
    this.lastEventId = lastEventId;
    /** @private */
    this._headers = headers;
    /** @private */
    this._post = post;
    /** @type {string|null} the server's id of this connection (from `connected`) */
    this.connectionId = null;
    /** @private */
    this._abort = new AbortController();
    /** @private whether the response was `ok` */
    this._opened = false;
  }

  open() {
    this._read().catch((error) => {
      if (!this._abort.signal.aborted) this.lose({ opened: this._opened, error });
    });
  }

  /** @private */
  async _read() {
    /** @type {Record<string, string>} */
    const headers = { ...this._headers, Accept: 'text/event-stream' };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    const response = await fetch(this.eventsUrl,
      { headers, signal: this._abort.signal, cache: 'no-store' });
    if (!response.ok) {
      // reported through the `connection` state (retrying/error), not as a server event
      const error = new StreamerError(await errorFromResponse(response));
      error.status = response.status;
      this.lose({ opened: false, fatal: isFinal(error), error });
      return;
    }
    this._opened = true;
    await readEventStream(response, {
      onEvent: ({ event, data, id }) => this.deliver(data, id, event),
      onLine: () => {
        if (!this.closed) this.handlers.onActivity();
      },
      onRetry: (ms) => this.handlers.onRetry?.(ms),
    });
    this.lose({ opened: true, error: new Error('event stream ended') });
  }

  /**
   * POST one control message to this connection.
   * @param {Record<string, any>} msg
   * @returns {Promise<void>} when the server accepted it
   * @throws {StreamerError} the server refused it (`event.control` names the message)
   */
  async send(msg) {
    const cid = this.connectionId ? `?connection_id=${encodeURIComponent(this.connectionId)}` : '';
    const response = await fetch(this.controlUrl + cid, {
      method: 'POST', headers: await this._post(), body: JSON.stringify(msg),
    });
    if (!response.ok) throw await refusal(response, msg);
  }

  /** @protected */
  release() {
    this._abort.abort();
  }
}

/**
 * The REST fallback, for when neither a WebSocket nor SSE can connect (a proxy that blocks
 * both): `GET /healthz` checks the server is there, then each `start` is one
 * `POST /api/sessions/{id}/complete` answered with the finished message. Nothing streams,
 * nothing can be paused or resumed; `stop` abandons the requests still waiting.
 */
export class RestTransport extends Connection {
  /**
   * @param {{baseUrl: string, completeUrl: string, timeoutMs?: number}
   *         & HttpCredentials} urls `timeoutMs` bounds the health check
   * @param {TransportHandlers} handlers
   */
  constructor({ baseUrl, completeUrl, timeoutMs = 10000, post = JSON_ONLY }, handlers) {
    super(handlers);
    /** @type {'rest'} */
    this.kind = 'rest';
    this.healthUrl = `${baseUrl}/healthz`;
    this.completeUrl = completeUrl;
    this.timeoutMs = timeoutMs;
    /** @private */
    this._post = post;
    /**
     * @private
     * @type {Set<AbortController>} one per request in flight
     */
    this._requests = new Set();
  }

  open() {
    this._probe().catch((error) => this.lose({ opened: false, error }));
  }

  /** @private */
  async _probe() {
    const abort = this._track();
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      const response = await fetch(this.healthUrl, { signal: abort.signal, cache: 'no-store' });
      const body = response.ok ? await response.json() : null;
      if (!body || body.ok !== true) throw new Error(`GET /healthz answered ${response.status}`);
    } finally {
      clearTimeout(timer);
      this._requests.delete(abort);
    }
    if (!this.closed) this.handlers.onReady?.();
  }

  /** @private */
  _track() {
    const abort = new AbortController();
    this._requests.add(abort);
    return abort;
  }

  /**
   * `start`: ask for the whole answer and wait for it. `stop`: abandon the requests still
   * waiting (their `send` gives null). Anything else is refused.
   * @param {Record<string, any>} msg
   * @returns {Promise<ServerEvent|null>} `start`: the finished message (the server's
   *   `stream_complete` fields, with `error` when the answer failed), or null when stopped;
   *   else null
   * @throws {StreamerError} refused by the server (or a control REST cannot carry)
   * @throws {Error} abandoned by `close()`, or a network failure (the connection is lost too)
   */
  async send(msg) {
    if (msg.type === 'stop') {
      for (const abort of this._requests) abort.abort(STOPPED);
      return null;
    }
    if (msg.type !== 'start') {
      throw new StreamerError({ type: 'error', code: 'unsupported_control', control: msg.type,
        retryable: false,
        message: `'${msg.type}' needs a streaming connection (WebSocket or SSE): the REST ` +
          'fallback only starts answers and stops waiting for them' });
    }
    const abort = this._track();
    let response;
    try {
      response = await fetch(this.completeUrl, {
        method: 'POST', headers: await this._post(), body: JSON.stringify(msg),
        signal: abort.signal,
      });
      if (!response.ok) throw await refusal(response, msg);
      return await response.json();
    } catch (error) {
      if (error instanceof StreamerError) throw error;
      if (abort.signal.aborted && abort.signal.reason === STOPPED) return null;
      if (abort.signal.aborted) throw new Error('client closed');
      this.lose({ opened: true, error });
      throw error;
    } finally {
      this._requests.delete(abort);
    }
  }

  /** @protected */
  release() {
    for (const abort of this._requests) abort.abort();
    this._requests.clear();
  }
}

/**
 * The REST fallback's finished message as the events a stream would have sent:
 * `stream_start`, a `snapshot` holding the final HTML, an `error` if the answer failed, and
 * `stream_complete`.
 * @param {Record<string, any>} msg the `start` message
 * @param {Record<string, any>} finished `stream_complete`'s fields, `error` when it failed
 * @param {string|null} sessionId
 * @returns {ServerEvent[]}
 */
export function finishedEvents(msg, finished, sessionId) {
  const { error, ...complete } = finished;
  const ids = { session_id: sessionId ?? undefined, stream_id: complete.stream_id };
  /** @type {ServerEvent} */
  const start = { type: 'stream_start', ...ids };
  if (msg.provider) start.provider = msg.provider;
  if (msg.model) start.model = msg.model;
  const html = typeof complete.html === 'string' ? complete.html : '';
  /** @type {ServerEvent[]} */
  const events = [start, { type: 'snapshot', ...ids, blocks: html ? [html] : [] }];
  if (error) events.push({ type: 'error', ...ids, ...error });
  events.push({ ...complete, type: 'stream_complete', ...ids });
  return events;
}

/**
 * The StreamerError for a refused control message.
 * @param {Response} response
 * @param {Record<string, any>} msg
 * @returns {Promise<StreamerError>}
 */
async function refusal(response, msg) {
  const ev = await errorFromResponse(response);
  ev.control = msg.type;
  const error = new StreamerError(ev);
  error.status = response.status;
  return error;
}
