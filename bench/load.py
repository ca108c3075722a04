"""The load generator's measurements (issue 16): each an ``async`` function of a server URL.

Runs in the harness's own process, pinned to the load core; every connection goes to
127.0.0.1. Clients are :class:`bench.wsclient.MiniWS` (cheap) or trio-websocket (to compare),
sessions are made with a raw keep-alive ``POST /api/sessions`` (no HTTP library per request).
Lag of a chunk: its arrival minus the moment a perfectly paced provider would have produced its
last character (delta ``i`` at ``i * interval`` after the ``start`` was sent). Every stream of
a fan-out row starts at the same instant, so that lag includes the burst's start-up, which every
later chunk inherits (echo's schedule begins when the server opens its call); the rows also
give the time to the first text (``first_*``: TTFT) and the *running lag* (``run_lag_*``),
behind the schedule that began with the stream's first text: what the server adds once an
answer runs. Text is counted
by stripping tags from ``append``/``replace``/``splice`` HTML and adding ``text`` ops, exact for
the plain one-paragraph answers the fan-out streams (a block's newlines outside its text do not
count).
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

import trio

from bench.wsclient import Closed, MiniWS

TAG = re.compile(r"<[^>]*>")
#: the client context for ``https://`` and ``wss://`` URLs (the harness's own certificate for
#: nginx in front of the servers, ``bench/cluster.py``); set with :func:`trust`
TLS: list[ssl.SSLContext] = []


def trust(context: ssl.SSLContext) -> None:
    """Use ``context`` for every later ``https://`` / ``wss://`` connection."""
    TLS[:] = [context]


async def open_stream(url: str) -> trio.abc.Stream:
    """A TCP connection to ``url``'s host and port; TLS (:data:`TLS`'s context) for
    ``https``/``wss``."""
    parts = urlsplit(url)
    secure = parts.scheme in ("https", "wss")
    stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1",
                                        parts.port or (443 if secure else 80))
    if not secure:
        return stream
    tls = trio.SSLStream(stream, TLS[0], server_hostname=parts.hostname)
    await tls.do_handshake()
    return tls


class Client(Protocol):
    async def send(self, text: str) -> None: ...
    async def receive(self) -> str: ...


class TrioWS:
    """trio-websocket behind :class:`Client`'s two methods."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send_message(text)

    async def receive(self) -> str:
        return str(await self.ws.get_message())


@asynccontextmanager
async def open_client(kind: str, url: str) -> AsyncIterator[Client]:
    """A WebSocket to ``url`` (``ws://127.0.0.1:PORT/path``) with ``kind`` ``mini`` or
    ``trio-websocket``."""
    if kind == "trio-websocket":
        from trio_websocket import open_websocket_url
        async with open_websocket_url(url, max_message_size=1 << 24) as ws:
            yield TrioWS(ws)
        return
    parts = urlsplit(url)
    mini = await MiniWS.over(await open_stream(url), parts.hostname or "127.0.0.1",
                             parts.port or 80, parts.path or "/")
    try:
        yield mini
    finally:
        await mini.aclose()


def ws_url(base: str, path: str) -> str:
    return "ws" + base[4:] + path


# ------------------------------------------------------------------ sessions

async def make_sessions(base: str, count: int, workers: int = 8) -> list[str]:
    """``count`` new sessions (``POST /api/sessions`` on ``workers`` keep-alive connections,
    spoken with h11)."""
    import h11

    parts = urlsplit(base)
    out: list[str] = []
    headers = [("Host", parts.netloc), ("Content-Type", "application/json"),
               ("Content-Length", "2")]

    async def worker(n: int) -> None:
        while n:  # a connection the server closes (its keep-alive request limit): a new one
            stream = await open_stream(base)
            conn = h11.Connection(our_role=h11.CLIENT)
            async with stream:
                while n and conn.our_state is h11.IDLE:
                    out.append(await post(stream, conn))
                    n -= 1
                    if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                        conn.start_next_cycle()

    async def post(stream: trio.abc.Stream, conn: h11.Connection) -> str:
        await stream.send_all(conn.send(h11.Request(
            method="POST", target="/api/sessions", headers=headers))
            + conn.send(h11.Data(data=b"{}")) + conn.send(h11.EndOfMessage()))
        status, body = 0, b""
        while not isinstance(event := conn.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65_536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
        if status not in (200, 201):
            raise RuntimeError(f"POST /api/sessions: {status} {body[:300]!r}")
        return str(json.loads(body)["session_id"])

    async with trio.open_nursery() as nursery:
        for i in range(workers):
            nursery.start_soon(worker, count // workers + (i < count % workers))
    return out


async def wait_connected(ws: Client) -> None:
    event = json.loads(await ws.receive())
    if event["type"] != "connected":
        raise RuntimeError(f"expected connected, got {event}")


# ------------------------------------------------------------------ ceiling and throughput

async def bare_rate(url: str, tokens: int, kind: str = "mini") -> dict[str, float]:
    """One connection to a ``bench/bare.py`` server: one-token messages per second, and the
    load process's CPU microseconds per message."""
    async with open_client(kind, url + "/") as ws:
        await ws.send("10")  # warm the connection up
        while await ws.receive() != "done":
            pass
        c0, t0 = time.process_time(), time.perf_counter()
        await ws.send(str(tokens))
        count = 0
        while await ws.receive() != "done":
            count += 1
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"rate": count / elapsed, "client_us": cpu / count * 1e6}


async def answer(base: str, sid: str, text: str, kind: str = "mini",
                 repeat: int = 1) -> dict[str, Any]:
    """Stream ``text`` (``repeat`` times over: echo's ``repeat``) through ``echo`` with pacing
    off as fast as it goes: tokens (deltas of 4 characters) per second from ``start`` sent to
    ``stream_complete`` received, frames, the final HTML's length."""
    start = {"type": "start", "prompt": text, "provider": "echo", "pacing": {"mode": "off"},
             "echo": {"delta_chars": 4, "interval_ms": 0, "repeat": repeat}}
    async with open_client(kind, ws_url(base, f"/ws/stream/{sid}")) as ws:
        await wait_connected(ws)
        t0 = time.perf_counter()
        await ws.send(json.dumps(start))
        frames = 0
        while True:
            event = json.loads(await ws.receive())
            if event["type"] == "chunk":
                frames += 1
            elif event["type"] == "error":
                raise RuntimeError(event)
            elif event["type"] == "stream_complete":
                break
    elapsed = time.perf_counter() - t0
    tokens = -(-len(text) * repeat // 4)
    return {"rate": tokens / elapsed, "frames": frames, "html_chars": len(event["html"]),
            "finish": event["finish_reason"]}


# ------------------------------------------------------------------ fan-out

@dataclass
class StreamResult:
    lags: list[float] = field(default_factory=list)
    late: float | None = None
    frames: int = 0
    complete: bool = False
    error: str = ""
    #: when the answer's ``start`` was sent (``time.perf_counter``): lags count from it
    t0: float = 0.0
    #: seconds from ``t0`` to the first text (the answer's start, or a follower's join)
    first: float | None = None
    #: each chunk's lag behind the schedule that began with the first text: what the server
    #: adds once the answer runs, without the start-up every later chunk inherits (s)
    running_lags: list[float] = field(default_factory=list)
    #: set once the client has part of the answer (a follower elsewhere may join then)
    started: trio.Event = field(default_factory=trio.Event)


def plain_text(seconds: float, rate: float = 20, chars: int = 4) -> str:
    """One paragraph of ``word`` that ``echo`` streams in ``seconds`` at ``rate`` deltas/s."""
    return ("word " * int(seconds * rate * chars / 5 + 1)).rstrip()


def deltas_of(text: str) -> int:
    """How many 4-character deltas ``echo`` streams ``text`` in."""
    return -(-len(text) // 4)


async def paced_stream(ws: Client, text: str, pacing: str, interval_s: float,
                       result: StreamResult, delay_s: float = 0.0) -> None:
    """Send ``start`` after ``delay_s`` and read the answer to its end, filling ``result``
    (lags count from when the ``start`` was sent)."""
    if delay_s:
        await trio.sleep(delay_s)
    start = {"type": "start", "prompt": text, "provider": "echo", "pacing": {"mode": pacing},
             "echo": {"delta_chars": 4, "interval_ms": interval_s * 1000}}
    if pacing == "default":
        del start["pacing"]
    result.t0 = time.perf_counter()
    await ws.send(json.dumps(start))
    await read_answer(ws, result, interval_s, (deltas_of(text) - 1) * interval_s)


def text_length(html: str) -> int:
    return len(TAG.sub("", html).strip("\n"))


async def read_answer(ws: Client, result: StreamResult, interval_s: float,
                      last_delta_s: float) -> None:
    """Read an answer paced at ``interval_s`` per 4-character delta (its last one due
    ``last_delta_s`` after ``result.t0``) to its end: a lag per chunk that adds text, from a
    ``snapshot`` on for a client that joins a running answer."""
    lengths: list[int] = []
    delivered = 0
    while True:
        message = await ws.receive()
        now = time.perf_counter()
        event = json.loads(message)
        kind = event["type"]
        if kind == "chunk":
            result.frames += 1
            block, op = event["block"], event["op"]
            while len(lengths) <= block:
                lengths.append(0)
            if op == "text":
                lengths[block] += len(event["text"])
            elif op == "splice":  # (not in a plain paragraph; its trim is markup)
                lengths[block] += text_length(event["html"])
            else:
                lengths[block] = text_length(event["html"])
        elif kind == "snapshot":
            lengths = [text_length(html) for html in event["blocks"]]
        elif kind == "stream_complete":
            result.late = now - result.t0 - last_delta_s
            result.complete = event["finish_reason"] == "stop"
            return
        elif kind == "error":
            raise RuntimeError(event)
        else:
            continue
        result.started.set()
        if (total := sum(lengths)) > delivered:
            delivered = total
            due = (delivered - 1) // 4 * interval_s
            result.lags.append(now - result.t0 - due)
            if result.first is None:
                result.first, anchor = now - result.t0, now - due
            result.running_lags.append(now - anchor - due)


class Fan:
    """One fan-out's clients: at most 64 connecting at once, the starters' ``go``, the end."""

    ERRORS = (RuntimeError, ConnectionError, Closed, trio.BrokenResourceError)

    def __init__(self, starters: int, followers: int) -> None:
        self.go = trio.Event()
        self.ready = trio.Semaphore(0)
        self.slots = trio.Semaphore(64)
        self.starters, self.left = starters, starters + followers
        self.done = trio.Event()

    async def wait_ready(self) -> None:
        """Until every starter is connected (or failed to)."""
        for _ in range(self.starters):
            await self.ready.acquire()

    async def client(self, url: str, result: StreamResult, body: Any,
                     after: StreamResult | None = None) -> None:
        """Connect to ``url`` and run ``body(ws)``: a starter (``after`` None) once ``go``
        is set, a follower once ``after`` started; errors go to ``result``."""
        try:
            async with AsyncExitStack() as stack:
                if after is not None:
                    await after.started.wait()
                try:
                    async with self.slots:
                        ws = await stack.enter_async_context(open_client("mini", url))
                        await wait_connected(ws)
                finally:
                    if after is None:
                        self.ready.release()
                if after is None:
                    await self.go.wait()
                await body(ws)
        except self.ERRORS as exc:
            result.error = str(exc)[:200]
        finally:
            self.left -= 1
            if not self.left:
                self.done.set()


async def fanout(base: str, pid: int | list[int], streams: int, seconds: float, pacing: str,
                 cpu_seconds: Any, limit_s: float,
                 follow_base: str | None = None, spread_s: float = 0.0) -> dict[str, Any]:
    """``streams`` answers at once, each 20 deltas/s of 4 characters for ``seconds``, every
    one on its own session and connection; bounded by ``limit_s`` after the starts. The
    starts go out in the same instant (``spread_s`` 0: a burst), or evenly spread over
    ``spread_s`` seconds (the ``i``-th at ``i * spread_s / streams``), as users arrive. With
    ``follow_base`` (another process of the redis engine) a second client per session joins
    its answer there once the first has part of it (``mirror``: its lags, counted from the
    same ``start``). ``pid``: the server process (or processes: CPU summed)."""
    interval = 0.05
    text = plain_text(seconds)
    with trio.fail_after(120):
        sids = await make_sessions(base, streams)
    results = [StreamResult() for _ in sids]
    mirrors = [StreamResult() for _ in sids] if follow_base else []
    fan = Fan(len(results), len(mirrors))
    last = (deltas_of(text) - 1) * interval
    pids = pid if isinstance(pid, list) else [pid]

    async def follow(ws: Client, starter: StreamResult, result: StreamResult) -> None:
        result.t0 = starter.t0
        await read_answer(ws, result, interval, last)

    async with trio.open_nursery() as nursery:
        for i, (sid, result) in enumerate(zip(sids, results, strict=True)):
            nursery.start_soon(fan.client, ws_url(base, f"/ws/stream/{sid}"), result, partial(
                paced_stream, text=text, pacing=pacing, interval_s=interval, result=result,
                delay_s=i * spread_s / streams))
        for sid, starter, mirror in zip(sids, results, mirrors, strict=False):
            nursery.start_soon(fan.client, ws_url(follow_base or "", f"/ws/stream/{sid}"),
                               mirror, partial(follow, starter=starter, result=mirror), starter)
        with trio.fail_after(120):
            await fan.wait_ready()
        cpu0 = [cpu_seconds(p) for p in pids]
        t0, load0 = time.perf_counter(), time.process_time()
        fan.go.set()
        with trio.move_on_after(limit_s):
            await fan.done.wait()
        wall, load_cpu = time.perf_counter() - t0, time.process_time() - load0
        cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
        nursery.cancel_scope.cancel()
    row = {"streams": streams, "deltas_per_s": 20, "pacing": pacing,
           "arrival": f"spread {spread_s:g} s" if spread_s else "burst", "seconds": seconds,
           **summary(results, deltas_of(text), wall),
           "server_cpu_pct": round(sum(cpu) / wall * 100),
           "load_cpu_pct": round(load_cpu / wall * 100)}
    if len(pids) > 1:
        row["server_cpu_pct_each"] = [round(c / wall * 100) for c in cpu]
    if mirrors:
        row["mirror"] = summary(mirrors, deltas_of(text), wall)
    return row


def summary(results: list[StreamResult], deltas: int, wall: float) -> dict[str, Any]:
    """The fan-out's figures over ``results`` (answers of ``deltas`` deltas each, the run
    ``wall`` seconds long): lag quantiles, lateness, frames per delta, tokens per second
    (deltas of complete answers over the run's wall time), time to the first text."""
    lags = sorted(lag for r in results for lag in r.lags)
    running = sorted(lag for r in results for lag in r.running_lags)
    lates = sorted(r.late for r in results if r.late is not None)
    firsts = sorted(r.first for r in results if r.first is not None)
    complete = sum(r.complete for r in results)
    return {"complete": complete,
            "first_p50_ms": round(pct(firsts, .5) * 1000, 1),
            "first_p99_ms": round(pct(firsts, .99) * 1000, 1),
            "errors": sorted({r.error for r in results if r.error})[:3],
            "all_complete": all(r.complete for r in results),
            "lag_p50_ms": round(pct(lags, .5) * 1000, 1),
            "lag_p99_ms": round(pct(lags, .99) * 1000, 1),
            "run_lag_p50_ms": round(pct(running, .5) * 1000, 1),
            "run_lag_p99_ms": round(pct(running, .99) * 1000, 1),
            "late_p50_s": round(pct(lates, .5), 2), "late_max_s": round(pct(lates, 1), 2),
            "tokens_per_s": round(complete * deltas / wall),
            "frames_per_delta": round(sum(r.frames for r in results)
                                      / max(1, deltas * len(results)), 2)}


def pct(values: list[float], p: float) -> float:
    """The ``p`` quantile of sorted ``values`` (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p * len(values)))]


# ------------------------------------------------------------------ memory

async def idle_connections(base: str, pid: int, counts: list[int], rss: Any,
                           settle_s: float = 2.0) -> list[dict[str, Any]]:
    """Idle WebSocket connections, each on its own session, held open while their number
    grows through ``counts`` (ascending; no freed memory is reused between counts): at each,
    the server's RSS growth since before the first, per connection with its session and per
    connection alone (the growth while connecting), KiB."""
    before = rss(pid)
    sessions_growth = 0
    clients: list[MiniWS] = []
    slots = trio.Semaphore(64)
    parts = urlsplit(base)
    rows = []

    async def connect(sid: str) -> None:
        async with slots:
            ws = await MiniWS.connect(parts.hostname or "", parts.port or 80, f"/ws/stream/{sid}")
            await wait_connected(ws)
            clients.append(ws)

    try:
        for count in counts:
            start = rss(pid)
            sids = await make_sessions(base, count - len(clients))
            await trio.sleep(settle_s / 2)
            sessions_growth += rss(pid) - start
            with trio.fail_after(300):
                async with trio.open_nursery() as nursery:
                    for sid in sids:
                        nursery.start_soon(connect, sid)
            await trio.sleep(settle_s)
            after = rss(pid)
            rows.append({"connections": count,
                         "kib_each": round((after - before) / count / 1024, 1),
                         "kib_each_connection_only": round(
                             (after - before - sessions_growth) / count / 1024, 1),
                         "rss_delta_mb": round((after - before) / 1e6, 1)})
    finally:
        for ws in clients:
            with trio.CancelScope(shield=True):
                await ws.stream.aclose()
    return rows


async def finished_answers(base: str, pid: int, count: int, text: str,
                           rss: Any, repeat: int = 1) -> dict[str, Any]:
    """RSS growth over ``count`` finished answers of ``text`` repeated ``repeat`` times (the
    prompt is ``text``: a model's answer is long beside its prompt, which the session keeps
    too), each on its own session, after one warm-up answer: bytes per answer and that over
    the answer's HTML size."""
    sids = await make_sessions(base, count + 1)
    first = await answer(base, sids[0], text, repeat=repeat)
    await trio.sleep(0.5)
    before = rss(pid)
    for sid in sids[1:]:
        assert (await answer(base, sid, text, repeat=repeat))["finish"] == "stop"
    await trio.sleep(0.5)
    per_answer = (rss(pid) - before) / count
    return {"answers": count, "answer_chars": len(text) * repeat, "prompt_chars": len(text),
            "html_chars": first["html_chars"], "mb_per_answer": round(per_answer / 1e6, 2),
            "x_html": round(per_answer / first["html_chars"], 2)}
