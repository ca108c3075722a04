/**
 * The REST fallback's finished message as the events a stream would have sent:
 * `stream_start`, a `snapshot` holding the final HTML, an `error` if the answer failed, and
 * `stream_complete`.
 * @param {Record<string, any>} msg the `start` message
 * @param {Record<string, any>} finished `stream_complete`'s fields, `error` when it failed
 * @param {string|null} sessionId
 * @returns {ServerEvent[]}
 */
export function finishedEvents(msg: Record<string, any>, finished: Record<string, any>, sessionId: string | null): ServerEvent[];
/** WebSocket close codes after which reconnecting cannot help. */
export const FATAL_CLOSE_CODES: Set<number>;
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
    constructor(url: string, handlers: TransportHandlers, credentials?: {
        protocols: string[];
        message: string | null;
    });
    /** @type {'websocket'} */
    kind: "websocket";
    url: string;
    /** @private */
    private _credentials;
    /** @type {WebSocket|null} the socket (tests close it to play a network failure) */
    socket: WebSocket | null;
    /** @private @type {ServerEvent|null} an `error` of the session just before the close */
    private _refusal;
    open(): void;
    /**
     * Why the socket closed: a refusal (close 1008, or 4000-4999, right after an `error`) is
     * that error, final when it is `unauthorized` or `forbidden`.
     * @private
     * @param {boolean} opened
     * @param {number} code
     * @param {string} reason
     * @returns {LostInfo}
     */
    private _closed;
    /**
     * @param {Record<string, any>} msg a control message
     * @returns {Promise<void>} once queued
     */
    send(msg: Record<string, any>): Promise<void>;
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
    constructor({ eventsUrl, controlUrl, lastEventId, headers, post }: {
        eventsUrl: string;
        controlUrl: string;
        lastEventId?: string | null;
    } & HttpCredentials, handlers: TransportHandlers);
    /** @type {'sse'} */
    kind: "sse";
    eventsUrl: string;
    controlUrl: string;
    lastEventId: string | null;
    /** @private */
    private _headers;
    /** @private */
    private _post;
    /** @type {string|null} the server's id of this connection (from `connected`) */
    connectionId: string | null;
    /** @private */
    private _abort;
    /** @private whether the response was `ok` */
    private _opened;
    open(): void;
    /** @private */
    private _read;
    /**
     * POST one control message to this connection.
     * @param {Record<string, any>} msg
     * @returns {Promise<void>} when the server accepted it
     * @throws {StreamerError} the server refused it (`event.control` names the message)
     */
    send(msg: Record<string, any>): Promise<void>;
    /** @protected */
    protected release(): void;
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
    constructor({ baseUrl, completeUrl, timeoutMs, post }: {
        baseUrl: string;
        completeUrl: string;
        timeoutMs?: number;
    } & HttpCredentials, handlers: TransportHandlers);
    /** @type {'rest'} */
    kind: "rest";
    healthUrl: string;
    completeUrl: string;
    timeoutMs: number;
    /** @private */
    private _post;
    /**
     * @private
     * @type {Set<AbortController>} one per request in flight
     */
    private _requests;
    open(): void;
    /** @private */
    private _probe;
    /** @private */
    private _track;
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
    send(msg: Record<string, any>): Promise<ServerEvent | null>;
    /** @protected */
    protected release(): void;
}
export type ServerEvent = import("./protocol.js").ServerEvent;
/**
 * Why a connection ended (or never opened).
 */
export type LostInfo = {
    /**
     * whether it had opened (a WebSocket's `open`, an `ok` SSE response)
     */
    opened: boolean;
    /**
     * reconnecting cannot help (a protocol violation, a refusal)
     */
    fatal?: boolean | undefined;
    /**
     * it failed before any transport: the token, or the session's
     * creation (`auto` does not try another transport then)
     */
    setup?: boolean | undefined;
    /**
     * a {@link StreamerError} when the server refused (`unauthorized`,
     * `forbidden`, `session_not_found`, …)
     */
    error?: any;
};
/**
 * The headers of an HTTP transport's requests: `headers` for its GET (the token of the
 * connection attempt), `post()` for each POST (the token resolved again, the JSON type and
 * the CSRF header).
 */
export type HttpCredentials = {
    headers?: Record<string, string>;
    post?: () => Promise<Record<string, string>>;
};
export type TransportHandlers = {
    /**
     * a server event
     * (`eventId`: the SSE `id:`, else null)
     */
    onEvent: (ev: ServerEvent, eventId: string | null) => void;
    /**
     * anything arrived (an event, a frame, a `: ping` comment)
     */
    onActivity: () => void;
    /**
     * the connection ended or could not open
     */
    onLost: (info: LostInfo) => void;
    /**
     * the SSE stream's `retry:` field
     */
    onRetry?: ((retryMs: number) => void) | undefined;
    /**
     * REST only: the server answered, answers can be asked for
     */
    onReady?: (() => void) | undefined;
};
/** Shared by the transports: the `onLost` that fires once, and `close()`. */
declare class Connection {
    /** @param {TransportHandlers} handlers */
    constructor(handlers: TransportHandlers);
    /** @protected */
    protected handlers: TransportHandlers;
    /** True once closed by `close()` or lost: nothing is reported any more. */
    closed: boolean;
    /**
     * @protected
     * @param {LostInfo} info
     */
    protected lose(info: LostInfo): void;
    /**
     * Close for good, without reporting it.
     * @param {number} [code] WebSocket close code
     * @param {string} [reason]
     */
    close(code?: number, reason?: string): void;
    /**
     * Free the connection's resources (the socket, the pending requests).
     * @protected
     * @param {number} [code]
     * @param {string} [reason]
     */
    protected release(code?: number, reason?: string): void;
    /**
     * Parse one JSON event and hand it on; a frame that is not JSON is logged and dropped.
     * @protected
     * @param {string} data
     * @param {string|null} eventId
     * @param {string} [type] the SSE `event:` name, for events without their own `type`
     * @returns {ServerEvent|null} the event handed on
     */
    protected deliver(data: string, eventId: string | null, type?: string): ServerEvent | null;
}
export {};
