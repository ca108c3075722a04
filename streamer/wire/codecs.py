"""The encoders: a JSON frame and SSE framing. Every byte streamer writes to a client is made
here (WebSocket text frames, the SSE event stream, the AI SDK's UI message stream).

Each event is one JSON object (``ServerEvent.to_json()``, :mod:`streamer.wire.events`):

- WebSocket: :func:`encode_json`, one compact JSON text per frame.
- SSE (WHATWG HTML, "Server-sent events", §9.2.6 "The event stream format"): :func:`sse_frame`
  writes the fields of one event (``retry:``, ``id:``, ``event:``, ``data:``) and the blank
  line that ends it; :func:`encode_sse` is a server event in it (``event:`` its ``type``,
  ``id:`` its cursor); :func:`sse_comment` is a keep-alive comment line.

JSON never holds a raw newline (``json.dumps`` escapes it), so one ``data:`` line always
suffices. Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

JSONObject = dict[str, Any]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_json(obj: JSONObject) -> str:
    """One WebSocket text frame: compact JSON, non-ASCII kept as UTF-8."""
    return _dumps(obj)


def sse_frame(data: str, *, event: str | None = None, event_id: str | None = None,
              retry_ms: int | None = None) -> bytes:
    """One SSE event, UTF-8: optional ``retry:`` (ms), ``id:`` and ``event:`` fields, one
    ``data:`` line (``data`` holds no newline), then the blank line that dispatches it."""
    head = ""
    if retry_ms is not None:
        head += f"retry: {retry_ms}\n"
    if event_id is not None:
        head += f"id: {event_id}\n"
    if event is not None:
        head += f"event: {event}\n"
    return f"{head}data: {data}\n\n".encode()


def encode_sse(obj: JSONObject, event_id: str | None = None, *,
               retry_ms: int | None = None) -> bytes:
    """A server event as one SSE event: ``event:`` is its ``type``, ``data:`` its JSON,
    ``id:`` the resume cursor when the event belongs to a stream's sequence."""
    return sse_frame(encode_json(obj), event=obj["type"], event_id=event_id, retry_ms=retry_ms)


def sse_comment(text: str) -> bytes:
    """An SSE comment line (``: text``), ignored by every parser: a keep-alive."""
    return f": {text}\n\n".encode()
