"""The Trio shells without sockets: stream → log → subscription → pacer, in virtual time.

Every test runs on pytest-trio's ``autojump_clock``: times asserted are exact virtual times.
"""

from __future__ import annotations

import html
import re

from collections.abc import AsyncGenerator
from typing import Any

import pytest
import trio
import trio.testing

from streamer.conversation import Message
from streamer.providers import Finish, Provider, ProviderRequest, TextDelta, Usage
from streamer.render.chunker import text_length
from streamer.render.ops import apply_op
from streamer.runtime.connection import Connection
from streamer.runtime.registry import Registry
from streamer.wire.controls import Pacing, Pause, Resume, Skip, Speed, Start, Stop, parse_control
from streamer.wire.events import op_from_chunk
from tests.conftest import make_config

TEXT = "abcd" * 20  # one paragraph, no markdown: every 4-char delta is plain text


class Recorder:
    """A connection's far end: every event with the virtual time it was sent."""

    def __init__(self) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.changed = trio.Event()

    async def send(self, ev: dict[str, Any], event_id: str | None) -> None:
        self.events.append((trio.current_time(), ev))
        self.changed.set()
        self.changed = trio.Event()

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, ev) for t, ev in self.events if ev["type"] == kind]

    async def wait_for(self, kind: str, count: int = 1) -> dict[str, Any]:
        while len(self.of(kind)) < count:
            await self.changed.wait()
        return self.of(kind)[count - 1][1]

    def document(self) -> list[str]:
        blocks: list[str] = []
        for _, ev in self.of("chunk"):
            apply_op(blocks, op_from_chunk(ev))
        return blocks


class SlowProvider(Provider):
    """Yields one delta every ``interval_s`` until cancelled; records when its call closed."""

    name = "slow"

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.closed_at: float | None = None

    def model_for(self, request: ProviderRequest) -> str:
        return "slow-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        try:
            i = 0
            while True:
                yield TextDelta(f"word{i} ")
                i += 1
                await trio.sleep(self.interval_s)
        finally:
            self.closed_at = trio.current_time()


class FailingProvider(Provider):
    name = "failing"

    def model_for(self, request: ProviderRequest) -> str:
        return "failing-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        from streamer.errors import ProviderError
        yield TextDelta("Partial answer")
        await trio.sleep(0.1)
        raise ProviderError("failing: upstream reset the connection", retryable=True)
        yield Finish("stop")  # pragma: no cover


#: the providers these tests run, allowed by the policy (``allow`` adds a test's own)
TEST_PROVIDERS = ("local", "echo", "openai", "anthropic", "slow", "failing", "silent")


def paced_gaps(chunks: list[tuple[float, dict[str, Any]]], cps: float) -> list[float]:
    """The time a fixed-rate pacer leaves after each of these chunks but the last: the
    visible characters the chunk carried, at ``cps`` (chunks vary in size: deltas that
    waited in the provider's buffer are joined into one entry)."""
    def chars(event: dict[str, Any]) -> int:
        return len(html.unescape(re.sub(r"<[^>]*>", "", event.get("text") or event["html"])))
    return [chars(event) / cps for _, event in chunks[:-1]]


async def open_pipeline(nursery: trio.Nursery, *, allow: tuple[str, ...] = (), **config: Any
                        ) -> tuple[Registry, Any]:
    registry = Registry(make_config(**{"policy.providers": (*TEST_PROVIDERS, *allow), **config}))
    registry.bind(nursery)
    registry.providers.register(SlowProvider())
    registry.providers.register(FailingProvider())
    return registry, registry.get_or_create("test-session")


async def connect(nursery: trio.Nursery, session: Any) -> tuple[Connection, Recorder]:
    recorder = Recorder()
    connection = Connection(session, "test", recorder.send)

    async def run() -> None:  # what a transport does: follow until the connection ends
        session.add_connection(connection)
        try:
            with connection.cancel_scope:
                await connection.follow()
        finally:
            session.remove_connection(connection)

    nursery.start_soon(run)
    return connection, recorder


def start(text: str = TEXT, *, mode: str = "fixed", cps: float = 20.0, provider: str = "echo",
          interval_ms: float = 0.0) -> Start:
    control = parse_control({"type": "start", "prompt": text, "provider": provider,
                             "pacing": {"mode": mode, "cps": cps},
                             "echo": {"delta_chars": 4, "interval_ms": interval_ms}}, 10_000)
    assert isinstance(control, Start)
    return control


def expected_schedule(entries: list[Any], cps: float, t0: float = 0.0) -> list[float]:
    """GCRA times for entries all available at ``t0``: entry k leaves at t0 + chars before k / cps."""
    times, sent = [], 0
    for entry in entries:
        times.append(t0 + sent / cps)
        sent += entry.op.chars
    return times


def chunk_times(recorder: Recorder) -> dict[int, float]:
    return {ev["seq"]: t for t, ev in recorder.of("chunk")}


async def test_fixed_pacing_delivers_on_the_exact_schedule(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(cps=20.0))
    await stream.done.wait()
    entries = stream.log.entries  # one per op while a reader follows (then compacted)
    complete = await recorder.wait_for("stream_complete")
    assert complete["finish_reason"] == "stop"
    # chars are the document's visible characters, a block's newline included (chunker.py)
    total = text_length(complete["html"])
    assert sum(e.op.chars for e in entries) == total == len(TEXT) + 1
    times = chunk_times(recorder)
    t0 = min(times.values())
    schedule = expected_schedule(entries, 20.0, t0)
    for entry, expected in zip(entries, schedule, strict=True):
        if entry.seq in times:  # merged entries are covered by the event of the highest seq
            assert times[entry.seq] == pytest.approx(expected, abs=1e-6)
    assert "".join(recorder.document()) == complete["html"]
    last = max(e.seq for e in entries if e.op.chars)  # the empty final=True op may merge
    chars_before = sum(e.op.chars for e in entries if e.seq < last)
    assert times[last] - t0 == pytest.approx(chars_before / 20)


async def test_pause_holds_delivery_and_resume_continues_exactly(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    session.submit(start(cps=20.0))
    await recorder.wait_for("chunk", 3)
    t_pause = trio.current_time()
    await connection.handle_control(Pause())
    assert (await recorder.wait_for("state"))["state"] == "paused"
    delivered = len(recorder.of("chunk"))
    await trio.sleep(10)
    assert len(recorder.of("chunk")) == delivered  # nothing while paused
    t_resume = trio.current_time()
    await connection.handle_control(Resume())
    assert (await recorder.wait_for("state", 2))["state"] == "resumed"
    await recorder.wait_for("stream_complete")
    after = [t for t, _ in recorder.of("chunk")[delivered:]]
    assert after[0] == pytest.approx(t_resume, abs=1e-6)  # due at once, no burst after it
    gaps = [b - a for a, b in zip(after, after[1:])]
    # paced at 20 cps: each frame waits for the characters of the one before it
    assert gaps == pytest.approx(paced_gaps(recorder.of("chunk")[delivered:], 20.0), abs=1e-6)
    assert t_resume - t_pause == pytest.approx(10, abs=0.01)


async def test_a_paused_connection_still_gets_progress_of_what_arrives(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    """Paused, nothing is delivered, but ``progress`` says what arrived meanwhile (the demo's
    "N waiting"), at most every ``pacing.progress_interval_ms``."""
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    session.submit(start("word " * 200, cps=20.0, interval_ms=100.0))  # 40 chars/s arrive
    await recorder.wait_for("chunk", 3)
    await connection.handle_control(Pause())
    assert (await recorder.wait_for("state"))["state"] == "paused"
    delivered, before = len(recorder.of("chunk")), len(recorder.of("progress"))
    await trio.sleep(5)
    assert len(recorder.of("chunk")) == delivered
    during = [ev for _, ev in recorder.of("progress")[before:]]
    assert 5 <= len(during) <= 5 / 0.25 + 1, len(during)
    assert during[-1]["received_chars"] - during[0]["received_chars"] >= 150
    assert during[-1]["delivered_chars"] == during[0]["delivered_chars"]
    connection.cancel_scope.cancel()


async def test_skip_sends_the_backlog_at_once_then_unpaced(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    session.submit(start(cps=4.0))  # 1 entry per second: 20 s for the whole text
    await recorder.wait_for("chunk", 2)
    t_skip = trio.current_time()
    await connection.handle_control(Skip())
    complete = await recorder.wait_for("stream_complete")
    assert (await recorder.wait_for("state"))["state"] == "skipping"
    later = [t for t, _ in recorder.of("chunk")[2:]]
    assert later and all(t == pytest.approx(t_skip, abs=1e-6) for t in later)
    assert len(recorder.of("chunk")) <= 3  # the backlog merged into one event
    assert "".join(recorder.document()) == complete["html"]


async def test_live_speed_change_applies_to_the_next_entry(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    session.submit(start(cps=4.0))  # one 4-char entry per second
    await recorder.wait_for("chunk", 2)
    t1 = recorder.of("chunk")[1][0]
    await trio.sleep(0.5)
    await connection.handle_control(Speed(8.0))  # 0.5 s of the 1 s wait left -> 0.25 s
    await recorder.wait_for("stream_complete")
    chunks = recorder.of("chunk")
    times = [t for t, _ in chunks]
    # the wait after chunk 1 (its characters at 4 cps) was half over; the rest goes twice
    # as fast, and so does every wait after it
    wait_1 = paced_gaps(chunks[1:3], 4.0)[0]
    assert times[2] == pytest.approx(t1 + 0.5 + (wait_1 - 0.5) / 2, abs=1e-6)
    assert [b - a for a, b in zip(times[2:], times[3:])] == pytest.approx(
        paced_gaps(chunks[2:], 8.0), abs=1e-6)


async def test_stop_closes_the_provider_call_at_once_and_keeps_the_partial_answer(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    provider = registry.providers.get("slow")
    assert isinstance(provider, SlowProvider)
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider="slow", mode="off"))
    await recorder.wait_for("chunk", 5)
    t_stop = trio.current_time()
    await connection.handle_control(Stop())
    complete = await recorder.wait_for("stream_complete")
    assert provider.closed_at is not None
    assert provider.closed_at - t_stop <= 0.1  # the model call is closed within 100 ms
    assert complete["finish_reason"] == "cancelled"
    assert complete["markdown"].startswith("word0 word1 word2")
    assert "".join(recorder.document()) == complete["html"] != ""
    reasons = [t.detail.get("reason") for t in stream.trace if t.event == "cancelled"]
    assert reasons == ["stop from client"]


async def test_provider_error_mid_stream_gives_error_then_complete_with_partial(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    session.submit(start(provider="failing", mode="off"))
    complete = await recorder.wait_for("stream_complete")
    error = await recorder.wait_for("error")
    assert error["code"] == "provider_error" and error["stream_id"] == complete["stream_id"]
    assert complete["finish_reason"] == "error"
    assert complete["markdown"] == "Partial answer"
    assert complete["html"] == "<p>Partial answer</p>\n"
    kinds = [ev["type"] for _, ev in recorder.events]
    assert kinds.index("error") < kinds.index("stream_complete")


async def test_last_subscriber_leaving_cancels_after_the_grace_period(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"streams.grace_period_s": 5.0})
    provider = registry.providers.get("slow")
    assert isinstance(provider, SlowProvider)
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider="slow", mode="off"))
    await recorder.wait_for("chunk", 2)
    connection.cancel_scope.cancel()  # the client goes away
    await trio.testing.wait_all_tasks_blocked()
    connection_gone = trio.current_time()
    with trio.fail_after(60):
        await stream.done.wait()
    assert provider.closed_at is not None
    assert provider.closed_at - connection_gone == pytest.approx(5.0, abs=0.1)
    assert stream.finish_reason == "cancelled"
    assert any(t.event == "cancelled" and "no subscriber" in t.detail["reason"]
               for t in stream.trace)


async def test_start_while_running_is_queued_and_runs_next(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    await connection.handle_control(start("first", mode="off", interval_ms=100))
    await connection.handle_control(start("second", mode="off"))
    queued = [ev for _, ev in recorder.of("stream_start") if ev.get("queued")]
    assert len(queued) == 1 and queued[0]["position"] == 1
    first = await recorder.wait_for("stream_complete")
    second = await recorder.wait_for("stream_complete", 2)
    assert (first["markdown"], second["markdown"]) == ("first", "second")
    assert second["stream_id"] == queued[0]["stream_id"]


async def test_a_second_connection_gets_a_snapshot_then_live_events(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    first, first_rec = await connect(nursery, session)
    session.submit(start(cps=20.0))
    await first_rec.wait_for("chunk", 2)  # (echo's deltas arrive joined: a few entries)
    assert not first_rec.of("stream_complete")  # joined mid-stream
    second, second_rec = await connect(nursery, session)
    snapshot = await second_rec.wait_for("snapshot")
    complete = await second_rec.wait_for("stream_complete")
    blocks = list(snapshot["blocks"])
    for _, ev in second_rec.of("chunk"):
        assert ev["seq"] > snapshot["seq"]
        apply_op(blocks, op_from_chunk(ev))
    assert "".join(blocks) == complete["html"]


async def test_history_makes_the_next_prompt_multi_turn(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    session.submit(start("one", mode="off"))
    await recorder.wait_for("stream_complete")
    stream = session.submit(start("two", mode="off"))
    await recorder.wait_for("stream_complete", 2)
    assert stream.messages == (Message("user", "one"), Message("assistant", "one"),
                                       Message("user", "two"))


def test_pacing_defaults_come_from_config() -> None:
    assert Pacing() == Pacing(None, None)
    assert isinstance(Usage(1, 2), Usage)


class SilentProvider(Provider):
    """Says one word, then nothing at all."""

    name = "silent"

    def model_for(self, request: ProviderRequest) -> str:
        return "silent-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        yield TextDelta("Hello")
        await trio.sleep_forever()
        yield Finish("stop")  # pragma: no cover


async def test_every_subscriber_paused_backpressures_then_cancels(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"streams.backpressure_chars": 40,
                                                        "streams.paused_limit_s": 10.0})
    provider = registry.providers.get("slow")
    assert isinstance(provider, SlowProvider)
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider="slow", mode="off"))
    await recorder.wait_for("chunk", 1)
    await connection.handle_control(Pause())
    paused_at = trio.current_time()
    with trio.fail_after(60):
        await stream.done.wait()
    # the provider stopped being read once 40 chars were unread, then 10 s later was cancelled
    assert provider.closed_at is not None
    assert provider.closed_at - paused_at == pytest.approx(10.0, abs=0.5)
    assert stream.log.total_chars < 40 + 20
    assert any(t.event == "backpressure" for t in stream.trace)
    await connection.handle_control(Resume())
    complete = await recorder.wait_for("stream_complete")
    error = await recorder.wait_for("error")
    assert error["code"] == "paused_too_long" and complete["finish_reason"] == "error"
    assert "".join(recorder.document()) == complete["html"]


async def test_silent_provider_times_out(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"streams.provider_timeout_s": 7.0})
    registry.providers.register(SilentProvider())
    connection, recorder = await connect(nursery, session)
    t0 = trio.current_time()
    session.submit(start(provider="silent", mode="off"))
    complete = await recorder.wait_for("stream_complete")
    error = await recorder.wait_for("error")
    assert error["code"] == "provider_timeout" and error["retryable"] is True
    assert complete["markdown"] == "Hello" and complete["finish_reason"] == "error"
    assert trio.current_time() - t0 == pytest.approx(7.0, abs=0.1)


async def test_answer_larger_than_the_limit_is_cut(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"streams.max_response_chars": 30})
    connection, recorder = await connect(nursery, session)
    session.submit(start("x" * 100, mode="off"))
    complete = await recorder.wait_for("stream_complete")
    assert (await recorder.wait_for("error"))["code"] == "response_too_large"
    assert complete["markdown"] == "x" * 30
    assert "".join(recorder.document()) == complete["html"]


async def test_drain_cancels_running_streams_and_tells_why(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider="slow", mode="off"))
    queued = session.submit(start(provider="slow", mode="off"))  # waits behind it
    await recorder.wait_for("chunk", 2)
    t0 = trio.current_time()
    await registry.drain(timeout_s=3.0)
    assert stream.finish_reason == "error"
    assert trio.current_time() - t0 == pytest.approx(3.0, abs=0.1)
    # the queued one ended as cancelled, and both were counted as finished
    assert queued.state == "done" and queued.finish_reason == "cancelled"
    assert registry.metrics.streams_finished == {"error": 1, "cancelled": 1}
    error = await recorder.wait_for("error")
    assert error["code"] == "server_shutting_down" and error["retry_after_ms"] > 0
    assert (await recorder.wait_for("stream_complete"))["markdown"].startswith("word0")


async def test_a_busy_connection_still_gets_every_later_stream_in_order(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    await connection.handle_control(start("first answer", cps=4.0))
    await recorder.wait_for("chunk", 1)
    await connection.handle_control(Pause())
    await connection.handle_control(start("second answer", mode="off"))
    await connection.handle_control(start("third answer", mode="off"))
    while len(session.started) < 3 or session.started[-1].state != "done":
        await trio.sleep(1)
    await connection.handle_control(Resume())
    completes = [await recorder.wait_for("stream_complete", n) for n in (1, 2, 3)]
    assert [c["markdown"] for c in completes] == ["first answer", "second answer", "third answer"]
    second_chunks = [ev for _, ev in recorder.of("chunk")
                     if ev["stream_id"] == completes[1]["stream_id"]]
    assert not recorder.of("snapshot")  # delivered from its first seq, not joined late
    blocks: list[str] = []
    for ev in second_chunks:
        apply_op(blocks, op_from_chunk(ev))
    assert "".join(blocks) == completes[1]["html"]


async def test_grace_period_zero_cancels_as_soon_as_the_last_subscriber_leaves(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"streams.grace_period_s": 0.0})
    provider = registry.providers.get("slow")
    assert isinstance(provider, SlowProvider)
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider="slow", mode="off"))
    await recorder.wait_for("chunk", 2)
    connection.cancel_scope.cancel()
    await trio.testing.wait_all_tasks_blocked()
    gone = trio.current_time()
    with trio.fail_after(5):
        await stream.done.wait()
    assert provider.closed_at is not None and provider.closed_at - gone < 0.01
    assert stream.finish_reason == "cancelled"


async def test_stop_from_one_subscriber_ends_the_stream_for_all(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery)
    first, first_rec = await connect(nursery, session)
    second, second_rec = await connect(nursery, session)
    session.submit(start(provider="slow", mode="off"))
    await first_rec.wait_for("chunk", 3)
    await second_rec.wait_for("chunk", 3)
    await second.handle_control(Stop())
    one = await first_rec.wait_for("stream_complete")
    two = await second_rec.wait_for("stream_complete")
    assert one["finish_reason"] == two["finish_reason"] == "cancelled"
    assert "".join(first_rec.document()) == "".join(second_rec.document()) == one["html"]


async def test_queue_move_and_remove_reorder_the_waiting_streams(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    from streamer.wire.controls import QueueMove, QueueRemove
    registry, session = await open_pipeline(nursery)
    connection, recorder = await connect(nursery, session)
    await connection.handle_control(start("running", mode="off", interval_ms=100))
    await recorder.wait_for("stream_start")  # it runs: the next ones wait behind it
    for text in ("a", "b", "c"):
        await connection.handle_control(start(text, mode="off"))
    ids = [ev["stream_id"] for _, ev in recorder.of("stream_start") if ev.get("queued")]
    assert [ev["position"] for _, ev in recorder.of("stream_start") if ev.get("queued")] == [
        1, 2, 3]
    await connection.handle_control(QueueMove(ids[2], 0))  # c first
    await connection.handle_control(QueueRemove(ids[0]))  # a removed
    completes = [await recorder.wait_for("stream_complete", n) for n in range(1, 5)]
    order = [(c["markdown"], c["finish_reason"]) for c in completes]
    assert order[0] == ("running", "stop")
    assert order[1:] == [("c", "stop"), ("", "cancelled"), ("b", "stop")]
