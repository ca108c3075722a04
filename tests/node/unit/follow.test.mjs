// followStreams (streamer/static/src/follow.js): the one rule both editor bindings follow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Emitter } from '../../../streamer/static/src/emitter.js';
import { followStreams, placementOf } from '../../../streamer/static/src/follow.js';
import { DocumentMirror } from '../../../streamer/static/src/mirror.js';

function setup() {
  const client = new Emitter();
  const log = [];
  let shown = null;
  const stop = followStreams(client, {
    following: (m) => m === shown,
    begin: (m) => { shown = m; log.push(['begin', m.streamId]); },
    end: (ev, m) => log.push(['end', m.streamId, ev.finish_reason]),
  });
  const send = (type, m, ev = {}) => client.emit(type, { type, stream_id: m.streamId, ...ev },
    { mirror: m });
  return { client, log, stop, send };
}

test('a stream begins once, on its start or its first chunk or snapshot, and ends', () => {
  const { log, send } = setup();
  const a = new DocumentMirror('a');
  const b = new DocumentMirror('b');
  send('stream_start', a);
  send('chunk', a);
  send('snapshot', a);
  send('chunk', b);  // another stream's chunk (a resume): it takes over
  send('stream_complete', a, { finish_reason: 'stop' });  // not the one shown: nothing
  send('stream_complete', b, { finish_reason: 'cancelled' });
  assert.deepEqual(log, [['begin', 'a'], ['begin', 'b'], ['end', 'b', 'cancelled']]);
});

test('queued streams wait for their real start; finished streams never begin', () => {
  const { log, send } = setup();
  const q = new DocumentMirror('q');
  send('stream_start', q, { queued: true, position: 1 });
  assert.deepEqual(log, []);
  send('stream_start', q);
  const done = new DocumentMirror('done');
  done.complete = { type: 'stream_complete' };
  send('snapshot', done);
  assert.deepEqual(log, [['begin', 'q']]);
});

test('stop unsubscribes', () => {
  const { log, send, stop } = setup();
  stop();
  send('stream_start', new DocumentMirror('a'));
  assert.deepEqual(log, []);
});

test('placementOf: a value, or a function asked each time', () => {
  let n = 0;
  assert.equal(placementOf('end'), 'end');
  assert.equal(placementOf(() => (n += 1)), 1);
  assert.equal(placementOf(() => (n += 1)), 2);
});
