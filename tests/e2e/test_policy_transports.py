"""The server's policy (issue 14) against a live server, on every door: a provider or model
not allowed is ``forbidden``; ``max_tokens`` is clamped and ``stream_start`` says so; a spent
daily budget is ``quota_exceeded`` (429). Per-identity policy comes from a JWT claim."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import jwt
import pytest
import trio
from trio_websocket import open_websocket_url

from streamer.server import serve
from tests.conftest import LiveServer, create_session, make_config, sse_events

SECRET = "p" * 48
CLAIM = "streamer_policy"


def start(provider: str = "echo", prompt: str = "hello world", **extra: Any) -> dict[str, Any]:
    return {"type": "start", "prompt": prompt, "provider": provider,
            "echo": {"delta_chars": 4, "interval_ms": 0}, "pacing": {"mode": "off"}, **extra}


def bearer(subject: str, **policy: Any) -> dict[str, str]:
    tok = jwt.encode({"sub": subject, "exp": int(time.time()) + 600, CLAIM: policy}, SECRET,
                     "HS256")
    return {"Authorization": f"Bearer {tok}"}


async def ws_until(url: str, messages: list[dict[str, Any]], until: str,
                   headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Send ``messages`` after ``connected``; the events up to the ``until``-th kind."""
    events: list[dict[str, Any]] = []
    with trio.fail_after(15):
        async with open_websocket_url(url, extra_headers=list((headers or {}).items())) as ws:
            events.append(json.loads(await ws.get_message()))
            for message in messages:
                await ws.send_message(json.dumps(message))
            while True:
                events.append(json.loads(await ws.get_message()))
                if events[-1]["type"] == until:
                    return events


@pytest.fixture
async def jwt_server(nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
                     ) -> AsyncIterator[LiveServer]:
    monkeypatch.setenv("STREAMER_JWT_SECRET", SECRET)
    stop = trio.Event()
    config = make_config(**{"auth.mode": "jwt", "auth.jwt_policy_claim": CLAIM,
                            "policy.providers": ("echo",)})
    binds = await nursery.start(partial(serve, config, shutdown_trigger=stop.wait))
    yield LiveServer(binds[0], config)
    stop.set()


@pytest.mark.config(**{"policy.providers": ("local",)})
async def test_a_provider_or_model_not_allowed_is_forbidden_on_every_transport(
        live_server: LiveServer) -> None:
    session_id = await create_session(live_server.base_url, "policy-forbid-1")
    events = await ws_until(f"{live_server.ws_url}/ws/stream/{session_id}",
                            [start("echo"), start("local", model="big"),
                             {"type": "ping", "ts": 1}], "pong")
    errors = [ev for ev in events if ev["type"] == "error"]
    assert [e["code"] for e in errors] == ["forbidden", "forbidden"]
    assert "'echo'" in errors[0]["message"] and "'big'" in errors[1]["message"]
    assert not any(ev["type"] == "stream_start" for ev in events)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        async with client.stream("GET", f"/api/sessions/{session_id}/events") as response:
            body = ""
            async for text in response.aiter_text():
                body += text
                if sse_events(body):
                    break
            connection_id = sse_events(body)[0]["connection_id"]
            control = await client.post(f"/api/sessions/{session_id}/control",
                                        params={"connection_id": connection_id},
                                        json=start("echo"))
        complete = await client.post(f"/api/sessions/{session_id}/complete", json=start("echo"))
        chat = await client.post("/api/chat", json={
            "id": session_id, "provider": "echo",
            "messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]})
    for response in (control, complete, chat):
        assert response.status_code == 403 and response.json()["code"] == "forbidden"
        assert "'echo'" in response.json()["message"]


async def test_max_tokens_above_the_maximum_is_clamped_and_said_in_stream_start(
        jwt_server: LiveServer) -> None:
    headers = bearer("carol", max_tokens=5)
    session_id = await create_session(jwt_server.base_url, "policy-clamp-1", headers)
    events = await ws_until(f"{jwt_server.ws_url}/ws/stream/{session_id}",
                            [start(max_tokens=1_000_000)], "stream_complete", headers)
    stream_start = next(ev for ev in events if ev["type"] == "stream_start")
    assert stream_start["max_tokens"] == 5
    assert stream_start["max_tokens_requested"] == 1_000_000
    complete = events[-1]
    assert complete["markdown"] == "hello" and complete["finish_reason"] == "length"


async def test_a_spent_daily_budget_is_quota_exceeded_until_midnight_utc(
        jwt_server: LiveServer) -> None:
    dave = bearer("dave", daily_chars=5)
    async with httpx.AsyncClient(base_url=jwt_server.base_url, timeout=15,
                                 headers=dave) as client:
        session_id = await create_session(jwt_server.base_url, "policy-quota-1", dave)
        first = await client.post(f"/api/sessions/{session_id}/complete", json=start())
        assert first.status_code == 200 and first.json()["markdown"] == "hello world"
        second = await client.post(f"/api/sessions/{session_id}/complete", json=start())
    body = second.json()
    assert second.status_code == 429 and body["code"] == "quota_exceeded" and body["retryable"]
    to_midnight_ms = (86_400 - time.time() % 86_400) * 1000
    assert abs(body["retry_after_ms"] - to_midnight_ms) < 60_000
    assert int(second.headers["Retry-After"]) == max(1, round(body["retry_after_ms"] / 1000))
    events = await ws_until(f"{jwt_server.ws_url}/ws/stream/{session_id}", [start()],
                            "error", dave)
    assert events[-1]["code"] == "quota_exceeded"
    erin = bearer("erin", daily_chars=5)  # budgets are per identity
    other = await create_session(jwt_server.base_url, "policy-quota-2", erin)
    events = await ws_until(f"{jwt_server.ws_url}/ws/stream/{other}", [start()],
                            "stream_complete", erin)
    assert events[-1]["finish_reason"] == "stop"
