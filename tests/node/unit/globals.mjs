// The client tests replace `fetch` and `WebSocket` on globalThis: each test file calls
// `restoreGlobalsAfterEach()` once to put the real ones back after every test.
import { afterEach } from 'node:test';

const realFetch = globalThis.fetch;
const realWebSocket = globalThis.WebSocket;

export function restoreGlobalsAfterEach() {
  afterEach(() => {
    globalThis.fetch = realFetch;
    if (realWebSocket === undefined) delete globalThis.WebSocket;
    else globalThis.WebSocket = realWebSocket;
  });
}
