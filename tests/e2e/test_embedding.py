"""The public Python API (issue 18): the example app of ``examples/embed_app.py`` run as the
README runs it, in Chromium under its path prefix; ``Streamer`` and ``serve`` in process with
a root path, without the demo page, with an auth hook; ``streamer config check`` as a command;
setup errors of a provider not retried."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import streamer
from streamer.providers import Finish, Provider, ProviderRequest, TextDelta
from streamer.security.identity import Identity, RequestInfo
from tests.conftest import make_config, serving
from tests.e2e.test_browser import browser  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "embed_app.py"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}


@pytest.fixture(scope="module")
def example_app() -> Iterator[str]:
    """``.venv/bin/python examples/embed_app.py`` (the README's command) on a free port."""
    with serving([sys.executable, str(EXAMPLE)], {**_clean_env(), "STREAMER_SERVER_PORT": "0"},
                 cwd=ROOT) as served:
        yield served.base_url


def test_the_example_serves_its_site_and_streamer_under_the_prefix(example_app: str) -> None:
    site = httpx.get(example_app + "/")
    assert site.status_code == 200 and 'href="/streamer/"' in site.text
    assert "Content-Security-Policy" not in site.headers  # the site's page, not streamer's
    page = httpx.get(example_app + "/streamer/")
    assert page.status_code == 200 and 'src="static/demo/demo.js"' in page.text
    assert httpx.get(example_app + "/streamer/static/demo/demo.js").status_code == 200
    assert httpx.get(example_app + "/static/demo/demo.js").status_code == 404  # the site's
    listing = httpx.get(example_app + "/streamer/api/providers").json()
    assert listing["default"] == "almanac"
    almanac = next(p for p in listing["providers"] if p["name"] == "almanac")
    assert almanac == {"name": "almanac", "type": "custom", "model": "almanac-1",
                       "models": ["almanac-1"], "any_model": False, "default": True,
                       "supports": {"tools": True, "reasoning": False}}
    assert "moon_phase" in [t["name"] for t in listing["tools"]]
    made = httpx.post(example_app + "/streamer/api/sessions").json()
    assert made["ws_url"].startswith("/streamer/ws/stream/sess_")
    assert made["events_url"].startswith("/streamer/api/sessions/sess_")


@pytest.mark.browser
@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_a_custom_tool_and_provider_stream_into_the_demo_page_under_a_prefix(
        browser: Any, example_app: str, transport: str,  # noqa: F811 - the fixture
        tmp_path_factory: pytest.TempPathFactory) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900}, bypass_csp=True)
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    page.goto(example_app + "/")
    page.click("#open-streamer")
    page.wait_for_function("() => window.streamerDemo && window.streamerDemo.editor")
    # the menu comes from GET /api/providers: the example's provider, chosen as the default
    page.wait_for_function("() => document.querySelector('#provider option[value=almanac]')")
    assert page.eval_on_selector("#provider", "s => s.value") == "almanac"
    assert page.eval_on_selector("#provider", "s => s.selectedOptions[0].textContent") \
        == "almanac (almanac-1) · tools"
    page.select_option("#transport", transport)
    page.wait_for_function(f"streamerDemo.client.transport === '{transport}' && "
                           "streamerDemo.client.state === 'connected'", timeout=15_000)
    page.select_option("#pacing-mode", "off")
    page.check("#use-tools")
    page.fill("#prompt", "What is the moon like tonight?")
    page.click("#btn-start")
    page.wait_for_function("() => document.body.dataset.streamState === 'complete'",
                           timeout=30_000)
    shown = page.evaluate("""() => ({
        tools: [...document.querySelectorAll('#tool-list li')].map(li => li.textContent),
        editor: window.streamerDemo.editor.getHTML(),
        equal: window.streamerDemo.lastCheck && window.streamerDemo.lastCheck.equal,
    })""")
    page.screenshot(path=str(tmp_path_factory.mktemp("artifacts") / f"embed-{transport}.png"))
    page.close()
    assert not errors, errors
    assert len(shown["tools"]) == 1 and "moon_phase" in shown["tools"][0], shown["tools"]
    phase = re.search(r'"phase":\s*"([a-z ]+)"', shown["tools"][0])
    assert phase, shown["tools"][0]
    assert f"Tonight's moon is a <strong>{phase.group(1)}</strong>" in shown["editor"]
    assert "<h2>The moon on " in shown["editor"] and shown["equal"]
    # everything the page asked of the server went under the prefix
    mine = [url for url in requests if url.split("/")[2] == example_app.split("/")[2]]
    paths = ["/" + url.split("/", 3)[3] for url in mine]
    assert paths[0] == "/" and all(p.startswith("/streamer/") for p in paths[1:]), paths
    assert any("/streamer/api/providers" in p for p in paths)
    live = "/streamer/ws/stream/" if transport == "websocket" else "/streamer/api/sessions/"
    assert any(p.startswith(live) for p in paths), paths


# -- the API in process -----------------------------------------------------------------------

class Upper(Provider):
    """A provider of the test's own: the prompt in capitals."""

    name = "upper"
    sends_tools = False

    def model_for(self, request: ProviderRequest) -> str:
        return "upper-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> Any:
        yield TextDelta(request.messages[-1].content.upper())
        yield Finish("stop")


async def _serve(nursery: trio.Nursery, app: streamer.Streamer, asgi: Any = None
                 ) -> tuple[str, trio.Event]:
    stop = trio.Event()
    binds = await nursery.start(partial(app.serve, asgi, shutdown_trigger=stop.wait))
    return binds[0], stop


async def test_streamer_serves_under_its_root_path_without_the_demo(
        nursery: trio.Nursery) -> None:
    config = make_config(**{"server.root_path": "/chat/", "server.serve_demo": False,
                            "policy.providers": ("upper", "echo")})
    app = streamer.Streamer(config)
    app.add_provider(Upper())
    base, stop = await _serve(nursery, app)
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/chat/")).status_code == 404  # serve_demo = false
        assert (await client.get("/chat/static/client.js")).status_code == 200
        assert (await client.get("/static/client.js")).status_code == 404  # outside the prefix
        listing = (await client.get("/chat/api/providers")).json()
        assert [p["name"] for p in listing["providers"]] == ["echo", "upper"]
        made = (await client.post("/chat/api/sessions")).json()
        assert made["ws_url"] == f"/chat/ws/stream/{made['session_id']}"
        done = await client.post(f"/chat/api/sessions/{made['session_id']}/complete",
                                 json={"type": "start", "prompt": "shout this",
                                       "provider": "upper"})
        assert done.json()["markdown"] == "SHOUT THIS", done.text
    stop.set()


async def test_the_auth_hook_and_the_module_level_serve(nursery: trio.Nursery) -> None:
    seen: list[RequestInfo] = []

    async def hook(info: RequestInfo) -> Identity | None:
        seen.append(info)
        if info.headers.get("x-site-user") == "carol":
            return Identity("carol", "hook", policy={"providers": ["echo"]})
        raise streamer.Unauthorized("sign in on the site first")

    config = make_config(**{"policy.providers": ("upper", "echo")})
    app = streamer.Streamer(config, auth_hook=hook)
    stop = trio.Event()
    binds = await nursery.start(partial(streamer.serve, config, app,
                                        shutdown_trigger=stop.wait))
    async with httpx.AsyncClient(base_url=binds[0]) as client:
        refused = await client.get("/api/providers")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        carol = await client.get("/api/providers", headers={"X-Site-User": "carol"})
        assert [p["name"] for p in carol.json()["providers"]] == ["echo"]  # her own policy
    assert seen and seen[-1].path == "/api/providers"
    with pytest.raises(ValueError, match="another configuration"):
        await streamer.serve(make_config(), app)
    stop.set()


def test_the_public_names_are_importable_from_the_package() -> None:
    code = ("import sys, streamer; assert 'quart' not in sys.modules; "
            "names = [getattr(streamer, n) for n in streamer.__all__]; "
            "assert 'quart' in sys.modules; print(len(names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=_clean_env())
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(streamer.__all__) >= 16


# -- configuration you can trust: the command, and setup errors ------------------------------

def test_config_check_exits_2_naming_the_key() -> None:
    command = [sys.executable, "-m", "streamer", "config", "check"]
    bad = subprocess.run(command, text=True, capture_output=True, timeout=60,
                         env={**_clean_env(), "STREAMER_PACING_PROGRESS_INTERVAL_MS": "-5"})
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("streamer: configuration error: "
                                  "pacing.progress_interval_ms must be > 0 (got -5.0)")
    typo = subprocess.run(command, text=True, capture_output=True, timeout=60,
                          env={**_clean_env(), "STREAMER_SERVER_PROT": "9000"})
    assert typo.returncode == 2 and "did you mean STREAMER_SERVER_PORT" in typo.stderr
    good = subprocess.run(command, text=True, capture_output=True, timeout=60,
                          env={**_clean_env(), "STREAMER_POLICY_PROVIDERS": "local,echo"})
    assert good.returncode == 0 and good.stdout.strip().endswith("configuration OK"), good
    served = subprocess.run([sys.executable, "-m", "streamer", "serve"], text=True,
                            capture_output=True, timeout=60,
                            env={**_clean_env(), "STREAMER_SERVER_PROT": "9000"})
    assert served.returncode == 2 and "STREAMER_SERVER_PROT" in served.stderr


@pytest.mark.config(**{"providers.local.model_path": "/nonexistent/model.gguf",
                       "policy.providers": ("local",)})
async def test_a_provider_setup_error_ends_the_stream_at_once(live_server: Any) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        made = (await client.post("/api/sessions")).json()
        done = (await client.post(f"/api/sessions/{made['session_id']}/complete",
                                  json={"type": "start", "prompt": "hi",
                                        "provider": "local"})).json()
        assert done["error"]["code"] == "provider_unavailable", done
        assert done["error"]["message"] == "the model provider is not configured"
        trace = (await client.get(f"/api/streams/{done['stream_id']}/trace")).json()["trace"]
    assert not [t for t in trace if t["event"] == "retry"], json.dumps(trace)


@pytest.mark.parametrize(("missing", "says"), [
    ("model_file", "model file /nonexistent/model.gguf not found (setting "
                   "providers.local.model_path)"),
    ("llama_cpp", "llama-cpp-python is not installed; install streamer[local]"),
])
async def test_local_setup_errors_are_not_retryable_and_say_what_to_do(
        monkeypatch: pytest.MonkeyPatch, missing: str, says: str) -> None:
    from streamer.config import LocalProviderConfig
    from streamer.conversation import Message
    from streamer.errors import ProviderUnavailable
    from streamer.providers.local import LocalProvider

    if missing == "llama_cpp":
        monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails: not installed
    provider = LocalProvider(LocalProviderConfig(model_path="/nonexistent/model.gguf"))
    with pytest.raises(ProviderUnavailable) as info:
        async with provider.stream(ProviderRequest(messages=(Message("user", "hi"),))) as events:
            async for _ in events:
                pass
    assert info.value.retryable is False  # the generation's retry policy gives up at once
    assert says in info.value.detail
    assert info.value.public_message == "the model provider is not configured"
