// `useStream`: a React hook over StreamClient (client.js). This module never imports React:
// the application hands its React in, so React stays a dependency of the app only.
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
//
// For a Tiptap editor, pass `s.client` to followClient(editor, client) (stream-content.js).
// The snapshot changes at most once per animation frame (per macrotask where there is none).

import { StreamClient } from './client.js';

/**
 * @typedef {object} StreamSnapshot
 * @property {import('./client.js').StreamClient} client
 * @property {import('./client.js').ConnectionState} state
 * @property {'websocket'|'sse'|null} transport
 * @property {string|null} streamId the stream shown (the active one, else the last)
 * @property {string} html its document so far (exactly `stream_complete.html` at the end)
 * @property {string[]} blocks
 * @property {boolean} streaming
 * @property {object|null} progress the last `progress` event
 * @property {string|null} delivery the last delivery `state` (streaming, paused, …)
 * @property {object|null} complete the stream's `stream_complete` event, once over
 * @property {object|null} error the last `error` event
 * @property {object[]} queued `stream_start` events of streams waiting in the queue
 * @property {(opts: import('./client.js').StartOptions) => Promise<void>} start
 * @property {() => Promise<void>} pause
 * @property {() => Promise<void>} resume
 * @property {() => Promise<void>} skip
 * @property {() => Promise<void>} stop
 * @property {(cps: number) => Promise<void>} speed
 */

/**
 * A store over one StreamClient for `useSyncExternalStore` (usable without React too).
 * @param {import('./client.js').StreamClientOptions & {client?: StreamClient}} [options]
 */
export function createStreamStore(options = {}) {
  const client = options.client || new StreamClient(options);
  const listeners = new Set();
  let streamId = null;
  let extra = { progress: null, delivery: null, error: null, queued: [] };
  let snapshot = null;
  let pending = false;
  const schedule = typeof requestAnimationFrame === 'function'
    ? (fn) => requestAnimationFrame(fn) : (fn) => setTimeout(fn, 0);

  const build = () => {
    const m = streamId ? client.streams.get(streamId) : null;
    return {
      client,
      state: client.state,
      transport: client.transport,
      streamId,
      html: m ? m.html : '',
      blocks: m ? m.blocks.slice() : [],
      streaming: Boolean(m && !m.complete),
      complete: m?.complete ?? null,
      ...extra,
      start: (opts) => client.start(opts),
      pause: () => client.pause(),
      resume: () => client.resume(),
      skip: () => client.skip(),
      stop: () => client.stop(),
      speed: (cps) => client.speed(cps),
    };
  };
  const changed = () => {
    if (pending) return;
    pending = true;
    schedule(() => {
      pending = false;
      snapshot = build();
      for (const fn of [...listeners]) fn();
    });
  };

  const offs = [];
  let opened = 0;
  return {
    client,
    /** @param {() => void} fn @returns {() => void} */
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** @returns {StreamSnapshot} */
    getSnapshot() {
      if (snapshot === null) snapshot = build();
      return snapshot;
    },
    /** Listen and connect (reference-counted: React's strict mode mounts effects twice). */
    open() {
      opened += 1;
      if (opened > 1) return;
      offs.push(
        client.on('connection', changed),
        client.on('stream_start', (ev) => {
          if (ev.queued) extra = { ...extra, queued: [...extra.queued, ev] };
          else {
            streamId = ev.stream_id;
            extra = { ...extra, error: null, progress: null,
              queued: extra.queued.filter((q) => q.stream_id !== ev.stream_id) };
          }
          changed();
        }),
        client.on('chunk', (ev) => {
          streamId ??= ev.stream_id;
          changed();
        }),
        client.on('snapshot', changed),
        client.on('stream_complete', changed),
        client.on('progress', (ev) => {
          extra = { ...extra, progress: ev };
          changed();
        }),
        client.on('state', (ev) => {
          extra = { ...extra, delivery: ev.state };
          changed();
        }),
        client.on('error', (ev) => {
          extra = { ...extra, error: ev };
          changed();
        }),
      );
      if (options.autoConnect !== false) client.connect().catch(() => {});
    },
    /** Stop listening; closes the client when it was created here. */
    close() {
      opened -= 1;
      if (opened > 0) return;
      for (const off of offs.splice(0)) off();
      if (!options.client) client.close();
    },
  };
}

/**
 * Make the `useStream` hook from the application's React (needs `useRef`, `useEffect` and
 * `useSyncExternalStore`: React 18+).
 * @param {{useRef: Function, useEffect: Function, useSyncExternalStore: Function}} React
 * @returns {(options?: import('./client.js').StreamClientOptions & {client?: StreamClient,
 *   autoConnect?: boolean}) => StreamSnapshot}
 */
export function createUseStream(React) {
  const { useEffect, useRef, useSyncExternalStore } = React;
  return function useStream(options = {}) {
    const ref = useRef(null);
    if (ref.current === null) ref.current = createStreamStore(options);
    const store = ref.current;
    useEffect(() => {
      store.open();
      return () => store.close();
    }, [store]);
    return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  };
}
