"""A stream's large renders run in the render thread, not on the event loop (issue 15).

``render.offload_tail_chars``: once a stream's open tail (what one render of it takes) reaches
it, the chunker's ``feed`` and ``close`` run in a worker thread; the document is the same, a
stop in the middle loses nothing, and a checkpoint never reads the busy chunker. Real clock:
the renders really run in threads."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator
from typing import Any

import pytest
import trio

from streamer.providers import Finish, Provider, ProviderRequest, TextDelta
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.wire.controls import Stop, parse_control
from tests.core.chunker_shapes import SHAPES
from tests.shells.test_pipeline import connect, open_pipeline

#: one paragraph with an opener on every line: its open tail grows and renders whole
TEXT = SHAPES["label_lines"](6_000) + "\n\nThe end: **bold**, `code` and a [link](https://e.com).\n"


class ShapeProvider(Provider):
    """Streams ``text`` in 7-character deltas (yielding to the loop between them); with
    ``forever``, keeps going with more of it until cancelled."""

    name = "shape"

    def __init__(self, text: str, forever: bool = False) -> None:
        self.text = text
        self.forever = forever

    def model_for(self, request: ProviderRequest) -> str:
        return "shape-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        while True:
            for i in range(0, len(self.text), 7):
                yield TextDelta(self.text[i:i + 7])
                await trio.sleep(0)
            if not self.forever:
                break
        yield Finish("stop")


@pytest.fixture
def feed_threads(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[int]]:
    """The threads the chunker's ``feed`` and ``close`` ran in."""
    seen: dict[str, set[int]] = {"feed": set(), "close": set()}
    feed, close = Chunker.feed, Chunker.close

    def traced_feed(self: Chunker, delta: str) -> Any:
        seen["feed"].add(threading.get_ident())
        return feed(self, delta)

    def traced_close(self: Chunker) -> Any:
        seen["close"].add(threading.get_ident())
        return close(self)

    monkeypatch.setattr(Chunker, "feed", traced_feed)
    monkeypatch.setattr(Chunker, "close", traced_close)
    return seen


def start(provider: str) -> Any:
    return parse_control({"type": "start", "prompt": "go", "provider": provider,
                          "pacing": {"mode": "off"}}, 10_000)


async def run_answer(nursery: trio.Nursery, threshold: int, text: str = TEXT
                     ) -> tuple[Any, Any, Any]:
    registry, session = await open_pipeline(
        nursery, allow=("shape",), **{"render.offload_tail_chars": threshold})
    registry.providers.register(ShapeProvider(text))
    _connection, recorder = await connect(nursery, session)
    stream = session.submit(start("shape"))
    with trio.fail_after(60):
        complete = await recorder.wait_for("stream_complete")
    return stream, recorder, complete


async def test_a_large_open_tail_renders_in_the_render_thread_and_the_document_is_exact(
        nursery: trio.Nursery, feed_threads: dict[str, set[int]]) -> None:
    loop_thread = threading.get_ident()
    stream, recorder, complete = await run_answer(nursery, threshold=2_000)
    assert feed_threads["feed"] - {loop_thread}, "no feed ran off the loop"
    assert loop_thread in feed_threads["feed"], "small tails render on the loop"
    assert complete["markdown"] == TEXT
    one_shot = "".join(Renderer().render_blocks(TEXT))
    assert "".join(recorder.document()) == complete["html"] == one_shot
    records = stream.records()
    assert records[-1].markdown == TEXT and records[-1].html == one_shot


async def test_with_the_setting_at_zero_every_render_stays_on_the_loop(
        nursery: trio.Nursery, feed_threads: dict[str, set[int]]) -> None:
    _stream, recorder, complete = await run_answer(nursery, threshold=0)
    assert feed_threads["feed"] == {threading.get_ident()}
    assert feed_threads["close"] == {threading.get_ident()}
    assert "".join(recorder.document()) == complete["html"]


async def test_the_last_render_of_a_large_tail_runs_off_the_loop_too(
        nursery: trio.Nursery, feed_threads: dict[str, set[int]]) -> None:
    text = SHAPES["label_lines"](5_000)  # never closes: close() renders all of it
    _stream, recorder, complete = await run_answer(nursery, threshold=2_000, text=text)
    assert feed_threads["close"] - {threading.get_ident()}
    assert "".join(recorder.document()) == complete["html"] == "".join(
        Renderer().render_blocks(text))


async def test_a_stop_while_the_render_thread_works_loses_nothing(
        nursery: trio.Nursery, feed_threads: dict[str, set[int]]) -> None:
    registry, session = await open_pipeline(
        nursery, allow=("shape",), **{"render.offload_tail_chars": 1_000})
    registry.providers.register(ShapeProvider(SHAPES["label_lines"](4_000), forever=True))
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start("shape"))
    with trio.fail_after(60):
        while len(feed_threads["feed"]) < 2:  # the render thread is in use
            await recorder.wait_for("chunk", len(recorder.of("chunk")) + 1)
        # a checkpoint meanwhile reads the log (the chunker may be busy in the thread): the
        # blocks the clients are sent, and the source so far
        partial = stream.records()[-1]
        assert partial.html == "".join(stream.log.snapshot()[1])
        assert partial.completed_at is None and partial.finish_reason is None
        await connection.handle_control(Stop())
        complete = await recorder.wait_for("stream_complete")
    assert complete["finish_reason"] == "cancelled"
    assert complete["markdown"].startswith(partial.markdown)
    # the ops of a render that was in the thread when the stop came reached the log: the
    # document the clients built is the one-shot render of everything the model sent
    markdown = complete["markdown"]
    assert len(markdown) > 1_000
    assert "".join(recorder.document()) == complete["html"] == "".join(
        Renderer().render_blocks(markdown))
