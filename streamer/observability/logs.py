"""Log records with fields (``docs/operations.md``, "Logs").

Every record streamer writes is one line: text (``time level logger: message key=value …``)
or, with ``--log-format json`` (``log.format = "json"``), one JSON object per line through
python-json-logger (its ``JsonFormatter``; docs: nhairs.github.io/python-json-logger).
What a record is about travels as fields, never pasted into its message:

- ``session_id``, ``stream_id``, ``connection_id``: given by the call (``extra=``) or, when it
  does not, taken from the task's log context (:func:`log_context`, a :mod:`contextvars`
  variable: a Trio task starts with a copy of its spawner's context, so a connection's tasks
  and a stream's tasks carry their ids without passing them around);
- whatever the call adds (:func:`fields`: a trace entry's detail, the access log's
  ``client``, ``method``, ``path``, ``status``, ``duration_ms``).

Records hold ids, codes, counts, sizes and times, never prompt or answer text, unless
``log.content = true`` asks for one record per finished stream with both
(:func:`log_stream_text`).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

#: the ids a record is about, by field name
IDS = ("session_id", "stream_id", "connection_id")
#: attributes of every ``LogRecord`` (and what formatters add): never a field's name
STANDARD = frozenset({*RESERVED_ATTRS, "message", "asctime", "taskName"})
#: the text format's head; its fields follow as ``key=value``
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the JSON format's fixed keys (renamed: ``time``, ``level``, ``logger``) before the fields
JSON_FIELDS = ("asctime", "levelname", "name", "message")
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}

_context: contextvars.ContextVar[tuple[str | None, str | None, str | None]] = \
    contextvars.ContextVar("streamer_log_context", default=(None, None, None))

logger = logging.getLogger("streamer.content")


def bind_log_context(*, session_id: str | None = None, stream_id: str | None = None,
                     connection_id: str | None = None) -> contextvars.Token[Any]:
    """From now on in this task (and in tasks it starts later), records without their own
    ids get these (``None``: none). A task that serves one connection binds once."""
    return _context.set((session_id, stream_id, connection_id))


@contextmanager
def log_context(*, session_id: str | None = None, stream_id: str | None = None,
                connection_id: str | None = None) -> Iterator[None]:
    """:func:`bind_log_context` for the block only."""
    token = bind_log_context(session_id=session_id, stream_id=stream_id,
                             connection_id=connection_id)
    try:
        yield
    finally:
        _context.reset(token)


def fields(**detail: Any) -> dict[str, Any]:
    """``detail`` as a record's ``extra``: a key a ``LogRecord`` owns gets a ``detail_``
    prefix (``logging`` refuses to overwrite one), ``connection`` becomes ``connection_id``."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if key == "connection":
            key = "connection_id"
        out[f"detail_{key}" if key in STANDARD else key] = value
    return out


class ContextFilter(logging.Filter):
    """Adds the task's log context (:func:`log_context`) to records that lack those ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in zip(IDS, _context.get(), strict=True):
            if value is not None and getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of ``record``: what its call and its context added."""
    return {k: v for k, v in record.__dict__.items() if k not in STANDARD and v is not None}


class TextFormatter(logging.Formatter):
    """``time level logger: message``, then each field as ``key=value`` (ids first)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        head = super().format(record)
        extra = record_fields(record)
        ordered = [*(k for k in IDS if k in extra), *(k for k in extra if k not in IDS)]
        tail = "".join(f" {k}={extra[k]}" for k in ordered)
        if not tail:
            return head
        first, newline, rest = head.partition("\n")  # a traceback stays below the fields
        return f"{first}{tail}{newline}{rest}"


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``log.format``: ``text`` or ``json``."""
    if fmt == "json":
        return JsonFormatter(list(JSON_FIELDS), rename_fields=JSON_RENAMES)
    return TextFormatter()


def configure_logging(level: str, fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """Send every record (streamer's, hypercorn's, Python's warnings) to ``stream`` (default
    stderr) in format ``fmt`` (``text`` or ``json``), at ``level`` and above; returns the
    handler. Replaces the root logger's handlers (``logging.basicConfig`` would keep them).

    Raises:
        ValueError: an unknown level name.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    return handler


def log_stream_text(stream_id: str, session_id: str, prompt: str, answer: str) -> None:
    """``log.content = true``: one record with a finished stream's prompt and answer (logger
    ``streamer.content``). Never called otherwise."""
    logger.info("stream text", extra={"stream_id": stream_id, "session_id": session_id,
                                      "prompt": prompt, "answer": answer})
