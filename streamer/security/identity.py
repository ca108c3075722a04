"""Who is calling: credentials in, an :class:`Identity` out, or :class:`Unauthorized`.

Three modes (``auth.mode``, ``docs/security.md``):

* ``none``: everyone is :data:`ANONYMOUS`; allowed only on a loopback bind
  (:func:`validate_auth`);
* ``api_key``: static keys, stored hashed in a TOML file (``streamer.security.apikeys``);
* ``jwt``: signed tokens, HS*/RS*/ES* (``streamer.security.jwt_auth``, RFC 7519).

Where a token comes from (:func:`bearer_token`): ``Authorization: Bearer`` (RFC 6750 §2.1),
an offered WebSocket subprotocol ``bearer.<token>`` (browsers cannot set headers on a
WebSocket, and a URL query would leak into logs), or the cookie ``auth.cookie_name``; a
cookie-borne token needs the double-submit CSRF check (:func:`csrf_ok`) on every
state-changing request.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from streamer.config import AuthConfig, ConfigError

if TYPE_CHECKING:
    from streamer.config import Config

AuthMethod = Literal["none", "api_key", "jwt", "hook"]


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    Attributes:
        subject: its stable name (``"anonymous"`` with ``auth.mode = "none"``); sessions
            belong to it.
        method: how it was proven.
        policy: per-identity overrides of ``[policy]`` (an API key entry's, a JWT claim's,
            a hook's), checked by ``streamer.security.policy`` (its ``parse_overrides``
            gives the shape).
        credential_id: what proved it, for logs (an API key's ``id``, a JWT's ``jti``);
            never the secret itself. ``None`` if there is nothing to name.
    """

    subject: str
    method: AuthMethod
    policy: Mapping[str, Any] = field(default_factory=dict)
    credential_id: str | None = None


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


def policy_overrides(value: object) -> dict[str, Any]:
    """Check a per-identity policy (an API key entry's ``[keys.policy]``, a JWT claim) with
    :func:`streamer.security.policy.parse_overrides`, the one definition of its shape.

    Args:
        value: a mapping with some of ``providers``, ``models`` (lists of strings),
            ``daily_chars``, ``daily_tokens``, ``max_tokens`` (integers).

    Returns:
        A new dict of the same keys, lists made tuples (like ``PolicyConfig``'s), for
        :attr:`Identity.policy`.

    Raises:
        ValueError: not a mapping, an unknown key (a typo must not silently lift a limit),
            or a value of the wrong shape; the message names the key.
    """
    from streamer.security.policy import parse_overrides  # policy imports this module

    if not isinstance(value, Mapping):
        raise ValueError("policy must be a table (an object)")
    parse_overrides(value)
    return {key: tuple(item) if isinstance(item, list) else item for key, item in value.items()}


class NoAuthenticator:
    """``auth.mode = "none"``: every caller, with or without a token, is :data:`ANONYMOUS`."""

    mode = "none"

    async def authenticate(self, token: str | None, request: RequestInfo) -> Identity:
        return ANONYMOUS


def build_authenticator(auth: AuthConfig, env: Mapping[str, str] | None = None
                        ) -> Authenticator:
    """The :class:`Authenticator` for ``auth.mode``.

    Args:
        auth: the ``[auth]`` section.
        env: where ``auth.jwt_secret_env`` is looked up (default ``os.environ``).

    Returns:
        :class:`NoAuthenticator`, ``apikeys.ApiKeyAuthenticator`` (its key file read now)
        or ``jwt_auth.JwtAuthenticator`` (its keys loaded now).

    Raises:
        ConfigError: the mode's key file or secret is missing or invalid (the message
            names the setting and file, never a secret).
    """
    env = os.environ if env is None else env
    if auth.mode == "api_key":
        from streamer.security.apikeys import ApiKeyAuthenticator, ApiKeyStore
        if not auth.api_keys_file:
            raise ConfigError("auth.mode = api_key needs auth.api_keys_file")
        return ApiKeyAuthenticator(ApiKeyStore(auth.api_keys_file))
    if auth.mode == "jwt":
        from streamer.security.jwt_auth import JwtAuthenticator
        return JwtAuthenticator(auth, env)
    return NoAuthenticator()


def bearer_token(request: RequestInfo, auth: AuthConfig) -> tuple[str | None, str | None]:
    """The request's token and where it came from, looked for in this order:

    1. ``"header"``: ``Authorization: Bearer <token>`` (RFC 6750 §2.1; the scheme is
       case-insensitive, RFC 9110 §11.1); other schemes are ignored;
    2. ``"subprotocol"``: the first offered WebSocket subprotocol ``bearer.<token>``;
    3. ``"cookie"``: the cookie ``auth.cookie_name`` (then :func:`csrf_ok` must hold for
       state-changing requests).

    Never the URL (query strings end up in access logs and browser history, RFC 6750 §5.3).

    Returns:
        ``(token, source)``, or ``(None, None)`` when there is none.
    """
    scheme, _, rest = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip(), "header"
    for offered in request.subprotocols:
        if offered.startswith("bearer.") and len(offered) > len("bearer."):
            return offered[len("bearer."):], "subprotocol"
    cookie = request.cookies.get(auth.cookie_name, "")
    if cookie:
        return cookie, "cookie"
    return None, None


def csrf_ok(request: RequestInfo, auth: AuthConfig) -> bool:
    """The double-submit CSRF check (OWASP CSRF cheat sheet): the header ``X-CSRF-Token``
    equals the cookie ``auth.csrf_cookie_name``, both non-empty, compared in constant time
    (``hmac.compare_digest``). Another origin can make the browser send the cookie but can
    neither read it nor set the header."""
    header = request.headers.get("x-csrf-token", "")
    cookie = request.cookies.get(auth.csrf_cookie_name, "")
    if not header or not cookie:
        return False
    return hmac.compare_digest(header.encode(), cookie.encode())


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8, ``::1`` (with or without brackets), and IPv4-mapped
    loopback; ``0.0.0.0``, ``""`` and other names are not."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def validate_auth(config: Config, env: Mapping[str, str]) -> None:
    """Refuse an unsafe or unusable ``[auth]`` at start-up.

    Raises:
        ConfigError: ``auth.mode = none`` on a non-loopback ``server.host``; ``api_key``
            without a readable, valid key file; ``jwt`` with an algorithm outside the
            allowed set (never ``none``), an HS* secret unset or shorter than the hash
            (RFC 7518 §3.2: 32 bytes for HS256), RS*/ES* without a key file or JWKS, or a
            key that does not fit the algorithms.
    """
    if config.auth.mode == "none" and not is_loopback(config.server.host):
        raise ConfigError("auth.mode = none is only allowed on a loopback address; "
                          "set auth.mode")
    build_authenticator(config.auth, env)


def describe_auth(config: Config) -> str:
    """One line for the start-up log, e.g. ``auth: jwt (RS256, aud=api, iss=idp)``."""
    auth = config.auth
    if auth.mode == "none":
        host = config.server.host
        where = f"[{host}]" if ":" in host else host
        return (f"auth: none — anyone who can reach {where}:{config.server.port} "
                "controls every session")
    if auth.mode == "api_key":
        return f"auth: api_key (hashed keys in {auth.api_keys_file}, re-read on change)"
    details = [",".join(auth.jwt_algorithms)]
    if auth.jwt_audience:
        details.append(f"aud={auth.jwt_audience}")
    if auth.jwt_issuer:
        details.append(f"iss={auth.jwt_issuer}")
    if auth.jwt_jwks_file:
        details.append(f"jwks={auth.jwt_jwks_file}")
    elif auth.jwt_public_key_file:
        details.append(f"key={auth.jwt_public_key_file}")
    return f"auth: jwt ({', '.join(details)})"
