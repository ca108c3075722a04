"""A real OpenAI-compatible server that nobody here wrote: llama-cpp-python's own server
(``python -m llama_cpp.server``) running the embedded Gemma model on 127.0.0.1, driven
through the ``openai`` provider and the whole streamer pipeline."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import trio

from streamer.config import LocalProviderConfig
from streamer.providers.local import resolve_model_path
from streamer.runtime.registry import Registry
from tests.conftest import make_config
from tests.shells.test_pipeline import connect, start

pytestmark = pytest.mark.local_model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = resolve_model_path(LocalProviderConfig())
    port = free_port()
    log = tmp_path_factory.mktemp("llamacpp") / "server.log"
    process = subprocess.Popen(  # its log goes to a file: a full pipe would block it
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_threads", "1", "--n_ctx", "1024", "--chat_format", "gemma"],
        stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):  # bounded: 60 s for the model to load
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("llama_cpp.server did not start within 60 s")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_the_openai_provider_streams_from_llama_cpp_server(
        llamacpp_server: str, nursery: trio.Nursery) -> None:
    async with httpx.AsyncClient() as client:
        models = (await client.get(f"{llamacpp_server}/models")).json()["data"]
    assert models[0]["id"].endswith(".gguf")  # a file path: never shown to browsers
    registry = Registry(make_config(**{
        "providers.openai.base_url": llamacpp_server, "providers.openai.model": "gemma",
        "providers.openai.api_key_env": "STREAMER_NO_KEY", "providers.openai.max_tokens": 24}))
    registry.bind(nursery)
    session = registry.get_or_create("llamacpp-srv-1")
    _connection, recorder = await connect(nursery, session)
    stream = session.submit(start("Name three rivers.", provider="openai", mode="off"))
    with trio.fail_after(120):
        complete = await recorder.wait_for("stream_complete")
    assert complete["finish_reason"] in ("stop", "length") and complete["markdown"].strip()
    assert "".join(recorder.document()) == complete["html"]
    # llama-cpp-python's server ignores stream_options.include_usage: no usage chunk, so none
    # is reported (never a made-up count)
    assert complete.get("usage") is None
    assert stream.model == "gemma" and not recorder.of("error")
