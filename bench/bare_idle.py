"""The idle-memory floor (issue 16): idle WebSockets on the bare stack, measured as the
``idle connections`` rows measure streamer's (``load.idle_connections``).

The bare ASGI app on hypercorn and the bare quart-trio app (``bench/bare.py``) each get
``--idle`` connections, opened 64 at a time and held; each connection has been answered once
(``"0"`` → ``"done"``), so its handler runs and waits in ``receive`` as an idle streamer
connection waits. RSS growth per connection, KiB, at each count: what the stack itself
costs, below which streamer's figure cannot go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from bench import procs
from bench.wsclient import MiniWS


async def idle(url: str, pid: int, counts: list[int], settle_s: float) -> list[dict[str, Any]]:
    """Hold idle connections to a bare server while their number grows through ``counts``
    (ascending): RSS growth per connection since before the first, KiB."""
    parts = urlsplit(url)
    before = procs.rss_bytes(pid)
    clients: list[MiniWS] = []
    slots = trio.Semaphore(64)
    rows = []

    async def connect() -> None:
        async with slots:
            ws = await MiniWS.connect(parts.hostname or "", parts.port or 80, "/")
            await ws.send("0")
            if await ws.receive() != "done":
                raise RuntimeError("the bare server did not answer")
            clients.append(ws)

    try:
        for count in counts:
            with trio.fail_after(300):
                async with trio.open_nursery() as nursery:
                    for _ in range(count - len(clients)):
                        nursery.start_soon(connect)
            await trio.sleep(settle_s)
            after = procs.rss_bytes(pid)
            rows.append({"connections": count,
                         "kib_each": round((after - before) / count / 1024, 1)})
    finally:
        for ws in clients:
            with trio.CancelScope(shield=True):
                await ws.stream.aclose()
    return rows


async def rows(args: Any, folder: Path) -> list[dict[str, Any]]:
    """The harness's floor rows: ``idle connections, bare KIND at N`` for the bare ASGI app
    and the bare quart-trio app, each on a fresh server."""
    counts = sorted(int(c) for c in args.idle.split(",") if c)
    out = []
    for kind, name in (("asgi", "bare ASGI on hypercorn"), ("quart", "bare quart-trio")):
        server = await trio.to_thread.run_sync(procs.start_bare, kind, folder)
        try:
            got = await idle(server.url, server.pid, counts, 0.5 if args.quick else 2.0)
        finally:
            server.stop()
        out += [{"measure": f"idle connections at {row['connections']}, {name}",
                 "unit": "KiB each", "median": row["kib_each"], "min": "", "max": "",
                 "note": "the floor: the stack alone, same measure", "detail": row}
                for row in got]
    return out
