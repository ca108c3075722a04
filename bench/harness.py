"""``python -m bench``: the load harness of issue 16 (see ``--help``).

The server (``streamer serve``: persistence off, limits off, ``echo`` pacing itself on an
absolute schedule) and the two bare ceiling servers (``bench/bare.py``) run pinned to CPU 0
with ``taskset``; this process, the load generator, pins itself to CPU 1 (when there is one).
It prints one table of measures (median, min, max over interleaved repetitions where it
repeats; ratios taken within each repetition) and the fan-out matrix, and writes both as
``load.json`` and ``load.md`` under ``--out``, headed by the date, the machine and its load
average. Everything binds 127.0.0.1 and is bounded: each fan-out run by ``--limit`` seconds
after its starts, each other step by a fixed time limit. The soak (``bench/soak.py``) and the
slow clients (``bench/slow_clients.py``) run on fresh servers too, and the idle-memory floor
(``bench/bare_idle.py``: the bare stack's idle WebSockets, measured as ours are).
``--engines memory,redis`` and ``--proxy`` add the redis engine's rows (``bench/cluster.py``,
docs/engines.md: by engine, across two processes, behind nginx to one process or two);
``--only`` runs chosen sections (:data:`SECTIONS`). Not measured yet (issue 16): resume replay
under load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench import bare_idle, cluster, load, procs, slow_clients, soak
from bench.table import MEASURES, format_row, head, spread, table

FULL = {"streams": "100,250,500,1000", "proxy_streams": "250,500", "seconds": 10.0,
        "reps": 5, "tokens": 15_000,
        "idle": "5000,10000", "answers": 24, "answer_chars": 60_000, "pacing": "off,default",
        "soak_seconds": 600.0, "soak_workers": 16, "slow": 10, "slow_streams": 100}
QUICK = {"streams": "1,10,50", "proxy_streams": "10,50", "seconds": 3.0, "reps": 2, "tokens": 4_000,
         "idle": "200", "answers": 2, "answer_chars": 16_000, "pacing": "off",
         "soak_seconds": 8.0, "soak_workers": 4, "slow": 3, "slow_streams": 10}


async def ceiling(urls: dict[str, str], base: str, args: argparse.Namespace) -> list[dict]:
    """Interleaved repetitions: bare trio-websocket, bare hypercorn, streamer (one stream,
    pacing off), the two load clients; ratios taken within each repetition."""
    from bench.chunker_bench import make_answer

    text = make_answer(args.tokens * 4)[:args.tokens * 4]
    sids = await load.make_sessions(base, args.reps)
    got: dict[str, list[float]] = {k: [] for k in
                                   ("ws", "asgi", "streamer", "r_ws", "r_asgi", "mini", "tws")}
    for rep in range(args.reps):
        with trio.fail_after(120):
            ws = await load.bare_rate(urls["ws"], args.tokens)
            asgi = await load.bare_rate(urls["asgi"], args.tokens)
            ours = await load.answer(base, sids[rep], text)
            tws = await load.bare_rate(urls["ws"], args.tokens, "trio-websocket")
        got["ws"].append(ws["rate"])
        got["asgi"].append(asgi["rate"])
        got["streamer"].append(ours["rate"])
        got["r_ws"].append(ours["rate"] / ws["rate"])
        got["r_asgi"].append(ours["rate"] / asgi["rate"])
        got["mini"].append(ws["client_us"])
        got["tws"].append(tws["client_us"])
    n = f"{args.tokens} tokens, {args.reps} reps"
    return [
        {"measure": "ceiling: bare trio-websocket", "unit": "msgs/s", **spread(got["ws"], 0),
         "note": n},
        {"measure": "ceiling: bare ASGI on hypercorn", "unit": "msgs/s",
         **spread(got["asgi"], 0), "note": n},
        {"measure": "single stream, pacing off", "unit": "tokens/s",
         **spread(got["streamer"], 0), "note": f"{n}, LLM-style markdown, 4-char deltas"},
        {"measure": "single stream / bare trio-websocket", "unit": "x", **spread(got["r_ws"]),
         "note": "target >= 1.0"},
        {"measure": "single stream / bare hypercorn", "unit": "x", **spread(got["r_asgi"]),
         "note": ""},
        {"measure": "load client CPU: minimal (bench/wsclient.py)", "unit": "us/msg",
         **spread(got["mini"], 1), "note": "receiving from bare trio-websocket"},
        {"measure": "load client CPU: trio-websocket", "unit": "us/msg",
         **spread(got["tws"], 1), "note": "receiving from bare trio-websocket"}]


#: the memory row's answers repeat their prompt this many times (echo's ``repeat``)
ANSWER_REPEAT = 10


async def answers_memory(base: str, pid: int, args: argparse.Namespace) -> list[dict]:
    from bench.chunker_bench import make_answer

    with trio.fail_after(600):
        # a tenth of the answer as the prompt, repeated ten times (echo's ``repeat``): the
        # session keeps the prompt as history, as it would a user's question
        text = make_answer(args.answer_chars // ANSWER_REPEAT)[:args.answer_chars // ANSWER_REPEAT]
        done = await load.finished_answers(base, pid, args.answers, text, procs.rss_bytes,
                                           ANSWER_REPEAT)
    return [{"measure": "memory per finished answer", "unit": "MB/answer",
             "median": done["mb_per_answer"], "min": "", "max": "",
             "note": f"{done['x_html']}x its HTML ({done['html_chars']} chars); "
                     f"{done['answers']} answers of {done['answer_chars']} chars "
                     f"(prompts of {done['prompt_chars']}); "
                     "target <= 3x", "detail": done}]


async def idle_memory(base: str, pid: int, args: argparse.Namespace) -> list[dict]:
    counts = sorted(int(c) for c in args.idle.split(",") if c)
    rows = await load.idle_connections(base, pid, counts, procs.rss_bytes,
                                       0.5 if args.quick else 2.0)
    return [{"measure": f"idle connections at {idle['connections']}", "unit": "KiB each",
             "median": idle["kib_each"], "min": "", "max": "",
             "note": f"{idle['kib_each_connection_only']} KiB without the session; "
                     f"RSS +{idle['rss_delta_mb']} MB; target <= 32", "detail": idle}
            for idle in rows]


async def matrix(base: str, pid: int, args: argparse.Namespace) -> list[dict]:
    rows = []
    print("\n" + head(MATRIX), flush=True)
    for arrival in args.arrival.split(","):
        spread_s = 0.0 if arrival == "burst" else args.spread_s
        for pacing in args.pacing.split(","):
            for streams in [int(s) for s in args.streams.split(",")]:
                row = await load.fanout(base, pid, streams, args.seconds, pacing,
                                        procs.cpu_seconds, args.limit, spread_s=spread_s)
                print(format_row(row, MATRIX), flush=True)
                rows.append(row)
                await trio.sleep(0.2 if args.quick else 1)
    return rows


async def on_fresh_server(folder: Path, section: Any, args: argparse.Namespace,
                          env: dict[str, str] | None = None) -> list[dict]:
    """``section`` against a new ``streamer serve`` (no state left by the one before), with
    the section's own settings ``env``."""
    server = await trio.to_thread.run_sync(procs.start_streamer, folder, env)
    try:
        rows: list[dict] = await section(server.url, server.pid, args)
    finally:
        server.stop()
    return rows


async def ceiling_rows(args: argparse.Namespace, folder: Path) -> list[dict]:
    started: dict[str, procs.Server] = {}

    async def start(name: str, make: Any, *args: Any) -> None:
        started[name] = await trio.to_thread.run_sync(make, *args)

    try:
        async with trio.open_nursery() as nursery:  # the three start at once
            nursery.start_soon(start, "ws", procs.start_bare, "ws", folder)
            nursery.start_soon(start, "asgi", procs.start_bare, "asgi", folder)
            nursery.start_soon(start, "streamer", procs.start_streamer, folder)
        urls = {"ws": started["ws"].url, "asgi": started["asgi"].url}
        measures = await ceiling(urls, started["streamer"].url, args)
    finally:
        for server in started.values():
            server.stop()
    for row in measures:
        print(format_row(row, MEASURES), flush=True)
    return measures


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The sections of ``--only`` in order; ``engines`` with ``--engines`` beyond memory or
    ``--proxy`` (``bench/cluster.py``)."""
    if set(args.only) & {"ceiling", "answers", "idle", "floor", "soak", "slow"}:
        print("\n" + head(MEASURES), flush=True)
    measures = await ceiling_rows(args, folder) if "ceiling" in args.only else []
    for name, section, env in (("answers", answers_memory, None), ("idle", idle_memory, None),
                               ("floor", bare_idle.rows, None),
                               ("soak", soak.rows, soak.SERVER_ENV),
                               ("slow", slow_clients.rows, None)):
        if name in args.only:
            rows = await (section(args, folder) if name == "floor"
                          else on_fresh_server(folder, section, args, env))
            for row in rows:
                print(format_row(row, MEASURES), flush=True)
            measures += rows
    result: dict[str, Any] = {"measures": measures, "fanout": []}
    if "fanout" in args.only:
        result["fanout"] = await on_fresh_server(folder, matrix, args)
    if "engines" in args.only and (args.engines != "memory" or args.proxy):
        result["engines"] = await cluster.run(args, folder)
    return result


#: the harness's sections, in the order they run (``--only``)
SECTIONS = ("ceiling", "answers", "idle", "floor", "soak", "slow", "fanout", "engines")


MATRIX = ["streams", "deltas_per_s", "pacing", "arrival", "complete", "all_complete",
          "lag_p50_ms", "lag_p99_ms", "first_p50_ms", "first_p99_ms", "run_lag_p50_ms",
          "run_lag_p99_ms", "late_p50_s", "late_max_s", "server_cpu_pct", "load_cpu_pct",
          "frames_per_delta"]


def markdown(result: dict[str, Any]) -> str:
    text = f"{result['header']}\n"
    if result["measures"]:
        text += "\n" + table(result["measures"], MEASURES)
    if result["fanout"]:
        text += "\n" + table(result["fanout"], MATRIX)
    if result.get("engines"):
        text += "\n" + cluster.markdown(result["engines"])
    return text


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--streams", help="fan-out stream counts, comma-separated")
    ap.add_argument("--seconds", type=float, help="length of each fan-out answer")
    ap.add_argument("--pacing", help="fan-out pacing modes: off, default (comma-separated)")
    ap.add_argument("--arrival", default="burst,spread",
                    help="fan-out starts: burst (all in one instant), spread (evenly over "
                         "--spread-s), comma-separated")
    ap.add_argument("--spread-s", type=float, default=1.0,
                    help="seconds the spread arrival's starts take in all")
    ap.add_argument("--reps", type=int, help="interleaved repetitions of the ceiling rows")
    ap.add_argument("--tokens", type=int, help="tokens per ceiling / single-stream run")
    ap.add_argument("--idle", help="idle connection counts, comma-separated")
    ap.add_argument("--answers", type=int, help="finished answers for the memory row")
    ap.add_argument("--answer-chars", type=int, help="characters of each such answer")
    ap.add_argument("--soak-seconds", type=float, help="length of the soak (bounded)")
    ap.add_argument("--soak-workers", type=int, help="clients of the soak, each a user")
    ap.add_argument("--slow", type=int, help="clients that stop reading (slow clients row)")
    ap.add_argument("--slow-streams", type=int, help="others streaming meanwhile")
    ap.add_argument("--limit", type=float, default=120.0,
                    help="seconds a fan-out run may take after its starts (then incomplete)")
    ap.add_argument("--engines", default="memory",
                    help="engines compared (memory,redis): single stream and fan-out rows "
                         "on each, interleaved, with ratios, and the fan-out across two redis "
                         "processes (a redis-server of its own; bench/cluster.py)")
    ap.add_argument("--proxy", action="store_true",
                    help="and the fan-out through nginx to one redis process vs two")
    ap.add_argument("--proxy-streams", help="stream counts of the nginx rows")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"sections to run, comma-separated: {', '.join(SECTIONS)}")
    ap.add_argument("--out", default="var/bench", help="folder for load.json, load.md")
    args = ap.parse_args(argv)
    args.only = [name for name in args.only.split(",") if name]
    if unknown := set(args.only) - set(SECTIONS):
        ap.error(f"--only: unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if os.cpu_count() and os.cpu_count() > procs.LOAD_CPU:  # type: ignore[operator]
        os.sched_setaffinity(0, {procs.LOAD_CPU})
    loadavg = os.getloadavg()
    header = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
              f"{os.cpu_count()} CPUs, load average {loadavg[0]:.2f} {loadavg[1]:.2f} "
              f"{loadavg[2]:.2f}; server on CPU {procs.SERVER_CPU}, load on CPU "
              f"{procs.LOAD_CPU}; python -m bench "
              + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"header": header, "load_average": loadavg, "args": vars(args),
                  **trio.run(run, args, Path(tmp))}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(result, indent=1))
    (out / "load.md").write_text(markdown(result))
    print(f"\nwritten: {out / 'load.json'}, {out / 'load.md'}")
