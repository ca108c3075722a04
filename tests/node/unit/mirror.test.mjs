// DocumentMirror (streamer/static/src/mirror.js): seq de-duplication, snapshots, resync.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DocumentMirror } from '../../../streamer/static/src/mirror.js';

const chunk = (seq, op, block, value, extra = {}) => ({
  type: 'chunk', seq, epoch: 'e1', op, block, [op === 'text' ? 'text' : 'html']: value, ...extra,
});

test('chunks apply once: a replayed seq is ignored', () => {
  const m = new DocumentMirror('s');
  const changes = [];
  m.onChange((c) => changes.push(c));
  assert.equal(m.applyChunk(chunk(1, 'append', 0, '<p>a</p>')), true);
  assert.equal(m.applyChunk(chunk(2, 'text', 0, 'b', { final: true })), true);
  assert.equal(m.applyChunk(chunk(2, 'text', 0, 'b')), false);
  assert.equal(m.applyChunk(chunk(1, 'append', 0, '<p>a</p>')), false);
  assert.equal(m.html, '<p>ab</p>');
  assert.deepEqual(m.final, [true]);
  assert.equal(m.lastSeq, 2);
  assert.equal(m.epoch, 'e1');
  assert.deepEqual(changes, [{ kind: 'block', block: 0 }, { kind: 'block', block: 0 }]);
});

test('stream events share the seq order with chunks', () => {
  const m = new DocumentMirror('s');
  m.applyChunk(chunk(1, 'append', 0, '<p>a</p>'));
  assert.equal(m.applyEvent({ type: 'tool_call', seq: 2, epoch: 'e2' }), true);
  assert.equal(m.applyEvent({ type: 'tool_call', seq: 2 }), false);
  assert.equal(m.applyEvent({ type: 'progress' }), true);  // no seq: always new
  assert.equal(m.applyChunk(chunk(2, 'text', 0, 'x')), false);
  assert.equal(m.lastSeq, 2);
  assert.equal(m.epoch, 'e2');
});

test('an op that does not fit marks the mirror desynced; stream_complete repairs it', () => {
  const m = new DocumentMirror('s');
  m.applyChunk(chunk(1, 'append', 0, '<p>a</p>'));
  assert.throws(() => m.applyChunk(chunk(2, 'text', 5, 'x')), RangeError);
  assert.equal(m.desynced, true);
  assert.equal(m.lastSeq, 2);  // the cursor moves anyway: the op is not asked for again
  const changes = [];
  m.onChange((c) => changes.push(c));
  assert.equal(m.applyComplete({ type: 'stream_complete', html: '<p>a</p>' }), true);
  assert.deepEqual(m.blocks, ['<p>a</p>']);
  assert.equal(m.desynced, false);
  assert.deepEqual(changes, [{ kind: 'reset' }]);
});

test('stream_complete resets only when the blocks differ from its html', () => {
  const m = new DocumentMirror('s');
  m.applyChunk(chunk(1, 'append', 0, '<p>a</p>'));
  m.applyChunk(chunk(2, 'append', 1, '<p>b</p>'));
  const done = { type: 'stream_complete', html: '<p>a</p><p>b</p>' };
  assert.equal(m.applyComplete(done), false);
  assert.equal(m.complete, done);
  assert.deepEqual(m.blocks, ['<p>a</p>', '<p>b</p>']);
  assert.equal(m.applyComplete({ type: 'stream_complete', html: '<p>a</p><p>c</p>' }), true);
  assert.deepEqual(m.blocks, ['<p>a</p><p>c</p>']);
});

test('snapshots replace the document; an older one is ignored', () => {
  const m = new DocumentMirror('s');
  m.applyChunk(chunk(3, 'append', 0, '<p>old</p>'));
  assert.equal(m.applySnapshot({ type: 'snapshot', seq: 2, blocks: ['<p>older</p>'] }), false);
  const blocks = ['<p>one</p>', '<p>two</p>'];
  assert.equal(m.applySnapshot({ type: 'snapshot', seq: 5, epoch: 'e9', blocks }), true);
  blocks.push('<p>mutated by the caller</p>');
  assert.deepEqual(m.blocks, ['<p>one</p>', '<p>two</p>']);  // a copy
  assert.deepEqual(m.final, [false, false]);
  assert.equal(m.lastSeq, 5);
  assert.equal(m.epoch, 'e9');
  assert.equal(m.applyChunk(chunk(5, 'append', 2, '<p>stale</p>')), false);
  assert.equal(m.applyChunk(chunk(6, 'append', 2, '<p>three</p>')), true);
  assert.equal(m.html, '<p>one</p><p>two</p><p>three</p>');
});

test('listeners: unsubscribe, and a failing listener does not stop the others', (t) => {
  const m = new DocumentMirror('s');
  t.mock.method(console, 'error', () => {});
  const seen = [];
  m.onChange(() => {
    throw new Error('boom');
  });
  const off = m.onChange(() => seen.push('b'));
  m.applyChunk(chunk(1, 'append', 0, '<p>a</p>'));
  off();
  m.applyChunk(chunk(2, 'text', 0, 'x'));
  assert.deepEqual(seen, ['b']);
  assert.equal(console.error.mock.callCount(), 2);
});
