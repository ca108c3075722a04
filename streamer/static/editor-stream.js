// Editor binding: shows one stream's document (a DocumentMirror from client.js) as a range of
// top-level nodes in a Tiptap editor, updated at most once per animation frame.
//
//   import { EditorStream, bindClientToEditor } from '/static/editor-stream.js';
//   const binding = bindClientToEditor(client, editor, { at: 'replace' });
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
// Where the range starts (`at`):
//   'replace'  the answer replaces the whole document (the demo page's choice);
//   'end'      the answer is appended after the current content (default); an editor holding
//              only one empty paragraph counts as empty and is replaced;
//   a number   the answer starts at the top-level boundary at or after that position.
// While the answer has no nodes and the document would otherwise be empty, ProseMirror's
// schema needs one block: the binding keeps an empty paragraph there as a placeholder (at the
// range's end) and drops it with the first real node.
//
// Other transactions (user edits, plugins) map the range start; the editor is made read-only
// while streaming (`lock`, default true) because edits that split or merge the answer's
// top-level nodes would invalidate `counts`. Nodes other plugins add right after the range
// stay outside it, but configure StarterKit with `trailingNode: false` for an editor that must
// end equal to the server's HTML: TrailingNode appends an empty paragraph whenever the answer
// momentarily ends with a table or code block, and that paragraph stays behind.

import { elementFromString, pmModel } from '#tiptap';

const { DOMParser, Fragment } = pmModel;

/** Meta key set on the binding's own transactions. */
export const STREAM_META = 'streamerStream';

/**
 * @typedef {object} EditorStreamOptions
 * @property {'end'|'replace'|number} [at='end'] where the answer goes (see the module comment)
 * @property {boolean} [lock=true] make the editor read-only while attached
 * @property {object} [parseOptions] extra ProseMirror ParseOptions (as given to setContent)
 * @property {(info: {blocks: number, changedFrom: number, nodes: number}) => void} [onFrame]
 *   called after each applied frame
 */

const raf = typeof requestAnimationFrame === 'function'
  ? (fn) => requestAnimationFrame(fn)
  : (fn) => setTimeout(fn, 16);
const cancelRaf = typeof cancelAnimationFrame === 'function'
  ? (id) => cancelAnimationFrame(id)
  : (id) => clearTimeout(id);

/**
 * Parse one block's HTML into top-level nodes exactly as Tiptap's setContent would parse it
 * (same DOM preparation, same parser), without filling an empty result.
 * @param {import('./vendor/tiptap.js').Editor} editor
 * @param {string} html
 * @param {object} [parseOptions]
 * @returns {any} a ProseMirror Fragment
 */
export function parseBlock(editor, html, parseOptions = {}) {
  if (!html) return Fragment.empty;
  const parser = DOMParser.fromSchema(editor.schema);
  return parser.parse(elementFromString(html), { ...parseOptions, topOpen: true }).content;
}

/** One stream's answer, kept as a range of top-level nodes in an editor. */
export class EditorStream {
  /**
   * @param {import('./vendor/tiptap.js').Editor} editor
   * @param {EditorStreamOptions} [options]
   */
  constructor(editor, options = {}) {
    this.editor = editor;
    this.options = { at: 'end', lock: true, parseOptions: {}, ...options };
    /** @type {import('./client.js').DocumentMirror|null} */
    this.mirror = null;
    /** @type {number[]} top-level nodes produced by each block */
    this.counts = [];
    /** Range start: a top-level position. */
    this.from = 0;
    /** True while an empty placeholder paragraph sits at the range's end. */
    this.placeholder = false;
    /** Frames applied (for tests and stats). */
    this.frames = 0;

    this._dirty = new Set();
    this._dirtyMin = Infinity;
    this._frame = null;
    this._unsubscribe = null;
    this._onTransaction = null;
    this._wasEditable = null;
    // cache: _starts[k] = [position, child index] of block k's first node, valid for k <= _valid
    this._starts = [];
    this._valid = -1;
  }

  /**
   * Start following a mirror: claims the range (per `at`) and shows the mirror's blocks.
   * @param {import('./client.js').DocumentMirror} mirror
   * @returns {this}
   */
  attach(mirror) {
    if (this.mirror) throw new Error('EditorStream is already attached');
    const { editor } = this;
    this.mirror = mirror;
    this._claimRange();
    this._onTransaction = ({ transaction, appendedTransactions }) => {
      for (const tr of [transaction, ...(appendedTransactions || [])]) {
        if (tr.docChanged && !tr.getMeta(STREAM_META)) this._mapForeign(tr);
      }
    };
    editor.on('transaction', this._onTransaction);
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
    this._unsubscribe?.();
    this._unsubscribe = null;
    this.editor.off('transaction', this._onTransaction);
    this._onTransaction = null;
    if (this.options.lock && this._wasEditable !== null && !this.editor.isDestroyed) {
      this.editor.setEditable(this._wasEditable, false);
    }
    this.mirror = null;
  }

  /** Nodes in the range, placeholder included. */
  totalNodes() {
    let n = this.placeholder ? 1 : 0;
    for (const c of this.counts) n += c;
    return n;
  }

  /** The answer's current range in the document, `{from, to}` (positions). */
  range() {
    const doc = this.editor.state.doc;
    const [start, index] = this._start(doc, this.counts.length);
    let to = start;
    if (this.placeholder && index < doc.childCount) to += doc.child(index).nodeSize;
    return { from: this.from, to };
  }

  // ------------------------------------------------------------------------- internals
  //
  // Subclasses (stream-content.js) override _claimRange (where the answer goes), _mapForeign
  // (following other transactions) and _beforeDispatch (decorations, range bookkeeping).

  /** Follow a transaction that is not ours (a user edit, another plugin). */
  _mapForeign(tr) {
    const empty = this.totalNodes() === 0;
    this.from = tr.mapping.map(this.from, empty ? -1 : 1);
    this._valid = -1;
  }

  /**
   * Called with each frame's transaction (its doc is the new one, `counts` already updated)
   * just before it is dispatched.
   * @param {any} tr
   * @param {{fromPos: number, toPos: number, oldContent: any, nodes: any, changedFrom: number}} info
   *   the replaced span `[fromPos, toPos)` of the old doc, its old content (a Fragment) and the
   *   new nodes (a Fragment) now at `fromPos`
   */
  _beforeDispatch(tr, info) {} // eslint-disable-line no-unused-vars

  _claimRange() {
    const { editor } = this;
    const doc = editor.state.doc;
    const at = this.options.at;
    const onlyEmptyParagraph = doc.childCount === 1 && doc.firstChild.isTextblock &&
      doc.firstChild.content.size === 0;
    if (at === 'replace' || (at === 'end' && onlyEmptyParagraph)) {
      if (!onlyEmptyParagraph) {
        const empty = editor.schema.nodes.paragraph.create();
        const tr = editor.state.tr.replaceWith(0, doc.content.size, empty);
        tr.setMeta(STREAM_META, true).setMeta('addToHistory', false);
        editor.view.dispatch(tr);
      }
      this.from = 0;
      this.placeholder = true;
    } else if (typeof at === 'number') {
      const $pos = doc.resolve(Math.max(0, Math.min(at, doc.content.size)));
      this.from = $pos.depth === 0 ? $pos.pos : $pos.after(1);
      this.placeholder = false;
    } else {
      this.from = doc.content.size;
      this.placeholder = false;
    }
    this.counts = [];
    this._valid = -1;
  }

  /** @param {import('./client.js').MirrorChange} change */
  _onChange(change) {
    if (change.kind === 'reset') {
      this._dirtyMin = 0;
      this._dirty.clear();
      for (let i = 0; i < this.mirror.blocks.length; i++) this._dirty.add(i);
    } else {
      this._dirty.add(change.block);
      if (change.block < this._dirtyMin) this._dirtyMin = change.block;
    }
    if (this._frame === null) this._frame = raf(() => {
      this._frame = null;
      this._apply();
    });
  }

  /** Apply everything pending now (e.g. on `stream_complete`). */
  flush() {
    if (this._frame !== null) {
      cancelRaf(this._frame);
      this._frame = null;
    }
    this._apply();
  }

  /**
   * Position and child index of block k's first node (k may be counts.length: the range end
   * before the placeholder). Walks from the last cached start.
   */
  _start(doc, k) {
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

  _apply() {
    const mirror = this.mirror;
    if (!mirror || this._dirtyMin === Infinity) return;
    const { editor } = this;
    if (editor.isDestroyed) return;
    const doc = editor.state.doc;
    const blocks = mirror.blocks;
    const d = Math.min(this._dirtyMin, this.counts.length, blocks.length);

    // span to replace: from block d's first node to the range end (placeholder included)
    const [fromPos, fromIndex] = this._start(doc, d);
    let [toPos, toIndex] = this._start(doc, this.counts.length);
    if (this.placeholder && toIndex < doc.childCount) toPos += doc.child(toIndex++).nodeSize;

    // new nodes for blocks d..end: parsed if changed, else the existing node objects
    const nodes = [];
    const newCounts = this.counts.slice(0, d);
    let index = fromIndex;
    for (let k = d; k < blocks.length; k++) {
      const oldCount = k < this.counts.length ? this.counts[k] : 0;
      if (this._dirty.has(k) || k >= this.counts.length) {
        const fragment = parseBlock(editor, blocks[k], this.options.parseOptions);
        fragment.forEach((node) => nodes.push(node));
        newCounts.push(fragment.childCount);
      } else {
        for (let c = 0; c < oldCount; c++) nodes.push(doc.child(index + c));
        newCounts.push(oldCount);
      }
      index += oldCount;
    }

    const tr = editor.state.tr;
    const fragment = Fragment.fromArray(nodes);
    tr.replaceWith(fromPos, toPos, fragment);
    tr.setMeta(STREAM_META, true).setMeta('addToHistory', false);
    const expected = doc.childCount - (toIndex - fromIndex) + nodes.length;
    // ProseMirror fills a document that would be left empty with one empty paragraph
    this.placeholder = nodes.length === 0 && tr.doc.childCount === expected + 1;

    this.counts = newCounts;
    this._valid = Math.min(this._valid, d);
    this._dirty.clear();
    this._dirtyMin = Infinity;
    this._beforeDispatch(tr, { fromPos, toPos, oldContent: doc.slice(fromPos, toPos).content,
      nodes: fragment, changedFrom: d });
    editor.view.dispatch(tr);
    this.frames += 1;
    this.options.onFrame?.({ blocks: blocks.length, changedFrom: d, nodes: nodes.length });
  }
}

/**
 * Show every stream of a client in an editor: each stream that starts (or first sends a
 * chunk/snapshot) gets a fresh {@link EditorStream}; `stream_complete` flushes and detaches it.
 * `onAttach(binding)` runs right after the binding claimed its range (nothing streamed into it
 * yet); `onComplete(binding, event)` after the final flush. `at` may be a function, asked at
 * each stream's start.
 *
 * @param {import('./client.js').StreamClient} client
 * @param {import('./vendor/tiptap.js').Editor} editor
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

  const follow = (mirror) => {
    if (current && current.mirror === mirror) return;
    if (mirror.complete) return;
    current?.detach();
    const at = typeof streamOptions.at === 'function' ? streamOptions.at() : streamOptions.at;
    current = new EditorStream(editor, { ...streamOptions, at });
    current.attach(mirror);
    onAttach?.(current);
  };

  const offs = [
    client.on('stream_start', (ev, ctx) => {
      if (!ev.queued) follow(ctx.mirror);
    }),
    client.on('chunk', (ev, ctx) => follow(ctx.mirror)),
    client.on('snapshot', (ev, ctx) => follow(ctx.mirror)),
    client.on('stream_complete', (ev, ctx) => {
      if (current && current.mirror === ctx.mirror) {
        const done = current;
        done.detach();
        onComplete?.(done, ev);
      }
    }),
  ];
  return {
    get current() {
      return current;
    },
    dispose() {
      for (const off of offs) off();
      current?.detach();
      current = null;
    },
  };
}
