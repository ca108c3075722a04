"""A door for existing Vercel AI SDK apps: ``POST /api/chat`` speaks the AI SDK's UI message
stream protocol, so a ``useChat`` app can point at streamer unchanged.

Request (``DefaultChatTransport`` of ``ai`` v5): ``{"id": chat id, "messages": [UIMessage],
"trigger", "messageId", ...}``, each message ``{"role", "parts": [{"type": "text", "text"}]}``;
extra body fields ``provider``, ``model``, ``system``, ``max_tokens``, ``tools`` pass through.
The chat ``id`` is the session id (so history and persistence work as for any session).

Response: SSE ``data:`` lines, one UI message chunk each (ai-sdk.dev, "Stream Protocols",
data stream protocol; ``ai`` ``ui-message-chunks.ts``): ``start`` (``messageId`` = the
stream id), ``start-step``, ``text-start`` / ``text-delta`` / ``text-end``,
``reasoning-start`` / ``reasoning-delta`` / ``reasoning-end``, ``tool-input-start`` /
``tool-input-delta`` / ``tool-input-available`` / ``tool-output-available``, ``error``
(``errorText``), ``finish-step``, ``finish``, then ``data: [DONE]``; header
``x-vercel-ai-ui-message-stream: v1``. Text is the model's raw markdown (AI SDK apps render it
themselves), unpaced; the stream is generated exactly as for the other transports (its trace,
cancellation and persistence are the same), and the response holds it like a subscriber.
While nothing happens, an SSE comment (``: ping``) goes out every ``heartbeat_interval_s``
(the AI SDK's parser skips comments).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import trio

from streamer.errors import InvalidMessage
from streamer.protocol import SESSION_ID_RE, parse_control
from streamer.sessions import Registry, Session, Stream, Waiter

HEADERS = {"x-vercel-ai-ui-message-stream": "v1", "Cache-Control": "no-cache",
           "X-Accel-Buffering": "no"}


def parse_chat_request(body: Any, max_bytes: int) -> tuple[str | None, dict[str, Any]]:
    """``(session id or None, start message)`` from a ``useChat`` request body.

    Raises:
        InvalidMessage: not the shape above, or no text in the last user message.
    """
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise InvalidMessage("chat: the body is {\"id\", \"messages\": [UIMessage]}")
    messages = []
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or message.get("role") not in (
                "user", "assistant", "system"):
            raise InvalidMessage(f"chat: messages[{i}] needs a role user/assistant/system")
        parts = message.get("parts")
        if isinstance(parts, list):
            text = "".join(p.get("text", "") for p in parts
                           if isinstance(p, dict) and p.get("type") == "text"
                           and isinstance(p.get("text"), str))
        else:  # ai v4 shape
            text = message.get("content") if isinstance(message.get("content"), str) else ""
        if text:
            messages.append({"role": message["role"], "content": text})
    start: dict[str, Any] = {"type": "start", "messages": messages, "pacing": {"mode": "off"}}
    for key in ("provider", "model", "system", "max_tokens", "temperature", "tools", "echo"):
        if key in body:
            start[key] = body[key]
    parse_control(start, max_bytes)  # validate now: errors answer the POST
    chat_id = body.get("id")
    return (chat_id if isinstance(chat_id, str) and SESSION_ID_RE.fullmatch(chat_id)
            else None), start


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, ensure_ascii=False,
                                  separators=(",", ":")).encode() + b"\n\n"


async def ui_message_stream(registry: Registry, session: Session,
                            stream: Stream) -> AsyncIterator[bytes]:
    """The stream's output as UI message chunks, until it ends (or the client leaves)."""
    waiter = Waiter()
    stream.log.attach(waiter)  # finish, reasoning and tool events
    stream.part_waiters.add(waiter)  # text parts (the chunker may hold text back: no op)
    heartbeat_s = registry.config.server.heartbeat_interval_s
    session.pinned += 1  # the open response counts as a subscriber for the grace period
    open_kind: str | None = None
    block = 0
    sent = 0
    try:
        yield _sse({"type": "start", "messageId": stream.stream_id})
        yield _sse({"type": "start-step"})
        while True:
            parts = stream.parts
            while sent < len(parts):
                kind, value = parts[sent]
                sent += 1
                if kind in ("text", "reasoning"):
                    if open_kind != kind:
                        if open_kind is not None:
                            yield _sse({"type": f"{open_kind}-end", "id": f"{open_kind}-{block}"})
                        block += 1
                        open_kind = kind
                        yield _sse({"type": f"{kind}-start", "id": f"{kind}-{block}"})
                    yield _sse({"type": f"{kind}-delta", "id": f"{kind}-{block}",
                                "delta": value})
                    continue
                if open_kind is not None:
                    yield _sse({"type": f"{open_kind}-end", "id": f"{open_kind}-{block}"})
                    open_kind = None
                for chunk in _tool_chunks(value):
                    yield _sse(chunk)
            if stream.log.finished and sent >= len(stream.parts):
                break
            with trio.move_on_after(heartbeat_s) as idle:
                await waiter.wait()
            if idle.cancelled_caught:  # keep-alive: proxies keep the response open, and a
                yield b": ping\n\n"    # write to a peer that left can fail and end this

        if open_kind is not None:
            yield _sse({"type": f"{open_kind}-end", "id": f"{open_kind}-{block}"})
        if stream.log.error is not None:
            yield _sse({"type": "error", "errorText":
                        f"{stream.log.error['code']}: {stream.log.error['message']}"})
        yield _sse({"type": "finish-step"})
        yield _sse({"type": "finish"})
        yield b"data: [DONE]\n\n"
    finally:
        stream.log.detach(waiter)
        stream.part_waiters.discard(waiter)
        session.pinned -= 1
        stream.on_subscribers_changed()


def _tool_chunks(ev: dict[str, Any]) -> list[dict[str, Any]]:
    call_id, status = ev["call_id"], ev["status"]
    if status == "start":
        return [{"type": "tool-input-start", "toolCallId": call_id, "toolName": ev["name"]}]
    if status == "delta":
        return [{"type": "tool-input-delta", "toolCallId": call_id,
                 "inputTextDelta": ev["arguments_delta"]}]
    if status == "complete":
        return [{"type": "tool-input-available", "toolCallId": call_id,
                 "toolName": ev["name"], "input": ev["arguments"]}]
    if status == "result":
        return [{"type": "tool-output-available", "toolCallId": call_id,
                 "output": ev["result"]}]
    return []
