"""Slow clients (issue 16): ``slow`` clients that stop reading while ``streams`` others stream.

Each repetition runs the fan-out (``bench.load.fanout``: ``streams`` answers of 20 deltas/s,
pacing off) twice, interleaved: alone, then with the slow clients. A slow client is a
:class:`bench.wsclient.MiniWS` with a small receive buffer (``SO_RCVBUF``, so the kernel does
not absorb the answer for it) that starts a long answer with pacing off and never reads again.
What the server does with such a peer is its own (``runtime/connection.py``: its outbox full,
its writer stuck past ``server.send_timeout_s``, the peer is given up; the stream held back by
``streams.backpressure_chars``, then cancelled after ``streams.paused_limit_s``).

Reported: the others' p99 lag with the slow clients over without them (the median ratio of
the repetitions), the server's RSS while they are stuck (the peak over a baseline taken before
they connect) and after they are gone, and how many the server closed itself.
"""

from __future__ import annotations

import json
import statistics
from typing import Any
from urllib.parse import urlsplit

import trio

from bench.load import fanout, make_sessions, plain_text, wait_connected
from bench.wsclient import Closed, MiniWS

#: the slow client's receive buffer (bytes): the kernel holds little for it
RCVBUF = 4096


async def stuck_client(base: str, sid: str, text: str) -> MiniWS:
    """A connection that asks for ``text`` (pacing off, as fast as it goes) and, once its
    first chunk came, never reads again."""
    parts = urlsplit(base)
    ws = await MiniWS.connect(parts.hostname or "127.0.0.1", parts.port or 80,
                              f"/ws/stream/{sid}", rcvbuf=RCVBUF)
    await wait_connected(ws)
    await ws.send(json.dumps({"type": "start", "prompt": text, "provider": "echo",
                              "pacing": {"mode": "off"},
                              "echo": {"delta_chars": 4, "interval_ms": 0}}))
    while (event := json.loads(await ws.receive()))["type"] != "chunk":
        if event["type"] == "error":
            raise RuntimeError(f"a slow client's start failed: {event}")
    return ws


async def closed_by_server(ws: MiniWS, limit_s: float) -> bool:
    """Drain what the server sent; ``True`` when it closed the connection within
    ``limit_s``."""
    with trio.move_on_after(limit_s):
        try:
            while True:
                await ws.receive()
        except (Closed, ConnectionError, trio.BrokenResourceError):
            return True
    return False


async def with_slow(base: str, pid: int, args: dict[str, Any], rss: Any,
                    cpu_seconds: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fan-out while ``slow`` clients are stuck: ``(its row, the slow clients' figures)``."""
    text = plain_text(args["slow_answer_s"])
    sids = await make_sessions(base, args["slow"])
    before = rss(pid)
    peak = before
    clients = [await stuck_client(base, sid, text) for sid in sids]
    stuck_at = trio.current_time()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss(pid))
            await trio.sleep(0.25)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        await trio.sleep(1.0)  # the slow ones fill what they can and get stuck
        row = await fanout(base, pid, args["streams"], args["seconds"], "off", cpu_seconds,
                           args["limit"])
        # still stuck until the server must have given them up (``server.send_timeout_s``)
        await trio.sleep(max(0.0, stuck_at + args["give_up_s"] - trio.current_time()))
        nursery.cancel_scope.cancel()
    closed = 0
    for ws in clients:
        closed += await closed_by_server(ws, 1.0)
        await ws.aclose()
    await trio.sleep(2.0)
    after = rss(pid)
    return row, {"rss_before_mb": round(before / 1e6, 1),
                 "rss_peak_mb": round(peak / 1e6, 1),
                 "peak_mb_each": round((peak - before) / 1e6 / args["slow"], 2),
                 "rss_after_mb": round(after / 1e6, 1), "closed_by_server": closed,
                 "answer_chars": len(text)}


async def slow_clients(base: str, pid: int, args: dict[str, Any], rss: Any,
                       cpu_seconds: Any) -> dict[str, Any]:
    """``args``: ``streams``, ``slow``, ``seconds``, ``reps``, ``limit``,
    ``slow_answer_s`` (the slow ones' answer, in seconds of 20 deltas/s), ``give_up_s`` (how
    long they stay stuck at least: past the server's ``send_timeout_s``). The others' p99
    lag alone and with the slow clients, per repetition; the slow clients' memory (the last
    repetition's)."""
    alone: list[float] = []
    slowed: list[float] = []
    complete = True
    memory: dict[str, Any] = {}
    for _ in range(args["reps"]):
        row = await fanout(base, pid, args["streams"], args["seconds"], "off", cpu_seconds,
                           args["limit"])
        alone.append(row["lag_p99_ms"])
        complete = complete and row["all_complete"]
        await trio.sleep(1.0)
        row, memory = await with_slow(base, pid, args, rss, cpu_seconds)
        slowed.append(row["lag_p99_ms"])
        complete = complete and row["all_complete"]
        await trio.sleep(1.0)
    ratios = [b / a for a, b in zip(alone, slowed, strict=True) if a]
    return {"streams": args["streams"], "slow": args["slow"], "reps": args["reps"],
            "p99_alone_ms": alone, "p99_with_slow_ms": slowed,
            "p99_ratio": round(statistics.median(ratios), 2) if ratios else float("nan"),
            "others_all_complete": complete, **memory}


async def rows(base: str, pid: int, args: Any) -> list[dict[str, Any]]:
    """The harness's slow-clients rows (``--slow``, ``--slow-streams``, ``--seconds``,
    ``--reps`` (at most 3), ``--limit``)."""
    from bench.procs import cpu_seconds, rss_bytes

    options = {"streams": args.slow_streams, "slow": args.slow, "seconds": args.seconds,
               "reps": min(args.reps, 3), "limit": args.limit, "slow_answer_s": 1000.0,
               # past 1.5 x the server's send_timeout_s (10 s): a stuck write's latest notice
               "give_up_s": 16.0}
    with trio.fail_after(options["reps"] * 2 * (args.limit + 60)):
        done = await slow_clients(base, pid, options, rss_bytes, cpu_seconds)
    ratios = [b / a for a, b in zip(done["p99_alone_ms"], done["p99_with_slow_ms"],
                                   strict=True) if a]
    return [
        {"measure": "slow clients: others' p99 lag, with / without", "unit": "x",
         "median": done["p99_ratio"], "min": round(min(ratios), 2) if ratios else "",
         "max": round(max(ratios), 2) if ratios else "",
         "note": f"{done['slow']} stuck, {done['streams']} streaming; p99 "
                 f"{done['p99_alone_ms']} -> {done['p99_with_slow_ms']} ms; all complete: "
                 f"{done['others_all_complete']}; target <= 1.10", "detail": done},
        {"measure": "slow clients: server memory each", "unit": "MB",
         "median": done["peak_mb_each"], "min": "", "max": "",
         "note": f"RSS {done['rss_before_mb']} -> peak {done['rss_peak_mb']} -> "
                 f"{done['rss_after_mb']} MB after; closed by the server: "
                 f"{done['closed_by_server']}/{done['slow']}; bounded"}]
