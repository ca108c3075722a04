// StreamClient and the trust boundary (docs/security.md, "Wire"), on a fake WebSocket and a
// fake fetch: the session is made by `POST /api/sessions` before the first connection (the
// server's id, or the application's), the token goes out as the subprotocol
// `bearer.<token>` and as `Authorization: Bearer`, JSON POSTs say so, `unauthorized` and
// `forbidden` are final, and a session the server forgot is made anew when its id was the
// server's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamClient, StreamerError } from '../../../streamer/static/client.js';
import { restoreGlobalsAfterEach } from './globals.mjs';
import { fakeServer, json, tick } from './fake-server.mjs';

const BASE = 'http://streamer.test';
restoreGlobalsAfterEach();

function client(options = {}) {
  const c = new StreamClient({ baseUrl: BASE, connectTimeoutMs: 2000,
    reconnect: { initialDelayMs: 5, jitter: 0, maxAttempts: 3 }, ...options });
  const states = [];
  c.on('connection', (s) => states.push(`${s.state}:${s.transport}`));
  const sessions = [];
  c.on('session', (s) => sessions.push(s));
  return { c, states, sessions };
}

const sessionPosts = (server) => server.requests.filter((r) => r.path === '/api/sessions');

test('no sessionId: the server makes the session before the first connection', async () => {
  const server = fakeServer();
  const { c, sessions } = client();
  assert.equal(c.sessionId, null);
  await c.connect();
  const [post] = sessionPosts(server);
  assert.equal(post.method, 'POST');
  assert.equal(post.body, '{}');
  assert.equal(post.headers['Content-Type'], 'application/json');
  assert.equal(post.headers.Authorization, undefined);
  assert.equal(c.sessionId, 'sess_server0001');
  assert.deepEqual(sessions, [{ sessionId: 'sess_server0001', recreated: false }]);
  const [ws] = server.sockets;
  assert.equal(ws.url.pathname, '/ws/stream/sess_server0001');
  assert.deepEqual(ws.args, [], 'no credentials: no subprotocols offered');
  // a dropped connection reconnects to the same session, without making another
  c.dropConnection();
  await new Promise((r) => c.once('connected', r));
  assert.equal(sessionPosts(server).length, 1);
  assert.equal(server.sockets[1].url.pathname, '/ws/stream/sess_server0001');
  c.close();
});

test("the application's sessionId is sent, and the answer's id used", async () => {
  const server = fakeServer({ answerSession: (body) => json({ session_id: `${body.session_id}` }, 201) });
  server.sessions.add('doc-00042');
  const { c } = client({ sessionId: 'doc-00042', transport: 'sse' });
  await c.connect();
  assert.deepEqual(sessionPosts(server).map((r) => JSON.parse(r.body)), [{ session_id: 'doc-00042' }]);
  assert.equal(server.requests.at(-1).path, '/api/sessions/doc-00042/events');
  c.close();
});

test('a token: subprotocols streamer + bearer.<token>, Authorization on every request', async () => {
  const server = fakeServer();
  const { c } = client({ token: 'sk_live.abc-123' });
  await c.connect();
  assert.equal(sessionPosts(server)[0].headers.Authorization, 'Bearer sk_live.abc-123');
  assert.deepEqual(server.sockets[0].args, [['streamer', 'bearer.sk_live.abc-123']]);
  assert.ok(!server.sockets[0].url.search.includes('abc'), 'never in the URL');
  assert.deepEqual(server.sockets[0].sent, [], 'no auth message when the subprotocol carries it');
  c.close();

  const sse = client({ token: 'tok1', transport: 'sse' });
  await sse.c.connect();
  const get = server.requests.at(-1);
  assert.equal(get.headers.Authorization, 'Bearer tok1');
  assert.equal(get.headers.Accept, 'text/event-stream');
  await sse.c.pause();
  const control = server.requests.at(-1);
  assert.ok(control.path.endsWith('/control'));
  assert.equal(control.headers.Authorization, 'Bearer tok1');
  assert.equal(control.headers['Content-Type'], 'application/json');
  sse.c.close();
});

test('a token function is called at each connection attempt (a refreshed token)', async () => {
  const server = fakeServer();
  let calls = 0;
  const { c } = client({ token: async () => `tok${++calls}` });
  await c.connect();
  c.dropConnection();
  await new Promise((r) => c.once('connected', r));
  assert.deepEqual(server.sockets.map((ws) => ws.args[0][1]), ['bearer.tok1', 'bearer.tok2']);
  assert.equal(sessionPosts(server)[0].headers.Authorization, 'Bearer tok1');
  c.close();
});

test('a token a subprotocol cannot hold goes in the first message', async () => {
  const server = fakeServer();
  const { c } = client({ token: 'with space/and=' });
  await c.connect();
  assert.deepEqual(server.sockets[0].args, [['streamer']]);
  assert.deepEqual(server.sockets[0].sent[0], { type: 'auth', token: 'with space/and=' });
  c.close();
});

test('unauthorized when making the session is final: no reconnect, no other transport', async () => {
  const server = fakeServer({ answerSession: () => json({ type: 'error', code: 'unauthorized',
    message: 'missing credentials', retryable: false }, 401) });
  const { c, states } = client();
  await assert.rejects(c.connect(), (err) => err instanceof StreamerError &&
    err.code === 'unauthorized' && err.status === 401);
  await tick(50);
  assert.deepEqual(states, ['connecting:websocket', 'error:websocket']);
  assert.equal(sessionPosts(server).length, 1);
  assert.equal(server.sockets.length, 0);
  assert.equal(c.state, 'error');

  // a token, then connect() again: the session is made and the client connects
  server.answerSession = (body, request) => (request.headers.Authorization === 'Bearer good'
    ? json({ session_id: 'sess_ok000001' }, 201)
    : json({ code: 'unauthorized', message: 'no', retryable: false }, 401));
  server.sessions.add('sess_ok000001');
  c.token = 'good';
  await c.connect();
  assert.equal(c.sessionId, 'sess_ok000001');
  c.close();
});

test('a WebSocket refused as unauthorized is final: the error reaches the app', async () => {
  const server = fakeServer({ accept: (ws) => ws.refuse(1008, { code: 'unauthorized' }) });
  const { c, states } = client({ token: 'expired' });
  const errors = [];
  c.on('error', (ev) => errors.push(ev.code));
  let failed = null;
  c.on('connection', (s) => { if (s.state === 'error') failed = s.error; });
  await assert.rejects(c.connect(), (err) => err.code === 'unauthorized');
  await tick(50);
  assert.deepEqual(states, ['connecting:websocket', 'error:websocket'], 'no SSE, no retry');
  assert.equal(server.sockets.length, 1);
  assert.ok(failed instanceof StreamerError && failed.code === 'unauthorized');
  assert.deepEqual(errors, ['unauthorized']);
});

test('an event stream refused with 403 forbidden is final', async () => {
  fakeServer();
  let streams = 0;
  globalThis.fetch = ((inner) => async (url, init) => {
    if (!String(url).endsWith('/events')) return inner(url, init);
    streams += 1;
    return json({ code: 'forbidden', message: 'not yours', retryable: false }, 403);
  })(globalThis.fetch);
  const { c, states } = client({ transport: 'sse' });
  await assert.rejects(c.connect(), (err) => err.code === 'forbidden' && err.status === 403);
  await tick(50);
  assert.deepEqual(states, ['connecting:sse', 'error:sse']);
  assert.equal(streams, 1);
});

test("a forgotten session whose id was the server's is made anew, without a resume cursor", async () => {
  for (const transport of ['websocket', 'sse']) {
    const server = fakeServer();
    const { c, sessions } = client({ transport });
    await c.connect();
    c.handleEvent({ type: 'stream_start', stream_id: 'st_1' });
    c.handleEvent({ type: 'chunk', stream_id: 'st_1', seq: 1, block: 0, op: 'append', html: '<p>a' });
    server.sessions.clear();  // the server restarted without it
    c.dropConnection();
    await new Promise((r) => c.once('connected', r));
    assert.deepEqual(sessions, [{ sessionId: 'sess_server0001', recreated: false },
      { sessionId: 'sess_server0002', recreated: true }], transport);
    assert.equal(c.sessionId, 'sess_server0002');
    assert.equal(c.activeStreamId, null);
    if (transport === 'websocket') {
      assert.equal(server.sockets.at(-1).url.pathname, '/ws/stream/sess_server0002');
      assert.equal(server.sockets.at(-1).url.search, '', 'no cursor into the new session');
    } else {
      const get = server.requests.at(-1);
      assert.equal(get.path, '/api/sessions/sess_server0002/events');
      assert.equal(get.headers['Last-Event-ID'], undefined);
    }
    c.close();
  }
});

test("a forgotten session whose id was the application's is final; connect() makes it again", async () => {
  const server = fakeServer();
  const { c, states } = client({ sessionId: 'doc-00042' });
  await c.connect();
  server.sessions.clear();
  c.dropConnection();
  await assert.rejects(new Promise((resolve, reject) => {
    c.on('connection', (s) => (s.state === 'error' ? reject(s.error) : null));
  }), (err) => err.code === 'session_not_found');
  assert.equal(states.at(-1), 'error:websocket');
  assert.equal(sessionPosts(server).length, 1);
  await c.connect();
  assert.deepEqual(sessionPosts(server).map((r) => JSON.parse(r.body)),
    [{ session_id: 'doc-00042' }, { session_id: 'doc-00042' }]);
  assert.equal(c.state, 'connected');
  c.close();
});

test('with a CSRF cookie (cookie auth), POSTs echo it in X-CSRF-Token', async () => {
  const server = fakeServer();
  globalThis.document = { cookie: 'theme=dark; streamer_csrf=abc%20123; other=1' };
  try {
    const { c } = client({ transport: 'sse' });
    await c.connect();
    await c.pause();
    const posts = server.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(posts.map((r) => r.headers['X-CSRF-Token']), ['abc 123', 'abc 123']);
    const get = server.requests.find((r) => r.method === 'GET');
    assert.equal(get.headers['X-CSRF-Token'], undefined);
    c.close();
  } finally {
    delete globalThis.document;
  }
});
