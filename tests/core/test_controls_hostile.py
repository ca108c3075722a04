"""Hostile client input, in process: the bounded JSON decoder, control messages' fields,
cursors, and the per-connection control gate (issue 15, "Malformed input breaks connections")."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import limits.storage.memory
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from streamer.config import ConfigError, load_config, replace
from streamer.errors import InvalidMessage, PayloadTooLarge, StreamerError
from streamer.runtime.control_gate import ControlGate, ControlRateLimited, InlineStorage
from streamer.wire.codecs import JSONLimits, decode_json, excerpt
from streamer.wire.controls import MAX_PING_TS_CHARS, Ping, QueueMove, Start, parse_control
from streamer.wire.cursor import MAX_SEQ, Cursor, parse_cursor, parse_event_id

LIMITS = JSONLimits(max_bytes=1 << 22, max_depth=32, max_number_chars=64)


def invalid(raw: str | bytes, limits: JSONLimits = LIMITS) -> str:
    """The ``invalid_message`` text ``raw`` gets (fails if it decodes)."""
    with pytest.raises(InvalidMessage) as caught:
        decode_json(raw, limits)
    return caught.value.message


# ------------------------------------------------------------------ nesting


@pytest.mark.parametrize("raw", [
    "[" * 10_000,                             # the frame: 10 KB of nested [
    "[" * 10_000 + "]" * 10_000,              # ... balanced
    '{"a":' * 5_000 + "1" + "}" * 5_000,      # objects
    '{"type":"ping","ts":' + "[" * 100_000 + "0" + "]" * 100_000 + "}",
])
def test_deep_nesting_is_refused_before_parsing(raw: str) -> None:
    text = invalid(raw)
    assert "nest deeper than 32" in text or "unbalanced" in text


def test_nesting_is_counted_outside_strings_only_and_up_to_the_limit() -> None:
    assert decode_json("[" * 32 + "]" * 32, LIMITS) is not None
    assert "deeper than 32" in invalid("[" * 33 + "]" * 33)
    assert "deeper than 32" in invalid("[" * 20 + "{\"a\":" * 13 + "1" + "}" * 13 + "]" * 20)
    inside = {"markdown": "[" * 50_000 + '\\"{' * 100}
    assert decode_json(json.dumps(inside), LIMITS) == inside
    assert decode_json(json.dumps([[[]]] * 10_000), LIMITS) == [[[]]] * 10_000
    assert "unbalanced" in invalid("]" * 40 + "[" * 40)


#: JSON whose strings are made of what the nesting check must see through
_TRICKY = st.text(alphabet='"\\[]{}:,u0aé', max_size=8)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                             allow_infinity=False)
                     | _TRICKY, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_TRICKY, inner, max_size=4), max_leaves=30)


@settings(max_examples=400, derandomize=True, database=None)
@given(_JSON, st.booleans(), st.integers(0, 40))
def test_json_within_the_limits_decodes_as_json_loads(value: Any, ascii: bool,
                                                      wrap: int) -> None:
    text = "[" * wrap + json.dumps(value, ensure_ascii=ascii) + "]" * wrap
    expected = json.loads(text)
    depth = _depth(expected)
    if depth <= 32:
        assert decode_json(text, LIMITS) == expected
    else:
        assert "deeper than 32" in invalid(text)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def test_the_nesting_check_is_linear_even_on_megabytes() -> None:
    started = time.perf_counter()
    for raw in ("[" * 4_000_000, "[]" * 2_000_000, ("[" * 32 + "]" * 32) * 60_000):
        with pytest.raises(InvalidMessage):
            decode_json(raw + "x", LIMITS)
    assert time.perf_counter() - started < 3.0  # about 0.5 s; quadratic would be hours


# ------------------------------------------------------------------ numbers, text


def test_long_and_unrepresentable_numbers_are_refused_before_converting() -> None:
    assert "5000 characters (at most 64)" in invalid('{"type":"speed","cps":' + "9" * 5000 + "}")
    assert "at most 64" in invalid("0." + "1" * 70)
    assert decode_json("9" * 64, LIMITS) == int("9" * 64)
    assert decode_json("-1.5e-3", LIMITS) == -0.0015
    assert "double" in invalid("1e999")
    for constant in ("NaN", "Infinity", "-Infinity", '{"cps": NaN}'):
        assert "not a JSON number" in invalid(constant)


def test_text_must_be_utf8_and_strings_whole() -> None:
    assert "UTF-8 (at byte 10)" in invalid(b'{"type":"p\xffing"}')
    assert "UTF-8" in invalid(b"\xc3\x28")
    assert decode_json('{"a":"é"}'.encode(), LIMITS) == {"a": "é"}
    assert "surrogate" in invalid('{"ts":"\\ud800"}')
    assert "surrogate" in invalid('["\\udc00\\ud83d"]')
    assert decode_json('"\\ud83d\\ude00"', LIMITS) == "\U0001F600"
    assert decode_json('"\\\\ud800"', LIMITS) == "\\ud800"  # an escaped backslash, not an escape
    assert "Expecting value" in invalid("\ufeff{}")
    assert "Extra data" in invalid('{"type":"ping"} {}')


def test_size_is_bytes_of_utf8() -> None:
    small = JSONLimits(max_bytes=100)
    assert decode_json('"' + "é" * 49 + '"', small) == "é" * 49
    for raw in ('"' + "é" * 50 + '"', b"x" * 101, "x" * 101):
        with pytest.raises(PayloadTooLarge):
            decode_json(raw, small)


def test_excerpts_are_short_ascii_json() -> None:
    assert excerpt("ping") == '"ping"'
    assert excerpt("x" * 5000) == '"' + "x" * 39 + "\u2026"
    assert excerpt("é\ud800") == '"\\u00e9\\ud800"'
    assert len(excerpt(list(range(1000)))) == 41


# ------------------------------------------------------------------ control messages


def parse(msg: Any) -> Any:
    return parse_control(msg if isinstance(msg, str) else json.dumps(msg), LIMITS)


def refused(msg: Any) -> str:
    with pytest.raises(StreamerError) as caught:
        parse(msg)
    assert caught.value.code in ("invalid_message", "unsupported_protocol")
    return caught.value.message


@pytest.mark.parametrize(("msg", "says"), [
    ({"type": "ping", "tz": 1}, 'ping: unknown field "tz"'),
    ({"type": "pause", "stream_id": "s_1"}, 'pause: unknown field "stream_id"'),
    ({"type": "start", "prompt": "a", "pacing": {"cps": 5, "speed": 2}},
     'start.pacing: unknown field "speed"'),
    ({"type": "start", "prompt": "a", "echo": {"delta": 2}}, 'start.echo: unknown field "delta"'),
    ({"type": "start", "prompt": "a", "echo": {"repeat": 0}},
     "start.echo: 'repeat' must be between 1 and 1000"),
    ({"type": "start", "prompt": "a", "echo": {"repeat": 10**9}},
     "start.echo: 'repeat' must be between 1 and 1000"),
    ({"type": "start", "messages": [{"role": "user", "content": "a", "name": "x"}]},
     'start: messages[0]: unknown field "name"'),
    ({"type": "stop", "k" * 10_000: 1}, 'stop: unknown field "' + "k" * 39 + "\u2026"),
])
def test_unknown_fields_are_refused_and_named_in_an_excerpt(msg: Any, says: str) -> None:
    assert refused(msg) == says


def test_known_extras_are_accepted() -> None:
    assert parse({"type": "ping", "protocol": 2}) == Ping()
    start = parse({"type": "start", "prompt": "a", "format": "markdown"})
    assert isinstance(start, Start)


def test_echoed_input_is_an_excerpt_only() -> None:
    assert refused({"type": "p" * 60_000}) == 'unknown message type "' + "p" * 39 + "\u2026"
    assert len(refused({"type": "ping", "protocol": ["x" * 1000]})) < 120
    assert len(refused({"type": 7})) < 40


def test_ping_ts_is_bounded() -> None:
    assert parse({"type": "ping", "ts": {"t": [1, 2.5, "x"]}}) == Ping({"t": [1, 2.5, "x"]})
    assert parse({"type": "ping", "ts": "x" * (MAX_PING_TS_CHARS - 2)}).ts == "x" * 126
    assert "128 characters" in refused({"type": "ping", "ts": "x" * (MAX_PING_TS_CHARS - 1)})
    assert "128 characters" in refused({"type": "ping", "ts": "x" * 65_000})


def test_names_and_positions_are_bounded() -> None:
    assert parse({"type": "start", "prompt": "a", "provider": "echo",
                  "model": "org/model-1.5:q4@main"}).model == "org/model-1.5:q4@main"
    for provider in ("", "a b", "é", "x" * 65):
        assert "'provider'" in refused({"type": "start", "prompt": "a", "provider": provider})
    for model in ("", "a b", "m\n", "x" * 201):
        assert "'model'" in refused({"type": "start", "prompt": "a", "model": model})
    assert parse({"type": "queue_move", "stream_id": "s_1", "position": 10**6}) == \
        QueueMove("s_1", 10**6)
    assert "'position'" in refused({"type": "queue_move", "stream_id": "s_1",
                                    "position": 10**6 + 1})


# ------------------------------------------------------------------ cursors


@pytest.mark.parametrize("seq", ["²", "٣", "1²", "9" * 5000, "-1", "+1", " 1", "1_0", "0x1",
                                 "", str(MAX_SEQ + 1), "1" * 17])
def test_a_seq_in_text_is_1_to_16_ascii_digits(seq: str) -> None:
    with pytest.raises(InvalidMessage):
        parse_cursor("s_1", None, seq)
    with pytest.raises(InvalidMessage):
        parse_event_id(f"s_1:ep:{seq}")


def test_valid_seqs_parse() -> None:
    assert parse_cursor("s_1", "ep", "0") == Cursor("s_1", "ep", 0)
    assert parse_cursor("s_1", None, str(MAX_SEQ)) == Cursor("s_1", None, MAX_SEQ)
    assert parse_event_id("s_1:ep:0012") == Cursor("s_1", "ep", 12)
    for bad in (True, -1, MAX_SEQ + 1, 1.0):
        with pytest.raises(InvalidMessage):
            parse_cursor("s_1", None, bad)  # type: ignore[arg-type]
    assert "'last_seq'" in refused({"type": "resume", "stream_id": "s_1", "last_seq": 2**60})
    assert "'last_seq'" in refused({"type": "resume", "stream_id": "s_1", "last_seq": "²"})


# ------------------------------------------------------------------ the control gate


class FakeTime:
    """``time`` for the ``limits`` storage: a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    return fake


def gate(clock: FakeTime, **server: Any) -> ControlGate:
    config = replace(load_config(env={}), **{f"server.{k}": v for k, v in server.items()})
    return ControlGate("c_test", config.server, MovingWindowRateLimiter(InlineStorage()),
                       clock=clock.time)


def test_the_rate_is_a_moving_window_of_burst_messages(clock: FakeTime) -> None:
    g = gate(clock, max_control_messages_per_s=2, control_messages_burst=4)
    assert g.window_s == 2
    for _ in range(4):
        g.admit()
        clock.now += 0.125
    with pytest.raises(ControlRateLimited) as caught:
        g.admit()
    assert caught.value.code == "rate_limited" and caught.value.retryable
    assert caught.value.retry_after_ms == 1500  # the first of the four leaves the window then
    clock.now += 1.625
    g.admit()  # one slot free
    with pytest.raises(ControlRateLimited):
        g.admit()
    g.release()
    g.admit()  # a released connection's counts are gone


def test_strikes_close_at_the_maximum_and_valid_messages_do_not_reset_them(
        clock: FakeTime) -> None:
    g = gate(clock, max_invalid_messages=10, invalid_messages_window_s=60,
             max_control_messages_per_s=1000, control_messages_burst=1000)
    closed_at = None
    for n in range(1, 271):  # the 270 frames: a valid ping every tenth
        clock.now += 0.01
        g.admit()
        if n % 10 and g.strike():
            closed_at = n
            break
    assert closed_at == 11  # the tenth invalid one (frames 1-9 and 11)


def test_strikes_leave_the_window(clock: FakeTime) -> None:
    g = gate(clock, max_invalid_messages=3, invalid_messages_window_s=10)
    for _ in range(50):  # two every 10 s never reach three within 10 s
        assert not g.strike()
        clock.now += 5.01
    assert not g.strike() and g.strike()  # two at once with the last one: three in the window


def test_gate_settings_are_validated() -> None:
    for bad in ({"server.control_messages_burst": 5, "server.max_control_messages_per_s": 10},
                {"server.max_json_depth": 0}, {"server.max_json_depth": 1000},
                {"server.max_json_number_digits": 5000}, {"server.invalid_messages_window_s": 0}):
        with pytest.raises(ConfigError):
            load_config(env={f"STREAMER_{k.upper().replace('.', '_')}": str(v)
                             for k, v in bad.items()})


def test_inline_storage_decides_as_limits_own_memory_storage(clock: FakeTime) -> None:
    """The thread-free storage against ``limits``' ``MemoryStorage``, hit for hit."""
    rng = random.Random(15)
    ours = MovingWindowRateLimiter(InlineStorage())
    theirs = MovingWindowRateLimiter(MemoryStorage())
    item = RateLimitItemPerSecond(5, 2)
    timer = ours.storage.timer
    for _ in range(3_000):
        clock.now += rng.choice([0.0, 0.01, 0.25, 0.5, 1.0, 1.999, 2.0, 2.5])
        key = rng.choice("ab")
        assert ours.hit(item, key) == theirs.hit(item, key)
        assert ours.get_window_stats(item, key) == theirs.get_window_stats(item, key)
    events = ours.storage.events
    assert max(len(entries) for entries in events.values()) == 5  # trimmed to the limit
    assert ours.storage.timer is timer  # no thread per hit
