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


async def ui_message_stream(registry: Registry, session: Session,
                            stream: Stream) -> AsyncIterator[bytes]:
    """The stream's output as UI message chunks, until it ends (or the client leaves)."""
    waiter = Waiter()
    stream.log.attach(waiter)  # finish, reasoning and tool events
    stream.part_waiters.add(waiter)  # text parts (the chunker may hold text back: no op)
    heartbeat_s = registry.config.server.heartbeat_interval_s
    session.pinned += 1  # the open response counts as a subscriber for the grace period
    message = UIMessageStream(stream.stream_id)
    sent = 0
    try:
        for chunk in message.start():
            yield frame(chunk)
        while True:
            parts = stream.parts
            while sent < len(parts):
                kind, value = parts[sent]
                sent += 1
                chunks = (message.text(value) if kind == "text" else
                          message.reasoning(value) if kind == "reasoning" else
                          message.tool_call(value))
                for chunk in chunks:
                    yield frame(chunk)
            if stream.log.finished and sent >= len(stream.parts):
                break
            with trio.move_on_after(heartbeat_s) as idle:
                await waiter.wait()
            if idle.cancelled_caught:  # keep-alive: proxies keep the response open, and a
                yield KEEP_ALIVE       # write to a peer that left can fail and end this
        for chunk in message.finish(stream.log.error):
            yield frame(chunk)
        yield DONE
    finally:
        stream.log.detach(waiter)
        stream.part_waiters.discard(waiter)
        session.pinned -= 1
        stream.on_subscribers_changed()
