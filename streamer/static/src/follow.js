// The one rule for showing a client's streams in an editor, shared by bindClientToEditor
// (editor-stream.js) and followClient (stream-content.js): a stream that starts (or first sends
// a chunk or a snapshot) and is not followed yet begins; the followed stream's
// `stream_complete` ends it. Queued streams begin when they start; finished ones never do.

/** @typedef {import('./mirror.js').DocumentMirror} DocumentMirror */

/**
 * @typedef {object} FollowHooks
 * @property {(mirror: DocumentMirror) => boolean} following whether this stream is the one
 *   shown now
 * @property {(mirror: DocumentMirror) => void} begin show this stream (it replaces any other)
 * @property {(event: import('./protocol.js').ServerEvent, mirror: DocumentMirror) => void} end
 *   the stream shown is complete
 */

/**
 * Follow every stream of `client`.
 * @param {{on: (type: string, fn: (...args: any[]) => void) => () => void}} client a StreamClient
 * @param {FollowHooks} hooks
 * @returns {() => void} stop following (unsubscribes; what is shown stays)
 */
export function followStreams(client, { following, begin, end }) {
  /** @param {DocumentMirror} mirror */
  const follow = (mirror) => {
    if (!following(mirror) && !mirror.complete) begin(mirror);
  };
  const offs = [
    client.on('stream_start', (ev, ctx) => {
      if (!ev.queued) follow(ctx.mirror);
    }),
    client.on('chunk', (ev, ctx) => follow(ctx.mirror)),
    client.on('snapshot', (ev, ctx) => follow(ctx.mirror)),
    client.on('stream_complete', (ev, ctx) => {
      if (following(ctx.mirror)) end(ev, ctx.mirror);
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/**
 * A placement given as a value or as a function asked at each stream's start.
 * @template T
 * @param {T | (() => T)} at
 * @returns {T}
 */
export function placementOf(at) {
  return typeof at === 'function' ? /** @type {() => T} */ (at)() : at;
}
