"""The Vercel AI SDK's UI message stream, as a pure encoder (``POST /api/chat``).

Request (``DefaultChatTransport`` of ``ai`` v5): ``{"id": chat id, "messages": [UIMessage],
"trigger", "messageId", ...}``, each message ``{"role", "parts": [{"type": "text", "text"}]}``
(``ai`` v4: ``{"role", "content"}``); extra body fields ``provider``, ``model``, ``system``,
``max_tokens``, ``temperature``, ``tools``, ``echo`` pass through to ``start``. The chat ``id``
is the session id. :func:`parse_chat_request` turns it into a :class:`Start`.

Response: SSE ``data:`` lines, one UI message chunk each (ai-sdk.dev, "Stream Protocols",
data stream protocol; ``ai`` ``ui-message-chunks.ts``): ``start`` (``messageId`` = the
stream id), ``start-step``, ``text-start`` / ``text-delta`` / ``text-end``,
``reasoning-start`` / ``reasoning-delta`` / ``reasoning-end``, ``tool-input-start`` /
``tool-input-delta`` / ``tool-input-available`` / ``tool-output-available``, ``source-url``
(``sourceId``, ``url``, ``title``: the sources an answer cites), ``error`` (``errorText``),
``finish-step``, ``finish`` (``messageMetadata``: ``finishReason``, and ``usage``:
``inputTokens``, ``outputTokens``, ``totalTokens`` and their ``unit``, tokens or characters), then
``data: [DONE]``; header ``x-vercel-ai-ui-message-stream: v1``. :class:`UIMessageStream` is
the state machine that opens and closes the text and reasoning parts; it never awaits. Pure:
no I/O.
"""

from __future__ import annotations

from typing import Any

from streamer.errors import InvalidMessage
from streamer.wire.codecs import JSONObject, encode_json, sse_comment, sse_frame
from streamer.wire.controls import Start, parse_control
from streamer.wire.cursor import SESSION_ID_RE
from streamer.wire.events import Error, StreamComplete, ToolCall

HEADERS = {"x-vercel-ai-ui-message-stream": "v1", "Cache-Control": "no-cache",
           "X-Accel-Buffering": "no"}
#: the last line of every UI message stream
DONE = sse_frame("[DONE]")
#: the keep-alive while nothing happens (the AI SDK's parser skips comments)
KEEP_ALIVE = sse_comment("ping")
#: ``start`` fields a chat request may carry besides its messages
PASSED_THROUGH = ("provider", "model", "system", "max_tokens", "temperature", "tools", "echo")
#: a stream's ``finish_reason`` → the AI SDK's ``finishReason`` (``cancelled``: ``other``)
FINISH_REASONS = {"stop": "stop", "length": "length", "error": "error", "cancelled": "other"}


def _text_of(message: dict[str, Any]) -> str:
    parts = message.get("parts")
    if isinstance(parts, list):
        return "".join(p.get("text", "") for p in parts
                       if isinstance(p, dict) and p.get("type") == "text"
                       and isinstance(p.get("text"), str))
    content = message.get("content")  # ai v4 shape
    return content if isinstance(content, str) else ""


def parse_chat_request(body: Any, max_bytes: int) -> tuple[str | None, Start]:
    """``(session id or None, the start control)`` from a ``useChat`` request body; the
    answer is unpaced (``pacing.mode: off``: AI SDK apps render as text arrives).

    Raises:
        InvalidMessage: not the shape above, or no text in the last user message (the
            errors of :func:`~streamer.wire.controls.parse_control` too).
    """
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise InvalidMessage("chat: the body is {\"id\", \"messages\": [UIMessage]}")
    messages = []
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or message.get("role") not in (
                "user", "assistant", "system"):
            raise InvalidMessage(f"chat: messages[{i}] needs a role user/assistant/system")
        text = _text_of(message)
        if text:
            messages.append({"role": message["role"], "content": text})
    start: dict[str, Any] = {"type": "start", "messages": messages, "pacing": {"mode": "off"}}
    for key in PASSED_THROUGH:
        if key in body:
            start[key] = body[key]
    control = parse_control(start, max_bytes)
    assert isinstance(control, Start)
    chat_id = body.get("id")
    return (chat_id if isinstance(chat_id, str) and SESSION_ID_RE.fullmatch(chat_id)
            else None), control


def frame(chunk: JSONObject) -> bytes:
    """One UI message chunk as its SSE ``data:`` line."""
    return sse_frame(encode_json(chunk))


def _tool_chunk(ev: ToolCall) -> JSONObject:
    if ev.status == "start":
        return {"type": "tool-input-start", "toolCallId": ev.call_id, "toolName": ev.name}
    if ev.status == "delta":
        return {"type": "tool-input-delta", "toolCallId": ev.call_id,
                "inputTextDelta": ev.arguments_delta}
    if ev.status == "complete":
        return {"type": "tool-input-available", "toolCallId": ev.call_id,
                "toolName": ev.name, "input": ev.arguments}
    return {"type": "tool-output-available", "toolCallId": ev.call_id, "output": ev.result}


class UIMessageStream:
    """One assistant message as UI message chunks: feed it the answer's pieces in order,
    send what each call returns.

    Text and reasoning arrive as deltas; consecutive deltas of one kind share a part
    (``text-start`` … ``text-end``, ids ``text-1``, ``reasoning-2``, …); a tool call or a
    change of kind closes the open part.
    """

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self._open: str | None = None
        self._part = 0
        self._sources = 0

    def start(self) -> list[JSONObject]:
        return [{"type": "start", "messageId": self.message_id}, {"type": "start-step"}]

    def _delta(self, kind: str, delta: str) -> list[JSONObject]:
        out = []
        if self._open != kind:
            out += self._close()
            self._part += 1
            self._open = kind
            out.append({"type": f"{kind}-start", "id": f"{kind}-{self._part}"})
        out.append({"type": f"{kind}-delta", "id": f"{kind}-{self._part}", "delta": delta})
        return out

    def _close(self) -> list[JSONObject]:
        if self._open is None:
            return []
        kind, self._open = self._open, None
        return [{"type": f"{kind}-end", "id": f"{kind}-{self._part}"}]

    def text(self, delta: str) -> list[JSONObject]:
        """A piece of the answer's markdown (raw: AI SDK apps render it themselves)."""
        return self._delta("text", delta)

    def reasoning(self, delta: str) -> list[JSONObject]:
        return self._delta("reasoning", delta)

    def tool_call(self, ev: ToolCall) -> list[JSONObject]:
        return [*self._close(), _tool_chunk(ev)]

    def sources(self, sources: tuple[tuple[str, str], ...]) -> list[JSONObject]:
        """The answer's sources (``(url, title)``, numbered as its ``[n]`` markers) as
        ``source-url`` parts, ids ``source-1``, ``source-2``, …"""
        self._sources += len(sources)
        first = self._sources - len(sources) + 1
        return [*self._close(), *({"type": "source-url", "sourceId": f"source-{i}", "url": url,
                                   "title": title}
                                  for i, (url, title) in enumerate(sources, first))]

    def finish(self, error: Error | None,
               complete: StreamComplete | None = None) -> list[JSONObject]:
        """The end: the open part closed, the stream's error if it failed, then
        ``finish-step`` and ``finish`` with the finish reason and, when the provider reported
        it, the usage as message metadata (send :data:`DONE` after them). Both go in
        ``messageMetadata``: ``ai`` 5.0's first chunk schemas were strict objects, which
        refuse a ``finishReason`` field."""
        out = self._close()
        if error is not None:
            body = error.to_json()  # the one exit of error payloads
            out.append({"type": "error", "errorText":
                        f"{body['code']}: {body['message']} ({body['error_id']})"})
        finish: JSONObject = {"type": "finish"}
        if complete is not None:  # metadata, not a field: ai 5.0's first schema was strict
            metadata: JSONObject = {
                "finishReason": FINISH_REASONS.get(complete.finish_reason, "other")}
            if complete.usage:
                usage = complete.usage
                metadata["usage"] = {
                    "inputTokens": usage["input_tokens"], "outputTokens": usage["output_tokens"],
                    "totalTokens": usage["input_tokens"] + usage["output_tokens"],
                    "unit": usage.get("unit", "tokens")}
            finish["messageMetadata"] = metadata
        return [*out, {"type": "finish-step"}, finish]
