// The client across bad networks and page loads, on a fake server (fake-server.mjs): the
// connect timeout per transport, a reconnect at once when the network comes back (`online`)
// or the page becomes visible again, and what a tab keeps (`persist`): the session and the
// unfinished answer's cursor with its blocks, taken over by the next client exactly.
import assert from 'node:assert/strict';
import { test, afterEach } from 'node:test';
import { StreamClient } from '../../../streamer/static/client.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, connectTimeoutOf } from '../../../streamer/static/src/link.js';
import { restoreGlobalsAfterEach } from './globals.mjs';
import { fakeServer, tick } from './fake-server.mjs';

const BASE = 'http://streamer.test';
restoreGlobalsAfterEach();

/** window and document as event targets (Node has neither); removed after each test. */
function fakePage() {
  const win = new EventTarget();
  globalThis.addEventListener = win.addEventListener.bind(win);
  globalThis.removeEventListener = win.removeEventListener.bind(win);
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  globalThis.document = doc;
  return { win, doc };
}
afterEach(() => {
  delete globalThis.addEventListener;
  delete globalThis.removeEventListener;
  delete globalThis.document;
});

/** A Storage over a Map; `limit`: setItem throws past that many characters (the quota). */
function memoryStorage(limit = Infinity) {
  const map = new Map();
  return {
    map,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => {
      if (String(v).length > limit) throw new Error('QuotaExceededError');
      map.set(k, String(v));
    },
    removeItem: (k) => map.delete(k),
  };
}

function client(options = {}) {
  const c = new StreamClient({ baseUrl: BASE, connectTimeoutMs: 2000,
    reconnect: { initialDelayMs: 60_000, jitter: 0 }, ...options });
  const states = [];
  c.on('connection', (s) => states.push(`${s.state}:${s.transport}`));
  return { c, states };
}

const until = async (check, ms = 2000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await tick(2);
  }
};

const SID = 'sess_server0001';
const ids = { session_id: SID, stream_id: 'st_1', epoch: 'ep1' };

test('the connect timeout: one for all transports, or one per transport', () => {
  assert.equal(DEFAULT_CONNECT_TIMEOUT_MS, 5000);
  assert.equal(connectTimeoutOf(undefined, 'websocket'), 5000);
  assert.equal(connectTimeoutOf(300, 'sse'), 300);
  assert.equal(connectTimeoutOf(0, 'rest'), 0);
  assert.equal(connectTimeoutOf({ websocket: 100 }, 'websocket'), 100);
  assert.equal(connectTimeoutOf({ websocket: 100 }, 'sse'), 5000);
  assert.equal(connectTimeoutOf({ sse: -1 }, 'sse'), 5000);
});

test("a WebSocket stuck connecting gives up after the WebSocket's own timeout", async () => {
  fakeServer({ accept: () => {} }); // every upgrade held for ever
  const { c, states } = client({ connectTimeoutMs: { websocket: 60, sse: 5000 } });
  const t0 = Date.now();
  await c.connect();
  const waited = Date.now() - t0;
  assert.ok(waited >= 55 && waited < 1000, `waited ${waited} ms`);
  assert.deepEqual(states, ['connecting:websocket', 'connecting:sse', 'connected:sse']);
  c.close();
});

test('`online` reconnects at once instead of waiting out the backoff', async () => {
  const { win } = fakePage();
  const server = fakeServer();
  const { c, states } = client();
  await c.connect();
  win.dispatchEvent(new Event('online')); // connected and lively: nothing to do
  await tick(20);
  assert.equal(server.sockets.length, 1);
  c.dropConnection();
  assert.equal(c.state, 'retrying'); // for 60 s
  const t0 = Date.now();
  win.dispatchEvent(new Event('online'));
  await until(() => c.state === 'connected');
  assert.ok(Date.now() - t0 < 500);
  assert.equal(server.sockets.length, 2);
  assert.deepEqual(states.slice(-3), ['retrying:websocket', 'connecting:websocket',
    'connected:websocket']);
  c.close();
  c.dropConnection();
  win.dispatchEvent(new Event('online')); // closed: no listener left
  await tick(20);
  assert.equal(server.sockets.length, 2);
  assert.equal(c.state, 'disconnected');
});

test('a message sent while connecting or retrying waits for the connection, then goes', async () => {
  const { win } = fakePage();
  const server = fakeServer();
  const { c } = client();
  await assert.rejects(c.stop(), /not connected \(disconnected\)/); // never opened
  const connecting = c.connect();
  const started = c.start({ prompt: 'hi', provider: 'echo' }); // right after page load
  assert.equal(c.state, 'connecting');
  await connecting;
  await started;
  assert.deepEqual(server.sockets[0].sent.map((m) => m.type), ['start']);
  c.dropConnection();
  assert.equal(c.state, 'retrying'); // for 60 s
  let stopped = false;
  const stop = c.stop().then(() => { stopped = true; });
  await tick(20);
  assert.equal(stopped, false); // waits, not rejected, not lost
  win.dispatchEvent(new Event('online'));
  await stop;
  assert.deepEqual(server.sockets[1].sent.map((m) => m.type), ['stop']);
  c.dropConnection();
  const abandoned = c.pause();
  c.close(); // a message still waiting when the client closes is rejected, not kept
  await assert.rejects(abandoned, /client closed/);
});

test('the page visible again: a waiting reconnect goes now; a silent connection is remade', async () => {
  const { doc } = fakePage();
  const server = fakeServer();
  const { c } = client();
  await c.connect();
  c.dropConnection();
  doc.visibilityState = 'hidden';
  doc.dispatchEvent(new Event('visibilitychange'));
  await tick(20);
  assert.equal(c.state, 'retrying');
  doc.visibilityState = 'visible';
  doc.dispatchEvent(new Event('visibilitychange'));
  await until(() => c.state === 'connected');
  assert.equal(server.sockets.length, 2);
  // a laptop that slept: nothing arrived for longer than a heartbeat (15 s here)
  c._link._lastActivity = Date.now() - 20_000;
  doc.dispatchEvent(new Event('visibilitychange'));
  await until(() => server.sockets.length === 3 && c.state === 'connected');
  assert.ok(server.sockets[1].closedWith, 'the silent socket was given up');
  c.close();
});

/** One client streams two chunks of st_1 and closes; what the tab kept is returned. */
async function streamPartly(storage, server) {
  const { c } = client({ persist: { storage } });
  assert.equal(c.restored, null);
  await c.connect();
  const ws = server.sockets.at(-1);
  ws.emit({ type: 'stream_start', ...ids, provider: 'echo' });
  ws.emit({ type: 'chunk', ...ids, seq: 1, op: 'append', block: 0, html: '<p>Hel</p>', final: false });
  ws.emit({ type: 'chunk', ...ids, seq: 2, op: 'text', block: 0, text: 'lo &', final: false });
  c.close(); // as a page unloads: what is pending is written
  return JSON.parse(storage.getItem('streamer:client'));
}

test('persist: a new client takes over the session and resumes the answer after its seq', async () => {
  const server = fakeServer();
  const storage = memoryStorage();
  const kept = await streamPartly(storage, server);
  assert.deepEqual(kept.stream, { streamId: 'st_1', epoch: 'ep1', lastSeq: 2,
    blocks: ['<p>Hello &amp;</p>'] });
  assert.equal(kept.sessionId, SID);

  const { c } = client({ persist: { storage } });
  assert.deepEqual(c.restored, { sessionId: SID, streamId: 'st_1' });
  assert.equal(c.sessionId, SID);
  assert.equal(c.streams.get('st_1').html, '<p>Hello &amp;</p>');
  const posts = server.requests.filter((r) => r.path === '/api/sessions').length;
  await c.connect();
  assert.equal(server.requests.filter((r) => r.path === '/api/sessions').length, posts,
    'a kept session of the server is not made again');
  const url = server.sockets.at(-1).url;
  assert.deepEqual([url.searchParams.get('stream_id'), url.searchParams.get('epoch'),
    url.searchParams.get('last_seq')], ['st_1', 'ep1', '2']);
  const ws = server.sockets.at(-1);
  ws.emit({ type: 'stream_start', ...ids, resumed: true });
  ws.emit({ type: 'chunk', ...ids, seq: 2, op: 'text', block: 0, text: 'lo &', final: false });
  ws.emit({ type: 'chunk', ...ids, seq: 3, op: 'text', block: 0, text: '!', final: true });
  assert.equal(c.streams.get('st_1').html, '<p>Hello &amp;!</p>', 'seq 2 was not applied twice');
  ws.emit({ type: 'stream_complete', ...ids, finish_reason: 'stop', html: '<p>Hello &amp;!</p>' });
  assert.equal(JSON.parse(storage.getItem('streamer:client')).stream, null,
    'a finished answer is not resumed again');

  server.messages = [{ message_id: 'm1', role: 'user', markdown: 'Hello &!' }];
  assert.deepEqual(await c.messages(), server.messages);
  assert.equal(server.requests.at(-1).path, `/api/sessions/${SID}/messages`);
  c.forget();
  assert.equal(storage.getItem('streamer:client'), null);
  c.close();
});

test('persist: a kept session the server refuses (another identity) is made anew', async () => {
  const server = fakeServer();
  const storage = memoryStorage();
  await streamPartly(storage, server);
  server.sessions.delete(SID);
  server.open = ((open) => (ws) => (ws.url.pathname.endsWith(SID)
    ? ws.refuse(1008, { code: 'forbidden' }) : open(ws)))(server.open);
  const { c, states } = client({ persist: { storage } });
  const sessions = [];
  c.on('session', (s) => sessions.push(s));
  await c.connect();
  assert.deepEqual(sessions, [{ sessionId: 'sess_server0002', recreated: true }]);
  assert.equal(server.sockets.at(-1).url.searchParams.get('stream_id'), null);
  assert.equal(states.at(-1), 'connected:websocket');
  assert.equal(JSON.parse(storage.getItem('streamer:client')).sessionId, 'sess_server0002');
  c.close();
});

test("persist: the application's own id is claimed again and keeps its cursor", async () => {
  const server = fakeServer();
  const storage = memoryStorage();
  const { c: first } = client({ persist: { storage }, sessionId: 'chat-0001' });
  await first.connect();
  const ws = server.sockets.at(-1);
  const chat = { ...ids, session_id: 'chat-0001' };
  ws.emit({ type: 'chunk', ...chat, seq: 4, op: 'append', block: 0, html: '<p>a</p>' });
  first.close();
  const { c: other } = client({ persist: { storage }, sessionId: 'chat-0002' });
  assert.equal(other.restored, null, 'another chosen id: nothing taken over');
  const { c } = client({ persist: { storage }, sessionId: 'chat-0001' });
  await c.connect();
  assert.equal(server.sockets.at(-1).url.searchParams.get('last_seq'), '4');
  c.close();
});

test('persist: over the quota, the cursor is kept without the blocks (replay from seq 0)', async () => {
  const server = fakeServer();
  const storage = memoryStorage(200);
  const { c } = client({ persist: { storage } });
  await c.connect();
  const ws = server.sockets.at(-1);
  ws.emit({ type: 'chunk', ...ids, seq: 1, op: 'append', block: 0, html: `<p>${'x'.repeat(300)}</p>` });
  c.close();
  assert.deepEqual(JSON.parse(storage.getItem('streamer:client')).stream,
    { streamId: 'st_1', epoch: 'ep1', lastSeq: 0, blocks: [] });
  storage.setItem('streamer:client', '{not json');
  assert.equal(client({ persist: { storage } }).c.restored, null);
});

test('without persist nothing is stored; a kept stream the server lost is not resumed again', async () => {
  const server = fakeServer();
  const storage = memoryStorage();
  const { c } = client({ persist: false });
  await c.connect();
  assert.equal(storage.map.size, 0);
  c.close();
  await streamPartly(storage, server);
  const { c: next } = client({ persist: { storage } });
  await next.connect();
  server.sockets.at(-1).emit({ type: 'error', code: 'stream_not_found', message: 'gone',
    retryable: false, ...ids });
  assert.equal(next.activeStreamId, null);
  next.close();
  assert.equal(JSON.parse(storage.getItem('streamer:client')).stream, null);
});
