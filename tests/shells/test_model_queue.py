"""The local model's fair queue, in virtual time: first come first served across sessions,
positions and estimates told to waiting streams, no timeout while waiting; and the local
provider's own failures (a fake llama.cpp) reported as what they are.

The model here is :class:`LocalProvider` with its generation replaced by a Trio-native fake
(a thread would not follow the virtual clock): everything else, the queue included, is the
real provider.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import pytest
import trio
import trio.testing

from streamer.config import LocalProviderConfig
from streamer.errors import ProviderRateLimited
from streamer.providers import Finish, ProviderRequest, TextDelta, Usage
from streamer.providers.fairqueue import FairQueue
from streamer.providers.local import LocalProvider
from tests.shells.test_pipeline import Recorder, connect, open_pipeline, start


class SlowModel(LocalProvider):
    """The local provider with a fake model: ``tokens`` tokens, one every ``token_s``."""

    def __init__(self, tokens: int = 10, token_s: float = 3.0, first_s: float = 0.0) -> None:
        super().__init__(LocalProviderConfig(max_tokens=100))
        self.tokens, self.token_s, self.first_s = tokens, token_s, first_s
        #: the prompts in the order the model took them
        self.order: list[str] = []

    async def load(self) -> Any:
        return None

    async def measure(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    async def _generate(self, llm: Any, request: ProviderRequest
                        ) -> AsyncGenerator[Any, None]:
        self.order.append(request.messages[-1].content)
        await trio.sleep(self.first_s)
        for _ in range(self.tokens):
            await trio.sleep(self.token_s)
            yield TextDelta("w ")
        yield Usage(1, self.tokens)
        yield Finish("stop")


def waits(recorder: Recorder) -> list[tuple[float, int, int]]:
    """The ``waiting`` notices: (when, rounded to 0.1 s; position; eta_ms, to 0.1 s)."""
    return [(round(t, 1), ev["position"], round(ev["eta_ms"], -2))
            for t, ev in recorder.of("state") if ev["state"] == "waiting"]


async def three_sessions(nursery: trio.Nursery, model: SlowModel, **config: Any
                         ) -> list[Recorder]:
    """Sessions a, b, c each start a local stream, in this order, one second apart."""
    registry, _ = await open_pipeline(nursery, **config)
    registry.providers.register(model)
    recorders = []
    for name in "abc":
        session = registry.get_or_create(f"queue-{name}")
        _connection, recorder = await connect(nursery, session)
        session.submit(start(f"prompt {name}", mode="off", provider="local"))
        recorders.append(recorder)
        await trio.sleep(1.0)
    return recorders


async def test_streams_take_turns_first_come_first_served_and_never_time_out_waiting(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    model = SlowModel(tokens=10, token_s=3.0)  # 30 s a generation
    recorders = await three_sessions(nursery, model, **{
        "streams.provider_ttft_timeout_s": 10.0, "streams.provider_timeout_s": 10.0})
    completes = [await rec.wait_for("stream_complete") for rec in recorders]
    assert [c["finish_reason"] for c in completes] == ["stop"] * 3  # c waited 60 s > 10 s
    assert model.order == ["prompt a", "prompt b", "prompt c"]
    ends = [rec.of("stream_complete")[0][0] for rec in recorders]
    assert ends == pytest.approx([30.0, 60.0, 90.0], abs=0.01)
    # a never waited; b was told position 1, then its turn; c 2, 1, then its turn. The first
    # guess of a generation is max_tokens x 50 ms = 5 s (less what a has run); then the
    # measured 30 s.
    assert waits(recorders[0]) == []
    assert waits(recorders[1]) == [(1.0, 1, 4000), (30.0, 0, 0)]
    assert waits(recorders[2]) == [(2.0, 2, 8000), (30.0, 1, 30_000), (60.0, 0, 0)]
    for rec in recorders:  # the wait notices come before the answer, in seq order
        state_seqs = [ev["seq"] for _, ev in rec.of("state")]
        assert all(seq < rec.of("chunk")[0][1]["seq"] for seq in state_seqs)


async def test_the_first_token_timeout_starts_when_the_turn_comes(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    # every generation is silent for 12 s before its first token: over the 10 s limit, which
    # counts from each stream's turn, not from the start of its wait
    model = SlowModel(tokens=2, token_s=1.0, first_s=12.0)
    recorders = await three_sessions(nursery, model, **{"streams.provider_ttft_timeout_s": 10.0})
    errors = [await rec.wait_for("error") for rec in recorders]
    assert [e["code"] for e in errors] == ["provider_timeout"] * 3
    times = [rec.of("error")[0][0] for rec in recorders]
    assert times == pytest.approx([10.0, 20.0, 30.0], abs=0.01)  # each 10 s after its turn began
    assert [t for t, _, _ in waits(recorders[2])] == [2.0, 10.0, 20.0]


@pytest.fixture
def clock() -> Iterator[list[float]]:
    yield [0.0]


def test_a_queue_tells_positions_and_estimates_and_lets_the_cancelled_go(
        clock: list[float]) -> None:
    queue = FairQueue(max_waiting=2, first_guess_s=10.0, clock=lambda: clock[0])
    with queue.ticket() as a:
        assert a.ready and a.position == 0 and a.eta_ms() == 0
        with queue.ticket() as b, queue.ticket() as c:
            assert (b.position, c.position) == (1, 2)
            clock[0] = 4.0  # a has run 4 s of its 10 s guess
            assert (b.eta_ms(), c.eta_ms()) == (6_000, 16_000)
            with pytest.raises(ProviderRateLimited) as full, queue.ticket():
                pass  # pragma: no cover
            assert full.value.retry_after_ms == 26_000 and full.value.code == "rate_limited"
            assert queue.waiting == type(queue.waiting)([b, c])
        # b and c left (cancelled) while waiting: nobody waits, a still runs
        assert not queue.waiting and a.ready
        clock[0] = 14.0
    assert queue.running is None and queue.mean_s == 14.0  # the first measured generation


async def test_a_waiting_ticket_wakes_when_its_position_changes() -> None:
    queue = FairQueue()
    seen: list[int] = []

    async def wait() -> None:
        with queue.ticket() as ticket:
            while not ticket.ready:
                seen.append(ticket.position)
                await ticket.moved(ticket.position)
            seen.append(0)

    async with trio.open_nursery() as nursery:
        with ExitStack() as first:
            first.enter_context(queue.ticket())
            with queue.ticket() as middle:
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert seen == [2]
            await trio.testing.wait_all_tasks_blocked()  # the middle one left: 1
            assert seen == [2, 1] and not middle.ready
        await trio.testing.wait_all_tasks_blocked()  # the first one's turn ended
        assert seen == [2, 1, 0]


class FakeLlama:
    """llama.cpp's ``Llama`` as the local provider uses it: a token per 4 bytes; a chat
    completion that streams ``answer`` or raises ``fail`` (as llama.cpp does, on the first
    chunk)."""

    def __init__(self, answer: str = "", fail: Exception | None = None) -> None:
        self.answer, self.fail = answer, fail
        self.prompts: list[list[dict[str, str]]] = []

    def tokenize(self, data: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(range(-(-len(data) // 4)))

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any
                               ) -> Iterator[dict[str, Any]]:
        self.prompts.append(messages)

        def chunks() -> Iterator[dict[str, Any]]:
            if self.fail is not None:
                raise self.fail
            for word in self.answer.split():
                yield {"choices": [{"delta": {"content": word + " "}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

        return chunks()


async def local_stream(nursery: trio.Nursery, llama: FakeLlama, system: str | None = None
                       ) -> Recorder:
    registry, session = await open_pipeline(nursery)
    provider = LocalProvider(registry.config.providers.local)
    provider._llama = llama
    registry.providers.register(provider)
    _connection, recorder = await connect(nursery, session)
    session.submit(replace(start("tell me", mode="off", provider="local"), system=system))
    return recorder


async def test_a_context_overflow_of_llama_cpp_is_a_provider_error_naming_the_budget(
        nursery: trio.Nursery) -> None:
    overflow = ValueError("Requested tokens (2100) exceed context window of 2048")
    recorder = await local_stream(nursery, FakeLlama(fail=overflow))
    with trio.fail_after(10):
        error = await recorder.wait_for("error")
        complete = await recorder.wait_for("stream_complete")
    assert error["code"] == "provider_error" and not error["retryable"]
    # n_ctx 2048 less the policy's max_tokens 512
    assert error["message"] == ("the request is longer than the model accepts (its input "
                                "budget is 1,536 tokens)")
    assert complete["finish_reason"] == "error"
    stream_start = recorder.of("stream_start")[0][1]
    # "tell me": 2 tokens + 5 for its turn in Gemma's template + 4 for the request
    assert (stream_start["input_tokens"], stream_start["max_input_tokens"],
            stream_start["history_dropped"]) == (11, 1536, 0)


async def test_the_local_model_is_sent_system_in_its_first_user_turn(
        nursery: trio.Nursery) -> None:
    llama = FakeLlama(answer="rivers run")
    recorder = await local_stream(nursery, llama, system="be brief")
    with trio.fail_after(10):
        complete = await recorder.wait_for("stream_complete")
    assert complete["markdown"] == "rivers run "
    assert llama.prompts == [[{"role": "user", "content": "be brief\n\ntell me"}]]
    # usage: what was sent, one turn of 17 bytes (5 tokens); the budget counted system apart
    assert complete["usage"]["input_tokens"] == 5 + 5 + 4
    assert recorder.of("stream_start")[0][1]["input_tokens"] == (2 + 5) + (2 + 5) + 4
