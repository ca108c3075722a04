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
export function followStreams(client: {
    on: (type: string, fn: (...args: any[]) => void) => () => void;
}, { following, begin, end }: FollowHooks): () => void;
/**
 * A placement given as a value or as a function asked at each stream's start.
 * @template T
 * @param {T | (() => T)} at
 * @returns {T}
 */
export function placementOf<T>(at: T | (() => T)): T;
export type DocumentMirror = import("./mirror.js").DocumentMirror;
export type FollowHooks = {
    /**
     * whether this stream is the one
     * shown now
     */
    following: (mirror: DocumentMirror) => boolean;
    /**
     * show this stream (it replaces any other)
     */
    begin: (mirror: DocumentMirror) => void;
    /**
     *   the stream shown is complete
     */
    end: (event: import("./protocol.js").ServerEvent, mirror: DocumentMirror) => void;
};
