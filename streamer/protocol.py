"""The wire protocol, version 1 (``docs/protocol.md``): events, control messages, encoders.

Server → client events are built with :func:`event` (a plain dict with ``type`` first) and
encoded once per transport: :func:`encode_json` for WebSocket text frames and
:func:`encode_sse` for ``text/event-stream``. Client → server control messages are parsed and
validated by :func:`parse_control` into frozen dataclasses; anything malformed raises
:class:`~streamer.errors.InvalidMessage` (or :class:`~streamer.errors.PayloadTooLarge`) with
a message that says what is wrong, so the transport can answer with an ``error`` event and
keep the connection.

No I/O here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from streamer.errors import InvalidMessage, PayloadTooLarge, StreamerError, UnsupportedProtocol
from streamer.render.ops import Op

PROTOCOL_VERSION = 2

#: session ids a client may invent: URL-safe, 8-64 characters (protocol.md, "Transports")
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
#: stream ids are the server's, but clients echo them back
STREAM_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

MAX_PROMPT_CHARS = 100_000
MAX_MESSAGES = 200
ROLES = ("system", "user", "assistant")

Event = dict[str, Any]


def event(type_: str, **fields: Any) -> Event:
    """Build a server → client event: ``{"type": type_, **fields}`` with ``None`` fields dropped."""
    out: Event = {"type": type_}
    for key, value in fields.items():
        if value is not None:
            out[key] = value
    return out


def chunk_event(session_id: str, stream_id: str, seq: int, op: Op) -> Event:
    """The ``chunk`` event of one (possibly merged) op; ``seq`` is the highest log seq it holds."""
    out: Event = {"type": "chunk", "session_id": session_id, "stream_id": stream_id,
                  "seq": seq, "op": op.op, "block": op.block}
    if op.op == "text":
        out["text"] = op.text
    else:
        out["html"] = op.html
        if op.op == "splice":
            out["trim"] = op.trim
    out["final"] = op.final
    return out


def op_from_chunk(ev: Event) -> Op:
    """The op a ``chunk`` event carries (the inverse of :func:`chunk_event`, for clients
    written in Python: the terminal client, tests)."""
    return Op(ev["op"], ev["block"], ev.get("html"), ev.get("text"),
              bool(ev.get("final", False)), 0, ev.get("trim", 0))


def error_event(exc: StreamerError, *, session_id: str | None = None,
                stream_id: str | None = None) -> Event:
    """The ``error`` event for one of streamer's exceptions."""
    return event("error", session_id=session_id, stream_id=stream_id, code=exc.code,
                 message=exc.message, retryable=exc.retryable,
                 retry_after_ms=exc.retry_after_ms)


def encode_json(ev: Event) -> str:
    """One WebSocket text frame: compact JSON, non-ASCII kept as UTF-8."""
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":"))


def encode_sse(ev: Event, event_id: str | None = None) -> bytes:
    """One SSE event (WHATWG HTML, "Server-sent events", §9.2.6 the event stream format).

    ``event:`` is the event's ``type``, ``data:`` its JSON on one line (JSON never contains a
    raw newline), ``id:`` the resume cursor when the event belongs to a stream's sequence.
    """
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {ev['type']}")
    lines.append(f"data: {encode_json(ev)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


# --------------------------------------------------------------------------- control messages


@dataclass(frozen=True, slots=True)
class Pacing:
    """Delivery pacing: ``off``, ``fixed`` (``cps`` chars/s) or ``smooth`` (``cps`` rising with
    the backlog). ``None`` fields fall back to the server's ``[pacing]`` configuration."""

    mode: Literal["off", "fixed", "smooth"] | None = None
    cps: float | None = None


@dataclass(frozen=True, slots=True)
class EchoOptions:
    delta_chars: int | None = None
    interval_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Start:
    messages: tuple[Message, ...]
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    pacing: Pacing = field(default_factory=Pacing)
    format: Literal["html", "markdown"] = "html"
    echo: EchoOptions = field(default_factory=EchoOptions)
    #: names of registered tools the model may call (``streamer.tools``)
    tools: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class ResumeCursor:
    """Where a client's copy of a stream ends: ``(stream_id, epoch, last_seq)``.

    ``epoch`` names the server's in-memory log the ``seq`` numbers belong to (it changes on
    restart); ``None`` when the client does not know it (then the server replays only if it
    can prove nothing was lost, else it answers ``resume_gap`` and a ``snapshot``).
    """

    stream_id: str
    epoch: str | None
    last_seq: int


EPOCH_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def event_id(stream_id: str, epoch: str, seq: int) -> str:
    """The SSE ``id:`` of a stream event: ``"{stream_id}:{epoch}:{seq}"`` (protocol.md)."""
    return f"{stream_id}:{epoch}:{seq}"


def parse_event_id(text: str) -> ResumeCursor:
    """Parse ``Last-Event-ID`` / ``last_event_id`` (``"{stream_id}:{epoch}:{seq}"``).

    Raises:
        InvalidMessage: the id does not have that shape.
    """
    parts = text.strip().split(":")
    if len(parts) != 3 or not STREAM_ID_RE.fullmatch(parts[0]) \
            or not EPOCH_RE.fullmatch(parts[1]) or not parts[2].isdigit():
        raise InvalidMessage("an event id is '{stream_id}:{epoch}:{seq}'")
    return ResumeCursor(parts[0], parts[1], int(parts[2]))


def parse_cursor(stream_id: str | None, epoch: str | None, last_seq: str | int | None
                 ) -> ResumeCursor | None:
    """A resume cursor from separate fields (URL query or a ``resume`` message).

    Returns ``None`` when neither ``stream_id`` nor ``last_seq`` is given.

    Raises:
        InvalidMessage: only one of ``stream_id``/``last_seq``, or a malformed value.
    """
    if stream_id is None and last_seq is None:
        return None
    if stream_id is None or last_seq is None:
        raise InvalidMessage("resume: give both 'stream_id' and 'last_seq', or neither")
    if not STREAM_ID_RE.fullmatch(stream_id):
        raise InvalidMessage("resume: 'stream_id' is not a valid stream id")
    if epoch is not None and not EPOCH_RE.fullmatch(epoch):
        raise InvalidMessage("resume: 'epoch' is not a valid epoch")
    if isinstance(last_seq, str):
        if not last_seq.isdigit():
            raise InvalidMessage("resume: 'last_seq' must be an integer >= 0")
        last_seq = int(last_seq)
    if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0:
        raise InvalidMessage("resume: 'last_seq' must be an integer >= 0")
    return ResumeCursor(stream_id, epoch, last_seq)


@dataclass(frozen=True, slots=True)
class Resume:
    """Without ``cursor``: resume delivery. With it: replay after the cursor, then follow."""

    cursor: ResumeCursor | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    pass


@dataclass(frozen=True, slots=True)
class Speed:
    cps: float


@dataclass(frozen=True, slots=True)
class Stop:
    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    ts: Any = None


@dataclass(frozen=True, slots=True)
class QueueRemove:
    stream_id: str


@dataclass(frozen=True, slots=True)
class QueueMove:
    stream_id: str
    position: int


Control = Start | Pause | Resume | Skip | Speed | Stop | Ping | QueueRemove | QueueMove


def _get(obj: dict[str, Any], key: str, kinds: type | tuple[type, ...], what: str,
         required: bool = False) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidMessage(f"{what}: '{key}' is required")
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise InvalidMessage(f"{what}: '{key}' has the wrong type (got a boolean)")
    if not isinstance(value, kinds):
        raise InvalidMessage(f"{what}: '{key}' has the wrong type ({type(value).__name__})")
    return value


def _positive_number(value: Any, what: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InvalidMessage(f"{what} must be a positive number")
    return number


def _parse_start(msg: dict[str, Any]) -> Start:
    what = "start"
    prompt = _get(msg, "prompt", str, what)
    raw_messages = _get(msg, "messages", list, what)
    if (prompt is None) == (raw_messages is None):
        raise InvalidMessage("start: give exactly one of 'prompt' or 'messages'")
    messages: list[Message] = []
    if prompt is not None:
        if not prompt.strip():
            raise InvalidMessage("start: 'prompt' is empty")
        messages.append(Message("user", prompt))
    else:
        if not raw_messages or len(raw_messages) > MAX_MESSAGES:
            raise InvalidMessage(f"start: 'messages' needs 1 to {MAX_MESSAGES} entries")
        for i, item in enumerate(raw_messages):
            if not isinstance(item, dict) or item.get("role") not in ROLES \
                    or not isinstance(item.get("content"), str):
                raise InvalidMessage(
                    f"start: messages[{i}] must be {{'role': one of {ROLES}, 'content': str}}")
            messages.append(Message(item["role"], item["content"]))
        if messages[-1].role != "user":
            raise InvalidMessage("start: the last message must be the user's")
    if sum(len(m.content) for m in messages) > MAX_PROMPT_CHARS:
        raise PayloadTooLarge(f"start: the prompt exceeds {MAX_PROMPT_CHARS} characters")
    provider = _get(msg, "provider", str, what)
    model = _get(msg, "model", str, what)
    system = _get(msg, "system", str, what)
    max_tokens = _get(msg, "max_tokens", int, what)
    if max_tokens is not None and not 1 <= max_tokens <= 1_000_000:
        raise InvalidMessage("start: 'max_tokens' must be between 1 and 1000000")
    temperature = _get(msg, "temperature", (int, float), what)
    if temperature is not None and not 0 <= temperature <= 2:
        raise InvalidMessage("start: 'temperature' must be between 0 and 2")
    fmt = _get(msg, "format", str, what) or "html"
    if fmt not in ("html", "markdown"):
        raise InvalidMessage("start: 'format' must be 'html' or 'markdown'")
    pacing = Pacing()
    raw_pacing = _get(msg, "pacing", dict, what)
    if raw_pacing is not None:
        mode = _get(raw_pacing, "mode", str, "start.pacing")
        if mode is not None and mode not in ("off", "fixed", "smooth"):
            raise InvalidMessage("start.pacing: 'mode' must be 'off', 'fixed' or 'smooth'")
        cps = _get(raw_pacing, "cps", (int, float), "start.pacing")
        pacing = Pacing(mode, None if cps is None else _positive_number(cps, "start.pacing.cps"))
    echo = EchoOptions()
    raw_echo = _get(msg, "echo", dict, what)
    if raw_echo is not None:
        delta_chars = _get(raw_echo, "delta_chars", int, "start.echo")
        if delta_chars is not None and not 1 <= delta_chars <= 100_000:
            raise InvalidMessage("start.echo: 'delta_chars' must be between 1 and 100000")
        interval_ms = _get(raw_echo, "interval_ms", (int, float), "start.echo")
        if interval_ms is not None and not 0 <= interval_ms <= 60_000:
            raise InvalidMessage("start.echo: 'interval_ms' must be between 0 and 60000")
        echo = EchoOptions(delta_chars, None if interval_ms is None else float(interval_ms))
    raw_tools = _get(msg, "tools", list, what) or []
    if len(raw_tools) > 32 or not all(isinstance(t, str) and STREAM_ID_RE.fullmatch(t)
                                      for t in raw_tools):
        raise InvalidMessage("start: 'tools' is a list of up to 32 tool names")
    return Start(tuple(messages), provider, model, system, max_tokens,
                 None if temperature is None else float(temperature), pacing, fmt, echo,
                 tuple(raw_tools))


def _stream_id(msg: dict[str, Any], what: str, required: bool) -> str | None:
    stream_id = _get(msg, "stream_id", str, what, required)
    if stream_id is not None and not STREAM_ID_RE.fullmatch(stream_id):
        raise InvalidMessage(f"{what}: 'stream_id' is not a valid stream id")
    return stream_id


def parse_control(raw: str | bytes | dict[str, Any], max_bytes: int) -> Control:
    """Parse and validate one control message (protocol.md, "Client → server").

    Args:
        raw: the WebSocket frame or POST body (JSON text), or an already decoded object.
        max_bytes: the largest accepted message, in bytes of UTF-8.

    Raises:
        PayloadTooLarge: the message is longer than ``max_bytes``.
        InvalidMessage: not JSON, not an object, unknown ``type``, or a bad field.
        UnsupportedProtocol: the message asks for a protocol version this server lacks.
    """
    if isinstance(raw, dict):
        msg = raw
    else:
        size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8"))
        if size > max_bytes:
            raise PayloadTooLarge(f"control message of {size} bytes exceeds {max_bytes}")
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidMessage(f"not valid JSON: {exc}") from exc
    if not isinstance(msg, dict):
        raise InvalidMessage("a control message must be a JSON object")
    if "protocol" in msg and msg["protocol"] != PROTOCOL_VERSION:
        raise UnsupportedProtocol(
            f"protocol {msg['protocol']!r} is not supported; this server speaks {PROTOCOL_VERSION}")
    kind = msg.get("type")
    if kind == "start":
        return _parse_start(msg)
    if kind == "pause":
        return Pause()
    if kind == "resume":
        return Resume(parse_cursor(_get(msg, "stream_id", str, "resume"),
                                   _get(msg, "epoch", str, "resume"),
                                   _get(msg, "last_seq", int, "resume")))
    if kind == "skip":
        return Skip()
    if kind == "speed":
        cps = _get(msg, "cps", (int, float), "speed", required=True)
        return Speed(_positive_number(cps, "speed: 'cps'"))
    if kind == "stop":
        return Stop(_stream_id(msg, "stop", required=False))
    if kind == "ping":
        return Ping(msg.get("ts"))
    if kind == "queue_remove":
        return QueueRemove(_stream_id(msg, "queue_remove", required=True) or "")
    if kind == "queue_move":
        position = _get(msg, "position", int, "queue_move", required=True)
        if position < 0:
            raise InvalidMessage("queue_move: 'position' must be >= 0")
        return QueueMove(_stream_id(msg, "queue_move", required=True) or "", position)
    if kind is None:
        raise InvalidMessage("a control message needs a 'type'")
    raise InvalidMessage(f"unknown message type {kind!r}")
