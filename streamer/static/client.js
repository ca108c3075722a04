// @streamer/client: the browser client. A thin entry: the code is in src/ (see docs/client.md).
//
// Framework-agnostic ES module, no dependencies. The wire contract is docs/protocol.md
// (protocol version 2).
//
//   import { StreamClient } from '/static/client.js';
//   const client = new StreamClient({ transport: 'auto' });
//   client.on('chunk', (ev, { mirror }) => console.log(mirror.html));
//   await client.connect();
//   await client.start({ prompt: 'Hello', provider: 'echo' });

export { PROTOCOL_VERSION, StreamerError } from './src/protocol.js';
export { appendText, applyOp, escapeText, splitTrailer } from './src/ops.js';
export { DocumentMirror } from './src/mirror.js';
export { StreamClient } from './src/stream-client.js';

/** @typedef {import('./src/protocol.js').ServerEvent} ServerEvent */
/** @typedef {import('./src/protocol.js').ConnectionState} ConnectionState */
/** @typedef {import('./src/protocol.js').TransportChoice} TransportChoice */
/** @typedef {import('./src/protocol.js').TransportKind} TransportKind */
/** @typedef {import('./src/protocol.js').StartOptions} StartOptions */
/** @typedef {import('./src/ops.js').BlockOp} BlockOp */
/** @typedef {import('./src/mirror.js').MirrorChange} MirrorChange */
/** @typedef {import('./src/reconnect.js').ReconnectOptions} ReconnectOptions */
/** @typedef {import('./src/auth.js').TokenOption} TokenOption */
/** @typedef {import('./src/stream-client.js').StreamClientOptions} StreamClientOptions */
/** @typedef {import('./src/stream-client.js').EventContext} EventContext */
