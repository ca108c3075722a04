"""The history budget's arithmetic (``streamer.conversation``) and the exception-group unwrap,
pure: no clock, no provider."""

from __future__ import annotations

import pytest

from streamer.conversation import Message, remember, split_turns, turns_to_drop
from streamer.errors import ProviderError
from streamer.providers.base import context_exceeded, estimate_tokens
from streamer.runtime.generation import single_error


def u(text: str) -> Message:
    return Message("user", text)


def a(text: str) -> Message:
    return Message("assistant", text)


def test_turns_start_at_each_user_message() -> None:
    history = [Message("system", "s"), u("1"), a("1"), u("2"), u("3"), a("3"), a("3b")]
    assert split_turns(history) == [(Message("system", "s"),), (u("1"), a("1")), (u("2"),),
                                    (u("3"), a("3"), a("3b"))]
    assert split_turns([]) == []


@pytest.mark.parametrize(("fixed", "sizes", "limit", "dropped"), [
    (10, [20, 20, 20], None, 0),      # no budget: nothing dropped
    (10, [20, 20, 20], 70, 0),        # exactly fits
    (10, [20, 20, 20], 69, 1),        # one unit over: the oldest turn goes
    (10, [20, 20, 20], 30, 2),
    (10, [20, 20, 20], 29, 3),        # only the prompt fits
    (10, [20, 20, 20], 10, 3),
    (11, [20, 20, 20], 10, None),     # the prompt alone does not fit
    (10, [], 10, 0),
    (5, [100, 1, 1], 8, 1),           # a huge old turn goes first, the small recent ones stay
])
def test_turns_to_drop_is_the_fewest_oldest_turns(fixed: int, sizes: list[int],
                                                  limit: int | None, dropped: int | None
                                                  ) -> None:
    assert turns_to_drop(fixed, sizes, limit) == dropped
    if dropped is not None and limit is not None:
        assert fixed + sum(sizes[dropped:]) <= limit
        if dropped:  # one turn fewer dropped would not fit
            assert fixed + sum(sizes[dropped - 1:]) > limit


def test_remember_appends_the_turn_and_lets_go_of_what_could_never_be_sent() -> None:
    history = [u("a" * 10), a("b" * 10)]
    assert remember(history, [u("c" * 10)], "d" * 10, 100) == [
        u("a" * 10), a("b" * 10), u("c" * 10), a("d" * 10)]
    # over 30 characters: the oldest whole turn goes (never half of one)
    assert remember(history, [u("c" * 10)], "d" * 10, 30) == [u("c" * 10), a("d" * 10)]
    # the newest turn is kept even when it alone is longer
    assert remember(history, [u("c" * 50)], "d" * 50, 30) == [u("c" * 50), a("d" * 50)]
    # a start that brought its own conversation: its messages, then the answer
    own = [u("x"), a("y"), u("z")]
    assert remember([], own, "w", 100) == [*own, a("w")]


def test_the_estimate_is_utf8_bytes_over_four_rounded_up() -> None:
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]
    assert estimate_tokens("日本語") == 3  # 9 bytes: CJK is not undercounted as 1 token
    assert estimate_tokens("\ud800") == 1  # a lone surrogate is counted, not an error


def test_a_context_overflow_is_a_provider_error_that_names_the_budget() -> None:
    exc = context_exceeded("local: Requested tokens (2100) exceed context window of 2048", 1536)
    assert exc.code == "provider_error" and not exc.retryable
    assert exc.message == "the request is longer than the model accepts " \
                          "(its input budget is 1,536 tokens)"
    assert "2048" not in exc.message and "local" not in exc.message
    assert context_exceeded("x", None).message == "the request is longer than the model accepts"


def test_single_error_unwraps_what_a_nursery_wraps() -> None:
    error = ProviderError("local: boom")
    assert single_error(ExceptionGroup("nursery", [error])) is error
    assert single_error(ExceptionGroup("outer", [ExceptionGroup("inner", [error])])) is error
    several = ExceptionGroup("two", [error, ValueError("other")])
    assert single_error(several) is several
