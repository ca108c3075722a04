// The one frame scheduler of the package: the browser's animation frames, or a 16 ms timer
// where there are none (Node, workers). Every per-frame task (the editor's transactions, the
// reveal animation, the React snapshot) goes through a FrameTask on a FrameClock.

/** The fallback frame period where `requestAnimationFrame` is missing, in ms. */
export const FALLBACK_FRAME_MS = 16;

/**
 * Where frames come from.
 * @typedef {object} FrameClock
 * @property {(fn: (timeMs: number) => void) => any} request run `fn` at the next frame
 * @property {(handle: any) => void} cancel cancel a `request` that has not run yet
 * @property {() => number} now the current time in ms (monotonic where the host has one)
 */

/**
 * The frame clock of an environment: its `requestAnimationFrame` when it has one, else
 * `setTimeout(fn, FALLBACK_FRAME_MS)` (what is passed as `timeMs` is then `now()`).
 * @param {any} [env] the global object, or a fake one in tests
 * @returns {FrameClock}
 */
export function frameClock(env = globalThis) {
  const now = typeof env.performance?.now === 'function'
    ? () => env.performance.now() : () => Date.now();
  if (typeof env.requestAnimationFrame === 'function') {
    return {
      request: (fn) => env.requestAnimationFrame(fn),
      cancel: (handle) => env.cancelAnimationFrame(handle),
      now,
    };
  }
  return {
    request: (fn) => env.setTimeout(() => fn(now()), FALLBACK_FRAME_MS),
    cancel: (handle) => env.clearTimeout(handle),
    now,
  };
}

/** This page's (or process's) frame clock. */
export const defaultClock = frameClock();

/**
 * A task that runs at most once per frame: {@link schedule} as often as you like, `fn` runs
 * once at the next frame.
 */
export class FrameTask {
  /**
   * @param {(timeMs: number) => void} fn
   * @param {FrameClock} [clock]
   */
  constructor(fn, clock = defaultClock) {
    /** @private */
    this._fn = fn;
    /** @private */
    this._clock = clock;
    /**
     * @private
     * @type {any}
     */
    this._handle = null;
  }

  /** Whether a run is scheduled. */
  get pending() {
    return this._handle !== null;
  }

  /** Run `fn` at the next frame (once, however often this is called before it). */
  schedule() {
    if (this._handle !== null) return;
    this._handle = this._clock.request((timeMs) => {
      this._handle = null;
      this._fn(timeMs);
    });
  }

  /** Drop the scheduled run, if any. */
  cancel() {
    if (this._handle === null) return;
    this._clock.cancel(this._handle);
    this._handle = null;
  }
}
