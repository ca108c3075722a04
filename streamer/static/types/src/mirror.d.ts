/** @typedef {import('./protocol.js').ServerEvent} ServerEvent */
/**
 * A change notification from a {@link DocumentMirror}: one block changed (`block` is its index;
 * an `append` is a change of the new last index), or the whole list was replaced (`reset`).
 * @typedef {{kind: 'block', block: number} | {kind: 'reset'}} MirrorChange
 */
/**
 * The client's copy of one stream's document: a list of top-level blocks (HTML strings; `""`
 * is a block the renderer folded into another: keep its slot, show nothing).
 */
export class DocumentMirror {
    /** @param {string} streamId */
    constructor(streamId: string);
    /** @type {string} */
    streamId: string;
    /** @type {string[]} */
    blocks: string[];
    /** @type {boolean[]} `final` flag per block */
    final: boolean[];
    /** Highest `seq` applied (0 = none): what a resume asks to continue after. */
    lastSeq: number;
    /** @type {string|null} the server log's `epoch` that {@link lastSeq} belongs to */
    epoch: string | null;
    /** @type {ServerEvent|null} the `stream_start` event */
    start: ServerEvent | null;
    /** @type {ServerEvent|null} the `stream_complete` event, once the stream is over */
    complete: ServerEvent | null;
    /** True when an op did not fit the list; the final `html` of `stream_complete` repairs it. */
    desynced: boolean;
    /**
     * @private
     * @type {Set<(change: MirrorChange) => void>}
     */
    private _listeners;
    /** The document so far: the blocks joined. */
    get html(): string;
    /**
     * Listen to changes. Called synchronously after each applied op.
     * @param {(change: MirrorChange) => void} fn
     * @returns {() => void} unsubscribe
     */
    onChange(fn: (change: MirrorChange) => void): () => void;
    /**
     * @private
     * @param {MirrorChange} change
     */
    private _notify;
    /**
     * Apply a `chunk` event. Chunks whose `seq` is not above {@link lastSeq} are ignored
     * (a replay after a reconnect may repeat them).
     * @param {ServerEvent} ev
     * @returns {boolean} whether the chunk was applied
     * @throws {RangeError} the op did not fit (the mirror is then {@link desynced})
     */
    applyChunk(ev: ServerEvent): boolean;
    /**
     * Apply a `snapshot` event: the whole document as of its `seq`.
     * @param {ServerEvent} ev
     * @returns {boolean} whether it was applied (an older snapshot than what we have is ignored)
     */
    applySnapshot(ev: ServerEvent): boolean;
    /**
     * Note a non-document event of the stream that carries a `seq` (`reasoning`, `tool_call`,
     * a `retrying` state): `seq` orders them with the chunks.
     * @param {ServerEvent} ev
     * @returns {boolean} false when it was already seen (a replay after a reconnect)
     */
    applyEvent(ev: ServerEvent): boolean;
    /**
     * The cursor moves to the event's `seq` and `epoch` (when it has them).
     * @private
     * @param {ServerEvent} ev
     */
    private _note;
    /**
     * Replace the whole block list (a snapshot, or the final HTML after a desync).
     * @param {string[]} blocks
     */
    reset(blocks: string[]): void;
    /**
     * Record `stream_complete`. Its `html` is the exact final document: if the blocks do not
     * join to it (ops missed or not all delivered, e.g. a `stop` with a backlog), the mirror
     * resets to one block holding that HTML.
     * @param {ServerEvent} ev
     * @returns {boolean} true if the mirror had to be resynchronised
     */
    applyComplete(ev: ServerEvent): boolean;
}
export type ServerEvent = import("./protocol.js").ServerEvent;
/**
 * A change notification from a {@link DocumentMirror}: one block changed (`block` is its index;
 * an `append` is a change of the new last index), or the whole list was replaced (`reset`).
 */
export type MirrorChange = {
    kind: "block";
    block: number;
} | {
    kind: "reset";
};
