"""Where a browser may call from: the ``Host`` and ``Origin`` rules, sans-IO.

A server on 127.0.0.1 is not protected by its bind: any page the operator opens can make
the browser talk to it. Two checks close that:

* ``Host`` allowlist against DNS rebinding: a page on ``evil.example`` whose name now
  resolves to 127.0.0.1 still sends ``Host: evil.example`` (RFC 9110 §7.2).
* ``Origin`` check (RFC 6454; the Fetch standard sends it on every cross-origin request,
  on every POST, and on every WebSocket handshake, RFC 6455 §4.1/§10.2): same-origin and
  the configured origins pass; a missing ``Origin`` (no browser: a terminal or another
  server) passes only if ``security.allow_missing_origin``; the opaque origin ``null``
  (sandboxed frames, ``file:``) never does.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from streamer.config import ConfigError, SecurityConfig

#: the port a scheme implies when a URL names none (RFC 6454 §4)
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(host: str) -> tuple[str, int | None]:
    """``"Example.com:8000"`` → ``("example.com", 8000)``; ``"[::1]:80"`` → ``("::1", 80)``.

    Raises:
        ValueError: not a host (empty, a bad port, an unclosed bracket).
    """
    host = host.strip().lower()
    if not host:
        raise ValueError("empty host")
    if host.startswith("["):
        name, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad host {host!r}")
        port_text = rest[1:] if rest else ""
    elif host.count(":") == 1:
        name, _, port_text = host.partition(":")
    else:
        name, port_text = host, ""  # a bare IPv6 address or a plain name
    if not name:
        raise ValueError("empty host name")
    if not port_text:
        return name, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65_536:
        raise ValueError(f"bad port in {host!r}")
    return name, int(port_text)


def host_allowed(host: str | None, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether a request's ``Host`` header names this server (any port).

    ``allowed_hosts`` holds names (``"localhost"``, ``"::1"``, ``"example.com"``), a
    leading-dot suffix (``".example.com"``: every subdomain), or ``"*"`` (any).
    """
    if "*" in allowed_hosts:
        return True
    if not host:
        return False
    try:
        name, _ = split_host(host)
    except ValueError:
        return False
    for allowed in allowed_hosts:
        allowed = allowed.lower().strip("[]")
        if name == allowed or (allowed.startswith(".") and name.endswith(allowed)):
            return True
    return False


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    parts = urlsplit(origin)
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        return None
    try:
        name, port = split_host(parts.netloc)
    except ValueError:
        return None
    return parts.scheme, name, port or DEFAULT_PORTS[parts.scheme]


def same_origin(origin: str, host: str | None, scheme: str) -> bool:
    """Whether ``origin`` is the server's own: its host and port equal the request's
    ``Host`` (the scheme behind a TLS proxy is not trusted, so only the port decides)."""
    parts = _origin_parts(origin)
    if parts is None or not host:
        return False
    try:
        name, port = split_host(host)
    except ValueError:
        return False
    return (parts[1], parts[2]) == (name, port or DEFAULT_PORTS.get(scheme, 80))


def normalize_origin(origin: str) -> str | None:
    """``"HTTP://Example.com:80"`` → ``"http://example.com"``; ``None`` if not an origin."""
    parts = _origin_parts(origin)
    if parts is None:
        return None
    scheme, name, port = parts
    shown = f"[{name}]" if ":" in name else name
    return f"{scheme}://{shown}" + ("" if DEFAULT_PORTS[scheme] == port else f":{port}")


def origin_allowed(origin: str | None, host: str | None, scheme: str,
                   security: SecurityConfig) -> bool:
    """Whether a request with this ``Origin`` header may act on the server."""
    if origin is None or origin == "":
        return security.allow_missing_origin
    if same_origin(origin, host, scheme):
        return True
    normalized = normalize_origin(origin)
    return normalized is not None and normalized in allowed_origins(security)


def allowed_origins(security: SecurityConfig) -> list[str]:
    """``security.allowed_origins`` normalized (what CORS answers)."""
    out = []
    for origin in security.allowed_origins:
        normalized = normalize_origin(origin)
        if normalized is not None:
            out.append(normalized)
    return out


def check_security(security: SecurityConfig) -> None:
    """Refuse ``[security]`` values that would silently not match.

    Raises:
        ConfigError: an ``allowed_origins`` entry that is not ``scheme://host[:port]``
            (``"*"`` included: credentials are allowed, so CORS cannot answer everyone), or
            an empty ``allowed_hosts``.
    """
    for origin in security.allowed_origins:
        if normalize_origin(origin) is None:
            raise ConfigError(f"security.allowed_origins: {origin!r} is not an origin "
                              "(scheme://host[:port], no path, no '*')")
    if not security.allowed_hosts:
        raise ConfigError("security.allowed_hosts is empty: no request could be answered "
                          '(["*"] accepts any Host)')
