// An application's view of the package through its declarations (tests/test_static_types.py
// type-checks this file against streamer/static/types/ as installed under node_modules).
import { Editor } from '@tiptap/core';
import {
  DocumentMirror, PROTOCOL_VERSION, StreamClient, StreamerError, applyOp,
  type ServerEvent, type StreamClientOptions,
} from '@streamer/client';
import { EditorStream, atRange, bindClientToEditor } from '@streamer/client/editor-stream';
import {
  FORCE_META, StreamContent, StreamSession, followClient, type StreamPlacement,
} from '@streamer/client/stream-content';
import { createStreamStore, createUseStream, type StreamSnapshot } from '@streamer/client/react';

const options: StreamClientOptions = { transport: 'auto', connectTimeoutMs: 5000, restFallback: true };
const client = new StreamClient(options);
const version: 2 | number = PROTOCOL_VERSION;
client.on('chunk', (ev: ServerEvent, ctx: { mirror?: DocumentMirror }) => ctx.mirror?.html);
const started: Promise<void> = client.start({ prompt: 'Hi', provider: 'echo', pacing: { mode: 'smooth', cps: 200 } });
const transport: 'websocket' | 'sse' | 'rest' | null = client.transport;
const blocks: string[] = [];
applyOp(blocks, { op: 'append', block: 0, html: '<p>a</p>' });
const err = new StreamerError({ type: 'error', code: 'rate_limited' });
const code: string = err.code;
const status: number | undefined = err.status;
const withKey = new StreamClient({ token: 'stk_abc', sessionId: 'doc-00042' });
const refreshed = new StreamClient({ token: async () => 'jwt', csrfCookie: 'csrf' });
refreshed.token = () => null;
const sessionId: string | null = withKey.sessionId;
const kept = new StreamClient({ persist: 'chat', connectTimeoutMs: { websocket: 3000, sse: 8000 } });
const restored: { sessionId: string, streamId: string | null } | null = kept.restored;
const turns: Promise<{ role: string, markdown: string, status: 'complete' | 'streaming' }[]> =
  kept.messages();
kept.forget();

declare const editor: Editor;
const extension = StreamContent.configure({ reveal: 'fade', revealMs: 200 });
const ok: boolean = editor.commands.startStream({ at: 'selection', client });
editor.commands.insertStreamChunk({ seq: 1, op: 'text', block: 0, text: 'x' });
editor.commands.finishStream({ html: '<p>x</p>' });
editor.chain().pauseStream().resumeStream().run();
const session: StreamSession | null = editor.storage.streamContent.session;
const placement: StreamPlacement = { from: 1, to: 4 };
const follow = followClient(editor, client, { at: () => placement, onComplete: (ev, range) => range?.from });
follow.dispose();
const force: 'streamContentForce' = FORCE_META;

const binding = bindClientToEditor(client, editor, { at: 'replace', onAttach: (b: EditorStream) => b.range() });
const stream = new EditorStream(editor, { hooks: atRange('end'), lock: false });
const frames: number = stream.frames + (binding.current?.frames ?? 0);

declare const React: { useRef: Function; useEffect: Function; useSyncExternalStore: Function };
const useStream = createUseStream(React);
const snapshot: StreamSnapshot = useStream({ transport: 'sse' });
const html: string = snapshot.html + createStreamStore({ client, autoConnect: false }).getSnapshot().html;

// the declarations are not `any`: each of these must be an error
// @ts-expect-error: not a transport
new StreamClient({ transport: 'carrier-pigeon' });
// @ts-expect-error: a token is a string (or a function giving one)
new StreamClient({ token: 42 });
// @ts-expect-error: the session id may be null until the server has made it
const notNull: string = withKey.sessionId;
// @ts-expect-error: not a placement
editor.commands.startStream({ at: 'nowhere' });
// @ts-expect-error: no such command
editor.commands.startStreaming();
// @ts-expect-error: persist is a switch, a key or {key, storage}
new StreamClient({ persist: 42 });
// @ts-expect-error: no such transport to time
new StreamClient({ connectTimeoutMs: { carrier: 10 } });
// @ts-expect-error: a mirror's html is a string
const wrong: number = new DocumentMirror('s').html;

export { extension, ok, version, started, transport, code, session, force, frames, html, wrong,
  status, sessionId, notNull, restored, turns };
