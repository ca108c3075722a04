"""streamer's exception tree; each class maps to one protocol error code (``docs/protocol.md``).

::

    StreamerError                      code              retryable   a client reads
    ├── ClientError                    (none itself)                 the detail
    │   ├── InvalidMessage             invalid_message       no
    │   ├── UnsupportedProtocol        unsupported_protocol  no
    │   ├── PayloadTooLarge            payload_too_large     no
    │   ├── UnsupportedMediaType       unsupported_media_type no
    │   ├── Unauthorized               unauthorized          no
    │   ├── Forbidden                  forbidden             no
    │   ├── QuotaExceeded              quota_exceeded        yes (``retry_after_ms``)
    │   ├── SessionNotFound            session_not_found     no
    │   ├── StreamNotFound             stream_not_found      no
    │   ├── QueueFull                  rate_limited          yes
    │   ├── RateLimited                rate_limited          yes (``retry_after_ms``)
    │   ├── ResponseTooLarge           response_too_large    no
    │   ├── PausedTooLong              paused_too_long       yes
    │   ├── ResumeGap                  resume_gap            no
    │   └── ServerShuttingDown         server_shutting_down  yes
    ├── GenerationLost                 generation_lost       yes         a fixed text
    ├── ControlNotDelivered            control_not_delivered yes         a fixed text
    └── ProviderError                  provider_error        depends     a fixed text
        ├── ProviderUnavailable        provider_unavailable  yes         a fixed text
        │   └── ProviderRateLimited    rate_limited          yes (``retry_after_ms``)
        └── ProviderTimeout            provider_timeout      yes         a fixed text

A :class:`StreamerError` itself is ``internal_error`` (a bug in streamer, not the client's).
Each becomes the ``error`` event (``streamer.wire.events.Error.of``) and, over HTTP, the status
of ``streamer.web.http.HTTP_STATUS``. Third-party errors (SDKs, sockets, sqlite) are translated
at the edge with ``raise … from``.

The trust boundary (issue 14): raisers write the full ``detail`` (provider, URL, setting,
upstream status and body); a client reads only :attr:`StreamerError.message`, the class's
fixed :attr:`~StreamerError.public_message` for server- and provider-side errors
(``internal_error``, ``provider_*``, the provider's ``rate_limited``), or the detail itself for
errors the client caused (its own input, its own session or quota: they name nothing internal).
Every error has an ``error_id`` (``err_`` + 8 URL-safe characters) that the client sees and
that :meth:`StreamerError.report` logs, once, with the code, the detail and the cause's repr
(logger ``streamer.errors``).
"""

from __future__ import annotations

import logging
import secrets

logger = logging.getLogger("streamer.errors")

#: fixed client messages of provider errors (each names no provider, URL, setting or variable)
PROVIDER_FAILED = "the model provider failed"
PROVIDER_NOT_CONFIGURED = "the model provider is not configured"
PROVIDER_REFUSED = "the model provider refused the request"
PROVIDER_NO_MODEL = "the model provider does not serve this model"


def new_error_id() -> str:
    """A correlation id: ``err_`` + 8 URL-safe characters (48 random bits)."""
    return "err_" + secrets.token_urlsafe(6)


class StreamerError(Exception):
    """Base of every error streamer reports to a client.

    Args:
        detail: the full explanation, for the server's log only (may name URLs, settings,
            environment variables, upstream bodies).
        retryable: overrides the class's ``retryable``.
        retry_after_ms: a hint for when to retry (ms).
        public_message: a client-safe message more specific than the class's (one of this
            module's fixed texts, or words about the client's own input).

    Attributes:
        code: the protocol's stable error code.
        retryable: whether the same request may succeed later.
        retry_after_ms: a hint for when to retry, or ``None``.
        public_message: what a client is told; ``None`` on the classes whose detail is the
            client's own business (its input, its session, its quota) and so is told as is.
        detail: the full explanation (logged by :meth:`report`, never sent).
        error_id: the correlation id of this occurrence (sent and logged).
    """

    code = "internal_error"
    retryable = False
    public_message: str | None = "internal server error"

    def __init__(self, detail: str, *, retryable: bool | None = None,
                 retry_after_ms: int | None = None, public_message: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if retryable is not None:
            self.retryable = retryable
        if public_message is not None:
            self.public_message = public_message
        self.retry_after_ms = retry_after_ms
        self.error_id = new_error_id()
        self._reported = False

    @property
    def message(self) -> str:
        """What a client may read: the public message, else (client-caused errors) the detail."""
        return self.detail if self.public_message is None else self.public_message

    @property
    def client_caused(self) -> bool:
        """Whether the class tells its detail as is (the client's own input or state)."""
        return type(self).public_message is None

    def report(self) -> None:
        """Log the error once: ``error_id``, ``code``, the detail and the cause's repr.
        Client-caused errors at INFO, provider errors at WARNING, ``internal_error`` at ERROR."""
        if self._reported:
            return
        self._reported = True
        level = (logging.INFO if self.client_caused else logging.ERROR
                 if self.code == "internal_error" else logging.WARNING)
        cause = self.__cause__ or self.__context__
        logger.log(level, "%s %s: %s%s", self.error_id, self.code, self.detail,
                   f" (cause: {cause!r})" if cause is not None else "",
                   extra={"error_id": self.error_id, "code": self.code})


class ClientError(StreamerError):
    """An error the client caused; its detail is its message (it must name nothing internal:
    no path, URL, setting or environment variable)."""

    public_message = None


class InvalidMessage(ClientError):
    code = "invalid_message"


class UnsupportedProtocol(ClientError):
    code = "unsupported_protocol"


class PayloadTooLarge(ClientError):
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    """A JSON endpoint got a body that is not ``application/json`` (CSRF through plain forms)."""

    code = "unsupported_media_type"


class Unauthorized(ClientError):
    """No credentials, or credentials that do not prove an identity (expired, wrong
    signature, wrong audience or issuer, unknown or revoked key)."""

    code = "unauthorized"


class Forbidden(ClientError):
    """The identity is known but may not do this: another owner's session or stream, a
    foreign ``Origin`` or ``Host``, a provider or model the policy does not allow."""

    code = "forbidden"


class QuotaExceeded(ClientError):
    """The identity's daily budget (characters or tokens) is spent; ``retry_after_ms`` is
    the time to the next UTC day."""

    code = "quota_exceeded"
    retryable = True


class SessionNotFound(ClientError):
    code = "session_not_found"


class StreamNotFound(ClientError):
    code = "stream_not_found"


class QueueFull(ClientError):
    code = "rate_limited"
    retryable = True


class RateLimited(ClientError):
    """A client holds or starts too much (``[limits]``: sessions, connections, streams per
    identity or address, streams per minute); ``retry_after_ms`` says when to retry."""

    code = "rate_limited"
    retryable = True


class ProviderError(StreamerError):
    code = "provider_error"
    public_message = PROVIDER_FAILED


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True
    public_message = "the model provider is unavailable"


class ProviderRateLimited(ProviderUnavailable):
    """The provider answered 429 (``retry_after_ms`` from its ``retry-after`` header)."""

    code = "rate_limited"
    public_message = "the model provider is rate limiting requests"


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    retryable = True
    public_message = "the model provider timed out"


class ResponseTooLarge(ClientError):
    code = "response_too_large"


class PausedTooLong(ClientError):
    code = "paused_too_long"
    retryable = True


class ResumeGap(ClientError):
    """The server cannot replay exactly from the client's cursor; a ``snapshot`` follows."""

    code = "resume_gap"


class ServerShuttingDown(ClientError):
    code = "server_shutting_down"
    retryable = True


class GenerationLost(StreamerError):
    """The process that ran the stream's model call stopped holding its lease (it died, or
    lost Redis) before the end (the redis engine, ``docs/engines.md``): the stream ends with
    its partial answer. Retryable: a new ``start`` runs on a live process."""

    code = "generation_lost"
    retryable = True
    public_message = "the server generating this answer stopped; the partial answer is kept"


class ControlNotDelivered(StreamerError):
    """A control for a stream another process runs (``stop``) got no confirmation from that
    process in time (the redis engine): it may not have been applied."""

    code = "control_not_delivered"
    retryable = True
    public_message = "the server generating this answer did not confirm the control in time"


def leaves(exc: BaseException) -> list[BaseException]:
    """The non-group exceptions inside ``exc``, nested groups flattened, in order (``[exc]``
    when it is not a group): what Trio's strict exception groups hold."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]
