/**
 * The `start` control message for `opts`: the known keys that are set (not `undefined`,
 * `null` or `''`).
 * @param {StartOptions} opts
 * @returns {Record<string, any>}
 */
export function startMessage(opts: StartOptions): Record<string, any>;
/**
 * The `error` event an HTTP error response stands for: its JSON body when the server wrote
 * one (`{code, message, retryable, …}`), else one made from the status (404 is
 * `session_not_found`; 5xx and 429 are retryable).
 * @param {Response} response a response that is not `ok`
 * @returns {Promise<ServerEvent>}
 */
export function errorFromResponse(response: Response): Promise<ServerEvent>;
/** Protocol version this client speaks. */
export const PROTOCOL_VERSION: 2;
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
export const START_KEYS: readonly string[];
/** An `error` event, or a failed control POST, as a JS Error. */
export class StreamerError extends Error {
    /** @param {ServerEvent} ev */
    constructor(ev: ServerEvent);
    /** @type {string} */
    code: string;
    /** @type {boolean} */
    retryable: boolean;
    /** @type {number|undefined} */
    retryAfterMs: number | undefined;
    /** @type {ServerEvent} */
    event: ServerEvent;
    /** @type {number|undefined} the HTTP status, when the error is a refused request */
    status: number | undefined;
}
/**
 * A server → client event (protocol.md, "Server → client events"). Always has `type`.
 */
export type ServerEvent = {
    type: string;
    session_id?: string;
    stream_id?: string;
    seq?: number;
    [key: string]: any;
};
/**
 * Connection states, emitted as the `connection` event (`client.on('connection', fn)`).
 */
export type ConnectionState = "connecting" | "connected" | "retrying" | "disconnected" | "error";
/**
 * `auto` = WebSocket, then SSE when a WebSocket cannot connect, then the REST `complete`
 * endpoint when neither can; `rest` = only the REST endpoint (no streaming, no controls).
 */
export type TransportChoice = "auto" | "websocket" | "sse" | "rest";
/**
 * The transport in use: a WebSocket, SSE with control POSTs, or the REST fallback.
 */
export type TransportKind = "websocket" | "sse" | "rest";
export type StartOptions = {
    /**
     * the user's prompt (or give `messages`)
     */
    prompt?: string | undefined;
    messages?: {
        role: "system" | "user" | "assistant";
        content: string;
    }[] | undefined;
    /**
     * `local` (default on the server), `echo`, `openai`, …
     */
    provider?: string | undefined;
    model?: string | undefined;
    system?: string | undefined;
    max_tokens?: number | undefined;
    temperature?: number | undefined;
    pacing?: {
        mode?: "off" | "smooth" | "fixed";
        cps?: number;
    } | undefined;
    /**
     * echo provider options
     */
    echo?: {
        delta_chars?: number;
        interval_ms?: number;
    } | undefined;
    /**
     * names of server-side tools the model may call
     */
    tools?: string[] | undefined;
};
