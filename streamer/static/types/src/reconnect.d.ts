/**
 * The policy in force: the defaults with `options` over them, or `null` for no reconnect.
 * @param {ReconnectOptions|false|undefined} options
 * @returns {ReconnectPolicy|null}
 */
export function reconnectPolicy(options: ReconnectOptions | false | undefined): ReconnectPolicy | null;
/**
 * How long to wait before reconnect attempt `attempt` (0 for the first retry), in ms:
 * `base * factor^attempt` capped at `maxDelayMs`, less up to `jitter` of it at random, and
 * never below `retryAfterMs`. `base` is `initialDelayMs`, or the server's SSE `retry:` value
 * when that is larger.
 * @param {ReconnectPolicy} policy
 * @param {number} attempt failed attempts in a row before this one
 * @param {{sseRetryMs?: number|null, retryAfterMs?: number, random?: () => number}} [hints]
 *   `random` returns a number in [0, 1) (default `Math.random`)
 * @returns {number} milliseconds
 */
export function backoffDelay(policy: ReconnectPolicy, attempt: number, hints?: {
    sseRetryMs?: number | null;
    retryAfterMs?: number;
    random?: () => number;
}): number;
/**
 * Whether the client gives up after `attempt` failures in a row.
 * @param {ReconnectPolicy|null} policy
 * @param {number} attempt
 * @returns {boolean}
 */
export function givesUp(policy: ReconnectPolicy | null, attempt: number): boolean;
/**
 * @typedef {object} ReconnectOptions
 * @property {number} [initialDelayMs=500] first retry delay
 * @property {number} [maxDelayMs=15000] upper bound of the delay
 * @property {number} [factor=2] growth per failed attempt
 * @property {number} [jitter=0.5] fraction of the delay that is randomised (0 = none, 1 = full)
 * @property {number} [maxAttempts=Infinity] give up (state `error`) after this many failures in a row
 */
/** @typedef {Required<ReconnectOptions>} ReconnectPolicy */
/** @type {Readonly<ReconnectPolicy>} */
export const DEFAULT_RECONNECT: Readonly<ReconnectPolicy>;
export type ReconnectOptions = {
    /**
     * first retry delay
     */
    initialDelayMs?: number | undefined;
    /**
     * upper bound of the delay
     */
    maxDelayMs?: number | undefined;
    /**
     * growth per failed attempt
     */
    factor?: number | undefined;
    /**
     * fraction of the delay that is randomised (0 = none, 1 = full)
     */
    jitter?: number | undefined;
    /**
     * give up (state `error`) after this many failures in a row
     */
    maxAttempts?: number | undefined;
};
export type ReconnectPolicy = Required<ReconnectOptions>;
