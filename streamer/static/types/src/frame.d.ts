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
export function frameClock(env?: any): FrameClock;
/** The fallback frame period where `requestAnimationFrame` is missing, in ms. */
export const FALLBACK_FRAME_MS: 16;
export namespace defaultClock {
    let request: (fn: (timeMs: number) => void) => any;
    let cancel: (handle: any) => void;
    let now: () => number;
}
/**
 * A task that runs at most once per frame: {@link schedule} as often as you like, `fn` runs
 * once at the next frame.
 */
export class FrameTask {
    /**
     * @param {(timeMs: number) => void} fn
     * @param {FrameClock} [clock]
     */
    constructor(fn: (timeMs: number) => void, clock?: FrameClock);
    /** @private */
    private _fn;
    /** @private */
    private _clock;
    /**
     * @private
     * @type {any}
     */
    private _handle;
    /** Whether a run is scheduled. */
    get pending(): boolean;
    /** Run `fn` at the next frame (once, however often this is called before it). */
    schedule(): void;
    /** Drop the scheduled run, if any. */
    cancel(): void;
}
/**
 * Where frames come from.
 */
export type FrameClock = {
    /**
     * run `fn` at the next frame
     */
    request: (fn: (timeMs: number) => void) => any;
    /**
     * cancel a `request` that has not run yet
     */
    cancel: (handle: any) => void;
    /**
     * the current time in ms (monotonic where the host has one)
     */
    now: () => number;
};
