// StreamClient's connection choices on fake sockets and a fake fetch: the connect timeout
// (a WebSocket stuck in CONNECTING falls back to SSE), and the REST fallback
// (`POST /api/sessions/{id}/complete`) when neither a WebSocket nor SSE can connect. The
// session is made first (`POST /api/sessions`, answered here as the server would).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamClient, StreamerError } from '../../../streamer/static/client.js';
import { restoreGlobalsAfterEach } from './globals.mjs';

const BASE = 'http://streamer.test';
restoreGlobalsAfterEach();

/** A WebSocket that never opens (a proxy holding the upgrade). */
class StuckSocket {
  static made = [];
  constructor(url) {
    this.url = url;
    this.closed = false;
    StuckSocket.made.push(this);
  }
  send() {
    throw new Error('not open');
  }
  close() {
    this.closed = true;
  }
}

/** A WebSocket refused at once (the server is down, or a proxy answers 404). */
class RefusedSocket {
  constructor() {
    setTimeout(() => this.onclose?.({ code: 1006, reason: '' }), 0);
  }
  close() {}
}

const json = (body, status = 200) => new Response(JSON.stringify(body),
  { status, headers: { 'Content-Type': 'application/json' } });

/** A body that never sends a byte (a proxy buffering the event stream), until aborted. */
function silentBody(signal) {
  return new ReadableStream({
    start(controller) {
      signal?.addEventListener('abort', () => controller.error(new Error('aborted')));
    },
  });
}

/** `POST /api/sessions` as the server answers it: the id asked for, else one of its own. */
const madeSession = (init) => {
  const asked = JSON.parse(init.body).session_id;
  return json({ session_id: asked || 'sess_server0001' }, 201);
};

/**
 * fetch routed by path (`POST /api/sessions` answered unless `routes` says otherwise);
 * records the requests. `routes[path](init)` gives the Response.
 */
function fakeFetch(routes) {
  const requests = [];
  routes = { '/api/sessions': madeSession, ...routes };
  globalThis.fetch = async (url, init = {}) => {
    const path = new URL(url).pathname;
    requests.push({ path, method: init.method || 'GET', body: init.body, headers: init.headers });
    const route = Object.entries(routes).find(([suffix]) => path.endsWith(suffix));
    if (!route) throw new TypeError('fetch failed');
    return route[1](init);
  };
  return requests;
}

const FINISHED = {
  session_id: 'sess-0001', stream_id: 'st_1', finish_reason: 'stop', html: '<p>Hi <em>there</em></p>\n',
  markdown: 'Hi *there*', usage: { output_chars: 8 }, message_id: 'st_1', duration_ms: 12,
};

function client(options = {}) {
  const c = new StreamClient({ baseUrl: BASE, sessionId: 'sess-0001', connectTimeoutMs: 60,
    reconnect: { initialDelayMs: 10_000 }, ...options });
  const states = [];
  c.on('connection', (s) => states.push(`${s.state}:${s.transport}`));
  const events = [];
  c.on('*', (ev, ctx) => events.push({ type: ev.type, html: ctx.mirror?.html }));
  return { c, states, events };
}

test('a WebSocket stuck in CONNECTING times out; SSE refused; the REST fallback connects', async () => {
  globalThis.WebSocket = StuckSocket;
  StuckSocket.made = [];
  const requests = fakeFetch({
    '/events': () => new Response('<html>bad gateway</html>', { status: 502 }),
    '/healthz': () => json({ ok: true, draining: false }),
    '/complete': () => json(FINISHED),
  });
  const { c, states, events } = client();
  const t0 = Date.now();
  await c.connect();
  assert.ok(Date.now() - t0 >= 55, 'waited for the connect timeout');
  assert.deepEqual(requests.filter((r) => r.path === '/api/sessions').map((r) => r.body),
    ['{"session_id":"sess-0001"}'], 'the session was made once, before the first connection');
  assert.deepEqual(states, ['connecting:websocket', 'connecting:sse', 'connecting:rest',
    'connected:rest']);
  assert.equal(StuckSocket.made.length, 1);
  assert.equal(StuckSocket.made[0].closed, true);
  assert.equal(c.transport, 'rest');

  await c.start({ prompt: 'Say hi', provider: 'echo', pacing: { mode: 'off' }, model: '' });
  const post = requests.find((r) => r.path.endsWith('/complete'));
  assert.equal(post.path, '/api/sessions/sess-0001/complete');
  assert.equal(post.method, 'POST');
  assert.deepEqual(JSON.parse(post.body),
    { type: 'start', prompt: 'Say hi', provider: 'echo', pacing: { mode: 'off' } });
  assert.deepEqual(events.map((e) => e.type), ['stream_start', 'snapshot', 'stream_complete']);
  assert.equal(events.at(-1).html, FINISHED.html);
  const m = c.streams.get('st_1');
  assert.equal(m.complete.finish_reason, 'stop');
  assert.equal(m.html, FINISHED.html);
  assert.equal(m.start.provider, 'echo');
  assert.equal(c.activeStreamId, null);
  c.close();
  assert.equal(c.state, 'disconnected');
});

test('over REST: controls other than start and stop are refused; stop abandons the wait', async () => {
  globalThis.WebSocket = RefusedSocket;
  let release;
  fakeFetch({
    '/events': ({ signal }) => new Response(silentBody(signal), { status: 200 }),
    '/healthz': () => json({ ok: true }),
    '/complete': ({ signal }) => new Promise((resolve, reject) => {
      release = () => resolve(json(FINISHED));
      signal.addEventListener('abort', () => reject(new Error('aborted')));
    }),
  });
  const { c, states, events } = client();
  await c.connect();
  assert.deepEqual(states, ['connecting:websocket', 'connecting:sse', 'connecting:rest',
    'connected:rest']);  // the SSE response never sent `connected`: timed out
  const errors = [];
  c.on('error', (ev) => errors.push(ev.code));
  await assert.rejects(c.pause(), (err) => err instanceof StreamerError &&
    err.code === 'unsupported_control' && err.event.control === 'pause');
  await assert.rejects(c.ping(), StreamerError);
  assert.deepEqual(errors, ['unsupported_control', 'unsupported_control']);

  const started = c.start({ prompt: 'long' });
  await new Promise((r) => setTimeout(r, 10));
  await c.stop();
  await started;  // resolves: nothing was applied
  release?.();
  assert.deepEqual(events.filter((e) => e.type !== 'error'), []);
  assert.equal(c.state, 'connected');
  c.close();
});

test("a failed answer over REST: the server's error, then stream_complete", async () => {
  globalThis.WebSocket = RefusedSocket;
  const failed = { ...FINISHED, finish_reason: 'error', html: '<p>Hi</p>\n',
    error: { code: 'provider_error', message: 'upstream died', retryable: false } };
  fakeFetch({
    '/events': () => json({ code: 'internal_error', message: 'proxy', retryable: true }, 503),
    '/healthz': () => json({ ok: true }),
    '/complete': () => json(failed),
  });
  const { c, events } = client();
  await c.connect();
  await c.start({ prompt: 'x' });
  assert.deepEqual(events.map((e) => e.type),
    ['stream_start', 'snapshot', 'error', 'stream_complete']);
  assert.equal(c.streams.get('st_1').complete.finish_reason, 'error');
  c.close();
});

test('a refused start over REST rejects with the server error; the connection stays', async () => {
  globalThis.WebSocket = RefusedSocket;
  fakeFetch({
    '/events': () => new Response('', { status: 502 }),
    '/healthz': () => json({ ok: true }),
    '/complete': () => json({ code: 'invalid_message', message: 'no prompt' }, 400),
  });
  const { c } = client();
  await c.connect();
  await assert.rejects(c.start({}), (err) => err.code === 'invalid_message');
  assert.equal(c.state, 'connected');
  c.close();
});

test('a network failure during a REST answer is a lost connection: retrying', async () => {
  globalThis.WebSocket = RefusedSocket;
  let healthy = true;
  fakeFetch({
    '/events': () => new Response('', { status: 502 }),
    '/healthz': () => json({ ok: healthy }),
    '/complete': () => {
      healthy = false;
      throw new TypeError('fetch failed');
    },
  });
  const { c, states } = client();
  await c.connect();
  await assert.rejects(c.start({ prompt: 'x' }), TypeError);
  assert.equal(c.state, 'retrying');
  assert.equal(states.at(-1), 'retrying:rest');
  c.close();
});

test('the session made, then WebSocket, SSE and the health check all fail: no reconnect', async () => {
  globalThis.WebSocket = RefusedSocket;
  fakeFetch({});  // every request but the session's fails as a refused connection does
  const { c, states } = client({ reconnect: false });
  await assert.rejects(c.connect(), /fetch failed/);
  assert.deepEqual(states, ['connecting:websocket', 'connecting:sse', 'connecting:rest',
    'error:rest']);
});

test('server down: the session cannot be made; no other transport is tried, backoff', async () => {
  let sockets = 0;
  globalThis.WebSocket = class extends RefusedSocket {
    constructor() {
      super();
      sockets += 1;
    }
  };
  const requests = fakeFetch({ '/api/sessions': () => {
    throw new TypeError('fetch failed');
  } });
  const { c, states } = client({ reconnect: { initialDelayMs: 5, jitter: 0, maxAttempts: 2 } });
  await assert.rejects(c.connect(), /fetch failed/);
  assert.deepEqual(states, ['connecting:websocket', 'retrying:websocket', 'connecting:websocket',
    'retrying:websocket', 'connecting:websocket', 'error:websocket']);
  assert.equal(requests.length, 3);
  assert.ok(requests.every((r) => r.path === '/api/sessions' && r.method === 'POST'));
  assert.equal(sockets, 0);
});

test('no REST fallback when SSE was chosen, when it is off, or when a WebSocket connected before', async () => {
  globalThis.WebSocket = RefusedSocket;
  fakeFetch({ '/events': () => new Response('', { status: 502 }), '/healthz': () => json({ ok: true }) });
  for (const options of [{ transport: 'sse' }, { restFallback: false }]) {
    const { c, states } = client(options);
    c.connect().catch(() => {});
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(states.at(-1).split(':')[0], 'retrying', JSON.stringify(options));
    assert.ok(!states.some((s) => s.endsWith(':rest')), JSON.stringify(states));
    c.close();
  }
});

test('connectTimeoutMs 0 waits for ever', async () => {
  globalThis.WebSocket = StuckSocket;
  fakeFetch({});
  const { c, states } = client({ connectTimeoutMs: 0 });
  c.connect().catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(states, ['connecting:websocket']);
  c.close();
});

test('closing the client abandons a REST answer: start rejects, no error event', async () => {
  globalThis.WebSocket = RefusedSocket;
  fakeFetch({
    '/events': () => new Response('', { status: 502 }),
    '/healthz': () => json({ ok: true }),
    '/complete': ({ signal }) => new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => reject(new Error('aborted')));
    }),
  });
  const { c, events } = client();
  await c.connect();
  const started = c.start({ prompt: 'x' });
  await new Promise((r) => setTimeout(r, 10));
  c.close();
  await assert.rejects(started, /client closed/);
  assert.deepEqual(events, []);
});
