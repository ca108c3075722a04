"""Lifetimes free what they own (issue 15): 1,000 create / stream / delete cycles against a
live server leave no session, stream or task behind, and RSS returns to its level after
warm-up."""

from __future__ import annotations

import gc

import httpx
import pytest
import trio

from streamer.runtime.session import Session
from streamer.runtime.stream import Stream
from tests.conftest import LiveServer

CYCLES, WARM_UP = 1_000, 200


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def count_tasks() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for nursery in task.child_nurseries
                       for child in nursery.child_tasks)
    return walk(trio.lowlevel.current_root_task())


def census() -> dict[str, int]:
    gc.collect()
    objects = gc.get_objects()
    return {"sessions": sum(isinstance(o, Session) for o in objects),
            "streams": sum(isinstance(o, Stream) for o in objects),
            "tasks": count_tasks(), "rss_kib": rss_kib()}


async def cycle(client: httpx.AsyncClient, i: int) -> None:
    sid = (await client.post("/api/sessions")).json()["session_id"]
    prompt = f"answer {i}: " + "some *words* and `code` " * 20
    done = await client.post(f"/api/sessions/{sid}/complete", json={
        "type": "start", "prompt": prompt, "provider": "echo", "pacing": {"mode": "off"},
        "echo": {"delta_chars": 64, "interval_ms": 0}})
    assert done.json()["finish_reason"] == "stop"
    assert (await client.delete(f"/api/sessions/{sid}")).status_code == 204


@pytest.mark.config(**{"limits.streams_per_minute": 0})  # 1,000 streams in about a minute
async def test_create_stream_delete_cycles_return_to_the_baseline(
        live_server: LiveServer) -> None:
    with trio.fail_after(300):
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
            for i in range(WARM_UP):
                await cycle(client, i)
            baseline = census()
            for i in range(WARM_UP, CYCLES):
                await cycle(client, i)
            after = census()
            status = (await client.get("/api/stream/status")).json()
    assert status["sessions"] == 0 and status["active_streams"] == 0
    assert after["sessions"] == baseline["sessions"] == 0
    assert after["streams"] == baseline["streams"] == 0
    assert after["tasks"] == baseline["tasks"]
    assert after["rss_kib"] <= baseline["rss_kib"] * 1.05, (baseline, after)
