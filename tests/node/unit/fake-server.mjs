// A streamer server behind a fake `fetch` and a fake `WebSocket` on globalThis, for the client's
// unit tests (session.test.mjs, durability.test.mjs): it makes sessions
// (`POST /api/sessions`), opens sockets and event streams with `connected`, refuses unknown
// sessions as the server does, and records every request and socket.

export const json = (body, status = 200) => new Response(JSON.stringify(body),
  { status, headers: { 'Content-Type': 'application/json' } });
export const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

/**
 * A server behind fake fetch and WebSocket. `sessions` is what it knows; `accept(ws)` is
 * what it does with each socket (default: open it and send `connected`).
 */
export function fakeServer({ answerSession, accept } = {}) {
  const server = { sessions: new Set(), requests: [], sockets: [], made: 0 };
  server.answerSession = answerSession || ((body) => {
    const id = body.session_id || `sess_server${String(++server.made).padStart(4, '0')}`;
    const created = !server.sessions.has(id);
    server.sessions.add(id);
    return json({ session_id: id, ws_url: `/ws/stream/${id}` }, created ? 201 : 200);
  });
  globalThis.fetch = async (url, init = {}) => {
    const u = new URL(url);
    const request = { path: u.pathname, method: init.method || 'GET',
      headers: { ...(init.headers || {}) }, body: init.body };
    server.requests.push(request);
    if (u.pathname === '/api/sessions' && request.method === 'POST') {
      return server.answerSession(JSON.parse(init.body), request);
    }
    const events = u.pathname.match(/^\/api\/sessions\/([^/]+)\/events$/);
    if (events && !server.sessions.has(decodeURIComponent(events[1]))) {
      return json({ type: 'error', code: 'session_not_found', message: 'no such session',
        retryable: false }, 404);
    }
    if (events) return sseResponse(init.signal, decodeURIComponent(events[1]));
    if (u.pathname.endsWith('/control')) return json({ ok: true }, 202);
    if (u.pathname.endsWith('/messages')) {
      return json({ session_id: u.pathname.split('/')[3], messages: server.messages || [] });
    }
    throw new TypeError('fetch failed');
  };
  globalThis.WebSocket = class FakeSocket {
    constructor(url, ...rest) {
      this.url = new URL(url);
      this.args = rest;
      this.sent = [];
      server.sockets.push(this);
      setTimeout(() => (accept || server.open)(this), 0);
    }
    send(data) {
      this.sent.push(JSON.parse(data));
    }
    close(code = 1000, reason = '') {
      if (this.closedWith) return;
      this.closedWith = code;
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
    emit(ev) {
      this.onmessage?.({ data: JSON.stringify(ev) });
    }
    /** The server closes it (after an `error` event, as it refuses). */
    refuse(code, ev) {
      this.onopen?.();
      if (ev) this.emit({ type: 'error', retryable: false, message: code, ...ev });
      this.closedWith = 1008;
      this.onclose?.({ code: 1008, reason: ev?.code || '' });
    }
  };
  server.open = (ws) => {
    const sid = decodeURIComponent(ws.url.pathname.split('/').pop());
    if (!server.sessions.has(sid)) return ws.refuse(1008, { code: 'session_not_found' });
    ws.onopen?.();
    ws.emit({ type: 'connected', session_id: sid, connection_id: `c${server.sockets.length}`,
      heartbeat_ms: 15000, protocol: 2 });
  };
  return server;
}

/** An event stream that sends `connected`, then nothing until aborted. */
export function sseResponse(signal, sid) {
  const body = new ReadableStream({
    start(controller) {
      const ev = { type: 'connected', session_id: sid, connection_id: 'c_sse', heartbeat_ms: 15000 };
      controller.enqueue(new TextEncoder().encode(`data: ${JSON.stringify(ev)}\n\n`));
      signal?.addEventListener('abort', () => controller.error(new Error('aborted')));
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

