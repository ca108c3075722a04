"""The AI SDK's UI message stream, pure: the encoder (:mod:`streamer.wire.aisdk`) and the log
reader's step (:func:`streamer.transports.aisdk._new_chunks`), without a server."""

from __future__ import annotations

from streamer.log.stream_log import MemoryStreamLog
from streamer.providers.base import Citations
from streamer.transports.aisdk import _new_chunks
from streamer.wire.aisdk import UIMessageStream
from streamer.wire.events import Reasoning, Sources, StreamComplete

SOURCES = (("https://example.org/a", "A"), ("https://example.org/b", "B [2]"))


def complete(finish: str, usage: dict | None) -> StreamComplete:
    return StreamComplete("sess1234", "s_1", finish, "", "", usage, "s_1", 5)  # type: ignore[arg-type]


def test_sources_close_the_open_text_and_are_numbered_across_calls() -> None:
    message = UIMessageStream("s_1")
    assert message.text("Hi") == [{"type": "text-start", "id": "text-1"},
                                  {"type": "text-delta", "id": "text-1", "delta": "Hi"}]
    assert message.sources(SOURCES[:1]) == [
        {"type": "text-end", "id": "text-1"},
        {"type": "source-url", "sourceId": "source-1", "url": "https://example.org/a",
         "title": "A"}]
    assert [c["sourceId"] for c in message.sources(SOURCES[1:])] == ["source-2"]


def test_the_finish_carries_the_reason_and_the_usage_as_metadata() -> None:
    finish = UIMessageStream("s_1").finish(None, complete(
        "cancelled", {"input_tokens": 3, "output_tokens": 4, "unit": "chars"}))
    assert finish == [{"type": "finish-step"}, {"type": "finish", "messageMetadata": {
        "finishReason": "other",
        "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7, "unit": "chars"}}}]
    assert UIMessageStream("s_1").finish(None, complete("length", None))[-1] == {
        "type": "finish", "messageMetadata": {"finishReason": "length"}}
    assert UIMessageStream("s_1").finish(None)[-1] == {"type": "finish"}


def test_the_reader_sends_source_url_parts_in_place_of_the_document_s_list() -> None:
    """What the generation writes for a cited answer (text, the ``sources`` event, the list
    as one source piece) reads as text, then ``source-url`` parts, never the list's text;
    however the reader's calls fall between the appends."""
    citations = Citations(SOURCES)
    log = MemoryStreamLog("s_1")
    message = UIMessageStream("s_1")
    cursor = log.cursor()
    log.append_source("Hello ")
    chunks, sent = _new_chunks(log, cursor, message, 0)
    log.append_event(Reasoning("sess1234", "s_1", "hmm"))
    log.append_source("world [1][2].")
    log.append_event(Sources("sess1234", "s_1", citations.sources))
    log.append_source(citations.markdown())
    more, sent = _new_chunks(log, cursor, message, sent)
    chunks += more
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text == "Hello world [1][2]."
    assert "Sources" not in text and sent == log.source_count == 3
    assert [c["type"] for c in chunks] == [
        "text-start", "text-delta", "text-end", "reasoning-start", "reasoning-delta",
        "reasoning-end", "text-start", "text-delta", "text-end", "source-url", "source-url"]
    assert _new_chunks(log, cursor, message, sent) == ([], 3)  # nothing new, nothing again
