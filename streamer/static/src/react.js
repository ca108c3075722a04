// `useStream`: a React hook over StreamClient. This module never imports React: the
// application hands its React in, so React stays a dependency of the app only.
//
// For a Tiptap editor, pass `s.client` to followClient(editor, client) (stream-content.js).
// The snapshot changes at most once per frame (frame.js: an animation frame, or 16 ms where
// there is none).

import { FrameTask } from './frame.js';
import { StreamClient } from './stream-client.js';

/** @typedef {import('./stream-client.js').StreamClientOptions} StreamClientOptions */
/** @typedef {import('./protocol.js').StartOptions} StartOptions */
/** @typedef {import('./protocol.js').ServerEvent} ServerEvent */

/**
 * @typedef {object} StreamSnapshot
 * @property {StreamClient} client
 * @property {import('./protocol.js').ConnectionState} state
 * @property {import('./protocol.js').TransportKind|null} transport
 * @property {string|null} streamId the stream shown (the active one, else the last)
 * @property {string} html its document so far (exactly `stream_complete.html` at the end)
 * @property {string[]} blocks
 * @property {boolean} streaming
 * @property {ServerEvent|null} progress the last `progress` event
 * @property {string|null} delivery the last delivery `state` (streaming, paused, …)
 * @property {ServerEvent|null} complete the stream's `stream_complete` event, once over
 * @property {ServerEvent|null} error the last `error` event
 * @property {ServerEvent[]} queued `stream_start` events of streams waiting in the queue
 * @property {(opts: StartOptions) => Promise<void>} start
 * @property {() => Promise<void>} pause
 * @property {() => Promise<void>} resume
 * @property {() => Promise<void>} skip
 * @property {() => Promise<void>} stop
 * @property {(cps: number) => Promise<void>} speed
 */

/**
 * @typedef {StreamClientOptions & {client?: StreamClient, autoConnect?: boolean}} StreamStoreOptions
 *   `client`: use this client (it is then not closed here); `autoConnect` (default true):
 *   connect when the store opens
 */

/**
 * @typedef {object} StreamStore
 * @property {StreamClient} client
 * @property {(fn: () => void) => () => void} subscribe
 * @property {() => StreamSnapshot} getSnapshot
 * @property {() => void} open listen and connect (reference-counted: React's strict mode
 *   mounts effects twice)
 * @property {() => void} close stop listening; closes the client when it was created here
 */

/**
 * What the store keeps besides the client's mirrors: the stream shown and the last events.
 * @typedef {{streamId: string|null, progress: ServerEvent|null, delivery: string|null,
 *            error: ServerEvent|null, queued: ServerEvent[]}} StoreView
 */

/**
 * The snapshot of `client` as `view` sees it.
 * @param {StreamClient} client
 * @param {StoreView} view
 * @returns {StreamSnapshot}
 */
function snapshotOf(client, view) {
  const m = view.streamId ? client.streams.get(view.streamId) : null;
  return {
    ...view,
    client,
    state: client.state,
    transport: client.transport,
    html: m ? m.html : '',
    blocks: m ? m.blocks.slice() : [],
    streaming: Boolean(m && !m.complete),
    complete: m?.complete ?? null,
    start: (opts) => client.start(opts),
    pause: () => client.pause(),
    resume: () => client.resume(),
    skip: () => client.skip(),
    stop: () => client.stop(),
    speed: (cps) => client.speed(cps),
  };
}

/**
 * Keep `view` up to date from the client's events; `changed()` after each.
 * @param {StreamClient} client
 * @param {StoreView} view
 * @param {() => void} changed
 * @returns {(() => void)[]} the unsubscribe functions
 */
function follow(client, view, changed) {
  /** @type {(fn: (ev: ServerEvent) => void) => (ev: ServerEvent) => void} */
  const then = (fn) => (ev) => {
    fn(ev);
    changed();
  };
  return [
    client.on('connection', changed),
    client.on('stream_start', then((ev) => {
      if (ev.queued) {
        view.queued = [...view.queued, ev];
        return;
      }
      view.streamId = ev.stream_id ?? null;
      view.error = view.progress = null;
      view.queued = view.queued.filter((q) => q.stream_id !== ev.stream_id);
    })),
    client.on('chunk', then((ev) => {
      view.streamId ??= ev.stream_id ?? null;
    })),
    client.on('snapshot', changed),
    client.on('stream_complete', changed),
    client.on('progress', then((ev) => {
      view.progress = ev;
    })),
    client.on('state', then((ev) => {
      view.delivery = ev.state;
    })),
    client.on('error', then((ev) => {
      view.error = ev;
    })),
  ];
}

/**
 * A store over one StreamClient for `useSyncExternalStore` (usable without React too).
 * @param {StreamStoreOptions} [options]
 * @returns {StreamStore}
 */
export function createStreamStore(options = {}) {
  const client = options.client || new StreamClient(options);
  /** @type {Set<() => void>} */
  const listeners = new Set();
  /** @type {StoreView} */
  const view = { streamId: null, progress: null, delivery: null, error: null, queued: [] };
  /** @type {StreamSnapshot|null} */
  let snapshot = null;
  const frame = new FrameTask(() => {
    snapshot = snapshotOf(client, view);
    for (const fn of [...listeners]) fn();
  });
  /** @type {(() => void)[]} */
  let offs = [];
  let opened = 0;
  return {
    client,
    subscribe(fn) {
      listeners.add(fn);
      return () => {
        listeners.delete(fn);
      };
    },
    getSnapshot() {
      if (snapshot === null) snapshot = snapshotOf(client, view);
      return snapshot;
    },
    open() {
      opened += 1;
      if (opened > 1) return;
      offs = follow(client, view, () => frame.schedule());
      if (options.autoConnect !== false) client.connect().catch(() => {});
    },
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
 * @returns {(options?: StreamStoreOptions) => StreamSnapshot}
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
