// Credentials and the session's creation (docs/security.md, "Wire"): the `token` option,
// resolved before each connection and each HTTP request, goes out as the WebSocket
// subprotocol `bearer.<token>` (browsers cannot set headers on a WebSocket; never in a URL)
// or as `Authorization: Bearer <token>`; a cookie session's POSTs echo the CSRF cookie in
// `X-CSRF-Token`; sessions are made by `POST /api/sessions` only, and their conversation is
// read with `GET /api/sessions/{id}/messages`.

import { StreamerError, errorFromResponse } from './protocol.js';

/**
 * A bearer token (an API key or a JWT), or a function giving one (sync or async), called
 * before each connection attempt and each HTTP request so that a token can be refreshed.
 * Empty, `null` or `undefined`: no credentials (auth `none`, or a cookie the browser sends).
 * @typedef {string|null|undefined|(() => string|null|undefined|Promise<string|null|undefined>)} TokenOption
 */

/** The subprotocol the server selects; offered beside `bearer.<token>`. */
export const SUBPROTOCOL = 'streamer';

/** Error codes after which reconnecting cannot help: the app must act (a new token…). */
export const FINAL_CODES = new Set(['unauthorized', 'forbidden']);

/** RFC 7230 §3.2.6 `token`: what a subprotocol name may hold (RFC 6455 §4.1). */
const TCHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The token in force now.
 * @param {TokenOption} option
 * @returns {Promise<string|null>} null when there is none
 */
export async function resolveToken(option) {
  const token = typeof option === 'function' ? await option() : option;
  if (token === null || token === undefined || token === '') return null;
  if (typeof token !== 'string') throw new TypeError('streamer: the token must be a string');
  return token;
}

/**
 * How a WebSocket carries `token`: the subprotocols `streamer` and `bearer.<token>`, or, for
 * a token a subprotocol cannot hold, the first message `{"type": "auth", "token"}`.
 * No token: no subprotocols (the browser would fail a handshake the server answers without one).
 * @param {string|null} token
 * @returns {{protocols: string[], message: string|null}}
 */
export function wsCredentials(token) {
  if (!token) return { protocols: [], message: null };
  if (TCHARS.test(token)) return { protocols: [SUBPROTOCOL, `bearer.${token}`], message: null };
  return { protocols: [SUBPROTOCOL], message: JSON.stringify({ type: 'auth', token }) };
}

/**
 * The value of cookie `name` in `document.cookie`, if there is a document and the cookie.
 * @param {string} name
 * @returns {string|null}
 */
function cookie(name) {
  if (!name || typeof document === 'undefined' || typeof document.cookie !== 'string') {
    return null;
  }
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  return null;
}

/**
 * The headers of one HTTP request: `Authorization: Bearer <token>` when there is a token;
 * for a POST (`json`), `Content-Type: application/json` and, when the page has the CSRF
 * cookie `csrfCookie`, `X-CSRF-Token` equal to it (the double-submit check of cookie auth).
 * @param {string|null} token
 * @param {{json?: boolean, csrfCookie?: string}} [what]
 * @returns {Record<string, string>}
 */
export function authHeaders(token, { json = false, csrfCookie = '' } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json) {
    headers['Content-Type'] = 'application/json';
    const csrf = cookie(csrfCookie);
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  return headers;
}

/**
 * What `POST /api/sessions` answers (201 made, 200 it exists and is the caller's), and
 * `created`: whether it was made by this request (201).
 * @typedef {{session_id: string, ws_url?: string, events_url?: string,
 *            created?: boolean}} SessionInfo
 */

/**
 * Make (or claim) the session: `POST {baseUrl}/api/sessions` with `{"session_id": id}`
 * when the application chose `sessionId`, else `{}` (the server makes `sess_` + 128 bits).
 * @param {string} baseUrl
 * @param {{sessionId: string|null, token: string|null, csrfCookie?: string,
 *          signal?: AbortSignal}} request
 * @returns {Promise<SessionInfo>}
 * @throws {StreamerError} the server refused (its `status`; {@link isFinal} says whether
 *   retrying can help)
 * @throws {TypeError} the request did not reach the server (down, or blocked by CORS)
 */
export async function createSession(baseUrl, { sessionId, token, csrfCookie = '', signal }) {
  const response = await fetch(`${baseUrl}/api/sessions`, {
    method: 'POST', headers: authHeaders(token, { json: true, csrfCookie }),
    body: JSON.stringify(sessionId ? { session_id: sessionId } : {}), signal, cache: 'no-store',
  });
  if (!response.ok) {
    const err = new StreamerError(await errorFromResponse(response));
    err.status = response.status;
    throw err;
  }
  const body = await response.json();
  if (!body || typeof body.session_id !== 'string') {
    throw new StreamerError({ type: 'error', code: 'invalid_message', retryable: false,
      message: 'POST /api/sessions answered without a session_id' });
  }
  return { ...body, created: response.status === 201 };
}

/**
 * One message of a session's stored conversation (protocol.md, "Other endpoints"); times
 * in Unix seconds.
 * @typedef {{message_id: string, role: 'user'|'assistant'|'system', markdown: string,
 *            html: string|null, provider?: string|null, model?: string|null,
 *            usage?: Record<string, number>|null, finish_reason?: string|null,
 *            status: 'complete'|'streaming', created_at: number,
 *            completed_at?: number|null}} StoredMessage
 */

/**
 * The session's conversation: `GET {baseUrl}/api/sessions/{id}/messages`.
 * @param {string} baseUrl
 * @param {string} sessionId
 * @param {string|null} token
 * @returns {Promise<StoredMessage[]>} oldest first
 * @throws {StreamerError} the server refused (its `status`)
 * @throws {TypeError} the request did not reach the server
 */
export async function fetchMessages(baseUrl, sessionId, token) {
  const response = await fetch(`${baseUrl}/api/sessions/${encodeURIComponent(sessionId)}/messages`,
    { headers: authHeaders(token), cache: 'no-store' });
  if (!response.ok) {
    const err = new StreamerError(await errorFromResponse(response));
    err.status = response.status;
    throw err;
  }
  const body = await response.json();
  return Array.isArray(body?.messages) ? body.messages : [];
}

/**
 * Whether a refusal is final (reconnecting cannot help): an `unauthorized` or `forbidden`
 * code, or an HTTP 4xx other than 404 and 429 that is not retryable (`invalid_message`, …).
 * @param {any} err
 * @returns {boolean}
 */
export function isFinal(err) {
  if (!(err instanceof StreamerError)) return false;
  if (FINAL_CODES.has(err.code)) return true;
  const s = err.status;
  return !err.retryable && s !== undefined && s >= 400 && s < 500 && s !== 404 && s !== 429;
}
