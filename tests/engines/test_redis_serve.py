"""The redis engine wired into real servers (issue 17): two ``streamer serve --engine redis``
processes on different 127.0.0.1 ports share one real ``redis-server`` (persistence off). A
client that starts a stream on A, is cut off and resumes on B with its cursor (WebSocket or
SSE ``Last-Event-ID``) gets exactly the rest; clients spread over A and B all end equal to the
one-shot render; ``FLUSHALL`` mid-stream is answered with ``resume_gap`` + ``snapshot``;
sessions keep their owner across processes; Redis down at start-up refuses to start."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from streamer.engines.redis_log import connect
from streamer.errors import Forbidden, SessionNotFound
from streamer.runtime.registry import Registry
from streamer.security.identity import Identity
from tests.conftest import ServerProcess, create_session, make_config, serving
from tests.e2e.test_deploy import Certificate, Nginx, make_certificate, nginx
from tests.engines.test_redis_log import RedisServer, running_redis
from tests.resume_client import Doc, sse_follow, ws_follow

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = ROOT / "tests" / "corpus" / "answers"
#: the documented nginx site for several processes
CLUSTER_CONF = ROOT / "deploy" / "nginx" / "streamer-redis.conf"
DOCUMENT = "\n\n".join((ANSWERS / name).read_text() for name in (
    "01_python_explanation.md", "02_comparison_table.md"))
#: the echo provider's schedule: slow enough that clients join and resume mid-stream, and
#: that a stream outlives the grace period after a cut (~460 deltas: about 5.5 s)
ECHO_SLOW = {"delta_chars": 6, "interval_ms": 12}
#: the servers' ``streams.grace_period_s``
GRACE_PERIOD_S = 3
#: every wait of a test is bounded by this (s)
BOUND_S = 60.0


#: one redis-server for the module's servers
redis_server = pytest.fixture(running_redis, scope="module", name="redis_server")


def serve_env(tmp: Path, name: str) -> dict[str, str]:
    return {**os.environ, "STREAMER_SERVER_DRAIN_TIMEOUT_S": "2",
            "STREAMER_PERSISTENCE_DATABASE_PATH": str(tmp / f"{name}.db"),
            "STREAMER_POLICY_PROVIDERS": "echo",
            "STREAMER_LIMITS_STREAMS_PER_MINUTE": "0",
            # shorter than what is left of a stream after a cut: the generating process
            # keeps a stream whose clients all moved to the other one only if it sees them
            "STREAMER_STREAMS_GRACE_PERIOD_S": str(GRACE_PERIOD_S)}


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Processes A and B: ``streamer serve --engine redis`` on two free ports."""
    tmp = tmp_path_factory.mktemp("pair")
    command = [sys.executable, "-m", "streamer", "serve", "--port", "0", "--engine", "redis",
               "--redis-url", redis_server.url]
    with ExitStack() as stack:
        a = stack.enter_context(serving(command, serve_env(tmp, "a")))
        b = stack.enter_context(serving(command, serve_env(tmp, "b")))
        assert a.base_url != b.base_url
        yield a, b


def ws(server: ServerProcess) -> str:
    return "ws" + server.base_url[4:]


async def render(server: ServerProcess, markdown: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        return str((await client.post("/api/render", json={"markdown": markdown})).json()["html"])


async def start_and_cut(ws_base: str, session_id: str, chunks: int,
                        ssl_context: ssl.SSLContext | None = None) -> Doc:
    """Start an echo stream of :data:`DOCUMENT` over a WebSocket to ``ws_base``, apply events
    until ``chunks`` chunks arrived, then drop the connection: the client's copy."""
    doc = Doc()
    async with open_websocket_url(f"{ws_base}/ws/stream/{session_id}",
                                  ssl_context=ssl_context) as conn:
        await conn.send_message(json.dumps({
            "type": "start", "prompt": DOCUMENT, "provider": "echo", "echo": ECHO_SLOW,
            "pacing": {"mode": "off"}}))
        seen = 0
        while seen < chunks:
            ev = json.loads(await conn.get_message())
            if ev["type"] == "connected":
                continue
            doc.apply(ev)
            seen += ev["type"] == "chunk"
    assert doc.complete is None, "the stream ended before the cut: make ECHO_SLOW slower"
    return doc


async def test_a_client_cut_off_on_a_resumes_exactly_on_b_over_both_transports(
        pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    expected = await render(a, DOCUMENT)
    with trio.fail_after(BOUND_S):
        await create_session(a.base_url, "cross-resume-1")
        first = await start_and_cut(ws(a), "cross-resume-1", 10)
        assert first.stream_id is not None and first.epoch is not None and first.last_seq > 0
        # a second client of the same stream, cut at another point, comes back over SSE
        second = Doc(stream_id=first.stream_id, epoch=first.epoch, last_seq=first.last_seq,
                     blocks=list(first.blocks))
        assert await ws_follow(ws(b), "cross-resume-1", first)
        assert await sse_follow(b.base_url, "cross-resume-1", second)
    for doc in (first, second):
        assert doc.complete is not None and doc.complete["finish_reason"] == "stop"
        assert not doc.errors and doc.snapshots == 0  # exact: nothing lost, nothing twice
        assert doc.html == doc.complete["html"] == expected


async def test_clients_spread_over_both_processes_all_end_equal(
        pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    expected = await render(a, DOCUMENT)
    docs: list[Doc] = []
    with trio.fail_after(BOUND_S):
        await create_session(a.base_url, "cross-spread-1")
        starter = await start_and_cut(ws(a), "cross-spread-1", 3)
        async with trio.open_nursery() as nursery:
            for server in (a, b, a, b):
                for follow in (ws_follow, sse_follow):
                    doc = Doc()  # a new tab: joins the running stream (snapshot, then live)
                    docs.append(doc)
                    url = ws(server) if follow is ws_follow else server.base_url
                    nursery.start_soon(follow, url, "cross-spread-1", doc)
            nursery.start_soon(ws_follow, ws(b), "cross-spread-1", starter)
    for doc in [starter, *docs]:
        assert doc.complete is not None, doc
        assert doc.stream_id == starter.stream_id and not doc.errors
        assert doc.html == doc.complete["html"] == expected
    assert starter.snapshots == 0


async def test_flushall_mid_stream_is_a_resume_gap_and_a_snapshot(
        pair: tuple[ServerProcess, ServerProcess], redis_server: RedisServer) -> None:
    a, b = pair
    expected = await render(a, DOCUMENT)
    with trio.fail_after(BOUND_S):
        await create_session(a.base_url, "cross-flush-1")
        doc = await start_and_cut(ws(a), "cross-flush-1", 10)
        # a follower on B mirrors the stream before the flush, and goes on after it
        watcher = Doc()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws_follow, ws(b), "cross-flush-1", watcher)
            while watcher.last_seq <= doc.last_seq:  # noqa: ASYNC110 - another task's copy
                await trio.sleep(0.01)
            async with connect(redis_server.url) as redis:
                await redis.flushall()
                # A republishes the stream under a new epoch at its next entry
                meta = f"streamer:meta:{doc.stream_id}"
                while not await redis.exists([meta]):  # noqa: ASYNC110 - another process
                    await trio.sleep(0.01)
            assert await ws_follow(ws(b), "cross-flush-1", doc)
    assert [e["code"] for e in doc.errors] == ["resume_gap"] and doc.snapshots == 1
    assert doc.html == doc.complete["html"] == expected
    # the follower on B was re-followed from its cursor: the same gap, then live
    assert [e["code"] for e in watcher.errors] == ["resume_gap"] and watcher.snapshots == 2
    assert watcher.epoch == doc.epoch
    assert watcher.html == watcher.complete["html"] == expected


async def test_sessions_keep_their_owner_across_processes(redis_server: RedisServer) -> None:
    """A session made on one process opens on another for its owner only, with the identity
    it was created with (a session id is not a credential)."""
    config = make_config(**{"engine.kind": "redis", "engine.redis_url": redis_server.url,
                            "engine.key_prefix": "own:"})
    alice = Identity("alice", "api_key", {"max_tokens": 50}, "alice-key-1")
    bob = Identity("bob", "api_key")
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as nursery:
            first, second = Registry(config), Registry(config)
            first.bind(nursery)
            second.bind(nursery)
            made, created = await first.create_session(alice)
            chosen, _ = await first.create_session(alice, "alice-chat-01")
            assert created
            with pytest.raises(Forbidden):
                await second.find_session(bob, made.session_id)
            with pytest.raises(SessionNotFound):  # bob's own namespace: no such session
                await second.find_session(bob, "alice-chat-01")
            other_credential = Identity("alice", "api_key", {}, "alice-key-2")
            found = await second.find_session(other_credential, made.session_id)
            assert found.owner == alice and found.key == made.key
            assert (await second.find_session(alice, "alice-chat-01")).key == chosen.key
            nursery.cancel_scope.cancel()


def test_serve_refuses_to_start_when_redis_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "streamer", "serve", "--port", "0", "--engine", "redis",
         "--redis-url", f"redis://:secret@127.0.0.1:{port}/0"],
        env=serve_env(tmp_path, "down"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"redis at 127.0.0.1:{port}/0 does not answer" in result.stderr
    assert "secret" not in result.stderr and "serving on" not in result.stdout


def port_of(server: ServerProcess) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def cluster_site(upstreams: tuple[int, int], cert: Certificate) -> Callable[[Nginx], str]:
    """``deploy/nginx/streamer-redis.conf`` with the test's ports, log and certificate: each
    replaced line must be there exactly once (the test runs the file as shipped)."""
    def site(proxy: Nginx) -> str:
        text = CLUSTER_CONF.read_text()
        for old, new in (
                ("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstreams[0]};"),
                ("server 127.0.0.1:8002;", f"server 127.0.0.1:{upstreams[1]};"),
                ("listen 443 ssl http2;", f"listen 127.0.0.1:{proxy.https_port} ssl http2;"),
                ("listen 80;", f"listen 127.0.0.1:{proxy.http_port};"),
                ("/etc/letsencrypt/live/chat.example.com/fullchain.pem", str(cert.cert)),
                ("/etc/letsencrypt/live/chat.example.com/privkey.pem", str(cert.key)),
                ("/var/log/nginx/streamer-upstreams.log", str(proxy.prefix / "upstreams.log"))):
            assert text.count(old) == 1, f"deploy/nginx/streamer-redis.conf: {old!r}"
            text = text.replace(old, new)
        return text
    return site


async def test_nginx_spreads_websocket_and_sse_over_both_processes_without_stickiness(
        pair: tuple[ServerProcess, ServerProcess], tmp_path: Path) -> None:
    """The documented nginx site in front of A and B (round robin, no sticky sessions): a
    client cut off resumes exactly over WebSocket and SSE wherever nginx sends it, late
    joiners end equal, and both processes served the session's connections."""
    a, b = pair
    cert = make_certificate(tmp_path)
    tls = cert.client_context()
    expected = await render(a, DOCUMENT)
    sid = "nginx-cluster-1"
    async with nginx(tmp_path / "nginx", 0, cert,
                     site=cluster_site((port_of(a), port_of(b)), cert)) as proxy:
        base, wss = proxy.base_url, "wss" + proxy.base_url[5:]
        with trio.fail_after(BOUND_S):
            async with httpx.AsyncClient(base_url=base, verify=tls) as client:
                created = await client.post("/api/sessions", json={"session_id": sid})
                assert created.status_code == 201, created.text
            first = await start_and_cut(wss, sid, 10, tls)
            second = Doc(stream_id=first.stream_id, epoch=first.epoch,
                         last_seq=first.last_seq, blocks=list(first.blocks))
            joiners = [Doc() for _ in range(4)]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws_follow, wss, sid, first, tls)
                nursery.start_soon(sse_follow, base, sid, second, tls)
                for index, doc in enumerate(joiners):
                    if index % 2:
                        nursery.start_soon(ws_follow, wss, sid, doc, tls)
                    else:
                        nursery.start_soon(sse_follow, base, sid, doc, tls)
        log = (proxy.prefix / "upstreams.log").read_text()
    for doc in (first, second):
        assert doc.complete is not None and not doc.errors and doc.snapshots == 0
    for doc in (first, second, *joiners):
        assert doc.html == doc.complete["html"] == expected
    served = {line.rsplit(" ", 1)[-1] for line in log.splitlines()
              if f"/ws/stream/{sid}" in line or f"/api/sessions/{sid}/events" in line}
    assert served == {f"127.0.0.1:{port_of(a)}", f"127.0.0.1:{port_of(b)}"}, log
