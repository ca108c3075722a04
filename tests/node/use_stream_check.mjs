// Renders a component using useStream (streamer/static/react.js) with the real React and
// react-test-renderer against a real server (SSE: Node 20 has fetch, not WebSocket), starts an
// echo stream and prints what the component rendered: argv[2] = server URL, argv[3] = prompt.
import * as React from 'react';
import TestRenderer from 'react-test-renderer';
import { createUseStream } from '../../streamer/static/react.js';

const { act } = React;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const [baseUrl, prompt] = process.argv.slice(2);
const useStream = createUseStream(React);
const renders = [];
let latest = null;

function Answer() {
  const s = useStream({ baseUrl, transport: 'sse', reconnect: false });
  latest = s;
  renders.push({ state: s.state, html: s.html, streaming: s.streaming });
  return React.createElement('div', { 'data-state': s.state }, s.html);
}

const until = async (cond, ms = 20000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out; last render ' + JSON.stringify(renders.at(-1)));
    await act(() => new Promise((r) => setTimeout(r, 20)));
  }
};

let root;
await act(async () => {
  root = TestRenderer.create(React.createElement(Answer));
});
await until(() => latest.state === 'connected');
await act(() => latest.start({ prompt, provider: 'echo', echo: { delta_chars: 3, interval_ms: 2 },
  pacing: { mode: 'fixed', cps: 2000 } }));
await until(() => latest.complete !== null);
const out = {
  transport: latest.transport,
  final: latest.html,
  completeHtml: latest.complete.html,
  rendered: root.toJSON().children?.join('') ?? '',
  streamingRenders: renders.filter((r) => r.streaming && r.html).length,
  distinctHtml: new Set(renders.map((r) => r.html)).size,
};
await act(async () => root.unmount());
out.closedState = latest.client.state;
console.log(JSON.stringify(out));
process.exit(0);
