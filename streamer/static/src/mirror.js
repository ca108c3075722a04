// The client's copy of one stream's document: the block list the server's ops build, with the
// seq de-duplication that makes a replay after a reconnect harmless. Pure: no DOM, no I/O.

import { applyOp } from './ops.js';

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
  constructor(streamId) {
    /** @type {string} */
    this.streamId = streamId;
    /** @type {string[]} */
    this.blocks = [];
    /** @type {boolean[]} `final` flag per block */
    this.final = [];
    /** Highest `seq` applied (0 = none): what a resume asks to continue after. */
    this.lastSeq = 0;
    /** @type {string|null} the server log's `epoch` that {@link lastSeq} belongs to */
    this.epoch = null;
    /** @type {ServerEvent|null} the `stream_start` event */
    this.start = null;
    /** @type {ServerEvent|null} the `stream_complete` event, once the stream is over */
    this.complete = null;
    /** True when an op did not fit the list; the final `html` of `stream_complete` repairs it. */
    this.desynced = false;
    /**
     * @private
     * @type {Set<(change: MirrorChange) => void>}
     */
    this._listeners = new Set();
  }

  /** The document so far: the blocks joined. */
  get html() {
    return this.blocks.join('');
  }

  /**
   * Listen to changes. Called synchronously after each applied op.
   * @param {(change: MirrorChange) => void} fn
   * @returns {() => void} unsubscribe
   */
  onChange(fn) {
    this._listeners.add(fn);
    return () => {
      this._listeners.delete(fn);
    };
  }

  /**
   * @private
   * @param {MirrorChange} change
   */
  _notify(change) {
    for (const fn of [...this._listeners]) {
      try {
        fn(change);
      } catch (err) {
        console.error('streamer: mirror listener failed', err);
      }
    }
  }

  /**
   * Apply a `chunk` event. Chunks whose `seq` is not above {@link lastSeq} are ignored
   * (a replay after a reconnect may repeat them).
   * @param {ServerEvent} ev
   * @returns {boolean} whether the chunk was applied
   * @throws {RangeError} the op did not fit (the mirror is then {@link desynced})
   */
  applyChunk(ev) {
    if (typeof ev.seq === 'number' && ev.seq <= this.lastSeq) return false;
    try {
      applyOp(this.blocks, /** @type {import('./ops.js').BlockOp} */ (/** @type {unknown} */ (ev)));
    } catch (err) {
      this.desynced = true;
      throw err;
    } finally {
      this._note(ev);
    }
    this.final[ev.block] = Boolean(ev.final);
    this._notify({ kind: 'block', block: ev.block });
    return true;
  }

  /**
   * Apply a `snapshot` event: the whole document as of its `seq`.
   * @param {ServerEvent} ev
   * @returns {boolean} whether it was applied (an older snapshot than what we have is ignored)
   */
  applySnapshot(ev) {
    if (typeof ev.seq === 'number' && ev.seq < this.lastSeq) return false;
    this.reset(Array.isArray(ev.blocks) ? ev.blocks.slice() : []);
    this._note(ev);
    return true;
  }

  /**
   * Note a non-document event of the stream that carries a `seq` (`reasoning`, `tool_call`,
   * a `retrying` state): `seq` orders them with the chunks.
   * @param {ServerEvent} ev
   * @returns {boolean} false when it was already seen (a replay after a reconnect)
   */
  applyEvent(ev) {
    if (typeof ev.seq !== 'number') return true;
    if (ev.seq <= this.lastSeq) return false;
    this._note(ev);
    return true;
  }

  /**
   * The cursor moves to the event's `seq` and `epoch` (when it has them).
   * @private
   * @param {ServerEvent} ev
   */
  _note(ev) {
    if (typeof ev.seq === 'number') this.lastSeq = ev.seq;
    if (ev.epoch) this.epoch = ev.epoch;
  }

  /**
   * Replace the whole block list (a snapshot, or the final HTML after a desync).
   * @param {string[]} blocks
   */
  reset(blocks) {
    this.blocks = blocks;
    this.final = blocks.map(() => false);
    this.desynced = false;
    this._notify({ kind: 'reset' });
  }

  /**
   * Record `stream_complete`. Its `html` is the exact final document: if the blocks do not
   * join to it (ops missed or not all delivered, e.g. a `stop` with a backlog), the mirror
   * resets to one block holding that HTML.
   * @param {ServerEvent} ev
   * @returns {boolean} true if the mirror had to be resynchronised
   */
  applyComplete(ev) {
    this.complete = ev;
    if (typeof ev.html === 'string' && (this.desynced || this.html !== ev.html)) {
      this.reset([ev.html]);
      return true;
    }
    return false;
  }
}
