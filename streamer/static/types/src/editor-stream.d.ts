/**
 * One frame's replacement, as {@link RangeHooks.beforeDispatch} sees it: the span
 * `[fromPos, toPos)` of the old document, its old content, the new nodes now at `fromPos`,
 * and the lowest block that changed.
 * @typedef {{fromPos: number, toPos: number, oldContent: PMFragment, nodes: PMFragment,
 *            changedFrom: number}} FrameInfo
 */
/**
 * How an {@link EditorStream} places its range and keeps it: its public hook for what sits
 * around the answer (the default is {@link atRange}).
 * @typedef {object} RangeHooks
 * @property {(stream: EditorStream) => {from: number, placeholder: boolean}} claim claim the
 *   range when the stream attaches (it may dispatch a transaction carrying STREAM_META): the
 *   range's start (a top-level position), and whether an empty placeholder paragraph sits
 *   there for the answer to replace
 * @property {(tr: Transaction, stream: EditorStream) => number} mapForeign the range's start
 *   after a transaction that is not the stream's (a user edit, another plugin)
 * @property {(tr: Transaction, info: FrameInfo) => void} [beforeDispatch] called with each
 *   frame's transaction (its doc is the new one, `counts` already updated) just before it is
 *   dispatched
 */
/**
 * @typedef {object} EditorStreamOptions
 * @property {'end'|'replace'|number} [at='end'] where the answer goes (see the module comment)
 * @property {boolean} [lock=true] make the editor read-only while attached
 * @property {object} [parseOptions] extra ProseMirror ParseOptions (as given to setContent)
 * @property {(info: {blocks: number, changedFrom: number, nodes: number}) => void} [onFrame]
 *   called after each applied frame
 * @property {RangeHooks} [hooks] placement and upkeep of the range (default: `atRange(at)`)
 */
/**
 * Parse one block's HTML into top-level nodes exactly as Tiptap's setContent would parse it
 * (same DOM preparation, same parser), without filling an empty result.
 * @param {Editor} editor
 * @param {string} html
 * @param {object} [parseOptions]
 * @returns {PMFragment}
 */
export function parseBlock(editor: Editor, html: string, parseOptions?: object): PMFragment;
/**
 * The default range hooks: the range goes where `at` says (see the module comment) and its
 * start follows others' transactions.
 * @param {'end'|'replace'|number} [at='end']
 * @returns {RangeHooks}
 */
export function atRange(at?: "end" | "replace" | number): RangeHooks;
/**
 * Show every stream of a client in an editor: each stream that starts (or first sends a
 * chunk/snapshot) gets a fresh {@link EditorStream}; `stream_complete` flushes and detaches it.
 * `onAttach(binding)` runs right after the binding claimed its range (nothing streamed into it
 * yet); `onComplete(binding, event)` after the final flush. `at` may be a function, asked at
 * each stream's start.
 *
 * @param {import('./stream-client.js').StreamClient} client
 * @param {Editor} editor
 * @param {Omit<EditorStreamOptions, 'at'> & {
 *   at?: EditorStreamOptions['at'] | (() => EditorStreamOptions['at']),
 *   onAttach?: (binding: EditorStream) => void,
 *   onComplete?: (binding: EditorStream, event: object) => void}} [options]
 * @returns {{readonly current: EditorStream|null, dispose: () => void}}
 */
export function bindClientToEditor(client: import("./stream-client.js").StreamClient, editor: Editor, options?: Omit<EditorStreamOptions, "at"> & {
    at?: EditorStreamOptions["at"] | (() => EditorStreamOptions["at"]);
    onAttach?: (binding: EditorStream) => void;
    onComplete?: (binding: EditorStream, event: object) => void;
}): {
    readonly current: EditorStream | null;
    dispose: () => void;
};
/** @typedef {import('@tiptap/core').Editor} Editor */
/** @typedef {import('@tiptap/pm/state').Transaction} Transaction */
/** @typedef {import('@tiptap/pm/model').Node} PMNode */
/** @typedef {import('@tiptap/pm/model').Fragment} PMFragment */
/** @typedef {import('./mirror.js').DocumentMirror} DocumentMirror */
/** @typedef {import('./mirror.js').MirrorChange} MirrorChange */
/** Meta key set on the binding's own transactions. */
export const STREAM_META: "streamerStream";
/** One stream's answer, kept as a range of top-level nodes in an editor. */
export class EditorStream {
    /**
     * @param {Editor} editor
     * @param {EditorStreamOptions} [options]
     */
    constructor(editor: Editor, options?: EditorStreamOptions);
    /** @type {Editor} */
    editor: Editor;
    /** @type {EditorStreamOptions & {at: 'end'|'replace'|number, lock: boolean, parseOptions: object}} */
    options: EditorStreamOptions & {
        at: "end" | "replace" | number;
        lock: boolean;
        parseOptions: object;
    };
    /** @type {RangeHooks} */
    hooks: RangeHooks;
    /** @type {DocumentMirror|null} */
    mirror: DocumentMirror | null;
    /** @type {number[]} top-level nodes produced by each block */
    counts: number[];
    /** Range start: a top-level position. */
    from: number;
    /** True while an empty placeholder paragraph sits at the range's end. */
    placeholder: boolean;
    /** Frames applied (for tests and stats). */
    frames: number;
    /** While true, changes wait (a paused answer); {@link flush} applies nothing either. */
    held: boolean;
    /** @private blocks changed since the last frame */
    private _dirty;
    /** @private the lowest of them */
    private _dirtyMin;
    /** @private */
    private _frame;
    /** @private @type {(() => void)|null} */
    private _unsubscribe;
    /** @private @type {((props: {transaction: Transaction, appendedTransactions?: Transaction[]}) => void)|null} */
    private _onTransaction;
    /** @private @type {boolean|null} */
    private _wasEditable;
    /**
     * @private cache: `_starts[k]` = [position, child index] of block k's first node, valid
     * for k <= `_valid`
     * @type {[number, number][]}
     */
    private _starts;
    /** @private */
    private _valid;
    /**
     * Start following a mirror: claims the range (per the hooks) and shows the mirror's blocks.
     * @param {DocumentMirror} mirror
     * @returns {this}
     */
    attach(mirror: DocumentMirror): this;
    /** Apply pending changes now, stop following, unlock the editor. */
    detach(): void;
    /** Stop following at once, without applying anything more (no transaction); unlock. */
    abandon(): void;
    /**
     * True while the stream is attached and has shown nothing yet (between its start and its
     * first token): the editor's element then has `data-stream-waiting="true"`.
     * @returns {boolean}
     */
    get waiting(): boolean;
    /**
     * `aria-busy` on the editor's element (WAI-ARIA 1.2 `aria-busy`: the region is being
     * updated, assistive technology may wait for the end) while a stream is attached, and
     * `data-stream-waiting` while it {@link waiting}. ProseMirror keeps attributes it did not
     * set.
     * @private
     * @param {boolean} busy
     */
    private _markBusy;
    /** Nodes in the range, placeholder included. */
    totalNodes(): number;
    /**
     * The answer's current range in the document (positions).
     * @returns {{from: number, to: number}}
     */
    range(): {
        from: number;
        to: number;
    };
    /** Apply everything pending now (e.g. on `stream_complete`), unless {@link held}. */
    flush(): void;
    /**
     * Position and child index of block k's first node in `doc` (k may be `counts.length`: the
     * range's end before the placeholder). Walks from the last cached start.
     * @param {PMNode} doc
     * @param {number} k
     * @returns {[number, number]}
     */
    blockStart(doc: PMNode, k: number): [number, number];
    /**
     * @private
     * @param {MirrorChange} change
     */
    private _onChange;
    /** @private one frame: the changed blocks' nodes replaced in one transaction */
    private _apply;
    /**
     * The nodes of blocks d..end: parsed if changed, else the existing node objects (from child
     * `index` of `doc` on), and the new `counts`.
     * @private
     * @param {PMNode} doc
     * @param {number} d
     * @param {number} index
     * @returns {{nodes: PMNode[], counts: number[]}}
     */
    private _nodesFrom;
}
/**
 * One frame's replacement, as {@link RangeHooks.beforeDispatch} sees it: the span
 * `[fromPos, toPos)` of the old document, its old content, the new nodes now at `fromPos`,
 * and the lowest block that changed.
 */
export type FrameInfo = {
    fromPos: number;
    toPos: number;
    oldContent: PMFragment;
    nodes: PMFragment;
    changedFrom: number;
};
/**
 * How an {@link EditorStream} places its range and keeps it: its public hook for what sits
 * around the answer (the default is {@link atRange}).
 */
export type RangeHooks = {
    /**
     * claim the
     * range when the stream attaches (it may dispatch a transaction carrying STREAM_META): the
     * range's start (a top-level position), and whether an empty placeholder paragraph sits
     * there for the answer to replace
     */
    claim: (stream: EditorStream) => {
        from: number;
        placeholder: boolean;
    };
    /**
     * the range's start
     * after a transaction that is not the stream's (a user edit, another plugin)
     */
    mapForeign: (tr: Transaction, stream: EditorStream) => number;
    /**
     * called with each
     * frame's transaction (its doc is the new one, `counts` already updated) just before it is
     * dispatched
     */
    beforeDispatch?: ((tr: Transaction, info: FrameInfo) => void) | undefined;
};
export type EditorStreamOptions = {
    /**
     * where the answer goes (see the module comment)
     */
    at?: number | "replace" | "end" | undefined;
    /**
     * make the editor read-only while attached
     */
    lock?: boolean | undefined;
    /**
     * extra ProseMirror ParseOptions (as given to setContent)
     */
    parseOptions?: object | undefined;
    /**
     * called after each applied frame
     */
    onFrame?: ((info: {
        blocks: number;
        changedFrom: number;
        nodes: number;
    }) => void) | undefined;
    /**
     * placement and upkeep of the range (default: `atRange(at)`)
     */
    hooks?: RangeHooks | undefined;
};
export type Editor = import("@tiptap/core").Editor;
export type Transaction = import("@tiptap/pm/state").Transaction;
export type PMNode = import("@tiptap/pm/model").Node;
export type PMFragment = import("@tiptap/pm/model").Fragment;
export type DocumentMirror = import("./mirror.js").DocumentMirror;
export type MirrorChange = import("./mirror.js").MirrorChange;
