"""Providers as plugins and as named instances (issue 18).

The example plugin package (``examples/streamer-plugin-shout``, its own ``pyproject.toml``)
is built and installed by ``uv pip install --target`` into a folder of this test module
(nothing is installed into ``.venv``; the folder goes at teardown), and a real server process
sees it through ``PYTHONPATH``: the entry point ``streamer.providers`` makes the provider
``shout``, and ``[providers.loud] type = "shout"`` a second instance with its own settings.
Beside them: two named ``openai_compat`` instances (``perplexity``, and ``ollama`` pointed at
a fake upstream on 127.0.0.1) and the built-in ``openai``. ``GET /api/providers`` lists what
each API key's policy allows, and answers stream through the plugin's providers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from streamer.security.apikeys import key_entry, new_key
from tests.conftest import ServerProcess, serving
from tests.shells.test_openai_provider import Upstream

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "streamer-plugin-shout"
ALICE, BOB = new_key(), new_key()


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")},
            **extra}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The plugin, built from a copy of its source and installed into a folder of its own."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(PLUGIN, source)  # the build writes build/ and *.egg-info beside it
    target = work / "site"
    done = subprocess.run([sys.executable, "-m", "uv", "pip", "install", "--quiet",
                           "--no-deps", "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (next(target.glob("streamer_plugin_shout-*.dist-info")) / "entry_points.txt"
            ).read_text().split() == ["[streamer.providers]", "shout", "=",
                                      "streamer_plugin_shout:ShoutProvider"]
    yield target
    shutil.rmtree(work)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    """A fake OpenAI-compatible server (the ``ollama`` instance's), in a thread."""
    server = Upstream()
    server.port = _free_port()
    threading.Thread(target=trio.run, daemon=True, args=(partial(
        trio.serve_tcp, server.handle, server.port, host="127.0.0.1"),)).start()
    return server


CONFIG = """
[auth]
mode = "api_key"
api_keys_file = "{keys}"

[policy]
providers = ["echo", "openai", "shout", "loud", "perplexity", "ollama"]
models = ["ollama:*", "perplexity:sonar-pro"]

[providers]
default = "shout"

[providers.loud]
type = "shout"
suffix = "!!!"
delta_chars = 5

[providers.perplexity]
type = "openai_compat"
preset = "perplexity"

[providers.ollama]
type = "openai_compat"
preset = "ollama"
base_url = "http://127.0.0.1:{port}/v1"

[persistence]
enabled = false
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Path:
    folder = tmp_path_factory.mktemp("config")
    keys = folder / "keys.toml"
    keys.write_text(key_entry(ALICE, "alice", "alice-1") + "\n"
                    + key_entry(BOB, "bob", "bob-1") + '[keys.policy]\nproviders = ["loud"]\n')
    path = folder / "streamer.toml"
    path.write_text(CONFIG.format(keys=keys, port=upstream.port))
    return path


@pytest.fixture(scope="module")
def server(plugin_path: Path, config_file: Path) -> Iterator[ServerProcess]:
    with serving([sys.executable, "-m", "streamer", "serve", "--config", str(config_file),
                  "--port", "0"], _env(PYTHONPATH=str(plugin_path),
                                       STREAMER_SERVER_DRAIN_TIMEOUT_S="1")) as served:
        yield served


def _get(server: ServerProcess, key: str, path: str) -> httpx.Response:
    return httpx.get(server.base_url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _complete(server: ServerProcess, key: str, **start: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    made = httpx.post(server.base_url + "/api/sessions", headers=headers).json()
    done = httpx.post(f"{server.base_url}/api/sessions/{made['session_id']}/complete",
                      json={"type": "start", **start}, headers=headers, timeout=60)
    assert done.status_code == 200, done.text
    return dict(done.json())


def _model(server: ServerProcess, key: str, done: dict[str, Any]) -> str:
    """The model the stream ran with (its trace's ``started`` entry)."""
    trace = _get(server, key, f"/api/streams/{done['stream_id']}/trace").json()["trace"]
    return str(next(t["model"] for t in trace if t["event"] == "started"))


def test_the_providers_are_listed_with_models_and_features(server: ServerProcess) -> None:
    listing = _get(server, ALICE, "/api/providers").json()
    by_name = {p["name"]: p for p in listing["providers"]}
    assert list(by_name) == ["echo", "openai", "loud", "perplexity", "ollama", "shout"]
    assert listing["default"] == "shout"
    assert by_name["shout"] == {"name": "shout", "type": "shout", "model": "shout-1",
                                "models": ["shout-1"], "any_model": False, "default": True,
                                "supports": {"tools": False, "reasoning": False}}
    assert by_name["loud"]["type"] == "shout" and not by_name["loud"]["default"]
    assert by_name["openai"]["model"] == "gpt-4o-mini"
    assert by_name["perplexity"] == {"name": "perplexity", "type": "openai_compat",
                                     "model": "sonar", "models": ["sonar", "sonar-pro"],
                                     "any_model": False, "default": False,
                                     "supports": {"tools": True, "reasoning": True}}
    assert by_name["ollama"]["model"] == "llama3.2" and by_name["ollama"]["any_model"]
    assert by_name["echo"]["supports"] == {"tools": False, "reasoning": False}


def test_the_callers_policy_filters_the_list(server: ServerProcess) -> None:
    listing = _get(server, BOB, "/api/providers").json()
    assert [p["name"] for p in listing["providers"]] == ["loud"]
    assert listing["default"] is None  # bob may not use shout
    assert _get(server, "stk_nobody", "/api/providers").status_code == 401


def test_the_plugin_streams_under_its_name_and_as_a_named_instance(server: ServerProcess) -> None:
    shouted = _complete(server, ALICE, prompt="hello plugin")  # the default: shout
    assert shouted["markdown"] == "HELLO PLUGIN!" and _model(server, ALICE, shouted) == "shout-1"
    assert shouted["finish_reason"] == "stop"
    loud = _complete(server, BOB, prompt="hello *plugin*", provider="loud")
    assert loud["markdown"] == "HELLO *PLUGIN*!!!"
    assert loud["html"] == "<p>HELLO <em>PLUGIN</em>!!!</p>\n"
    refused = httpx.post(server.base_url + "/api/sessions",
                         headers={"Authorization": f"Bearer {BOB}"}).json()
    forbidden = httpx.post(f"{server.base_url}/api/sessions/{refused['session_id']}/complete",
                           json={"type": "start", "prompt": "x", "provider": "shout"},
                           headers={"Authorization": f"Bearer {BOB}"})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"


def test_a_named_openai_compat_instance_streams_from_its_own_server(
        server: ServerProcess, upstream: Upstream) -> None:
    before = len(upstream.requests)
    done = _complete(server, ALICE, prompt="Say hi", provider="ollama", max_tokens=64)
    assert done["markdown"] and done["finish_reason"] == "stop", done
    assert _model(server, ALICE, done) == "llama3.2"
    sent = upstream.requests[before:]
    assert len(sent) == 1 and sent[0]["model"] == "llama3.2" and sent[0]["max_tokens"] == 64
    other = _complete(server, ALICE, prompt="Say hi", provider="ollama", model="qwen3:4b")
    assert _model(server, ALICE, other) == "qwen3:4b"
    assert upstream.requests[-1]["model"] == "qwen3:4b"


def test_config_check_finds_the_plugin_only_where_it_is_installed(
        plugin_path: Path, config_file: Path) -> None:
    command = [sys.executable, "-m", "streamer", "config", "check", "--config",
               str(config_file)]
    missing = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_env())
    assert missing.returncode == 2
    assert "providers.loud.type: 'shout' is neither built in nor an installed plugin" \
        in missing.stderr, missing.stderr
    found = subprocess.run(command, capture_output=True, text=True, timeout=60,
                           env=_env(PYTHONPATH=str(plugin_path)))
    assert found.returncode == 0, found.stderr
    # the perplexity instance's key is not set: said, not fatal
    assert ("warning: providers.perplexity: set the environment variable PERPLEXITY_API_KEY"
            in found.stdout), found.stdout


# -- in process: what a plugin's failure looks like -------------------------------------------

class FakeEntryPoint:
    def __init__(self, name: str, target: Any) -> None:
        self.name, self.value, self._target = name, f"fake:{name}", target

    def load(self) -> Any:
        return self._target


def test_a_plugin_that_refuses_its_settings_is_a_setup_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import streamer.providers as providers_module
    from streamer.config import NamedProviderConfig, ProvidersConfig
    from streamer.errors import ProviderUnavailable

    def picky(name: str, settings: dict[str, Any]) -> Any:
        raise ValueError(f"unknown setting(s) {', '.join(settings)}")

    def broken(name: str, settings: dict[str, Any]) -> Any:
        raise ImportError("No module named 'picky_sdk'")

    monkeypatch.setattr(providers_module, "entry_points", lambda group: [
        FakeEntryPoint("picky", picky), FakeEntryPoint("broken", broken),
        FakeEntryPoint("openai", picky)])
    config = ProvidersConfig(named=(NamedProviderConfig("p2", "picky", (("colour", "red"),)),))
    registry = providers_module.Providers(config)
    assert "openai" not in registry._plugins  # a plugin never shadows a built-in name
    assert registry.names()[-3:] == ["p2", "picky", "broken"]
    with pytest.raises(ProviderUnavailable) as info:
        registry.get("p2")
    assert info.value.retryable is False
    assert info.value.detail == "provider p2 (picky): unknown setting(s) colour"
    with pytest.raises(ProviderUnavailable, match="install the package that provides 'broken'"):
        registry.get("broken")
    assert registry.describe("broken") is None  # left out of GET /api/providers
