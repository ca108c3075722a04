// The ops mirror (streamer/static/src/ops.js) against the rules of streamer/render/ops.py.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendText, applyOp, escapeText, splitTrailer } from '../../../streamer/static/src/ops.js';

test('escapeText escapes what html5ever escapes in text, and nothing else', () => {
  assert.equal(escapeText('a & b < c > d \u00a0 "q" \'s\''), 'a &amp; b &lt; c &gt; d &nbsp; "q" \'s\'');
  assert.equal(escapeText(''), '');
});

test('splitTrailer cuts before the closing tags and newlines at the end', () => {
  assert.deepEqual(splitTrailer('<ul>\n<li>a</li>\n</ul>\n'), ['<ul>\n<li>a', '</li>\n</ul>\n']);
  assert.deepEqual(splitTrailer('<p>x</p>'), ['<p>x', '</p>']);
  assert.deepEqual(splitTrailer('plain'), ['plain', '']);
  assert.deepEqual(splitTrailer(''), ['', '']);
  assert.deepEqual(splitTrailer('<br>'), ['<br>', '']);  // not a closing tag
  assert.deepEqual(splitTrailer('a</ x>'), ['a</ x>', '']);  // not a tag name
  assert.deepEqual(splitTrailer('a</>'), ['a</>', '']);
  assert.deepEqual(splitTrailer('</a1></b>\n'), ['', '</a1></b>\n']);
  assert.deepEqual(splitTrailer('x ></p>'), ['x >', '</p>']);
});

test('appendText inserts escaped text at the last text position', () => {
  assert.equal(appendText('<p><em>a</em></p>\n', ' & b'), '<p><em>a &amp; b</em></p>\n');
  assert.equal(appendText('', 'x'), 'x');
});

test('applyOp applies the four ops', () => {
  const blocks = [];
  applyOp(blocks, { op: 'append', block: 0, html: '<p>a</p>' });
  applyOp(blocks, { op: 'text', block: 0, text: 'b<' });
  assert.deepEqual(blocks, ['<p>ab&lt;</p>']);
  applyOp(blocks, { op: 'append', block: 1, html: '<ul>\n<li>x</li>\n</ul>\n' });
  applyOp(blocks, { op: 'splice', block: 1, html: '<li>y</li>\n</ul>\n', trim: 6 });
  assert.equal(blocks[1], '<ul>\n<li>x</li>\n<li>y</li>\n</ul>\n');
  applyOp(blocks, { op: 'replace', block: 0, html: '' });
  assert.deepEqual(blocks, ['', '<ul>\n<li>x</li>\n<li>y</li>\n</ul>\n']);
  applyOp(blocks, { op: 'splice', block: 0, html: '<p>z</p>', trim: 0 });
  assert.equal(blocks[0], '<p>z</p>');
});

test('applyOp refuses ops that do not fit, and changes nothing then', () => {
  const blocks = ['<p>a</p>'];
  const bad = [
    { op: 'append', block: 0, html: '<p>b</p>' },     // not at the end
    { op: 'append', block: 1, html: null },
    { op: 'replace', block: 1, html: '<p>b</p>' },
    { op: 'replace', block: -1, html: '<p>b</p>' },
    { op: 'text', block: 0, text: null },
    { op: 'text', block: 2, text: 'x' },
    { op: 'splice', block: 0, html: 'x', trim: 9 },   // more than the block
    { op: 'splice', block: 0, html: 'x', trim: -1 },
    { op: 'splice', block: 0, html: 'x', trim: 1.5 },
    { op: 'splice', block: 0, html: 'x' },
    { op: 'delete', block: 0 },
  ];
  for (const op of bad) assert.throws(() => applyOp(blocks, op), RangeError, JSON.stringify(op));
  assert.deepEqual(blocks, ['<p>a</p>']);
});
