/**
 * The connect timeout of `kind`, in ms (0 = none).
 * @param {ConnectTimeout|undefined} option
 * @param {TransportKind} kind
 * @returns {number}
 */
export function connectTimeoutOf(option: ConnectTimeout | undefined, kind: TransportKind): number;
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
export const DEFAULT_CONNECT_TIMEOUT_MS: 5000;
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
    constructor(settings: LinkSettings, hooks: LinkHooks);
    /** @private */
    private _settings;
    /** @private */
    private _hooks;
    /** @type {ConnectionState} */
    state: ConnectionState;
    /** @type {TransportKind|null} the transport in use (or last used) */
    kind: TransportKind | null;
    /** @type {string|null} the server's id of this connection */
    connectionId: string | null;
    /** @type {number} heartbeat period announced by the server */
    heartbeatMs: number;
    /** @private @type {TransportKind} */
    private _preferred;
    /** @private @type {Transport|null} */
    private _transport;
    /** @private @type {Set<TransportKind>} transports that could not open in this round */
    private _failed;
    /** @private */
    private _wantOpen;
    /** @private failed attempts in a row */
    private _attempt;
    /** @private */
    private _everConnected;
    /** @private @type {{retry: any, connect: any, ping: any, watchdog: any}} */
    private _timers;
    /** @private */
    private _lastActivity;
    /** @private */
    private _retryAfterMs;
    /** @private @type {number|null} */
    private _sseRetryMs;
    /** @private @type {string|null} */
    private _lastEventId;
    /** @private @type {TransportKind|null} the streaming transport that last connected */
    private _lastGood;
    /** @private @type {{resolve: () => void, reject: (err: any) => void}[]} */
    private _waiters;
    /** @private whether the server has made this client's session */
    private _sessionReady;
    /** @private the session was made anew since the last connection: no resume cursor */
    private _newSession;
    /** @private a forgotten session was made anew and has not connected since */
    private _recreated;
    /** @private @type {object|null} the connection attempt of the moment */
    private _current;
    /** @private @type {AbortController|null} the attempt's session request */
    private _setup;
    /** @private the session id was kept from an earlier page, not yet confirmed */
    private _restored;
    /** @private */
    private _onWake;
    /** @private */
    private _onVisibility;
    /** @returns {WebSocket|null} the open WebSocket, if the transport is one */
    get socket(): WebSocket | null;
    /**
     * Open (and keep open until {@link close}).
     * @returns {Promise<void>} resolves when connected; rejects on giving up or {@link close}
     */
    open(): Promise<void>;
    /** Close for good: no reconnect. */
    close(): void;
    /** Drop the connection as a network failure would: reconnect with backoff, resume. */
    drop(): void;
    /**
     * The network came back (`online`) or the page became visible again: a reconnect waiting
     * out its backoff goes now (the backoff starts again from its first delay), and a
     * streaming connection silent for longer than a heartbeat (a laptop that slept: its socket
     * is dead but does not know it yet) is given up and made again at once.
     */
    wake(): void;
    /**
     * (Un)listen to `online` (window) and `visibilitychange` (document), where there are such.
     * @private
     * @param {boolean} on
     */
    private _listen;
    /**
     * Send a control message on the connection of the moment. While the link is connecting or
     * waiting to retry, the message waits for the connection (as a `start` right after page
     * load or during a reconnect should), then goes on it.
     * @param {Record<string, any>} msg
     * @returns {Promise<any>} what the transport's `send` gives; rejects at once when the link
     *   is not open (never opened, closed, given up), or with the reason the link gives up
     *   or is closed while the message waits
     */
    send(msg: Record<string, any>): Promise<any>;
    /**
     * The server's `connected` event: the connection is up.
     * @param {ServerEvent} ev
     */
    connected(ev: ServerEvent): void;
    /**
     * An `error` event's `retry_after_ms`: the next reconnect waits at least that long.
     * @param {number} ms
     */
    retryAfter(ms: number): void;
    /**
     * @private
     * @param {ConnectionState} state
     * @param {Record<string, any>} [extra]
     */
    private _setState;
    /**
     * @private
     * @param {any} err null: resolve the `open()` promises; else reject them
     */
    private _settle;
    /** @private open the preferred transport, with a connect timeout */
    private _open;
    /**
     * One attempt: the token, the session (when the server has not made it yet), the transport.
     * @private
     * @param {TransportKind} kind
     * @param {object} attempt stale once `this._current` is another
     */
    private _prepare;
    /**
     * @private
     * @param {TransportKind} kind
     * @param {string|null} token the attempt's (POSTs resolve the token again when they go out)
     * @returns {Transport}
     */
    private _transportOf;
    /**
     * @private
     * @returns {string} the session's id (made by now)
     */
    private _sessionId;
    /**
     * The WebSocket URL, with the resume cursor.
     * @private
     * @param {{streamId: string, epoch: string|null, lastSeq: number}|null} cursor
     */
    private _wsUrl;
    /**
     * The server is there: `connected` (WebSocket, SSE) or the health check (REST).
     * @private
     * @param {boolean} resumed
     */
    private _markConnected;
    /**
     * Stop timers and the connection of the moment without changing the state.
     * @private
     * @param {number} [code]
     * @param {string} [reason]
     */
    private _teardown;
    /**
     * The connection ended (or could not open): the next transport of `auto`'s fallbacks at
     * once, else reconnect with backoff (unless closed or given up).
     * @private
     * @param {LostInfo} info
     */
    private _lost;
    /**
     * The server forgot the session: whether to make a new one at once (its id was the
     * server's, and no session made anew already failed so), else the end (the application
     * chose the id: `connect()` again makes it anew under that id).
     * @private
     * @returns {boolean}
     */
    private _forgotten;
    /**
     * `auto`: the transport to try at once after `failed` could not open (WebSocket → SSE →
     * REST, the last only when both others failed in this round), or null.
     * @private
     * @param {TransportKind|null} failed
     * @param {LostInfo} info
     * @returns {TransportKind|null}
     */
    private _fallback;
    /** @private the liveness watchdog, and the WebSocket's keep-alive pings */
    private _startTimers;
}
export type ServerEvent = import("./protocol.js").ServerEvent;
export type ConnectionState = import("./protocol.js").ConnectionState;
export type TransportChoice = import("./protocol.js").TransportChoice;
export type TransportKind = import("./protocol.js").TransportKind;
export type LostInfo = import("./transports.js").LostInfo;
export type Transport = WebSocketTransport | EventStreamTransport | RestTransport;
export type SessionInfo = import("./auth.js").SessionInfo;
/**
 * The owner's settings (StreamClient's fields of the same names).
 */
export type LinkSettings = {
    baseUrl: string;
    /**
     * the session's id (null until the server has made it)
     */
    sessionId: string | null;
    /**
     * the id the application chose, or null
     */
    requestedSessionId: string | null;
    token: import("./auth.js").TokenOption;
    csrfCookie: string;
    transportChoice: TransportChoice;
    reconnectOptions: import("./reconnect.js").ReconnectPolicy | null;
    connectTimeoutMs: ConnectTimeout;
    restFallback: boolean;
    pingIntervalMs: number;
    heartbeatTimeoutFactor: number;
    resumeOnReconnect: boolean;
    /**
     * set: `sessionId` was kept from an earlier page (persist): a
     * server that forgot it, or that refuses it (`forbidden`: another identity's), gets a new
     * session made at once, as when the server forgot a session whose id it had made
     */
    restored?: object | null | undefined;
};
/**
 * How long a connection attempt may take before it counts as one that could not open, in
 * ms (0 = wait for ever): one number for every transport, or one per transport (a missing
 * one takes {@link DEFAULT_CONNECT_TIMEOUT_MS}).
 */
export type ConnectTimeout = number | {
    websocket?: number;
    sse?: number;
    rest?: number;
};
export type LinkHooks = {
    /**
     * a server event arrived
     */
    onEvent: (ev: ServerEvent, eventId: string | null) => void;
    /**
     *   the state changed (`extra`: attempt, delayMs, error, resumed, reconnect)
     */
    onState: (state: ConnectionState, extra: Record<string, any>) => void;
    /**
     *   where to resume: the unfinished stream being delivered, if any
     */
    cursor: () => {
        streamId: string;
        epoch: string | null;
        lastSeq: number;
    } | null;
    /**
     * the connection of the moment closed (pending pings fail)
     */
    onClose: () => void;
    /**
     * send a keep-alive `ping`
     */
    ping: () => Promise<any>;
    /**
     * the server made
     * (or confirmed) the session; `recreated`: anew, after it had forgotten the one before
     */
    onSession: (info: SessionInfo, recreated: boolean) => void;
};
import { WebSocketTransport } from './transports.js';
import { EventStreamTransport } from './transports.js';
import { RestTransport } from './transports.js';
