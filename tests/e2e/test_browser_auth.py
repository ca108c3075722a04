"""The demo page against a server that asks for credentials (``auth.mode = "api_key"``), in
Chromium: with no token it says ``unauthorized`` and shows a token field; a wrong token is
asked again; a good one is kept in ``sessionStorage`` (this tab only), goes out as the
WebSocket subprotocol ``bearer.<token>`` (the server selects ``streamer``) and the sample
streams. An identity whose policy leaves ``echo`` out gets a message that says so, over
WebSocket and over SSE. Screenshots of both go to ``tests/artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamer.security.apikeys import key_entry, new_key
from tests.e2e.test_browser import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
#: Alice may use the server's providers (echo included, tests/conftest.py); Bob's own policy
#: allows only `local`
ALICE = new_key()
BOB = new_key()
TOKEN_KEY = "streamer-demo-token"


@pytest.fixture(scope="module", autouse=True)
def api_key_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The module's server (``server_process``, which copies this environment when it starts,
    after this autouse fixture of the same scope) asks for API keys: Alice's and Bob's."""
    keys = tmp_path_factory.mktemp("keys") / "keys.toml"
    keys.write_text(key_entry(ALICE, "alice", "alice-e2e") + key_entry(BOB, "bob", "bob-e2e")
                    + '[keys.policy]\nproviders = ["local"]\n')
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STREAMER_AUTH_MODE", "api_key")
        env.setenv("STREAMER_AUTH_API_KEYS_FILE", str(keys))
        yield


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:  # noqa: F811 - the fixture imported above
    context = browser.new_context(bypass_csp=True)  # Playwright polls with eval
    yield context
    context.close()


def _note(pg: Any) -> str:
    return str(pg.evaluate("document.getElementById('token-note').textContent"))


def test_the_demo_asks_for_a_token_keeps_it_for_the_tab_and_streams(
        context: Any, server_process: Any) -> None:
    pg = context.new_page()
    pg.goto(server_process.base_url + "/")
    pg.wait_for_function("window.streamerDemo && streamerDemo.client.state === 'error'",
                         timeout=15_000)
    assert pg.is_visible("#token-form")
    assert pg.text_content("#error").startswith("unauthorized: ")
    assert _note(pg) == "This server needs a token to connect."
    assert pg.evaluate("streamerDemo.client.sessionId") is None  # the POST was refused
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "demo-token-asked.png"), full_page=True)

    pg.fill("#token", "stk_not-a-key")
    pg.click("#btn-token")
    pg.wait_for_function("streamerDemo.client.state === 'error'", timeout=15_000)
    assert _note(pg) == "The server refused this token: paste another one."

    pg.fill("#token", ALICE)
    pg.click("#btn-token")
    pg.wait_for_function("streamerDemo.client.state === 'connected'", timeout=15_000)
    seen = pg.evaluate(f"""() => ({{transport: streamerDemo.client.transport,
        protocol: streamerDemo.client._ws.protocol, url: streamerDemo.client._ws.url,
        kept: sessionStorage.getItem('{TOKEN_KEY}'), local: localStorage.length,
        error: document.getElementById('error').hidden,
        field: document.getElementById('token').value}})""")
    assert seen["transport"] == "websocket" and seen["protocol"] == "streamer"
    assert ALICE not in seen["url"]  # never in a URL
    assert seen["kept"] == ALICE and seen["local"] == 0 and seen["field"] == ""
    assert seen["error"]  # the message went with the refusal

    pg.select_option("#provider", "echo")
    pg.select_option("#sample", "Everything")
    pg.click("#btn-start")
    pg.wait_for_function("document.body.dataset.streamState === 'complete'", timeout=30_000)
    assert pg.evaluate("streamerDemo.lastCheck.equal")

    pg.reload()  # the same tab: the kept token connects at once
    pg.wait_for_function("window.streamerDemo && streamerDemo.client.state === 'connected'",
                         timeout=15_000)
    assert _note(pg) == "A token is set for this tab."
    other = context.browser.new_page()  # another context: another tab's storage, no token
    try:
        other.goto(server_process.base_url + "/")
        other.wait_for_function("window.streamerDemo && streamerDemo.client.state === 'error'",
                                timeout=15_000)
    finally:
        other.close()


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_a_refused_echo_provider_is_said_clearly(context: Any, server_process: Any,
                                                 transport: str) -> None:
    context.add_init_script(f"sessionStorage.setItem('{TOKEN_KEY}', '{BOB}')")
    pg = context.new_page()
    pg.goto(server_process.base_url + "/")
    pg.wait_for_function("window.streamerDemo && streamerDemo.client.state === 'connected'",
                         timeout=15_000)
    pg.select_option("#transport", transport)
    pg.wait_for_function(f"streamerDemo.client.transport === '{transport}' && "
                         "streamerDemo.client.state === 'connected'", timeout=15_000)
    pg.select_option("#provider", "echo")
    pg.click("#btn-start")
    pg.wait_for_function("!document.getElementById('error').hidden", timeout=15_000)
    pg.wait_for_timeout(300)  # anything else that would follow the refusal
    message = pg.text_content("#error")
    assert message.startswith("forbidden: this server does not allow the echo provider"), message
    assert "policy.providers" in message
    assert pg.evaluate("document.querySelector('#provider option[value=echo]').textContent") \
        == "echo (not allowed by this server)"
    assert pg.evaluate("document.body.dataset.streamState") != "streaming"
    assert pg.evaluate("streamerDemo.client.state") == "connected"  # the connection stays
    if transport == "websocket":
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "demo-echo-refused.png"), full_page=True)
