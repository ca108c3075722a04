"""Who is calling: credentials in, an :class:`Identity` out, or :class:`Unauthorized`.

(The API-key and JWT checks are filled in by ``apikeys.py`` and ``jwt_auth.py``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

AuthMethod = Literal["none", "api_key", "jwt", "hook"]


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    Attributes:
        subject: its stable name (``"anonymous"`` with ``auth.mode = "none"``); sessions
            belong to it.
        method: how it was proven.
        policy: per-identity overrides of ``[policy]`` (an API key entry's, a JWT claim's,
            a hook's), checked by ``streamer.security.policy``.
    """

    subject: str
    method: AuthMethod
    policy: Mapping[str, Any] = field(default_factory=dict)


#: the one identity of ``auth.mode = "none"``
ANONYMOUS = Identity("anonymous", "none")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What an authenticator may look at, taken from an HTTP request or WebSocket handshake.

    Attributes:
        headers: header names lower-cased.
        cookies: the request's cookies.
        remote_addr: the peer address (``None`` if unknown).
        path: the request path.
        transport: ``"http"`` or ``"websocket"``.
        subprotocols: the WebSocket subprotocols the client offered (``()`` for HTTP).
    """

    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    remote_addr: str | None
    path: str
    transport: Literal["http", "websocket"]
    subprotocols: tuple[str, ...] = ()


#: an embedding application's own check: an :class:`Identity`, ``None`` to let the
#: configured mode decide, or :class:`~streamer.errors.Unauthorized` to refuse
AuthHook = Callable[[RequestInfo], Awaitable[Identity | None]]


class Authenticator(Protocol):
    """Turns a bearer token into an identity."""

    mode: str

    async def authenticate(self, token: str | None, request: RequestInfo) -> Identity:
        """The identity the token proves.

        Raises:
            Unauthorized: no token where one is needed, or one that proves nothing (the
                message says which: missing, expired, not yet valid, wrong audience, wrong
                issuer, bad signature, unknown or revoked key).
        """
        ...
