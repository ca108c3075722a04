// The reconnect policy: exponential backoff with jitter, bounded, with the server's own hints
// (an SSE `retry:` field, an error's `retry_after_ms`) as floors. Pure: the caller owns timers.

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
export const DEFAULT_RECONNECT = Object.freeze({
  initialDelayMs: 500,
  maxDelayMs: 15000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Infinity,
});

/**
 * The policy in force: the defaults with `options` over them, or `null` for no reconnect.
 * @param {ReconnectOptions|false|undefined} options
 * @returns {ReconnectPolicy|null}
 */
export function reconnectPolicy(options) {
  return options === false ? null : { ...DEFAULT_RECONNECT, ...(options || {}) };
}

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
export function backoffDelay(policy, attempt, hints = {}) {
  const { sseRetryMs = null, retryAfterMs = 0, random = Math.random } = hints;
  const base = sseRetryMs != null ? Math.max(sseRetryMs, policy.initialDelayMs)
    : policy.initialDelayMs;
  let delay = Math.min(policy.maxDelayMs, base * Math.pow(policy.factor, attempt));
  delay *= 1 - policy.jitter * random();
  return Math.max(delay, retryAfterMs);
}

/**
 * Whether the client gives up after `attempt` failures in a row.
 * @param {ReconnectPolicy|null} policy
 * @param {number} attempt
 * @returns {boolean}
 */
export function givesUp(policy, attempt) {
  return !policy || attempt >= policy.maxAttempts;
}
