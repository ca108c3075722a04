"""The wire package without Trio: golden JSON of every server event, the encoders' exact bytes,
control parsing, cursors and the AI SDK encoder."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamer.conversation import EchoOptions, Message
from streamer.errors import (
    InvalidMessage,
    PayloadTooLarge,
    ResumeGap,
    StreamerError,
    UnsupportedProtocol,
)
from streamer.render.ops import Op
from streamer.wire import aisdk
from streamer.wire.codecs import encode_json, encode_sse, sse_comment, sse_frame
from streamer.wire.controls import (
    Pacing,
    Pause,
    Ping,
    QueueMove,
    QueueRemove,
    Resume,
    ResumeFrom,
    Skip,
    Speed,
    Start,
    Stop,
    parse_control,
)
from streamer.wire.cursor import Cursor, event_id, parse_cursor, parse_event_id
from streamer.wire.events import (
    PROTOCOL_VERSION,
    Chunk,
    Connected,
    Error,
    Heartbeat,
    Pong,
    Progress,
    Reasoning,
    Retrying,
    ServerEvent,
    Snapshot,
    Sources,
    State,
    StreamComplete,
    StreamStart,
    ToolCall,
    Waiting,
    chunk_event,
    op_from_chunk,
)


def _with_id(exc: StreamerError, error_id: str) -> StreamerError:
    """``exc`` with a known ``error_id`` (they are random)."""
    exc.error_id = error_id
    return exc


#: every event of protocol.md and its exact JSON (key order as the server has always sent it)
GOLDEN: list[tuple[ServerEvent, str]] = [
    (Connected("sess1234", "c_1", 15000, "websocket", False, "ab12cd34"),
     '{"type":"connected","session_id":"sess1234","connection_id":"c_1","protocol":2,'
     '"heartbeat_ms":15000,"transport":"websocket","resumed":false,"epoch":"ab12cd34"}'),
    (Heartbeat(), '{"type":"heartbeat"}'),
    (StreamStart("sess1234", "s_1", "echo", "echo-1"),
     '{"type":"stream_start","session_id":"sess1234","stream_id":"s_1","provider":"echo",'
     '"model":"echo-1"}'),
    (StreamStart("sess1234", "s_1", "echo", "", resumed=True),
     '{"type":"stream_start","session_id":"sess1234","stream_id":"s_1","provider":"echo",'
     '"model":"","resumed":true}'),
    (StreamStart("sess1234", "s_2", "echo", "echo-1", queued=True, position=2),
     '{"type":"stream_start","session_id":"sess1234","stream_id":"s_2","provider":"echo",'
     '"model":"echo-1","queued":true,"position":2}'),
    (StreamStart("sess1234", "s_4", "local", "gemma", max_tokens=16, history_dropped=3,
                 input_tokens=1490, max_input_tokens=2032),
     '{"type":"stream_start","session_id":"sess1234","stream_id":"s_4","provider":"local",'
     '"model":"gemma","max_tokens":16,"history_dropped":3,"input_tokens":1490,'
     '"max_input_tokens":2032}'),
    (StreamStart("sess1234", "s_3", None, None, resumed=True),
     '{"type":"stream_start","session_id":"sess1234","stream_id":"s_3","resumed":true}'),
    (Chunk("sess1234", "s_1", 3, Op("append", 0, "<p>a</p>\n"), "ep"),
     '{"type":"chunk","session_id":"sess1234","stream_id":"s_1","seq":3,"op":"append",'
     '"block":0,"html":"<p>a</p>\\n","final":false,"epoch":"ep"}'),
    (Chunk("sess1234", "s_1", 4, Op("text", 0, text="b <c>", final=True), "ep"),
     '{"type":"chunk","session_id":"sess1234","stream_id":"s_1","seq":4,"op":"text",'
     '"block":0,"text":"b <c>","final":true,"epoch":"ep"}'),
    (Chunk("sess1234", "s_1", 9, Op("splice", 1, "<li>b</li>\n</ul>\n", trim=6), "ep"),
     '{"type":"chunk","session_id":"sess1234","stream_id":"s_1","seq":9,"op":"splice",'
     '"block":1,"html":"<li>b</li>\\n</ul>\\n","trim":6,"final":false,"epoch":"ep"}'),
    (Snapshot("sess1234", "s_1", 7, "ep", ["<p>é</p>\n"]),
     '{"type":"snapshot","session_id":"sess1234","stream_id":"s_1","seq":7,"epoch":"ep",'
     '"blocks":["<p>é</p>\\n"]}'),
    (Reasoning("sess1234", "s_1", "hmm").stamped(5, "ep"),
     '{"type":"reasoning","session_id":"sess1234","stream_id":"s_1","text":"hmm","seq":5,'
     '"epoch":"ep"}'),
    (ToolCall.started("sess1234", "s_1", "call_1", "calc").stamped(6, "ep"),
     '{"type":"tool_call","session_id":"sess1234","stream_id":"s_1","call_id":"call_1",'
     '"name":"calc","status":"start","seq":6,"epoch":"ep"}'),
    (ToolCall.delta("sess1234", "s_1", "call_1", '{"x":').stamped(7, "ep"),
     '{"type":"tool_call","session_id":"sess1234","stream_id":"s_1","call_id":"call_1",'
     '"status":"delta","arguments_delta":"{\\"x\\":","seq":7,"epoch":"ep"}'),
    (ToolCall.complete("sess1234", "s_1", "call_1", "calc", {"x": 1}).stamped(8, "ep"),
     '{"type":"tool_call","session_id":"sess1234","stream_id":"s_1","call_id":"call_1",'
     '"name":"calc","status":"complete","arguments":{"x":1},"seq":8,"epoch":"ep"}'),
    (ToolCall.answered("sess1234", "s_1", "call_1", "calc", "2", False).stamped(9, "ep"),
     '{"type":"tool_call","session_id":"sess1234","stream_id":"s_1","call_id":"call_1",'
     '"name":"calc","status":"result","result":"2","is_error":false,"seq":9,"epoch":"ep"}'),
    (Retrying("sess1234", "s_1", 1, 200, "rate_limited", "slow down").stamped(1, "ep"),
     '{"type":"state","session_id":"sess1234","stream_id":"s_1","state":"retrying",'
     '"attempt":1,"retry_in_ms":200,"code":"rate_limited","message":"slow down","seq":1,'
     '"epoch":"ep"}'),
    (Waiting("sess1234", "s_1", 2, 12_000).stamped(2, "ep"),
     '{"type":"state","session_id":"sess1234","stream_id":"s_1","state":"waiting",'
     '"position":2,"eta_ms":12000,"seq":2,"epoch":"ep"}'),
    (Sources("sess1234", "s_1", (("https://example.org/a", "A"),)).stamped(9, "ep"),
     '{"type":"sources","session_id":"sess1234","stream_id":"s_1","sources":'
     '[{"url":"https://example.org/a","title":"A"}],"seq":9,"epoch":"ep"}'),
    (Progress("sess1234", "s_1", 100, 40, 60, 1500, False),
     '{"type":"progress","session_id":"sess1234","stream_id":"s_1","received_chars":100,'
     '"delivered_chars":40,"backlog_chars":60,"eta_ms":1500,"generation_done":false}'),
    (Progress("sess1234", "s_1", 100, 40, 60, None, False),
     '{"type":"progress","session_id":"sess1234","stream_id":"s_1","received_chars":100,'
     '"delivered_chars":40,"backlog_chars":60,"generation_done":false}'),
    (State("sess1234", "paused", 120.0, "s_1"),
     '{"type":"state","session_id":"sess1234","stream_id":"s_1","state":"paused","cps":120.0}'),
    (State("sess1234", "streaming", None),
     '{"type":"state","session_id":"sess1234","state":"streaming"}'),
    (StreamComplete("sess1234", "s_1", "stop", "<p>a</p>\n", "a",
                    {"input_tokens": 1, "output_tokens": 2, "unit": "tokens"}, "s_1", 12),
     '{"type":"stream_complete","session_id":"sess1234","stream_id":"s_1",'
     '"finish_reason":"stop","html":"<p>a</p>\\n","markdown":"a","usage":{"input_tokens":1,'
     '"output_tokens":2,"unit":"tokens"},"message_id":"s_1","duration_ms":12}'),
    (StreamComplete("sess1234", "s_1", "error", "", "", None, "s_1", None),
     '{"type":"stream_complete","session_id":"sess1234","stream_id":"s_1",'
     '"finish_reason":"error","html":"","markdown":"","message_id":"s_1"}'),
    (Error.of(_with_id(ResumeGap("no replay"), "err_AbC-12_x"), session_id="sess1234",
              stream_id="s_1"),
     '{"type":"error","session_id":"sess1234","stream_id":"s_1","code":"resume_gap",'
     '"message":"no replay","error_id":"err_AbC-12_x","retryable":false}'),
    (Error("server_shutting_down", "bye", True, 5000, error_id="err_00000000"
           ).in_session("sess1234"),
     '{"type":"error","session_id":"sess1234","code":"server_shutting_down","message":"bye",'
     '"error_id":"err_00000000","retryable":true,"retry_after_ms":5000}'),
    (Pong("sess1234", {"t": 1}), '{"type":"pong","session_id":"sess1234","ts":{"t":1}}'),
    (Pong("sess1234"), '{"type":"pong","session_id":"sess1234"}'),
]


@pytest.mark.parametrize(("event", "golden"), GOLDEN, ids=lambda v: getattr(v, "type", None))
def test_every_event_has_its_golden_json(event: ServerEvent, golden: str) -> None:
    assert encode_json(event.to_json()) == golden
    assert event.to_json()["type"] == type(event).type


def test_every_event_class_has_a_golden_case() -> None:
    assert {type(ev) for ev, _ in GOLDEN} == set(ServerEvent.__args__)  # type: ignore[attr-defined]


def test_sse_framing_is_byte_exact() -> None:
    obj = Pong("sess1234", 1).to_json()
    assert encode_sse(obj) == (
        b'event: pong\ndata: {"type":"pong","session_id":"sess1234","ts":1}\n\n')
    assert encode_sse(obj, "s_1:ep:3", retry_ms=1000).startswith(
        b"retry: 1000\nid: s_1:ep:3\nevent: pong\ndata: ")
    assert sse_frame("[DONE]") == b"data: [DONE]\n\n"
    assert sse_comment("ping") == b": ping\n\n"
    assert "\n" not in encode_json({"type": "x", "text": "a\nb"})  # one data: line suffices


def test_chunk_round_trip_for_python_clients() -> None:
    op = Op("splice", 3, html="<li>b</li>\n</ul>\n", final=True, trim=6)
    back = op_from_chunk(json.loads(encode_json(Chunk("s", "t", 7, op, "ep").to_json())))
    assert (back.op, back.block, back.html, back.trim, back.final) == (
        "splice", 3, op.html, 6, True)
    assert "epoch" not in chunk_event("s", "t", 7, op)


# ------------------------------------------------------------------ cursors


def test_event_ids_round_trip_and_reject_other_shapes() -> None:
    assert parse_event_id(event_id("s_1", "ab12", 7)) == Cursor("s_1", "ab12", 7)
    for bad in ("s_1:ab12", "s_1:ab12:x", "s 1:ab:1", "s_1:ab:1:2", ""):
        with pytest.raises(InvalidMessage):
            parse_event_id(bad)


def test_cursor_fields_need_each_other() -> None:
    assert parse_cursor(None, None, None) is None
    assert parse_cursor("s_1", None, "12") == Cursor("s_1", None, 12)
    for args in (("s_1", None, None), (None, None, 3), ("s_1", "e", -1), ("s_1", "e", True),
                 ("s 1", None, 1), ("s_1", "bad epoch", 1), ("s_1", None, "1.5")):
        with pytest.raises(InvalidMessage):
            parse_cursor(*args)  # type: ignore[arg-type]


# ------------------------------------------------------------------ controls


def parse(msg: Any, max_bytes: int = 10_000) -> Any:
    return parse_control(msg if isinstance(msg, str) else json.dumps(msg), max_bytes)


def test_each_control_parses_to_its_dataclass() -> None:
    assert parse({"type": "pause"}) == Pause()
    assert parse({"type": "resume"}) == Resume()
    assert parse({"type": "resume", "stream_id": "s_1", "epoch": "ep", "last_seq": 4}) == \
        ResumeFrom(Cursor("s_1", "ep", 4))
    assert parse({"type": "skip"}) == Skip()
    assert parse({"type": "speed", "cps": 40}) == Speed(40.0)
    assert parse({"type": "stop"}) == Stop() and parse({"type": "stop", "stream_id": "s_1"}) \
        == Stop("s_1")
    assert parse({"type": "ping", "ts": 5}) == Ping(5)
    assert parse({"type": "queue_remove", "stream_id": "s_1"}) == QueueRemove("s_1")
    assert parse({"type": "queue_move", "stream_id": "s_1", "position": 0}) == QueueMove("s_1", 0)


def test_start_takes_a_prompt_or_messages_and_its_options() -> None:
    start = parse({"type": "start", "prompt": "hi", "provider": "echo", "max_tokens": 5,
                   "temperature": 1, "pacing": {"mode": "fixed", "cps": 30},
                   "echo": {"delta_chars": 2, "interval_ms": 0}, "tools": ["calc"],
                   "protocol": PROTOCOL_VERSION})
    assert start == Start((Message("user", "hi"),), "echo", None, None, 5, 1.0,
                          Pacing("fixed", 30.0), EchoOptions(2, 0.0), ("calc",))
    many = parse({"type": "start", "messages": [{"role": "user", "content": "a"},
                                                {"role": "assistant", "content": "b"},
                                                {"role": "user", "content": "c"}]})
    assert [m.role for m in many.messages] == ["user", "assistant", "user"]


@pytest.mark.parametrize("msg", [
    "not json", "[1]", {"no": "type"}, {"type": "dance"}, {"type": ["start"]},
    {"type": "start"}, {"type": "start", "prompt": "  "},
    {"type": "start", "prompt": "a", "messages": [{"role": "user", "content": "a"}]},
    {"type": "start", "messages": [{"role": "assistant", "content": "a"}]},
    {"type": "start", "prompt": "a", "max_tokens": 0},
    {"type": "start", "prompt": "a", "max_tokens": True},
    {"type": "start", "prompt": "a", "temperature": 3},
    {"type": "start", "prompt": "a", "pacing": {"mode": "warp"}},
    {"type": "start", "prompt": "a", "pacing": {"cps": -1}},
    {"type": "start", "prompt": "a", "echo": {"delta_chars": 0}},
    {"type": "start", "prompt": "a", "tools": ["bad name"]},
    {"type": "speed"}, {"type": "speed", "cps": float("inf")},
    {"type": "stop", "stream_id": "bad id"}, {"type": "queue_remove"},
    {"type": "queue_move", "stream_id": "s_1", "position": -1},
    {"type": "resume", "stream_id": "s_1"},
])
def test_malformed_controls_are_invalid_messages(msg: Any) -> None:
    with pytest.raises(InvalidMessage):
        parse(msg)


def test_size_and_protocol_limits() -> None:
    with pytest.raises(PayloadTooLarge):
        parse({"type": "ping", "ts": "x" * 100}, max_bytes=50)
    # the prompt's own limit is a setting (streams.max_prompt_chars), checked by the session
    assert parse({"type": "start", "prompt": "x" * 100_001}, max_bytes=1 << 20)
    with pytest.raises(UnsupportedProtocol):
        parse({"type": "ping", "protocol": 1})


def test_format_is_no_longer_part_of_start() -> None:
    start = parse({"type": "start", "prompt": "a", "format": "markdown"})
    assert not hasattr(start, "format")  # accepted (protocol 1 sent it) and ignored


# ------------------------------------------------------------------ AI SDK


def test_chat_request_becomes_an_unpaced_start() -> None:
    body = {"id": "chat-0001", "messages": [
        {"role": "user", "parts": [{"type": "text", "text": "Hi"}, {"type": "file"}]},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "parts": [{"type": "text", "text": "More"}]}], "provider": "echo"}
    session_id, start = aisdk.parse_chat_request(body, 10_000)
    assert session_id == "chat-0001" and start.provider == "echo"
    assert start.pacing == Pacing("off") and [m.content for m in start.messages] == [
        "Hi", "Hello", "More"]
    assert aisdk.parse_chat_request({**body, "id": "x"}, 10_000)[0] is None
    with pytest.raises(InvalidMessage):
        aisdk.parse_chat_request({"messages": "nope"}, 10_000)


def test_ui_message_stream_opens_and_closes_parts_in_order() -> None:
    message = aisdk.UIMessageStream("s_1")
    chunks = [*message.start(), *message.reasoning("think"), *message.text("Hel"),
              *message.text("lo"), *message.tool_call(ToolCall.started("x", "s_1", "c1", "calc")),
              *message.text("!"),
              *message.finish(Error("provider_error", "boom", False, error_id="err_1"))]
    assert [c["type"] for c in chunks] == [
        "start", "start-step", "reasoning-start", "reasoning-delta", "reasoning-end",
        "text-start", "text-delta", "text-delta", "text-end", "tool-input-start",
        "text-start", "text-delta", "text-end", "error", "finish-step", "finish"]
    assert [c.get("id") for c in chunks if c["type"].startswith("text")] == [
        "text-2", "text-2", "text-2", "text-2", "text-3", "text-3", "text-3"]
    assert chunks[-3]["errorText"] == "provider_error: boom (err_1)"
    assert aisdk.frame({"type": "finish"}) == b'data: {"type":"finish"}\n\n'
    assert aisdk.DONE == b"data: [DONE]\n\n"


def test_tool_calls_become_tool_input_and_output_chunks() -> None:
    message = aisdk.UIMessageStream("s_1")
    calls = [ToolCall.started("x", "s", "c1", "calc"), ToolCall.delta("x", "s", "c1", "{"),
             ToolCall.complete("x", "s", "c1", "calc", {"e": "1"}),
             ToolCall.answered("x", "s", "c1", "calc", "1", False)]
    assert [message.tool_call(c) for c in calls] == [
        [{"type": "tool-input-start", "toolCallId": "c1", "toolName": "calc"}],
        [{"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "{"}],
        [{"type": "tool-input-available", "toolCallId": "c1", "toolName": "calc",
          "input": {"e": "1"}}],
        [{"type": "tool-output-available", "toolCallId": "c1", "output": "1"}]]
