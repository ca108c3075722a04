"""The npm package as an application gets it: ``npm pack`` of ``streamer/static``, the tarball
installed into a fresh app with its Tiptap peers and esbuild (from npm's cache when it has
them, else the registry; the versions are the vendored bundle's, ``streamer/static/build``),
its declarations type-checked there (``tests/node/types/consumer.ts``), the app bundled with
esbuild (one ProseMirror, the CSS kept), and the bundle run in Chromium from the app's own
origin (a folder served on 127.0.0.1, listed in the server's ``security.allowed_origins``)
against the real server: an echo answer streams into a Tiptap editor and ends equal to a fresh
editor's render of the final HTML.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import browser  # noqa: F401 - the fixture
from tests.e2e.test_static_bundle import serve_folder

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parents[2]
STATIC = ROOT / "streamer" / "static"
BUILD = STATIC / "build" / "package.json"
TSC = ROOT / "tests" / "node" / "node_modules" / "typescript" / "bin" / "tsc"
CONSUMER = ROOT / "tests" / "node" / "types"

#: what an application writes: the client, the extension and its CSS, its own Tiptap
APP_JS = """
import { PROTOCOL_VERSION, StreamClient } from '@streamer/client';
import { StreamContent, followClient } from '@streamer/client/stream-content';
import '@streamer/client/stream-content.css';
import { Editor } from '@tiptap/core';
import StarterKit from '@tiptap/starter-kit';

const extensions = () => [StarterKit.configure({ trailingNode: false })];
const editor = new Editor({ element: document.getElementById('editor'),
                            extensions: [...extensions(), StreamContent] });

function fresh(html) {
  const other = new Editor({ element: document.getElementById('fresh'),
                             extensions: extensions(), content: html });
  try { return other.getHTML(); } finally { other.destroy(); }
}

window.app = {
  protocol: PROTOCOL_VERSION,
  async run(prompt, baseUrl) {
    const client = new StreamClient({ baseUrl, persist: true });
    followClient(editor, client, { at: 'replace' });
    await client.connect();
    let chunks = 0;
    client.on('chunk', () => { chunks += 1; });
    const done = new Promise((resolve) => client.on('stream_complete', resolve));
    await client.start({ prompt, provider: 'echo', echo: { delta_chars: 8, interval_ms: 5 },
                         pacing: { mode: 'fixed', cps: 2000 } });
    const ev = await done;
    return { transport: client.transport, chunks, final: ev.html, editor: editor.getHTML(),
             fresh: fresh(ev.html), active: editor.storage.streamContent.active,
             kept: sessionStorage.getItem('streamer:client') !== null };
  },
};
"""

APP_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="main.css"></head>
<body><div id="editor"></div><div id="fresh" hidden></div>
<script type="module" src="main.js"></script></body></html>
"""

PROMPT = """# Packed

A paragraph with **bold**, *italic* and `code`.

- one
- two

```python
print("hi")
```

> quoted
"""


@dataclass
class App:
    folder: Path
    packed: list[str]  # the tarball's files
    metafile: dict[str, Any]  # esbuild's


@dataclass
class Site:
    folder: Path  # what the app's origin serves (the bundle goes there)
    url: str


def _run(args: list[str], cwd: Path, timeout: int = 300) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            check=False)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module", autouse=True)
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app's own origin; the module's streamer server (started after this autouse fixture
    of the same scope, with this environment) allows it (CORS)."""
    folder = tmp_path_factory.mktemp("site")
    with ExitStack() as stack, pytest.MonkeyPatch.context() as env:
        url = stack.enter_context(serve_folder(folder))
        env.setenv("STREAMER_SECURITY_ALLOWED_ORIGINS", url)
        yield Site(folder, url)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[App]:
    """The tarball packed, installed into a fresh app with its peers, the app bundled into the
    site's folder."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("needs npm (`make test` installs Node.js)")
    folder = tmp_path_factory.mktemp("npm") / "app"
    folder.mkdir()
    packed = json.loads(_run([npm, "pack", "--json", "--pack-destination", str(folder)],
                             cwd=STATIC))[0]
    versions = json.loads(BUILD.read_text())["devDependencies"]
    peers = [f"{name}@{versions[name]}" for name in
             ("@tiptap/core", "@tiptap/pm", "@tiptap/starter-kit", "esbuild")]
    (folder / "package.json").write_text(json.dumps(
        {"name": "fresh-app", "private": True, "type": "module"}))
    _run([npm, "install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts",
          f"./{packed['filename']}", *peers], cwd=folder, timeout=600)
    (folder / "main.js").write_text(APP_JS)
    esbuild = folder / "node_modules" / ".bin" / "esbuild"
    _run([str(esbuild), "main.js", "--bundle", "--format=esm", f"--outdir={site.folder}",
          "--metafile=meta.json", "--log-level=warning"], cwd=folder)
    (site.folder / "index.html").write_text(APP_HTML)
    yield App(folder, [f["path"] for f in packed["files"]],
              json.loads((folder / "meta.json").read_text()))


def test_the_tarball_holds_the_package_and_nothing_else(app: App) -> None:
    files = set(app.packed)
    assert {"package.json", "README.md", "LICENSE", "CHANGELOG.md", "client.js",
            "stream-content.css", "tiptap-peer.js", "src/persist.js"} <= files
    package = json.loads((STATIC / "package.json").read_text())
    for target in package["exports"].values():  # every entry, and its declarations
        for path in [target] if isinstance(target, str) else target.values():
            assert path.removeprefix("./") in files, path
    assert all(f"types/{p.removesuffix('.js')}.d.ts" in files
               for p in files if p.endswith(".js"))
    assert not [p for p in files if p.split("/")[0] in ("demo", "vendor", "build", "node_modules")]
    assert package["sideEffects"] == ["*.css"]
    assert package["engines"]["node"]
    assert package["repository"]["directory"] == "streamer/static"
    installed = app.folder / "node_modules" / "@streamer" / "client"
    assert sorted(str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()) \
        == sorted(files)


def test_the_installed_declarations_type_check(app: App) -> None:
    """``consumer.ts`` (every entry by its package name; its ``@ts-expect-error`` lines fail
    if a declaration were ``any``) against the package as installed from the tarball."""
    node = shutil.which("node")
    if node is None or not TSC.is_file():
        pytest.fail("needs tests/node's typescript: `cd tests/node && npm ci`")
    check = app.folder / "check"
    check.mkdir(exist_ok=True)
    shutil.copy(CONSUMER / "consumer.ts", check)
    config = json.loads((CONSUMER / "tsconfig.json").read_text())
    config["compilerOptions"]["preserveSymlinks"] = False
    (check / "tsconfig.json").write_text(json.dumps(config))
    (check / "package.json").write_text('{"private": true, "type": "module"}')
    _run([node, str(TSC), "-p", str(check)], cwd=check)


def test_the_bundle_has_one_prosemirror_and_keeps_the_css(app: App, site: Site) -> None:
    inputs = list(app.metafile["inputs"])
    models = [p for p in inputs if p.endswith("prosemirror-model/dist/index.js")]
    assert models == ["node_modules/prosemirror-model/dist/index.js"], models
    assert "node_modules/@streamer/client/tiptap-peer.js" in inputs  # '#tiptap' → the app's
    assert ".stream-caret" in (site.folder / "main.css").read_text()  # sideEffects keeps it


def test_the_bundle_streams_an_answer_into_an_editor_in_chromium(
        app: App, site: Site, browser: Any, server_process: Any) -> None:  # noqa: F811
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{site.url}/index.html")
        page.wait_for_function("window.app !== undefined")
        result = page.evaluate("([prompt, base]) => app.run(prompt, base)",
                               [PROMPT, server_process.base_url])
        assert result["transport"] == "websocket"
        assert result["chunks"] > 3, result  # it streamed, in pieces
        assert "<h1>Packed</h1>" in result["final"] and "language-python" in result["final"]
        assert result["editor"] == result["fresh"], result
        assert result["active"] is False and result["kept"] is True
        assert page.evaluate("app.protocol") == 2
        assert not errors, errors
    finally:
        context.close()
