// Types of stream-content.js (the Tiptap extension StreamContent) and its editor commands.
import type { Editor, Extension } from '@tiptap/core';
import type { DocumentMirror, StreamClient } from './client.js';

/** Where an answer goes: the selection (a non-empty one is replaced), the end, the whole
 *  document, a position, or a range to replace. */
export type StreamPlacement = 'selection' | 'end' | 'replace' | number | { from: number; to: number };

export interface StartStreamOptions {
  at?: StreamPlacement;
  /** Follow this mirror (e.g. a StreamClient's) instead of one fed by insertStreamChunk. */
  mirror?: DocumentMirror;
  streamId?: string;
  /** Where pauseStream/resumeStream/skipStream/stopStream send their control messages. */
  client?: StreamClient;
}

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

export interface StreamContentOptions {
  reveal: 'none' | 'fade' | 'typewriter';
  revealMs: number;
  caret: boolean;
  protect: boolean;
  parseOptions: Record<string, unknown>;
  client: StreamClient | null;
  onFrame?: (info: { blocks: number; changedFrom: number; nodes: number; session: StreamSession }) => void;
  onFinish?: (info: { from: number; to: number; streamId: string | null; event: StreamCompleteEvent | null }) => void;
}

export interface StreamSession {
  readonly editor: Editor;
  readonly mirror: DocumentMirror | null;
  readonly streamId: string | null;
  readonly frames: number;
  held: boolean;
  range(): { from: number; to: number };
}

export interface StreamContentStorage {
  session: StreamSession | null;
  active: boolean;
  paused: boolean;
  streamId: string | null;
  lastAnswer: { from: number; to: number } | null;
  /** The options in force, read at every frame: change e.g. `settings.reveal` live. */
  settings: StreamContentOptions;
}

export declare const StreamContent: Extension<StreamContentOptions, StreamContentStorage>;
export declare const streamContentKey: unknown;
export declare const FORCE_META: 'streamContentForce';

export declare function followClient(
  editor: Editor,
  client: StreamClient,
  options?: {
    at?: StreamPlacement | (() => StreamPlacement);
    onStart?: (session: StreamSession) => void;
    onComplete?: (event: StreamCompleteEvent, range: { from: number; to: number } | null) => void;
  },
): { readonly session: StreamSession | null; dispose(): void };

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
