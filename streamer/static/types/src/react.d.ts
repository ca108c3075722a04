/**
 * A store over one StreamClient for `useSyncExternalStore` (usable without React too).
 * @param {StreamStoreOptions} [options]
 * @returns {StreamStore}
 */
export function createStreamStore(options?: StreamStoreOptions): StreamStore;
/**
 * Make the `useStream` hook from the application's React (needs `useRef`, `useEffect` and
 * `useSyncExternalStore`: React 18+).
 * @param {{useRef: Function, useEffect: Function, useSyncExternalStore: Function}} React
 * @returns {(options?: StreamStoreOptions) => StreamSnapshot}
 */
export function createUseStream(React: {
    useRef: Function;
    useEffect: Function;
    useSyncExternalStore: Function;
}): (options?: StreamStoreOptions) => StreamSnapshot;
export type StreamClientOptions = import("./stream-client.js").StreamClientOptions;
export type StartOptions = import("./protocol.js").StartOptions;
export type ServerEvent = import("./protocol.js").ServerEvent;
export type StreamSnapshot = {
    client: StreamClient;
    state: import("./protocol.js").ConnectionState;
    transport: import("./protocol.js").TransportKind | null;
    /**
     * the stream shown (the active one, else the last)
     */
    streamId: string | null;
    /**
     * its document so far (exactly `stream_complete.html` at the end)
     */
    html: string;
    blocks: string[];
    streaming: boolean;
    /**
     * the last `progress` event
     */
    progress: ServerEvent | null;
    /**
     * the last delivery `state` (streaming, paused, …)
     */
    delivery: string | null;
    /**
     * the stream's `stream_complete` event, once over
     */
    complete: ServerEvent | null;
    /**
     * the last `error` event
     */
    error: ServerEvent | null;
    /**
     * `stream_start` events of streams waiting in the queue
     */
    queued: ServerEvent[];
    start: (opts: StartOptions) => Promise<void>;
    pause: () => Promise<void>;
    resume: () => Promise<void>;
    skip: () => Promise<void>;
    stop: () => Promise<void>;
    speed: (cps: number) => Promise<void>;
};
/**
 * `client`: use this client (it is then not closed here); `autoConnect` (default true):
 * connect when the store opens
 */
export type StreamStoreOptions = StreamClientOptions & {
    client?: StreamClient;
    autoConnect?: boolean;
};
export type StreamStore = {
    client: StreamClient;
    subscribe: (fn: () => void) => () => void;
    getSnapshot: () => StreamSnapshot;
    /**
     * listen and connect (reference-counted: React's strict mode
     * mounts effects twice)
     */
    open: () => void;
    /**
     * stop listening; closes the client when it was created here
     */
    close: () => void;
};
/**
 * What the store keeps besides the client's mirrors: the stream shown and the last events.
 */
export type StoreView = {
    streamId: string | null;
    progress: ServerEvent | null;
    delivery: string | null;
    error: ServerEvent | null;
    queued: ServerEvent[];
};
import { StreamClient } from './stream-client.js';
