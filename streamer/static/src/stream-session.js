// One streaming answer of the StreamContent extension: an EditorStream (the per-frame block →
// node binding) plus what the extension adds around it, given to it as its range hooks:
//
// * Placement (`at`): at the selection (a non-empty one is replaced), at a position, replacing
//   a `{from, to}` range, at the end, or replacing the whole document. The answer is a run of
//   top-level blocks: in the middle of a top-level textblock the block is split there, at its
//   start or end the answer goes before or after it, an empty paragraph is replaced, and inside
//   nested content (lists, quotes, tables) the answer goes after the top-level block (a range
//   there is widened to whole top-level blocks).
// * The *region*: `[rFrom, rTo]`, what the stream changed relative to the document before it
//   (the answer, plus the split's closing/opening tokens). It is mapped through every
//   transaction: ours grow it, other transactions move it and stay outside it (insertions at
//   its edges go outside). `allows(tr)` tells the extension which transactions would change
//   its inside.
// * One undo step: `end(true)` applies the rest, then dispatches the region restored to the
//   original content (no history), then the whole answer put back as one history event (its
//   own group: `closeHistory`).
// * Decorations, rebuilt only with our own transactions: a caret at the streaming end
//   (`.stream-caret`), `data-streaming="true"` on blocks that are not final yet, and the reveal
//   animation (`fade`: newly arrived text gets `.stream-reveal-fade` for `revealMs`;
//   `typewriter`: newly arrived text is `.stream-reveal-hidden` and uncovered left to right
//   within `revealMs`, one decorations-only transaction per frame).

import { pmHistory, pmModel, pmState, pmView } from '#tiptap';
import { EditorStream, STREAM_META } from './editor-stream.js';
import { FrameTask, defaultClock } from './frame.js';

const { PluginKey, Selection } = pmState;
const { Decoration, DecorationSet } = pmView;
const { Slice } = pmModel;
const { closeHistory } = pmHistory;

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
export const streamContentKey = new PluginKey('streamContent');

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
  constructor(editor, settings, opts = {}) {
    /** @type {Editor} */
    this.editor = editor;
    /** The extension's settings, read at every frame. */
    this.settings = settings;
    /**
     * @private
     * @type {StreamPlacement}
     */
    this._at = opts.at ?? 'selection';
    /** The binding that shows the answer; this session is its range hooks. */
    this.view = new EditorStream(editor, {
      lock: false,
      parseOptions: settings.parseOptions || {},
      onFrame: (info) => settings.onFrame?.({ ...info, session: this }),
      hooks: this,
    });
    /** @type {string|null} */
    this.streamId = opts.streamId ?? opts.mirror?.streamId ?? null;
    /** @type {StreamClient|null} */
    this.client = opts.client ?? settings.client ?? null;
    /** Region of the document the stream changed (see the module comment). */
    this.rFrom = 0;
    this.rTo = 0;
    /** Depth open at the region's start/end (1 when a textblock was split). */
    this.openStart = 0;
    this.openEnd = 0;
    /**
     * What the region held before the stream (a slice of the original document).
     * @type {import('@tiptap/pm/model').Slice}
     */
    this.original = Slice.empty;
    /** stopStream was asked of the server; finish on its stream_complete. */
    this.stopping = false;
    /** typewriter: text before this position is shown */
    this.revealPos = 0;
    /** @type {{from: number, to: number, born: number}[]} fade: recently arrived ranges */
    this.reveals = [];
    /** A FORCE_META transaction changed the answer: the stream is being dropped. */
    this.forced = false;
    /** @private the reveal animation's frames */
    this._tick = new FrameTask(() => this._onTick());
    /** @private */
    this._lastTick = 0;
  }

  /** @returns {DocumentMirror|null} the document followed */
  get mirror() {
    return this.view.mirror;
  }

  /** @returns {number} frames applied */
  get frames() {
    return this.view.frames;
  }

  /** @returns {boolean} whether an empty paragraph holds the answer's place */
  get placeholder() {
    return this.view.placeholder;
  }

  /** Frames are held (pauseStream). */
  get held() {
    return this.view.held;
  }

  set held(value) {
    this.view.held = value;
  }

  /**
   * Start following `mirror` (claims the region).
   * @param {DocumentMirror} mirror
   * @returns {this}
   */
  attach(mirror) {
    this.view.attach(mirror);
    return this;
  }

  /**
   * The answer's nodes (positions).
   * @returns {{from: number, to: number}}
   */
  range() {
    return { from: this.rFrom + this.openStart, to: this.rTo - this.openEnd };
  }

  // --------------------------------------------------------------------------- range hooks

  /**
   * Range hook: claim the region at the placement (see the module comment).
   * @returns {{from: number, placeholder: boolean}}
   */
  claim() {
    const { editor } = this;
    const tr = editor.state.tr;
    const placeholder = this._place(tr, this._at);
    // what the region was in the original document
    const back = tr.mapping.invert();
    this.original = editor.state.doc.slice(back.map(this.rFrom, -1), back.map(this.rTo, 1));
    if (tr.docChanged) {
      tr.setMeta(STREAM_META, true).setMeta('addToHistory', false);
      editor.view.dispatch(tr);
    }
    const from = this.rFrom + this.openStart;
    this.revealPos = from;
    return { from, placeholder };
  }

  /**
   * Set the region for placement `at`, preparing the document in `tr` (a deleted range, a
   * split paragraph, a document replaced by one empty paragraph).
   * @private
   * @param {Transaction} tr
   * @param {StreamPlacement} at
   * @returns {boolean} whether an empty paragraph holds the answer's place
   */
  _place(tr, at) {
    const doc0 = tr.doc;
    const size = doc0.content.size;
    const onlyEmptyParagraph = doc0.childCount === 1 && doc0.firstChild?.isTextblock === true &&
      doc0.firstChild.content.size === 0;
    this.openStart = this.openEnd = 0;
    if (at === 'replace' || (at === 'end' && onlyEmptyParagraph)) {
      if (!onlyEmptyParagraph) tr.replaceWith(0, size, this.editor.schema.nodes.paragraph.create());
      this.rFrom = 0;
      this.rTo = tr.doc.content.size;
      return true;
    }
    if (at === 'end') {
      this.rFrom = this.rTo = size;
      return false;
    }
    let from;
    let to;
    if (typeof at === 'number') from = to = at;
    else if (at && typeof at === 'object') ({ from, to } = at);
    else ({ from, to } = this.editor.state.selection);
    from = Math.max(0, Math.min(from, size));
    to = Math.max(from, Math.min(to, size));
    if (from < to) {
      const $a = doc0.resolve(from);
      const $b = doc0.resolve(to);
      if ($a.depth > 1 || $b.depth > 1) {  // nested: whole top-level blocks
        if ($a.depth > 0) from = $a.before(1);
        if ($b.depth > 0) to = $b.after(1);
      }
      tr.delete(from, to);
    }
    return this._placeAt(tr, tr.mapping.map(from, -1));
  }

  /**
   * The region at position `pos` of `tr.doc` (see the module comment).
   * @private
   * @param {Transaction} tr
   * @param {number} pos
   * @returns {boolean} whether an empty paragraph holds the answer's place
   */
  _placeAt(tr, pos) {
    const $p = tr.doc.resolve(pos);
    const textblock = $p.depth === 1 && $p.parent.isTextblock;
    if ($p.depth === 0) {
      this.rFrom = this.rTo = pos;
    } else if (textblock && $p.parent.content.size === 0) {
      this.rFrom = $p.before(1);  // an empty paragraph: the answer replaces it
      this.rTo = $p.after(1);
      return true;
    } else if (textblock && $p.parentOffset === 0) {
      this.rFrom = this.rTo = $p.before(1);
    } else if (textblock && $p.parentOffset === $p.parent.content.size) {
      this.rFrom = this.rTo = $p.after(1);
    } else if (textblock) {
      tr.split(pos);
      this.rFrom = pos;
      this.rTo = pos + 2;
      this.openStart = this.openEnd = 1;
    } else {
      this.rFrom = this.rTo = $p.after(1);
    }
    return false;
  }

  /**
   * Range hook: follow a transaction that is not ours.
   * @param {Transaction} tr
   * @returns {number} the answer's new start
   */
  mapForeign(tr) {
    const empty = this.rFrom === this.rTo;
    this.rFrom = tr.mapping.map(this.rFrom, 1);
    this.rTo = empty ? this.rFrom : Math.max(this.rFrom, tr.mapping.map(this.rTo, -1));
    this.revealPos = tr.mapping.map(this.revealPos, 1);
    for (const r of this.reveals) {
      r.from = tr.mapping.map(r.from, 1);
      r.to = tr.mapping.map(r.to, -1);
    }
    return this.rFrom + this.openStart;
  }

  /**
   * Range hook: our frame replaced `[fromPos, toPos)` inside the region: the region grows,
   * the newly arrived text is marked for the reveal, the decorations go with the transaction.
   * @param {Transaction} tr
   * @param {FrameInfo} info
   */
  beforeDispatch(tr, { fromPos, toPos, oldContent, nodes }) {
    this.rFrom = tr.mapping.map(this.rFrom, -1);
    this.rTo = tr.mapping.map(this.rTo, 1);
    // the newly arrived text: where the old and new content first / last differ
    const start = oldContent.findDiffStart(nodes);
    if (start != null) {
      const end = oldContent.findDiffEnd(nodes) || { a: oldContent.size, b: nodes.size };
      const newFrom = fromPos + start;
      const newTo = fromPos + Math.max(start, end.b + Math.max(0, start - end.a));
      const shift = nodes.size - (toPos - fromPos);
      if (this.revealPos > newFrom) this.revealPos = newFrom;
      else if (this.revealPos >= toPos) this.revealPos += shift;
      const t = defaultClock.now();
      this.reveals = this.reveals.filter((r) => r.to <= newFrom || r.from >= toPos)
        .map((r) => (r.from >= toPos ? { ...r, from: r.from + shift, to: r.to + shift } : r));
      if (newTo > newFrom) this.reveals.push({ from: newFrom, to: newTo, born: t });
    }
    tr.setMeta(streamContentKey, { decorations: this.decorations(tr.doc) });
    this._scheduleTick();
  }

  /**
   * Whether a transaction that is not ours may apply (the plugin's filterTransaction): not
   * when `protect` is on and it would change the region's inside.
   * @param {Transaction} tr
   * @returns {boolean}
   */
  allows(tr) {
    if (!tr.docChanged || tr.getMeta(STREAM_META) || !this.settings.protect) return true;
    let from = this.rFrom;
    let to = this.rTo;
    for (const map of tr.mapping.maps) {
      let touches = false;
      map.forEach((oldStart, oldEnd) => {
        if (oldStart === oldEnd ? oldStart > from && oldStart < to
          : oldStart < to && oldEnd > from) touches = true;
      });
      if (touches) return false;
      from = map.map(from, 1);
      to = Math.max(from, map.map(to, -1));
    }
    return true;
  }

  // --------------------------------------------------------------------------- decorations

  /**
   * The decorations for `doc` (the answer's current state).
   * @param {PMNode} doc
   * @returns {import('@tiptap/pm/view').DecorationSet}
   */
  decorations(doc) {
    const decos = this._openBlocks(doc);
    const { from: aFrom, to: aTo } = this.range();
    const reveal = this.settings.reveal;
    let caretAt = aTo;
    if (reveal === 'typewriter') {
      this.revealPos = Math.max(aFrom, Math.min(this.revealPos, aTo));
      if (this.revealPos < aTo) {
        decos.push(Decoration.inline(this.revealPos, aTo, { class: 'stream-reveal-hidden' }));
      }
      caretAt = this.revealPos;
    } else if (reveal === 'fade') {
      const t = defaultClock.now();
      this.reveals = this.reveals.filter((r) => t - r.born < this.settings.revealMs &&
        r.to > r.from);
      for (const r of this.reveals) {
        const a = Math.max(aFrom, r.from);
        const b = Math.min(aTo, r.to);
        if (b > a) decos.push(Decoration.inline(a, b, { class: 'stream-reveal-fade' }));
      }
    }
    if (this.settings.caret && aTo > aFrom) {
      const $end = doc.resolve(Math.max(aFrom, Math.min(caretAt, doc.content.size)));
      const found = Selection.findFrom($end, -1, true);
      const pos = found && found.head >= aFrom ? found.head : $end.pos;
      decos.push(Decoration.widget(pos, caretDOM, { key: 'stream-caret', side: 1,
        ignoreSelection: true }));
    }
    return DecorationSet.create(doc, decos);
  }

  /**
   * `data-streaming` on the nodes of the blocks that are not final yet (a suffix, normally
   * one block).
   * @private
   * @param {PMNode} doc
   * @returns {import('@tiptap/pm/view').Decoration[]}
   */
  _openBlocks(doc) {
    const decos = [];
    const { counts } = this.view;
    const final = this.mirror?.final || [];
    let k = counts.length;
    while (k > 0 && !final[k - 1]) k--;
    for (let j = k; j < counts.length; j++) {
      let [pos, index] = this.view.blockStart(doc, j);
      for (let c = 0; c < counts[j] && index < doc.childCount; c++) {
        const node = doc.child(index++);
        decos.push(Decoration.node(pos, pos + node.nodeSize, { 'data-streaming': 'true' }));
        pos += node.nodeSize;
      }
    }
    return decos;
  }

  /** @private typewriter and fade need redraws between frames: one frame loop while they do */
  _scheduleTick() {
    const reveal = this.settings.reveal;
    if (this._tick.pending || !this.mirror) return;
    if (reveal === 'typewriter' ? this.revealPos >= this.range().to
      : reveal !== 'fade' || this.reveals.length === 0) return;
    this._tick.schedule();
  }

  /** @private */
  _onTick() {
    if (!this.mirror || this.editor.isDestroyed) return;
    const t = defaultClock.now();
    const dt = this._lastTick ? Math.min(100, t - this._lastTick) : 16;
    this._lastTick = t;
    if (this.settings.reveal === 'typewriter' && !this.held) {
      const end = this.range().to;
      const backlog = end - this.revealPos;
      const step = Math.max(1, Math.ceil(backlog * Math.min(1, dt / this.settings.revealMs)));
      this.revealPos = Math.min(end, this.revealPos + step);
    }
    this._redraw();
    this._scheduleTick();
  }

  /**
   * Dispatch the decorations alone (no document change, no history).
   * @private
   * @param {import('@tiptap/pm/view').DecorationSet|null} [set] default: recomputed
   */
  _redraw(set = null) {
    const { editor } = this;
    if (editor.isDestroyed || (set === null && !this.mirror)) return;
    const tr = editor.state.tr;
    tr.setMeta(STREAM_META, true).setMeta('addToHistory', false)
      .setMeta(streamContentKey, { decorations: set ?? this.decorations(editor.state.doc) });
    editor.view.dispatch(tr);
  }

  // --------------------------------------------------------------------------- controls

  /** Hold frames (pauseStream). */
  pause() {
    this.held = true;
  }

  /** Apply what arrived meanwhile, and go on (resumeStream). */
  resume() {
    this.held = false;
    this.view.flush();
    this._scheduleTick();
  }

  /** Show everything that arrived (skip): typewriter catches up at once. */
  revealAll() {
    this.revealPos = this.range().to;
    this.held = false;
    this.view.flush();
    this._redraw();
  }

  // --------------------------------------------------------------------------- the end

  /** Stop following at once, without applying anything more (no transaction). */
  abandon() {
    this._tick.cancel();
    this.view.abandon();
  }

  /**
   * Stop following; `commit` makes the answer one undo step, else the region is restored
   * (the answer discarded).
   * @param {boolean} commit
   * @returns {{from: number, to: number}} where the answer is (empty when discarded)
   */
  end(commit) {
    const { editor } = this;
    this.held = false;
    this.view.detach();  // applies what is pending, then lets go
    this._tick.cancel();
    const { rFrom, rTo } = this;
    const answer = editor.state.doc.slice(rFrom, rTo);
    if (commit && answer.eq(this.original)) {  // nothing changed: no undo step
      this._redraw(DecorationSet.empty);
      return { from: rFrom + this.openStart, to: rTo - this.openEnd };
    }
    const restore = editor.state.tr.replace(rFrom, rTo, this.original);
    restore.setMeta(STREAM_META, true).setMeta('addToHistory', false)
      .setMeta(streamContentKey, { decorations: DecorationSet.empty });
    editor.view.dispatch(restore);
    if (!commit) return { from: rFrom, to: rFrom };
    const put = editor.state.tr.replace(rFrom, rFrom + this.original.size, answer);
    put.setMeta(STREAM_META, true);
    closeHistory(put);
    editor.view.dispatch(put);
    // the next edit starts a new undo group too
    editor.view.dispatch(closeHistory(editor.state.tr.setMeta(STREAM_META, true)));
    const to = put.mapping.map(rFrom + this.original.size, 1);
    return { from: rFrom + this.openStart, to: to - this.openEnd };
  }
}

/** @returns {HTMLElement} the caret's element */
function caretDOM() {
  const span = document.createElement('span');
  span.className = 'stream-caret';
  span.setAttribute('aria-hidden', 'true');
  return span;
}
