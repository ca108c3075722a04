"""The soak (issue 16): streams starting, pausing, resuming, being cut and resumed, stopped,
for a bounded time; the server's RSS and open file descriptors after warm-up, and the errors.

``workers`` clients, each a user with a conversation of ``STREAMS_PER_SESSION`` answers on one
session, then a new session (a new user; the old one idles until the server forgets it). Each
answer is one of five cases in turn: read to the end; paused and resumed (``pause``, then
``resume`` a moment later); cut (the socket closed without a close frame) and resumed on a new
connection with the cursor of the last chunk (``?stream_id=&epoch=&last_seq=``); stopped
(``stop`` on a longer answer: ``finish_reason`` ``cancelled``); read to the end with the
default pacing. Errors are everything but the injected cuts: an ``error`` event, a connection
that fails, an answer that does not end as its case says. The server forgets idle sessions
after 10 s (:data:`SERVER_ENV`). RSS (``/proc/PID/status``) and open descriptors
(``/proc/PID/fd``) are sampled every second; growth is the last sample (after the workers
stopped and a settle) over the first after warm-up, and RSS's over the run's last half too
(whether it still grows at the end). Clients are :class:`bench.wsclient.MiniWS`.

The warm-up is derived, not guessed (:func:`warmup_end`): it lasts until every bounded
structure of the server has reached its bound, so what grows after it is what no bound holds.
The replay window keeps ``resume.max_finished_logs`` finished logs (each answer is one
stream, so it is full once that many answers ended: about 45 s at 16 clients here; a fifth of
a 120 s soak was 24 s, and half the "growth" was the window filling); idle sessions are
forgotten after ``server.session_idle_timeout_s``; and garbage waits up to two
``server.gc_full_interval_s`` for the server's full collection (one for a young collection to
move it out of the youngest generation, one for the full collection itself). A soak shorter
than twice its warm-up says so in its note.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import trio

from bench.load import make_sessions, plain_text, wait_connected
from bench.wsclient import Closed, MiniWS
from streamer.config import ResumeConfig, ServerConfig

#: answers on one session before its user leaves for a new one
STREAMS_PER_SESSION = 5
#: the soak's server forgets a session idle for 10 s (default 3,600 s), so the state that is
#: bounded by time (sessions) reaches its bound within the warm-up, as the replay window's
#: logs (``resume.max_finished_logs``) do: growth after it is what no bound holds
SERVER_ENV = {"STREAMER_SERVER_SESSION_IDLE_TIMEOUT_S": "10"}
SESSION_IDLE_S = float(SERVER_ENV["STREAMER_SERVER_SESSION_IDLE_TIMEOUT_S"])
#: the soak server's other bounds: its defaults (the bench does not change them)
MAX_FINISHED_LOGS = ResumeConfig().max_finished_logs
GC_FULL_INTERVAL_S = ServerConfig().gc_full_interval_s
CASES = ("read", "pause", "cut", "stop", "paced")


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid`` (``/proc/PID/fd``, proc(5))."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class Tally:
    """What the workers saw: answers by case and outcome, errors by kind (a few examples)."""

    def __init__(self) -> None:
        self.answers: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.examples: list[str] = []

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {detail[:200]}")


class Answer:
    """One answer of one case on one session (a connection, maybe a second after a cut)."""

    def __init__(self, base: str, sid: str, case: str, text: str, tally: Tally,
                 previous: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.sid, self.case, self.text, self.tally = sid, case, text, tally
        self.previous = previous  # the session's last answer (a new connection gets it)
        self.stream_id = self.epoch = ""
        self.last_seq = 0

    async def connect(self, query: str = "") -> MiniWS:
        ws = await MiniWS.connect(self.host, self.port, f"/ws/stream/{self.sid}{query}")
        await wait_connected(ws)
        return ws

    async def run(self) -> None:
        start: dict[str, Any] = {"type": "start", "prompt": self.text, "provider": "echo",
                                 "echo": {"delta_chars": 4, "interval_ms": 10}}
        if self.case != "paced":
            start["pacing"] = {"mode": "off"}
        ws = await self.connect()
        try:
            if self.previous:  # a new connection joins the session's last answer: its end
                await self.read(ws, act_after=None)
            self.stream_id = ""
            await ws.send(json.dumps(start))
            finish = await self.read(ws, act_after=8)
        finally:
            await ws.aclose()
        if finish == "cut":  # the injected fault: a new connection resumes at the cursor
            ws = await self.connect(f"?stream_id={self.stream_id}&epoch={self.epoch}"
                                    f"&last_seq={self.last_seq}")
            try:
                finish = await self.read(ws, act_after=None)
            finally:
                await ws.aclose()
        expected = "cancelled" if self.case == "stop" else "stop"
        if finish != expected:
            self.tally.error("finish", f"{self.case}: {finish}, expected {expected}")
        self.tally.answers[self.case] += 1

    async def read(self, ws: MiniWS, act_after: int | None) -> str:
        """Read to ``stream_complete`` (its ``finish_reason``), acting on the case after
        ``act_after`` chunks; ``cut`` when the case cut the connection."""
        chunks = 0
        while True:
            event = json.loads(await ws.receive())
            kind = event["type"]
            if kind == "stream_start" and not self.stream_id:
                self.stream_id = event["stream_id"]
            elif kind in ("chunk", "snapshot") and event.get("stream_id") == self.stream_id:
                self.last_seq, self.epoch = event["seq"], event["epoch"]
                chunks += 1
                if chunks == act_after:
                    if await self.act(ws):
                        return "cut"
            elif kind == "error":
                self.tally.error(event.get("code", "error"), json.dumps(event))
            elif kind == "stream_complete":
                return str(event["finish_reason"])

    async def act(self, ws: MiniWS) -> bool:
        """The case's action; ``True``: the connection was cut."""
        if self.case == "pause":
            await ws.send('{"type": "pause"}')
            await trio.sleep(0.3)
            await ws.send('{"type": "resume"}')
        elif self.case == "stop":
            await ws.send('{"type": "stop"}')
        elif self.case == "cut":
            await ws.stream.aclose()  # no close frame: the network dropped it
            return True
        return False


async def worker(base: str, index: int, deadline: float, tally: Tally) -> None:
    """Answers until ``deadline`` (trio time), one case after another, a new session every
    ``STREAMS_PER_SESSION`` answers."""
    n = index
    text = plain_text(2.0)  # 160 characters: 0.4 s at 10 ms per 4-character delta
    long_text = plain_text(20.0)
    while trio.current_time() < deadline:
        (sid,) = await make_sessions(base, 1, workers=1)
        previous = ""
        for _ in range(STREAMS_PER_SESSION):
            if trio.current_time() >= deadline:
                return
            case = CASES[n % len(CASES)]  # (a stop needs an answer that lasts: 4 s)
            answer = Answer(base, sid, case, long_text if case == "stop" else text, tally,
                            previous)
            n += 1
            try:
                with trio.fail_after(60):
                    await answer.run()
                previous = answer.stream_id
            except (OSError, ConnectionError, Closed, trio.BrokenResourceError,
                    trio.TooSlowError, KeyError, ValueError) as exc:
                tally.error(type(exc).__name__, f"{answer.case}: {exc!r}")


def warmup_end(answers: list[tuple[float, int]]) -> float | None:
    """Seconds into the soak when every bound is reached: the replay window full (the first
    ``(t, answers ended)`` sample with :data:`MAX_FINISHED_LOGS` answers), the first idle
    sessions forgotten (:data:`SESSION_IDLE_S`, a second for the reaper), then two full
    collections' intervals (:data:`GC_FULL_INTERVAL_S`); ``None``: never reached."""
    full = next((t for t, count in answers if count >= MAX_FINISHED_LOGS), None)
    if full is None:
        return None
    return round(max(full, SESSION_IDLE_S + 1.0) + 2 * GC_FULL_INTERVAL_S, 1)


async def soak(base: str, pid: int, seconds: float, workers: int, rss: Any) -> dict[str, Any]:
    """Run the workers for ``seconds``; RSS and open descriptors after warm-up
    (:func:`warmup_end`; the whole run when it never ends) and at the end, growth in %,
    answers and errors."""
    tally = Tally()
    samples: list[tuple[float, int, int]] = []
    answers: list[tuple[float, int]] = []
    t0 = trio.current_time()
    deadline = t0 + seconds

    async def sample() -> None:
        while True:
            now = trio.current_time() - t0
            samples.append((now, rss(pid), open_fds(pid)))
            answers.append((now, sum(tally.answers.values())))
            await trio.sleep(1.0)

    async with trio.open_nursery() as outer:
        outer.start_soon(sample)
        async with trio.open_nursery() as nursery:
            for i in range(workers):
                nursery.start_soon(worker, base, i, deadline, tally)
        await trio.sleep(2.0)  # settle: cut connections given up, streams' grace over
        samples.append((trio.current_time() - t0, rss(pid), open_fds(pid)))
        outer.cancel_scope.cancel()
    warmup_s = warmup_end(answers)
    after_warmup = next((s for s in samples if warmup_s is not None and s[0] >= warmup_s),
                        samples[0])
    last = samples[-1]
    half = next(s for s in samples if s[0] >= min(seconds / 2, last[0]))
    return {"seconds": seconds, "workers": workers, "warmup_s": warmup_s,
            "warmup_bounds": {"max_finished_logs": MAX_FINISHED_LOGS,
                              "session_idle_timeout_s": SESSION_IDLE_S,
                              "gc_full_interval_s": GC_FULL_INTERVAL_S},
            "answers": dict(tally.answers), "answers_total": sum(tally.answers.values()),
            "errors": dict(tally.errors), "errors_total": sum(tally.errors.values()),
            "error_examples": tally.examples,
            "rss_mb": [round(after_warmup[1] / 1e6, 1), round(last[1] / 1e6, 1)],
            "fds": [after_warmup[2], last[2]],
            "rss_growth_pct": round((last[1] - after_warmup[1]) / after_warmup[1] * 100, 1),
            # still growing at the end, or a plateau (a bound the warm-up does not know of)
            "rss_growth_last_half_pct": round((last[1] - half[1]) / half[1] * 100, 1),
            "fd_growth_pct": round((last[2] - after_warmup[2]) / after_warmup[2] * 100, 1),
            "rss_mb_series": [(round(t), round(r / 1e6, 1))
                              for t, r, _ in samples[::max(1, len(samples) // 12)]],
            "wall_s": round(last[0], 1)}


def warmup_note(warmup_s: float | None, seconds: float) -> str:
    """The warm-up as the row's note gives it, with a warning when the soak is too short
    for its growth to mean much (shorter than twice the warm-up)."""
    bounds = (f"until {MAX_FINISHED_LOGS} answers ended (the replay window full) "
              f"+ 2 x {GC_FULL_INTERVAL_S:g} s")
    if warmup_s is None:
        return f"warm-up never ended ({bounds}): growth from the start, not meaningful"
    short = "; TOO SHORT: under twice the warm-up" if seconds < 2 * warmup_s else ""
    return f"warm-up {warmup_s:g} s ({bounds}){short}"


async def rows(base: str, pid: int, args: Any) -> list[dict[str, Any]]:
    """The harness's soak rows (``--soak-seconds``, ``--soak-workers``)."""
    from bench.procs import rss_bytes

    with trio.fail_after(args.soak_seconds + 180):
        done = await soak(base, pid, args.soak_seconds, args.soak_workers, rss_bytes)
    note = (f"{done['answers_total']} answers in {done['wall_s']} s, {done['workers']} "
            f"clients, {warmup_note(done['warmup_s'], done['seconds'])}")
    return [
        {"measure": "soak: RSS growth after warm-up", "unit": "%",
         "median": done["rss_growth_pct"], "min": "", "max": "",
         "note": f"{done['rss_mb'][0]} -> {done['rss_mb'][1]} MB; over the last half "
                 f"{done['rss_growth_last_half_pct']:+g} %; {note}; target < 5",
         "detail": done},
        {"measure": "soak: open fds growth after warm-up", "unit": "%",
         "median": done["fd_growth_pct"], "min": "", "max": "",
         "note": f"{done['fds'][0]} -> {done['fds'][1]}; target < 5"},
        {"measure": "soak: errors (not injected)", "unit": "count",
         "median": done["errors_total"], "min": "", "max": "",
         "note": f"{done['errors'] or 'none'}; cases {done['answers']}; target 0"}]
