"""The encoders: a JSON frame and SSE framing. Every byte streamer writes to a client is made
here (WebSocket text frames, the SSE event stream, the AI SDK's UI message stream). And the
one decoder of what a client sends: :func:`decode_json`, bounded (:class:`JSONLimits`).

Each event is one JSON object (``ServerEvent.to_json()``, :mod:`streamer.wire.events`):

- WebSocket: :func:`encode_json`, one compact JSON text per frame.
- SSE (WHATWG HTML, "Server-sent events", §9.2.6 "The event stream format"): :func:`sse_frame`
  writes the fields of one event (``retry:``, ``id:``, ``event:``, ``data:``) and the blank
  line that ends it; :func:`encode_sse` is a server event in it (``event:`` its ``type``,
  ``id:`` its cursor); :func:`sse_comment` is a keep-alive comment line.

JSON never holds a raw newline (``json.dumps`` escapes it), so one ``data:`` line always
suffices.

Client JSON (control frames, control POST bodies, ``/api/chat``, ``/api/render``,
``/api/sessions``) goes through :func:`decode_json` only: UTF-8 (RFC 8259 §8.1), at most
``max_bytes``, arrays and objects nested at most ``max_depth`` deep (checked on the text
before parsing, so the parser never recurses deeper: no ``RecursionError``), number literals
of at most ``max_number_chars`` characters (checked by the parser's ``parse_int`` /
``parse_float`` hooks before converting, so no long ``int()``), no ``NaN``/``Infinity``, no
lone surrogate escape (it could not be written back as UTF-8). Messages quote the input only
through :func:`excerpt`. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from streamer.errors import InvalidMessage, PayloadTooLarge

if TYPE_CHECKING:
    from streamer.config import ServerConfig

JSONObject = dict[str, Any]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_quote = json.JSONEncoder(separators=(",", ":")).encode


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


# ------------------------------------------------------------------ client JSON

#: characters of the client's input an error message may quote (:func:`excerpt`)
EXCERPT_CHARS = 40


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short quote of client input for an error message: ``value`` as ASCII JSON, at most
    ``limit`` characters and ``…`` when cut."""
    cut = isinstance(value, str) and len(value) > limit
    quoted = _quote(value[:limit] if cut else value)
    return quoted[:limit] + "\u2026" if cut or len(quoted) > limit else quoted


@dataclass(frozen=True, slots=True)
class JSONLimits:
    """How much client JSON :func:`decode_json` accepts.

    Attributes:
        max_bytes: the text's length in bytes of UTF-8.
        max_depth: arrays and objects nested in each other (``[[1]]`` is 2).
        max_number_chars: characters of one number literal (digits, sign, point, exponent).
    """

    max_bytes: int = 65_536
    max_depth: int = 32
    max_number_chars: int = 64

    @classmethod
    def of(cls, server: ServerConfig, max_bytes: int | None = None) -> JSONLimits:
        """The ``[server]`` settings (``max_message_bytes`` unless ``max_bytes`` is given,
        ``max_json_depth``, ``max_json_number_digits``)."""
        return cls(server.max_message_bytes if max_bytes is None else max_bytes,
                   server.max_json_depth, server.max_json_number_digits)


_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_ONE_KIND = str.maketrans("{}", "[]")
#: an escape of a UTF-16 surrogate (``\ud800``-``\udfff``), possibly one half of a pair
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@lru_cache(maxsize=8)
def _nesting(depth: int) -> re.Pattern[str]:
    """Brackets of one kind, balanced and nested at most ``depth`` deep: the group
    ``(?:[ ... ])*+`` inside itself ``depth`` times (possessive, so a failing match never
    backtracks: linear time)."""
    pattern = ""
    for _ in range(depth):
        pattern = rf"(?:\[{pattern}\])*+"
    return re.compile(pattern)


def _outside_strings(text: str) -> str:
    """What lies between JSON strings. Escapes are two characters (``\\X``) read left to
    right, so dropping ``\\\\`` pairs, then ``\\"``, leaves only the quotes that open or
    close a string (in valid JSON; invalid JSON may give more or fewer brackets: it fails
    either way)."""
    if "\\" in text:
        text = text.replace("\\\\", "").replace('\\"', "")
    return "".join(text.split('"')[0::2])


def _check_nesting(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot nest deeper (the common case: one pass in C, no copy)
    brackets = _NOT_BRACKET.sub("", _outside_strings(text)).translate(_ONE_KIND)
    ok = _nesting(max_depth).match(brackets)
    assert ok is not None  # the pattern matches the empty string
    if ok.end() == len(brackets):
        return
    opens = brackets.count("[")
    if opens != len(brackets) - opens or brackets[ok.end()] == "]":
        raise InvalidMessage("not valid JSON: unbalanced brackets")
    raise InvalidMessage(f"not valid JSON: arrays and objects nest deeper than {max_depth} levels")


def _refuse_constant(name: str) -> Any:
    raise InvalidMessage(f"not valid JSON: {name} is not a JSON number")


@lru_cache(maxsize=8)
def _decoder(max_number_chars: int) -> json.JSONDecoder:
    """A decoder whose number hooks check a literal's length before converting it."""

    def too_long(literal: str) -> InvalidMessage:
        return InvalidMessage(f"a number of {len(literal)} characters (at most "
                              f"{max_number_chars})")

    def parse_int(literal: str) -> int:
        if len(literal) > max_number_chars:
            raise too_long(literal)
        return int(literal)

    def parse_float(literal: str) -> float:
        if len(literal) > max_number_chars:
            raise too_long(literal)
        number = float(literal)
        if not math.isfinite(number):
            raise InvalidMessage("a number too large for a double")
        return number

    return json.JSONDecoder(parse_int=parse_int, parse_float=parse_float,
                            parse_constant=_refuse_constant)


def _text_of(raw: str | bytes, max_bytes: int) -> str:
    """``raw`` as text, checked for size (bytes of UTF-8) and, for bytes, UTF-8."""
    if isinstance(raw, bytes):
        if len(raw) > max_bytes:
            raise PayloadTooLarge(f"a message of {len(raw)} bytes exceeds {max_bytes}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessage(f"not valid UTF-8 (at byte {exc.start})") from None
    if len(raw) > max_bytes or (not raw.isascii() and len(
            raw.encode("utf-8", "surrogatepass")) > max_bytes):
        raise PayloadTooLarge(f"a message of over {max_bytes} bytes")
    return raw


def decode_json(raw: str | bytes, limits: JSONLimits) -> Any:
    """The JSON value a client sent, within ``limits`` (the module docstring lists them).

    Args:
        raw: text (a WebSocket text frame), or bytes of UTF-8 (a request body).
        limits: what to accept.

    Raises:
        PayloadTooLarge: more than ``limits.max_bytes``.
        InvalidMessage: not UTF-8, not JSON (RFC 8259), nested too deep, a number literal
            too long or out of a double's range, ``NaN``/``Infinity``, a lone surrogate escape.
    """
    text = _text_of(raw, limits.max_bytes)
    _check_nesting(text, limits.max_depth)
    try:
        value = _decoder(limits.max_number_chars).decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"not valid JSON: {exc.msg} at character {exc.pos}") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            _dumps(value).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidMessage("a string holds a lone UTF-16 surrogate escape") from None
    return value
