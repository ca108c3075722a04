/**
 * Show every stream of a StreamClient in the editor through the extension's commands: a stream
 * that starts (or first sends a chunk or snapshot) is started at `at` (a value or a function
 * asked at each start) following the client's own mirror; `stream_complete` finishes it (one
 * undo step). The editor's pause/resume/skip/stop commands then go to this client.
 *
 * @param {Editor} editor an editor with {@link StreamContent}
 * @param {StreamClient} client
 * @param {{at?: StreamPlacement | (() => StreamPlacement),
 *          onStart?: (session: StreamSession) => void,
 *          onComplete?: (event: object, range: {from: number, to: number}|null) => void}} [options]
 * @returns {{readonly session: StreamSession|null, dispose: () => void}}
 */
export function followClient(editor: Editor, client: StreamClient, options?: {
    at?: StreamPlacement | (() => StreamPlacement);
    onStart?: (session: StreamSession) => void;
    onComplete?: (event: object, range: {
        from: number;
        to: number;
    } | null) => void;
}): {
    readonly session: StreamSession | null;
    dispose: () => void;
};
/** @typedef {import('@tiptap/core').Editor} Editor */
/** @typedef {import('./stream-session.js').StreamPlacement} StreamPlacement */
/** @typedef {import('./stream-session.js').StartStreamOptions} StartStreamOptions */
/** @typedef {import('./stream-session.js').StreamContentOptions} StreamContentOptions */
/** @typedef {import('./stream-client.js').StreamClient} StreamClient */
/** @typedef {import('./commands.js').StreamContentCommands} StreamContentCommands */
/** Set this meta on a transaction to let it change a streaming answer (the stream is dropped). */
export const FORCE_META: "streamContentForce";
/**
 * The extension (configure it with {@link StreamContentOptions}).
 * @type {import('@tiptap/core').Extension<StreamContentOptions, StreamContentStorage>}
 */
export const StreamContent: import("@tiptap/core").Extension<StreamContentOptions, StreamContentStorage>;
export type StreamContentStorage = {
    /**
     * the answer streaming now
     */
    session: StreamSession | null;
    active: boolean;
    paused: boolean;
    streamId: string | null;
    /**
     * where the last finished answer is
     */
    lastAnswer: {
        from: number;
        to: number;
    } | null;
    /**
     * the options in force (change them live here)
     */
    settings: StreamContentOptions;
};
export type Editor = import("@tiptap/core").Editor;
export type StreamPlacement = import("./stream-session.js").StreamPlacement;
export type StartStreamOptions = import("./stream-session.js").StartStreamOptions;
export type StreamContentOptions = import("./stream-session.js").StreamContentOptions;
export type StreamClient = import("./stream-client.js").StreamClient;
export type StreamContentCommands = import("./commands.js").StreamContentCommands;
import { StreamSession } from './stream-session.js';
