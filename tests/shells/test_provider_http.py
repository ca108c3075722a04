"""What the HTTP providers share (``streamer/providers/_http.py``), without a network."""

from __future__ import annotations

import pytest

from streamer.errors import ProviderError
from streamer.providers._http import SDKStream, retry_after_ms

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("3", 3000), ("1.5", 1500), (" 2 ", 2000), ("soon", None),
    ("Tue, 14 Nov 2023 22:13:25 GMT", 5000),  # an HTTP-date 5 s ahead (RFC 9110 §10.2.3)
    ("Tue, 14 Nov 2023 22:13:00 GMT", 0),     # in the past: no wait
    ("²", None), ("1.٣", None),               # not ASCII digits: unreadable, not a crash
])
def test_retry_after_reads_seconds_and_http_dates(value: str | None, expected: int | None) -> None:
    headers = None if value is None else {"retry-after": value}
    assert retry_after_ms(headers, now=NOW) == expected


class _Failing:
    def __init__(self, items: list[int], exc: Exception) -> None:
        self.items, self.exc = items, exc

    def __aiter__(self) -> _Failing:
        return self

    async def __anext__(self) -> int:
        if self.items:
            return self.items.pop(0)
        raise self.exc


async def test_sdk_stream_translates_what_the_sdk_raises_and_only_that() -> None:
    seen: list[int] = []
    stream = SDKStream(_Failing([1, 2], OSError("reset")), lambda exc: ProviderError(repr(exc)))
    with pytest.raises(ProviderError, match="reset") as info:
        async for item in stream:
            seen.append(item)
    assert seen == [1, 2] and isinstance(info.value.__cause__, OSError)
    # an error in the consumer's own code is not the provider's
    with pytest.raises(ZeroDivisionError):
        async for item in SDKStream(_Failing([1], OSError()), lambda exc: ProviderError("x")):
            item / 0
