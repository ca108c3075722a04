// The text/event-stream parser (streamer/static/src/sse.js), WHATWG HTML §9.2.6.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventStreamParser, readEventStream } from '../../../streamer/static/src/sse.js';

/** Parse `pieces` in order; what the handlers saw. */
function parse(pieces) {
  const out = { events: [], lines: 0, retries: [] };
  const parser = new EventStreamParser({
    onEvent: (e) => out.events.push(e),
    onLine: () => { out.lines += 1; },
    onRetry: (ms) => out.retries.push(ms),
  });
  for (const piece of pieces) parser.push(piece);
  return out;
}

const STREAM = '\ufeff: hello\n'
  + 'id: s:e:1\nevent: chunk\ndata: {"a":1}\n\n'
  + 'data: line one\r\ndata: line two\r\n\r\n'
  + 'retry: 2500\nretry: soon\n'
  + 'event: state\ndata\n\n'
  + 'id: bad\0id\ndata:no space\rdata:  two spaces\r\r'
  + 'event: ignored\n\n'
  + 'data: unfinished';

const EXPECTED = [
  { event: 'chunk', data: '{"a":1}', id: 's:e:1' },
  { event: 'message', data: 'line one\nline two', id: 's:e:1' },  // ids persist
  { event: 'state', data: '', id: 's:e:1' },                       // `data` alone: empty line
  { event: 'message', data: 'no space\n two spaces', id: 's:e:1' }, // an id with NUL is ignored
];

test('events, comments, retry, ids, CR/LF/CRLF, BOM', () => {
  const out = parse([STREAM]);
  assert.deepEqual(out.events, EXPECTED);
  assert.deepEqual(out.retries, [2500]);
  assert.equal(out.lines, STREAM.split(/\r\n|\r|\n/).length - 1);
});

test('the same events whatever the pieces: every split in two and in single characters', () => {
  for (let i = 0; i <= STREAM.length; i++) {
    const out = parse([STREAM.slice(0, i), STREAM.slice(i)]);
    assert.deepEqual(out.events, EXPECTED, `split at ${i}`);
  }
  assert.deepEqual(parse([...STREAM]).events, EXPECTED);
});

test('a CR at the end of a piece waits: CRLF split across pieces is one line end', () => {
  const out = parse(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
  assert.deepEqual(out.events, [{ event: 'message', data: 'a\nb', id: null }]);
  assert.equal(out.lines, 3);
});

test('a BOM only counts at the very start', () => {
  assert.deepEqual(parse(['', '\ufeffdata: x\n\n']).events,
    [{ event: 'message', data: 'x', id: null }]);
  assert.deepEqual(parse(['data: x\n\n\ufeffdata: y\n\n']).events,
    [{ event: 'message', data: 'x', id: null }]);  // '\ufeffdata' is an unknown field
});

test('readEventStream reads a Response body to its end', async () => {
  const body = new ReadableStream({
    start(controller) {
      const enc = new TextEncoder();
      for (const piece of ['event: a\ndata: 1', '\n\nda', 'ta: \u00e9\n\n']) {
        controller.enqueue(enc.encode(piece));
      }
      controller.close();
    },
  });
  const events = [];
  await readEventStream(new Response(body), { onEvent: (e) => events.push(e) });
  assert.deepEqual(events, [{ event: 'a', data: '1', id: null },
    { event: 'message', data: '\u00e9', id: null }]);
});
