// @streamer/client/editor-stream: EditorStream, the per-frame block → node binding of one
// stream in a Tiptap editor (usable alone: it locks the editor while it streams), and
// bindClientToEditor. A thin entry: the code is in src/editor-stream.js.
//
//   import { EditorStream, bindClientToEditor } from '/static/editor-stream.js';
//   const binding = bindClientToEditor(client, editor, { at: 'replace' });

export {
  EditorStream, STREAM_META, atRange, bindClientToEditor, parseBlock,
} from './src/editor-stream.js';

/** @typedef {import('./src/editor-stream.js').EditorStreamOptions} EditorStreamOptions */
/** @typedef {import('./src/editor-stream.js').RangeHooks} RangeHooks */
/** @typedef {import('./src/editor-stream.js').FrameInfo} FrameInfo */
