"""Client → server control messages: one frozen dataclass each, and :func:`parse_control`.

=====================  =================================================================
wire ``type``          dataclass
=====================  =================================================================
``start``              :class:`Start` (with :class:`Pacing`; ``conversation.Message``)
``pause``              :class:`Pause`
``resume``             :class:`Resume` without fields: delivery goes on after ``pause``;
                       :class:`ResumeFrom` with ``stream_id`` + ``last_seq`` (+ ``epoch``):
                       following restarts at that cursor (replay, then live)
``skip``               :class:`Skip`
``speed``              :class:`Speed`
``stop``               :class:`Stop`
``ping``               :class:`Ping`
``queue_remove``       :class:`QueueRemove`
``queue_move``         :class:`QueueMove`
=====================  =================================================================

Anything malformed raises :class:`~streamer.errors.InvalidMessage` (or
:class:`~streamer.errors.PayloadTooLarge`, :class:`~streamer.errors.UnsupportedProtocol`) with
a message that says what is wrong, so the transport answers with an ``error`` event and keeps
the connection. The text is decoded by :func:`~streamer.wire.codecs.decode_json` (bounded size,
nesting and numbers); a field a message does not define is ``invalid_message`` (:data:`FIELDS`:
a misspelt option must not be silently dropped); messages quote the input only through
:func:`~streamer.wire.codecs.excerpt`. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from streamer.conversation import ROLES, EchoOptions, Message
from streamer.errors import InvalidMessage, UnsupportedProtocol
from streamer.wire.codecs import JSONLimits, decode_json, encode_json, excerpt
from streamer.wire.cursor import STREAM_ID_RE, Cursor, parse_cursor
from streamer.wire.events import PROTOCOL_VERSION

MAX_MESSAGES = 200
MAX_TOOLS = 32
#: ``ping.ts`` is echoed in ``pong``: at most this many characters of JSON
MAX_PING_TS_CHARS = 128
#: ``queue_move.position`` beyond the queue means "last"; larger numbers say nothing more
MAX_QUEUE_POSITION = 1_000_000
#: a provider's name: what ``[providers]`` can name
PROVIDER_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: a model's name: printable, no spaces (``org/model:tag@rev`` and the like)
MODEL_RE = re.compile(r"[!-~]{1,200}")

#: the fields each control message may carry (besides ``type`` and ``protocol``); any other
#: is ``invalid_message``. ``start.format`` (protocol 1) is still accepted and ignored.
FIELDS: dict[str, frozenset[str]] = {
    "start": frozenset({"prompt", "messages", "provider", "model", "system", "max_tokens",
                        "temperature", "pacing", "echo", "tools", "format"}),
    "pause": frozenset(), "skip": frozenset(),
    "resume": frozenset({"stream_id", "last_seq", "epoch"}),
    "speed": frozenset({"cps"}),
    "stop": frozenset({"stream_id"}),
    "ping": frozenset({"ts"}),
    "queue_remove": frozenset({"stream_id"}),
    "queue_move": frozenset({"stream_id", "position"}),
}
_ALLOWED = {kind: fields | {"type", "protocol"} for kind, fields in FIELDS.items()}
_MESSAGE_FIELDS = frozenset({"role", "content"})
_PACING_FIELDS = frozenset({"mode", "cps"})
#: ``start.echo.repeat`` at most (the answer is cut at ``ECHO_MAX_CHARS`` anyway)
ECHO_MAX_REPEAT = 1000
_ECHO_FIELDS = frozenset({"delta_chars", "interval_ms", "repeat"})

PacingMode = Literal["off", "fixed", "smooth"]


@dataclass(frozen=True, slots=True)
class Pacing:
    """Delivery pacing: ``off``, ``fixed`` (``cps`` chars/s) or ``smooth`` (``cps`` rising with
    the backlog). ``None`` fields fall back to the server's ``[pacing]`` configuration."""

    mode: PacingMode | None = None
    cps: float | None = None


@dataclass(frozen=True, slots=True)
class Start:
    """Start a stream (queued behind a running one): the conversation and how to answer."""

    messages: tuple[Message, ...]
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    pacing: Pacing = field(default_factory=Pacing)
    echo: EchoOptions = field(default_factory=EchoOptions)
    #: names of registered tools the model may call (``streamer.tools``)
    tools: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pause:
    """Hold delivery to this connection (generation goes on)."""


@dataclass(frozen=True, slots=True)
class Resume:
    """``resume`` without a cursor: deliver again after ``pause``."""


@dataclass(frozen=True, slots=True)
class ResumeFrom:
    """``resume`` with a cursor: restart following at ``cursor`` (replay after its ``seq``,
    then live; a ``resume_gap`` and a ``snapshot`` when that cannot be exact)."""

    cursor: Cursor


@dataclass(frozen=True, slots=True)
class Skip:
    """Deliver everything received so far at once, then the rest unpaced."""


@dataclass(frozen=True, slots=True)
class Speed:
    """Change the delivery rate live (characters per second, > 0)."""

    cps: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Cancel a stream: the named one, else the running one."""

    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """Answered by ``pong`` with the same ``ts`` (any JSON)."""

    ts: Any = None


@dataclass(frozen=True, slots=True)
class QueueRemove:
    """A queued stream ends (cancelled) without generating."""

    stream_id: str


@dataclass(frozen=True, slots=True)
class QueueMove:
    """Put a queued stream at ``position`` (0 = next) among the waiting."""

    stream_id: str
    position: int


Control = (Start | Pause | Resume | ResumeFrom | Skip | Speed | Stop | Ping | QueueRemove
           | QueueMove)


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


def _only(obj: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    """Refuse a field ``obj`` does not define (its name quoted by :func:`excerpt`)."""
    for key in obj:
        if key not in allowed:
            raise InvalidMessage(f"{what}: unknown field {excerpt(key)}")


def _positive_number(value: Any, what: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InvalidMessage(f"{what} must be a positive number")
    return number


def _messages(msg: dict[str, Any]) -> tuple[Message, ...]:
    prompt = _get(msg, "prompt", str, "start")
    raw_messages = _get(msg, "messages", list, "start")
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
            _only(item, _MESSAGE_FIELDS, f"start: messages[{i}]")
            messages.append(Message(item["role"], item["content"]))
        if messages[-1].role != "user":
            raise InvalidMessage("start: the last message must be the user's")
    return tuple(messages)


def _pacing(msg: dict[str, Any]) -> Pacing:
    raw = _get(msg, "pacing", dict, "start")
    if raw is None:
        return Pacing()
    _only(raw, _PACING_FIELDS, "start.pacing")
    mode = _get(raw, "mode", str, "start.pacing")
    if mode is not None and mode not in ("off", "fixed", "smooth"):
        raise InvalidMessage("start.pacing: 'mode' must be 'off', 'fixed' or 'smooth'")
    cps = _get(raw, "cps", (int, float), "start.pacing")
    return Pacing(mode, None if cps is None else _positive_number(cps, "start.pacing.cps"))


def _echo(msg: dict[str, Any]) -> EchoOptions:
    raw = _get(msg, "echo", dict, "start")
    if raw is None:
        return EchoOptions()
    _only(raw, _ECHO_FIELDS, "start.echo")
    delta_chars = _get(raw, "delta_chars", int, "start.echo")
    if delta_chars is not None and not 1 <= delta_chars <= 100_000:
        raise InvalidMessage("start.echo: 'delta_chars' must be between 1 and 100000")
    interval_ms = _get(raw, "interval_ms", (int, float), "start.echo")
    if interval_ms is not None and not 0 <= interval_ms <= 60_000:
        raise InvalidMessage("start.echo: 'interval_ms' must be between 0 and 60000")
    repeat = _get(raw, "repeat", int, "start.echo")
    if repeat is not None and not 1 <= repeat <= ECHO_MAX_REPEAT:
        raise InvalidMessage(f"start.echo: 'repeat' must be between 1 and {ECHO_MAX_REPEAT}")
    return EchoOptions(delta_chars, None if interval_ms is None else float(interval_ms),
                       repeat or 1)


def _parse_start(msg: dict[str, Any]) -> Start:
    what = "start"
    messages = _messages(msg)
    provider = _get(msg, "provider", str, what)
    if provider is not None and not PROVIDER_RE.fullmatch(provider):
        raise InvalidMessage("start: 'provider' is 1-64 characters of A-Z, a-z, 0-9, '_.-'")
    model = _get(msg, "model", str, what)
    if model is not None and not MODEL_RE.fullmatch(model):
        raise InvalidMessage("start: 'model' is 1-200 printable ASCII characters, no spaces")
    system = _get(msg, "system", str, what)
    max_tokens = _get(msg, "max_tokens", int, what)
    if max_tokens is not None and not 1 <= max_tokens <= 1_000_000:
        raise InvalidMessage("start: 'max_tokens' must be between 1 and 1000000")
    temperature = _get(msg, "temperature", (int, float), what)
    if temperature is not None and not 0 <= temperature <= 2:
        raise InvalidMessage("start: 'temperature' must be between 0 and 2")
    raw_tools = _get(msg, "tools", list, what) or []
    if len(raw_tools) > MAX_TOOLS or not all(isinstance(t, str) and STREAM_ID_RE.fullmatch(t)
                                             for t in raw_tools):
        raise InvalidMessage(f"start: 'tools' is a list of up to {MAX_TOOLS} tool names")
    return Start(messages, provider, model, system, max_tokens,
                 None if temperature is None else float(temperature), _pacing(msg), _echo(msg),
                 tuple(raw_tools))


def _stream_id(msg: dict[str, Any], what: str, required: bool) -> str | None:
    stream_id: str | None = _get(msg, "stream_id", str, what, required)
    if stream_id is not None and not STREAM_ID_RE.fullmatch(stream_id):
        raise InvalidMessage(f"{what}: 'stream_id' is not a valid stream id")
    return stream_id


def _parse_resume(msg: dict[str, Any]) -> Resume | ResumeFrom:
    cursor = parse_cursor(_get(msg, "stream_id", str, "resume"), _get(msg, "epoch", str, "resume"),
                          _get(msg, "last_seq", int, "resume"))
    return Resume() if cursor is None else ResumeFrom(cursor)


def _parse_speed(msg: dict[str, Any]) -> Speed:
    return Speed(_positive_number(_get(msg, "cps", (int, float), "speed", required=True),
                                  "speed: 'cps'"))


def _parse_ping(msg: dict[str, Any]) -> Ping:
    ts = msg.get("ts")
    if ts is not None and len(encode_json(ts)) > MAX_PING_TS_CHARS:
        raise InvalidMessage(f"ping: 'ts' is at most {MAX_PING_TS_CHARS} characters of JSON")
    return Ping(ts)


def _parse_queue_move(msg: dict[str, Any]) -> QueueMove:
    position = _get(msg, "position", int, "queue_move", required=True)
    if not 0 <= position <= MAX_QUEUE_POSITION:
        raise InvalidMessage(f"queue_move: 'position' must be from 0 to {MAX_QUEUE_POSITION}")
    return QueueMove(_stream_id(msg, "queue_move", required=True) or "", position)


_PARSERS: dict[str, Callable[[dict[str, Any]], Control]] = {
    "start": _parse_start,
    "pause": lambda msg: Pause(),
    "resume": _parse_resume,
    "skip": lambda msg: Skip(),
    "speed": _parse_speed,
    "stop": lambda msg: Stop(_stream_id(msg, "stop", required=False)),
    "ping": _parse_ping,
    "queue_remove": lambda msg: QueueRemove(
        _stream_id(msg, "queue_remove", required=True) or ""),
    "queue_move": _parse_queue_move,
}


def parse_control(raw: str | bytes | dict[str, Any], limits: int | JSONLimits) -> Control:
    """Parse and validate one control message (protocol.md, "Client → server").

    Args:
        raw: the WebSocket frame or POST body (JSON text), or an already decoded object.
        limits: what :func:`~streamer.wire.codecs.decode_json` accepts; an ``int`` is the
            largest message in bytes of UTF-8, with the default depth and number limits.

    Raises:
        PayloadTooLarge: the message is longer than ``limits.max_bytes``.
        InvalidMessage: not JSON within ``limits``, not an object, unknown ``type``, an
            unknown field, or a bad field.
        UnsupportedProtocol: the message asks for a protocol version this server lacks.
    """
    if not isinstance(raw, dict):
        raw = decode_json(raw, limits if isinstance(limits, JSONLimits)
                          else JSONLimits(max_bytes=limits))
    if not isinstance(raw, dict):
        raise InvalidMessage("a control message must be a JSON object")
    msg: dict[str, Any] = raw
    if "protocol" in msg and msg["protocol"] != PROTOCOL_VERSION:
        raise UnsupportedProtocol(f"protocol {excerpt(msg['protocol'])} is not supported; this "
                                  f"server speaks {PROTOCOL_VERSION}")
    kind = msg.get("type")
    if kind is None:
        raise InvalidMessage("a control message needs a 'type'")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise InvalidMessage(f"unknown message type {excerpt(kind)}")
    _only(msg, _ALLOWED[kind], kind)
    return parser(msg)
