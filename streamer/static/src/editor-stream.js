// Editor binding: shows one stream's document (a DocumentMirror) as a range of top-level nodes
// in a Tiptap editor, updated at most once per animation frame.
//
// How blocks map to nodes
// -----------------------
// The stream's document is a list of top-level HTML blocks. Each block is parsed on its own
// (Tiptap's own HTML path: `elementFromString` + ProseMirror `DOMParser` of the editor's schema,
// with `topOpen` so nothing is filled in) into zero or more top-level nodes: `""` gives none,
// a normal block one, a resynchronised block holding the whole final HTML several. The binding
// keeps `counts[i]` (nodes produced by block i) and the range's start position; block i's nodes
// are the `counts[i]` top-level children after those of blocks 0..i-1.
//
// Each frame, with `d` the lowest block changed since the last frame, ONE ReplaceStep replaces
// the nodes of blocks d..end with fresh nodes: parsed for the changed blocks, the existing node
// objects for unchanged ones (so ProseMirror keeps their DOM). Block start positions are cached
// (valid up to `d` across our own transactions, rebuilt after anybody else's), so a frame costs
// the changed blocks' parse, not the document's length. The transactions carry
// `addToHistory: false` (streamed text is not undone keystroke by keystroke) and the meta
// `streamerStream` (so the binding can tell its own transactions from others').
//
// Where the range starts is the business of its *range hooks* (`options.hooks`); the default,
// `atRange(at)`, places it per `at`:
//   'replace'  the answer replaces the whole document (the demo page's choice);
//   'end'      the answer is appended after the current content (default); an editor holding
//              only one empty paragraph counts as empty and is replaced;
//   a number   the answer starts at the top-level boundary at or after that position.
// While the answer has no nodes and the document would otherwise be empty, ProseMirror's
// schema needs one block: the binding keeps an empty paragraph there as a placeholder (at the
// range's end) and drops it with the first real node. The StreamContent extension
// (stream-session.js) brings its own hooks: placement at the selection, a protected region,
// decorations.
//
// Other transactions (user edits, plugins) map the range start; the editor is made read-only
// while streaming (`lock`, default true) because edits that split or merge the answer's
// top-level nodes would invalidate `counts`. Nodes other plugins add right after the range
// stay outside it, but configure StarterKit with `trailingNode: false` for an editor that must
// end equal to the server's HTML: TrailingNode appends an empty paragraph whenever the answer
// momentarily ends with a table or code block, and that paragraph stays behind.

import { elementFromString, pmModel } from '#tiptap';
import { FrameTask } from './frame.js';
import { followStreams, placementOf } from './follow.js';

const { DOMParser, Fragment } = pmModel;

/** @typedef {import('@tiptap/core').Editor} Editor */
/** @typedef {import('@tiptap/pm/state').Transaction} Transaction */
/** @typedef {import('@tiptap/pm/model').Node} PMNode */
/** @typedef {import('@tiptap/pm/model').Fragment} PMFragment */
/** @typedef {import('./mirror.js').DocumentMirror} DocumentMirror */
/** @typedef {import('./mirror.js').MirrorChange} MirrorChange */

/** Meta key set on the binding's own transactions. */
export const STREAM_META = 'streamerStream';

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
export function parseBlock(editor, html, parseOptions = {}) {
  if (!html) return Fragment.empty;
  const parser = DOMParser.fromSchema(editor.schema);
  // `topOpen` (prosemirror-model's parser option, undeclared in its types): fill nothing in
  const options = /** @type {object} */ ({ ...parseOptions, topOpen: true });
  return parser.parse(elementFromString(html), options).content;
}

/**
 * The default range hooks: the range goes where `at` says (see the module comment) and its
 * start follows others' transactions.
 * @param {'end'|'replace'|number} [at='end']
 * @returns {RangeHooks}
 */
export function atRange(at = 'end') {
  return {
    claim(stream) {
      const { editor } = stream;
      const doc = editor.state.doc;
      const onlyEmptyParagraph = doc.childCount === 1 && doc.firstChild?.isTextblock === true &&
        doc.firstChild.content.size === 0;
      if (at === 'replace' || (at === 'end' && onlyEmptyParagraph)) {
        if (!onlyEmptyParagraph) {
          const empty = editor.schema.nodes.paragraph.create();
          const tr = editor.state.tr.replaceWith(0, doc.content.size, empty);
          tr.setMeta(STREAM_META, true).setMeta('addToHistory', false);
          editor.view.dispatch(tr);
        }
        return { from: 0, placeholder: true };
      }
      if (typeof at === 'number') {
        const $pos = doc.resolve(Math.max(0, Math.min(at, doc.content.size)));
        return { from: $pos.depth === 0 ? $pos.pos : $pos.after(1), placeholder: false };
      }
      return { from: doc.content.size, placeholder: false };
    },
    mapForeign(tr, stream) {
      return tr.mapping.map(stream.from, stream.totalNodes() === 0 ? -1 : 1);
    },
  };
}

/** One stream's answer, kept as a range of top-level nodes in an editor. */
export class EditorStream {
  /**
   * @param {Editor} editor
   * @param {EditorStreamOptions} [options]
   */
  constructor(editor, options = {}) {
    /** @type {Editor} */
    this.editor = editor;
    /** @type {EditorStreamOptions & {at: 'end'|'replace'|number, lock: boolean, parseOptions: object}} */
    this.options = { at: 'end', lock: true, parseOptions: {}, ...options };
    /** @type {RangeHooks} */
    this.hooks = options.hooks ?? atRange(this.options.at);
    /** @type {DocumentMirror|null} */
    this.mirror = null;
    /** @type {number[]} top-level nodes produced by each block */
    this.counts = [];
    /** Range start: a top-level position. */
    this.from = 0;
    /** True while an empty placeholder paragraph sits at the range's end. */
    this.placeholder = false;
    /** Frames applied (for tests and stats). */
    this.frames = 0;
    /** While true, changes wait (a paused answer); {@link flush} applies nothing either. */
    this.held = false;

    /** @private blocks changed since the last frame */
    this._dirty = new Set();
    /** @private the lowest of them */
    this._dirtyMin = Infinity;
    /** @private */
    this._frame = new FrameTask(() => this._apply());
    /** @private @type {(() => void)|null} */
    this._unsubscribe = null;
    /** @private @type {((props: {transaction: Transaction, appendedTransactions?: Transaction[]}) => void)|null} */
    this._onTransaction = null;
    /** @private @type {boolean|null} */
    this._wasEditable = null;
    /**
     * @private cache: `_starts[k]` = [position, child index] of block k's first node, valid
     * for k <= `_valid`
     * @type {[number, number][]}
     */
    this._starts = [];
    /** @private */
    this._valid = -1;
  }

  /**
   * Start following a mirror: claims the range (per the hooks) and shows the mirror's blocks.
   * @param {DocumentMirror} mirror
   * @returns {this}
   */
  attach(mirror) {
    if (this.mirror) throw new Error('EditorStream is already attached');
    const { editor } = this;
    this.mirror = mirror;
    const { from, placeholder } = this.hooks.claim(this);
    this.from = from;
    this.placeholder = placeholder;
    this.counts = [];
    this._valid = -1;
    this._onTransaction = ({ transaction, appendedTransactions }) => {
      for (const tr of [transaction, ...(appendedTransactions || [])]) {
        if (tr.docChanged && !tr.getMeta(STREAM_META)) {
          this.from = this.hooks.mapForeign(tr, this);
          this._valid = -1;
        }
      }
    };
    editor.on('transaction', this._onTransaction);
    this._markBusy(true);
    if (this.options.lock) {
      this._wasEditable = editor.isEditable;
      editor.setEditable(false, false);
    }
    this._unsubscribe = mirror.onChange((change) => this._onChange(change));
    if (mirror.blocks.length) this._onChange({ kind: 'reset' });
    return this;
  }

  /** Apply pending changes now, stop following, unlock the editor. */
  detach() {
    if (!this.mirror) return;
    this.flush();
    this.abandon();
  }

  /** Stop following at once, without applying anything more (no transaction); unlock. */
  abandon() {
    if (!this.mirror) return;
    this._frame.cancel();
    this._dirty.clear();
    this._dirtyMin = Infinity;
    this._unsubscribe?.();
    this._unsubscribe = null;
    if (this._onTransaction) this.editor.off('transaction', this._onTransaction);
    this._onTransaction = null;
    this.mirror = null;
    this._markBusy(false);
    if (this.options.lock && this._wasEditable !== null && !this.editor.isDestroyed) {
      this.editor.setEditable(this._wasEditable, false);
    }
  }

  /**
   * True while the stream is attached and has shown nothing yet (between its start and its
   * first token): the editor's element then has `data-stream-waiting="true"`.
   * @returns {boolean}
   */
  get waiting() {
    return this.mirror !== null && !this.counts.some((c) => c > 0);
  }

  /**
   * `aria-busy` on the editor's element (WAI-ARIA 1.2 `aria-busy`: the region is being
   * updated, assistive technology may wait for the end) while a stream is attached, and
   * `data-stream-waiting` while it {@link waiting}. ProseMirror keeps attributes it did not
   * set.
   * @private
   * @param {boolean} busy
   */
  _markBusy(busy) {
    const dom = this.editor.isDestroyed ? null : this.editor.view?.dom;
    if (!dom) return;
    dom.setAttribute('aria-busy', busy ? 'true' : 'false');
    if (busy && this.waiting) dom.setAttribute('data-stream-waiting', 'true');
    else dom.removeAttribute('data-stream-waiting');
  }

  /** Nodes in the range, placeholder included. */
  totalNodes() {
    let n = this.placeholder ? 1 : 0;
    for (const c of this.counts) n += c;
    return n;
  }

  /**
   * The answer's current range in the document (positions).
   * @returns {{from: number, to: number}}
   */
  range() {
    const doc = this.editor.state.doc;
    const [start, index] = this.blockStart(doc, this.counts.length);
    let to = start;
    if (this.placeholder && index < doc.childCount) to += doc.child(index).nodeSize;
    return { from: this.from, to };
  }

  /** Apply everything pending now (e.g. on `stream_complete`), unless {@link held}. */
  flush() {
    this._frame.cancel();
    this._apply();
  }

  /**
   * Position and child index of block k's first node in `doc` (k may be `counts.length`: the
   * range's end before the placeholder). Walks from the last cached start.
   * @param {PMNode} doc
   * @param {number} k
   * @returns {[number, number]}
   */
  blockStart(doc, k) {
    if (this._valid < 0) {
      const $from = doc.resolve(Math.min(this.from, doc.content.size));
      this._starts[0] = [this.from, $from.index(0)];
      this._valid = 0;
    }
    let j = Math.min(this._valid, k);
    let [pos, index] = this._starts[j];
    for (; j < k; j++) {
      const n = this.counts[j] || 0;
      for (let c = 0; c < n && index < doc.childCount; c++) pos += doc.child(index++).nodeSize;
      this._starts[j + 1] = [pos, index];
    }
    if (k > this._valid) this._valid = k;
    return [pos, index];
  }

  /**
   * @private
   * @param {MirrorChange} change
   */
  _onChange(change) {
    if (change.kind === 'reset') {
      this._dirtyMin = 0;
      this._dirty.clear();
      for (let i = 0; i < (this.mirror?.blocks.length ?? 0); i++) this._dirty.add(i);
    } else {
      this._dirty.add(change.block);
      if (change.block < this._dirtyMin) this._dirtyMin = change.block;
    }
    this._frame.schedule();
  }

  /** @private one frame: the changed blocks' nodes replaced in one transaction */
  _apply() {
    const mirror = this.mirror;
    if (this.held || !mirror || this._dirtyMin === Infinity) return;
    const { editor } = this;
    if (editor.isDestroyed) return;
    const doc = editor.state.doc;
    const blocks = mirror.blocks;
    const d = Math.min(this._dirtyMin, this.counts.length, blocks.length);

    // span to replace: from block d's first node to the range end (placeholder included)
    const [fromPos, fromIndex] = this.blockStart(doc, d);
    let [toPos, toIndex] = this.blockStart(doc, this.counts.length);
    if (this.placeholder && toIndex < doc.childCount) toPos += doc.child(toIndex++).nodeSize;

    const { nodes, counts } = this._nodesFrom(doc, d, fromIndex);
    const tr = editor.state.tr;
    const fragment = Fragment.fromArray(nodes);
    tr.replaceWith(fromPos, toPos, fragment);
    tr.setMeta(STREAM_META, true).setMeta('addToHistory', false);
    const expected = doc.childCount - (toIndex - fromIndex) + nodes.length;
    // ProseMirror fills a document that would be left empty with one empty paragraph
    this.placeholder = nodes.length === 0 && tr.doc.childCount === expected + 1;

    this.counts = counts;
    this._markBusy(true);
    this._valid = Math.min(this._valid, d);
    this._dirty.clear();
    this._dirtyMin = Infinity;
    this.hooks.beforeDispatch?.(tr, { fromPos, toPos,
      oldContent: doc.slice(fromPos, toPos).content, nodes: fragment, changedFrom: d });
    editor.view.dispatch(tr);
    this.frames += 1;
    this.options.onFrame?.({ blocks: blocks.length, changedFrom: d, nodes: nodes.length });
  }

  /**
   * The nodes of blocks d..end: parsed if changed, else the existing node objects (from child
   * `index` of `doc` on), and the new `counts`.
   * @private
   * @param {PMNode} doc
   * @param {number} d
   * @param {number} index
   * @returns {{nodes: PMNode[], counts: number[]}}
   */
  _nodesFrom(doc, d, index) {
    const blocks = this.mirror?.blocks ?? [];
    /** @type {PMNode[]} */
    const nodes = [];
    const counts = this.counts.slice(0, d);
    for (let k = d; k < blocks.length; k++) {
      const oldCount = k < this.counts.length ? this.counts[k] : 0;
      if (this._dirty.has(k) || k >= this.counts.length) {
        const fragment = parseBlock(this.editor, blocks[k], this.options.parseOptions);
        fragment.forEach((node) => {
          nodes.push(node);
        });
        counts.push(fragment.childCount);
      } else {
        for (let c = 0; c < oldCount; c++) nodes.push(doc.child(index + c));
        counts.push(oldCount);
      }
      index += oldCount;
    }
    return { nodes, counts };
  }
}

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
export function bindClientToEditor(client, editor, options = {}) {
  const { onAttach, onComplete, ...streamOptions } = options;
  /** @type {EditorStream|null} */
  let current = null;
  const stop = followStreams(client, {
    following: (mirror) => current !== null && current.mirror === mirror,
    begin: (mirror) => {
      current?.detach();
      current = new EditorStream(editor, { ...streamOptions, at: placementOf(streamOptions.at) });
      current.attach(mirror);
      onAttach?.(current);
    },
    end: (ev) => {
      const done = /** @type {EditorStream} */ (current);
      done.detach();
      onComplete?.(done, ev);
    },
  });
  return {
    get current() {
      return current;
    },
    dispose() {
      stop();
      current?.detach();
      current = null;
    },
  };
}
