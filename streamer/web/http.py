"""What the routes share: the registry of the running app, JSON responses and the HTTP status
of each error code, request bodies with a size limit, session ids from URLs.

Errors are JSON ``{"type": "error", "code", "message", "retryable"}`` (the ``error`` event)
with a fitting HTTP status and, when the error says when to retry, ``Retry-After`` (s).
"""

from __future__ import annotations

import json
from typing import Any

from quart import Response, current_app, request

from streamer.errors import (
    InvalidMessage,
    PayloadTooLarge,
    StreamerError,
    UnsupportedMediaType,
)
from streamer.runtime.registry import Registry
from streamer.wire.codecs import JSONLimits, decode_json
from streamer.wire.cursor import SESSION_ID_RE
from streamer.wire.events import Error

#: the key of the registry in ``app.extensions``
EXTENSION = "streamer"

#: HTTP status for each error code
HTTP_STATUS = {
    "invalid_message": 400, "unsupported_protocol": 400, "payload_too_large": 413,
    "unsupported_media_type": 415, "quota_exceeded": 429,
    "session_not_found": 404, "stream_not_found": 404, "rate_limited": 429,
    "provider_unavailable": 503, "provider_error": 502, "provider_timeout": 504,
    "server_shutting_down": 503, "unauthorized": 401, "forbidden": 403,
    "generation_lost": 503, "control_not_delivered": 503,
}


def registry() -> Registry:
    """The running app's registry."""
    found: Registry = current_app.extensions[EXTENSION]
    return found


def error_response(exc: StreamerError) -> Response:
    headers = {}
    if exc.retry_after_ms:
        headers["Retry-After"] = str(max(1, round(exc.retry_after_ms / 1000)))
    return Response(json.dumps(Error.of(exc).to_json()), status=HTTP_STATUS.get(exc.code, 500),
                    mimetype="application/json", headers=headers)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/json")


def streaming(response: Response) -> Response:
    """A streaming response: no 60 s cut (Quart's ``RESPONSE_TIMEOUT``); streamer's own
    deadlines (heartbeats, send timeouts) bound it."""
    response.timeout = None
    return response


def valid_session_id(session_id: str) -> str:
    """``session_id`` from a URL, checked.

    Raises:
        InvalidMessage: not 8-64 characters of A-Z, a-z, 0-9, ``_`` and ``-``.
    """
    if not SESSION_ID_RE.fullmatch(session_id):
        raise InvalidMessage("a session id is 8-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return session_id


def require_json_type() -> None:
    """A JSON endpoint takes ``Content-Type: application/json`` only: a cross-site plain form
    or ``text/plain`` POST (a CORS "simple request", sent without a preflight) is refused.

    Raises:
        UnsupportedMediaType: any other (or no) content type.
    """
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("the body must be sent as Content-Type: application/json")


async def read_body(max_bytes: int) -> bytes:
    """The request body (``Content-Type: application/json``), at most ``max_bytes``.

    Raises:
        UnsupportedMediaType: another content type.
        PayloadTooLarge: the body (or its announced length) is longer.
    """
    require_json_type()
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body of {length} bytes exceeds {max_bytes}")
    data = await request.get_data(cache=False, as_text=False)
    raw = data if isinstance(data, bytes) else data.encode()
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body of {len(raw)} bytes exceeds {max_bytes}")
    return raw


async def read_json(max_bytes: int) -> Any:
    """The request body as JSON (at most ``max_bytes``; nesting and numbers within
    ``[server]``'s limits: :func:`streamer.wire.codecs.decode_json`).

    Raises:
        UnsupportedMediaType: another content type.
        PayloadTooLarge: too long.
        InvalidMessage: not UTF-8 JSON within the limits.
    """
    limits = JSONLimits.of(registry().config.server, max_bytes)
    return decode_json(await read_body(max_bytes), limits)
