// What the client knows of the wire protocol (docs/protocol.md, version 2) beyond the block
// ops: the version, the shapes of events and start options, and errors as JS values.

/** Protocol version this client speaks. */
export const PROTOCOL_VERSION = 2;

/**
 * A server → client event (protocol.md, "Server → client events"). Always has `type`.
 * @typedef {{type: string, session_id?: string, stream_id?: string, seq?: number,
 *            [key: string]: any}} ServerEvent
 */

/**
 * Connection states, emitted as the `connection` event (`client.on('connection', fn)`).
 * @typedef {'connecting'|'connected'|'retrying'|'disconnected'|'error'} ConnectionState
 */

/**
 * `auto` = WebSocket, then SSE when a WebSocket cannot connect, then the REST `complete`
 * endpoint when neither can; `rest` = only the REST endpoint (no streaming, no controls).
 * @typedef {'auto'|'websocket'|'sse'|'rest'} TransportChoice
 */

/**
 * The transport in use: a WebSocket, SSE with control POSTs, or the REST fallback.
 * @typedef {'websocket'|'sse'|'rest'} TransportKind
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
 * @property {string[]} [tools] names of server-side tools the model may call
 */

/** The keys of {@link StartOptions} a `start` message carries. */
export const START_KEYS = Object.freeze(['prompt', 'messages', 'provider', 'model', 'system',
  'max_tokens', 'temperature', 'pacing', 'echo', 'tools']);

/**
 * The `start` control message for `opts`: the known keys that are set (not `undefined`,
 * `null` or `''`).
 * @param {StartOptions} opts
 * @returns {Record<string, any>}
 */
export function startMessage(opts) {
  /** @type {Record<string, any>} */
  const msg = { type: 'start' };
  for (const key of START_KEYS) {
    const value = /** @type {Record<string, any>} */ (opts)[key];
    if (value !== undefined && value !== null && value !== '') msg[key] = value;
  }
  return msg;
}

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
    /** @type {ServerEvent} */
    this.event = ev;
    /** @type {number|undefined} the HTTP status, when the error is a refused request */
    this.status = undefined;
  }
}

/**
 * The `error` event an HTTP error response stands for: its JSON body when the server wrote
 * one (`{code, message, retryable, …}`), else one made from the status (404 is
 * `session_not_found`; 5xx and 429 are retryable).
 * @param {Response} response a response that is not `ok`
 * @returns {Promise<ServerEvent>}
 */
export async function errorFromResponse(response) {
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
