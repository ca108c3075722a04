// The reconnect policy (streamer/static/src/reconnect.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_RECONNECT, backoffDelay, givesUp, reconnectPolicy,
} from '../../../streamer/static/src/reconnect.js';

const none = () => 0;     // no jitter taken
const most = () => 0.999; // nearly all of it

test('the policy: defaults, overrides, none', () => {
  assert.deepEqual(reconnectPolicy(undefined), { ...DEFAULT_RECONNECT });
  assert.deepEqual(reconnectPolicy({ factor: 3 }), { ...DEFAULT_RECONNECT, factor: 3 });
  assert.equal(reconnectPolicy(false), null);
  assert.throws(() => { DEFAULT_RECONNECT.factor = 1; }, TypeError);
});

test('exponential, capped', () => {
  const p = reconnectPolicy({});
  const delays = [0, 1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(p, n, { random: none }));
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
});

test('jitter takes up to `jitter` of the delay away', () => {
  const p = reconnectPolicy({ jitter: 0.5 });
  assert.equal(backoffDelay(p, 2, { random: () => 0.5 }), 1500);
  assert.ok(Math.abs(backoffDelay(p, 2, { random: most }) - 1001) < 1);
  const full = reconnectPolicy({ jitter: 1 });
  assert.ok(backoffDelay(full, 2, { random: most }) < 3);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(p, 3);  // Math.random
    assert.ok(d > 2000 && d <= 4000, String(d));
  }
});

test("the server's hints are floors: SSE retry: for the base, retry_after_ms for the delay", () => {
  const p = reconnectPolicy({});
  assert.equal(backoffDelay(p, 0, { random: none, sseRetryMs: 3000 }), 3000);
  assert.equal(backoffDelay(p, 1, { random: none, sseRetryMs: 3000 }), 6000);
  assert.equal(backoffDelay(p, 0, { random: none, sseRetryMs: 100 }), 500);
  assert.equal(backoffDelay(p, 0, { random: most, retryAfterMs: 7000 }), 7000);
  assert.equal(backoffDelay(p, 6, { random: none, retryAfterMs: 7000 }), 15000);
});

test('giving up after maxAttempts failures in a row, or at once without a policy', () => {
  const p = reconnectPolicy({ maxAttempts: 2 });
  assert.deepEqual([0, 1, 2, 3].map((n) => givesUp(p, n)), [false, false, true, true]);
  assert.equal(givesUp(reconnectPolicy({}), 1e9), false);
  assert.equal(givesUp(null, 0), true);
});
