// @streamer/client/react: `useStream`, a React hook over StreamClient. React is handed in by
// the application (`createUseStream(React)`): never a dependency. A thin entry: the code is in
// src/react.js.
//
//   import * as React from 'react';
//   import { createUseStream } from '@streamer/client/react';
//   export const useStream = createUseStream(React);
//
//   function Answer() {
//     const s = useStream({ transport: 'auto' });
//     return <>
//       <button disabled={s.state !== 'connected'}
//               onClick={() => s.start({ prompt: 'Hi', provider: 'echo' })}>Ask</button>
//       <button onClick={s.pause}>Pause</button>
//       <div dangerouslySetInnerHTML={{ __html: s.html }} />   {/* sanitized by the server */}
//       <small>{s.transport} · {s.state} · {s.progress?.eta_ms} ms left</small>
//     </>;
//   }

export { createStreamStore, createUseStream } from './src/react.js';

/** @typedef {import('./src/react.js').StreamSnapshot} StreamSnapshot */
/** @typedef {import('./src/react.js').StreamStore} StreamStore */
/** @typedef {import('./src/react.js').StreamStoreOptions} StreamStoreOptions */
