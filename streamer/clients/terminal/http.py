"""The terminal client's HTTP requests: the session it streams in, and what the session
already holds (``docs/protocol.md``, "Transports" and "Other endpoints").

Blocking ``urllib`` calls run in a worker thread (``trio.to_thread``), bounded by
:data:`HTTP_TIMEOUT_S`. Credentials go as ``Authorization: Bearer <token>`` (RFC 6750 §2.1;
never in a URL); the client sends no ``Origin`` (``security.allow_missing_origin``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import partial
from typing import Any
from urllib.parse import quote

import trio

__all__ = ["HTTP_TIMEOUT_S", "Refused", "SessionInfo", "auth_headers", "known_streams",
           "open_session"]

#: seconds one request may take
HTTP_TIMEOUT_S = 30.0


class Refused(Exception):
    """The server refused a request: its ``error`` body (``code``, ``message``)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code', 'internal_error')}: {error.get('message', '')}")
        self.error = error


def auth_headers(token: str | None) -> dict[str, str]:
    """``Authorization: Bearer <token>`` when there is a token (RFC 6750 §2.1)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def refusal(status: int, body: bytes) -> Refused:
    """The :class:`Refused` of an HTTP error answer: its JSON error body, else the status."""
    try:
        error = json.loads(body)
    except ValueError:
        error = None
    if not isinstance(error, dict) or "code" not in error:
        error = {"code": "unauthorized" if status == 401 else "forbidden" if status == 403
                 else "session_not_found" if status == 404 else "internal_error",
                 "message": f"HTTP {status}"}
    return Refused(error)


def _request(base: str, method: str, path: str, token: str | None,
             body: dict[str, Any] | None) -> tuple[int, Any]:
    """One request (blocking): ``(status, the answer's JSON)``.

    Raises:
        Refused: an error status.
        OSError: the server could not be reached (``urllib.error.URLError`` is one).
    """
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json", **auth_headers(token)}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise refusal(exc.code, exc.read()) from None
    except ValueError as exc:  # not JSON: not a streamer server
        raise OSError(f"{base}{path}: the answer is not JSON") from exc


async def request(base: str, method: str, path: str, token: str | None,
                  body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """:func:`_request` in a worker thread (abandoned if the caller is cancelled)."""
    return await trio.to_thread.run_sync(
        partial(_request, base, method, path, token, body), abandon_on_cancel=True)


class SessionInfo:
    """The session to stream in: its id, and the streams it held before this run (their
    events, which a new connection replays, are never this run's answer)."""

    def __init__(self, session_id: str, earlier: set[str]) -> None:
        self.session_id = session_id
        self.earlier = earlier


async def known_streams(base: str, session_id: str, token: str | None) -> set[str]:
    """Every stream id the session knows: its answers (``GET …/messages``: an assistant
    message's id is its stream's), the running one and the queued ones (``GET …``).

    Raises:
        Refused: ``session_not_found``, ``forbidden``, ``unauthorized``.
        OSError: the server could not be reached.
    """
    path = f"/api/sessions/{quote(session_id, safe='')}"
    _, info = await request(base, "GET", path, token)
    _, listing = await request(base, "GET", path + "/messages", token)
    ids = {m.get("message_id") for m in listing.get("messages", [])
           if isinstance(m, dict) and m.get("role") == "assistant"}
    current = info.get("current") or {}
    ids |= {current.get("stream_id"), *info.get("queued", [])}
    return {i for i in ids if isinstance(i, str)}


async def open_session(base: str, requested: str | None, token: str | None) -> SessionInfo:
    """The session of this run: a new one the server makes (``POST /api/sessions`` with
    ``{}``), the caller's own id (made if new, claimed if it exists), or a server-made id
    (``sess_…``, which only the server makes: it must exist).

    Raises:
        Refused: ``unauthorized``, ``forbidden``, ``invalid_message`` (a bad id),
            ``session_not_found`` (an unknown ``sess_…`` id).
        OSError: the server could not be reached.
    """
    if requested and requested.startswith("sess_"):
        return SessionInfo(requested, await known_streams(base, requested, token))
    status, answer = await request(base, "POST", "/api/sessions", token,
                                   {"session_id": requested} if requested else {})
    session_id = answer.get("session_id") if isinstance(answer, dict) else None
    if not isinstance(session_id, str):
        raise Refused({"code": "invalid_message", "message": "no session_id in the answer"})
    earlier = await known_streams(base, session_id, token) if status == 200 else set()
    return SessionInfo(session_id, earlier)
