"""The browser side: the committed Tiptap bundle, the package's entries, the demo page.

The browser tests drive Debian's ``/usr/bin/chromium`` through Playwright (never a downloaded
browser). Most serve ``streamer/static`` from a plain stdlib HTTP server and feed the page real
ops from the :class:`~streamer.render.chunker.Chunker` through ``streamerDemo.applyEvent``; one runs
the demo against the real server (``server_process``) over WebSocket and SSE.
"""

from __future__ import annotations

import functools
import json
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import streamer
from streamer.render.ops import split_trailer

STATIC = Path(streamer.__file__).parent / "static"
BUILD = STATIC / "build"
VENDOR = STATIC / "vendor"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
RICH_MD = Path(__file__).parents[1] / "data" / "rich.md"

#: a document with the block kinds Tiptap's parser is most likely to reshape
LONG_MD = "".join(f"- item {i} with *emphasis*, `code` and a [link](https://e.example/{i})\n"
                  for i in range(40)) + "\n| A | B |\n|---|---|\n" + "".join(
                      f"| row {i} | **{i}** |\n" for i in range(40))

NESTED_MD = """# Title

Intro with a [link](https://a.example/x?y=1&z=2), `code` and *a*
*b* glued by a soft break.

1. one
   - a
   - b **bold**
     1. deep
2. two

   second paragraph in item two

> quote
>
> > nested quote with *em*
>
> - list in quote

```
plain code with a blank line

```

```js
const x = "<b>" && 1 > 2;
```

| a | b |
|---|---|
| 1 | **2** |
| `x` | [l](https://e.x) |

Term&nbsp;with nbsp and &copy; entity, line one
hard break line two

***

- -
*

Last *para*.
"""


# --------------------------------------------------------------------------- no browser


def test_bundle_is_committed_pinned_and_licensed() -> None:
    pkg = json.loads((BUILD / "package.json").read_text())
    pins = pkg["devDependencies"]
    assert {"@tiptap/core", "@tiptap/starter-kit", "@tiptap/extension-table",
            "esbuild"} <= set(pins)
    for name, version in pins.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned exactly"
    lock = json.loads((BUILD / "package-lock.json").read_text())
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    bundle = (VENDOR / "tiptap.js").read_text()
    banner = bundle[:400]
    licenses = (VENDOR / "THIRD_PARTY_LICENSES.txt").read_text()
    for name, version in pins.items():
        if name != "esbuild":
            assert f"{name}@{version}" in banner
            assert f"{name}@{version} (MIT)" in licenses
    assert "prosemirror-model@" in licenses
    assert len(bundle) < 1_000_000  # one minified module


#: the package's public entries and the names each exports (none may go missing)
ENTRIES = {
    "client.js": {"PROTOCOL_VERSION", "StreamerError", "appendText", "applyOp", "escapeText",
                  "splitTrailer", "DocumentMirror", "StreamClient"},
    "editor-stream.js": {"EditorStream", "STREAM_META", "atRange", "bindClientToEditor",
                         "parseBlock"},
    "stream-content.js": {"FORCE_META", "StreamContent", "followClient", "StreamSession",
                          "streamContentKey"},
    "react.js": {"createStreamStore", "createUseStream"},
}


def _imports(module: Path) -> list[Path]:
    """The relative modules ``module`` imports or re-exports."""
    specs = re.findall(r"(?:from|import) '(\.{1,2}/[^']+)'", module.read_text())
    return [(module.parent / spec).resolve() for spec in specs]


def _reach(starts: list[Path]) -> set[Path]:
    """The modules ``starts`` import, transitively (the vendored bundle not followed)."""
    todo, seen = list(starts), set()
    while todo:
        module = todo.pop()
        assert module.is_file(), f"{module} is imported but missing"
        if module not in seen and module.suffix == ".js" and VENDOR not in module.parents:
            seen.add(module)
            todo += _imports(module)
    return seen


def test_page_and_modules_reference_existing_files() -> None:
    html = (STATIC / "demo" / "index.html").read_text()
    # relative to the page (served at the app's root, or under its path prefix)
    refs = re.findall(r'(?:src=|href=|"#tiptap": )"(?:\./)?static/([^"]+)"', html)
    assert {"demo/demo.js", "demo/demo.css", "stream-content.css", "vendor/tiptap.js"} \
        <= set(refs)
    for ref in refs:
        assert (STATIC / ref).is_file(), ref
    # every module the entries and the demo reach, transitively, exists
    library = _reach([STATIC / name for name in ENTRIES])
    assert {p.name for p in library} >= {"ops.js", "mirror.js", "sse.js", "transports.js"}
    assert STATIC / "demo" / "samples.js" in _reach([STATIC / "demo" / "demo.js"])
    # the library never reaches into the demo
    assert not [p for p in library if "demo" in p.relative_to(STATIC).parts]
    # '#tiptap' resolves on the page (import map) and for bundlers (package.json imports)
    assert '"#tiptap": "./static/vendor/tiptap.js"' in html  # relative to the page
    package = json.loads((STATIC / "package.json").read_text())
    assert (STATIC / package["imports"]["#tiptap"]).is_file()
    for target in package["exports"].values():
        for path in ([target] if isinstance(target, str) else target.values()):
            assert (STATIC / path).is_file(), path


# --------------------------------------------------------------------------- browser fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def serve_folder(folder: Path, root: str | None = None) -> Iterator[str]:
    """``folder`` over plain HTTP on 127.0.0.1 (a free port, a thread): its base URL.
    ``root``: the file served at ``/`` (else the folder's listing)."""

    class Quiet(SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            return super().translate_path(root if root and path == "/" else path)

        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """``streamer/`` over plain HTTP, so ``/static/…`` resolves as on the real server, and
    the demo page at ``/`` (its paths are relative, for a path prefix)."""
    with serve_folder(STATIC.parent, "/static/demo/index.html") as url:
        yield url


@pytest.fixture
def page(browser: Any, static_url: str) -> Iterator[Any]:
    """The demo page, its client pointed at nothing (events are injected)."""
    context = browser.new_context()
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(f"{static_url}/")
    pg.wait_for_function("window.streamerDemo && window.streamerDemo.editor")
    pg.evaluate("() => streamerDemo.client.close()")  # no server here: stop retrying
    yield pg
    context.close()
    assert not errors, errors


# --------------------------------------------------------------------------- injected ops

_RUN_JS = """async ([sid, events, frames, html]) => {
  const d = streamerDemo;
  const before = d.editor.getHTML();
  d.applyEvent({type: 'stream_start', stream_id: sid, provider: 'echo', model: 'echo',
                format: 'html'});
  for (let i = 0; i < events.length; i++) {
    d.applyEvent({stream_id: sid, ...events[i]});
    if (frames[i]) await new Promise(r => requestAnimationFrame(r));
  }
  d.applyEvent({type: 'stream_complete', stream_id: sid, finish_reason: 'stop', html,
                usage: {}, duration_ms: 1});
  const after = d.editor.getHTML();
  const undo = d.editor.can().undo();
  d.editor.commands.undo();
  const undone = d.editor.getHTML();
  d.editor.commands.redo();
  const redone = d.editor.getHTML();
  return {check: d.lastCheck, mirror: d.client.streams.get(sid).html,
          state: document.body.dataset.streamState, undo, before, after, undone, redone,
          editable: d.editor.isEditable};
}"""


def _assert_one_undo_step(result: dict[str, Any], name: str = "") -> None:
    """One undo removes the whole answer (the document is as before the stream), redo puts
    it back exactly."""
    if result["after"] == result["before"]:
        return  # an empty answer appended: nothing to undo
    assert result["undo"], f"{name}: the answer is not undoable"
    assert result["undone"] == result["before"], f"{name}: one undo did not remove the answer"
    assert result["redone"] == result["after"], f"{name}: redo did not restore the answer"


def _chunk_events(markdown: str, rng: random.Random) -> tuple[list[dict[str, Any]], str]:
    from streamer.render.chunker import Chunker
    from streamer.render.markdown import Renderer

    renderer = Renderer()
    chunker = Chunker(renderer)
    ops = []
    i = 0
    while i < len(markdown):
        n = rng.choice([1, 1, 2, 3, 5, 8, 13, 40])
        ops += chunker.feed(markdown[i:i + n])
        i += n
    ops += chunker.close()
    from streamer.wire.events import chunk_event

    events = []
    for seq, op in enumerate(ops, 1):
        ev = chunk_event("s", "t", seq, op)
        del ev["session_id"], ev["stream_id"]  # the page sets its own stream's
        events.append(ev)
    return events, renderer.render(markdown)


@pytest.mark.browser
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streamed_ops_end_equal_to_a_fresh_editor(page: Any, seed: int) -> None:
    rng = random.Random(seed)
    for name, markdown in [("rich", RICH_MD.read_text()), ("nested", NESTED_MD),
                           ("long", LONG_MD)]:
        events, html = _chunk_events(markdown, rng)
        if name == "long":  # the list and the table grow by splices
            assert sum(ev["op"] == "splice" for ev in events) > 20
        # replays of earlier events must be ignored
        for _ in range(3):
            k = rng.randrange(1, len(events))
            events.insert(k, events[rng.randrange(0, k)])
        frames = [rng.random() < 0.4 for _ in events]
        result = page.evaluate(_RUN_JS, [f"{name}-{seed}", events, frames, html])
        assert result["mirror"] == html
        assert result["check"]["editorHTML"] == result["check"]["freshHTML"]
        assert result["state"] == "complete"
        assert result["editable"]
        _assert_one_undo_step(result, name)


def _chunk(seq: int, op: str, block: int, value: str, final: bool = False,
           trim: int | None = None) -> dict[str, Any]:
    key = "text" if op == "text" else "html"
    ev = {"type": "chunk", "seq": seq, "op": op, "block": block, key: value, "final": final}
    if trim is not None:
        ev["trim"] = trim
    return ev


EDGE_CASES = {
    "empty slot, then reused": (
        [_chunk(1, "append", 0, "<ul>\n<li>a</li>\n</ul>\n"),
         _chunk(2, "append", 1, "<ul>\n<li></li>\n</ul>\n"),
         _chunk(3, "text", 0, "\n*b"), _chunk(4, "replace", 1, ""),
         _chunk(5, "replace", 1, "<p>Para</p>\n"), _chunk(6, "text", 1, " & <x>\u00a0", True)],
        "<ul>\n<li>a\n*b</li>\n</ul>\n<p>Para &amp; &lt;x&gt;&nbsp;</p>\n"),
    "the only block becomes empty": (
        [_chunk(1, "append", 0, "<p>x</p>\n"), _chunk(2, "replace", 0, "")], ""),
    "an empty block first": (
        [_chunk(1, "append", 0, ""), _chunk(2, "append", 1, "<h2>T</h2>\n"),
         _chunk(3, "replace", 0, "<p>first</p>\n")], "<p>first</p>\n<h2>T</h2>\n"),
    "a block of several nodes": (
        [_chunk(1, "append", 0, "<p>a</p>\n<p>b</p>\n"), _chunk(2, "append", 1, "<p>c</p>\n"),
         _chunk(3, "replace", 0, "<p>a2</p>\n")], "<p>a2</p>\n<p>c</p>\n"),
    "a lost chunk is repaired by stream_complete": (
        [_chunk(1, "append", 0, "<p>Hello</p>\n"), _chunk(3, "text", 0, " world")],
        "<p>Hello big world</p>\n"),
    "a snapshot mid-stream": (
        [_chunk(1, "append", 0, "<p>old</p>\n"),
         {"type": "snapshot", "seq": 5, "blocks": ["<p>one</p>\n", "<p>two</p>\n"]},
         _chunk(4, "append", 2, "<p>stale</p>\n"), _chunk(6, "append", 2, "<p>three</p>\n")],
        "<p>one</p>\n<p>two</p>\n<p>three</p>\n"),
    "splices after characters outside the BMP": (
        [_chunk(1, "append", 0, "<ul>\n<li>\U0001f600 a</li>\n</ul>\n"),
         _chunk(2, "splice", 0, "<li>b \U0001f680</li>\n</ul>\n", trim=6),
         _chunk(3, "splice", 0, "<ul>\n<li>c</li>\n</ul>\n</li>\n</ul>\n", trim=12),
         _chunk(4, "text", 0, "d", True)],
        "<ul>\n<li>\U0001f600 a</li>\n<li>b \U0001f680<ul>\n<li>cd</li>\n</ul>\n</li>\n</ul>\n"),
    "stopped with a backlog": (
        [_chunk(1, "append", 0, "<p>par</p>\n")],
        "<p>partial answer</p>\n<ul>\n<li>x</li>\n</ul>\n"),
}


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["replace", "end"])
def test_edge_cases_in_both_range_modes(page: Any, mode: str) -> None:
    page.evaluate("""(mode) => {
      document.getElementById('append').checked = mode === 'end';
      streamerDemo.editor.chain()
        .command(({tr}) => { tr.setMeta('addToHistory', false); return true; })
        .setContent('<p>Existing <em>text</em></p><ul><li>x</li></ul>').run();
    }""", mode)
    for i, (name, (events, html)) in enumerate(EDGE_CASES.items()):
        for frames in (True, False):
            result = page.evaluate(_RUN_JS, [f"edge-{mode}-{i}-{frames}", events,
                                             [frames] * len(events), html])
            assert result["check"]["equal"], (name, result["check"])
            assert result["mirror"] == html, name
            _assert_one_undo_step(result, name)


@pytest.mark.browser
def test_split_trailer_matches_ops_py(page: Any) -> None:
    rng = random.Random(5)
    pieces = ["</p>", "</em>", "\n", "<p>", "a", "<br>", ">", "<", "</a1>", "</ x>", "</>",
              "&amp;", " ", "</code></pre>", "<!-- c -->"]
    samples = ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 9)))
               for _ in range(400)]
    got = page.evaluate("""async (samples) => {
      const { splitTrailer } = await import('/static/client.js');
      return samples.map(s => splitTrailer(s));
    }""", samples)
    assert [tuple(g) for g in got] == [split_trailer(s) for s in samples]


@pytest.mark.browser
def test_entries_export_their_names(page: Any) -> None:
    """Each public entry exports exactly its names (the split into src/ moved none)."""
    got = page.evaluate("""async (names) => {
      const out = {};
      for (const name of names) out[name] = Object.keys(await import('/static/' + name));
      return out;
    }""", list(ENTRIES))
    for name, exports in ENTRIES.items():
        assert set(got[name]) == exports, name


# --------------------------------------------------------------------------- real server


@pytest.mark.browser
@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_demo_streams_echo_from_the_real_server(browser: Any, server_process: Any,
                                                transport: str) -> None:
    context = browser.new_context(bypass_csp=True)
    try:
        pg = context.new_page()
        pg.goto(server_process.base_url + "/")
        pg.wait_for_function("window.streamerDemo && streamerDemo.client")
        pg.select_option("#transport", transport)
        pg.wait_for_function("streamerDemo.client.state === 'connected'", timeout=15000)
        assert pg.evaluate("streamerDemo.client.transport") == transport
        pg.select_option("#provider", "echo")
        pg.select_option("#sample", "Everything")
        pg.select_option("#pacing-mode", "off")
        pg.click("#btn-start")
        pg.wait_for_function("['complete', 'error'].includes(document.body.dataset.streamState)"
                             " && streamerDemo.lastComplete", timeout=30000)
        result = pg.evaluate("() => ({state: document.body.dataset.streamState,"
                             " check: streamerDemo.lastCheck,"
                             " finish: streamerDemo.lastComplete.finish_reason})")
        assert result["state"] == "complete", result
        assert result["finish"] == "stop"
        assert result["check"]["equal"], result["check"]
        assert "<table" in result["check"]["editorHTML"]
    finally:
        context.close()
