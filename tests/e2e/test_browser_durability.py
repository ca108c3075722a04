"""The browser client on bad networks and across page loads, in Chromium against the real server:
a WebSocket whose upgrade a listener accepts and never answers (a real socket in CONNECTING)
falls back to SSE after the connect timeout; with SSE unavailable too the answer comes over
REST; the network coming back (`online`) or the page becoming visible again reconnects at
once instead of after the backoff; a reload mid-answer resumes it exactly from the cursor kept
in ``sessionStorage`` and shows the earlier turns of the conversation.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_browser import RICH, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


class HangingListener:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers (a proxy that
    holds the WebSocket upgrade). Counts the connections, and those the peer closed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.closed_by_peer = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        """Read the upgrade request and say nothing; note when the browser gives up."""
        conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if conn.recv(4096) == b"":
                    self.closed_by_peer += 1
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def hanging() -> Iterator[HangingListener]:
    listener = HangingListener()
    yield listener
    listener.close()


def _ws_to(port: int) -> str:
    """An init script: every WebSocket goes to 127.0.0.1:`port` (the path kept)."""
    return """(() => {
      const Real = window.WebSocket;
      window.WebSocket = class extends Real {
        constructor(url, protocols) {
          super(String(url).replace(/^ws:\\/\\/[^/]+/, 'ws://127.0.0.1:PORT'), protocols);
        }
      };
    })()""".replace("PORT", str(port))


#: an init script: the WebSocket URLs the page opens, in window.__wsUrls
_RECORD_WS_JS = """(() => {
  const Real = window.WebSocket;
  window.__wsUrls = [];
  window.WebSocket = class extends Real {
    constructor(url, protocols) { window.__wsUrls.push(String(url)); super(url, protocols); }
  };
})()"""

#: a fresh StreamClient (demo's closed first) whose connection states are timed
_TIMED_CLIENT_JS = """async (options) => {
  streamerDemo.client.close();
  const { StreamClient } = await import('/static/client.js');
  const client = new StreamClient(options);
  window.__client = client;
  window.__states = [];
  const t0 = performance.now();
  client.on('connection', (s) => window.__states.push(
    [`${s.state}:${s.transport}`, Math.round(performance.now() - t0)]));
  await client.connect();
  const done = new Promise((r) => client.on('stream_complete', (ev) => r(ev)));
  await client.start({ prompt: '# Held\\n\\nthe *upgrade* never came', provider: 'echo',
                       pacing: { mode: 'off' } });
  const complete = await done;
  return { states: window.__states, html: complete.html,
           mirror: client.streams.get(complete.stream_id).html };
}"""

HELD_HTML = "<h1>Held</h1>\n<p>the <em>upgrade</em> never came</p>\n"


def _new_page(chromium: Any, base_url: str, *scripts: str) -> tuple[Any, Any, list[str]]:
    context = chromium.new_context(bypass_csp=True)
    for script in scripts:
        context.add_init_script(script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base_url + "/")
    page.wait_for_function("window.streamerDemo && streamerDemo.client")
    return context, page, errors


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_a_websocket_hanging_in_connecting_falls_back_to_sse_within_the_timeout(
        browser: Any, server_process: Any, hanging: HangingListener) -> None:  # noqa: F811
    """The upgrade goes to a listener that accepts the TCP connection and never answers: with
    the default connect timeout (5 s) the client gives the socket up (the browser closes the
    connection) and streams over SSE."""
    context, page, errors = _new_page(browser, server_process.base_url, _ws_to(hanging.port))
    try:
        result = page.evaluate(_TIMED_CLIENT_JS, {})
        states = dict(result["states"])
        assert [s for s, _ in result["states"]][:3] == [
            "connecting:websocket", "connecting:sse", "connected:sse"], result
        waited = states["connecting:sse"] - states["connecting:websocket"]
        assert 4900 <= waited <= 6500, result  # the default timeout, 5 s
        assert states["connected:sse"] - states["connecting:sse"] < 3000, result
        assert result["html"] == result["mirror"] == HELD_HTML
        assert hanging.accepted >= 1
        deadline = time.monotonic() + 5
        while hanging.closed_by_peer < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hanging.closed_by_peer >= 1, "the stuck socket was not given up"
        page.evaluate("window.__client.close()")
        assert not errors, errors
    finally:
        context.close()


def test_the_rest_fallback_completes_an_answer_when_websocket_and_sse_are_unavailable(
        browser: Any, server_process: Any, hanging: HangingListener) -> None:  # noqa: F811
    """The WebSocket hangs in CONNECTING and every event stream request fails on the network
    (Playwright aborts it): the client goes on to REST and the answer arrives whole."""
    context, page, errors = _new_page(browser, server_process.base_url, _ws_to(hanging.port))
    try:
        page.route("**/api/sessions/*/events*", lambda route: route.abort("connectionfailed"))
        result = page.evaluate(_TIMED_CLIENT_JS, {"connectTimeoutMs": {"websocket": 1500}})
        assert [s for s, _ in result["states"]] == [
            "connecting:websocket", "connecting:sse", "connecting:rest", "connected:rest"], result
        states = dict(result["states"])
        assert 1400 <= states["connecting:sse"] <= 3000, result  # the WebSocket's own timeout
        assert result["html"] == result["mirror"] == HELD_HTML
        page.evaluate("window.__client.close()")
        assert not errors, errors
    finally:
        context.close()


#: start a long echo answer from the page (slow enough to be cut mid-way)
_START_LONG_JS = """(prompt) => { window.__started = streamerDemo.client.start({
    prompt, provider: 'echo', echo: {delta_chars: 4, interval_ms: 10},
    pacing: {mode: 'fixed', cps: 300}}); }"""


def _wait_complete(page: Any, timeout_ms: int = 60_000) -> dict[str, Any]:
    page.wait_for_function("document.body.dataset.streamState === 'complete'",
                           timeout=timeout_ms)
    result: dict[str, Any] = page.evaluate("""() => ({check: streamerDemo.lastCheck,
        complete: streamerDemo.lastComplete, editor: streamerDemo.editor.getHTML()})""")
    return result


def test_online_reconnects_at_once_instead_of_after_the_backoff(
        browser: Any, server_process: Any) -> None:  # noqa: F811
    """Mid-answer the connection drops and the next try is 30 s away; the network coming back
    (the browser's `online` event, from Playwright's offline emulation) reconnects at once, the
    answer resumes exactly; the page becoming visible again does the same."""
    context, page, errors = _new_page(browser, server_process.base_url)
    try:
        page.select_option("#provider", "echo")
        page.wait_for_function("streamerDemo.client.state === 'connected'", timeout=15_000)
        page.evaluate("""() => {
          const c = streamerDemo.client;
          Object.assign(c.reconnectOptions, {initialDelayMs: 30000, maxDelayMs: 60000, jitter: 0});
          window.__log = [];
          c.on('connection', (s) => window.__log.push(
            {state: s.state, delayMs: s.delayMs, resumed: s.resumed, t: performance.now()}));
          window.__snapshots = 0;
          c.on('snapshot', () => { window.__snapshots += 1; });
        }""")
        page.evaluate(_START_LONG_JS, RICH * 2)
        page.wait_for_function("streamerDemo.binding && streamerDemo.binding.mirror.lastSeq > 10",
                               timeout=30_000)
        context.set_offline(True)
        page.evaluate("streamerDemo.client.dropConnection()")
        page.wait_for_function("streamerDemo.client.state === 'retrying'")
        page.wait_for_timeout(300)
        t_online = page.evaluate("performance.now()")
        context.set_offline(False)  # fires `online`
        page.wait_for_function("streamerDemo.client.state === 'connected'", timeout=10_000)
        log = page.evaluate("window.__log")
        retry = [e for e in log if e["state"] == "retrying"]
        assert retry and retry[0]["delayMs"] == 30000, log
        back = [e for e in log if e["state"] == "connected" and e["t"] > t_online]
        assert back and back[0]["resumed"], log
        assert back[0]["t"] - t_online < 3000, log  # not the 30 s of backoff
        result = _wait_complete(page)
        assert result["check"]["equal"], result["check"]
        assert page.evaluate("window.__snapshots") == 0  # resumed after its seq, not re-sent

        # the page hidden while the connection is down, then visible again
        page.evaluate("streamerDemo.client.dropConnection()")
        page.wait_for_function("streamerDemo.client.state === 'retrying'")
        t_visible = page.evaluate("""() => {
          Object.defineProperty(document, 'visibilityState',
                                {configurable: true, get: () => 'visible'});
          document.dispatchEvent(new Event('visibilitychange'));
          return performance.now();
        }""")
        page.wait_for_function("streamerDemo.client.state === 'connected'", timeout=10_000)
        log = page.evaluate("window.__log")
        assert [e for e in log if e["state"] == "connected"][-1]["t"] - t_visible < 3000, log
        assert not errors, errors
    finally:
        context.close()


def test_a_reload_mid_answer_resumes_it_exactly_and_shows_the_earlier_turns(
        browser: Any, server_process: Any) -> None:  # noqa: F811
    """One short turn, then a long answer cut by a page reload: the new page takes over the
    session and the cursor kept in sessionStorage (the WebSocket asks for the events after the
    kept seq; the server replays exactly, no gap), the answer ends equal to the stored message
    and to a fresh editor's render of it, and the earlier turns show above the editor."""
    context, page, errors = _new_page(browser, server_process.base_url, _RECORD_WS_JS)
    base = server_process.base_url
    try:
        page.select_option("#provider", "echo")
        page.wait_for_function("streamerDemo.client.state === 'connected'", timeout=15_000)
        first = "A first *question*, with $x^2$ in it."
        page.evaluate("""(prompt) => streamerDemo.client.start({prompt, provider: 'echo',
            pacing: {mode: 'off'}})""", first)
        first_answer = _wait_complete(page)["complete"]
        page.evaluate("document.body.dataset.streamState = 'idle'")
        second = RICH * 3
        page.evaluate(_START_LONG_JS, second)
        page.wait_for_function("streamerDemo.binding && streamerDemo.binding.mirror.lastSeq > 15",
                               timeout=30_000)
        before = page.evaluate("""() => ({session: streamerDemo.client.sessionId,
            stream: streamerDemo.client.activeStreamId})""")
        page.reload()
        page.wait_for_function("window.streamerDemo && streamerDemo.client")
        restored = page.evaluate("streamerDemo.client.restored")
        assert restored == {"sessionId": before["session"], "streamId": before["stream"]}
        result = _wait_complete(page)
        url = page.evaluate("window.__wsUrls[0]")
        assert f"stream_id={before['stream']}" in url, url
        kept_seq = int(url.split("last_seq=")[1].split("&")[0])
        assert kept_seq > 15, url
        assert result["complete"]["stream_id"] == before["stream"]
        assert result["check"]["equal"], result["check"]

        messages = _get(f"{base}/api/sessions/{before['session']}/messages")["messages"]
        stored = next(m for m in messages if m["message_id"] == before["stream"])
        assert stored["status"] == "complete" and stored["markdown"] == second
        assert result["complete"]["html"] == stored["html"]
        assert result["editor"] == page.evaluate("(h) => streamerDemo.freshEditorHTML(h)",
                                                 stored["html"])
        trace = _get(f"{base}/api/streams/{before['stream']}/trace")
        events = [e["event"] for e in trace["trace"]]
        assert "resumed" in events and "resume_gap" not in events, events

        page.wait_for_function("streamerDemo.conversation.length === 3")
        shown = page.evaluate("""() => [...document.querySelectorAll('#conversation li')].map(
            (li) => ({role: li.dataset.role, id: li.dataset.message,
                      text: li.lastElementChild.textContent,
                      html: li.querySelector('.turn-editor')?.editor?.getHTML() ?? null}))""")
        assert [t["role"] for t in shown] == ["user", "assistant", "user"], shown
        assert shown[0]["text"] == first and shown[2]["text"] == second
        assert shown[1]["id"] == first_answer["stream_id"]
        assert shown[1]["html"] == page.evaluate("(h) => streamerDemo.freshEditorHTML(h)",
                                                 first_answer["html"])
        assert not page.evaluate("document.getElementById('conversation').hidden")
        assert not errors, errors
    finally:
        context.close()
