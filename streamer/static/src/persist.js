// What a tab keeps of a client across page loads (the `persist` option): the session's id, and
// the unfinished answer's cursor `(stream_id, epoch, seq)` with the blocks it stands for, in
// `sessionStorage` (this tab only, gone when it closes) under `streamer:<key>`. A reload then
// continues the conversation and resumes the answer after the kept `seq`: nothing lost,
// nothing twice. Writes are batched (at most one per `SAVE_DELAY_MS`) and flushed when the
// page is hidden or unloaded (`pagehide`, `visibilitychange`).

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
export const STORAGE_PREFIX = 'streamer:';

/** At most one write per this many ms while an answer streams. */
export const SAVE_DELAY_MS = 500;

/** The stored format's version (a different one is ignored). */
const FORMAT = 1;

/**
 * One client's kept state in a tab's storage.
 */
export class TabMemory {
  /**
   * @param {Storage} storage
   * @param {string} key the full storage key
   * @param {string} baseUrl the server (a kept session of another server is ignored)
   */
  constructor(storage, key, baseUrl) {
    this.storage = storage;
    this.key = key;
    this.baseUrl = baseUrl;
    /** @private @type {(() => Kept|null)|null} what to write when the batch is due */
    this._pending = null;
    /** @private @type {any} */
    this._timer = null;
  }

  /**
   * The kept state, if it is for this server and for the application's chosen id (none
   * chosen, or the same).
   * @param {string|null} requestedSessionId
   * @returns {Kept|null}
   */
  load(requestedSessionId) {
    let saved;
    try {
      saved = JSON.parse(this.storage.getItem(this.key) || 'null');
    } catch {
      return null; // unreadable: start afresh
    }
    if (!saved || saved.v !== FORMAT || saved.baseUrl !== this.baseUrl) return null;
    if (typeof saved.sessionId !== 'string' || !saved.sessionId) return null;
    if ((saved.requestedSessionId || null) !== (requestedSessionId || null)) return null;
    return { sessionId: saved.sessionId, requestedSessionId: requestedSessionId || null,
      stream: validStream(saved.stream) };
  }

  /**
   * Write `state()` soon (at most one write per {@link SAVE_DELAY_MS}).
   * @param {() => Kept|null} state read when the write happens
   */
  schedule(state) {
    this._pending = state;
    if (this._timer === null) this._timer = setTimeout(() => this.flush(), SAVE_DELAY_MS);
  }

  /**
   * Write `state()` now (and drop a pending write).
   * @param {() => Kept|null} state
   */
  saveNow(state) {
    this._pending = state;
    this.flush();
  }

  /** Write what is pending, if anything. */
  flush() {
    clearTimeout(this._timer);
    this._timer = null;
    const state = this._pending;
    this._pending = null;
    if (state) this._write(state());
  }

  /** Forget the kept state. */
  clear() {
    clearTimeout(this._timer);
    this._timer = null;
    this._pending = null;
    try {
      this.storage.removeItem(this.key);
    } catch {
      /* storage disabled */
    }
  }

  /**
   * @private
   * @param {Kept|null} kept
   */
  _write(kept) {
    if (!kept) {
      this.clear();
      return;
    }
    const record = { v: FORMAT, baseUrl: this.baseUrl, ...kept };
    try {
      this.storage.setItem(this.key, JSON.stringify(record));
    } catch {
      // over the quota: keep the cursor without the blocks (a resume from seq 0 replays the
      // whole answer, as exactly)
      const stream = kept.stream && { ...kept.stream, lastSeq: 0, blocks: [] };
      try {
        this.storage.setItem(this.key, JSON.stringify({ ...record, stream }));
      } catch {
        /* storage disabled: nothing kept */
      }
    }
  }
}

/**
 * A kept stream, checked (anything else is no stream).
 * @param {any} s
 * @returns {KeptStream|null}
 */
function validStream(s) {
  const isText = (/** @type {any} */ b) => typeof b === 'string';
  if (!s || typeof s.streamId !== 'string' || !Number.isSafeInteger(s.lastSeq) || s.lastSeq < 0
      || !Array.isArray(s.blocks) || !s.blocks.every(isText)) {
    return null;
  }
  const epoch = typeof s.epoch === 'string' ? s.epoch : null;
  return { streamId: s.streamId, epoch, lastSeq: s.lastSeq, blocks: s.blocks };
}

/**
 * The memory the `persist` option asks for, or null (off, or no storage in this place).
 * @param {boolean|string|PersistOptions|undefined} option `true`: key `client`; a string:
 *   that key
 * @param {string} baseUrl
 * @returns {TabMemory|null}
 */
export function tabMemory(option, baseUrl) {
  if (!option) return null;
  const opts = typeof option === 'object' ? option : {};
  const key = typeof option === 'string' ? option : opts.key || 'client';
  let storage = opts.storage;
  try {
    storage ??= /** @type {any} */ (globalThis).sessionStorage;
  } catch {
    storage = undefined; // a sandboxed page may throw on access
  }
  return storage ? new TabMemory(storage, STORAGE_PREFIX + key, baseUrl) : null;
}

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
export function restoreKept(client, kept) {
  const s = kept.stream;
  if (!s) return;
  client.mirror(s.streamId).applySnapshot({ type: 'snapshot', stream_id: s.streamId,
    seq: s.lastSeq, epoch: s.epoch ?? undefined, blocks: s.blocks });
  client.activeStreamId = s.streamId;
}

/**
 * What the tab keeps of `client` now: the session, and the unfinished answer being
 * delivered (begun: at least one `seq`), or null before the session exists.
 * @param {KeepingClient} client
 * @returns {Kept|null}
 */
export function keptState(client) {
  if (!client.sessionId) return null;
  const id = client.activeStreamId;
  const m = id ? client.streams.get(id) : null;
  const stream = m && !m.complete && m.lastSeq > 0
    ? { streamId: m.streamId, epoch: m.epoch, lastSeq: m.lastSeq, blocks: m.blocks } : null;
  return { sessionId: client.sessionId, requestedSessionId: client.requestedSessionId, stream };
}

/**
 * Keep `client` in `memory` from now on: the session when it is made, the answer's cursor as
 * events arrive (batched), at once when an answer ends and when the page is hidden or left.
 * @param {KeepingClient} client
 * @param {TabMemory} memory
 * @returns {() => void} stop keeping (what is pending is written first)
 */
export function keepInTab(client, memory) {
  const state = () => keptState(client);
  const offs = [
    client.on('session', () => memory.saveNow(state)),
    client.on('*', (/** @type {{type: string}} */ ev) => {
      if (ev.type === 'stream_complete' || ev.type === 'stream_start') memory.saveNow(state);
      else if (ev.type !== 'heartbeat' && ev.type !== 'pong') memory.schedule(state);
    }),
  ];
  const g = /** @type {any} */ (globalThis);
  const flush = () => memory.saveNow(state);
  const onHidden = () => {
    if (g.document?.visibilityState === 'hidden') flush();
  };
  g.addEventListener?.('pagehide', flush);
  g.document?.addEventListener?.('visibilitychange', onHidden);
  return () => {
    for (const off of offs) off();
    g.removeEventListener?.('pagehide', flush);
    g.document?.removeEventListener?.('visibilitychange', onHidden);
    flush();
  };
}
