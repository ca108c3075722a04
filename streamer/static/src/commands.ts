// The editor commands of the StreamContent extension, declared on Tiptap's `Commands` so that
// `editor.commands.startStream(…)` type-checks and completes. A module augmentation cannot be
// written in JSDoc, so this one file is TypeScript; it holds types only (nothing runs), and
// `tsc` turns it into types/src/commands.d.ts with the other declarations.
import type { StartStreamOptions } from './stream-session.js';
import type { StreamContentStorage } from './stream-content.js';

/** A `chunk` (or `snapshot`) event of the protocol (docs/protocol.md). */
export interface StreamChunkEvent {
  type?: 'chunk' | 'snapshot';
  seq?: number;
  epoch?: string;
  op?: 'append' | 'replace' | 'text' | 'splice';
  block?: number;
  html?: string | null;
  text?: string | null;
  /** `splice` only: how many (ASCII) characters at the block's end `html` replaces. */
  trim?: number;
  final?: boolean;
  blocks?: string[];
}

/** A `stream_complete` event; its `html` is the exact final document. */
export interface StreamCompleteEvent {
  type?: 'stream_complete';
  html?: string;
  finish_reason?: string;
  [key: string]: unknown;
}

declare module '@tiptap/core' {
  interface Commands<ReturnType> {
    streamContent: {
      /** Start streaming an answer (at the selection by default). */
      startStream: (options?: StartStreamOptions) => ReturnType;
      /** Apply one `chunk` (or `snapshot`) event; repeated `seq`s are ignored. */
      insertStreamChunk: (event: StreamChunkEvent) => ReturnType;
      /** Apply everything, make the whole answer one undo step. */
      finishStream: (event?: StreamCompleteEvent) => ReturnType;
      /** Hold delivery (and ask the server to pause, with a client). */
      pauseStream: () => ReturnType;
      resumeStream: () => ReturnType;
      /** Show everything that arrived now (and ask the server to skip, with a client). */
      skipStream: () => ReturnType;
      /** Ask the server to stop (finishes on its stream_complete), or finish now. */
      stopStream: () => ReturnType;
      /** Discard the streaming answer: the document returns to what it was there. */
      clearStreamBuffer: () => ReturnType;
    };
  }
  interface Storage {
    streamContent: StreamContentStorage;
  }
}

/** The extension's commands (as `editor.commands` has them). */
export type StreamContentCommands = import('@tiptap/core').Commands<boolean>['streamContent'];
