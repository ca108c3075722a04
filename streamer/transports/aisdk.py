"""A door for existing Vercel AI SDK apps: ``POST /api/chat`` answers with the AI SDK's UI
message stream (:mod:`streamer.wire.aisdk`), so a ``useChat`` app can point at streamer
unchanged.

Text is the model's raw markdown (AI SDK apps render it themselves), unpaced; the stream is
generated exactly as for the other transports (its trace, cancellation and persistence are
the same), and the response holds it like a subscriber. While nothing happens, an SSE comment
(``: ping``) goes out every ``heartbeat_interval_s`` (the AI SDK's parser skips comments).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from streamer.sessions import Registry, Session, Stream, Waiter
from streamer.wire.aisdk import DONE, KEEP_ALIVE, UIMessageStream, frame
from streamer.wire.events import Reasoning, ToolCall


async def ui_message_stream(registry: Registry, session: Session,
                            stream: Stream) -> AsyncIterator[bytes]:
    """The stream's output as UI message chunks, until it ends (or the client leaves).

    An ordinary reader of the stream's log: its events (reasoning, tool calls) through a
    cursor, its source text (the raw markdown, which the chunker may still hold back) between
    them, each piece where it came.
    """
    log = stream.log
    waiter = Waiter()
    log.attach(waiter, source=True)
    cursor = log.cursor()
    heartbeat_s = registry.config.server.heartbeat_interval_s
    session.pinned += 1  # the open response counts as a subscriber for the grace period
    message = UIMessageStream(stream.stream_id)
    sent = 0  # source pieces sent
    try:
        for chunk in message.start():
            yield frame(chunk)
        while True:
            chunks = []
            for entry in cursor.take():
                if isinstance(entry.event, Reasoning | ToolCall):
                    chunks += [c for piece in log.source(sent, entry.source_parts)
                               for c in message.text(piece)]
                    sent = max(sent, entry.source_parts)
                    chunks += (message.reasoning(entry.event.text)
                               if isinstance(entry.event, Reasoning)
                               else message.tool_call(entry.event))
            end = log.source_count
            chunks += [c for piece in log.source(sent, end) for c in message.text(piece)]
            sent = end
            for chunk in chunks:
                yield frame(chunk)
            if cursor.at_end and sent >= log.source_count:
                break
            with trio.move_on_after(heartbeat_s) as idle:
                await waiter.wait()
            if idle.cancelled_caught:  # keep-alive: proxies keep the response open, and a
                yield KEEP_ALIVE       # write to a peer that left can fail and end this
        for chunk in message.finish(log.error):
            yield frame(chunk)
        yield DONE
    finally:
        log.detach(waiter)
        session.pinned -= 1
        stream.on_subscribers_changed()
