"""The demo page against the real server in Chromium: pause, skip and speed visibly change
delivery (read from the page), a blocked WebSocket falls back to SSE (a stuck one after the
connect timeout), with SSE blocked too the answer comes over REST, and a screenshot
mid-stream is kept in tests/artifacts/.

Timings are relative (no growth while paused, a jump on skip, faster at a higher rate), with
wide margins: the machine is noisy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import RICH, browser, page  # noqa: F401 - the fixtures

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
LONG = RICH * 14  # ~10 KB

#: sample the editor's text length every 50 ms into window.__samples ([t, chars])
_SAMPLER_JS = """() => {
  window.__samples = [];
  const ed = window.streamerDemo.editor;
  window.__sampler = setInterval(() => window.__samples.push(
    [performance.now(), ed.state.doc.textContent.length]), 50);
}"""


#: an init script: every WebSocket URL answers 404, as behind a proxy that refuses upgrades
_BLOCK_WEBSOCKET_JS = """(() => {
  const Real = window.WebSocket;
  window.__wsTried = 0;
  window.WebSocket = class extends Real {
    constructor(url, protocols) {
      window.__wsTried += 1;
      super(String(url).replace('/ws/stream/', '/blocked-by-proxy/'), protocols);
    }
  };
})()"""


def _chars(page: Any) -> int:
    return page.evaluate("streamerDemo.editor.state.doc.textContent.length")


def _slider_for(cps: float) -> int:
    """The demo's speed slider position for `cps` (its log scale from 10 to 2000)."""
    return round(100 * math.log(cps / 10) / math.log(200))


def _growth(page: Any, ms: int) -> int:
    before = _chars(page)
    page.wait_for_timeout(ms)
    return _chars(page) - before


def test_pause_skip_and_speed_visibly_change_delivery(page: Any) -> None:
    page.select_option("#provider", "echo")
    page.wait_for_function("streamerDemo.client.state === 'connected'", timeout=15_000)
    page.evaluate(f"""() => {{ const s = document.getElementById('speed');
        s.value = '{_slider_for(60)}'; s.dispatchEvent(new Event('input')); }}""")
    page.evaluate("""(prompt) => streamerDemo.client.start({prompt, provider: 'echo',
        echo: {delta_chars: 8, interval_ms: 2}, pacing: {mode: 'fixed', cps: 60}})""", LONG)
    page.wait_for_function("streamerDemo.editor.state.doc.textContent.length > 40",
                           timeout=20_000)
    page.evaluate(_SAMPLER_JS)

    # the page mid-stream, as a person would see it
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "demo-mid-stream.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert page.evaluate("document.querySelectorAll('#editor .stream-caret').length") == 1

    # pause: the server confirms, and nothing more appears
    page.click("#btn-pause")
    page.wait_for_function("document.getElementById('delivery-state').textContent"
                           ".startsWith('paused')", timeout=10_000)
    assert _growth(page, 1200) == 0
    assert page.evaluate("streamerDemo.editor.storage.streamContent.paused")

    page.click("#btn-resume")
    page.wait_for_function("document.getElementById('delivery-state').textContent"
                           ".startsWith('resumed')", timeout=10_000)
    slow = _growth(page, 1500)
    assert slow > 0

    # speed: the slider sends `speed`; about ten times faster
    page.evaluate(f"""() => {{ const s = document.getElementById('speed');
        s.value = '{_slider_for(600)}'; s.dispatchEvent(new Event('input'));
        s.dispatchEvent(new Event('change')); }}""")
    page.wait_for_function("/ 5[89]0 cps/.test(document.getElementById('delivery-state')"
                           ".textContent)", timeout=10_000)
    fast = _growth(page, 1500)
    assert fast > 3 * slow, (slow, fast)

    # skip: everything generated so far at once
    page.evaluate(f"""() => {{ const s = document.getElementById('speed');
        s.value = '{_slider_for(20)}'; s.dispatchEvent(new Event('input'));
        s.dispatchEvent(new Event('change')); }}""")
    page.wait_for_function("/ 20 cps/.test(document.getElementById('delivery-state')"
                           ".textContent)", timeout=10_000)
    before_skip = _chars(page)
    remaining = len(LONG) - before_skip
    assert remaining > 2000, "the answer ran out before the skip could be seen"
    page.click("#btn-skip")
    page.wait_for_function("document.body.dataset.streamState === 'complete'", timeout=20_000)
    samples = page.evaluate("() => { clearInterval(window.__sampler); return window.__samples; }")
    # the jump: one 50 ms sample step holds far more than 20 cps could ever deliver
    steps = [b[1] - a[1] for a, b in zip(samples, samples[1:])]
    assert max(steps) > 1000, max(steps)
    # the sampler saw the pause as a flat run of at least a second
    flat = longest = 0
    for a, b in zip(samples, samples[1:]):
        flat = flat + (b[0] - a[0]) if b[1] == a[1] else 0
        longest = max(longest, flat)
    assert longest >= 1000
    result = page.evaluate("""() => ({check: streamerDemo.lastCheck,
        bar: document.getElementById('bar').dataset.delivered,
        eta: document.getElementById('progress-eta').textContent})""")
    assert result["check"]["equal"], result["check"]
    assert result["bar"] == "100" and result["eta"] == "done"


def test_a_short_answer_ends_with_a_full_progress_bar(page: Any) -> None:
    """The bar showed ~2/3 after short answers: the last progress event can count fewer
    delivered than received characters, and it must not win over stream_complete."""
    page.wait_for_function("streamerDemo.client.state === 'connected'", timeout=15_000)
    for prompt in ["Hi.", "# T\n\nshort *answer*", "ok"]:
        page.evaluate("""(prompt) => streamerDemo.client.start({prompt, provider: 'echo',
            pacing: {mode: 'smooth', cps: 200}})""", prompt)
        page.wait_for_function("document.body.dataset.streamState === 'complete' &&"
                               " streamerDemo.lastComplete.markdown.length > 0", timeout=20_000)
        page.wait_for_timeout(400)  # any late progress event
        bar = page.evaluate("""() => ({delivered: document.getElementById('bar').dataset.delivered,
            width: document.getElementById('bar-delivered').style.width})""")
        assert bar == {"delivered": "100", "width": "100%"}, (prompt, bar)
        page.evaluate("() => { document.body.dataset.streamState = 'idle'; }")


def test_a_blocked_websocket_falls_back_to_sse(browser: Any, server_process: Any) -> None:
    """A proxy that refuses WebSocket upgrades (here: every WebSocket URL answers 404): the
    client switches to SSE, the page says so, and the answer streams exactly."""
    context = browser.new_context(bypass_csp=True)
    try:
        context.add_init_script(_BLOCK_WEBSOCKET_JS)
        pg = context.new_page()
        pg.goto(server_process.base_url + "/")
        pg.wait_for_function("window.streamerDemo && streamerDemo.client.state === 'connected'",
                             timeout=15_000)
        shown = pg.evaluate("""() => ({transport: streamerDemo.client.transport,
            text: document.getElementById('conn-transport').textContent,
            tried: window.__wsTried})""")
        assert shown == {"transport": "sse", "text": "via SSE", "tried": 1}
        pg.select_option("#provider", "echo")
        pg.select_option("#sample", "Everything")
        pg.click("#btn-start")
        pg.wait_for_function("document.body.dataset.streamState === 'complete'", timeout=30_000)
        result = pg.evaluate("() => ({check: streamerDemo.lastCheck,"
                             " transport: streamerDemo.client.transport})")
        assert result["transport"] == "sse"
        assert result["check"]["equal"], result["check"]
        assert "<table" in result["check"]["editorHTML"]
    finally:
        context.close()



def test_a_websocket_stuck_connecting_times_out_to_sse(browser: Any, server_process: Any) -> None:
    """A proxy that holds the WebSocket upgrade for ever (the socket stays in CONNECTING):
    after `connectTimeoutMs` the client gives it up and streams over SSE."""
    context = browser.new_context(bypass_csp=True)
    try:
        context.add_init_script("""(() => {
          window.__stuck = [];
          window.WebSocket = class {
            constructor(url) { this.url = String(url); this.readyState = 0; window.__stuck.push(this); }
            send() { throw new Error('still connecting'); }
            close() { this.readyState = 3; }
          };
        })()""")
        pg = context.new_page()
        pg.goto(server_process.base_url + "/")
        pg.wait_for_function("window.streamerDemo && streamerDemo.client")
        result = pg.evaluate("""async () => {
          streamerDemo.client.close();
          const { StreamClient } = await import('/static/client.js');
          const client = new StreamClient({ connectTimeoutMs: 400 });
          const states = [];
          client.on('connection', (s) => states.push(`${s.state}:${s.transport}`));
          const t0 = performance.now();
          await client.connect();
          const waited = performance.now() - t0;
          const done = new Promise((r) => client.on('stream_complete', (ev, ctx) => r(ctx.mirror.html)));
          await client.start({ prompt: '# Held\\n\\nthe *upgrade* never came', provider: 'echo',
                               pacing: { mode: 'off' } });
          const html = await done;
          client.close();
          return { states, waited, html, stuck: window.__stuck.length,
                   closed: window.__stuck.every((ws) => ws.readyState === 3) };
        }""")
        assert result["states"][:3] == ["connecting:websocket", "connecting:sse", "connected:sse"]
        assert 350 <= result["waited"] < 5000, result
        assert result["html"] == "<h1>Held</h1>\n<p>the <em>upgrade</em> never came</p>\n"
        assert result["closed"]  # the stuck socket was given up, not left to open later
    finally:
        context.close()


def test_blocked_websocket_and_sse_fall_back_to_rest(browser: Any, server_process: Any) -> None:
    """A proxy that refuses WebSocket upgrades and answers every event stream with a 502: the
    client falls back to `POST /api/sessions/{id}/complete`, the page says so, and the answer
    (whole, at once) ends equal to a fresh editor's render of it; pause is refused there."""
    context = browser.new_context(bypass_csp=True)
    try:
        context.add_init_script(_BLOCK_WEBSOCKET_JS)
        context.add_init_script("""(() => {
          const realFetch = window.fetch.bind(window);
          window.__requests = [];
          window.fetch = (url, init) => {
            window.__requests.push(`${(init && init.method) || 'GET'} ${new URL(url, location).pathname}`);
            if (String(url).includes('/events')) {
              return Promise.resolve(new Response('<h1>502 Bad Gateway</h1>', { status: 502 }));
            }
            return realFetch(url, init);
          };
        })()""")
        pg = context.new_page()
        pg.goto(server_process.base_url + "/")
        pg.wait_for_function("window.streamerDemo && streamerDemo.client.state === 'connected'",
                             timeout=15_000)
        shown = pg.evaluate("""() => ({transport: streamerDemo.client.transport,
            text: document.getElementById('conn-transport').textContent})""")
        assert shown == {"transport": "rest", "text": "via REST"}
        pg.select_option("#provider", "echo")
        pg.select_option("#sample", "Everything")
        pg.click("#btn-start")
        pg.wait_for_function("document.body.dataset.streamState === 'complete'", timeout=30_000)
        result = pg.evaluate("""async () => {
          let refused = null;
          try { await streamerDemo.client.pause(); } catch (err) { refused = err.code; }
          return {check: streamerDemo.lastCheck, finish: streamerDemo.lastComplete.finish_reason,
                  requests: window.__requests.filter((r) => r.startsWith('POST')), refused};
        }""")
        assert result["check"]["equal"], result["check"]
        assert "<table" in result["check"]["editorHTML"]
        assert result["finish"] == "stop"
        assert [r for r in result["requests"] if r.endswith("/complete")] == [
            f"POST /api/sessions/{pg.evaluate('streamerDemo.client.sessionId')}/complete"]
        assert result["refused"] == "unsupported_control"
    finally:
        context.close()
