"""What the HTTP providers (``openai``, ``anthropic``) share, independent of the SDKs' transport.

Both official SDKs wrap their HTTP library's errors while they *send* a request
(``APIConnectionError``, ``APITimeoutError``), but an error raised while the streamed *body* is
read (a connection cut mid-answer: ``RemoteProtocolError``, ``ReadError``) reaches the caller
unwrapped, as the transport library's own exception. Which library that is changes between SDK
releases (``openai`` 3.63 moved from ``httpx`` to ``httpx2``), so providers must never name it:
:class:`SDKStream` catches what the body read raises and hands it to the provider's translator,
which knows the SDK's own exception tree and treats anything else as a failed connection.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Generic, TypeVar

from streamer.errors import ProviderError

T = TypeVar("T")

__all__ = ["SDKStream", "key_problem", "retry_after_ms", "transport_error"]


class SDKStream(Generic[T]):
    """Iterates an SDK's async stream; every ``Exception`` it raises becomes ``translate(exc)``.

    Only the SDK's own ``__anext__`` runs inside the ``try``: a bug in the code that consumes
    the items is never mistaken for a provider failure. ``trio.Cancelled`` is a
    ``BaseException`` and passes through untouched.

    Raises:
        ProviderError: whatever ``translate`` returns for the SDK's exception.
    """

    def __init__(self, stream: AsyncIterator[T],
                 translate: Callable[[Exception], ProviderError]) -> None:
        self._stream = stream
        self._translate = translate

    def __aiter__(self) -> SDKStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._stream.__anext__()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc


def transport_error(where: str, exc: Exception) -> ProviderError:
    """An error that is not the SDK's own: the transport failed (retryable before the first
    token; after it, the stream ends with its partial answer, as for any provider error).
    The detail names ``where`` and the exception's class; its text is the cause (logged)."""
    return ProviderError(f"{where}: the connection failed ({exc.__class__.__name__})",
                         retryable=True)


def key_problem(key_env: str) -> str:
    """Why the provider refused the server's credentials, for the server's log: the
    environment variable ``key_env`` is unset, or its key was refused (never the key)."""
    if not key_env:
        return "the API key was refused; no key variable is configured (api_key_env)"
    if not os.environ.get(key_env):
        return f"no API key: the environment variable {key_env} is not set"
    return f"the API key in the environment variable {key_env} was refused"


def retry_after_ms(headers: Mapping[str, str] | None, *, now: float | None = None) -> int | None:
    """The ``Retry-After`` header as a delay in ms, or ``None`` if absent or unreadable.

    RFC 9110 §10.2.3: either ``delay-seconds`` (a non-negative integer; fractions, which some
    APIs send, are accepted) or an ``HTTP-date``. A date in the past is a delay of 0 ms.
    ``now`` (s since the epoch) is for tests.
    """
    value = (headers or {}).get("retry-after")
    if not value:
        return None
    value = value.strip()
    digits = value.replace(".", "", 1)
    if digits.isascii() and digits.isdigit():  # (isdigit alone takes "²", which float refuses)
        return int(float(value) * 1000)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return max(0, int(delay * 1000))
