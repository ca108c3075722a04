"""A door for existing Vercel AI SDK apps: ``POST /api/chat`` answers with the AI SDK's UI
message stream (:mod:`streamer.wire.aisdk`), so a ``useChat`` app can point at streamer
unchanged; ``GET /api/chat/{id}/stream`` is the resume request of ``useChat({resume: true})``.

Text is the model's raw markdown (AI SDK apps render it themselves), unpaced; the stream is
generated exactly as for the other transports (its trace, cancellation and persistence are
the same), and the response holds it like a subscriber. While nothing happens, an SSE comment
(``: ping``) goes out every ``heartbeat_interval_s`` (the AI SDK's parser skips comments).

The AI SDK's ``stop()`` aborts the fetch: with ``aisdk.stop_on_disconnect`` (the default) a
response the client closes before the end cancels the answer at once (the provider's request
is closed; the trace says ``chat response closed``), as an AI SDK server's
``streamText({abortSignal: req.signal})`` would. Off, the answer runs on for the grace period
and a resume request replays it from its first chunk, then follows it live (ai-sdk.dev,
"Chatbot Resume Streams": the client resumes with the messages it had before the answer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from streamer.log.stream_log import LogCursor, StreamLog
from streamer.runtime.session import Session
from streamer.runtime.stream import Stream, new_id
from streamer.runtime.waiter import Waiter
from streamer.wire.aisdk import DONE, KEEP_ALIVE, UIMessageStream, frame
from streamer.wire.codecs import JSONObject
from streamer.wire.events import Reasoning, Sources, ToolCall

#: the trace's reason when a closed chat response stops its answer
CLOSED_REASON = "chat response closed"


def _new_chunks(log: StreamLog, cursor: LogCursor, message: UIMessageStream,
                sent: int) -> tuple[list[JSONObject], int]:
    """The chunks of what the log gained since the last call (``sent``: source pieces sent),
    in the order it came: source text up to each event, the event, the rest of the text.

    A ``sources`` event becomes ``source-url`` parts, and the source piece right after it
    (the same sources as the document's markdown list) is not sent as text."""
    chunks: list[JSONObject] = []
    for entry in cursor.take():
        ev = entry.event
        if not isinstance(ev, Reasoning | ToolCall | Sources):
            continue  # document ops (the text went as source) and retry notices
        for piece in log.source(sent, entry.source_parts):
            chunks += message.text(piece)
        sent = max(sent, entry.source_parts)
        if isinstance(ev, Sources):
            chunks += message.sources(ev.sources)
            sent = max(sent, entry.source_parts + 1)  # the list the generation appended
        else:
            chunks += message.reasoning(ev.text) if isinstance(ev, Reasoning) else \
                message.tool_call(ev)
    end = log.source_count
    for piece in log.source(sent, end):
        chunks += message.text(piece)
    return chunks, max(sent, end)


async def ui_message_stream(session: Session, stream: Stream, *,
                            stop_on_disconnect: bool = True) -> AsyncIterator[bytes]:
    """The stream's output as UI message chunks from its start, until it ends (or the client
    leaves: then, with ``stop_on_disconnect``, the answer is cancelled).

    An ordinary reader of the stream's log: its events (reasoning, tool calls, sources)
    through a cursor, its source text (the raw markdown, which the chunker may still hold
    back) between them, each piece where it came. The open response holds the session like a
    subscriber (the stream's grace period waits for it). A resume request is this same
    reader on a running stream: the whole message again, then live.
    """
    log = stream.log
    waiter = Waiter()
    cursor = log.cursor()
    heartbeat_s = session.host.config.server.heartbeat_interval_s
    message = UIMessageStream(stream.stream_id)
    sent = 0  # source pieces sent
    counts = session.host.metrics.sent_by("aisdk")  # frames and bytes (``/metrics``)
    reader = new_id("c")  # the response's lane in the stream's trace
    log.attach(waiter, source=True)
    stream.record("subscriber_joined", connection=reader, transport="aisdk")
    try:
        with session.hold():
            for chunk in message.start():
                yield counts.event(frame(chunk))
            while True:
                chunks, sent = _new_chunks(log, cursor, message, sent)
                for chunk in chunks:
                    yield counts.event(frame(chunk))
                if cursor.at_end and sent >= log.source_count:
                    break
                with trio.move_on_after(heartbeat_s) as idle:
                    await waiter.wait()
                # keep-alive: proxies keep the response open, and a write to a peer that left
                if idle.cancelled_caught:  # can fail and end this
                    stream.record("heartbeat", connection=reader)
                    yield counts.heartbeat(KEEP_ALIVE)
            for chunk in message.finish(log.error, log.complete):
                yield counts.event(frame(chunk))
            yield counts.event(DONE)
    finally:
        log.detach(waiter)
        # closed before the end (Quart cancels the response or closes this generator when
        # hypercorn reports the disconnect): the AI SDK's stop()
        if not log.finished:
            stream.record("subscriber_left", connection=reader, transport="aisdk")
        if stop_on_disconnect and not log.finished:
            stream.cancel(CLOSED_REASON)
