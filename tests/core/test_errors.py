"""The trust boundary of errors (issue 14): a client reads the code, a fixed or its own message
and an ``error_id``; the detail goes to the server's log under that id. And the collector of
``tests/conftest.py`` catches a leak when one is planted."""

from __future__ import annotations

import logging
import re

import pytest

from streamer.errors import (
    PROVIDER_NOT_CONFIGURED,
    InvalidMessage,
    PayloadTooLarge,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    QueueFull,
    ServerShuttingDown,
    SessionNotFound,
    StreamerError,
    new_error_id,
)
from streamer.runtime.trace import Trace
from streamer.wire.events import Error, Retrying
from tests.conftest import ErrorPayloads, leaks

ERROR_ID = re.compile(r"err_[A-Za-z0-9_-]{8}")

#: a detail as raisers write it: everything the operator needs, nothing a client may read
DETAIL = ("openai (https://api.example.com/v1): the API key in the environment variable "
          "OPENAI_API_KEY was refused; model file /srv/op/models/gemma.gguf")


def test_error_ids_are_short_random_and_url_safe() -> None:
    ids = {new_error_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(ERROR_ID.fullmatch(i) for i in ids)
    assert StreamerError("x").error_id != StreamerError("x").error_id


@pytest.mark.parametrize(("cls", "code", "text"), [
    (StreamerError, "internal_error", "internal server error"),
    (ProviderError, "provider_error", "the model provider failed"),
    (ProviderUnavailable, "provider_unavailable", "the model provider is unavailable"),
    (ProviderRateLimited, "rate_limited", "the model provider is rate limiting requests"),
    (ProviderTimeout, "provider_timeout", "the model provider timed out"),
])
def test_server_side_errors_tell_a_fixed_text_and_log_the_detail(
        cls: type[StreamerError], code: str, text: str,
        caplog: pytest.LogCaptureFixture) -> None:
    try:
        try:
            raise KeyError("upstream body")
        except KeyError as cause:
            raise cls(DETAIL, retry_after_ms=1500) from cause
    except StreamerError as caught:
        exc = caught
    first = Error.of(exc, session_id="sess1234").to_json()
    again = Error.of(exc).to_json()
    assert first == {"type": "error", "session_id": "sess1234", "code": code, "message": text,
                     "error_id": exc.error_id, "retryable": exc.retryable,
                     "retry_after_ms": 1500}
    assert again["error_id"] == first["error_id"] and ERROR_ID.fullmatch(first["error_id"])
    assert leaks(first) == []
    (line,) = [r for r in caplog.records if r.name == "streamer.errors"]  # once per error
    cause = "(cause: KeyError('upstream body'))"
    assert line.getMessage() == f"{exc.error_id} {code}: {DETAIL} {cause}"
    assert line.levelno == (logging.ERROR if cls is StreamerError else logging.WARNING)


@pytest.mark.parametrize("exc", [
    InvalidMessage("start: 'prompt' is empty"),
    PayloadTooLarge("request body of 5000 bytes exceeds 4096"),
    SessionNotFound("no session chat-0001"),
    QueueFull("3 streams are already queued in this session", retry_after_ms=1000),
    ServerShuttingDown("the server is shutting down", retry_after_ms=5000),
], ids=lambda exc: exc.code)
def test_errors_the_client_caused_keep_their_own_message(
        exc: StreamerError, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "streamer.errors")
    event = Error.of(exc).to_json()
    assert event["message"] == exc.detail and event["error_id"] == exc.error_id
    assert event["retryable"] is exc.retryable
    assert [r.levelno for r in caplog.records if r.name == "streamer.errors"] == [logging.INFO]


def test_a_raiser_may_give_a_more_specific_fixed_text() -> None:
    exc = ProviderError(DETAIL, retryable=False, public_message=PROVIDER_NOT_CONFIGURED)
    assert exc.message == PROVIDER_NOT_CONFIGURED and exc.code == "provider_error"
    assert str(exc) == exc.detail == DETAIL  # the detail stays for the log and the traceback
    assert ProviderError(DETAIL).message == "the model provider failed"  # not the instance's


#: one planted payload per kind of leak, with the kind the collector must name
PLANTED = [
    ("internal error: TypeError('NoneType')", "an exception repr"),
    ("upstream https://api.openai.com/v1 refused", "a URL"),
    ("cannot load /srv/models/gemma-3-270m.gguf", "a file path"),
    ("cannot open /opt/x", "a file path"),
    ("cannot load model.gguf", "a file path"),
    ("set the environment variable OPENAI_API_KEY", "an environment variable name"),
    ("STREAMER_PROVIDERS_LOCAL_MODEL_PATH is wrong", "an environment variable name"),
]


@pytest.mark.parametrize(("message", "kind"), PLANTED)
async def test_the_collector_catches_a_planted_leak(
        message: str, kind: str, error_payloads: ErrorPayloads) -> None:
    mark = error_payloads.mark()
    try:
        Error("internal_error", message, False).to_json()
        Retrying("sess1234", "s_1", 1, 100, "provider_error", message).to_json()
        Trace("s_1").record("error", code="internal_error", message=message)
        found = error_payloads.leaked(mark)
        assert [where for _, where, _, _ in found] == ["error", "retrying", "trace"]
        assert all(kind in what for _, _, _, what in found)
        with pytest.raises(pytest.fail.Exception, match="leak server internals"):
            error_payloads.check()  # what fails the test that let such a payload out
    finally:
        error_payloads.forget(mark)  # planted on purpose: this test must not fail for it


def test_the_collector_lets_clean_payloads_through(error_payloads: ErrorPayloads) -> None:
    mark = error_payloads.mark()
    Error.of(ProviderError(DETAIL)).to_json()
    Error.of(InvalidMessage("a session id is 8-64 characters of A-Z, a-z, 0-9, '_' and '-'")
             ).to_json()
    assert error_payloads.mark() == mark + 2 and error_payloads.leaked(mark) == []
