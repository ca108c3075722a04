// Emitter (streamer/static/src/emitter.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Emitter } from '../../../streamer/static/src/emitter.js';

test('on, off, once, order and arguments', () => {
  const e = new Emitter();
  const seen = [];
  const off = e.on('x', (a, b) => seen.push(['first', a, b]));
  e.once('x', (a) => seen.push(['once', a]));
  e.on('x', (a) => seen.push(['third', a]));
  e.emit('x', 1, 2);
  e.emit('x', 3);
  off();
  e.emit('x', 4);
  e.emit('nobody', 5);
  assert.deepEqual(seen, [['first', 1, 2], ['once', 1], ['third', 1], ['first', 3, undefined],
    ['third', 3], ['third', 4]]);
});

test('each emit goes to the listeners there were when it started', () => {
  const e = new Emitter();
  const seen = [];
  /** @type {() => void} */
  let offB = () => {};
  e.on('x', () => {
    seen.push('a');
    offB();                               // removed meanwhile: still called this time
    e.on('x', () => seen.push('late'));   // added meanwhile: from the next emit
  });
  offB = e.on('x', () => seen.push('b'));
  e.emit('x');
  assert.deepEqual(seen, ['a', 'b']);
});

test('a failing listener is logged and the others still run', (t) => {
  const e = new Emitter();
  t.mock.method(console, 'error', () => {});
  const seen = [];
  e.on('x', () => {
    throw new Error('boom');
  });
  e.on('x', () => seen.push('ok'));
  e.emit('x');
  assert.deepEqual(seen, ['ok']);
  assert.equal(console.error.mock.callCount(), 1);
});
