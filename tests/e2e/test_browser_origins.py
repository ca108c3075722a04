"""Origins in a real browser (issue 14): a page served from another origin (a second local
server, 127.0.0.1 on another port) can neither open a working WebSocket to streamer nor read
an answer (fetch and SSE are blocked by CORS), and a page from an origin listed in
``security.allowed_origins`` streams an answer end to end, over WebSocket and over SSE.

One streamer server (``server_process``) allows ``ALLOWED``'s origin only; ``FOREIGN``'s is
not listed. Both serve the same blank page and the browser client (``/static/``), so the
only difference is the origin.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import streamer
from tests.e2e.test_browser import browser  # noqa: F401 - the fixture
from tests.e2e.test_static_bundle import serve_folder

pytestmark = pytest.mark.browser

STATIC = Path(streamer.__file__).parent / "static"
PROMPT = "# Across origins\n\nThe *answer* came back."
ANSWER = "<h1>Across origins</h1>\n<p>The <em>answer</em> came back.</p>\n"


@pytest.fixture(scope="module", autouse=True)
def origins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two page servers, ``foreign`` and ``allowed``; the module's streamer server (started
    after this autouse fixture of the same scope, with this environment) lists only the
    second in ``security.allowed_origins``."""
    site = tmp_path_factory.mktemp("site")
    (site / "index.html").write_text("<!doctype html><title>another origin</title><p>page")
    (site / "static").symlink_to(STATIC, target_is_directory=True)
    with ExitStack() as stack, pytest.MonkeyPatch.context() as env:
        urls = {name: stack.enter_context(serve_folder(site)) for name in ("foreign", "allowed")}
        env.setenv("STREAMER_SECURITY_ALLOWED_ORIGINS", urls["allowed"])
        yield urls


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:  # noqa: F811 - the fixture imported above
    """``open_page(url)``: a fresh page (its own context) at ``url``."""
    contexts: list[Any] = []

    def open_at(url: str) -> Any:
        contexts.append(browser.new_context())
        page = contexts[-1].new_page()
        page.goto(url + "/")
        return page

    yield open_at
    for context in contexts:
        context.close()


def _new_session(base_url: str) -> str:
    """A session made by a client that sends no ``Origin`` (as the terminal does)."""
    request = urllib.request.Request(f"{base_url}/api/sessions", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        session_id: str = json.loads(response.read())["session_id"]
    return session_id


#: from the page: a raw WebSocket to an existing session (an `auth` message and a `start` sent
#: if it opens), fetches that read (status, a POST, the session's event stream), an
#: EventSource, and the library's client; what each got
_PROBE_JS = """async ({base, sid, prompt}) => {
  const ws = await new Promise((resolve) => {
    const got = {opened: false, messages: [], code: null};
    const socket = new WebSocket(base.replace('http', 'ws') + '/ws/stream/' + sid);
    socket.onopen = () => { got.opened = true;
      socket.send(JSON.stringify({type: 'start', prompt, provider: 'echo'})); };
    socket.onmessage = (m) => got.messages.push(m.data);
    socket.onclose = (e) => { got.code = e.code; resolve(got); };
    setTimeout(() => resolve(got), 5000);
  });
  const read = async (path, init) => {
    try {
      const r = await fetch(base + path, {...init, signal: AbortSignal.timeout(4000)});
      return {status: r.status, body: (await r.text()).slice(0, 200)};
    } catch (err) { return {blocked: err.name}; }
  };
  const fetches = {
    status: await read('/api/stream/status'),
    create: await read('/api/sessions', {method: 'POST', body: '{}',
                                         headers: {'Content-Type': 'application/json'}}),
    events: await read('/api/sessions/' + sid + '/events'),
  };
  const eventSource = await new Promise((resolve) => {
    const got = {messages: 0, error: false};
    const es = new EventSource(base + '/api/sessions/' + sid + '/events');
    es.onmessage = () => { got.messages += 1; };
    es.onerror = () => { got.error = true; es.close(); resolve(got); };
    setTimeout(() => { es.close(); resolve(got); }, 5000);
  });
  const { StreamClient } = await import('/static/client.js');
  const client = new StreamClient({ baseUrl: base, reconnect: false, connectTimeoutMs: 3000 });
  const states = [];
  client.on('connection', (s) => states.push(s.state + ':' + s.transport));
  let failed = null;
  try { await client.connect(); } catch (err) { failed = err.name + ': ' + err.message; }
  const seen = states.slice();
  client.close();
  return {ws, fetches, eventSource, client: {states: seen, failed, sessionId: client.sessionId}};
}"""


def test_a_page_from_a_foreign_origin_cannot_use_the_server(
        open_page: Any, origins: dict[str, str], server_process: Any) -> None:
    base = server_process.base_url
    sid = _new_session(base)
    before = _status(base)
    page = open_page(origins["foreign"])
    got = page.evaluate(_PROBE_JS, {"base": base, "sid": sid, "prompt": PROMPT})
    # the WebSocket is refused at the upgrade: it never opens, nothing arrives
    assert got["ws"] == {"opened": False, "messages": [], "code": 1006}, got["ws"]
    # nothing can be read: no CORS headers for this origin (a JSON POST fails its preflight)
    assert got["fetches"] == {name: {"blocked": "TypeError"}
                              for name in ("status", "create", "events")}, got["fetches"]
    assert got["eventSource"] == {"messages": 0, "error": True}
    # the library's client: its session cannot even be made
    assert got["client"]["sessionId"] is None
    assert got["client"]["states"] == ["connecting:websocket", "error:websocket"]
    assert got["client"]["failed"].startswith("TypeError")
    # nothing started on the server either
    after = _status(base)
    assert (after["active_streams"], after["sessions"]) == (before["active_streams"],
                                                           before["sessions"])


def _status(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/api/stream/status", timeout=10) as response:
        status: dict[str, Any] = json.loads(response.read())
    return status


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_an_allowed_origin_streams_an_answer_end_to_end(
        open_page: Any, origins: dict[str, str], server_process: Any, transport: str) -> None:
    page = open_page(origins["allowed"])
    got = page.evaluate("""async ({base, transport, prompt}) => {
      const { StreamClient } = await import('/static/client.js');
      const client = new StreamClient({ baseUrl: base, transport, reconnect: false });
      const done = new Promise((resolve) => client.on('stream_complete',
        (ev, ctx) => resolve({html: ctx.mirror.html, finish: ev.finish_reason})));
      await client.connect();
      await client.start({ prompt, provider: 'echo', pacing: { mode: 'off' } });
      const answer = await done;
      if (transport === 'sse') await client.pause();  // a control POST across origins
      const status = await fetch(base + '/api/stream/status').then((r) => r.json());
      client.close();
      return {...answer, transport: client.transport, sessionId: client.sessionId,
              sessions: status.sessions, origin: location.origin};
    }""", {"base": server_process.base_url, "transport": transport, "prompt": PROMPT})
    assert got["origin"] == origins["allowed"] != server_process.base_url
    assert got["transport"] == transport
    assert got["sessionId"].startswith("sess_")
    assert (got["html"], got["finish"]) == (ANSWER, "stop")
    assert got["sessions"] >= 1
