"""Errors tell strangers nothing (issue 14), through the real pipeline and the real server: a
bug in a stream, a failing tool, a retried provider and an HTTP error body each give the client
a code, a fixed or its own message and an ``error_id``; the trace keeps codes and ids; the
detail is in the server's log under the same id."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from streamer.errors import ProviderUnavailable
from streamer.providers import Provider, ProviderRequest, TextDelta
from streamer.tools import Tool, Tools
from tests.conftest import LiveServer, leaks, logged
from tests.shells.test_pipeline import connect, open_pipeline, start

SECRET_PATH = "/srv/operator/models/secret.gguf"


class Buggy(Provider):
    """Fails as a bug would (not a provider error), or ``failures`` times as an outage first."""

    name = "buggy"

    def __init__(self, bug: Exception | None, failures: int = 0) -> None:
        self.bug = bug
        self.failures = failures

    def model_for(self, request: ProviderRequest) -> str:
        return "buggy-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        if self.failures:
            self.failures -= 1
            raise ProviderUnavailable(f"buggy (http://10.0.0.7:8000/v1): cannot connect: "
                                      f"ConnectError('{SECRET_PATH}')")
        if self.bug is not None:
            raise self.bug
        yield TextDelta("fine")


async def run(nursery: trio.Nursery, provider: Provider) -> tuple[Any, Any]:
    registry, session = await open_pipeline(nursery, allow=(provider.name,))
    registry.providers.register(provider)
    _connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider=provider.name, mode="off"))
    with trio.fail_after(10):
        await recorder.wait_for("stream_complete")
    return stream, recorder


async def test_a_bug_in_a_stream_is_an_internal_error_without_its_repr(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    stream, recorder = await run(nursery, Buggy(TypeError(f"cannot read {SECRET_PATH}")))
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "internal_error" and error["message"] == "internal server error"
    assert leaks(error) == [] and error["stream_id"] == stream.stream_id
    traced = [e.to_json() for e in stream.trace if e.event == "error"]
    assert traced == [{"t_ms": traced[0]["t_ms"], "event": "error", "code": "internal_error",
                       "error_id": error["error_id"]}]
    line = logged(caplog, error)
    assert "internal_error" in line and "TypeError(" in line and SECRET_PATH in line


async def test_a_retried_outage_tells_its_id_in_the_trace_and_a_fixed_text_in_the_notice(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    stream, recorder = await run(nursery, Buggy(None, failures=1))
    (notice,) = [ev for _, ev in recorder.of("state") if ev["state"] == "retrying"]
    assert notice["code"] == "provider_unavailable"
    assert notice["message"] == "the model provider is unavailable"
    (retry,) = [e.to_json() for e in stream.trace if e.event == "retry"]
    assert retry["code"] == "provider_unavailable" and "message" not in retry
    assert "http://10.0.0.7:8000/v1" in logged(caplog, retry)
    assert stream.finish_reason == "stop" and not recorder.of("error")


async def test_a_failing_tool_tells_the_model_an_id_not_its_exception(
        caplog: pytest.LogCaptureFixture) -> None:
    def read_notes(name: str) -> str:
        raise PermissionError(f"{SECRET_PATH}: permission denied")

    def pick(n: int) -> int:
        if n < 0:
            raise ValueError("n must be >= 0")
        return n

    tools = Tools()
    notes = tools.register(read_notes, blocking=False)
    failed = await Tools.call(notes, "c1", "read_notes", {"name": "x"})
    assert failed.is_error and failed.content.startswith("error: the tool failed (err_")
    assert SECRET_PATH not in failed.content
    error_id = failed.content.removeprefix("error: the tool failed (").removesuffix(")")
    assert SECRET_PATH in logged(caplog, {"error_id": error_id})
    picker = Tool("pick", "", {}, pick, blocking=False)
    refused = await Tools.call(picker, "c2", "pick", {"n": -1})  # the tool's own words
    assert (refused.content, refused.is_error) == ("error: n must be >= 0", True)
    misfit = await Tools.call(picker, "c3", "pick", {"count": 1})
    assert misfit.content == "error: invalid arguments: missing a required argument: 'n'"


async def test_an_http_error_body_has_an_id_and_the_log_has_the_detail(
        live_server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "streamer.errors")
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        response = await client.post("/api/chat", content=b'{"messages": ',
                                     headers={"Content-Type": "application/json"})
    body = response.json()
    assert response.status_code == 400 and body["code"] == "invalid_message"
    assert set(body) == {"type", "code", "message", "error_id", "retryable"}
    assert body["message"].startswith("not valid JSON") and leaks(body) == []
    assert "invalid_message" in logged(caplog, body)
