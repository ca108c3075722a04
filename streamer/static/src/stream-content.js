// The Tiptap extension `StreamContent`: streams one answer at a time into the editor while the
// user keeps editing the rest of the document, and makes the whole answer ONE undo step.
// Between a stream's start and its first token it shows a waiting indicator
// (`.stream-waiting`, with the caret option); the editor's element has `aria-busy="true"`
// while an answer streams.
//
// The answer's document is a DocumentMirror (mirror.js: block strings, seq de-duplication,
// snapshots); a StreamSession (stream-session.js) shows it: placement, the protected region,
// one undo step, decorations and the reveal. This module is the extension around it: the
// commands, the storage, the plugin (decorations, `protect`, FORCE_META), and followClient.
//
// Transactions that would change the region's inside are filtered out while it streams
// (`protect`, default true); set the meta `streamContentForce` to let one through (the stream
// is then dropped as by clearStreamBuffer). Configure StarterKit with `trailingNode: false` in
// an editor that must end equal to the server's HTML (see editor-stream.js).

import { Extension, pmState, pmView } from '#tiptap';
import { DocumentMirror } from './mirror.js';
import { STREAM_META } from './editor-stream.js';
import { followStreams, placementOf } from './follow.js';
import { StreamSession, streamContentKey } from './stream-session.js';

const { Plugin } = pmState;
const { Decoration, DecorationSet } = pmView;

/** @typedef {import('@tiptap/core').Editor} Editor */
/** @typedef {import('./stream-session.js').StreamPlacement} StreamPlacement */
/** @typedef {import('./stream-session.js').StartStreamOptions} StartStreamOptions */
/** @typedef {import('./stream-session.js').StreamContentOptions} StreamContentOptions */
/** @typedef {import('./stream-client.js').StreamClient} StreamClient */
/** @typedef {import('./commands.js').StreamContentCommands} StreamContentCommands */

/** Set this meta on a transaction to let it change a streaming answer (the stream is dropped). */
export const FORCE_META = 'streamContentForce';

/**
 * @typedef {object} StreamContentStorage
 * @property {StreamSession|null} session the answer streaming now
 * @property {boolean} active
 * @property {boolean} paused
 * @property {string|null} streamId
 * @property {{from: number, to: number}|null} lastAnswer where the last finished answer is
 * @property {StreamContentOptions} settings the options in force (change them live here)
 */

/**
 * What the commands share: the session's bookkeeping, `finish`, and `withSession`.
 * @param {{storage: StreamContentStorage}} ext
 */
function sessionKit(ext) {
  /** @param {StreamSession|null} session */
  const setSession = (session) => {
    ext.storage.session = session;
    ext.storage.active = Boolean(session);
    ext.storage.paused = false;
    ext.storage.streamId = session?.streamId ?? null;
  };
  /**
   * Commands that dispatch their own transactions must not dispatch the command's tr.
   * @param {import('@tiptap/pm/state').Transaction} tr
   */
  const own = (tr) => tr.setMeta('preventDispatch', true);
  /**
   * @param {boolean} commit
   * @param {any} event
   */
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
  /**
   * A command that needs a streaming session: false without one, `fn(session)` else.
   * @param {(s: StreamSession) => boolean} fn
   */
  const withSession = (fn) => () => (
    /** @type {{tr: import('@tiptap/pm/state').Transaction, dispatch?: any}} */ { tr, dispatch }
  ) => {
    const s = ext.storage.session;
    if (!s) return false;
    if (!dispatch) return true;
    own(tr);
    return fn(s);
  };
  return { setSession, own, finish, withSession };
}

/**
 * The commands, over the extension's storage.
 * @param {{storage: StreamContentStorage}} ext
 */
function commands(ext) {
  const kit = sessionKit(ext);
  const { setSession, own, finish, withSession } = kit;
  return {
    /** @param {StartStreamOptions} [options] */
    startStream: (options = {}) => (
      /** @type {{editor: Editor, tr: import('@tiptap/pm/state').Transaction, dispatch?: any}} */
      { editor, tr, dispatch },
    ) => {
      if (!dispatch) return true;
      own(tr);
      if (ext.storage.session) finish(true, null);
      const session = new StreamSession(editor, ext.storage.settings, options);
      const mirror = options.mirror || new DocumentMirror(options.streamId || 'local');
      setSession(session);
      session.attach(mirror);
      return true;
    },
    /** @param {any} event */
    insertStreamChunk: (event) => (
      /** @type {{tr: import('@tiptap/pm/state').Transaction, dispatch?: any}} */ { tr, dispatch },
    ) => {
      const s = ext.storage.session;
      if (!s || !s.mirror) return false;
      if (!dispatch) return true;
      own(tr);
      if (event.type === 'snapshot') return s.mirror.applySnapshot(event);
      return s.mirror.applyChunk(event);
    },
    /** @param {any} [event] */
    finishStream: (event) => withSession(() => finish(true, event))(),
    ...controls(ext, kit),
  };
}

/**
 * The commands that act on the streaming session (false without one).
 * @param {{storage: StreamContentStorage}} ext
 * @param {ReturnType<typeof sessionKit>} kit
 */
function controls(ext, { withSession, finish }) {
  return {
    pauseStream: withSession((s) => {
      s.pause();
      ext.storage.paused = true;
      s.client?.pause().catch(() => {});
      return true;
    }),
    resumeStream: withSession((s) => {
      s.resume();
      ext.storage.paused = false;
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
}

/**
 * The plugin: the session's decorations, `protect` (filterTransaction) and FORCE_META.
 * @param {{storage: StreamContentStorage}} ext
 */
function streamPlugin(ext) {
  return new Plugin({
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
        const set = streamContentKey.getState(state);
        const s = ext.storage.session;
        if (!set || !s || !s.view.waiting || !ext.storage.settings.caret) return set;
        return set.add(state.doc, [waitingWidget(s.view.range(), s.view.placeholder)]);
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
  });
}

/**
 * The waiting indicator: between a stream's start and its first token, where the answer will
 * show (in its placeholder paragraph, if it has one). Decorative: the editor's element says
 * `aria-busy` and `data-stream-waiting` (editor-stream.js), a page's live region the words.
 * @param {{from: number, to: number}} range
 * @param {boolean} placeholder
 */
function waitingWidget(range, placeholder) {
  const pos = placeholder && range.to > range.from ? range.from + 1 : range.from;
  return Decoration.widget(pos, () => {
    const span = document.createElement('span');
    span.className = 'stream-waiting';
    span.setAttribute('aria-hidden', 'true');
    for (let i = 0; i < 3; i++) span.appendChild(document.createElement('span'));
    return span;
  }, { key: 'stream-waiting', side: 1 });
}

/**
 * The extension (configure it with {@link StreamContentOptions}).
 * @type {import('@tiptap/core').Extension<StreamContentOptions, StreamContentStorage>}
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
    if (s) s.view.detach();
    this.storage.session = null;
  },

  addCommands() {
    return /** @type {any} */ (commands(this));
  },

  addProseMirrorPlugins() {
    return [streamPlugin(this)];
  },
});

/**
 * Show every stream of a StreamClient in the editor through the extension's commands: a stream
 * that starts (or first sends a chunk or snapshot) is started at `at` (a value or a function
 * asked at each start) following the client's own mirror; `stream_complete` finishes it (one
 * undo step). The editor's pause/resume/skip/stop commands then go to this client.
 *
 * @param {Editor} editor an editor with {@link StreamContent}
 * @param {StreamClient} client
 * @param {{at?: StreamPlacement | (() => StreamPlacement),
 *          onStart?: (session: StreamSession) => void,
 *          onComplete?: (event: object, range: {from: number, to: number}|null) => void}} [options]
 * @returns {{readonly session: StreamSession|null, dispose: () => void}}
 */
export function followClient(editor, client, options = {}) {
  /** @returns {StreamContentStorage} */
  const storage = () => /** @type {any} */ (editor.storage).streamContent;
  const stop = followStreams(client, {
    following: (mirror) => storage().session?.mirror === mirror,
    begin: (mirror) => {
      editor.commands.startStream({ mirror, client, streamId: mirror.streamId,
        at: placementOf(options.at) });
      options.onStart?.(/** @type {StreamSession} */ (storage().session));
    },
    end: (ev) => {
      editor.commands.finishStream(/** @type {import('./commands.js').StreamCompleteEvent} */ (ev));
      options.onComplete?.(ev, storage().lastAnswer);
    },
  });
  return {
    get session() {
      return storage().session;
    },
    dispose() {
      stop();
    },
  };
}
