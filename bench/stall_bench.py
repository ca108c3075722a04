"""Stalls: does one client's heavy input hold up everyone else? (issue 15's stall target)

A real server (``streamer serve``) runs pinned to one core (``taskset``); this process, pinned
to the other, is both the watcher and the attacker (the attacker's side is cheap: it posts
bodies and reads frames). The watcher streams an ``echo`` answer (4 characters every 10 ms,
pacing off: several deltas per frame, so a frame every ``pacing.frame_interval_ms``, 33 ms)
and asks ``/healthz`` every 50 ms, while the attacker
sends one heavy input after another:

* ``renders``: ``POST /api/render`` of 1 MB of unclosed link labels, link destinations,
  emphasis and stars (each renders in a worker process, or is stopped at
  ``render.max_render_s``);
* ``tool``: a model (a fake OpenAI-compatible upstream on 127.0.0.1) asks the ``calculate``
  tool for ``(((9**99)**99)**99)**16`` and a larger one;
* ``markdown``: adversarial shapes streamed through ``echo`` at 1-character deltas as fast as
  the pipeline takes them: a loose list and a link label that never closes (16k, the
  issue's), and the shapes with the largest single renders at 64k (an opener on every line of
  one paragraph, a quote of list items: their open tail renders in the render thread).

For each scenario it prints the watcher's largest and 99th-percentile frame gap and the
slowest and 99th-percentile ``/healthz`` time (ms), and the same for an idle run first. The
target: no gap over 100 ms and ``/healthz`` within 100 ms. Results also go to JSON and
Markdown (``--out``). Bounded: each scenario has a time limit, everything binds 127.0.0.1.

    python bench/stall_bench.py [--scenarios renders,tool,markdown] [--out bench/results]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))
from chunker_shapes import SHAPES  # noqa: E402

SERVER_CPU, LOAD_CPU = "0", "1"
SCENARIO_LIMIT_S = 240
#: the baseline watches nothing heavy for about as long as the longest attack
IDLE_S = 20

HEAVY_RENDERS = ["[" * 1_000_000, "[a](" * 250_000, "_a " * 330_000, "*" * 1_000_000]
CALCULATIONS = ["(((9**99)**99)**99)**16", "((((9**99)**99)**99)**99)**99"]
MARKDOWN = [("loose_list 16k", "- item with *some* text\n\n" * 700),
            ("open_label 16k", "[" + "a label that never closes " * 600),
            ("label_lines 64k", SHAPES["label_lines"](64_000)),
            ("delimiter_soup 64k", SHAPES["delimiter_soup"](64_000)),
            ("list_in_quote 64k", SHAPES["list_in_quote"](64_000))]


# ------------------------------------------------------------------ the fake upstream

def sse_body(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk",
                                            "created": 1, "model": "m", **c}).encode()
                    + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def tool_call(expression: str) -> bytes:
    """An OpenAI chat-completions stream whose one choice calls ``calculate``."""
    call = {"index": 0, "id": "call_big", "type": "function",
            "function": {"name": "calculate", "arguments": json.dumps({"expression": expression})}}
    return sse_body([
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]},
                      "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}])


FINAL_ANSWER = sse_body([
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Too large."},
                  "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])


class Upstream:
    """An OpenAI-compatible endpoint on 127.0.0.1 that answers requests in script order,
    over and over."""

    def __init__(self, script: list[bytes]) -> None:
        self.script = itertools.cycle(script)

    async def handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65_536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += await stream.receive_some(65_536)
        payload = next(self.script)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                              b"connection: close\r\ncontent-length: "
                              + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        await stream.aclose()


# ------------------------------------------------------------------ the server

def start_server(upstream_port: int, db: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``streamer serve`` pinned to ``SERVER_CPU``; its log goes to a file beside the database
    (a pipe nobody reads would fill and block the server)."""
    env = {**os.environ, "STREAMER_SERVER_DRAIN_TIMEOUT_S": "2",
           "STREAMER_PERSISTENCE_DATABASE_PATH": str(db),
           "STREAMER_POLICY_PROVIDERS": "echo,openai",
           "STREAMER_LIMITS_STREAMS_PER_MINUTE": "0",
           "STREAMER_SERVER_MAX_MESSAGE_BYTES": "200000",
           "STREAMER_PROVIDERS_OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
           "STREAMER_PROVIDERS_OPENAI_API_KEY_ENV": "STREAMER_BENCH_KEY",
           "STREAMER_BENCH_KEY": "sk-bench"}
    log = db.with_suffix(".log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "streamer", "serve",
             "--port", "0"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        match = re.search(r"serving on (http://\S+) ", log.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start:\n" + log.read_text(errors="replace")[-2000:])


async def new_session(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/sessions", json={})
    response.raise_for_status()
    return str(response.json()["session_id"])


# ------------------------------------------------------------------ the attacks

async def attack_renders(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for markdown in HEAVY_RENDERS:
            response = await client.post("/api/render", json={"markdown": markdown})
            assert response.status_code in (200, 413), response.text[:200]


async def stream_answer(url: str, start: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one ``start`` on a new session; the events it got."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        sid = await new_session(client)
    events = []
    async with open_websocket_url(f"ws{url[4:]}/ws/stream/{sid}",
                                  max_message_size=1 << 22) as ws:
        await ws.send_message(json.dumps(start))
        while True:
            ev = json.loads(await ws.get_message())
            events.append(ev)
            if ev["type"] == "stream_complete":
                return events


async def attack_tool(url: str) -> None:
    for _ in CALCULATIONS:
        events = await stream_answer(url, {"type": "start", "prompt": "compute it",
                                           "provider": "openai", "tools": ["calculate"],
                                           "pacing": {"mode": "off"}})
        results = [ev.get("result") for ev in events if ev["type"] == "tool_call"]
        assert any(r and "1000 digits" in r for r in results), results


async def attack_markdown(url: str, text: str) -> None:
    events = await stream_answer(url, {"type": "start", "prompt": text, "provider": "echo",
                                       "pacing": {"mode": "off"},
                                       "echo": {"delta_chars": 1, "interval_ms": 0}})
    assert events[-1]["type"] == "stream_complete"


# ------------------------------------------------------------------ the watcher

def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def watch(url: str, heavy: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    """An ``echo`` answer's frame gaps and ``/healthz`` times while ``heavy`` runs."""
    gaps: list[float] = []
    health: list[float] = []
    done = trio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        sid = await new_session(client)

        async def probe() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                health.append(time.perf_counter() - t0)
                await trio.sleep(0.05)

        async with open_websocket_url(f"ws{url[4:]}/ws/stream/{sid}") as ws:
            await ws.send_message(json.dumps({
                "type": "start", "prompt": "word " * 19_000, "provider": "echo",
                "pacing": {"mode": "off"}, "echo": {"delta_chars": 4, "interval_ms": 10}}))
            while (ev := json.loads(await ws.get_message()))["type"] != "chunk":
                assert ev["type"] != "error", ev
            t_start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                async def run_heavy() -> None:
                    try:
                        await heavy()
                    finally:
                        done.set()
                nursery.start_soon(run_heavy)
                nursery.start_soon(probe)
                last = time.perf_counter()
                while not done.is_set():
                    ev = json.loads(await ws.get_message())
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now
                    assert ev["type"] != "stream_complete", "the watched answer ended first"
            elapsed = time.perf_counter() - t_start
    return {"seconds": round(elapsed, 1), "frames": len(gaps),
            "gap_max_ms": round(max(gaps) * 1000, 1), "gap_p99_ms": round(pct(gaps, .99) * 1000, 1),
            "gaps_over_100ms": sum(g > 0.1 for g in gaps),
            "healthz_max_ms": round(max(health) * 1000, 1),
            "healthz_p99_ms": round(pct(health, .99) * 1000, 1)}


async def idle(url: str) -> None:
    await trio.sleep(IDLE_S)


async def run(scenarios: list[str], repeat: int) -> list[dict[str, Any]]:
    plan: list[tuple[str, Callable[[str], Awaitable[None]]]] = [
        ("idle (baseline)", idle)]
    if "renders" in scenarios:
        plan.append(("renders: 4 x 1 MB /api/render", attack_renders))
    if "tool" in scenarios:
        plan.append(("tool: calculate 9**99**99**99**16 (x2)", attack_tool))
    if "markdown" in scenarios:
        for name, text in MARKDOWN:
            plan.append((f"markdown: {name} at 1-char deltas",
                         lambda url, text=text: attack_markdown(url, text)))
    script = [b for e in CALCULATIONS for b in (tool_call(e), FINAL_ANSWER)]
    rows = []
    async with trio.open_nursery() as nursery:
        upstream = Upstream(script)
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, upstream.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            process, url = await trio.to_thread.run_sync(start_server, port, Path(tmp) / "s.db")
            try:
                for _ in range(repeat):  # interleaved: every scenario, then again
                    for name, attack in plan:
                        with trio.fail_after(SCENARIO_LIMIT_S):
                            row = {"scenario": name,
                                   **await watch(url, lambda a=attack: a(url))}
                        rows.append(row)
                        print(format_row(row), flush=True)
            finally:
                process.terminate()
                process.wait(10)
        nursery.cancel_scope.cancel()
    return rows


COLUMNS = ["scenario", "seconds", "frames", "gap_max_ms", "gap_p99_ms", "gaps_over_100ms",
           "healthz_max_ms", "healthz_p99_ms"]
SUMMARY = ["scenario", "runs", "gap_max_ms median (min-max)", "gap_p99_ms median",
           "gaps over 100 ms / frames", "healthz_max_ms median (min-max)"]


def summarize(rows: list[dict[str, Any]]) -> list[list[str]]:
    """One line per scenario over its runs: medians with min and max."""
    out = []
    for name in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == name]

        def spread(key: str, mine: list[dict[str, Any]] = mine) -> str:
            values = [r[key] for r in mine]
            return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

        out.append([name, str(len(mine)), spread("gap_max_ms"),
                    f"{statistics.median(r['gap_p99_ms'] for r in mine):.0f}",
                    f"{sum(r['gaps_over_100ms'] for r in mine)} / "
                    f"{sum(r['frames'] for r in mine)}", spread("healthz_max_ms")])
    return out


def format_row(row: dict[str, Any]) -> str:
    return "| " + " | ".join(str(row[c]) for c in COLUMNS) + " |"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "\n".join(format_row(r) for r in rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", default="renders,tool,markdown")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs of every scenario")
    ap.add_argument("--out", default="", help="folder for stall.json and stall.md")
    args = ap.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    load = os.getloadavg()
    print(f"server on CPU {SERVER_CPU}, watcher and attacker on CPU {LOAD_CPU}; "
          f"load average {load[0]:.2f}")
    print("| " + " | ".join(COLUMNS) + " |")
    rows = trio.run(run, args.scenarios.split(","), args.repeat)
    summary = summarize(rows)
    table = ("| " + " | ".join(SUMMARY) + " |\n|" + "---|" * len(SUMMARY) + "\n"
             + "\n".join("| " + " | ".join(line) + " |" for line in summary) + "\n")
    print("\n" + table)
    medians = {name: statistics.median(r["gap_max_ms"] for r in rows if r["scenario"] == name)
               for name in dict.fromkeys(r["scenario"] for r in rows)}
    health = {name: statistics.median(r["healthz_max_ms"] for r in rows
                                      if r["scenario"] == name) for name in medians}
    verdict = "met" if max(medians.values()) <= 100 and max(health.values()) <= 100 else "missed"
    print(f"target (no gap over 100 ms, /healthz within 100 ms; median of each scenario's "
          f"worst over {args.repeat} runs): {verdict}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "stall.json").write_text(json.dumps(
            {"date": time.strftime("%Y-%m-%d"), "load_average": load, "rows": rows}, indent=1))
        (out / "stall.md").write_text(markdown_table(rows) + "\n" + table)


if __name__ == "__main__":
    main()
