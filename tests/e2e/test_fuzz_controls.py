"""Malformed input against a live server (issue 15): the cases of the issue one by one, the
control-message limits, and a Hypothesis fuzzer of control messages and raw frames over
WebSocket and SSE's control POST while another user's stream runs.

The fuzzer runs Hypothesis (derandomized, no database: the same examples on every run) in a
worker thread; each example is a batch of frames sent to the server on the test's Trio loop
(``trio.from_thread.run``). Every frame must get a structured error (WebSocket: an ``error``
event with a client-error code; HTTP: a 4xx JSON error), no connection may close but by the
documented 1008 rule (the client counts strikes and expects the close exactly at
``server.max_invalid_messages``), and the other user's answers must arrive complete and equal
to ``POST /api/render`` of their text.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from streamer.render.ops import apply_op
from streamer.wire.controls import FIELDS
from streamer.wire.events import op_from_chunk
from tests.conftest import LEAKS, ErrorPayloads, LiveServer, create_session, sse_events

RICH = (Path(__file__).parents[1] / "data" / "rich.md").read_text()
#: what a malformed message may be answered with
CLIENT_CODES = {"invalid_message", "payload_too_large", "unsupported_protocol"}
JSON_HEADERS = {"Content-Type": "application/json"}

#: the fuzzer's server: strikes close at 16; the rate limit out of the way (tested apart)
FUZZ_CONFIG = {"server.max_invalid_messages": 16, "server.invalid_messages_window_s": 600,
               "server.max_control_messages_per_s": 1_000_000,
               "server.control_messages_burst": 1_000_000, "server.max_message_bytes": 32_768}
MAX_STRIKES = FUZZ_CONFIG["server.max_invalid_messages"]
#: examples x frames per example = frames per run
EXAMPLES, BATCH = 260, 40


async def next_event(ws: WebSocketConnection) -> dict[str, Any]:
    """The next event that is not a heartbeat."""
    while True:
        ev: dict[str, Any] = json.loads(await ws.get_message())
        if ev["type"] != "heartbeat":
            return ev


def assert_client_error(ev: dict[str, Any]) -> None:
    assert ev["type"] == "error" and ev["code"] in CLIENT_CODES, ev
    assert ev["retryable"] is False and ev["error_id"].startswith("err_")
    assert 0 < len(ev["message"]) <= 160, ev  # what is wrong, and at most a short excerpt


# ------------------------------------------------------------------ the issue's cases


@pytest.mark.config(**{"server.max_invalid_messages": 12})
async def test_the_issues_hostile_frames_get_errors_and_the_socket_lives(
        live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url, "hostile-ws-01")
    frames: list[str | bytes] = [
        "[" * 10_000,                                             # RecursionError, close 1000
        '{"type":"ping","ts":"' + "x" * 65_000 + '"}',            # 64 KB ts echoed back
        '{"type":"ping","ts":' + json.dumps("x" * 200) + "}",
        '{"type":"speed","cps":' + "9" * 5_000 + "}",
        '{"type":"resume","stream_id":"s_1","last_seq":"²"}',
        '{"type":"ping","ts":"\\ud800"}', b'{"type":"ping"}', b"\xff\xfe", b"",
        '{"type":"ping","tz":1}', '{"type":"' + "p" * 5_000 + '"}']
    with trio.fail_after(20):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{sid}") as ws:
            assert (await next_event(ws))["type"] == "connected"
            for n, frame in enumerate(frames):
                await ws.send_message(frame)
                error = await next_event(ws)
                assert_client_error(error)
                if n == 1:  # under max_message_bytes, but no 64 KB echo
                    assert "'ts' is at most 128 characters" in error["message"]
                if n == 5:
                    assert "surrogate" in error["message"]
            await ws.send_message('{"type":"ping","ts":7}')
            assert (await next_event(ws))["ts"] == 7  # the twelfth strike would close it


async def test_nested_brackets_and_bad_cursors_over_http_are_400_not_500(
        live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url, "hostile-http-01")
    deep = b"[" * 10_000
    deep_object = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    async with httpx.AsyncClient(base_url=live_server.base_url, headers=JSON_HEADERS) as client:
        for path in ("/api/render", "/api/sessions", "/api/chat",
                     f"/api/sessions/{sid}/complete", f"/api/sessions/{sid}/control"):
            for body in (deep, deep_object, b'{"markdown": 1' + b"0" * 5000 + b"}",
                         b'{"a": "\xff"}'):
                response = await client.post(path, content=body)
                assert response.status_code in (400, 404), (path, response.text)
                assert response.json()["code"] in ("invalid_message", "session_not_found")
        for last_event_id in ("s_1:ab:²", "s_1:ab:" + "9" * 5_000, "s_1:ab:-1"):
            for how in ({"headers": {"Last-Event-ID": last_event_id.encode()}},
                        {"params": {"last_event_id": last_event_id}}):
                response = await client.get(f"/api/sessions/{sid}/events", **how)
                assert response.status_code == 400
                assert response.json()["code"] == "invalid_message"
    for last_seq in ("²", "9" * 5_000):
        url = (f"{live_server.ws_url}/ws/stream/{sid}?stream_id=s_1&last_seq="
               f"{urllib.parse.quote(last_seq)}")
        with trio.fail_after(10):
            async with open_websocket_url(url) as ws:
                events = [await next_event(ws), await next_event(ws)]
                assert {ev["type"] for ev in events} == {"connected", "error"}
                assert [ev["code"] for ev in events if ev["type"] == "error"] == [
                    "invalid_message"]
                await ws.send_message('{"type":"ping","ts":1}')
                assert (await next_event(ws))["type"] == "pong"  # the connection lives


@pytest.mark.config(**{"server.max_message_bytes": 1_024})
async def test_a_frame_over_four_times_the_limit_is_not_read_at_all(
        live_server: LiveServer) -> None:
    """Up to 4 x ``max_message_bytes`` a frame is ``payload_too_large``; beyond, hypercorn
    closes the socket (1009) instead of reading it whole; the server serves on."""
    sid = await create_session(live_server.base_url, "hostile-ws-03")
    url = f"{live_server.ws_url}/ws/stream/{sid}"
    with trio.fail_after(10):
        async with open_websocket_url(url) as ws:
            await next_event(ws)
            await ws.send_message("x" * 4_096)
            assert (await next_event(ws))["code"] == "payload_too_large"
            await ws.send_message("x" * 4_097)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1009
        async with open_websocket_url(url) as ws:
            assert (await next_event(ws))["type"] == "connected"


async def test_a_text_frame_that_is_not_utf8_drops_only_that_socket(
        live_server: LiveServer) -> None:
    """RFC 6455 section 8.1: an endpoint that receives a text frame whose payload is not UTF-8
    must fail the connection. The documented exception to "the connection lives"
    (docs/protocol.md): that socket is dropped, nothing is answered on it, and the server and
    the session's other clients go on."""
    import os
    import struct

    import wsproto
    from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

    host, port = urllib.parse.urlsplit(live_server.base_url).netloc.split(":")
    sid = await create_session(live_server.base_url)
    with trio.fail_after(20):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{sid}") as other:
            assert (await next_event(other))["type"] == "connected"
            stream = await trio.open_tcp_stream(host, int(port))
            conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            await stream.send_all(conn.send(Request(host=f"{host}:{port}",
                                                    target=f"/ws/stream/{sid}")))
            events: list[Any] = []
            while not any(isinstance(e, AcceptConnection) for e in events):
                conn.receive_data(await stream.receive_some(65_536))
                events.extend(conn.events())
            # a masked text frame (FIN, opcode 1) whose payload is not UTF-8
            payload, mask = b'{"type": "ping", "ts": "\xff\xfe"}', os.urandom(4)
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            await stream.send_all(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
            # hypercorn fails the connection: it drops the socket (a client sees 1006); a
            # close frame, if a later release sends one (RFC 6455 7.1.7: SHOULD), says 1007
            received: list[Any] = []
            while data := await stream.receive_some(65_536):
                conn.receive_data(data)
                received.extend(conn.events())
            # (the server's greeting may come after the handshake's bytes, in a later read)
            answered = [e for e in received if not (
                isinstance(e, TextMessage) and json.loads(e.data)["type"] == "connected")]
            assert all(isinstance(e, CloseConnection) and e.code == 1007 for e in answered), (
                received)
            await stream.aclose()
            # the other client of the same session, and the server, go on
            await other.send_message(json.dumps({"type": "ping", "ts": 5}))
            pong = await next_event(other)
            assert pong["type"] == "pong" and pong["ts"] == 5, pong


async def test_valid_messages_between_invalid_ones_do_not_reset_the_count(
        live_server: LiveServer) -> None:
    """The issue's 270 frames, a ``ping`` every tenth: closed at the tenth invalid one."""
    sid = await create_session(live_server.base_url, "hostile-ws-02")
    with trio.fail_after(20):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{sid}") as ws:
            await next_event(ws)
            invalid = 0
            with pytest.raises(ConnectionClosed) as closed:
                for n in range(1, 271):
                    await ws.send_message('{"type":"ping"}' if n % 10 == 0 else "{")
                    ev = await next_event(ws)
                    if n % 10:
                        assert_client_error(ev)
                        invalid += 1
                    else:
                        assert ev["type"] == "pong"
            assert closed.value.reason.code == 1008 and invalid == 10


@pytest.mark.config(**{"server.max_control_messages_per_s": 5,
                       "server.control_messages_burst": 10})
async def test_a_flood_is_rate_limited_then_closed_with_1008(live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url, "flood-ws-01")
    with trio.fail_after(20):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{sid}") as ws:
            await next_event(ws)
            answers: list[dict[str, Any]] = []
            with pytest.raises(ConnectionClosed) as closed:
                for n in range(100):
                    await ws.send_message(json.dumps({"type": "ping", "ts": n}))
                    answers.append(await next_event(ws))
            assert closed.value.reason.code == 1008
    assert [a["type"] for a in answers[:10]] == ["pong"] * 10  # the burst
    refused = answers[10:]
    assert len(refused) == 10 and all(a["code"] == "rate_limited" for a in refused)
    assert all(a["retryable"] and 0 < a["retry_after_ms"] <= 2_000 for a in refused)


@pytest.mark.config(**{"server.max_control_messages_per_s": 5,
                       "server.control_messages_burst": 10})
async def test_sse_control_posts_beyond_the_rate_are_429(live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url, "flood-sse-01")
    async with httpx.AsyncClient(base_url=live_server.base_url, headers=JSON_HEADERS,
                                 timeout=10) as client:
        async with client.stream("GET", f"/api/sessions/{sid}/events") as events, \
                trio.open_nursery() as nursery:
            reader = await _sse_connection_id(nursery, events)
            url = f"/api/sessions/{sid}/control?connection_id={reader.connection_id}"
            statuses = []
            for n in range(14):
                response = await client.post(url, content=b"{" if n % 2 else b'{"type":"ping"}')
                statuses.append(response.status_code)
            assert statuses[:10] == [202, 400] * 5 and statuses[10:] == [429] * 4
            assert response.json()["code"] == "rate_limited"
            assert 1 <= int(response.headers["Retry-After"]) <= 2
            assert 0 < response.json()["retry_after_ms"] <= 2_000
            nursery.cancel_scope.cancel()
        assert [ev["type"] for ev in reader.events] == ["connected"] + ["pong"] * 5


class SSEReader:
    """Reads an SSE response to its end in the background (leaving the iterator would close
    the response): its events, and the ``connection_id`` of ``connected``."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []
        self.connected = trio.Event()
        self.connection_id = ""
        self._arrived = trio.Event()

    async def wait_for_pong(self, ts: Any) -> None:
        while not any(ev["type"] == "pong" and ev.get("ts") == ts for ev in self.events):
            self._arrived = trio.Event()
            await self._arrived.wait()

    async def run(self) -> None:
        buffer = ""
        async for text in self.response.aiter_text():
            buffer += text
            head, _, buffer = buffer.rpartition("\n\n")
            for ev in sse_events(head + "\n\n") if head else []:
                self.events.append(ev)
                self._arrived.set()
                if ev["type"] == "connected":
                    self.connection_id = ev["connection_id"]
                    self.connected.set()


async def _sse_connection_id(nursery: trio.Nursery, response: httpx.Response) -> SSEReader:
    reader = SSEReader(response)
    nursery.start_soon(reader.run)
    with trio.fail_after(10):
        await reader.connected.wait()
    return reader


# ------------------------------------------------------------------ strategies

_STREAM_ID = st.builds("s_{}".format, st.integers(0, 10**9))
_SCALAR = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
#: any JSON, two levels at most (``st.recursive`` costs ten times more per draw)
_SMALL_JSON = _SCALAR | st.lists(_SCALAR, max_size=3) | st.dictionaries(
    st.text(max_size=6), _SCALAR | st.lists(_SCALAR, max_size=2), max_size=3)

#: one valid message of each kind (the mutations below each make it invalid)
VALID: list[st.SearchStrategy[dict[str, Any]]] = [
    st.fixed_dictionaries({"type": st.just("ping"), "ts": st.integers(0, 10**9)}),
    st.sampled_from([{"type": "pause"}, {"type": "skip"}, {"type": "resume"}]),
    st.fixed_dictionaries({"type": st.just("speed"), "cps": st.floats(1, 1000)}),
    st.fixed_dictionaries({"type": st.just("stop"), "stream_id": _STREAM_ID}),
    st.fixed_dictionaries({"type": st.just("queue_remove"), "stream_id": _STREAM_ID}),
    st.fixed_dictionaries({"type": st.just("queue_move"), "stream_id": _STREAM_ID,
                           "position": st.integers(0, 100)}),
    st.fixed_dictionaries({"type": st.just("resume"), "stream_id": _STREAM_ID,
                           "last_seq": st.integers(0, 10**6), "epoch": st.just("ab12cd34")}),
    st.fixed_dictionaries({"type": st.just("start"), "prompt": st.sampled_from(["hi", "é?"]),
                           "provider": st.just("echo"),
                           "pacing": st.just({"mode": "off"}),
                           "echo": st.just({"delta_chars": 2, "interval_ms": 0})}),
]
#: per field: values of a type it never takes (``ts`` takes any JSON: it is made too long)
WRONG: dict[str, st.SearchStrategy[Any]] = {
    "ts": st.text(min_size=130, max_size=300),
    "cps": st.text(max_size=5) | st.booleans() | st.lists(st.integers(), max_size=2)
    | st.integers(-10**6, 0) | st.floats(max_value=0, allow_nan=False, allow_infinity=False),
    "stream_id": st.integers() | st.booleans() | st.text(max_size=30).map(lambda s: s + " !")
    | st.just("s" * 65) | st.just(""),
    "position": st.integers(max_value=-1) | st.integers(min_value=10**6 + 1, max_value=10**30)
    | st.text(max_size=4) | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans(),
    "last_seq": st.integers(max_value=-1) | st.integers(min_value=2**53, max_value=10**40)
    | st.text(max_size=6) | st.booleans() | st.floats(allow_nan=False, allow_infinity=False),
    "epoch": st.integers() | st.text(max_size=30).map(lambda s: "." + s) | st.just("e" * 33),
    "prompt": st.integers() | st.booleans() | st.just("   ") | st.lists(st.text(), max_size=2),
    "provider": st.integers() | st.just("a b") | st.text(min_size=65, max_size=70),
    "pacing": st.just({"mode": "warp"}) | st.just({"cps": -1}) | st.integers() | st.text(),
    "echo": st.just({"delta_chars": 0}) | st.just({"interval_ms": 10**6}) | st.booleans(),
}


def _number_text(digits: int, form: int) -> str:
    """A JSON number literal of ``digits`` digits (forms 0-2), or beyond a double (3)."""
    return ("1" + "0" * digits, "-" + "9" * digits, "0." + "1" * digits,
            f"1e{'9' * min(digits, 6)}")[form]


#: a number literal longer than the limit (64 characters), or beyond a double's range
LONG_NUMBER = st.builds(_number_text, st.integers(65, 5_000), st.integers(0, 3))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid message made invalid in one way, as JSON text."""
    msg: dict[str, Any] = dict(draw(st.one_of(VALID)))
    how = draw(st.sampled_from(["unknown_field", "wrong_value", "protocol", "type",
                                "drop_type", "surrogate", "long_number", "truncate"]))
    settable = [k for k in msg if k in WRONG]
    if how == "wrong_value" and settable:
        key = draw(st.sampled_from(settable))
        msg[key] = draw(WRONG[key])
    elif how == "protocol":
        msg["protocol"] = draw(_SMALL_JSON.filter(lambda v: v != 2 or isinstance(v, bool)))
    elif how == "type":
        msg["type"] = draw(_SMALL_JSON.filter(lambda v: not (isinstance(v, str) and v in FIELDS)))
    elif how == "drop_type":
        del msg["type"]
    elif how == "surrogate":
        text = json.dumps(msg)
        return text[:-1] + ', "ts": "\\udc' + draw(st.sampled_from("0123456789abcdef")) + '0"}'
    elif how == "long_number":
        number = draw(LONG_NUMBER)
        key = draw(st.sampled_from(["cps", "position", "last_seq", "ts", "max_tokens"]))
        return json.dumps({**msg, key: 0}).replace(f'"{key}": 0', f'"{key}": {number}')
    elif how == "truncate":
        text = json.dumps(msg)
        return text[:draw(st.integers(0, len(text) - 1))] + draw(st.sampled_from(["", "]", "x"]))
    else:  # unknown_field (also the fallback of wrong_value without a settable field)
        known = FIELDS[msg["type"]] | {"type", "protocol"}
        name = draw(st.text(min_size=1, max_size=50).filter(lambda k: k not in known))
        msg[name] = draw(_SMALL_JSON)
    return json.dumps(msg, ensure_ascii=draw(st.booleans()))


@st.composite
def nested(draw: st.DrawFn) -> str:
    """Arrays and objects deeper than the limit (32), balanced or not, bare or in a field."""
    depth = draw(st.integers(33, 8_000))  # (under 4 x max_message_bytes: hypercorn's 1009)
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ("[{\"b\":", "}]")]))
    inner = opener * depth + "0" + closer * depth * draw(st.sampled_from([0, 1]))
    return draw(st.sampled_from([inner, '{"type":"ping","ts":' + inner + "}",
                                 '{"type":"start","prompt":"x","echo":' + inner + "}"]))


def _not_an_object(text: str) -> bool:
    try:
        return not isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return True


#: one frame: text (a WebSocket text frame / UTF-8 body) or bytes (binary frame / raw body)
FRAMES: st.SearchStrategy[str | bytes] = st.one_of(
    mutated(), mutated(), mutated(), nested(),
    st.text(max_size=120).filter(_not_an_object),
    st.binary(max_size=200),
    (_SCALAR | st.lists(_SMALL_JSON, max_size=3)).map(json.dumps),
    LONG_NUMBER,
    st.sampled_from(["NaN", "-Infinity", '{"type":"speed","cps":NaN}', "\ufeff{}",
                     '{"type":"ping"} {}', '{"type":"ping","ts":1e999}']),
    st.integers(32_769, 40_000).map(lambda n: '{"type":"ping","ts":"' + "x" * n + '"}'),
)


# ------------------------------------------------------------------ the fuzzer

#: where a frame goes: four in five over WebSocket (an HTTP request costs ten frames' time)
CHANNEL = st.sampled_from(["websocket"] * 4 + ["sse"])


@dataclass
class Fuzz:
    server: LiveServer
    session_id: str
    sse_url: str
    #: frames sent, per channel, and the 1008 closes seen (each predicted)
    sent: dict[str, int] = field(default_factory=lambda: {"websocket": 0, "sse": 0})
    closes: int = 0
    texts: list[str] = field(default_factory=list)

    async def websocket_batch(self, frames: list[str | bytes]) -> None:
        """Each frame gets its ``error``, in order; the ``MAX_STRIKES``-th closes with 1008
        (then a new socket takes the rest); a ``ping`` after the batch proves the socket
        alive. Frames go out ``MAX_STRIKES`` at a time before their answers are read."""
        url = f"{self.server.ws_url}/ws/stream/{self.session_id}"
        rest = list(frames)
        while rest:
            window, rest = rest[:MAX_STRIKES], rest[MAX_STRIKES:]
            async with open_websocket_url(url, message_queue_size=MAX_STRIKES + 1) as ws:
                assert (await next_event(ws))["type"] == "connected"
                for frame in window:
                    await ws.send_message(frame)
                if len(window) < MAX_STRIKES:
                    await ws.send_message('{"type":"ping","ts":"alive"}')
                for frame in window:
                    try:
                        assert_client_error(await next_event(ws))
                    except (AssertionError, ConnectionClosed) as exc:
                        raise AssertionError(f"frame {frame[:300]!r}") from exc
                self.sent["websocket"] += len(window)
                if len(window) == MAX_STRIKES:
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.get_message()
                    assert closed.value.reason.code == 1008
                    self.closes += 1
                else:
                    assert (await next_event(ws)) == {"type": "pong", "ts": "alive",
                                                      "session_id": self.session_id}

    async def sse_batch(self, client: httpx.AsyncClient, frames: list[str | bytes]) -> None:
        for frame in frames:
            body = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame
            response = await client.post(self.sse_url, content=body)
            self.sent["sse"] += 1
            error = response.json()
            assert response.status_code in (400, 413), (frame[:300], response.text)
            assert_client_error(error)
            assert (response.status_code == 413) == (error["code"] == "payload_too_large")

    async def batch(self, client: httpx.AsyncClient,
                    frames: list[tuple[str, str | bytes]]) -> None:
        self.texts += [f if isinstance(f, str) else f.decode("latin-1") for _, f in frames]
        with trio.fail_after(30):  # a frame without an answer fails fast
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.websocket_batch,
                                   [f for c, f in frames if c == "websocket"])
                nursery.start_soon(self.sse_batch, client, [f for c, f in frames if c == "sse"])


@dataclass
class Victim:
    """Another user: answers of ``echo`` streamed one after another until told to stop."""

    server: LiveServer
    session_id: str
    text: str = RICH * 30
    answers: int = 0
    done: trio.Event = field(default_factory=trio.Event)

    async def expected(self) -> str:
        """The one-shot render of the text (what every answer must equal)."""
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=30) as client:
            response = await client.post("/api/render", json={"markdown": self.text})
        html: str = response.json()["html"]
        return html

    async def run(self, expected: str, stop: trio.Event) -> None:
        url = f"{self.server.ws_url}/ws/stream/{self.session_id}"
        async with open_websocket_url(url) as ws:
            await next_event(ws)
            while not (stop.is_set() and self.answers):
                await ws.send_message(json.dumps({
                    "type": "start", "prompt": self.text, "provider": "echo",
                    "pacing": {"mode": "off"}, "echo": {"delta_chars": 24, "interval_ms": 5}}))
                blocks: list[str] = []
                while True:
                    ev = await next_event(ws)
                    assert ev["type"] != "error", ev
                    if ev["type"] == "chunk":
                        apply_op(blocks, op_from_chunk(ev))
                    if ev["type"] == "stream_complete":
                        break
                assert ev["finish_reason"] == "stop" and ev["markdown"] == self.text
                assert ev["html"] == expected == "".join(blocks)
                self.answers += 1
        self.done.set()


def _unexplained_leaks(collector: ErrorPayloads, since: int, sent: str) -> list[Any]:
    """Payloads that match a leak pattern with text the client did not send itself (an
    excerpt of the client's own input may look like a path; that is not the server's)."""
    found = []
    for _test, _where, payload, _what in collector.leaked(since):
        text = json.dumps(payload, ensure_ascii=False)
        for pattern in LEAKS.values():
            if any(m.group(0) not in sent for m in pattern.finditer(text)):
                found.append(payload)
    return found


async def _fuzz(server: LiveServer, client: httpx.AsyncClient, session_id: str) -> Fuzz:
    """Run the Hypothesis examples over WebSocket and an open SSE connection's control POST;
    the SSE connection must still work after them."""
    async with client.stream("GET", f"/api/sessions/{session_id}/events") as events, \
            trio.open_nursery() as nursery:
        reader = await _sse_connection_id(nursery, events)
        fuzz = Fuzz(server, session_id,
                    f"/api/sessions/{session_id}/control?connection_id={reader.connection_id}")
        token = trio.lowlevel.current_trio_token()

        # no shrinking: a failure names its frame, and replaying batches would take minutes
        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.filter_too_much,
                                         HealthCheck.large_base_example])
        @given(st.lists(st.tuples(CHANNEL, FRAMES), min_size=BATCH, max_size=BATCH))
        def fuzz_batch(frames: list[tuple[str, str | bytes]]) -> None:
            trio.from_thread.run(fuzz.batch, client, frames, trio_token=token)

        with trio.fail_after(300):
            await trio.to_thread.run_sync(fuzz_batch)
        ping = await client.post(fuzz.sse_url, content=b'{"type":"ping","ts":"end"}')
        assert ping.status_code == 202
        with trio.fail_after(10):
            await reader.wait_for_pong("end")
        assert [ev["type"] for ev in reader.events] == ["connected", "pong"]
        nursery.cancel_scope.cancel()
    return fuzz


@pytest.mark.config(**FUZZ_CONFIG)
async def test_fuzzed_control_messages_and_frames_never_break_the_server(
        live_server: LiveServer, error_payloads: ErrorPayloads) -> None:
    fuzz_sid = await create_session(live_server.base_url, "fuzz-session-01")
    victim = Victim(live_server, await create_session(live_server.base_url, "victim-session"))
    mark = error_payloads.mark()
    started = time.perf_counter()
    stop = trio.Event()
    async with trio.open_nursery() as nursery, httpx.AsyncClient(
            base_url=live_server.base_url, headers=JSON_HEADERS, timeout=30) as client:
        nursery.start_soon(victim.run, await victim.expected(), stop)
        fuzz = await _fuzz(live_server, client, fuzz_sid)
        stop.set()
        with trio.fail_after(60):
            await victim.done.wait()
    elapsed = time.perf_counter() - started
    total = sum(fuzz.sent.values())
    print(f"\nfuzz: {fuzz.sent} frames ({total}) in {elapsed:.1f} s = "
          f"{total / elapsed:.0f}/s; {fuzz.closes} closes by the 1008 rule; "
          f"{victim.answers} victim answers exact")
    assert total >= 10_000 and min(fuzz.sent.values()) >= 1_500
    assert fuzz.closes > 0  # the 1008 rule was exercised (each close where predicted)
    assert victim.answers >= 1
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        assert (await client.get("/healthz")).json()["ok"] is True
    assert not _unexplained_leaks(error_payloads, mark, "\n".join(fuzz.texts))
    error_payloads.forget(mark)  # checked above, excerpts of the fuzz input allowed
