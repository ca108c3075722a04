"""``GET /metrics`` (issue 18): a real server, real WebSocket and SSE streams of the echo
provider, a stop, a resume (exact and gap), an error and a limit; the scrape's counters must
equal what this test itself sent and received, exactly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import WebSocketConnection, open_websocket_url

from streamer.observability.metrics import Buckets, Metrics, Sent, cancel_cause, utf8_len
from tests.conftest import LiveServer, create_session

#: non-ASCII on purpose: bytes are counted as UTF-8, not characters
PROMPT = "Metrics — ünïcode and **bold** text, then a list:\n\n- one\n- two\n"
LONG = "A long answer that the client stops. " * 40
FAST = {"delta_chars": 4, "interval_ms": 2}
SLOW = {"delta_chars": 2, "interval_ms": 20}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server: LiveServer, **headers: str) -> Samples:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= ls)


@dataclass
class Seen:
    """What this test received on one transport."""

    events: int = 0
    bytes: int = 0
    #: chunk events per subscription (stream id, in the order the connection followed)
    chunks: list[int] = field(default_factory=list)

    def gaps(self) -> int:
        """Inter-chunk gaps the server must have observed: one per chunk after the first
        of each subscription (each echo delivery is one chunk)."""
        return sum(max(0, n - 1) for n in self.chunks)


class WS:
    def __init__(self, ws: WebSocketConnection, seen: Seen) -> None:
        self.ws = ws
        self.seen = seen
        #: the highest ``seq`` received, by stream
        self.last_seq: dict[str, int] = {}

    async def next(self) -> dict[str, Any]:
        message = await self.ws.get_message()
        assert isinstance(message, str)
        self.seen.bytes += len(message.encode())
        ev: dict[str, Any] = json.loads(message)
        assert ev["type"] != "heartbeat"
        self.seen.events += 1
        if ev["type"] == "stream_start":
            self.seen.chunks.append(0)
        elif ev["type"] == "chunk":
            self.seen.chunks[-1] += 1
            self.last_seq[ev["stream_id"]] = ev["seq"]
        return ev

    async def until(self, kind: str, stream_id: str | None = None) -> dict[str, Any]:
        while True:
            ev = await self.next()
            if ev["type"] == kind and (stream_id is None or ev.get("stream_id") == stream_id):
                return ev


def start(prompt: str, echo: dict[str, int]) -> str:
    return json.dumps({"type": "start", "prompt": prompt, "provider": "echo", "echo": echo,
                       "pacing": {"mode": "off"}})


async def sse_stream(server: LiveServer, session_id: str, seen: Seen) -> None:
    """One SSE connection: ``connected``, a ``start`` by the control POST, events until its
    ``stream_complete``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        async with client.stream("GET", f"/api/sessions/{session_id}/events") as response:
            buffer = b""
            async for data in response.aiter_bytes():
                seen.bytes += len(data)
                buffer += data
                while b"\n\n" in buffer:
                    raw, buffer = buffer.split(b"\n\n", 1)
                    line = next(x for x in raw.decode().splitlines() if x.startswith("data:"))
                    ev = json.loads(line[5:])
                    seen.events += 1
                    if ev["type"] == "connected":
                        posted = await client.post(
                            f"/api/sessions/{session_id}/control",
                            params={"connection_id": ev["connection_id"]},
                            content=start(PROMPT, FAST),
                            headers={"Content-Type": "application/json"})
                        assert posted.status_code == 202
                    elif ev["type"] == "stream_start":
                        seen.chunks.append(0)
                    elif ev["type"] == "chunk":
                        seen.chunks[-1] += 1
                    elif ev["type"] == "stream_complete":
                        return


@pytest.mark.config(**{"limits.max_sessions_per_identity": 3})
async def test_the_scrape_counts_what_the_test_did(live_server: LiveServer) -> None:
    ws_seen, sse_seen = Seen(), Seen()
    url = live_server.ws_url
    with trio.fail_after(30):
        s1 = await create_session(live_server.base_url, "metrics-ws-01")
        async with open_websocket_url(f"{url}/ws/stream/{s1}") as raw:
            ws = WS(raw, ws_seen)
            epoch = (await ws.next())["epoch"]
            await raw.send_message(start(PROMPT, FAST))
            first = (await ws.until("stream_complete"))["stream_id"]
            await raw.send_message(start(LONG, SLOW))
            stopped = (await ws.until("chunk"))["stream_id"]
            during = await scrape(live_server)  # while the second stream runs
            await raw.send_message(json.dumps({"type": "stop", "stream_id": stopped}))
            await ws.until("stream_complete", stopped)
            await raw.send_message(json.dumps({"type": "bogus"}))  # an error
            assert (await ws.until("error"))["code"] == "invalid_message"
        # a resume with all of the stopped stream (exact: nothing more to send), and one
        # from another epoch (a gap: resume_gap, a snapshot, then the session's later stream)
        async with open_websocket_url(f"{url}/ws/stream/{s1}?stream_id={stopped}"
                                      f"&epoch={epoch}&last_seq={ws.last_seq[stopped] + 1}") as raw:
            assert (await WS(raw, ws_seen).next())["type"] == "connected"
        async with open_websocket_url(f"{url}/ws/stream/{s1}?stream_id={first}"
                                      "&epoch=deadbeef&last_seq=1") as raw:
            ws = WS(raw, ws_seen)
            assert (await ws.until("error"))["code"] == "resume_gap"
            await ws.until("stream_complete", stopped)
        await sse_stream(live_server, await create_session(live_server.base_url,
                                                           "metrics-sse-01"), sse_seen)
        await create_session(live_server.base_url, "metrics-third-01")
        async with httpx.AsyncClient(base_url=live_server.base_url) as client:
            refused = await client.post("/api/sessions", json={"session_id": "metrics-4th-01"})
        assert refused.status_code == 429
        await trio.sleep(0.2)  # the resume connections' ends reach the registry
        after = await scrape(live_server)

    # while the second stream ran: one WebSocket following one running stream
    assert value(during, "streamer_streams", state="running") == 1
    assert total(during, "streamer_connections", transport="websocket") == 1
    assert value(during, "streamer_subscriptions") == 1
    assert value(during, "streamer_streams_finished_total", finish_reason="stop") == 1
    # at the end: exactly what this test did
    assert value(after, "streamer_events_sent_total", transport="websocket") == ws_seen.events
    assert value(after, "streamer_bytes_sent_total", transport="websocket") == ws_seen.bytes
    assert value(after, "streamer_events_sent_total", transport="sse") == sse_seen.events
    assert value(after, "streamer_bytes_sent_total", transport="sse") == sse_seen.bytes
    assert value(after, "streamer_connections_opened_total", transport="websocket") == 3
    assert value(after, "streamer_connections_opened_total", transport="sse") == 1
    assert total(after, "streamer_connections") == 0
    assert value(after, "streamer_streams", state="running") == 0
    assert value(after, "streamer_streams_finished_total", finish_reason="stop") == 2
    assert value(after, "streamer_streams_finished_total", finish_reason="cancelled") == 1
    assert value(after, "streamer_cancellations_total", cause="stop") == 1
    assert value(after, "streamer_resumes_total", outcome="exact") == 1
    assert value(after, "streamer_resumes_total", outcome="gap") == 1
    assert value(after, "streamer_errors_total", code="invalid_message") == 1
    assert value(after, "streamer_errors_total", code="resume_gap") == 1
    assert value(after, "streamer_errors_total", code="rate_limited") == 1
    assert total(after, "streamer_errors_total") == 3
    assert value(after, "streamer_limits_hit_total",
                 limit="limits.max_sessions_per_identity") == 1
    assert total(after, "streamer_limits_hit_total") == 1
    assert value(after, "streamer_time_to_first_token_seconds_count", provider="echo") == 3
    assert value(after, "streamer_stream_duration_seconds_count") == 3
    assert value(after, "streamer_chunk_gap_seconds_count") == ws_seen.gaps() + sse_seen.gaps()
    assert value(after, "streamer_provider_retries_total") == 0
    assert value(after, "streamer_draining") == 0


@pytest.mark.config(**{"server.control_messages_burst": 20,
                       "server.max_control_messages_per_s": 1})
async def test_a_control_flood_counts_the_rate_limit_once_per_refusal(
        live_server: LiveServer) -> None:
    session_id = await create_session(live_server.base_url, "metrics-flood-1")
    refused = 0
    with trio.fail_after(10):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{session_id}") as ws:
            await ws.get_message()  # connected
            for _ in range(25):
                await ws.send_message(json.dumps({"type": "ping", "ts": 1}))
            for _ in range(25):
                ev = json.loads(await ws.get_message())
                refused += ev["type"] == "error" and ev["code"] == "rate_limited"
    samples = await scrape(live_server)
    assert refused == 5
    assert value(samples, "streamer_limits_hit_total",
                 limit="server.max_control_messages_per_s") == refused
    assert value(samples, "streamer_errors_total", code="rate_limited") == refused


@pytest.mark.config(**{"server.heartbeat_interval_s": 0.05})
async def test_ai_sdk_responses_are_counted(live_server: LiveServer) -> None:
    """``POST /api/chat``: every ``data:`` frame an event, every ``: ping`` a heartbeat, the
    body's bytes exactly."""
    body = {"id": "metrics-chat-01", "trigger": "submit-message", "provider": "echo",
            "echo": {"delta_chars": 8, "interval_ms": 120}, "messages": [
                {"id": "m1", "role": "user", "parts": [{"type": "text", "text": PROMPT}]}]}
    received = b""
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client, \
                client.stream("POST", "/api/chat", json=body) as response:
            async for data in response.aiter_bytes():
                received += data
    frames = received.split(b"\n\n")
    samples = await scrape(live_server)
    assert value(samples, "streamer_bytes_sent_total", transport="aisdk") == len(received)
    assert value(samples, "streamer_events_sent_total", transport="aisdk") == sum(
        f.startswith(b"data:") for f in frames)
    pings = sum(f == b": ping" for f in frames)
    assert pings and value(samples, "streamer_heartbeats_sent_total", transport="aisdk") == pings


async def test_metrics_refuse_a_proxied_request_by_default(live_server: LiveServer) -> None:
    """``metrics.access = "loopback"``: a request that came through a proxy (it carries
    ``X-Forwarded-For``) is not a loopback client, whatever its TCP peer."""
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        proxied = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        forwarded = await client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"})
        direct = await client.get("/metrics")
    assert (proxied.status_code, forwarded.status_code, direct.status_code) == (403, 403, 200)
    assert proxied.json()["code"] == "forbidden"
    assert "streamer_events_sent_total" in direct.text


@pytest.mark.config(**{"metrics.enabled": False})
async def test_metrics_can_be_turned_off(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        assert (await client.get("/metrics")).status_code == 404


@pytest.mark.config(**{"metrics.access": "open"})
async def test_open_metrics_answer_a_proxied_request(live_server: LiveServer) -> None:
    samples = await scrape(live_server, **{"X-Forwarded-For": "203.0.113.9"})
    assert value(samples, "streamer_draining") == 0


def test_two_apps_keep_their_own_counts() -> None:
    """Each app has its own ``CollectorRegistry``: counts never mix, nothing is global."""
    one, two = Metrics(), Metrics()
    one.error("forbidden")
    one.sent_by("websocket").event("ü")
    assert b'streamer_errors_total{code="forbidden"} 1.0' in one.exposition()
    assert b"streamer_errors_total{" not in two.exposition()
    assert b'streamer_bytes_sent_total{transport="websocket"} 2.0' in one.exposition()


def test_buckets_are_inclusive_upper_bounds() -> None:
    buckets = Buckets((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 7.0):
        buckets.observe(v)
    assert buckets.cumulative() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert buckets.count == 5 and buckets.total == pytest.approx(8.65)


def test_frame_counts_are_utf8_bytes() -> None:
    sent = Sent()
    sent.event('{"t":"é"}')
    sent.event(b"data: x\n\n")
    sent.heartbeat("{}")
    assert (sent.events, sent.heartbeats, sent.bytes) == (2, 1, 10 + 9 + 2)
    assert utf8_len("€") == 3 and utf8_len("abc") == 3


@pytest.mark.parametrize(("reason", "cause"), [
    ("stop from client", "stop"), ("no subscriber for 30 s", "grace_period"),
    ("server shutdown", "server_shutdown"), ("session deleted", "session_deleted"),
    ("removed from the queue", "queue_remove"), ("something new", "other")])
def test_cancel_reasons_map_to_causes(reason: str, cause: str) -> None:
    assert cancel_cause(reason) == cause


async def test_metrics_behind_auth_need_credentials(nursery: trio.Nursery,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``metrics.access = "auth"``: a token ``[auth]`` accepts, from any address (a proxy's
    headers change nothing); without one, 401."""
    from tests.e2e.test_security import SECRET, _start, bearer, token

    monkeypatch.setenv("STREAMER_JWT_SECRET", SECRET)
    async for server in _start(nursery, **{
            "auth.mode": "jwt", "auth.jwt_audience": "streamer-tests",
            "auth.jwt_issuer": "test-idp", "metrics.access": "auth"}):
        async with server.client() as client:
            anonymous = await client.get("/metrics")
            proxied = await client.get("/metrics", headers={
                **bearer(token("prometheus")), "X-Forwarded-For": "203.0.113.9"})
        assert anonymous.status_code == 401
        assert proxied.status_code == 200 and "streamer_draining 0.0" in proxied.text
