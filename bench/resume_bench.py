"""Resume replay cost: what the server spends to replay N missed events to a reconnecting
client (the log → merge → encode path of one subscription), for N = 300 and 3,000.

Runs in-process (no sockets, so the figures are the server's CPU, not the network's): a
finished stream's log holds N text ops of 4 characters (one model token each, the realistic
worst case: nothing merged at generation time); a connection resumes at the log's start with
pacing ``off`` and its events are JSON-encoded as the WebSocket writer would. Prints a table:
total ms, µs per missed event, events sent (after merging) and bytes.

    python bench/resume_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import trio

from streamer.config import load_config, replace
from streamer.render.ops import Op
from streamer.runtime.connection import Connection
from streamer.runtime.registry import Registry
from streamer.wire.codecs import encode_json
from streamer.wire.controls import Start, parse_control
from streamer.wire.events import StreamComplete


def finished_stream(registry: Registry, missed: int) -> Any:
    session = registry.get_or_create(f"bench-{missed:08d}")
    start = parse_control({"type": "start", "prompt": "x", "provider": "echo",
                           "pacing": {"mode": "off"}}, 10_000)
    assert isinstance(start, Start)
    stream = session.submit(start)
    session.queue.clear()
    stream.log.append(Op("append", 0, "<p></p>"))
    for i in range(missed - 1):
        stream.log.append(Op("text", 0, text=f"w{i % 10:d}z "))
    stream.state = "done"
    stream.finish_reason = "stop"
    stream.log.finish(StreamComplete(session.session_id, stream.stream_id, "stop", "", "",
                                     None, stream.stream_id, 0))
    return session, stream


async def replay(registry: Registry, missed: int) -> tuple[float, int, int]:
    session, stream = finished_stream(registry, missed)
    sent = [0, 0]

    async def send(ev: dict[str, Any], event_id: str | None) -> None:
        sent[0] += 1
        sent[1] += len(encode_json(ev).encode())

    connection = Connection(session, "bench", send)
    t0 = time.perf_counter()
    await connection.deliver(stream, 0, resumed=True)
    return time.perf_counter() - t0, sent[0], sent[1]


async def main(repeat: int) -> None:
    config = replace(load_config(env={}), **{"pacing.frame_interval_ms": 0.0,
                                             "persistence.enabled": False,
                                             "policy.providers": ("echo",)})
    rows = []
    async with trio.open_nursery() as nursery:
        registry = Registry(config)
        registry.bind(nursery)
        for missed in (300, 3_000):
            times = []
            for _ in range(repeat):
                elapsed, events, size = await replay(registry, missed)
                times.append(elapsed)
            best = min(times)
            rows.append((missed, best * 1e3, statistics.median(times) * 1e3,
                         best * 1e6 / missed, events, size))
        nursery.cancel_scope.cancel()
    print(f"{'missed events':>14} {'best ms':>9} {'median ms':>10} {'µs/event':>9} "
          f"{'events sent':>12} {'bytes':>9}")
    for missed, best, median, per, events, size in rows:
        print(f"{missed:>14,} {best:>9.2f} {median:>10.2f} {per:>9.2f} {events:>12,} {size:>9,}")
    ratio = rows[1][3] / rows[0][3]
    print(f"cost per event, 3,000 vs 300: {ratio:.2f}x (1.0 = linear)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    trio.run(main, parser.parse_args().repeat)
