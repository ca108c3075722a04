"""The cancellation matrix of ``docs/architecture.md``, one test per cell, each read back from
the stream's trace as well as from what the clients got.

Every test runs on pytest-trio's ``autojump_clock``: the times asserted are exact virtual
times. The provider of each test (:class:`ScriptedProvider`) records what its model call saw:
when it was opened and closed, and whether it ended by itself or was closed under it (what a
model's server sees as its HTTP request closed). The trace must say the same thing at the
same time: its ``provider_call_closed`` entry (``closed_by``, the cancel's ``reason`` and
``since_cancel_ms``), and every ending's cause by name (``cancel_requested``/``cancelled``
with a reason, or ``error`` with a code).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from streamer.errors import ProviderError, ProviderUnavailable
from streamer.providers import Finish, Provider, ProviderRequest, TextDelta
from streamer.render.ops import apply_op
from streamer.runtime.connection import Connection
from streamer.runtime.registry import Registry
from streamer.runtime.stream import Stream
from streamer.transports.aisdk import CLOSED_REASON, ui_message_stream
from streamer.wire.controls import Pause, Resume, Stop
from streamer.wire.cursor import Cursor
from streamer.wire.events import op_from_chunk
from tests.shells.test_pipeline import Recorder, connect, open_pipeline, start

#: the tests' provider's name (allowed by the policy of each pipeline)
NAME = "scripted"


@dataclass
class Call:
    """One model call as the provider saw it (Trio's clock, s)."""

    opened_at: float
    closed_at: float | None = None
    #: the provider gave its whole answer (``False``: it was closed under it, or failed)
    ended: bool = False


class ScriptedProvider(Provider):
    """Says ``word0 word1 …``, one word every ``interval_s``, and records each call.

    Args:
        words: how many words before it finishes (``None``: without end).
        fail_calls: its first ``fail_calls`` calls fail before any output
            (``provider_unavailable``, ``retry_after_ms`` = ``retry_after_ms``).
        fail_after: after this many words, the call fails (``provider_error``).
        silent_after: after this many words, it says nothing more.
    """

    name = NAME

    def __init__(self, *, words: int | None = None, interval_s: float = 0.05,
                 fail_calls: int = 0, retry_after_ms: int = 250, fail_after: int | None = None,
                 silent_after: int | None = None) -> None:
        self.words, self.interval_s = words, interval_s
        self.fail_calls, self.retry_after_ms = fail_calls, retry_after_ms
        self.fail_after, self.silent_after = fail_after, silent_after
        self.calls: list[Call] = []

    def model_for(self, request: ProviderRequest) -> str:
        return "scripted-1"

    @property
    def closed_at(self) -> float:
        closed = self.calls[-1].closed_at
        assert closed is not None, "the provider's last call is still open"
        return closed

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        call = Call(trio.current_time())
        self.calls.append(call)
        try:
            if len(self.calls) <= self.fail_calls:
                raise ProviderUnavailable(f"{NAME}: overloaded",
                                          retry_after_ms=self.retry_after_ms)
            i = 0
            while self.words is None or i < self.words:
                if i == self.fail_after:
                    raise ProviderError(f"{NAME}: upstream reset the connection",
                                        retryable=True)
                if i == self.silent_after:
                    await trio.sleep_forever()
                yield TextDelta(f"word{i} ")
                i += 1
                await trio.sleep(self.interval_s)
            yield Finish("stop")
            call.ended = True
        finally:
            call.closed_at = trio.current_time()


async def pipeline(nursery: trio.Nursery, provider: ScriptedProvider, **config: Any
                   ) -> tuple[Registry, Any]:
    registry, session = await open_pipeline(nursery, allow=(NAME,), **config)
    registry.providers.register(provider)
    return registry, session


async def reconnect(nursery: trio.Nursery, session: Any, cursor: Cursor
                    ) -> tuple[Connection, Recorder]:
    """A connection that resumes from ``cursor`` (a client's reconnect): set before its task
    first runs (``connect`` only schedules it), so it follows from there."""
    connection, recorder = await connect(nursery, session)
    connection.resume = cursor
    return connection, recorder


def entries(stream: Stream, event: str) -> list[dict[str, Any]]:
    return [e.to_json() for e in stream.trace if e.event == event]


def only(stream: Stream, event: str) -> dict[str, Any]:
    found = entries(stream, event)
    assert len(found) == 1, (event, [e.to_json() for e in stream.trace])
    return found[0]


def at(stream: Stream, entry: dict[str, Any]) -> float:
    """An entry's time on Trio's clock (s)."""
    return stream.trace.t0 + entry["t_ms"] / 1000


def assert_same_time(a: float, b: float) -> None:
    assert a == pytest.approx(b, abs=2e-6)  # t_ms is rounded to the microsecond


def assert_cancelled(stream: Stream, provider: ScriptedProvider, reason: str,
                     t_cancel: float) -> None:
    """The trace names the cancel's ``reason`` at ``t_cancel``, and the provider's call was
    closed at that very time (the trace's ``provider_call_closed`` and the provider agree)."""
    requested = only(stream, "cancel_requested")
    assert requested["reason"] == reason
    assert_same_time(at(stream, requested), t_cancel)
    closed = entries(stream, "provider_call_closed")[-1]
    assert closed["closed_by"] == "cancel" and closed["reason"] == reason
    assert closed["since_cancel_ms"] == 0.0
    assert_same_time(provider.closed_at, t_cancel)
    assert_same_time(at(stream, closed), provider.closed_at)
    assert not provider.calls[-1].ended
    assert only(stream, "cancelled")["reason"] == reason


def assert_closed_by_error(stream: Stream, provider: ScriptedProvider, code: str,
                           t_error: float) -> None:
    """The trace names the error's ``code`` at ``t_error``, and the provider's call was
    closed by it then; no cancel is recorded."""
    assert only(stream, "error")["code"] == code
    assert_same_time(at(stream, only(stream, "error")), t_error)
    closed = entries(stream, "provider_call_closed")[-1]
    assert (closed["closed_by"], closed["code"]) == ("error", code)
    assert_same_time(provider.closed_at, t_error)
    assert_same_time(at(stream, closed), t_error)
    assert not provider.calls[-1].ended
    assert not entries(stream, "cancel_requested") and not entries(stream, "cancelled")


def persisted(stream: Stream) -> tuple[str | None, str]:
    """What the store is given of the answer: its ``finish_reason`` and markdown."""
    answer = stream.records()[-1]
    assert answer.role == "assistant"
    return answer.finish_reason, answer.markdown


def kinds(recorder: Recorder) -> list[str]:
    return [ev["type"] for _, ev in recorder.events]


# ------------------------------------------------------------------ one test per cell


async def test_stop_from_a_client(nursery: trio.Nursery,
                                  autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider()
    _, session = await pipeline(nursery, provider)
    first, first_rec = await connect(nursery, session)
    _, second_rec = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    await first_rec.wait_for("chunk", 3)
    t_stop = trio.current_time()
    await first.handle_control(Stop())
    one = await first_rec.wait_for("stream_complete")
    two = await second_rec.wait_for("stream_complete")
    assert one["finish_reason"] == two["finish_reason"] == "cancelled"
    assert_cancelled(stream, provider, "stop from client", t_stop)
    assert only(stream, "completed")["finish_reason"] == "cancelled"
    assert persisted(stream) == ("cancelled", one["markdown"])
    assert one["markdown"].startswith("word0 word1 word2")
    assert "error" not in kinds(first_rec) + kinds(second_rec)


async def test_client_disconnects_others_remain(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider(words=20)
    _, session = await pipeline(nursery, provider)
    leaving, leaving_rec = await connect(nursery, session)
    _, staying_rec = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    await leaving_rec.wait_for("chunk", 3)
    leaving.cancel_scope.cancel()  # the client goes away
    await trio.testing.wait_all_tasks_blocked()
    t_left = trio.current_time()
    complete = await staying_rec.wait_for("stream_complete")
    assert complete["finish_reason"] == "stop"
    assert complete["markdown"] == "".join(f"word{i} " for i in range(20))
    left = [e for e in entries(stream, "subscriber_left")
            if e["connection"] == leaving.connection_id]
    assert len(left) == 1 and left[0]["subscribers"] == 1
    assert_same_time(at(stream, left[0]), t_left)
    # the model call went on to its end: 20 words, one every 50 ms
    call = provider.calls[-1]
    assert call.ended and provider.closed_at - call.opened_at == pytest.approx(1.0, abs=1e-6)
    closed = only(stream, "provider_call_closed")
    assert (closed["closed_by"], closed["finish"]) == ("end", "stop")
    assert_same_time(at(stream, closed), provider.closed_at)
    assert not entries(stream, "cancel_requested") and not entries(stream, "error")
    assert "stream_complete" not in kinds(leaving_rec)


async def test_last_client_disconnects(nursery: trio.Nursery,
                                       autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider()
    registry, session = await pipeline(nursery, provider, **{"streams.grace_period_s": 5.0})
    first, first_rec = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    await first_rec.wait_for("chunk", 3)
    first.cancel_scope.cancel()
    await trio.testing.wait_all_tasks_blocked()
    last_seq = max(ev["seq"] for _, ev in first_rec.of("chunk"))
    await trio.sleep(2.0)  # back within the grace period: an exact resume
    second, second_rec = await reconnect(
        nursery, session, Cursor(stream.stream_id, registry.epoch, last_seq))
    await second_rec.wait_for("chunk", 2)
    resumed = only(stream, "resumed")
    assert (resumed["connection"], resumed["seq"]) == (second.connection_id, last_seq)
    # exact: what the first connection had, then the second's chunks, is the log's document
    assert not second_rec.of("snapshot") and not second_rec.of("error")
    blocks = first_rec.document()
    for _, ev in second_rec.of("chunk"):
        apply_op(blocks, op_from_chunk(ev))
    upto = max(ev["seq"] for _, ev in second_rec.of("chunk"))
    logged: list[str] = []
    for entry in stream.log.entries:
        if entry.seq <= upto:
            apply_op(logged, entry.op)
    assert blocks == logged and upto > last_seq
    assert not entries(stream, "cancel_requested")
    second.cancel_scope.cancel()  # gone again: the grace period runs out this time
    await trio.testing.wait_all_tasks_blocked()
    t_gone = trio.current_time()
    with trio.fail_after(60):
        await stream.done.wait()
    assert_cancelled(stream, provider, "no subscriber for 5 s", t_gone + 5.0)
    assert persisted(stream)[0] == "cancelled"
    assert persisted(stream)[1].startswith("word0 word1 word2")


async def test_an_ai_sdk_client_closes_its_chat_request(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider()
    _, session = await pipeline(nursery, provider)
    _, other_rec = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    response = ui_message_stream(session, stream)  # the body of POST /api/chat
    frames = []
    async for frame in response:
        frames.append(frame)
        if frame.count(b'"text-delta"') or len(frames) > 20:
            break
    assert any(b"word0" in frame for frame in frames)
    t_closed = trio.current_time()
    await response.aclose()  # the AI SDK's stop(): the fetch is aborted
    complete = await other_rec.wait_for("stream_complete")
    assert complete["finish_reason"] == "cancelled"
    assert_cancelled(stream, provider, CLOSED_REASON, t_closed)
    # the response is a reader of its own in the trace: joined, then left when it closed
    readers = [e for e in entries(stream, "subscriber_joined") if e.get("transport") == "aisdk"]
    assert len(readers) == 1
    left = only(stream, "subscriber_left")
    assert (left["connection"], left["transport"]) == (readers[0]["connection"], "aisdk")
    assert_same_time(at(stream, left), t_closed)
    assert persisted(stream)[0] == "cancelled"


async def test_pause_on_every_subscriber_past_the_limit(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider()
    _, session = await pipeline(nursery, provider, **{
        "streams.backpressure_chars": 40, "streams.paused_limit_s": 10.0})
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    await recorder.wait_for("chunk", 1)
    await connection.handle_control(Pause())
    with trio.fail_after(60):
        await stream.done.wait()
    held = only(stream, "backpressure")
    assert held["subscribers"] == 1 and not entries(stream, "backpressure_released")
    t_held = at(stream, held)
    # the provider is not read while held back: no word between the hold and the end
    assert stream.log.total_chars < 40 + 20
    assert_closed_by_error(stream, provider, "paused_too_long", t_held + 10.0)
    await connection.handle_control(Resume())
    complete = await recorder.wait_for("stream_complete")
    assert (await recorder.wait_for("error"))["code"] == "paused_too_long"
    assert kinds(recorder).index("error") < kinds(recorder).index("stream_complete")
    assert persisted(stream) == ("error", complete["markdown"]) and complete["markdown"]


async def test_provider_error_before_first_token(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider(words=3, fail_calls=2, retry_after_ms=250)
    registry, session = await pipeline(nursery, provider)
    _, recorder = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    complete = await recorder.wait_for("stream_complete")
    assert complete["finish_reason"] == "stop" and complete["markdown"] == "word0 word1 word2 "
    assert not recorder.of("error")  # the retries were enough: the client sees no error
    retries = entries(stream, "retry")
    assert [(r["attempt"], r["code"], r["retry_in_ms"]) for r in retries] == [
        (1, "provider_unavailable", 250), (2, "provider_unavailable", 250)]
    # each failed call was closed when it failed; the next opened after the wait it named
    closed = entries(stream, "provider_call_closed")
    assert [c["closed_by"] for c in closed] == ["error", "error", "end"]
    opened = [call.opened_at for call in provider.calls]
    assert [b - a for a, b in itertools.pairwise(opened)] == pytest.approx([0.25, 0.25], abs=1e-6)
    for call, entry in zip(provider.calls, closed, strict=True):
        assert call.closed_at is not None
        assert_same_time(at(stream, entry), call.closed_at)
    # when the retries run out, the client gets the error
    provider.fail_calls = 100
    failing = session.submit(start(provider=NAME, mode="off"))
    error = await recorder.wait_for("error")
    assert error["code"] == "provider_unavailable" and error["stream_id"] == failing.stream_id
    assert len(entries(failing, "retry")) == registry.config.streams.provider_retries
    assert only(failing, "error")["code"] == "provider_unavailable"
    assert only(failing, "completed")["finish_reason"] == "error"


async def test_provider_error_mid_stream(nursery: trio.Nursery,
                                         autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider(fail_after=4)
    _, session = await pipeline(nursery, provider)
    _, first_rec = await connect(nursery, session)
    _, second_rec = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    for recorder in (first_rec, second_rec):  # every subscriber: error, then stream_complete
        complete = await recorder.wait_for("stream_complete")
        assert (await recorder.wait_for("error"))["code"] == "provider_error"
        assert kinds(recorder).index("error") < kinds(recorder).index("stream_complete")
        assert complete["finish_reason"] == "error"
        assert complete["markdown"] == "word0 word1 word2 word3 "
    # the 4th word came 150 ms after the call opened, the failure 50 ms later
    t_failed = provider.calls[-1].opened_at + 0.2
    assert_closed_by_error(stream, provider, "provider_error", t_failed)
    assert entries(stream, "first_token") and not entries(stream, "retry")
    assert persisted(stream) == ("error", "word0 word1 word2 word3 ")


async def test_provider_silent_past_its_timeout(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider(silent_after=2)
    _, session = await pipeline(nursery, provider,
                                       **{"streams.provider_timeout_s": 7.0})
    _, first_rec = await connect(nursery, session)
    _, second_rec = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    for recorder in (first_rec, second_rec):
        complete = await recorder.wait_for("stream_complete")
        error = await recorder.wait_for("error")
        assert error["code"] == "provider_timeout" and complete["finish_reason"] == "error"
        assert complete["markdown"] == "word0 word1 "
    # the last word came 50 ms after the call opened; 7 s of silence later it was closed
    t_timeout = provider.calls[-1].opened_at + 0.05 + 7.0
    assert_closed_by_error(stream, provider, "provider_timeout", t_timeout)
    assert persisted(stream) == ("error", "word0 word1 ")


async def test_answer_larger_than_the_limit(nursery: trio.Nursery,
                                            autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider()
    _, session = await pipeline(nursery, provider, **{"streams.max_response_chars": 30})
    _, first_rec = await connect(nursery, session)
    _, second_rec = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    for recorder in (first_rec, second_rec):
        complete = await recorder.wait_for("stream_complete")
        assert (await recorder.wait_for("error"))["code"] == "response_too_large"
        assert complete["finish_reason"] == "error"
    # 5 words of 6 characters fill the 30; the 6th (250 ms after the first) is one too many
    t_cut = provider.calls[-1].opened_at + 0.25
    assert_closed_by_error(stream, provider, "response_too_large", t_cut)
    assert persisted(stream) == ("error", "word0 word1 word2 word3 word4 ")


async def test_server_shutdown(nursery: trio.Nursery,
                               autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider()
    registry, session = await pipeline(nursery, provider)
    _, recorder = await connect(nursery, session)
    stream = session.submit(start(provider=NAME, mode="off"))
    await recorder.wait_for("chunk", 2)
    t_drain = trio.current_time()
    await registry.drain(timeout_s=3.0)  # the drain time, then cancelled
    assert_cancelled(stream, provider, "server shutdown", t_drain + 3.0)
    assert only(stream, "completed")["finish_reason"] == "error"
    error = await recorder.wait_for("error")
    assert error["code"] == "server_shutting_down" and error["retry_after_ms"] > 0
    complete = await recorder.wait_for("stream_complete")
    assert complete["markdown"].startswith("word0")
    assert kinds(recorder).index("error") < kinds(recorder).index("stream_complete")
    assert persisted(stream) == ("error", complete["markdown"])
