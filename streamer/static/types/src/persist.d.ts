/**
 * The memory the `persist` option asks for, or null (off, or no storage in this place).
 * @param {boolean|string|PersistOptions|undefined} option `true`: key `client`; a string:
 *   that key
 * @param {string} baseUrl
 * @returns {TabMemory|null}
 */
export function tabMemory(option: boolean | string | PersistOptions | undefined, baseUrl: string): TabMemory | null;
/**
 * The client a tab's memory follows (StreamClient's public parts).
 * @typedef {{sessionId: string|null, requestedSessionId: string|null,
 *            activeStreamId: string|null,
 *            streams: Map<string, import('./mirror.js').DocumentMirror>,
 *            mirror: (id: string) => import('./mirror.js').DocumentMirror,
 *            on: (type: string, fn: (...args: any[]) => void) => () => void}} KeepingClient
 */
/**
 * Take over a kept unfinished answer: its mirror holds the kept blocks at the kept `seq`,
 * and it is the stream the next connection resumes.
 * @param {KeepingClient} client
 * @param {Kept} kept
 */
export function restoreKept(client: KeepingClient, kept: Kept): void;
/**
 * What the tab keeps of `client` now: the session, and the unfinished answer being
 * delivered (begun: at least one `seq`), or null before the session exists.
 * @param {KeepingClient} client
 * @returns {Kept|null}
 */
export function keptState(client: KeepingClient): Kept | null;
/**
 * Keep `client` in `memory` from now on: the session when it is made, the answer's cursor as
 * events arrive (batched), at once when an answer ends and when the page is hidden or left.
 * @param {KeepingClient} client
 * @param {TabMemory} memory
 * @returns {() => void} stop keeping (what is pending is written first)
 */
export function keepInTab(client: KeepingClient, memory: TabMemory): () => void;
/**
 * @typedef {object} PersistOptions
 * @property {string} [key='client'] the name kept under (`streamer:<key>`); one live client
 *   per key and tab
 * @property {Storage} [storage] where (default `sessionStorage`)
 */
/**
 * The unfinished answer a tab keeps: its cursor and the blocks up to that `seq`.
 * @typedef {{streamId: string, epoch: string|null, lastSeq: number, blocks: string[]}} KeptStream
 */
/**
 * What a tab keeps of a client.
 * @typedef {object} Kept
 * @property {string} sessionId the server's id of the session (or the application's)
 * @property {string|null} requestedSessionId the id the application chose, or null
 * @property {KeptStream|null} stream the unfinished answer, or null
 */
/** The storage keys' prefix: `streamer:<key>`. */
export const STORAGE_PREFIX: "streamer:";
/** At most one write per this many ms while an answer streams. */
export const SAVE_DELAY_MS: 500;
/**
 * One client's kept state in a tab's storage.
 */
export class TabMemory {
    /**
     * @param {Storage} storage
     * @param {string} key the full storage key
     * @param {string} baseUrl the server (a kept session of another server is ignored)
     */
    constructor(storage: Storage, key: string, baseUrl: string);
    storage: Storage;
    key: string;
    baseUrl: string;
    /** @private @type {(() => Kept|null)|null} what to write when the batch is due */
    private _pending;
    /** @private @type {any} */
    private _timer;
    /**
     * The kept state, if it is for this server and for the application's chosen id (none
     * chosen, or the same).
     * @param {string|null} requestedSessionId
     * @returns {Kept|null}
     */
    load(requestedSessionId: string | null): Kept | null;
    /**
     * Write `state()` soon (at most one write per {@link SAVE_DELAY_MS}).
     * @param {() => Kept|null} state read when the write happens
     */
    schedule(state: () => Kept | null): void;
    /**
     * Write `state()` now (and drop a pending write).
     * @param {() => Kept|null} state
     */
    saveNow(state: () => Kept | null): void;
    /** Write what is pending, if anything. */
    flush(): void;
    /** Forget the kept state. */
    clear(): void;
    /**
     * @private
     * @param {Kept|null} kept
     */
    private _write;
}
/**
 * The client a tab's memory follows (StreamClient's public parts).
 */
export type KeepingClient = {
    sessionId: string | null;
    requestedSessionId: string | null;
    activeStreamId: string | null;
    streams: Map<string, import("./mirror.js").DocumentMirror>;
    mirror: (id: string) => import("./mirror.js").DocumentMirror;
    on: (type: string, fn: (...args: any[]) => void) => () => void;
};
export type PersistOptions = {
    /**
     * the name kept under (`streamer:<key>`); one live client
     * per key and tab
     */
    key?: string | undefined;
    /**
     * where (default `sessionStorage`)
     */
    storage?: Storage | undefined;
};
/**
 * The unfinished answer a tab keeps: its cursor and the blocks up to that `seq`.
 */
export type KeptStream = {
    streamId: string;
    epoch: string | null;
    lastSeq: number;
    blocks: string[];
};
/**
 * What a tab keeps of a client.
 */
export type Kept = {
    /**
     * the server's id of the session (or the application's)
     */
    sessionId: string;
    /**
     * the id the application chose, or null
     */
    requestedSessionId: string | null;
    /**
     * the unfinished answer, or null
     */
    stream: KeptStream | null;
};
