"""Server → client events: one frozen dataclass per event of ``docs/protocol.md``, each built
in one place and turned into its JSON object by ``to_json()`` (the codecs encode that object).

=====================  ==========================================  ===========================
class                  ``type`` on the wire                        built by
=====================  ==========================================  ===========================
:class:`Connected`     ``connected``                               the connection runtime
:class:`Heartbeat`     ``heartbeat`` (WebSocket only)              the connection's writer
:class:`StreamStart`   ``stream_start`` (also ``queued``/stored)   subscription, control table,
                                                                   resume of a stored answer
:class:`Chunk`         ``chunk``                                   the merge (``delivery``)
:class:`Snapshot`      ``snapshot``                                subscription, stored resume
:class:`Reasoning`     ``reasoning``                               generation (kept in the log)
:class:`ToolCall`      ``tool_call``                               generation (kept in the log)
:class:`Retrying`      ``state`` with ``state: "retrying"``        generation (kept in the log)
:class:`Waiting`       ``state`` with ``state: "waiting"``         generation (kept in the log)
:class:`Sources`       ``sources``                                 generation (kept in the log)
:class:`Progress`      ``progress``                                subscription
:class:`State`         ``state`` (the answer to a control)         the control table
:class:`StreamComplete` ``stream_complete``                        the stream's end, stored
                                                                   resume
:class:`Error`         ``error`` (``resume_gap`` is one of its     anywhere, from a
                       codes)                                      :class:`StreamerError`
:class:`Pong`          ``pong``                                    the control table
=====================  ==========================================  ===========================

Optional fields that are ``None`` are left out of the JSON (as the protocol's tables say:
"optional"). The events the log keeps (:data:`LogEvent`: reasoning, tool calls, retry and
wait notices, sources)
are built without ``seq``/``epoch``; a subscription stamps them (:meth:`stamped`) when it sends
them. Pure: no I/O, but for :meth:`Error.of`, which has the exception log its detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from streamer.errors import StreamerError, new_error_id
from streamer.render.ops import Op

#: the protocol this server speaks (``connected.protocol``; a control may name it)
PROTOCOL_VERSION = 2

JSONObject = dict[str, Any]
FinishReason = Literal["stop", "length", "cancelled", "error"]
ToolCallStatus = Literal["start", "delta", "complete", "result"]
DeliveryState = Literal["streaming", "paused", "resumed", "skipping"]


def _put(out: JSONObject, key: str, value: Any) -> None:
    """Set an optional field: ``None`` stays off the wire."""
    if value is not None:
        out[key] = value


@dataclass(frozen=True, slots=True)
class Connected:
    """The first event on every connection; SSE clients pass ``connection_id`` to the control
    endpoint. ``heartbeat_ms``: the idle time after which the server sends a heartbeat."""

    type: ClassVar[str] = "connected"
    session_id: str
    connection_id: str
    heartbeat_ms: int
    transport: str
    resumed: bool
    epoch: str
    protocol: int = PROTOCOL_VERSION

    def to_json(self) -> JSONObject:
        return {"type": self.type, "session_id": self.session_id,
                "connection_id": self.connection_id, "protocol": self.protocol,
                "heartbeat_ms": self.heartbeat_ms, "transport": self.transport,
                "resumed": self.resumed, "epoch": self.epoch}


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """WebSocket only: the connection has been idle for ``heartbeat_ms`` (SSE sends a
    ``: ping`` comment instead)."""

    type: ClassVar[str] = "heartbeat"

    def to_json(self) -> JSONObject:
        return {"type": self.type}


@dataclass(frozen=True, slots=True)
class StreamStart:
    """A stream begins (``queued: true`` with ``position``: it waits behind others;
    ``resumed: true``: the client already has part of it). ``provider`` is ``None`` only for
    a stored answer that does not name one. ``max_tokens``: the answer's effective limit as
    the server's policy set it (``streamer.security.policy``); ``max_tokens_requested``: what
    the client asked, only when the policy lowered it."""

    type: ClassVar[str] = "stream_start"
    session_id: str
    stream_id: str
    provider: str | None
    model: str | None
    resumed: bool = False
    queued: bool = False
    #: streams that run or wait before a queued one
    position: int | None = None
    max_tokens: int | None = None
    max_tokens_requested: int | None = None
    #: the history budget (once the stream began): earlier turns left out, the request's
    #: size and the provider's input budget (tokens; characters for echo)
    history_dropped: int | None = None
    input_tokens: int | None = None
    max_input_tokens: int | None = None

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id}
        _put(out, "provider", self.provider)
        _put(out, "model", self.model)
        if self.resumed:
            out["resumed"] = True
        if self.queued:
            out["queued"] = True
        _put(out, "position", self.position)
        _put(out, "max_tokens", self.max_tokens)
        _put(out, "max_tokens_requested", self.max_tokens_requested)
        _put(out, "history_dropped", self.history_dropped)
        _put(out, "input_tokens", self.input_tokens)
        _put(out, "max_input_tokens", self.max_input_tokens)
        return out


@dataclass(frozen=True, slots=True)
class Chunk:
    """One change to the document: ``op`` (possibly several log entries merged); ``seq`` is
    the highest log ``seq`` it holds."""

    type: ClassVar[str] = "chunk"
    session_id: str
    stream_id: str
    seq: int
    op: Op
    epoch: str | None = None

    def to_json(self) -> JSONObject:
        op = self.op
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id, "seq": self.seq, "op": op.op,
                           "block": op.block}
        if op.op == "text":
            out["text"] = op.text
        else:
            out["html"] = op.html
            if op.op == "splice":
                out["trim"] = op.trim
        out["final"] = op.final
        _put(out, "epoch", self.epoch)
        return out


def chunk_event(session_id: str, stream_id: str, seq: int, op: Op) -> JSONObject:
    """The JSON of a ``chunk`` event without an epoch (for tests and Python tools)."""
    return Chunk(session_id, stream_id, seq, op).to_json()


def op_from_chunk(obj: JSONObject) -> Op:
    """The op a ``chunk`` event's JSON carries (the inverse of :meth:`Chunk.to_json`, for
    clients written in Python: the terminal client, tests)."""
    return Op(obj["op"], obj["block"], obj.get("html"), obj.get("text"),
              bool(obj.get("final", False)), 0, obj.get("trim", 0))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole document as of ``seq``: a late joiner, a resume gap, a stored answer."""

    type: ClassVar[str] = "snapshot"
    session_id: str
    stream_id: str
    seq: int
    epoch: str
    blocks: list[str]

    def to_json(self) -> JSONObject:
        return {"type": self.type, "session_id": self.session_id, "stream_id": self.stream_id,
                "seq": self.seq, "epoch": self.epoch, "blocks": self.blocks}


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A piece of the model's reasoning, shown apart, never part of the document."""

    type: ClassVar[str] = "reasoning"
    session_id: str
    stream_id: str
    text: str
    seq: int | None = None
    epoch: str | None = None

    def stamped(self, seq: int, epoch: str) -> Reasoning:
        return replace(self, seq=seq, epoch=epoch)

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id, "text": self.text}
        _put(out, "seq", self.seq)
        _put(out, "epoch", self.epoch)
        return out


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's tool call as it forms (``start``, ``delta``, ``complete``), then the tool's
    ``result``. Build it with the constructor of its status (:meth:`started`, …)."""

    type: ClassVar[str] = "tool_call"
    session_id: str
    stream_id: str
    call_id: str
    status: ToolCallStatus
    name: str | None = None
    #: ``delta``: a piece of the arguments' JSON text
    arguments_delta: str | None = None
    #: ``complete``: the parsed arguments
    arguments: Any = None
    #: ``result``: what the tool answered (sent back to the model), and whether it failed
    result: str | None = None
    is_error: bool | None = None
    seq: int | None = None
    epoch: str | None = None

    @classmethod
    def started(cls, session_id: str, stream_id: str, call_id: str, name: str) -> ToolCall:
        return cls(session_id, stream_id, call_id, "start", name=name)

    @classmethod
    def delta(cls, session_id: str, stream_id: str, call_id: str,
              arguments_delta: str) -> ToolCall:
        return cls(session_id, stream_id, call_id, "delta", arguments_delta=arguments_delta)

    @classmethod
    def complete(cls, session_id: str, stream_id: str, call_id: str, name: str,
                 arguments: Any) -> ToolCall:
        return cls(session_id, stream_id, call_id, "complete", name=name, arguments=arguments)

    @classmethod
    def answered(cls, session_id: str, stream_id: str, call_id: str, name: str,
                 result: str, is_error: bool) -> ToolCall:
        return cls(session_id, stream_id, call_id, "result", name=name, result=result,
                   is_error=is_error)

    def stamped(self, seq: int, epoch: str) -> ToolCall:
        return replace(self, seq=seq, epoch=epoch)

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id, "call_id": self.call_id}
        _put(out, "name", self.name)
        out["status"] = self.status
        _put(out, "arguments_delta", self.arguments_delta)
        _put(out, "arguments", self.arguments)
        _put(out, "result", self.result)
        _put(out, "is_error", self.is_error)
        _put(out, "seq", self.seq)
        _put(out, "epoch", self.epoch)
        return out


@dataclass(frozen=True, slots=True)
class Retrying:
    """Before the first token the provider failed in a way worth retrying; the server tries
    again in ``retry_in_ms`` (a ``state`` event with ``state: "retrying"``)."""

    type: ClassVar[str] = "state"
    session_id: str
    stream_id: str
    attempt: int
    retry_in_ms: int
    code: str
    message: str
    seq: int | None = None
    epoch: str | None = None

    def stamped(self, seq: int, epoch: str) -> Retrying:
        return replace(self, seq=seq, epoch=epoch)

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id, "state": "retrying",
                           "attempt": self.attempt, "retry_in_ms": self.retry_in_ms,
                           "code": self.code, "message": self.message}
        _put(out, "seq", self.seq)
        _put(out, "epoch", self.epoch)
        return out


@dataclass(frozen=True, slots=True)
class Waiting:
    """The model call waits its turn at a model that serves one request at a time (the
    ``local`` provider's fair queue): ``position`` requests run or wait before it,
    ``eta_ms`` an estimate of the wait; ``position: 0``: its turn came, generation begins
    (a ``state`` event with ``state: "waiting"``)."""

    type: ClassVar[str] = "state"
    session_id: str
    stream_id: str
    position: int
    eta_ms: int | None = None
    seq: int | None = None
    epoch: str | None = None

    def stamped(self, seq: int, epoch: str) -> Waiting:
        return replace(self, seq=seq, epoch=epoch)

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id, "state": "waiting",
                           "position": self.position}
        _put(out, "eta_ms", self.eta_ms)
        _put(out, "seq", self.seq)
        _put(out, "epoch", self.epoch)
        return out


@dataclass(frozen=True, slots=True)
class Sources:
    """The sources the answer cites, numbered as its ``[n]`` markers: ``(url, title)`` pairs
    (Perplexity's citations). The document also ends with them as a list: the source text
    right after this event in the log is that list (the AI SDK door sends ``source-url`` parts
    in its place)."""

    type: ClassVar[str] = "sources"
    session_id: str
    stream_id: str
    sources: tuple[tuple[str, str], ...]
    seq: int | None = None
    epoch: str | None = None

    def stamped(self, seq: int, epoch: str) -> Sources:
        return replace(self, seq=seq, epoch=epoch)

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id,
                           "sources": [{"url": url, "title": title}
                                       for url, title in self.sources]}
        _put(out, "seq", self.seq)
        _put(out, "epoch", self.epoch)
        return out


#: the stream events the log keeps beside the document ops (sent stamped with their seq)
LogEvent = Reasoning | ToolCall | Retrying | Waiting | Sources


@dataclass(frozen=True, slots=True)
class Progress:
    """For progress bars: characters received and delivered, the backlog, the time it needs
    (``eta_ms``; ``None`` while paused with a backlog)."""

    type: ClassVar[str] = "progress"
    session_id: str
    stream_id: str
    received_chars: int
    delivered_chars: int
    backlog_chars: int
    eta_ms: int | None
    generation_done: bool

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id, "received_chars": self.received_chars,
                           "delivered_chars": self.delivered_chars,
                           "backlog_chars": self.backlog_chars}
        _put(out, "eta_ms", self.eta_ms)
        out["generation_done"] = self.generation_done
        return out


@dataclass(frozen=True, slots=True)
class State:
    """The answer to a delivery control (``pause``, ``resume``, ``skip``, ``speed``):
    the connection's delivery state and rate (``cps``; ``None`` with nothing to deliver)."""

    type: ClassVar[str] = "state"
    session_id: str
    state: DeliveryState
    cps: float | None
    stream_id: str | None = None

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id}
        _put(out, "stream_id", self.stream_id)
        out["state"] = self.state
        _put(out, "cps", self.cps)
        return out


@dataclass(frozen=True, slots=True)
class StreamComplete:
    """The stream is over; ``html`` is the exact final document, ``markdown`` its source,
    ``message_id`` its id in the stored conversation, ``duration_ms`` its generation time."""

    type: ClassVar[str] = "stream_complete"
    session_id: str
    stream_id: str
    finish_reason: FinishReason
    html: str
    markdown: str
    usage: JSONObject | None
    message_id: str
    duration_ms: int | None

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id,
                           "stream_id": self.stream_id, "finish_reason": self.finish_reason,
                           "html": self.html, "markdown": self.markdown}
        _put(out, "usage", self.usage)
        out["message_id"] = self.message_id
        _put(out, "duration_ms", self.duration_ms)
        return out


@dataclass(frozen=True, slots=True)
class Error:
    """One of streamer's errors (:mod:`streamer.errors`): ``code``, the client-safe
    ``message``, ``retryable``, ``retry_after_ms``, and ``error_id``, the correlation id under
    which the server logged the full detail; ``stream_id`` when it ends or concerns a stream.

    Every ``error`` event and HTTP error body leaves through :meth:`to_json`."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    retryable: bool
    retry_after_ms: int | None = None
    session_id: str | None = None
    stream_id: str | None = None
    error_id: str = field(default_factory=new_error_id)

    @classmethod
    def of(cls, exc: StreamerError, *, session_id: str | None = None,
           stream_id: str | None = None) -> Error:
        """The ``error`` event of an exception: its public message only (the detail is
        logged, once, by :meth:`StreamerError.report <streamer.errors.StreamerError.report>`)."""
        exc.report()
        return cls(exc.code, exc.message, exc.retryable, exc.retry_after_ms, session_id,
                   stream_id, exc.error_id)

    def in_session(self, session_id: str) -> Error:
        return replace(self, session_id=session_id)

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type}
        _put(out, "session_id", self.session_id)
        _put(out, "stream_id", self.stream_id)
        out["code"] = self.code
        out["message"] = self.message
        out["error_id"] = self.error_id
        out["retryable"] = self.retryable
        _put(out, "retry_after_ms", self.retry_after_ms)
        return out


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to ``ping``: its ``ts``, whatever JSON it was."""

    type: ClassVar[str] = "pong"
    session_id: str
    ts: Any = None

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "session_id": self.session_id}
        _put(out, "ts", self.ts)
        return out


ServerEvent = (Connected | Heartbeat | StreamStart | Chunk | Snapshot | Reasoning | ToolCall
               | Retrying | Waiting | Sources | Progress | State | StreamComplete | Error | Pong)
