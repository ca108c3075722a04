"""Sessions that survive the network: exact resume, gaps answered by snapshots, several
subscribers, persistence across a restart (issue 5). Real server, real sockets."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from streamer.runtime.connection import OUTBOX_EVENTS
from tests.conftest import LiveServer, create_session, make_config
from tests.faultproxy import fault_proxy
from tests.resume_client import Doc, sse_follow, ws_follow

ANSWERS = Path(__file__).parents[1] / "corpus" / "answers"
#: a few KB of realistic markdown: headings, lists, tables, code, quotes
DOCUMENT = "\n\n".join((ANSWERS / name).read_text() for name in (
    "01_python_explanation.md", "02_comparison_table.md", "04_multi_lang_code.md"))
ECHO_FAST = {"delta_chars": 4, "interval_ms": 1}


async def render(server: LiveServer, markdown: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        return str((await client.post("/api/render", json={"markdown": markdown})).json()["html"])


async def start_stream(server: LiveServer, session_id: str, prompt: str,
                       echo: dict[str, Any] | None = None,
                       pacing: dict[str, Any] | None = None) -> tuple[str, str]:
    """Start an echo stream from a short-lived WebSocket; returns (stream_id, epoch)."""
    await create_session(server.base_url, session_id)
    with trio.fail_after(10):
        async with open_websocket_url(f"{server.ws_url}/ws/stream/{session_id}") as ws:
            connected = json.loads(await ws.get_message())
            await ws.send_message(json.dumps({
                "type": "start", "prompt": prompt, "provider": "echo",
                "echo": echo or ECHO_FAST, "pacing": pacing or {"mode": "off"}}))
            candidate = None
            while True:
                ev = json.loads(await ws.get_message())
                if ev["type"] == "snapshot":
                    candidate = None  # a late join of an earlier stream, not ours
                elif candidate is not None:
                    return candidate, connected["epoch"]
                elif ev["type"] == "stream_start" and not ev.get("queued"):
                    candidate = ev["stream_id"]


def _rng() -> random.Random:
    seed = int(os.environ.get("STREAMER_FAULT_SEED", random.randrange(1 << 30)))
    print(f"fault injection seed: {seed} (STREAMER_FAULT_SEED={seed} repeats it)")
    return random.Random(seed)


@pytest.mark.config(**{"streams.grace_period_s": 60.0})
async def test_fault_injection_resumes_exactly_over_both_transports(
        live_server: LiveServer) -> None:
    """≥ 200 abrupt cuts at random byte offsets (mid-frame, mid-event): every reconnect
    resumes from the client's cursor; no seq twice, nothing missing, final == one-shot."""
    rng = _rng()
    port = int(live_server.base_url.rsplit(":", 1)[1])
    expected = await render(live_server, DOCUMENT)
    cuts = {"websocket": 0, "sse": 0}
    with trio.fail_after(240):
        async with fault_proxy(port) as proxy:
            base = f"http://127.0.0.1:{proxy.port}"
            for round_ in range(40):  # until both transports had 100 cuts
                for transport in [t for t, n in cuts.items() if n < 100]:
                    session_id = f"fault-{transport}-{round_:02d}"
                    stream_id, epoch = await start_stream(live_server, session_id, DOCUMENT)
                    doc = Doc(stream_id=stream_id, epoch=epoch)
                    for _attempt in range(500):
                        before = proxy.cut_count
                        # up to 40 KB: the last event (stream_complete) holds the answer
                        proxy.cuts = [rng.randint(1, 40_000)]
                        follow = ws_follow if transport == "websocket" else sse_follow
                        done = await follow(base.replace("http", "ws") if follow is ws_follow
                                            else base, session_id, doc)
                        cuts[transport] += proxy.cut_count - before
                        if done:
                            break
                    assert doc.complete is not None, f"{transport}: no stream_complete"
                    assert doc.snapshots == 0 and not doc.errors  # every resume was exact
                    assert doc.html == doc.complete["html"] == expected, transport
                if min(cuts.values()) >= 100:
                    break
    print(f"cuts: {cuts}")
    assert cuts["websocket"] >= 100 and cuts["sse"] >= 100


async def test_websocket_resume_message_replays_after_the_cursor(
        live_server: LiveServer) -> None:
    """``{"type": "resume", ...}`` on an open connection restarts following at the cursor."""
    await create_session(live_server.base_url, "resume-msg-001")
    stream_id, epoch = await start_stream(live_server, "resume-msg-001", DOCUMENT,
                                          pacing={"mode": "fixed", "cps": 4000})
    first = Doc(stream_id=stream_id, epoch=epoch)
    with trio.fail_after(30):
        async with open_websocket_url(
                f"{live_server.ws_url}/ws/stream/resume-msg-001?stream_id={stream_id}"
                f"&epoch={epoch}&last_seq=0") as ws:
            while first.last_seq < 20:
                first.apply(json.loads(await ws.get_message()))
        second = Doc(stream_id=stream_id, epoch=epoch, last_seq=first.last_seq,
                     blocks=list(first.blocks))
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/resume-msg-001") as ws:
            await ws.send_message(json.dumps({"type": "resume", "stream_id": stream_id,
                                              "epoch": epoch, "last_seq": first.last_seq}))
            resumed = False
            while second.complete is None:
                ev = json.loads(await ws.get_message())
                if ev["type"] == "stream_start" and ev.get("resumed"):
                    resumed = True  # what came before followed the stream as a new joiner
                elif resumed:
                    second.apply(ev)
    assert second.html == second.complete["html"] == await render(live_server, DOCUMENT)


async def test_wrong_epoch_gets_resume_gap_and_a_snapshot(live_server: LiveServer) -> None:
    stream_id, _epoch = await start_stream(live_server, "gap-epoch-01", DOCUMENT)
    doc = Doc(stream_id=stream_id, epoch="0ldepoch", last_seq=5, blocks=["<p>stale</p>"])
    with trio.fail_after(30):
        assert await ws_follow(live_server.ws_url, "gap-epoch-01", doc)
    assert [e["code"] for e in doc.errors] == ["resume_gap"]
    assert doc.snapshots == 1
    assert doc.html == doc.complete["html"] == await render(live_server, DOCUMENT)


@pytest.mark.config(**{"resume.window_s": 0.2})
async def test_after_the_replay_window_the_final_document_comes_as_a_snapshot(
        live_server: LiveServer) -> None:
    stream_id, epoch = await start_stream(live_server, "gap-window-1", "short *answer*")
    first = Doc(stream_id=stream_id, epoch=epoch)
    with trio.fail_after(10):
        assert await ws_follow(live_server.ws_url, "gap-window-1", first)
        await trio.sleep(0.5)  # the housekeeping task evicts the finished log
        late = Doc(stream_id=stream_id, epoch=epoch, last_seq=1, blocks=["<p>short</p>"])
        assert await ws_follow(live_server.ws_url, "gap-window-1", late)
    assert [e["code"] for e in late.errors] == ["resume_gap"]
    assert late.html == first.html == await render(live_server, "short *answer*")
    assert "<em>answer</em>" in late.html


async def test_unknown_stream_is_reported_and_the_connection_lives(
        live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "unknown-01")
    with trio.fail_after(10):
        async with open_websocket_url(
                f"{live_server.ws_url}/ws/stream/unknown-01?stream_id=s_nope&last_seq=3") as ws:
            seen = [json.loads(await ws.get_message()) for _ in range(2)]
            assert seen[0]["type"] == "connected" and seen[0]["resumed"] is True
            assert seen[1]["type"] == "error" and seen[1]["code"] == "stream_not_found"
            await ws.send_message(json.dumps({"type": "ping", "ts": 7}))
            assert json.loads(await ws.get_message()) == {
                "type": "pong", "session_id": "unknown-01", "ts": 7}


async def test_malformed_cursors_are_clear_errors(live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "bad-cursor")
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=5) as client:
        response = await client.get("/api/sessions/bad-cursor/events",
                                    headers={"Last-Event-ID": "nonsense"})
        assert response.status_code == 400 and response.json()["code"] == "invalid_message"
    with trio.fail_after(10):
        async with open_websocket_url(
                f"{live_server.ws_url}/ws/stream/bad-cursor?stream_id=s_x&last_seq=-1") as ws:
            first = json.loads(await ws.get_message())
            assert first["type"] == "error" and first["code"] == "invalid_message"
            assert json.loads(await ws.get_message())["type"] == "connected"  # it lives


@pytest.mark.config(**{"streams.backpressure_chars": 100_000})
async def test_three_subscribers_one_paused_end_identical(live_server: LiveServer) -> None:
    """Two WebSockets (different speeds, one paused a while) and one SSE follow one stream:
    identical documents; the paused one holds a bounded outbox and only its cursor."""
    session_id = await create_session(live_server.base_url, "multi-sub-01")
    expected = await render(live_server, DOCUMENT)
    docs = {"fast": Doc(), "paused": Doc(), "sse": Doc()}
    paused_view: list[dict[str, Any]] = []

    async def subscriber(name: str, speed: float, pause_s: float,
                         task_status: trio.TaskStatus[None]) -> None:
        doc = docs[name]
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{session_id}") as ws:
            await ws.send_message(json.dumps({"type": "speed", "cps": speed}))
            task_status.started()
            while doc.complete is None:
                ev = json.loads(await ws.get_message())
                doc.apply(ev)
                if pause_s and ev["type"] == "chunk" and doc.last_seq > 10:
                    await ws.send_message(json.dumps({"type": "pause"}))
                    await trio.sleep(pause_s)
                    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
                        info = (await client.get(f"/api/sessions/{session_id}")).json()
                    paused_view.extend(s for s in info["subscribers"] if s["paused"])
                    await ws.send_message(json.dumps({"type": "resume"}))
                    await ws.send_message(json.dumps({"type": "skip"}))
                    pause_s = 0

    async def sse(task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await sse_follow(live_server.base_url, session_id, docs["sse"])

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(subscriber, "paused", 3_000.0, 1.5)
            await nursery.start(subscriber, "fast", 50_000.0, 0.0)
            await nursery.start(sse)
            async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{session_id}") as ws:
                await ws.send_message(json.dumps({
                    "type": "start", "prompt": DOCUMENT, "provider": "echo",
                    "echo": {"delta_chars": 8, "interval_ms": 1},
                    "pacing": {"mode": "fixed", "cps": 3000}}))
                while json.loads(await ws.get_message())["type"] != "stream_complete":
                    pass
    for name, doc in docs.items():
        assert doc.complete is not None and doc.html == expected, name
    assert paused_view and all(v["queued_events"] <= OUTBOX_EVENTS for v in paused_view)
    # while it was paused, the others went on: its cursor lagged the stream's end
    assert paused_view[0]["seq"] < docs["fast"].last_seq


async def test_messages_are_persisted_listed_and_deleted(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        for prompt in ("first *question*", "second question"):
            response = await client.post("/api/sessions/persist-001/complete", json={
                "type": "start", "prompt": prompt, "provider": "echo",
                "echo": ECHO_FAST, "pacing": {"mode": "off"}})
            assert response.status_code == 200
        listed = (await client.get("/api/sessions/persist-001/messages")).json()["messages"]
        assert [(m["role"], m["markdown"]) for m in listed] == [
            ("user", "first *question*"), ("assistant", "first *question*"),
            ("user", "second question"), ("assistant", "second question")]
        assert listed[1]["html"] == await render(live_server, "first *question*")
        assert listed[1]["finish_reason"] == "stop" and listed[1]["status"] == "complete"
        assert listed[1]["provider"] == "echo" and listed[1]["usage"]["unit"] == "chars"
        assert (await client.delete("/api/sessions/persist-001")).status_code == 204
        gone = await client.get("/api/sessions/persist-001/messages")
        assert gone.status_code == 404 and gone.json()["code"] == "session_not_found"
        assert (await client.delete("/api/sessions/persist-001")).status_code == 404


async def test_a_restarted_server_answers_a_resume_from_its_database(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    """Server A streams an answer into a SQLite file and stops; server B (same file, new
    epoch) answers the client's cursor with resume_gap + the stored snapshot + complete."""
    from functools import partial

    from streamer.server import serve

    db = str(tmp_path / "streamer.db")
    config = make_config(**{"persistence.database_path": db})
    servers = []
    for _ in range(2):
        stop = trio.Event()
        binds = await nursery.start(partial(serve, config, shutdown_trigger=stop.wait))
        servers.append((LiveServer(binds[0], config), stop))
        if len(servers) == 1:
            server_a, stop_a = servers[0]
            stream_id, epoch = await start_stream(server_a, "restart-db-1", DOCUMENT)
            doc = Doc(stream_id=stream_id, epoch=epoch)
            with trio.fail_after(30):
                assert await ws_follow(server_a.ws_url, "restart-db-1", doc)
            stop_a.set()
            await trio.sleep(0.3)
    server_b, stop_b = servers[1]
    again = Doc(stream_id=stream_id, epoch=epoch, last_seq=3, blocks=["<p>x</p>"])
    with trio.fail_after(30):
        assert await ws_follow(server_b.ws_url, "restart-db-1", again)
    assert [e["code"] for e in again.errors] == ["resume_gap"]
    assert again.epoch != epoch and again.snapshots == 1
    assert again.html == doc.html == await render(server_b, DOCUMENT)
    assert again.complete["finish_reason"] == "stop"
    async with httpx.AsyncClient(base_url=server_b.base_url) as client:
        listed = (await client.get("/api/sessions/restart-db-1/messages")).json()["messages"]
    assert [m["role"] for m in listed] == ["user", "assistant"]
    stop_b.set()



async def test_sse_first_connect_may_carry_the_cursor_in_the_query(
        live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "sse-query-01")
    stream_id, epoch = await start_stream(live_server, "sse-query-01", DOCUMENT,
                                          pacing={"mode": "fixed", "cps": 20_000})
    doc = Doc(stream_id=stream_id, epoch=epoch)
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client, \
                client.stream("GET", "/api/sessions/sse-query-01/events",
                              params={"last_event_id": f"{stream_id}:{epoch}:0"}) as response:
            buffer = ""
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer:
                    raw, buffer = buffer.split("\n\n", 1)
                    data = [ln[5:].lstrip() for ln in raw.split("\n") if ln.startswith("data:")]
                    if data:
                        ev = json.loads(data[0])
                        if ev["type"] == "connected":
                            assert ev["resumed"] is True
                        doc.apply(ev)
                if doc.complete is not None:
                    break
    assert doc.snapshots == 0 and not doc.errors
    assert doc.html == doc.complete["html"] == await render(live_server, DOCUMENT)


async def test_a_cursor_past_the_end_skips_the_finished_answer(live_server: LiveServer) -> None:
    """Reconnecting with ``stream_complete``'s id (seq = last_seq + 1) does not repeat that
    answer's end: the connection goes on with the session's next stream from its start."""
    await create_session(live_server.base_url, "past-end-01")
    stream_id, epoch = await start_stream(live_server, "past-end-01", "first answer")
    ids: list[str] = []
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
            async with client.stream("GET", "/api/sessions/past-end-01/events",
                                     params={"last_event_id": f"{stream_id}:{epoch}:0"}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("id:"):
                        ids.append(line[3:].strip())
                    if line.startswith("event:") and "stream_complete" in line:
                        break
            last_id = ids[-1]
            seq = int(last_id.rsplit(":", 1)[1])
            assert seq > 0 and last_id == f"{stream_id}:{epoch}:{seq}"
            events: list[dict[str, Any]] = []
            async with client.stream("GET", "/api/sessions/past-end-01/events",
                                     headers={"Last-Event-ID": last_id}) as r:
                second, _ = await start_stream(live_server, "past-end-01", "second answer")
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
                        if events[-1]["type"] == "stream_complete":
                            break
    assert [e["stream_id"] for e in events if e["type"] in ("stream_start", "stream_complete")
            ] == [second, second]
    assert events[-1]["markdown"] == "second answer"
