// The frame scheduler (streamer/static/src/frame.js) on a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FALLBACK_FRAME_MS, FrameTask, frameClock } from '../../../streamer/static/src/frame.js';

/** A host without animation frames: timers on a clock that moves only when told. */
function fakeHost() {
  let now = 1000;
  let next = 1;
  const timers = new Map();
  return {
    performance: { now: () => now },
    setTimeout: (fn, ms) => {
      const id = next++;
      timers.set(id, { fn, at: now + ms });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    /** Move the clock by `ms`, running the timers that fall due, in order. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at);
        if (!due.length) break;
        const [id, t] = due[0];
        timers.delete(id);
        now = t.at;
        t.fn();
      }
      now = end;
    },
    get pending() {
      return timers.size;
    },
  };
}

test('without requestAnimationFrame: a frame is a 16 ms timer, given the clock time', () => {
  const host = fakeHost();
  const clock = frameClock(host);
  const times = [];
  clock.request((t) => times.push(t));
  host.advance(FALLBACK_FRAME_MS - 1);
  assert.deepEqual(times, []);
  host.advance(1);
  assert.deepEqual(times, [1016]);
  const handle = clock.request((t) => times.push(t));
  clock.cancel(handle);
  host.advance(100);
  assert.deepEqual(times, [1016]);
  assert.equal(clock.now(), 1116);
});

test('with requestAnimationFrame: the browser decides', () => {
  const calls = [];
  const host = {
    requestAnimationFrame: (fn) => { calls.push(['request', fn]); return 7; },
    cancelAnimationFrame: (id) => calls.push(['cancel', id]),
    setTimeout: () => assert.fail('no timers where there are frames'),
  };
  const clock = frameClock(host);
  const seen = [];
  assert.equal(clock.request((t) => seen.push(t)), 7);
  calls[0][1](123.5);
  clock.cancel(7);
  assert.deepEqual(seen, [123.5]);
  assert.deepEqual(calls[1], ['cancel', 7]);
});

test('FrameTask: many schedules, one run per frame; cancel; pending', () => {
  const host = fakeHost();
  const runs = [];
  const task = new FrameTask((t) => runs.push(t), frameClock(host));
  assert.equal(task.pending, false);
  task.schedule();
  task.schedule();
  task.schedule();
  assert.equal(task.pending, true);
  assert.equal(host.pending, 1);
  host.advance(16);
  assert.deepEqual(runs, [1016]);
  assert.equal(task.pending, false);
  task.schedule();
  host.advance(5);
  task.schedule();  // still the same frame
  host.advance(11);
  assert.deepEqual(runs, [1016, 1032]);
  task.schedule();
  task.cancel();
  task.cancel();
  assert.equal(task.pending, false);
  host.advance(50);
  assert.deepEqual(runs, [1016, 1032]);
});

test('FrameTask: a run may schedule the next frame', () => {
  const host = fakeHost();
  const runs = [];
  const task = new FrameTask((t) => {
    runs.push(t);
    if (runs.length < 3) task.schedule();
  }, frameClock(host));
  task.schedule();
  host.advance(100);
  assert.deepEqual(runs, [1016, 1032, 1048]);
});
