// A minimal synchronous event emitter: listeners run in the order they were added, a failing
// listener is logged and does not stop the others, and each event goes to the listeners there
// were when it was emitted (one added or removed meanwhile counts from the next event).

/** @typedef {(...args: any[]) => void} Listener */

export class Emitter {
  constructor() {
    /**
     * @private
     * @type {Map<string, Set<Listener>>}
     */
    this._handlers = new Map();
  }

  /**
   * @param {string} type
   * @param {Listener} fn
   * @returns {() => void} unsubscribe
   */
  on(type, fn) {
    let set = this._handlers.get(type);
    if (!set) {
      set = new Set();
      this._handlers.set(type, set);
    }
    set.add(fn);
    return () => this.off(type, fn);
  }

  /**
   * @param {string} type
   * @param {Listener} fn
   */
  off(type, fn) {
    this._handlers.get(type)?.delete(fn);
  }

  /**
   * Listen to the next event of `type` only.
   * @param {string} type
   * @param {Listener} fn
   * @returns {() => void} unsubscribe
   */
  once(type, fn) {
    const off = this.on(type, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /**
   * Call every listener of `type` with `args` (a snapshot of the listeners taken now).
   * @param {string} type
   * @param {...any} args
   */
  emit(type, ...args) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`streamer: '${type}' listener failed`, err);
      }
    }
  }
}
