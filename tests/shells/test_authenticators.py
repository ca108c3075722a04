"""The async authenticators on Trio, in virtual time (``autojump_clock``): an API-key file
edited under a running authenticator (revoked, removed, broken) takes effect within the
reload interval, with the file read off the event loop. (The sync cores and every failure
message: ``tests/core/test_auth.py``.)"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import jwt
import pytest
import trio
import trio.testing

from streamer.config import AuthConfig
from streamer.errors import Unauthorized
from streamer.security.apikeys import (
    RELOAD_INTERVAL_S,
    ApiKeyAuthenticator,
    ApiKeyStore,
    key_entry,
    new_key,
)
from streamer.security.identity import ANONYMOUS, RequestInfo, build_authenticator

REQUEST = RequestInfo({}, {}, "127.0.0.1", "/ws", "websocket", ("streamer",))


async def test_mode_none_is_anonymous_for_any_token() -> None:
    auth = build_authenticator(AuthConfig())
    assert await auth.authenticate(None, REQUEST) is ANONYMOUS
    assert await auth.authenticate("anything", REQUEST) is ANONYMOUS


async def test_jwt_authenticate() -> None:
    auth = build_authenticator(AuthConfig(mode="jwt"), {"STREAMER_JWT_SECRET": "k" * 32})
    token = jwt.encode({"sub": "alice", "exp": 4_000_000_000}, "k" * 32, algorithm="HS256")
    assert (await auth.authenticate(token, REQUEST)).subject == "alice"
    with pytest.raises(Unauthorized) as info:
        await auth.authenticate(None, REQUEST)
    assert info.value.message == "missing credentials"


class ThreadCheckingStore(ApiKeyStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.refresh_threads: list[threading.Thread] = []

    def refresh(self) -> bool:
        self.refresh_threads.append(threading.current_thread())
        return super().refresh()


async def refused(auth: ApiKeyAuthenticator, token: str) -> str:
    with pytest.raises(Unauthorized) as info:
        await auth.authenticate(token, REQUEST)
    return info.value.message


async def test_key_file_edits_take_effect_without_a_new_authenticator(
        tmp_path: Path, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    alice, bob = new_key(), new_key()
    path = tmp_path / "keys.toml"
    path.write_text(key_entry(alice, "alice", "a1"))
    store = ThreadCheckingStore(path)
    auth = ApiKeyAuthenticator(store)
    assert (await auth.authenticate(alice, REQUEST)).subject == "alice"
    assert store.refresh_threads and threading.main_thread() not in store.refresh_threads

    path.write_text(key_entry(alice, "alice", "a1") + "revoked = true\n")
    assert (await auth.authenticate(alice, REQUEST)).subject == "alice"  # checked <= 1/s
    await trio.sleep(RELOAD_INTERVAL_S)
    assert await refused(auth, alice) == "revoked API key"

    path.write_text(key_entry(bob, "bob", "b1"))  # alice's entry removed, bob's added
    await trio.sleep(RELOAD_INTERVAL_S)
    assert await refused(auth, alice) == "unknown API key"
    assert (await auth.authenticate(bob, REQUEST)).subject == "bob"

    path.write_text("[[keys]\n")  # broken: the last good keys stay
    await trio.sleep(RELOAD_INTERVAL_S)
    with caplog.at_level(logging.ERROR, "streamer.security.apikeys"):
        assert (await auth.authenticate(bob, REQUEST)).subject == "bob"
    assert "not valid TOML" in caplog.text and bob not in caplog.text
    assert len(store.refresh_threads) == 4  # one look per interval, not one per request
