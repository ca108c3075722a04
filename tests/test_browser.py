"""The demo page in a real browser: Playwright's Python package driving Debian's chromium.

The server runs as a real child process (``streamer serve --port 0``); the browser is
``/usr/bin/chromium`` with the flags this machine needs (never a downloaded browser).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
RICH = (Path(__file__).parent / "data" / "rich.md").read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() uses a fresh, empty profile directory of its own every time
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, server_process: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server_process.base_url + "/")
    page.wait_for_function("() => window.streamerDemo && window.streamerDemo.editor")
    yield page
    page.close()
    assert not errors, errors


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_demo_page_streams_an_echo_document_into_the_editor(page: Any, transport: str) -> None:
    page.select_option("#provider", "echo")
    page.select_option("#transport", transport)
    page.select_option("#pacing-mode", "off")
    page.fill("#prompt", RICH)
    page.click("#btn-start")
    page.wait_for_function("() => document.body.dataset.streamState === 'complete'",
                           timeout=30_000)
    result = page.evaluate("""() => {
        const demo = window.streamerDemo;
        return {editor: demo.editor.getHTML(), final: demo.lastComplete.html,
                fresh: demo.freshEditorHTML(demo.lastComplete.html),
                transport: demo.client.transport};
    }""")
    assert result["transport"] == transport
    assert "<table" in result["editor"] and "language-python" in result["editor"]
    assert result["editor"] == result["fresh"]
