"""streamer's exception tree; each class maps to one protocol error code (``docs/protocol.md``).

::

    StreamerError                      code              retryable
    ├── InvalidMessage                 invalid_message       no
    ├── UnsupportedProtocol            unsupported_protocol  no
    ├── PayloadTooLarge                payload_too_large     no
    ├── UnsupportedMediaType           unsupported_media_type no
    ├── Unauthorized                   unauthorized          no
    ├── Forbidden                      forbidden             no
    ├── QuotaExceeded                  quota_exceeded        yes (``retry_after_ms``)
    ├── SessionNotFound                session_not_found     no
    ├── StreamNotFound                 stream_not_found      no
    ├── QueueFull                      rate_limited          yes
    ├── ProviderError                  provider_error        depends (``retryable``)
    │   ├── ProviderUnavailable        provider_unavailable  yes
    │   │   └── ProviderRateLimited    rate_limited          yes (``retry_after_ms``)
    │   └── ProviderTimeout            provider_timeout      yes
    ├── ResponseTooLarge               response_too_large    no
    ├── PausedTooLong                  paused_too_long       yes
    ├── ResumeGap                      resume_gap            no
    └── ServerShuttingDown             server_shutting_down  yes

A :class:`StreamerError` itself is ``internal_error`` (a bug in streamer, not the client's).
Each becomes the ``error`` event (``streamer.wire.events.Error.of``) and, over HTTP, the status
of ``streamer.web.http.HTTP_STATUS``. Third-party errors (SDKs, sockets, sqlite) are translated
at the edge with ``raise … from``.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Base of every error streamer reports to a client.

    Attributes:
        code: the protocol's stable error code.
        retryable: whether the same request may succeed later.
        retry_after_ms: a hint for when to retry, or ``None``.
    """

    code = "internal_error"
    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None,
                 retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.retry_after_ms = retry_after_ms


class InvalidMessage(StreamerError):
    code = "invalid_message"


class UnsupportedProtocol(StreamerError):
    code = "unsupported_protocol"


class PayloadTooLarge(StreamerError):
    code = "payload_too_large"


class UnsupportedMediaType(StreamerError):
    """A JSON endpoint got a body that is not ``application/json`` (CSRF through plain forms)."""

    code = "unsupported_media_type"


class Unauthorized(StreamerError):
    """No credentials, or credentials that do not prove an identity (expired, wrong
    signature, wrong audience or issuer, unknown or revoked key)."""

    code = "unauthorized"


class Forbidden(StreamerError):
    """The identity is known but may not do this: another owner's session or stream, a
    foreign ``Origin`` or ``Host``, a provider or model the policy does not allow."""

    code = "forbidden"


class QuotaExceeded(StreamerError):
    """The identity's daily budget (characters or tokens) is spent; ``retry_after_ms`` is
    the time to the next UTC day."""

    code = "quota_exceeded"
    retryable = True


class SessionNotFound(StreamerError):
    code = "session_not_found"


class StreamNotFound(StreamerError):
    code = "stream_not_found"


class QueueFull(StreamerError):
    code = "rate_limited"
    retryable = True


class ProviderError(StreamerError):
    code = "provider_error"


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True


class ProviderRateLimited(ProviderUnavailable):
    """The provider answered 429 (``retry_after_ms`` from its ``retry-after`` header)."""

    code = "rate_limited"


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    retryable = True


class ResponseTooLarge(StreamerError):
    code = "response_too_large"


class PausedTooLong(StreamerError):
    code = "paused_too_long"
    retryable = True


class ResumeGap(StreamerError):
    """The server cannot replay exactly from the client's cursor; a ``snapshot`` follows."""

    code = "resume_gap"


class ServerShuttingDown(StreamerError):
    code = "server_shutting_down"
    retryable = True
