// Exercises the browser client's DocumentMirror in Node (the module imports without a DOM):
// prints what a replayed chunk, a replayed tool_call and a snapshot do to it.
import { DocumentMirror, applyOp } from '../../streamer/static/client.js';

const m = new DocumentMirror('s_1');
const out = {};
out.first = m.applyChunk({ seq: 1, epoch: 'e1', op: 'append', block: 0, html: '<p>Hel</p>' });
out.text = m.applyChunk({ seq: 2, epoch: 'e1', op: 'text', block: 0, text: 'lo & <you>' });
out.replayedChunk = m.applyChunk({ seq: 2, op: 'text', block: 0, text: 'lo & <you>' });
out.tool = m.applyEvent({ type: 'tool_call', seq: 3, epoch: 'e1' });
out.replayedTool = m.applyEvent({ type: 'tool_call', seq: 3, epoch: 'e1' });
out.afterTool = m.applyChunk({ seq: 3, op: 'text', block: 0, text: '!' });
out.html = m.html;
out.lastSeq = m.lastSeq;
out.epoch = m.epoch;
out.snapshot = m.applySnapshot({ seq: 7, epoch: 'e2', blocks: ['<p>new</p>', '<h2>x</h2>'] });
out.afterSnapshot = { html: m.html, lastSeq: m.lastSeq, epoch: m.epoch };
const blocks = [];
applyOp(blocks, { op: 'append', block: 0, html: '<ul><li>a</li></ul>' });
applyOp(blocks, { op: 'text', block: 0, text: 'b' });
out.listAppend = blocks[0];
console.log(JSON.stringify(out));
