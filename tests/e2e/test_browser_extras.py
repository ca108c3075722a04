"""The editor extras in Chromium (issue 19): code highlighted as it streams (CodeBlockLowlight:
decorations, the document stays the server's HTML), math in LaTeX's delimiters, images with
``render.allow_images`` (lazy), the waiting indicator before the first token, ``aria-busy`` on
the editor while it streams and the page's polite live region.

The injected tests feed the demo page real ops from the chunker (the fixtures are
test_static_bundle's: ``streamer/static`` over plain HTTP, the client closed); the last one
streams from the real server (``echo``, images allowed) over a WebSocket.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from streamer.render.chunker import Chunker
from streamer.render.markdown import RenderConfig, Renderer
from streamer.wire.events import chunk_event
from tests.conftest import serving
from tests.e2e.test_static_bundle import browser, page, static_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

CODE_MD = """Some code:

```python
def area(r: float) -> float:
    # the area of a circle
    return 3.14159 * r ** 2

print(area(2), "done")
```

And after it, a closing paragraph with `inline` code.
"""
MATH_MD = "Inline \\(x^2\\) and $x^2$, then display:\n\n\\[\nE = mc^2\n\\]\n\nEnd.\n"


def _events(markdown: str, renderer: Renderer, size: int = 3) -> tuple[list[Any], str]:
    """The chunk events of ``markdown`` streamed in ``size``-character deltas, and the
    one-shot HTML (the page sets the stream's id)."""
    chunker = Chunker(renderer)
    ops = [op for i in range(0, len(markdown), size)
           for op in chunker.feed(markdown[i:i + size])] + chunker.close()
    events = []
    for seq, op in enumerate(ops, 1):
        ev = chunk_event("s", "t", seq, op)
        del ev["session_id"], ev["stream_id"]
        events.append(ev)
    return events, renderer.render(markdown)


#: What the page shows now (``snap()``), and a run of a stream's events with a snapshot after
#: each frame: stream_start, then each chunk and one animation frame, then stream_complete.
_SNAP_JS = """
const snap = () => {
  const ed = streamerDemo.editor, dom = ed.view.dom;
  return {busy: dom.getAttribute('aria-busy'), waiting: dom.getAttribute('data-stream-waiting'),
          indicator: document.querySelectorAll('#editor .stream-waiting').length,
          hljs: document.querySelectorAll('#editor pre code [class^="hljs-"]').length,
          active: ed.storage.streamContent.active, text: dom.textContent};
};
"""
_RUN_JS = "async ([sid, events, html]) => {" + _SNAP_JS + """
  const d = streamerDemo;
  const frame = () => new Promise(r => requestAnimationFrame(r));
  const shots = [];
  d.applyEvent({type: 'stream_start', stream_id: sid, provider: 'echo', model: 'echo',
                format: 'html'});
  shots.push(snap());
  await frame();
  shots.push(snap());
  for (const ev of events) {
    d.applyEvent({stream_id: sid, ...ev});
    await frame();
    shots.push(snap());
  }
  d.applyEvent({type: 'stream_complete', stream_id: sid, finish_reason: 'stop', html,
                usage: {}, duration_ms: 1});
  shots.push(snap());
  return {shots, check: d.lastCheck, html: d.editor.getHTML()};
}"""


def _run(page: Any, sid: str, markdown: str, renderer: Renderer | None = None) -> Any:  # noqa: F811
    events, html = _events(markdown, renderer or Renderer())
    result = page.evaluate(_RUN_JS, [sid, events, html])
    assert result["check"]["equal"], result["check"]  # the editor == setContent(final html)
    return result, html


def test_code_is_highlighted_while_it_streams_and_the_document_stays_exact(page: Any) -> None:  # noqa: F811
    result, html = _run(page, "code", CODE_MD)
    streaming = [s for s in result["shots"] if s["active"]]
    # highlighted (lowlight's token spans) before the answer ended: while the code streamed
    assert any(s["hljs"] > 0 for s in streaming)
    assert any(s["hljs"] > 0 and "done" not in s["text"] for s in streaming)
    assert result["shots"][-1]["hljs"] >= 5
    # decorations only: the document is the server's, language class and all
    assert 'class="language-python"' in html and 'class="language-python"' in result["html"]
    assert "hljs" not in result["html"]
    assert page.evaluate("(html) => streamerDemo.freshEditorHTML(html)", html) == result["html"]


def test_latex_math_renders_as_math(page: Any) -> None:  # noqa: F811
    result, _ = _run(page, "math", MATH_MD)
    # the streamed text never showed the delimiters (hold-back), nor their escapes' "(x^2"
    assert all("\\(" not in s["text"] and "(x^2" not in s["text"] for s in result["shots"])
    math = page.evaluate("""() => [...document.querySelectorAll(
        '#editor [data-type="inline-math"], #editor [data-type="block-math"]')].map(e => ({
          type: e.dataset.type, latex: e.dataset.latex, math: e.querySelector('math')?.outerHTML
        }))""")
    assert [(m["type"], m["latex"]) for m in math] == [
        ("inline-math", "x^2"), ("inline-math", "x^2"), ("block-math", "E = mc^2")]
    assert math[0]["math"] and math[0]["math"] == math[1]["math"]  # \(x^2\) is $x^2$
    assert "<math" in math[2]["math"]


def test_images_survive_with_lazy_loading_when_allowed(page: Any) -> None:  # noqa: F811
    markdown = "A picture: ![a cat](https://127.0.0.1:9/cat.png \"Cat\") inline.\n"
    result, html = _run(page, "img", markdown, Renderer(RenderConfig(allow_images=True)))
    assert 'loading="lazy"' in html
    img = page.evaluate("""() => [...document.querySelectorAll('#editor img')].map(i => ({
        src: i.getAttribute('src'), alt: i.alt, title: i.title, loading: i.loading}))""")
    assert img == [{"src": "https://127.0.0.1:9/cat.png", "alt": "a cat", "title": "Cat",
                    "loading": "lazy"}]
    assert '<img loading="lazy" src="https://127.0.0.1:9/cat.png"' in result["html"]


def test_waiting_indicator_and_aria_busy(page: Any) -> None:  # noqa: F811
    result, _ = _run(page, "wait", "Hello **world**, a short answer.\n")
    shots = result["shots"]
    # stream_start: busy and waiting, the indicator shown (before any token)
    for shot in shots[:2]:
        assert shot == {**shot, "busy": "true", "waiting": "true", "indicator": 1}, shots[:2]
        assert shot["text"].strip() == ""
    # the first token takes the indicator away; still busy until the end
    first = next(i for i, s in enumerate(shots) if s["text"].strip())
    assert all(s["indicator"] == 0 and s["waiting"] is None for s in shots[first:])
    assert all(s["busy"] == "true" for s in shots[first:-1])
    assert shots[-1]["busy"] == "false" and not shots[-1]["active"]


# --------------------------------------------------------------------------- real server


@pytest.fixture(scope="module")
def images_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``streamer serve`` with ``render.allow_images`` on and ``echo`` allowed."""
    env = {**os.environ, "STREAMER_SERVER_DRAIN_TIMEOUT_S": "2",
           "STREAMER_PERSISTENCE_DATABASE_PATH": str(tmp_path_factory.mktemp("db") / "s.db"),
           "STREAMER_POLICY_PROVIDERS": "echo", "STREAMER_RENDER_ALLOW_IMAGES": "true"}
    with serving([sys.executable, "-m", "streamer", "serve", "--port", "0"], env) as served:
        yield served


_SERVER_JS = "(md) => new Promise((resolve, reject) => {" + _SNAP_JS + """
  const d = streamerDemo, shots = [];
  let atStart = null, done = false;
  d.client.on('stream_start', (ev) => { if (!ev.queued) atStart = snap(); });
  d.client.on('stream_complete', () => {
    done = true;
    setTimeout(() => resolve({atStart, shots, end: snap(), check: d.lastCheck,
      live: document.getElementById('delivery-state').textContent}), 100);
  });
  const tick = () => {
    const s = snap();
    shots.push({...s, text: s.text.length, paren: s.text.includes('\\\\(')});
    if (!done) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  d.client.start({prompt: md, provider: 'echo', echo: {delta_chars: 3, interval_ms: 15},
                  pacing: {mode: 'off'}}).catch(reject);
})"""


def test_extras_stream_from_the_real_server(browser: Any, images_server: Any) -> None:  # noqa: F811
    image = f"![logo]({images_server.base_url}/static/none.png)"
    markdown = f"{MATH_MD}\n{CODE_MD}\nAn image: {image} end.\n"
    context = browser.new_context(bypass_csp=True)
    try:
        pg = context.new_page()
        pg.goto(images_server.base_url + "/")
        pg.wait_for_function("window.streamerDemo && streamerDemo.client.state === 'connected'",
                             timeout=15000)
        assert pg.evaluate("streamerDemo.editor.view.dom.getAttribute('aria-busy')") != "true"
        live = pg.evaluate("""() => { const e = document.getElementById('delivery-state');
            return [e.getAttribute('role'), e.getAttribute('aria-live')]; }""")
        assert live == ["status", "polite"]
        result = pg.evaluate(_SERVER_JS, markdown)
        assert result["check"]["equal"], result["check"]
        start = result["atStart"]
        assert start["busy"] == "true" and start["waiting"] == "true", start
        streaming = [s for s in result["shots"] if s["active"]]
        assert any(s["hljs"] > 0 for s in streaming)  # highlighted while it streamed
        assert not any(s["paren"] for s in result["shots"])
        end = result["end"]
        assert end["busy"] == "false" and end["waiting"] is None and end["indicator"] == 0
        assert result["live"].startswith("complete")
        editor_html = result["check"]["editorHTML"]
        assert 'data-latex="x^2"' in editor_html and 'class="language-python"' in editor_html
        assert '<img loading="lazy"' in editor_html
    finally:
        context.close()
