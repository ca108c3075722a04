"""The demo page in a real browser: Playwright's Python package driving Debian's chromium.

The server runs as a real child process (``streamer serve --port 0``); the browser is
``/usr/bin/chromium`` with the flags this machine needs (never a downloaded browser).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
RICH = (Path(__file__).parents[1] / "data" / "rich.md").read_text()


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
    page = browser.new_page(bypass_csp=True)  # Playwright polls with eval; see the CSP test
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


@pytest.mark.parametrize(("transport", "how"), [("websocket", "drop"), ("sse", "drop"),
                                                ("websocket", "close-socket")])
def test_dropped_connections_resume_exactly_in_the_editor(page: Any, transport: str,
                                                          how: str) -> None:
    """The connection is dropped twice mid-stream (the page's Drop button, or the WebSocket
    itself closed under the client as a network failure closes it): the client reconnects,
    resumes after its last seq (no snapshot needed, nothing doubled) and the editor (through
    the StreamContent extension) ends exact."""
    page.select_option("#provider", "echo")
    page.select_option("#transport", transport)
    page.wait_for_function("() => window.streamerDemo.client.state === 'connected'")
    page.evaluate("""() => {
        window.__seen = {snapshots: 0, resumed: 0, chunks: 0};
        const c = window.streamerDemo.client;
        c.on('snapshot', () => { window.__seen.snapshots += 1; });
        c.on('chunk', () => { window.__seen.chunks += 1; });
        c.on('connection', (s) => { if (s.state === 'connected' && s.resumed)
            window.__seen.resumed += 1; });
    }""")
    page.evaluate("""(prompt) => window.streamerDemo.client.start({
        prompt, provider: 'echo', echo: {delta_chars: 4, interval_ms: 5},
        pacing: {mode: 'fixed', cps: 600}})""", RICH * 3)
    for n in (10, 60):
        page.wait_for_function(f"() => window.__seen.chunks > {n}", timeout=30_000)
        page.wait_for_function("streamerDemo.client.state === 'connected'", timeout=15_000)
        if how == "drop":
            page.click("#btn-drop")
        else:
            page.evaluate("streamerDemo.client._ws.close(4000, 'network gone')")
    page.wait_for_function("() => document.body.dataset.streamState === 'complete'",
                           timeout=60_000)
    result = page.evaluate("""() => ({seen: window.__seen,
        equal: window.streamerDemo.lastCheck.equal, transport: window.streamerDemo.client.transport,
        editor: window.streamerDemo.editor.getHTML(),
        fresh: window.streamerDemo.freshEditorHTML(window.streamerDemo.lastComplete.html)})""")
    assert result["seen"]["resumed"] == 2 and result["seen"]["snapshots"] == 0
    assert result["transport"] == transport
    assert result["equal"] and result["editor"] == result["fresh"]
    assert page.evaluate("streamerDemo.binding") is None  # finished: the extension let go


def _poll(page: Any, expression: str, timeout_s: float = 30) -> None:
    """Wait until ``expression`` is true, asking with ``evaluate`` (CDP, which the page's CSP
    does not govern: ``wait_for_function`` evaluates strings in the page, which it forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def test_the_demo_works_under_its_content_security_policy(browser: Any,
                                                          server_process: Any) -> None:
    """The page as served (``script-src 'self'`` plus its import map's hash, ``connect-src
    'self'``): the import map applies, the WebSocket connects, an answer streams, and the
    browser reports no violation."""
    context = browser.new_context()
    try:
        page = context.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        response = page.goto(server_process.base_url + "/")
        assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
        _poll(page, "window.streamerDemo && streamerDemo.client.state === 'connected'")
        assert page.evaluate("streamerDemo.client.transport") == "websocket"
        page.select_option("#provider", "echo")
        page.select_option("#pacing-mode", "off")
        page.fill("#prompt", RICH)
        page.click("#btn-start")
        _poll(page, "document.body.dataset.streamState === 'complete'")
        assert page.evaluate("streamerDemo.lastCheck.equal")
        assert not violations and not errors, (violations, errors)
    finally:
        context.close()
