"""The server's policy through the real pipeline (session → stream → connection), in virtual
time: what a client is refused, what ``stream_start`` says, what an answer is charged."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import trio
import trio.testing

from streamer.providers import Finish, Provider, ProviderRequest, TextDelta, Usage
from streamer.security.identity import Identity
from streamer.security.policy import Policy
from tests.shells.test_pipeline import connect, open_pipeline

#: 2025-03-01 20:30:00 UTC, 3.5 hours before midnight
NOW = 1_740_861_000.0
TO_MIDNIGHT_MS = 12_600_000


class FakeLocal(Provider):
    """Stands in for ``local``: answers "ok" and remembers the ``max_tokens`` it was given."""

    name = "local"

    def __init__(self) -> None:
        self.max_tokens: list[int | None] = []

    def model_for(self, request: ProviderRequest) -> str:
        return "gemma-3-270m-q4_k_m"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        self.max_tokens.append(request.max_tokens)
        yield TextDelta("ok")
        yield Usage(7, 1)
        yield Finish("stop")


def start(provider: str = "echo", prompt: str = "abcdefghij", **fields: Any) -> str:
    return json.dumps({"type": "start", "prompt": prompt, "provider": provider,
                       "pacing": {"mode": "off"}, **fields})


async def test_echo_is_forbidden_when_the_policy_does_not_list_it(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    _registry, session = await open_pipeline(nursery, **{"policy.providers": ("local",)})
    connection, recorder = await connect(nursery, session)
    await connection.receive(start("echo"))
    error = await recorder.wait_for("error")
    assert error["code"] == "forbidden" and "'echo'" in error["message"]
    assert not error["retryable"] and not session.streams


async def test_a_model_the_policy_does_not_allow_is_forbidden(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    _registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    await connection.receive(start("echo", model="gpt-5"))
    error = await recorder.wait_for("error")
    assert error["code"] == "forbidden" and "'gpt-5'" in error["message"]
    assert not session.streams


async def test_max_tokens_above_the_maximum_is_clamped_and_said_in_stream_start(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    fake = FakeLocal()
    registry.providers.register(fake)
    connection, recorder = await connect(nursery, session)
    await connection.receive(start("local", max_tokens=1_000_000))
    await connection.receive(start("local", max_tokens=100))  # queued behind the first
    await recorder.wait_for("stream_complete", 2)
    starts = [ev for _, ev in recorder.of("stream_start")]
    clamped = [ev for ev in starts if ev.get("max_tokens_requested") == 1_000_000]
    assert clamped and all(ev["max_tokens"] == 512 for ev in clamped)
    queued = [ev for ev in starts if ev.get("queued")]
    assert queued and queued[0]["max_tokens"] == 100 and "max_tokens_requested" not in queued[0]
    assert fake.max_tokens == [512, 100]  # what the provider was really asked for


async def test_an_identity_max_tokens_cuts_the_answer(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    _registry, session = await open_pipeline(nursery)
    session.owner = Identity("alice", "api_key", {"max_tokens": 5})
    connection, recorder = await connect(nursery, session)
    await connection.receive(start("echo", max_tokens=50))
    complete = await recorder.wait_for("stream_complete")
    first = recorder.of("stream_start")[0][1]
    assert (first["max_tokens"], first["max_tokens_requested"]) == (5, 50)
    assert complete["markdown"] == "abcde" and complete["finish_reason"] == "length"


async def test_a_spent_daily_budget_is_quota_exceeded_until_the_next_utc_day(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"policy.daily_chars": 10})
    now = [NOW]
    registry.policy = Policy(registry.config, clock=lambda: now[0])
    connection, recorder = await connect(nursery, session)
    await connection.receive(start("echo", "x" * 12))
    complete = await recorder.wait_for("stream_complete")
    usage = complete["usage"]
    assert registry.policy.spent(session.owner) == (
        12, usage["input_tokens"] + usage["output_tokens"])
    await connection.receive(start("echo"))
    error = await recorder.wait_for("error")
    assert error["code"] == "quota_exceeded" and error["retryable"]
    assert error["retry_after_ms"] == TO_MIDNIGHT_MS
    assert len(session.streams) == 1
    now[0] += TO_MIDNIGHT_MS / 1000  # the next UTC day
    await connection.receive(start("echo"))
    assert (await recorder.wait_for("stream_complete", 2))["markdown"] == "abcdefghij"
