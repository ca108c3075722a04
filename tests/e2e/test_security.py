"""The trust boundary against a live server (issue 14): identity, ownership, origins, hosts,
CSRF, over REST, SSE, WebSocket and ``/api/chat``. Each refusal is checked with its code."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from streamer.security.apikeys import hash_key, key_entry, new_key
from streamer.server import serve
from tests.conftest import make_config

SECRET = "s" * 48
AUDIENCE, ISSUER = "streamer-tests", "test-idp"
ALLOWED_ORIGIN = "http://allowed.example"
EVIL_ORIGIN = "https://evil.example"
ECHO = {"delta_chars": 4, "interval_ms": 0}


def token(sub: str = "alice", **claims: Any) -> str:
    body = {"sub": sub, "aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 600,
            **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, "HS256")


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@dataclass
class Server:
    base_url: str

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url[4:]

    def client(self, tok: str | None = None, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10,
                                 headers={**(bearer(tok) if tok else {}), **headers})


async def _start(nursery: trio.Nursery, **changes: Any) -> AsyncIterator[Server]:
    stop = trio.Event()
    config = make_config(**changes)
    binds = await nursery.start(partial(serve, config, shutdown_trigger=stop.wait))
    yield Server(binds[0])
    stop.set()


@pytest.fixture
async def jwt_server(nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
                     ) -> AsyncIterator[Server]:
    monkeypatch.setenv("STREAMER_JWT_SECRET", SECRET)
    async for server in _start(nursery, **{
            "auth.mode": "jwt", "auth.jwt_audience": AUDIENCE, "auth.jwt_issuer": ISSUER,
            "auth.ws_auth_timeout_s": 0.5, "security.allowed_origins": (ALLOWED_ORIGIN,),
            "policy.providers": ("echo",), "policy.models": ("echo:*",)}):
        yield server


@dataclass
class Keys:
    path: Path
    alice: str
    revoked: str

    def revoke_alice(self) -> None:
        text = self.path.read_text().replace('subject = "alice"',
                                              'subject = "alice"\nrevoked = true')
        self.path.write_text(text)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    alice, revoked = new_key(), new_key()
    path = tmp_path / "keys.toml"
    path.write_text(key_entry(alice, "alice", "alice-1")
                    + key_entry(revoked, "mallory", "mallory-1").replace(
                        'subject = "mallory"', 'subject = "mallory"\nrevoked = true'))
    assert hash_key(alice) in path.read_text() and alice not in path.read_text()
    return Keys(path, alice, revoked)


@pytest.fixture
async def key_server(nursery: trio.Nursery, keys: Keys) -> AsyncIterator[Server]:
    async for server in _start(nursery, **{
            "auth.mode": "api_key", "auth.api_keys_file": str(keys.path),
            "policy.providers": ("echo",)}):
        yield server


async def ws_events(server: Server, path: str, *, subprotocols: list[str] | None = None,
                    headers: list[tuple[str, str]] | None = None,
                    send: list[dict[str, Any]] | None = None, until: str = "connected"
                    ) -> tuple[list[dict[str, Any]], int | None]:
    """Events received until ``until`` or the close; ``(events, close code or None)``."""
    events: list[dict[str, Any]] = []
    with trio.fail_after(10):
        async with open_websocket_url(server.ws_url + path, subprotocols=subprotocols,
                                      extra_headers=headers) as ws:
            for message in send or []:
                await ws.send_message(json.dumps(message))
            try:
                while True:
                    events.append(json.loads(await ws.get_message()))
                    if events[-1]["type"] == until:
                        return events, None
            except ConnectionClosed as closed:
                return events, closed.reason.code
    raise AssertionError("unreachable")


def start(prompt: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"type": "start", "prompt": prompt, "provider": "echo", "echo": ECHO,
            "pacing": {"mode": "off"}, **extra}


def chat(session_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}],
            "provider": "echo", **extra}
    return {**body, "id": session_id} if session_id else body


# ---------------------------------------------------------------- identity


@pytest.mark.parametrize(("make", "message"), [
    (lambda: None, "missing credentials"),
    (lambda: token(exp=int(time.time()) - 3600), "token expired"),
    (lambda: token(aud="another-api"), "wrong audience"),
    (lambda: token(iss="another-idp"), "wrong issuer"),
    (lambda: jwt.encode({"sub": "alice", "aud": AUDIENCE, "iss": ISSUER,
                         "exp": int(time.time()) + 600}, "x" * 48, "HS256"), "bad signature"),
    (lambda: "not.a.jwt", "malformed token"),
], ids=["missing", "expired", "audience", "issuer", "signature", "malformed"])
async def test_bad_credentials_are_refused_on_every_transport(
        jwt_server: Server, make: Callable[[], str | None], message: str) -> None:
    tok = make()  # made now: a token made at collection time could expire before its test
    good = await jwt_server.client(token()).post("/api/sessions")
    sid = good.json()["session_id"]
    async with jwt_server.client(tok) as client:
        for response in (await client.post("/api/sessions"),
                         await client.get(f"/api/sessions/{sid}/events"),
                         await client.get(f"/api/sessions/{sid}/messages"),
                         await client.post(f"/api/sessions/{sid}/complete", json=start()),
                         await client.post("/api/chat", json=chat())):
            assert response.status_code == 401, response.text
            body = response.json()
            assert body["code"] == "unauthorized" and message in body["message"]
    # WebSocket: the token as a subprotocol, or as the first message
    offered = ["streamer", f"bearer.{tok}"] if tok else None
    events, code = await ws_events(jwt_server, f"/ws/stream/{sid}", subprotocols=offered)
    assert code == 1008 and events[-1]["code"] == "unauthorized"
    assert message in events[-1]["message"]
    if tok is not None:
        events, code = await ws_events(jwt_server, f"/ws/stream/{sid}",
                                       send=[{"type": "auth", "token": tok}])
        assert code == 1008 and message in events[-1]["message"]


async def test_a_websocket_proves_itself_by_subprotocol_header_or_first_message(
        jwt_server: Server) -> None:
    sid = (await jwt_server.client(token()).post("/api/sessions")).json()["session_id"]
    path = f"/ws/stream/{sid}"
    with trio.fail_after(10):
        async with open_websocket_url(jwt_server.ws_url + path,
                                      subprotocols=["streamer", f"bearer.{token()}"]) as ws:
            assert ws.subprotocol == "streamer"  # never the token echoed back
            assert json.loads(await ws.get_message())["type"] == "connected"
    events, code = await ws_events(jwt_server, path,
                                   headers=[("Authorization", f"Bearer {token()}")])
    assert code is None and events[-1]["type"] == "connected"
    events, code = await ws_events(jwt_server, path, send=[{"type": "auth", "token": token()},
                                                           start()], until="stream_complete")
    assert code is None and events[-1]["html"] == "<p>hello</p>\n"
    # nothing within auth.ws_auth_timeout_s, or a first message of another kind
    events, code = await ws_events(jwt_server, path)
    assert code == 1008 and events[-1]["code"] == "unauthorized"
    events, code = await ws_events(jwt_server, path, send=[start()])
    assert code == 1008 and events[-1]["code"] == "unauthorized"


async def test_revoked_and_unknown_api_keys_are_refused_and_revocation_needs_no_restart(
        key_server: Server, keys: Keys) -> None:
    async with key_server.client(keys.alice) as alice:
        created = await alice.post("/api/sessions")
        assert created.status_code == 201
        sid = created.json()["session_id"]
        done = await alice.post(f"/api/sessions/{sid}/complete", json=start())
        assert done.json()["html"] == "<p>hello</p>\n"
    for tok, message in ((keys.revoked, "revoked API key"), (new_key(), "unknown API key")):
        async with key_server.client(tok) as client:
            for response in (await client.post("/api/sessions"),
                             await client.get(f"/api/sessions/{sid}/events"),
                             await client.post("/api/chat", json=chat())):
                assert response.status_code == 401
                assert response.json()["message"] == message
        events, code = await ws_events(key_server, f"/ws/stream/{sid}",
                                       subprotocols=["streamer", f"bearer.{tok}"])
        assert code == 1008 and events[-1]["message"] == message
    keys.revoke_alice()
    with trio.fail_after(10):
        while True:  # the file is re-read within a second of the change
            response = await key_server.client(keys.alice).get(f"/api/sessions/{sid}")
            if response.status_code == 401:
                break
            await trio.sleep(0.2)
    assert response.json()["message"] == "revoked API key"


# ---------------------------------------------------------------- ownership


async def test_another_identity_can_neither_read_nor_steer_nor_delete_a_session(
        jwt_server: Server) -> None:
    alice, bob = jwt_server.client(token("alice")), jwt_server.client(token("bob"))
    sid = (await alice.post("/api/sessions")).json()["session_id"]
    assert sid.startswith("sess_") and len(sid) >= 5 + 22  # 128 random bits
    done = (await alice.post(f"/api/sessions/{sid}/complete", json=start("secret"))).json()
    stream_id = done["stream_id"]
    refused = [
        await bob.get(f"/api/sessions/{sid}"),
        await bob.get(f"/api/sessions/{sid}/messages"),
        await bob.get(f"/api/sessions/{sid}/events"),
        await bob.post(f"/api/sessions/{sid}/control", json={"type": "stop"}),
        await bob.post(f"/api/sessions/{sid}/control", json=start("mine now")),
        await bob.post(f"/api/sessions/{sid}/complete", json=start("mine now")),
        await bob.get(f"/api/streams/{stream_id}/trace"),
        await bob.delete(f"/api/sessions/{sid}"),
        await bob.post("/api/sessions", json={"session_id": sid}),
        await bob.post("/api/chat", json=chat(sid)),
    ]
    for response in refused:
        assert response.status_code == 403, response.request.url
        assert response.json()["code"] == "forbidden" and "secret" not in response.text
    for path in (f"/ws/stream/{sid}", f"/ws/stream/{sid}?stream_id={stream_id}&last_seq=0"):
        events, code = await ws_events(jwt_server, path,
                                       subprotocols=["streamer", f"bearer.{token('bob')}"])
        assert code == 1008 and events[-1]["code"] == "forbidden"
    # bob's own session cannot reach alice's stream either (resume and stop name it)
    own = (await bob.post("/api/sessions")).json()["session_id"]
    errors = []
    with trio.fail_after(10):
        async with open_websocket_url(
                f"{jwt_server.ws_url}/ws/stream/{own}?stream_id={stream_id}&epoch=x&last_seq=0",
                subprotocols=["streamer", f"bearer.{token('bob')}"]) as ws:
            await ws.send_message(json.dumps({"type": "stop", "stream_id": stream_id}))
            while len(errors) < 2:  # the resume's answer and the stop's, in either order
                ev = json.loads(await ws.get_message())
                if ev["type"] == "error":
                    errors.append(ev["code"])
    assert errors == ["stream_not_found"] * 2
    # alice still has everything
    messages = (await alice.get(f"/api/sessions/{sid}/messages")).json()["messages"]
    assert [m["markdown"] for m in messages] == ["secret", "secret"]
    assert (await alice.get(f"/api/streams/{stream_id}/trace")).status_code == 200
    assert (await alice.delete(f"/api/sessions/{sid}")).status_code == 204


async def test_client_chosen_ids_are_namespaced_and_reads_never_create(
        jwt_server: Server) -> None:
    alice, bob = jwt_server.client(token("alice")), jwt_server.client(token("bob"))
    for client in (alice, bob):
        assert (await client.get("/api/sessions/chat-0001/messages")).status_code == 404
        assert (await client.get("/api/sessions/chat-0001/events")).status_code == 404
    # bob pre-seeds "chat-0001": alice's own "chat-0001" is another session
    created = await bob.post("/api/sessions", json={"session_id": "chat-0001"})
    assert created.status_code == 201
    await bob.post("/api/sessions/chat-0001/complete", json=start("Log in again"))
    created = await alice.post("/api/sessions", json={"session_id": "chat-0001"})
    assert created.status_code == 201 and created.json()["session_id"] == "chat-0001"
    assert (await alice.post("/api/sessions", json={"session_id": "chat-0001"})
            ).status_code == 200
    assert (await alice.get("/api/sessions/chat-0001/messages")).json()["messages"] == []
    taken = await alice.post("/api/sessions", json={"session_id": "sess_madeup00000"})
    assert taken.status_code == 400 and taken.json()["code"] == "invalid_message"


# ---------------------------------------------------------------- origins and hosts


async def test_a_foreign_origin_gets_no_socket_and_no_answer(jwt_server: Server) -> None:
    alice = jwt_server.client(token())
    sid = (await alice.post("/api/sessions")).json()["session_id"]
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"{jwt_server.ws_url}/ws/stream/{sid}",
                                      subprotocols=["streamer", f"bearer.{token()}"],
                                      extra_headers=[("Origin", EVIL_ORIGIN)]):
            pass
    assert rejected.value.status_code == 403
    async with jwt_server.client(token(), Origin=EVIL_ORIGIN) as evil:
        for response in (await evil.post("/api/sessions"),
                         await evil.get(f"/api/sessions/{sid}/events"),
                         await evil.post(f"/api/sessions/{sid}/complete", json=start()),
                         await evil.post("/api/chat", json=chat())):
            assert response.status_code == 403 and response.json()["code"] == "forbidden"
            assert "access-control-allow-origin" not in response.headers
    # the allowed origin: CORS preflight answered, requests work, the socket opens
    async with jwt_server.client(Origin=ALLOWED_ORIGIN) as page:
        preflight = await page.options("/api/sessions", headers={
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        created = await page.post("/api/sessions", headers=bearer(token()))
        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    events, code = await ws_events(jwt_server, f"/ws/stream/{sid}",
                                   subprotocols=["streamer", f"bearer.{token()}"],
                                   headers=[("Origin", ALLOWED_ORIGIN)])
    assert code is None and events[-1]["type"] == "connected"


async def test_a_cross_site_plain_form_post_runs_nothing(jwt_server: Server) -> None:
    sid = (await jwt_server.client(token()).post("/api/sessions")).json()["session_id"]
    body = json.dumps(start())
    async with jwt_server.client(token(), Origin=EVIL_ORIGIN) as evil:
        for path in (f"/api/sessions/{sid}/complete", "/api/chat"):
            response = await evil.post(path, content=body,
                                       headers={"Content-Type": "text/plain"})
            assert response.status_code == 403 and response.json()["code"] == "forbidden"
    async with jwt_server.client(token()) as client:  # no Origin: still JSON only
        for path in (f"/api/sessions/{sid}/complete", "/api/chat", "/api/render"):
            response = await client.post(path, content=body,
                                         headers={"Content-Type": "text/plain"})
            assert response.status_code == 415
            assert response.json()["code"] == "unsupported_media_type"
    messages = (await jwt_server.client(token()).get(f"/api/sessions/{sid}/messages")).json()
    assert messages["messages"] == []


async def test_a_foreign_host_is_refused_against_dns_rebinding(jwt_server: Server) -> None:
    sid = (await jwt_server.client(token()).post("/api/sessions")).json()["session_id"]
    async with jwt_server.client(token(), Host="evil.example:8000") as rebound:
        for response in (await rebound.get("/api/stream/status"),
                         await rebound.post("/api/sessions"),
                         await rebound.get(f"/api/sessions/{sid}/events"),
                         await rebound.post(f"/api/sessions/{sid}/complete", json=start()),
                         await rebound.post("/api/chat", json=chat())):
            assert response.status_code == 403 and response.json()["code"] == "forbidden"
    # a WebSocket handshake by hand (clients put the URL's host in Host themselves)
    port = int(jwt_server.base_url.rsplit(":", 1)[1])
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                b"GET /ws/stream/whatever-01 HTTP/1.1\r\nHost: evil.example\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            status_line = (await stream.receive_some(4096)).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 403"), status_line
    async with jwt_server.client(token(), Host="localhost:1234") as local:
        assert (await local.get("/api/stream/status")).status_code == 200


async def test_cookie_credentials_need_the_csrf_header(jwt_server: Server) -> None:
    cookies = {"streamer_token": token(), "streamer_csrf": "c" * 32}
    async with httpx.AsyncClient(base_url=jwt_server.base_url, cookies=cookies) as client:
        assert (await client.get("/api/stream/status")).status_code == 200  # a read
        refused = await client.post("/api/sessions")
        assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
        wrong = await client.post("/api/sessions", headers={"X-CSRF-Token": "d" * 32})
        assert wrong.status_code == 403
        ok = await client.post("/api/sessions", headers={"X-CSRF-Token": "c" * 32})
        assert ok.status_code == 201


async def test_the_demo_page_is_locked_down_and_build_tooling_is_not_served(
        jwt_server: Server) -> None:
    async with jwt_server.client() as client:
        page = await client.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/static/client.js")).status_code == 200
        for path in ("/static/build/build.mjs", "/static/build/package.json"):
            assert (await client.get(path)).status_code == 404
        assert (await client.get("/healthz")).status_code == 200  # no credentials needed
        assert (await client.get("/api/stream/status")).status_code == 401


async def test_the_default_none_mode_still_checks_hosts_and_origins(
        nursery: trio.Nursery) -> None:
    async for server in _start(nursery):
        async with server.client() as client:
            created = await client.post("/api/sessions")
            assert created.status_code == 201
            evil = await client.post("/api/sessions", headers={"Origin": EVIL_ORIGIN})
            assert evil.status_code == 403
            rebound = await client.get("/api/stream/status", headers={"Host": "evil.example"})
            assert rebound.status_code == 403
        return


async def test_the_access_log_names_address_and_identity_never_text(
        jwt_server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="streamer.access")
    async with jwt_server.client(token("alice")) as alice:
        sid = (await alice.post("/api/sessions")).json()["session_id"]
        await alice.post(f"/api/sessions/{sid}/complete?x=1", json=start("a private prompt"))
    await ws_events(jwt_server, f"/ws/stream/{sid}",
                    subprotocols=["streamer", f"bearer.{token('bob')}"])
    lines = [r.getMessage() for r in caplog.records if r.name == "streamer.access"]
    assert any(line.startswith("127.0.0.1 jwt:alice POST /api/sessions 201") for line in lines)
    assert any(f"jwt:alice POST /api/sessions/{sid}/complete 200" in line for line in lines)
    assert any(f"WEBSOCKET /ws/stream/{sid} refused:forbidden" in line for line in lines)
    assert not any("private" in line or "x=1" in line for line in lines)


@pytest.mark.parametrize(("argv", "env", "says"), [
    (["--host", "0.0.0.0"], {}, "only allowed on a loopback address"),
    ([], {"STREAMER_AUTH_MODE": "jwt"}, "STREAMER_JWT_SECRET"),
    ([], {"STREAMER_AUTH_MODE": "api_key"}, "auth.api_keys_file"),
    ([], {"STREAMER_SECURITY_ALLOWED_ORIGINS": "*"}, "is not an origin"),
])
def test_serve_refuses_an_unsafe_configuration_before_starting(
        argv: list[str], env: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from streamer.cli import main

    monkeypatch.delenv("STREAMER_JWT_SECRET", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--port", "0", *argv]) == 2
    assert says in capsys.readouterr().err


async def test_an_embedding_applications_hook_is_asked_first(
        nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> None:
    from hypercorn.trio import serve as hypercorn_serve

    from streamer.errors import Unauthorized
    from streamer.security.identity import Identity, RequestInfo
    from streamer.server import hypercorn_config
    from streamer.web.app import create_app

    async def hook(request: RequestInfo) -> Identity | None:
        user = request.headers.get("x-app-user")
        if user == "blocked":
            raise Unauthorized("this account is blocked")
        return Identity(user, "hook") if user else None  # None: the configured mode decides

    monkeypatch.setenv("STREAMER_JWT_SECRET", SECRET)
    config = make_config(**{"auth.mode": "jwt", "auth.jwt_audience": AUDIENCE,
                            "auth.jwt_issuer": ISSUER, "policy.providers": ("echo",)})
    stop = trio.Event()
    binds = await nursery.start(partial(hypercorn_serve, create_app(config, auth_hook=hook),
                                        hypercorn_config(config), shutdown_trigger=stop.wait))
    server = Server(binds[0])
    async with server.client(**{"X-App-User": "carol"}) as carol:
        sid = (await carol.post("/api/sessions")).json()["session_id"]
        assert (await carol.post(f"/api/sessions/{sid}/complete", json=start())
                ).json()["html"] == "<p>hello</p>\n"
    async with server.client(token("carol")) as jwt_carol:  # the same subject by JWT
        assert (await jwt_carol.get(f"/api/sessions/{sid}")).status_code == 200
    async with server.client(token("dave")) as dave:
        assert (await dave.get(f"/api/sessions/{sid}")).status_code == 403
    async with server.client(**{"X-App-User": "blocked"}) as blocked:
        refused = await blocked.post("/api/sessions")
        assert refused.status_code == 401 and refused.json()["message"] == "this account is blocked"
    async with server.client() as nobody:
        assert (await nobody.post("/api/sessions")).json()["code"] == "unauthorized"
    stop.set()
