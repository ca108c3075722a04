"""A tested deployment (issue 18, docs/deploy.md): streamer's own TLS (hypercorn's certificate
settings) and the repository's nginx config (``deploy/nginx/streamer.conf``) run by the real
Debian nginx in front of the real server, streamed through over WebSocket, SSE and
``POST /api/chat``, with cuts and exact resumes.

Certificates are made at test time with ``cryptography`` (self-signed, for 127.0.0.1); nginx
runs as a foreground process with its prefix, pid, logs and temp folders in ``tmp_path``, on
free 127.0.0.1 ports.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import os
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    open_websocket_url,
)

from streamer.server import serve
from tests.conftest import LiveServer, make_config, sse_events
from tests.e2e.test_aisdk import serve_upstream, upstream_closed
from tests.faultproxy import fault_proxy
from tests.resume_client import Doc

ROOT = Path(__file__).parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "streamer.conf"
NGINX = "/usr/sbin/nginx"
ANSWERS = ROOT / "tests" / "corpus" / "answers"
#: a few KB of realistic markdown: headings, lists, tables, code
DOCUMENT = "\n\n".join((ANSWERS / name).read_text() for name in (
    "01_python_explanation.md", "02_comparison_table.md"))
#: the public name the repository's config serves (its server_name)
PUBLIC_HOST = "chat.example.com"


# ------------------------------------------------------------------ certificates, ports


@dataclass
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate only (and checks the name)."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(folder: Path) -> Certificate:
    """A self-signed P-256 certificate for 127.0.0.1, localhost and :data:`PUBLIC_HOST`,
    valid for a day (PEM files in ``folder``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamer test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                x509.DNSName(PUBLIC_HOST)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    out = Certificate(folder / "cert.pem", folder / "key.pem")
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    out.key.chmod(0o600)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def start_server(nursery: trio.Nursery, **changes: Any) -> tuple[LiveServer, trio.Event]:
    """The real server in this test's nursery (``changes``: dotted config overrides)."""
    config = make_config(**changes)
    stop = trio.Event()
    binds = await nursery.start(partial(serve, config, shutdown_trigger=stop.wait))
    return LiveServer(binds[0], config), stop


# ------------------------------------------------------------------ nginx


def site_config(upstream_port: int, https_port: int, http_port: int, cert: Certificate) -> str:
    """``deploy/nginx/streamer.conf`` with the test's ports and certificate: each replaced
    line must be there exactly once (the test runs the file as shipped, nothing else)."""
    text = NGINX_CONF.read_text()
    for old, new in (
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
            ("listen 80;", f"listen 127.0.0.1:{http_port};"),
            ("/etc/letsencrypt/live/chat.example.com/fullchain.pem", str(cert.cert)),
            ("/etc/letsencrypt/live/chat.example.com/privkey.pem", str(cert.key))):
        assert text.count(old) == 1, f"deploy/nginx/streamer.conf: {old!r}"
        text = text.replace(old, new)
    return text


def main_config(prefix: Path, connections: int = 512) -> str:
    """What Debian's /etc/nginx/nginx.conf gives a site file, in ``prefix``: one worker
    (``connections`` at once, each proxied one counting twice), logs and temp folders of its
    own, the site included inside ``http {}``."""
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the test's files
    return (f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} info;\n"
            f"events {{ worker_connections {connections}; }}\n"
            f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n"
            f"    include {prefix / 'streamer.conf'};\n}}\n")


@dataclass
class Nginx:
    https_port: int
    http_port: int
    prefix: Path

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")


def prepare_nginx(folder: Path, upstream_port: int, cert: Certificate,
                  site: Callable[[Nginx], str] | None = None,
                  connections: int = 512) -> tuple[Nginx, list[str]]:
    """Write the configs into ``folder``: the server (its free ports) and nginx's command
    (``site``: another site file for those ports than ``deploy/nginx/streamer.conf``)."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is needed: scripts/setup.sh --test installs Debian's nginx-light")
    folder.mkdir(exist_ok=True)
    server = Nginx(free_port(), free_port(), folder)
    (folder / "streamer.conf").write_text(
        site(server) if site is not None else
        site_config(upstream_port, server.https_port, server.http_port, cert))
    (folder / "nginx.conf").write_text(main_config(folder, connections))
    return server, [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"),
                    "-e", str(folder / "error.log"), "-g", "daemon off;"]


@asynccontextmanager
async def nginx(folder: Path, upstream_port: int, cert: Certificate,
                site: Callable[[Nginx], str] | None = None,
                connections: int = 512) -> AsyncIterator[Nginx]:
    """The real nginx with the repository's site config (or ``site``'s), in the foreground;
    stopped (and reaped) when the block ends (``connections``: its worker's limit, the load
    harness's is larger)."""
    server, command = prepare_nginx(folder, upstream_port, cert, site, connections)
    check = await trio.run_process([*command, "-t"], capture_stdout=True,
                                   capture_stderr=True, check=False)
    assert check.returncode == 0, check.stderr.decode()
    async with trio.open_nursery() as nursery:
        process = await nursery.start(partial(trio.run_process, command, check=False))
        try:
            with trio.fail_after(10):
                while True:
                    try:
                        await (await trio.open_tcp_stream("127.0.0.1",
                                                          server.https_port)).aclose()
                        break
                    except OSError:
                        await trio.sleep(0.05)
            yield server
        finally:
            process.terminate()  # SIGTERM: nginx's fast shutdown
            with trio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()


@dataclass
class Deployment:
    """streamer behind the repository's nginx (TLS at nginx)."""

    streamer: LiveServer
    proxy: Nginx
    cert: Certificate

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.proxy.base_url,
                                 verify=self.cert.client_context(), timeout=10, **kwargs)


@pytest.fixture
async def deployment(nursery: trio.Nursery, tmp_path: Path, request: pytest.FixtureRequest
                     ) -> AsyncIterator[Deployment]:
    marker = request.node.get_closest_marker("config")
    cert = make_certificate(tmp_path)
    streamer, stop = await start_server(nursery, **{
        "server.proxy_trusted_hops": 1,
        "security.allowed_hosts": ("127.0.0.1", "localhost", PUBLIC_HOST),
        "streams.grace_period_s": 60.0, **(marker.kwargs if marker else {})})
    port = int(streamer.base_url.rsplit(":", 1)[1])
    async with nginx(tmp_path / "nginx", port, cert) as proxy:
        yield Deployment(streamer, proxy, cert)
    stop.set()


# ------------------------------------------------------------------ clients


async def start_stream(client: httpx.AsyncClient, ws_base: str, ssl_context: ssl.SSLContext,
                       session_id: str, echo: dict[str, Any]) -> tuple[str, str]:
    """Create a session and start an echo answer of :data:`DOCUMENT` from a short-lived
    WebSocket (through nginx); returns ``(stream_id, epoch)``."""
    response = await client.post("/api/sessions", json={"session_id": session_id})
    assert response.status_code == 201, response.text
    async with open_websocket_url(f"{ws_base}/ws/stream/{session_id}",
                                  ssl_context=ssl_context) as ws:
        connected = json.loads(await ws.get_message())
        await ws.send_message(json.dumps({"type": "start", "prompt": DOCUMENT,
                                          "provider": "echo", "echo": echo,
                                          "pacing": {"mode": "off"}}))
        while True:
            ev = json.loads(await ws.get_message())
            if ev["type"] == "stream_start" and not ev.get("queued"):
                return ev["stream_id"], connected["epoch"]


async def ws_follow(base: str, ssl_context: ssl.SSLContext, session_id: str, doc: Doc) -> bool:
    """One WSS connection with the doc's cursor: apply events until ``stream_complete``
    (``True``) or the connection fails (``False``)."""
    url = f"{base.replace('https', 'wss')}/ws/stream/{session_id}{doc.cursor_query()}"
    try:
        async with open_websocket_url(url, ssl_context=ssl_context, connect_timeout=5,
                                      disconnect_timeout=1) as ws:
            while doc.complete is None:
                doc.apply(json.loads(await ws.get_message()))
    except (ConnectionClosed, HandshakeError, OSError, trio.BrokenResourceError,
            trio.TooSlowError, ssl.SSLError):
        pass
    return doc.complete is not None


async def sse_follow(base: str, ssl_context: ssl.SSLContext, session_id: str, doc: Doc) -> bool:
    """One SSE connection over HTTPS (``Last-Event-ID`` = the doc's cursor): as
    :func:`ws_follow`."""
    headers = {"Accept": "text/event-stream"}
    if (last := doc.last_event_id()) is not None:
        headers["Last-Event-ID"] = last
    buffer = ""
    try:
        async with httpx.AsyncClient(base_url=base, verify=ssl_context, timeout=10) as client, \
                client.stream("GET", f"/api/sessions/{session_id}/events",
                              headers=headers) as response:
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer and doc.complete is None:
                    raw, buffer = buffer.split("\n\n", 1)
                    for ev in sse_events(raw + "\n\n"):
                        doc.apply(ev)
                if doc.complete is not None:
                    break
    except (httpx.HTTPError, OSError, trio.BrokenResourceError, ssl.SSLError):
        pass
    return doc.complete is not None


async def render(client: httpx.AsyncClient, markdown: str) -> str:
    return str((await client.post("/api/render", json={"markdown": markdown})).json()["html"])


# ------------------------------------------------------------------ tests: TLS


def test_the_certificate_settings_come_together_or_not_at_all() -> None:
    from streamer.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"server\.certfile and server\.keyfile"):
        load_config(env={"STREAMER_SERVER_CERTFILE": "/srv/cert.pem"})
    with pytest.raises(ConfigError, match="proxy_trusted_hops"):
        load_config(env={"STREAMER_SERVER_PROXY_TRUSTED_HOPS": "-1"})


async def test_streamer_serves_https_and_wss_with_its_own_certificate(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    """hypercorn's ``certfile``/``keyfile`` (``server.certfile``/``keyfile``): the bound
    address is ``https://``, a client that trusts the certificate streams over WSS, plain
    HTTP on the TLS port gets no answer."""
    cert = make_certificate(tmp_path)
    server, stop = await start_server(nursery, **{"server.certfile": str(cert.cert),
                                                  "server.keyfile": str(cert.key)})
    assert server.base_url.startswith("https://127.0.0.1:")
    context = cert.client_context()
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=server.base_url, verify=context) as client:
            assert (await client.get("/healthz")).json()["ok"] is True
            stream_id, epoch = await start_stream(
                client, server.base_url.replace("https", "wss"), context, "tls-session-01",
                {"delta_chars": 16, "interval_ms": 1})
            doc = Doc(stream_id=stream_id, epoch=epoch)
            assert await ws_follow(server.base_url, context, "tls-session-01", doc)
            assert doc.html == doc.complete["html"] == await render(client, DOCUMENT)
        async with httpx.AsyncClient(base_url=server.base_url, verify=True) as untrusting:
            with pytest.raises(httpx.ConnectError):  # not a certificate anyone vouches for
                await untrusting.get("/healthz")
        plain = server.base_url.replace("https", "http")
        async with httpx.AsyncClient(base_url=plain) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get("/healthz")
    stop.set()


# ------------------------------------------------------------------ tests: nginx


def test_the_nginx_timeouts_outlast_the_heartbeat() -> None:
    """A quiet stream sends something every ``server.heartbeat_interval_s``: nginx must wait
    longer than that for the upstream before it gives a stream up."""
    from streamer.config import ServerConfig

    text = NGINX_CONF.read_text()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        line = next(line for line in text.splitlines() if line.strip().startswith(directive))
        seconds = int(line.split()[1].rstrip(";").rstrip("s"))
        assert seconds > 2 * ServerConfig().heartbeat_interval_s, line
    assert "proxy_buffering off;" in text and "proxy_http_version 1.1;" in text
    assert "proxy_set_header Host $http_host;" in text  # the port too: same-origin needs it


@pytest.mark.config(**{"server.heartbeat_interval_s": 0.2})
async def test_events_pass_nginx_as_they_come(deployment: Deployment) -> None:
    """``proxy_buffering off``: an SSE answer of 8 deltas 300 ms apart arrives over 2 s,
    not in one piece at the end; the quiet gaps carry ``: ping`` comments; the redirect
    server sends plain HTTP to HTTPS."""
    arrivals: list[float] = []
    body = ""
    async with deployment.client() as client:
        response = await client.post("/api/sessions", json={"session_id": "nginx-pace-01"})
        assert response.status_code == 201
        text = "x" * 32
        with trio.fail_after(30):
            async with client.stream("GET", "/api/sessions/nginx-pace-01/events") as events:
                assert events.headers["content-type"].startswith("text/event-stream")
                started = False
                async for piece in events.aiter_text():
                    body += piece
                    if not started and "connected" in body:
                        started = True
                        control = await client.post(
                            "/api/sessions/nginx-pace-01/control", json={
                                "type": "start", "prompt": text, "provider": "echo",
                                "echo": {"delta_chars": 4, "interval_ms": 300},
                                "pacing": {"mode": "off"}})
                        assert control.status_code == 202, control.text
                    if '"chunk"' in piece:
                        arrivals.append(trio.current_time())
                    if "stream_complete" in body:
                        break
    assert arrivals[-1] - arrivals[0] > 1.0, arrivals  # delivered as generated
    assert ": ping" in body
    async with httpx.AsyncClient() as plain:
        redirect = await plain.get(f"http://127.0.0.1:{deployment.proxy.http_port}/x",
                                   headers={"Host": PUBLIC_HOST})
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"https://{PUBLIC_HOST}/x"


async def test_websocket_and_sse_through_nginx_resume_exactly_after_cuts(
        deployment: Deployment) -> None:
    """Each transport: an answer of a few KB followed through a TCP proxy in front of nginx
    that cuts the connection (TLS record and all) at random byte offsets, reconnecting with
    the cursor each time: no ``seq`` twice, no gap, no snapshot, final == one-shot render."""
    seed = int(os.environ.get("STREAMER_FAULT_SEED", random.randrange(1 << 30)))
    print(f"fault injection seed: {seed}")
    rng = random.Random(seed)
    context = deployment.cert.client_context()
    cuts = {"websocket": 0, "sse": 0}
    async with deployment.client() as client:
        expected = await render(client, DOCUMENT)
        with trio.fail_after(120):
            async with fault_proxy(deployment.proxy.https_port) as cutter:
                base = f"https://127.0.0.1:{cutter.port}"
                for transport, follow in (("websocket", ws_follow), ("sse", sse_follow)):
                    session_id = f"nginx-cut-{transport}"
                    stream_id, epoch = await start_stream(
                        client, deployment.proxy.base_url.replace("https", "wss"), context,
                        session_id, {"delta_chars": 8, "interval_ms": 2})
                    doc = Doc(stream_id=stream_id, epoch=epoch)
                    for _attempt in range(200):
                        before = cutter.cut_count
                        cutter.cuts = [rng.randint(1, 12_000)]
                        done = await follow(base, context, session_id, doc)
                        cuts[transport] += cutter.cut_count - before
                        if done:
                            break
                    assert doc.complete is not None, transport
                    assert doc.snapshots == 0 and not doc.errors, transport  # all exact
                    assert doc.html == doc.complete["html"] == expected, transport
    print(f"cuts: {cuts}")
    assert cuts["websocket"] >= 3 and cuts["sse"] >= 3


async def test_nginx_passes_the_host_the_origin_and_the_client_address(
        deployment: Deployment, caplog: pytest.LogCaptureFixture) -> None:
    """With ``proxy_trusted_hops = 1``: the public name's own page (``Origin:
    https://chat.example.com``, ``Host: chat.example.com`` with no port: the scheme from
    ``X-Forwarded-Proto`` decides its port) may act; a Host not allowed and a foreign Origin
    are refused (a WebSocket at the upgrade); the access log names the address nginx saw
    (127.0.0.2 here), not nginx's, and not what the client wrote into X-Forwarded-For."""
    own = {"Host": PUBLIC_HOST, "Origin": f"https://{PUBLIC_HOST}"}
    caplog.set_level(logging.INFO, logger="streamer.access")
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2",
                                         verify=deployment.cert.client_context())
    async with deployment.client(transport=transport) as client:
        created = await client.post("/api/sessions", json={"session_id": "nginx-host-01"},
                                    headers={**own, "X-Forwarded-For": "203.0.113.9"})
        assert created.status_code == 201, created.text
        foreign_host = await client.post("/api/sessions", headers={
            "Host": "evil.example", "Origin": "https://evil.example"})
        assert foreign_host.status_code == 403
        foreign_origin = await client.post("/api/sessions", headers={
            "Host": PUBLIC_HOST, "Origin": "https://evil.example"})
        assert foreign_origin.status_code == 403
    lines = [r for r in caplog.records if r.name == "streamer.access"
             and "/api/sessions" in r.getMessage()]
    assert lines and all(getattr(r, "client", None) == "127.0.0.2" for r in lines), \
        [r.getMessage() for r in lines]
    context = deployment.cert.client_context()
    ws = f"{deployment.proxy.base_url.replace('https', 'wss')}/ws/stream/nginx-host-01"
    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(ws, ssl_context=context,
                                      extra_headers=[(b"Origin", b"https://evil.example")]):
            pass
    assert refused.value.status_code == 403
    async with open_websocket_url(ws, ssl_context=context, extra_headers=[
            (b"Origin", f"https://127.0.0.1:{deployment.proxy.https_port}".encode())]) as sock:
        assert json.loads(await sock.get_message())["type"] == "connected"


async def test_an_ai_sdk_answer_streams_through_nginx(deployment: Deployment) -> None:
    """``POST /api/chat`` through nginx: the UI message stream arrives whole, ``[DONE]``
    last."""
    body = {"id": "nginx-chat-01", "messages": [
        {"id": "m1", "role": "user", "parts": [{"type": "text", "text": DOCUMENT}]}],
        "provider": "echo", "echo": {"delta_chars": 64, "interval_ms": 1}}
    async with deployment.client() as client:
        response = await client.post("/api/chat", json=body)
    assert response.status_code == 200
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    lines = [line for line in response.text.split("\n") if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == DOCUMENT



async def test_closing_a_chat_response_at_nginx_stops_the_model_at_once(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    """The AI SDK's ``stop()`` behind nginx: the client closes its ``POST /api/chat`` at
    nginx, nginx closes its upstream request (``proxy_ignore_client_abort`` is off), streamer
    cancels the answer, and the model's HTTP request (a fake OpenAI-compatible server) ends
    within 100 ms of the client's close: the fastest of 3 (1-6 ms on a quiet machine; a
    loaded one delays single closes past 100 ms), each under 1 s, against the 30 s grace
    period a disconnect would otherwise wait."""
    # "tok0 tok1 ..." every 20 ms until its client leaves
    upstream = await serve_upstream(nursery, endless=True)
    cert = make_certificate(tmp_path)
    streamer, stop = await start_server(nursery, **{
        "server.proxy_trusted_hops": 1,
        "providers.openai.base_url": f"http://127.0.0.1:{upstream.port}/v1",
        "providers.openai.model": "gpt-test", "providers.openai.api_key_env": "STREAMER_TEST_KEY"})
    delays = []
    async with nginx(tmp_path / "nginx", int(streamer.base_url.rsplit(":", 1)[1]),
                     cert) as proxy:
        deployment = Deployment(streamer, proxy, cert)
        for i in range(3):
            upstream.closed_at = None
            closed_at = await read_then_close_chat(deployment, f"nginx-chat-stop{i}")
            delays.append(await upstream_closed(upstream) - closed_at)
    print(f"model request closed {', '.join(f'{1000 * d:.1f}' for d in delays)} ms after "
          "the client closed at nginx")
    assert min(delays) < 0.1 and max(delays) < 1.0
    stop.set()


async def read_then_close_chat(deployment: Deployment, chat_id: str) -> float:
    """Start an answer of the fake upstream through nginx, read three text deltas, close the
    response; returns when (``trio.current_time``) it was closed."""
    body = {"id": chat_id, "provider": "openai", "messages": [
        {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "go on"}]}]}
    with trio.fail_after(30):
        async with deployment.client() as client:
            async with client.stream("POST", "/api/chat", json=body) as response:
                seen = ""
                async for text in response.aiter_text():
                    seen += text
                    if seen.count('"text-delta"') >= 3:
                        break
            return trio.current_time()  # the response (its connection) is closed
