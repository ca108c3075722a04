// The Tiptap extension `StreamContent`: streams one answer at a time into the editor while the
// user keeps editing the rest of the document, and makes the whole answer ONE undo step.
//
//   import { StreamContent, followClient } from '/static/stream-content.js';
//   const editor = new Editor({ extensions: [StarterKit, StreamContent.configure({ reveal: 'fade' })] });
//   followClient(editor, client);              // every stream of a StreamClient, or by hand:
//   editor.commands.startStream({ at: 'selection' });
//   editor.commands.insertStreamChunk(chunkEvent);   // one `chunk` event of the protocol
//   editor.commands.finishStream(streamCompleteEvent);
//
// How it works
// ------------
// The answer's document is a DocumentMirror (client.js: block strings, seq de-duplication,
// snapshots). An EditorStream (editor-stream.js) shows it as top-level nodes, one ProseMirror
// transaction per animation frame, each with `addToHistory: false`. This module adds:
//
// * Placement (`startStream({at})`): at the selection (a non-empty one is replaced), at a
//   position, replacing a `{from, to}` range, at the end, or replacing the whole document. The
//   answer is a run of top-level blocks: in the middle of a top-level textblock the block is
//   split there, at its start or end the answer goes before or after it, an empty paragraph is
//   replaced, and inside nested content (lists, quotes, tables) the answer goes after the
//   top-level block (a range there is widened to whole top-level blocks).
// * The *region*: `[rFrom, rTo]`, what the stream changed relative to the document before it
//   (the answer, plus the split's closing/opening tokens). It is mapped through every
//   transaction: ours grow it, other transactions move it and stay outside it (insertions at
//   its edges go outside), so the user can type anywhere else and the answer lands in place.
//   Transactions that would change the region's inside are filtered out while it streams
//   (`protect`, default true); set the meta `streamContentForce` to let one through (the
//   stream is then dropped as by clearStreamBuffer).
// * One undo step: `finishStream()` applies the rest, then dispatches the region restored to
//   the original content (no history), then the whole answer put back as one history event
//   (its own group: `closeHistory`). Undo removes the answer (restoring a replaced range, joining
//   a split block), redo restores it; the user's own edits stay separate undo steps.
// * Decorations, rebuilt only with our own transactions (cheap at 60 fps: a caret widget, one
//   node decoration per open block, a few inline ranges): a caret at the streaming end
//   (`.stream-caret`), `data-streaming="true"` on blocks that are not final yet, and the reveal
//   animation: `none`, `fade` (newly arrived text gets `.stream-reveal-fade` for `revealMs`; a
//   CSS animation) or `typewriter` (newly arrived text is `.stream-reveal-hidden` and uncovered
//   left to right within `revealMs`, one decorations-only transaction per frame). The CSS is in
//   stream-content.css.
//
// Configure StarterKit with `trailingNode: false` in an editor that must end equal to the
// server's HTML (see editor-stream.js).

import { Extension, pmHistory, pmModel, pmState, pmView } from '#tiptap';
import { DocumentMirror } from './client.js';
import { EditorStream, STREAM_META } from './editor-stream.js';

const { Plugin, PluginKey, Selection } = pmState;
const { Decoration, DecorationSet } = pmView;
const { Slice } = pmModel;
const { closeHistory } = pmHistory;

/** The plugin's key; its state is the current DecorationSet. */
export const streamContentKey = new PluginKey('streamContent');

/** Set this meta on a transaction to let it change a streaming answer (the stream is dropped). */
export const FORCE_META = 'streamContentForce';

const raf = typeof requestAnimationFrame === 'function'
  ? (fn) => requestAnimationFrame(fn)
  : (fn) => setTimeout(() => fn(Date.now()), 16);
const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * @typedef {'selection'|'end'|'replace'|number|{from: number, to: number}} StreamPlacement
 */

/**
 * @typedef {object} StartStreamOptions
 * @property {StreamPlacement} [at='selection'] where the answer goes (see the module comment)
 * @property {import('./client.js').DocumentMirror} [mirror] follow this mirror (e.g. a
 *   StreamClient's, `ctx.mirror` of its events) instead of a fresh one fed by insertStreamChunk
 * @property {string} [streamId]
 * @property {import('./client.js').StreamClient} [client] where pause/resume/skip/stop go
 */

/**
 * @typedef {object} StreamContentOptions
 * @property {'none'|'fade'|'typewriter'} [reveal='none'] reveal animation of new text
 * @property {number} [revealMs=300] fade duration / typewriter catch-up time
 * @property {boolean} [caret=true] show a caret at the streaming end
 * @property {boolean} [protect=true] filter out other transactions that change the answer
 *   while it streams
 * @property {object} [parseOptions] extra ProseMirror ParseOptions for the blocks
 * @property {import('./client.js').StreamClient|null} [client] default client for the controls
 * @property {(info: {blocks: number, changedFrom: number, nodes: number, session: StreamSession}) => void} [onFrame]
 * @property {(info: {from: number, to: number, streamId: string|null, event: object|null}) => void} [onFinish]
 */

/** One streaming answer in an editor (internal; see `editor.storage.streamContent`). */
export class StreamSession extends EditorStream {
  /**
   * @param {import('#tiptap').Editor} editor
   * @param {StreamContentOptions} extOptions
   * @param {StartStreamOptions} opts
   */
  constructor(editor, extOptions, opts) {
    super(editor, {
      at: opts.at ?? 'selection',
      lock: false,
      parseOptions: extOptions.parseOptions || {},
      onFrame: (info) => extOptions.onFrame?.({ ...info, session: this }),
    });
    this.ext = extOptions;
    /** @type {string|null} */
    this.streamId = opts.streamId ?? opts.mirror?.streamId ?? null;
    /** @type {import('./client.js').StreamClient|null} */
    this.client = opts.client ?? extOptions.client ?? null;
    /** Region of the document the stream changed (see the module comment). */
    this.rFrom = 0;
    this.rTo = 0;
    /** Depth open at the region's start/end (1 when a textblock was split). */
    this.openStart = 0;
    this.openEnd = 0;
    /** What the region held before the stream (a Slice of the original document). */
    this.original = Slice.empty;
    /** Frames are held (pauseStream). */
    this.held = false;
    /** stopStream was asked of the server; finish on its stream_complete. */
    this.stopping = false;
    /** typewriter: text before this position is shown */
    this.revealPos = 0;
    /** fade: recently arrived ranges `{from, to, born}` */
    this.reveals = [];
    this._tickFrame = null;
    this._lastTick = 0;
    /** A FORCE_META transaction changed the answer: the stream is being dropped. */
    this.forced = false;
  }

  /** The answer's nodes, `{from, to}`. */
  range() {
    return { from: this.rFrom + this.openStart, to: this.rTo - this.openEnd };
  }

  // --------------------------------------------------------------------------- placement

  _claimRange() {
    const { editor } = this;
    const state = editor.state;
    const doc0 = state.doc;
    const tr = state.tr;
    const at = this.options.at;
    const size = doc0.content.size;
    const onlyEmptyParagraph = doc0.childCount === 1 && doc0.firstChild.isTextblock &&
      doc0.firstChild.content.size === 0;
    this.placeholder = false;
    this.openStart = this.openEnd = 0;

    if (at === 'replace' || (at === 'end' && onlyEmptyParagraph)) {
      if (!onlyEmptyParagraph) tr.replaceWith(0, size, editor.schema.nodes.paragraph.create());
      this.rFrom = 0;
      this.rTo = tr.doc.content.size;
      this.placeholder = true;
    } else if (at === 'end') {
      this.rFrom = this.rTo = size;
    } else {
      let from;
      let to;
      if (typeof at === 'number') from = to = at;
      else if (at && typeof at === 'object') ({ from, to } = at);
      else ({ from, to } = state.selection);
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
      const pos = tr.mapping.map(from, -1);
      const $p = tr.doc.resolve(pos);
      if ($p.depth === 0) {
        this.rFrom = this.rTo = pos;
      } else if ($p.depth === 1 && $p.parent.isTextblock && $p.parent.content.size === 0) {
        this.rFrom = $p.before(1);  // an empty paragraph: the answer replaces it
        this.rTo = $p.after(1);
        this.placeholder = true;
      } else if ($p.depth === 1 && $p.parent.isTextblock && $p.parentOffset === 0) {
        this.rFrom = this.rTo = $p.before(1);
      } else if ($p.depth === 1 && $p.parent.isTextblock &&
                 $p.parentOffset === $p.parent.content.size) {
        this.rFrom = this.rTo = $p.after(1);
      } else if ($p.depth === 1 && $p.parent.isTextblock) {
        tr.split(pos);
        this.rFrom = pos;
        this.rTo = pos + 2;
        this.openStart = this.openEnd = 1;
      } else {
        this.rFrom = this.rTo = $p.after(1);
      }
    }
    // what the region was in the original document
    const back = tr.mapping.invert();
    this.original = doc0.slice(back.map(this.rFrom, -1), back.map(this.rTo, 1));
    if (tr.docChanged) {
      tr.setMeta(STREAM_META, true).setMeta('addToHistory', false);
      editor.view.dispatch(tr);
    }
    this.from = this.rFrom + this.openStart;
    this.revealPos = this.from;
    this.counts = [];
    this._valid = -1;
  }

  // --------------------------------------------------------------------------- mapping

  _mapForeign(tr) {
    const empty = this.rFrom === this.rTo;
    this.rFrom = tr.mapping.map(this.rFrom, 1);
    this.rTo = empty ? this.rFrom : Math.max(this.rFrom, tr.mapping.map(this.rTo, -1));
    this.revealPos = tr.mapping.map(this.revealPos, 1);
    for (const r of this.reveals) {
      r.from = tr.mapping.map(r.from, 1);
      r.to = tr.mapping.map(r.to, -1);
    }
    this.from = this.rFrom + this.openStart;
    this._valid = -1;
  }

  /**
   * Whether a transaction that is not ours may apply (plugin filterTransaction).
   * @param {any} tr
   */
  allows(tr) {
    if (!tr.docChanged || tr.getMeta(STREAM_META) || !this.ext.protect) return true;
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

  // --------------------------------------------------------------------------- frames

  _apply() {
    if (this.held) return;
    super._apply();
  }

  _beforeDispatch(tr, { fromPos, toPos, oldContent, nodes }) {
    // our frame replaced [fromPos, toPos) inside the region: the region grows with it
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
      const t = now();
      this.reveals = this.reveals.filter((r) => r.to <= newFrom || r.from >= toPos)
        .map((r) => (r.from >= toPos ? { ...r, from: r.from + shift, to: r.to + shift } : r));
      if (newTo > newFrom) this.reveals.push({ from: newFrom, to: newTo, born: t });
    }
    tr.setMeta(streamContentKey, { decorations: this._decorations(tr.doc) });
    this._scheduleTick();
  }

  /** The decorations for `doc` (the answer's current state). */
  _decorations(doc) {
    const decos = [];
    const { from: aFrom, to: aTo } = this.range();
    const final = this.mirror?.final || [];
    // data-streaming on blocks that are not final yet (a suffix, normally one block)
    let k = this.counts.length;
    while (k > 0 && !final[k - 1]) k--;
    for (let j = k; j < this.counts.length; j++) {
      let [pos, index] = this._start(doc, j);
      for (let c = 0; c < this.counts[j] && index < doc.childCount; c++) {
        const node = doc.child(index++);
        decos.push(Decoration.node(pos, pos + node.nodeSize, { 'data-streaming': 'true' }));
        pos += node.nodeSize;
      }
    }
    const reveal = this.ext.reveal;
    let caretAt = aTo;
    if (reveal === 'typewriter') {
      this.revealPos = Math.max(aFrom, Math.min(this.revealPos, aTo));
      if (this.revealPos < aTo) {
        decos.push(Decoration.inline(this.revealPos, aTo, { class: 'stream-reveal-hidden' }));
      }
      caretAt = this.revealPos;
    } else if (reveal === 'fade') {
      const t = now();
      this.reveals = this.reveals.filter((r) => t - r.born < this.ext.revealMs && r.to > r.from);
      for (const r of this.reveals) {
        const a = Math.max(aFrom, r.from);
        const b = Math.min(aTo, r.to);
        if (b > a) decos.push(Decoration.inline(a, b, { class: 'stream-reveal-fade' }));
      }
    }
    if (this.ext.caret && aTo > aFrom) {
      const $end = doc.resolve(Math.max(aFrom, Math.min(caretAt, doc.content.size)));
      const found = Selection.findFrom($end, -1, true);
      const pos = found && found.head >= aFrom ? found.head : $end.pos;
      decos.push(Decoration.widget(pos, caretDOM, { key: 'stream-caret', side: 1,
        ignoreSelection: true }));
    }
    return DecorationSet.create(doc, decos);
  }

  /** Typewriter and fade need redraws between frames; one rAF loop while they do. */
  _scheduleTick() {
    const reveal = this.ext.reveal;
    if (this._tickFrame !== null || !this.mirror) return;
    if (reveal === 'typewriter' ? this.revealPos >= this.range().to
      : reveal !== 'fade' || this.reveals.length === 0) return;
    this._tickFrame = raf(() => this._tick());
  }

  _tick() {
    this._tickFrame = null;
    const { editor } = this;
    if (!this.mirror || editor.isDestroyed) return;
    const t = now();
    const dt = this._lastTick ? Math.min(100, t - this._lastTick) : 16;
    this._lastTick = t;
    if (this.ext.reveal === 'typewriter' && !this.held) {
      const end = this.range().to;
      const backlog = end - this.revealPos;
      const step = Math.max(1, Math.ceil(backlog * Math.min(1, dt / this.ext.revealMs)));
      this.revealPos = Math.min(end, this.revealPos + step);
    }
    const tr = editor.state.tr;
    tr.setMeta(STREAM_META, true).setMeta('addToHistory', false)
      .setMeta(streamContentKey, { decorations: this._decorations(editor.state.doc) });
    editor.view.dispatch(tr);
    this._scheduleTick();
  }

  /** Show everything that arrived (skip): typewriter catches up at once. */
  revealAll() {
    this.revealPos = this.range().to;
    this.held = false;
    this.flush();
    this._redraw();
  }

  _clearDecorations() {
    const tr = this.editor.state.tr;
    tr.setMeta(STREAM_META, true).setMeta('addToHistory', false)
      .setMeta(streamContentKey, { decorations: DecorationSet.empty });
    this.editor.view.dispatch(tr);
  }

  _redraw() {
    const { editor } = this;
    if (!this.mirror || editor.isDestroyed) return;
    const tr = editor.state.tr;
    tr.setMeta(STREAM_META, true).setMeta('addToHistory', false)
      .setMeta(streamContentKey, { decorations: this._decorations(editor.state.doc) });
    editor.view.dispatch(tr);
  }

  // --------------------------------------------------------------------------- the end

  /** Stop following at once, without applying anything more (no transaction). */
  abandon() {
    this._dirtyMin = Infinity;
    this._unsubscribe?.();
    this._unsubscribe = null;
    if (this._onTransaction) this.editor.off('transaction', this._onTransaction);
    this._onTransaction = null;
    this.mirror = null;
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
    if (commit) this.flush();
    this.detach();
    if (this._tickFrame !== null) this._tickFrame = null;
    const state = editor.state;
    const { rFrom, rTo } = this;
    const answer = state.doc.slice(rFrom, rTo);
    if (commit && answer.eq(this.original)) {  // nothing changed: no undo step
      this._clearDecorations();
      return { from: rFrom + this.openStart, to: rTo - this.openEnd };
    }
    const restore = state.tr.replace(rFrom, rTo, this.original);
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

function caretDOM() {
  const span = document.createElement('span');
  span.className = 'stream-caret';
  span.setAttribute('aria-hidden', 'true');
  return span;
}

/**
 * @typedef {object} StreamContentStorage
 * @property {StreamSession|null} session the answer streaming now
 * @property {boolean} active
 * @property {boolean} paused
 * @property {string|null} streamId
 * @property {{from: number, to: number}|null} lastAnswer where the last finished answer is
 * @property {StreamContentOptions} settings the options in force (change them live here)
 */

export const StreamContent = Extension.create({
  name: 'streamContent',

  addOptions() {
    return {
      reveal: 'none',
      revealMs: 300,
      caret: true,
      protect: true,
      parseOptions: {},
      client: null,
      onFrame: undefined,
      onFinish: undefined,
    };
  },

  addStorage() {
    return { session: null, active: false, paused: false, streamId: null, lastAnswer: null,
      // the options in force, read at every frame: change e.g. `settings.reveal` live
      settings: { ...this.options } };
  },

  onDestroy() {
    const s = this.storage.session;
    if (s) s.detach();
    this.storage.session = null;
  },

  addCommands() {
    const ext = this;
    const setSession = (session) => {
      ext.storage.session = session;
      ext.storage.active = Boolean(session);
      ext.storage.paused = false;
      ext.storage.streamId = session?.streamId ?? null;
    };
    /** Commands that dispatch their own transactions must not dispatch the command's tr. */
    const own = (tr) => tr.setMeta('preventDispatch', true);
    const finish = (commit, event) => {
      const s = ext.storage.session;
      if (!s) return false;
      if (event && s.mirror) s.mirror.applyComplete(event);
      setSession(null);
      const range = s.end(commit);
      if (commit) {
        ext.storage.lastAnswer = range;
        ext.storage.settings.onFinish?.({ ...range, streamId: s.streamId, event: event || null });
      }
      return true;
    };
    /** A command that needs a streaming session: false without one, `fn(session)` else. */
    const withSession = (fn) => () => ({ tr, dispatch }) => {
      const s = ext.storage.session;
      if (!s) return false;
      if (!dispatch) return true;
      own(tr);
      return fn(s);
    };
    return {
      startStream: (options = {}) => ({ editor, tr, dispatch }) => {
        if (!dispatch) return true;
        own(tr);
        if (ext.storage.session) finish(true, null);
        const session = new StreamSession(editor, ext.storage.settings, options);
        const mirror = options.mirror || new DocumentMirror(options.streamId || 'local');
        setSession(session);
        session.attach(mirror);
        return true;
      },
      insertStreamChunk: (event) => ({ tr, dispatch }) => {
        const s = ext.storage.session;
        if (!s || !s.mirror) return false;
        if (!dispatch) return true;
        own(tr);
        if (event.type === 'snapshot') return s.mirror.applySnapshot(event);
        return s.mirror.applyChunk(event);
      },
      finishStream: (event) => withSession(() => finish(true, event))(),
      pauseStream: withSession((s) => {
        s.held = true;
        ext.storage.paused = true;
        s.client?.pause().catch(() => {});
        return true;
      }),
      resumeStream: withSession((s) => {
        s.held = false;
        ext.storage.paused = false;
        s.flush();
        s._scheduleTick();
        s.client?.resume().catch(() => {});
        return true;
      }),
      skipStream: withSession((s) => {
        ext.storage.paused = false;
        s.revealAll();
        s.client?.skip().catch(() => {});
        return true;
      }),
      stopStream: withSession((s) => {
        if (s.client && s.client.state === 'connected') {
          // the server answers with stream_complete (cancelled, the partial answer): finish then
          s.stopping = true;
          s.held = false;
          s.client.stop(s.streamId || undefined).catch(() => finish(true, null));
          return true;
        }
        return finish(true, null);
      }),
      clearStreamBuffer: withSession(() => finish(false, null)),
    };
  },

  addProseMirrorPlugins() {
    const ext = this;
    return [
      new Plugin({
        key: streamContentKey,
        state: {
          init: () => DecorationSet.empty,
          apply(tr, set) {
            const meta = tr.getMeta(streamContentKey);
            if (meta && meta.decorations) return meta.decorations;
            return tr.docChanged ? set.map(tr.mapping, tr.doc) : set;
          },
        },
        props: {
          decorations(state) {
            return streamContentKey.getState(state);
          },
        },
        filterTransaction(tr) {
          const s = ext.storage.session;
          if (!s || s.allows(tr)) return true;
          if (!tr.getMeta(FORCE_META)) return false;
          s.forced = true;  // let it through; appendTransaction drops the stream
          return true;
        },
        appendTransaction(transactions, oldState, newState) {
          const s = ext.storage.session;
          if (!s || !s.forced) return null;
          s.abandon();
          ext.storage.session = null;
          ext.storage.active = false;
          ext.storage.paused = false;
          return newState.tr.setMeta(streamContentKey, { decorations: DecorationSet.empty })
            .setMeta(STREAM_META, true).setMeta('addToHistory', false);
        },
      }),
    ];
  },
});

/**
 * Show every stream of a StreamClient in the editor through the extension's commands: a stream
 * that starts (or first sends a chunk or snapshot) is started at `at` (a value or a function
 * asked at each start) following the client's own mirror; `stream_complete` finishes it (one
 * undo step). The editor's pause/resume/skip/stop commands then go to this client.
 *
 * @param {import('#tiptap').Editor} editor an editor with {@link StreamContent}
 * @param {import('./client.js').StreamClient} client
 * @param {{at?: StreamPlacement | (() => StreamPlacement),
 *          onStart?: (session: StreamSession) => void,
 *          onComplete?: (event: object, range: {from: number, to: number}|null) => void}} [options]
 * @returns {{readonly session: StreamSession|null, dispose: () => void}}
 */
export function followClient(editor, client, options = {}) {
  const storage = () => editor.storage.streamContent;
  const follow = (mirror) => {
    const s = storage().session;
    if (s && s.mirror === mirror) return;
    if (mirror.complete) return;
    const at = typeof options.at === 'function' ? options.at() : options.at;
    editor.commands.startStream({ mirror, client, streamId: mirror.streamId, at });
    options.onStart?.(storage().session);
  };
  const offs = [
    client.on('stream_start', (ev, ctx) => {
      if (!ev.queued) follow(ctx.mirror);
    }),
    client.on('chunk', (ev, ctx) => follow(ctx.mirror)),
    client.on('snapshot', (ev, ctx) => follow(ctx.mirror)),
    client.on('stream_complete', (ev, ctx) => {
      const s = storage().session;
      if (s && s.mirror === ctx.mirror) {
        editor.commands.finishStream(ev);
        options.onComplete?.(ev, storage().lastAnswer);
      }
    }),
  ];
  return {
    get session() {
      return storage().session;
    },
    dispose() {
      for (const off of offs) off();
    },
  };
}
