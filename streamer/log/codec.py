"""A stream log's content as flat records of string fields: what a replicating engine (Redis
Streams, ``docs/engines.md``) stores per entry, and back.

Each :class:`Record` is one of three kinds:

=========  ==================================================================================
kind       fields (all strings; JSON where structured)
=========  ==================================================================================
entry      ``n``: the entry's ``seq``; ``o``: its op as a JSON list
           ``[op, block, html, text, final, chars, trim]`` or ``v``: its event's JSON
           (:meth:`to_json`)
source     source pieces with no entry after them yet
end        ``c``: the ``stream_complete`` JSON; ``x``: the ``error`` JSON (optional)
=========  ==================================================================================

Every record has ``k`` (the kind), ``e`` (the stream's epoch), ``s``: a JSON list of the
source pieces appended since the previous record (they come before the record's entry), and
``p``: how many source pieces the stream has after them (an entry's ``source_parts``; a
reader that lost a record sees its count differ).
``total_chars`` is not stored: a reader recomputes it by appending the ops to its own log.

Pure: no I/O, no Trio. Raises :class:`ValueError` on a malformed record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streamer.log.stream_log import LogEntry
from streamer.render.ops import Op
from streamer.wire.events import (
    Error,
    JSONObject,
    LogEvent,
    Reasoning,
    Retrying,
    Sources,
    StreamComplete,
    ToolCall,
    Waiting,
)

RecordKind = Literal["entry", "source", "end"]


@dataclass(frozen=True, slots=True)
class Record:
    """One replicated record: ``entry`` (with ``entry``), ``source``, or ``end`` (with
    ``complete`` and an optional ``error``); ``sources``: the source pieces before it,
    ``parts``: the stream's count of source pieces with them."""

    kind: RecordKind
    epoch: str
    sources: tuple[str, ...] = ()
    parts: int = 0
    entry: LogEntry | None = None
    complete: StreamComplete | None = None
    error: Error | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_record(record: Record) -> dict[str, str]:
    """The Redis fields of ``record``."""
    fields = {"k": record.kind, "e": record.epoch, "p": str(record.parts)}
    if record.sources:
        fields["s"] = _dumps(list(record.sources))
    entry = record.entry
    if record.kind == "entry" and entry is not None:
        fields["n"] = str(entry.seq)
        if entry.op is not None:
            op = entry.op
            fields["o"] = _dumps([op.op, op.block, op.html, op.text, op.final, op.chars,
                                  op.trim])
        elif entry.event is not None:
            fields["v"] = _dumps(entry.event.to_json())
    elif record.kind == "end" and record.complete is not None:
        fields["c"] = _dumps(record.complete.to_json())
        if record.error is not None:
            fields["x"] = _dumps(record.error.to_json())
    return fields


def _text(fields: Mapping[Any, Any], key: str) -> str | None:
    value = fields.get(key, fields.get(key.encode()))
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _required(fields: Mapping[Any, Any], key: str) -> str:
    value = _text(fields, key)
    if value is None:
        raise ValueError(f"log record without field {key!r}")
    return value


def decode_record(fields: Mapping[Any, Any]) -> Record:
    """The record of Redis ``fields`` (keys and values ``str`` or ``bytes``).

    Raises:
        ValueError: a field is missing or malformed (not written by :func:`encode_record`).
    """
    try:
        kind = _required(fields, "k")
        epoch = _required(fields, "e")
        raw_sources = _text(fields, "s")
        sources = tuple(json.loads(raw_sources)) if raw_sources else ()
        parts = int(_required(fields, "p"))
        if kind == "source":
            return Record("source", epoch, sources, parts)
        if kind == "end":
            raw_error = _text(fields, "x")
            return Record("end", epoch, sources, parts,
                          complete=_complete(json.loads(_required(fields, "c"))),
                          error=_error(json.loads(raw_error)) if raw_error else None)
        if kind == "entry":
            return Record("entry", epoch, sources, parts, _entry(fields, parts))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed log record: {exc}") from exc
    raise ValueError(f"unknown log record kind {kind!r}")


def _entry(fields: Mapping[Any, Any], parts: int) -> LogEntry:
    seq = int(_required(fields, "n"))
    raw_op = _text(fields, "o")
    if raw_op is not None:
        kind, block, html, text, final, chars, trim = json.loads(raw_op)
        op = Op(kind, block, html, text, final, chars, trim)
        return LogEntry(seq, op, 0, None, parts, chars)
    return LogEntry(seq, None, 0, decode_event(json.loads(_required(fields, "v"))), parts)


def _stream_fields(obj: JSONObject) -> tuple[str, str]:
    return obj["session_id"], obj["stream_id"]


def _reasoning(obj: JSONObject) -> Reasoning:
    return Reasoning(*_stream_fields(obj), obj["text"])


def _tool_call(obj: JSONObject) -> ToolCall:
    return ToolCall(*_stream_fields(obj), obj["call_id"], obj["status"], obj.get("name"),
                    obj.get("arguments_delta"), obj.get("arguments"), obj.get("result"),
                    obj.get("is_error"))


def _state(obj: JSONObject) -> Retrying | Waiting:
    if obj["state"] == "retrying":
        return Retrying(*_stream_fields(obj), obj["attempt"], obj["retry_in_ms"], obj["code"],
                        obj["message"])
    if obj["state"] == "waiting":
        return Waiting(*_stream_fields(obj), obj["position"], obj.get("eta_ms"))
    raise ValueError(f"not a log event state: {obj['state']!r}")


def _sources(obj: JSONObject) -> Sources:
    return Sources(*_stream_fields(obj),
                   tuple((item["url"], item["title"]) for item in obj["sources"]))


_EVENTS: dict[str, Callable[[JSONObject], LogEvent]] = {
    "reasoning": _reasoning, "tool_call": _tool_call, "state": _state, "sources": _sources,
}


def decode_event(obj: JSONObject) -> LogEvent:
    """The log event of its unstamped JSON (the inverse of ``to_json`` for :data:`LogEvent`).

    Raises:
        ValueError: not the JSON of a log event.
    """
    decoder = _EVENTS.get(obj.get("type", ""))
    if decoder is None:
        raise ValueError(f"not a log event: {obj.get('type')!r}")
    return decoder(obj)


def _complete(obj: JSONObject) -> StreamComplete:
    return StreamComplete(*_stream_fields(obj), obj["finish_reason"], obj["html"],
                          obj["markdown"], obj.get("usage"), obj["message_id"],
                          obj.get("duration_ms"))


def _error(obj: JSONObject) -> Error:
    return Error(obj["code"], obj["message"], obj["retryable"], obj.get("retry_after_ms"),
                 obj.get("session_id"), obj.get("stream_id"), obj["error_id"])
