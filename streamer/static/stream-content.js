// @streamer/client/stream-content: the Tiptap extension StreamContent (one streaming answer
// while the user keeps editing, one undo step), its StreamSession, and followClient. A thin
// entry: the code is in src/stream-content.js and src/stream-session.js.
//
//   import { StreamContent, followClient } from '/static/stream-content.js';
//   const editor = new Editor({ extensions: [StarterKit, StreamContent.configure({ reveal: 'fade' })] });
//   followClient(editor, client);              // every stream of a StreamClient, or by hand:
//   editor.commands.startStream({ at: 'selection' });
//   editor.commands.insertStreamChunk(chunkEvent);   // one `chunk` event of the protocol
//   editor.commands.finishStream(streamCompleteEvent);

export { FORCE_META, StreamContent, followClient } from './src/stream-content.js';
export { StreamSession, streamContentKey } from './src/stream-session.js';

/** @typedef {import('./src/stream-session.js').StreamPlacement} StreamPlacement */
/** @typedef {import('./src/stream-session.js').StartStreamOptions} StartStreamOptions */
/** @typedef {import('./src/stream-session.js').StreamContentOptions} StreamContentOptions */
/** @typedef {import('./src/stream-content.js').StreamContentStorage} StreamContentStorage */
/** @typedef {import('./src/commands.js').StreamChunkEvent} StreamChunkEvent */
/** @typedef {import('./src/commands.js').StreamCompleteEvent} StreamCompleteEvent */
/** @typedef {import('./src/commands.js').StreamContentCommands} StreamContentCommands */
