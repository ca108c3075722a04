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
    constructor(options?: StreamClientOptions);
    /** @type {string} */
    baseUrl: string;
    /** @type {string|null} the session's id: the server's answer to `POST /api/sessions` */
    sessionId: string | null;
    /** @type {string|null} the id the application chose (null: the server makes one) */
    requestedSessionId: string | null;
    /** @type {TokenOption} read before each connection attempt and each POST */
    token: TokenOption;
    /** @type {string} */
    csrfCookie: string;
    /** @type {TransportChoice} */
    transportChoice: TransportChoice;
    /** @type {import('./reconnect.js').ReconnectPolicy|null} backoff settings (null: none) */
    reconnectOptions: import("./reconnect.js").ReconnectPolicy | null;
    /** @type {ConnectTimeout} */
    connectTimeoutMs: ConnectTimeout;
    restFallback: boolean;
    pingIntervalMs: number;
    heartbeatTimeoutFactor: number;
    resumeOnReconnect: boolean;
    /** @private */
    private _memory;
    /**
     * What this client took over from an earlier page of the tab (`persist`): the session,
     * and the unfinished answer it resumes (null: nothing was kept)
     * @type {{sessionId: string, streamId: string|null}|null}
     */
    restored: {
        sessionId: string;
        streamId: string | null;
    } | null;
    /** @type {Map<string, DocumentMirror>} one mirror per stream id */
    streams: Map<string, DocumentMirror>;
    /** @type {string|null} the stream being delivered now */
    activeStreamId: string | null;
    /** @type {number|null} last measured ping round trip */
    rttMs: number | null;
    /** @private */
    private _emitter;
    /**
     * @private
     * @type {Map<number, {sentAt: number, resolve: (ms: number) => void,
     *                     reject: (err: any) => void}>}
     */
    private _pendingPings;
    /** @private */
    private _link;
    /** @private @type {(() => void)|null} */
    private _unkeep;
    /** @type {ConnectionState} */
    get state(): ConnectionState;
    /** @type {TransportKind|null} the transport in use (or last used) */
    get transport(): TransportKind | null;
    /** @type {string|null} the server's id of this connection (targets SSE control POSTs) */
    get connectionId(): string | null;
    /** @type {number} heartbeat period announced by the server, in ms */
    get heartbeatMs(): number;
    /**
     * @param {string} type a server event type, `*`, `connection` or `resync`
     * @param {(...args: any[]) => void} fn
     * @returns {() => void} unsubscribe
     */
    on(type: string, fn: (...args: any[]) => void): () => void;
    /**
     * @param {string} type
     * @param {(...args: any[]) => void} fn
     */
    off(type: string, fn: (...args: any[]) => void): void;
    /**
     * @param {string} type
     * @param {(...args: any[]) => void} fn
     * @returns {() => void} unsubscribe
     */
    once(type: string, fn: (...args: any[]) => void): () => void;
    /**
     * The mirror of one stream (created on first use).
     * @param {string} streamId
     * @returns {DocumentMirror}
     */
    mirror(streamId: string): DocumentMirror;
    /**
     * Open the connection (and keep it open, reconnecting with backoff, until {@link close}).
     * The first time, the session is made first (`POST /api/sessions`).
     * @returns {Promise<void>} resolves on the server's `connected` event (the REST fallback:
     *   its health check); rejects if the client gives up (state `error`: a final refusal such
     *   as `unauthorized` rejects with its {@link StreamerError}) or is closed first
     */
    connect(): Promise<void>;
    /**
     * Close for good: no reconnect. Streams keep running on the server (see protocol.md).
     * With `persist`, what the tab keeps is written first (a new client takes over).
     */
    close(): void;
    /**
     * `persist`: forget what this tab kept (the next client makes a new session).
     */
    forget(): void;
    /**
     * The session's conversation as the server stored it, oldest first:
     * `GET /api/sessions/{id}/messages` (an answer still streaming is there as it is now,
     * `status: 'streaming'`; an assistant message's `message_id` is its stream's id).
     * @returns {Promise<StoredMessage[]>}
     * @throws {StreamerError} refused (`session_not_found`, `forbidden`, …; `status`)
     * @throws {Error} no session yet (before the `session` event), or the request failed
     */
    messages(): Promise<StoredMessage[]>;
    /**
     * Drop the current connection as a network failure would (for trying resume by hand, and
     * for tests): the client reconnects with backoff and resumes after its last applied `seq`.
     */
    dropConnection(): void;
    /**
     * The open WebSocket, if the transport is one (tests close it to play a network failure).
     * @returns {WebSocket|null}
     */
    get _ws(): WebSocket | null;
    /** @private the mirror of the stream being delivered, if it is unfinished and begun */
    private _unfinishedStream;
    /**
     * Feed one server event through the client, exactly as if it had arrived on the socket.
     * (Used by transports, and by tests to inject events.)
     * @param {ServerEvent} ev
     * @param {string|null} [eventId] SSE `id:`
     */
    handleEvent(ev: ServerEvent, eventId?: string | null): void;
    /**
     * @private
     * @param {ServerEvent} ev
     * @param {string|null} eventId
     */
    private _dispatch;
    /**
     * @private
     * @param {ServerEvent} ev
     */
    private _onConnected;
    /**
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     */
    private _onStreamStart;
    /**
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     */
    private _onChunk;
    /**
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     */
    private _onSnapshot;
    /**
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     */
    private _onComplete;
    /**
     * `progress`, `state`, `tool_call`, `reasoning`, `sources`: ordered by `seq` with the chunks.
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     * @returns {boolean|void} false: seen before a reconnect, dropped
     */
    private _onStreamEvent;
    /**
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     */
    private _onPong;
    /**
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     */
    private _onError;
    /**
     * The event's stream mirror, also put on the context.
     * @private
     * @param {ServerEvent} ev
     * @param {EventContext} ctx
     * @returns {DocumentMirror}
     */
    private _streamOf;
    /**
     * Send one control message on the current connection.
     * @private
     * @param {Record<string, any>} msg
     * @returns {Promise<any>} WebSocket: resolves once queued; SSE: when the POST is accepted;
     *   REST: with the finished message (`start`). Rejects with {@link StreamerError} (also
     *   emitted as an `error` event), when the client is not open, or when it gives up or is
     *   closed while the message waits for a connection.
     */
    private _send;
    /**
     * Start a stream (queued by the server if one is running). Over the REST fallback this
     * waits for the whole answer, then feeds it through as `stream_start`, `snapshot`, (an
     * `error` if the answer failed) and `stream_complete`.
     * @param {StartOptions} opts
     * @returns {Promise<void>}
     */
    start(opts: StartOptions): Promise<void>;
    /**
     * Stop delivery to this connection (generation continues on the server).
     * @returns {Promise<void>}
     */
    pause(): Promise<void>;
    /**
     * Restart delivery after {@link pause}.
     * @returns {Promise<void>}
     */
    resume(): Promise<void>;
    /**
     * Ask for the events of a stream after `lastSeq` (defaults to the mirror's), then follow it.
     * @param {string} streamId
     * @param {number} [lastSeq]
     * @returns {Promise<void>}
     */
    resumeStream(streamId: string, lastSeq?: number): Promise<void>;
    /**
     * Deliver everything received so far at once, then follow unpaced.
     * @returns {Promise<void>}
     */
    skip(): Promise<void>;
    /**
     * @param {number} cps new delivery rate, characters per second
     * @returns {Promise<void>}
     */
    speed(cps: number): Promise<void>;
    /**
     * Remove a queued stream (it never starts).
     * @param {string} streamId
     * @returns {Promise<void>}
     */
    queueRemove(streamId: string): Promise<void>;
    /**
     * Move a queued stream to `position` in the queue (0 = next).
     * @param {string} streamId
     * @param {number} position
     * @returns {Promise<void>}
     */
    queueMove(streamId: string, position: number): Promise<void>;
    /**
     * Cancel generation. (REST fallback: stop waiting for the answers asked for; the server
     * ends them as it ends a stream nobody follows.)
     * @param {string} [streamId]
     * @returns {Promise<void>}
     */
    stop(streamId?: string): Promise<void>;
    /**
     * Send a `ping`; resolves with the round trip in ms when the `pong` arrives.
     * @param {number} [timeoutMs=10000]
     * @returns {Promise<number>}
     */
    ping(timeoutMs?: number): Promise<number>;
}
export type ServerEvent = import("./protocol.js").ServerEvent;
export type ConnectionState = import("./protocol.js").ConnectionState;
export type TransportChoice = import("./protocol.js").TransportChoice;
export type TransportKind = import("./protocol.js").TransportKind;
export type StartOptions = import("./protocol.js").StartOptions;
export type ReconnectOptions = import("./reconnect.js").ReconnectOptions;
export type TokenOption = import("./auth.js").TokenOption;
export type StoredMessage = import("./auth.js").StoredMessage;
export type ConnectTimeout = import("./link.js").ConnectTimeout;
export type PersistOptions = import("./persist.js").PersistOptions;
export type StreamClientOptions = {
    /**
     * server origin (default: the page's origin)
     */
    baseUrl?: string | undefined;
    /**
     * an id of the application's (8–64 characters of A–Z, a–z,
     * 0–9, `_`, `-`; not starting `sess_`), made or claimed with `POST /api/sessions`
     * before the first connection; omitted: the server makes one (`sess_` + 128 random bits)
     */
    sessionId?: string | undefined;
    /**
     * an API key or JWT, or a function giving one (or a Promise
     * of one), called before each connection attempt and each POST so it can be refreshed:
     * WebSocket subprotocols `streamer` + `bearer.<token>`, HTTP `Authorization: Bearer`.
     * Omitted: no credentials (auth `none`, or a cookie the browser sends itself)
     */
    token?: TokenOption;
    /**
     * with cookie auth, POSTs send this cookie's
     * value as `X-CSRF-Token` (when the page can read it)
     */
    csrfCookie?: string | undefined;
    /**
     * `auto` = WebSocket, falling back to SSE when
     * a WebSocket cannot connect, and to the REST `complete` endpoint when SSE cannot either
     */
    transport?: import("./protocol.js").TransportChoice | undefined;
    /**
     * backoff settings, or `false` for no reconnect
     */
    reconnect?: false | import("./reconnect.js").ReconnectOptions | undefined;
    /**
     * a connection that has not had the
     * server's `connected` event by then counts as one that could not open (`auto` tries the
     * next transport at once): ms, for every transport or per transport
     * (`{websocket: 3000, sse: 8000}`; 0 = wait for ever)
     */
    connectTimeoutMs?: import("./link.js").ConnectTimeout | undefined;
    /**
     * `auto`: when both a WebSocket and SSE could not
     * open, use `POST /api/sessions/{id}/complete` (whole answers, no controls)
     */
    restFallback?: boolean | undefined;
    /**
     * WebSocket keep-alive `ping` period (0 = never)
     */
    pingIntervalMs?: number | undefined;
    /**
     * a connection silent for this many
     * `heartbeat_ms` is considered dead and reconnected
     */
    heartbeatTimeoutFactor?: number | undefined;
    /**
     * on a reconnect, ask for the events after the
     * last applied `seq` of an unfinished stream (WebSocket: `?stream_id=…&last_seq=…` on the
     * URL; SSE: the `Last-Event-ID` header). Chunks at or below that seq are ignored anyway.
     */
    resumeOnReconnect?: boolean | undefined;
    /**
     * keep the session's id and the
     * unfinished answer's cursor (with its blocks) in `sessionStorage` under
     * `streamer:<key>` (`true`: key `client`; a string: that key), so that a client made after
     * a page reload continues the conversation ({@link StreamClient#messages}) and resumes the
     * answer in progress exactly
     */
    persist?: string | boolean | import("./persist.js").PersistOptions | undefined;
};
/**
 * What listeners get with each server event: the stream's mirror for stream events, whether
 * a `chunk` was new (`applied`), the SSE id, the round trip for `pong`.
 */
export type EventContext = {
    mirror?: DocumentMirror;
    applied?: boolean;
    eventId?: string | null;
    rttMs?: number | null;
};
import { DocumentMirror } from './mirror.js';
