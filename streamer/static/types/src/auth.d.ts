/**
 * The token in force now.
 * @param {TokenOption} option
 * @returns {Promise<string|null>} null when there is none
 */
export function resolveToken(option: TokenOption): Promise<string | null>;
/**
 * How a WebSocket carries `token`: the subprotocols `streamer` and `bearer.<token>`, or, for
 * a token a subprotocol cannot hold, the first message `{"type": "auth", "token"}`.
 * No token: no subprotocols (the browser would fail a handshake the server answers without one).
 * @param {string|null} token
 * @returns {{protocols: string[], message: string|null}}
 */
export function wsCredentials(token: string | null): {
    protocols: string[];
    message: string | null;
};
/**
 * The headers of one HTTP request: `Authorization: Bearer <token>` when there is a token;
 * for a POST (`json`), `Content-Type: application/json` and, when the page has the CSRF
 * cookie `csrfCookie`, `X-CSRF-Token` equal to it (the double-submit check of cookie auth).
 * @param {string|null} token
 * @param {{json?: boolean, csrfCookie?: string}} [what]
 * @returns {Record<string, string>}
 */
export function authHeaders(token: string | null, { json, csrfCookie }?: {
    json?: boolean;
    csrfCookie?: string;
}): Record<string, string>;
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
export function createSession(baseUrl: string, { sessionId, token, csrfCookie, signal }: {
    sessionId: string | null;
    token: string | null;
    csrfCookie?: string;
    signal?: AbortSignal;
}): Promise<SessionInfo>;
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
export function fetchMessages(baseUrl: string, sessionId: string, token: string | null): Promise<StoredMessage[]>;
/**
 * Whether a refusal is final (reconnecting cannot help): an `unauthorized` or `forbidden`
 * code, or an HTTP 4xx other than 404 and 429 that is not retryable (`invalid_message`, …).
 * @param {any} err
 * @returns {boolean}
 */
export function isFinal(err: any): boolean;
/**
 * A bearer token (an API key or a JWT), or a function giving one (sync or async), called
 * before each connection attempt and each HTTP request so that a token can be refreshed.
 * Empty, `null` or `undefined`: no credentials (auth `none`, or a cookie the browser sends).
 * @typedef {string|null|undefined|(() => string|null|undefined|Promise<string|null|undefined>)} TokenOption
 */
/** The subprotocol the server selects; offered beside `bearer.<token>`. */
export const SUBPROTOCOL: "streamer";
/** Error codes after which reconnecting cannot help: the app must act (a new token…). */
export const FINAL_CODES: Set<string>;
/**
 * What `POST /api/sessions` answers (201 made, 200 it exists and is the caller's), and
 * `created`: whether it was made by this request (201).
 */
export type SessionInfo = {
    session_id: string;
    ws_url?: string;
    events_url?: string;
    created?: boolean;
};
/**
 * One message of a session's stored conversation (protocol.md, "Other endpoints"); times
 * in Unix seconds.
 */
export type StoredMessage = {
    message_id: string;
    role: "user" | "assistant" | "system";
    markdown: string;
    html: string | null;
    provider?: string | null;
    model?: string | null;
    usage?: Record<string, number> | null;
    finish_reason?: string | null;
    status: "complete" | "streaming";
    created_at: number;
    completed_at?: number | null;
};
/**
 * A bearer token (an API key or a JWT), or a function giving one (sync or async), called
 * before each connection attempt and each HTTP request so that a token can be refreshed.
 * Empty, `null` or `undefined`: no credentials (auth `none`, or a cookie the browser sends).
 */
export type TokenOption = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);
