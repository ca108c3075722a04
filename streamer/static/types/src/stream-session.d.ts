/** @typedef {import('@tiptap/core').Editor} Editor */
/** @typedef {import('@tiptap/pm/state').Transaction} Transaction */
/** @typedef {import('@tiptap/pm/model').Node} PMNode */
/** @typedef {import('./editor-stream.js').FrameInfo} FrameInfo */
/** @typedef {import('./mirror.js').DocumentMirror} DocumentMirror */
/** @typedef {import('./stream-client.js').StreamClient} StreamClient */
/**
 * The extension's plugin key; its state is the current DecorationSet.
 * @type {import('@tiptap/pm/state').PluginKey<import('@tiptap/pm/view').DecorationSet>}
 */
export const streamContentKey: import("@tiptap/pm/state").PluginKey<import("@tiptap/pm/view").DecorationSet>;
/**
 * @typedef {'selection'|'end'|'replace'|number|{from: number, to: number}} StreamPlacement
 */
/**
 * @typedef {object} StartStreamOptions
 * @property {StreamPlacement} [at='selection'] where the answer goes (see the module comment)
 * @property {DocumentMirror} [mirror] follow this mirror (e.g. a StreamClient's, `ctx.mirror`
 *   of its events) instead of a fresh one fed by insertStreamChunk
 * @property {string} [streamId]
 * @property {StreamClient} [client] where pause/resume/skip/stop go
 */
/**
 * @typedef {object} StreamContentOptions
 * @property {'none'|'fade'|'typewriter'} reveal reveal animation of new text (default `none`)
 * @property {number} revealMs fade duration / typewriter catch-up time (default 300)
 * @property {boolean} caret show a caret at the streaming end (default true)
 * @property {boolean} protect filter out other transactions that change the answer while it
 *   streams (default true)
 * @property {object} parseOptions extra ProseMirror ParseOptions for the blocks
 * @property {StreamClient|null} client default client for the controls
 * @property {(info: {blocks: number, changedFrom: number, nodes: number, session: StreamSession}) => void} [onFrame]
 * @property {(info: {from: number, to: number, streamId: string|null, event: object|null}) => void} [onFinish]
 */
/** One streaming answer in an editor (see `editor.storage.streamContent.session`). */
export class StreamSession {
    /**
     * @param {Editor} editor
     * @param {StreamContentOptions} settings the extension's live settings
     * @param {StartStreamOptions} [opts]
     */
    constructor(editor: Editor, settings: StreamContentOptions, opts?: StartStreamOptions);
    /** @type {Editor} */
    editor: Editor;
    /** The extension's settings, read at every frame. */
    settings: StreamContentOptions;
    /**
     * @private
     * @type {StreamPlacement}
     */
    private _at;
    /** The binding that shows the answer; this session is its range hooks. */
    view: EditorStream;
    /** @type {string|null} */
    streamId: string | null;
    /** @type {StreamClient|null} */
    client: StreamClient | null;
    /** Region of the document the stream changed (see the module comment). */
    rFrom: number;
    rTo: number;
    /** Depth open at the region's start/end (1 when a textblock was split). */
    openStart: number;
    openEnd: number;
    /**
     * What the region held before the stream (a slice of the original document).
     * @type {import('@tiptap/pm/model').Slice}
     */
    original: import("@tiptap/pm/model").Slice;
    /** stopStream was asked of the server; finish on its stream_complete. */
    stopping: boolean;
    /** typewriter: text before this position is shown */
    revealPos: number;
    /** @type {{from: number, to: number, born: number}[]} fade: recently arrived ranges */
    reveals: {
        from: number;
        to: number;
        born: number;
    }[];
    /** A FORCE_META transaction changed the answer: the stream is being dropped. */
    forced: boolean;
    /** @private the reveal animation's frames */
    private _tick;
    /** @private */
    private _lastTick;
    /** @returns {DocumentMirror|null} the document followed */
    get mirror(): DocumentMirror | null;
    /** @returns {number} frames applied */
    get frames(): number;
    /** @returns {boolean} whether an empty paragraph holds the answer's place */
    get placeholder(): boolean;
    set held(value: boolean);
    /** Frames are held (pauseStream). */
    get held(): boolean;
    /**
     * Start following `mirror` (claims the region).
     * @param {DocumentMirror} mirror
     * @returns {this}
     */
    attach(mirror: DocumentMirror): this;
    /**
     * The answer's nodes (positions).
     * @returns {{from: number, to: number}}
     */
    range(): {
        from: number;
        to: number;
    };
    /**
     * Range hook: claim the region at the placement (see the module comment).
     * @returns {{from: number, placeholder: boolean}}
     */
    claim(): {
        from: number;
        placeholder: boolean;
    };
    /**
     * Set the region for placement `at`, preparing the document in `tr` (a deleted range, a
     * split paragraph, a document replaced by one empty paragraph).
     * @private
     * @param {Transaction} tr
     * @param {StreamPlacement} at
     * @returns {boolean} whether an empty paragraph holds the answer's place
     */
    private _place;
    /**
     * The region at position `pos` of `tr.doc` (see the module comment).
     * @private
     * @param {Transaction} tr
     * @param {number} pos
     * @returns {boolean} whether an empty paragraph holds the answer's place
     */
    private _placeAt;
    /**
     * Range hook: follow a transaction that is not ours.
     * @param {Transaction} tr
     * @returns {number} the answer's new start
     */
    mapForeign(tr: Transaction): number;
    /**
     * Range hook: our frame replaced `[fromPos, toPos)` inside the region: the region grows,
     * the newly arrived text is marked for the reveal, the decorations go with the transaction.
     * @param {Transaction} tr
     * @param {FrameInfo} info
     */
    beforeDispatch(tr: Transaction, { fromPos, toPos, oldContent, nodes }: FrameInfo): void;
    /**
     * Whether a transaction that is not ours may apply (the plugin's filterTransaction): not
     * when `protect` is on and it would change the region's inside.
     * @param {Transaction} tr
     * @returns {boolean}
     */
    allows(tr: Transaction): boolean;
    /**
     * The decorations for `doc` (the answer's current state).
     * @param {PMNode} doc
     * @returns {import('@tiptap/pm/view').DecorationSet}
     */
    decorations(doc: PMNode): import("@tiptap/pm/view").DecorationSet;
    /**
     * `data-streaming` on the nodes of the blocks that are not final yet (a suffix, normally
     * one block).
     * @private
     * @param {PMNode} doc
     * @returns {import('@tiptap/pm/view').Decoration[]}
     */
    private _openBlocks;
    /** @private typewriter and fade need redraws between frames: one frame loop while they do */
    private _scheduleTick;
    /** @private */
    private _onTick;
    /**
     * Dispatch the decorations alone (no document change, no history).
     * @private
     * @param {import('@tiptap/pm/view').DecorationSet|null} [set] default: recomputed
     */
    private _redraw;
    /** Hold frames (pauseStream). */
    pause(): void;
    /** Apply what arrived meanwhile, and go on (resumeStream). */
    resume(): void;
    /** Show everything that arrived (skip): typewriter catches up at once. */
    revealAll(): void;
    /** Stop following at once, without applying anything more (no transaction). */
    abandon(): void;
    /**
     * Stop following; `commit` makes the answer one undo step, else the region is restored
     * (the answer discarded).
     * @param {boolean} commit
     * @returns {{from: number, to: number}} where the answer is (empty when discarded)
     */
    end(commit: boolean): {
        from: number;
        to: number;
    };
}
export type Editor = import("@tiptap/core").Editor;
export type Transaction = import("@tiptap/pm/state").Transaction;
export type PMNode = import("@tiptap/pm/model").Node;
export type FrameInfo = import("./editor-stream.js").FrameInfo;
export type DocumentMirror = import("./mirror.js").DocumentMirror;
export type StreamClient = import("./stream-client.js").StreamClient;
export type StreamPlacement = "selection" | "end" | "replace" | number | {
    from: number;
    to: number;
};
export type StartStreamOptions = {
    /**
     * where the answer goes (see the module comment)
     */
    at?: StreamPlacement | undefined;
    /**
     * follow this mirror (e.g. a StreamClient's, `ctx.mirror`
     * of its events) instead of a fresh one fed by insertStreamChunk
     */
    mirror?: import("./mirror.js").DocumentMirror | undefined;
    streamId?: string | undefined;
    /**
     * where pause/resume/skip/stop go
     */
    client?: import("./stream-client.js").StreamClient | undefined;
};
export type StreamContentOptions = {
    /**
     * reveal animation of new text (default `none`)
     */
    reveal: "none" | "fade" | "typewriter";
    /**
     * fade duration / typewriter catch-up time (default 300)
     */
    revealMs: number;
    /**
     * show a caret at the streaming end (default true)
     */
    caret: boolean;
    /**
     * filter out other transactions that change the answer while it
     * streams (default true)
     */
    protect: boolean;
    /**
     * extra ProseMirror ParseOptions for the blocks
     */
    parseOptions: object;
    /**
     * default client for the controls
     */
    client: StreamClient | null;
    onFrame?: ((info: {
        blocks: number;
        changedFrom: number;
        nodes: number;
        session: StreamSession;
    }) => void) | undefined;
    onFinish?: ((info: {
        from: number;
        to: number;
        streamId: string | null;
        event: object | null;
    }) => void) | undefined;
};
import { EditorStream } from './editor-stream.js';
