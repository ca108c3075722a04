"""The redis engine's rows of the load harness (issue 17):
``python -m bench --engines memory,redis --proxy``.

Processes and cores (the machine has 2): every ``streamer serve`` of the comparison runs with
the harness's settings (``procs.streamer_env``), the redis ones with
``engine.kind = "redis"`` against one ``redis-server`` the harness starts on a free 127.0.0.1
port, persistence off (``--save "" --appendonly no``, ``tests/engines/test_redis_log.py``'s
starter). The memory server and redis server A are pinned to CPU 0 (the server core, as in the
rest of the harness); ``redis-server`` to CPU 1 with the load process, so the server core's
figures compare with the memory engine's, the cost of Redis itself showing as load-core time
(in a deployment Redis runs on a core or machine of its own). Rows:

- **single stream** (pacing off, as fast as it goes) on each engine, interleaved repetitions,
  ratio redis / memory within each repetition;
- **fan-out** (``--streams`` answers at once, 20 deltas/s each) on each engine, the engines
  interleaved at each count, ratios redis / memory;
- **across processes** (redis): each session's answer starts on A, and a second client per
  session joins it on process B (CPU 1, beside the load) through B's mirror; lags of both
  counted from the same ``start``;
- **behind nginx** (``--proxy``): the real nginx (Debian's, as the tests run it) with
  ``deploy/nginx/streamer-redis.conf`` (TLS, round robin, no stickiness; only ports, paths
  and certificate replaced, ``tests/engines/test_redis_serve.py``'s ``cluster_site``) in front
  of A and B (each on its own core), against the same site with both upstream lines on A;
  the fan-out goes through it (sessions made and connections opened through nginx). nginx's
  one worker and the load process share CPU 1 with B: what the second core buys is what B
  gets beside them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio

from bench import load, procs
from bench.table import MEASURES, format_row, head, spread, table

#: redis-server shares the load core (see the module's docstring)
REDIS_CPU = procs.LOAD_CPU
NGINX = Path("/usr/sbin/nginx")
SETUP = ["setup", "streams", "pacing", "complete", "first_p50_ms", "first_p99_ms",
         "lag_p50_ms", "lag_p99_ms", "late_p50_s", "late_max_s", "tokens_per_s",
         "server_cpu_pct", "load_cpu_pct", "frames_per_delta", "served_by"]
#: the figures a ratio row divides
RATIOS = ("first_p99_ms", "lag_p50_ms", "lag_p99_ms", "late_p50_s", "tokens_per_s",
          "server_cpu_pct")


@contextmanager
def redis_server() -> Iterator[Any]:
    """A started ``redis-server`` (free 127.0.0.1 port, no persistence) pinned to
    :data:`REDIS_CPU`; killed when the block ends."""
    from tests.engines.test_redis_log import REDIS_SERVER, RedisServer

    if not REDIS_SERVER.exists():
        raise SystemExit(f"{REDIS_SERVER} is missing (scripts/setup.sh --test installs it)")
    server = RedisServer()
    server.start()
    try:
        os.sched_setaffinity(server.process.pid, {REDIS_CPU})
        yield server
    finally:
        server.stop()


def redis_env(url: str) -> dict[str, str]:
    return {"STREAMER_ENGINE_KIND": "redis", "STREAMER_ENGINE_REDIS_URL": url}


def ratio(label: str, top: dict[str, Any], bottom: dict[str, Any]) -> dict[str, Any]:
    """A row of ``top``'s figures over ``bottom``'s (:data:`RATIOS`)."""
    return {"setup": label, "streams": top["streams"], "pacing": top["pacing"],
            **{key: round(top[key] / bottom[key], 2) if bottom[key] else ""
               for key in RATIOS}}


def interleaved(items: list[Any], turn: int) -> list[Any]:
    """``items`` in order on even turns, reversed on odd ones (neither always goes first)."""
    return items if turn % 2 == 0 else items[::-1]


def show(rows: list[dict[str, Any]], columns: list[str]) -> None:
    for row in rows:
        print(format_row(row, columns), flush=True)


async def single(servers: dict[str, procs.Server], args: argparse.Namespace) -> list[dict]:
    """One answer of ``--tokens`` 4-character deltas, pacing off, per engine and repetition
    (interleaved): tokens/s, and each engine over ``memory`` within a repetition."""
    from bench.chunker_bench import make_answer

    text = make_answer(args.tokens * 4)[:args.tokens * 4]
    with trio.fail_after(60):
        sids = {name: await load.make_sessions(s.url, args.reps)
                for name, s in servers.items()}
    rates: dict[str, list[float]] = {name: [] for name in servers}
    for rep in range(args.reps):
        for name in interleaved(list(servers), rep):
            with trio.fail_after(120):
                got = await load.answer(servers[name].url, sids[name][rep], text)
            rates[name].append(got["rate"])
    note = f"{args.tokens} tokens, {args.reps} interleaved reps"
    rows = [{"measure": f"single stream, pacing off, {name} engine", "unit": "tokens/s",
             **spread(rates[name], 0), "note": note} for name in servers]
    for name in list(servers)[1:]:
        rows.append({"measure": f"single stream: {name} / memory", "unit": "x",
                     **spread([r / m for r, m in zip(rates[name], rates["memory"],
                                                          strict=True)]),
                     "note": "ratio within each repetition"})
    return rows


async def matrix(servers: dict[str, procs.Server], args: argparse.Namespace) -> list[dict]:
    """The fan-out at each ``--streams`` count and ``--pacing`` on every engine (interleaved),
    then each engine's ratio row over ``memory``."""
    rows: list[dict[str, Any]] = []
    turn = 0
    for pacing in args.pacing.split(","):
        for streams in [int(s) for s in args.streams.split(",")]:
            got: dict[str, dict[str, Any]] = {}
            for name in interleaved(list(servers), turn):
                server = servers[name]
                got[name] = {"setup": name, **await load.fanout(
                    server.url, server.pid, streams, args.seconds, pacing, procs.cpu_seconds,
                    args.limit)}
                await trio.sleep(0.2 if args.quick else 1)
            turn += 1
            batch = [got[name] for name in servers]
            batch += [ratio(f"{name} / memory", got[name], got["memory"])
                      for name in list(servers)[1:]]
            show(batch, SETUP)
            rows += batch
    return rows


async def across(a: procs.Server, b: procs.Server, args: argparse.Namespace) -> list[dict]:
    """Each session's answer starts on ``a``; a second client per session joins it on ``b``
    (its mirror): one row per side, CPU of each process."""
    rows: list[dict[str, Any]] = []
    for streams in [int(s) for s in args.streams.split(",")]:
        row = await load.fanout(a.url, [a.pid, b.pid], streams, args.seconds,
                                args.pacing.split(",")[0], procs.cpu_seconds, args.limit,
                                follow_base=b.url)
        cpu_a, cpu_b = row.pop("server_cpu_pct_each")
        mirror = row.pop("mirror")
        batch = [{**row, "setup": "A: starts each answer", "server_cpu_pct": cpu_a},
                 {**row, **mirror, "setup": "B: joins it (mirror)", "server_cpu_pct": cpu_b,
                  "load_cpu_pct": ""}]
        show(batch, SETUP)
        rows += batch
        await trio.sleep(0.2 if args.quick else 1)
    return rows


async def behind_nginx(a: procs.Server, b: procs.Server, folder: Path,
                       args: argparse.Namespace) -> list[dict]:
    """The fan-out through nginx to A alone and to A and B (interleaved at each count of
    ``--proxy-streams``), and the ratio 2 processes / 1."""
    from tests.e2e.test_deploy import make_certificate, nginx
    from tests.engines.test_redis_serve import cluster_site

    counts = [int(s) for s in args.proxy_streams.split(",")]
    port_a, port_b = (int(s.url.rsplit(":", 1)[1]) for s in (a, b))
    cert = make_certificate(folder)
    load.trust(cert.client_context())
    connections = 2 * max(counts) + 256  # a proxied connection counts twice
    rows: list[dict[str, Any]] = []
    async with AsyncExitStack() as stack:
        setups = []
        for name, ports, pids in (("nginx, 1 process", (port_a, port_a), [a.pid]),
                                  ("nginx, 2 processes", (port_a, port_b), [a.pid, b.pid])):
            proxy = await stack.enter_async_context(nginx(
                folder / name.replace(", ", "-").replace(" ", ""), 0, cert,
                site=cluster_site(ports, cert), connections=connections))
            setups.append((name, proxy, pids))
        names = {f"127.0.0.1:{port_a}": "A", f"127.0.0.1:{port_b}": "B"}
        for turn, streams in enumerate(counts):
            got = {}
            for name, proxy, pids in interleaved(setups, turn):
                log = proxy.prefix / "upstreams.log"
                seen = log.stat().st_size
                got[name] = {"setup": name, **await load.fanout(
                    proxy.base_url, pids, streams, args.seconds, args.pacing.split(",")[0],
                    procs.cpu_seconds, args.limit)}
                await trio.sleep(0.5 if args.quick else 1)  # nginx logs closed ones
                by = got[name]["websockets_served_by"] = served(log, seen, names)
                got[name]["served_by"] = ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
            batch = [got[name] for name, _, _ in setups]
            batch.append(ratio("2 processes / 1", batch[1], batch[0]))
            show(batch, SETUP)
            rows += batch
    return rows


def served(log: Path, offset: int, names: dict[str, str]) -> dict[str, int]:
    """WebSocket connections per process in nginx's upstreams log (its ``$upstream_addr``
    last on each line) from byte ``offset`` on."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    counts: dict[str, int] = {}
    for line in lines:
        if "/ws/stream/" in line:
            name = names.get(line.rsplit(" ", 1)[-1], "other")
            counts[name] = counts.get(name, 0) + 1
    return counts


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Every row above for ``--engines`` (``memory`` first) and, with ``--proxy``, nginx."""
    engines = ["memory", *(e for e in args.engines.split(",") if e and e != "memory")]
    if args.proxy and "redis" not in engines:
        engines.append("redis")
    out: dict[str, Any] = {}
    with redis_server() as redis:
        env = {"memory": {}, "redis": redis_env(redis.url)}
        start = partial(trio.to_thread.run_sync, procs.start_streamer, folder)
        servers = {name: await start(env[name], name, procs.SERVER_CPU) for name in engines}
        try:
            if len(engines) > 1:
                print("\n" + head(MEASURES), flush=True)
                out["measures"] = await single(servers, args)
                show(out["measures"], MEASURES)
                print("\n" + head(SETUP), flush=True)
                out["fanout"] = await matrix(servers, args)
            if "redis" in servers:
                servers["redis B"] = await start(env["redis"], "redis-b", procs.LOAD_CPU)
                print("\n" + head(SETUP), flush=True)
                out["across"] = await across(servers["redis"], servers["redis B"], args)
                if args.proxy:
                    print("\n" + head(SETUP), flush=True)
                    out["proxy"] = await behind_nginx(servers["redis"], servers["redis B"],
                                                      folder, args)
        finally:
            for server in servers.values():
                server.stop()
    return out


def markdown(result: dict[str, Any]) -> str:
    """The tables of :func:`run`'s result."""
    parts = []
    for key, title in (("measures", "Single stream, by engine"),
                       ("fanout", "Fan-out, by engine"),
                       ("across", "Fan-out across processes (redis: start on A, join on B)"),
                       ("proxy", "Behind nginx: one process vs two")):
        if not result.get(key):
            continue
        columns = MEASURES if key == "measures" else SETUP
        parts.append(f"### {title}\n\n" + table(result[key], columns))
    return "\n".join(parts)
