"""The conversation's domain types: what a session remembers and a provider is asked.

These are not wire types: the ``start`` control (:mod:`streamer.wire.controls`) carries them,
the session keeps its history as them, and every provider reads them
(:class:`streamer.providers.base.ProviderRequest`). Pure: no I/O, no Trio.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]
#: the roles a message may have, in the order the protocol lists them
ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation: its ``role`` and its text (``content``, markdown)."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class EchoOptions:
    """The ``echo`` provider's options (``start.echo``): characters per delta, the pause
    between deltas in milliseconds (``None`` falls back to ``[providers.echo]``), and how
    many times the answer repeats the prompt (a long answer from a short prompt)."""

    delta_chars: int | None = None
    interval_ms: float | None = None
    repeat: int = 1


# ------------------------------------------------------------------ the history budget
#
# A request sends: ``system``, the tools' schemas, the earlier turns and the new prompt (the
# ``start``'s last message). Only earlier turns may be left out, whole and oldest first, so
# that the request fits the provider's input budget (and the server's ``max_prompt_chars``).
# Sizes are in the budget's unit (tokens, or characters); the arithmetic is here, pure.


def split_turns(messages: Sequence[Message]) -> list[tuple[Message, ...]]:
    """Earlier messages as turns, oldest first: a turn starts at each ``user`` message and
    holds what follows it (the answer); messages before the first ``user`` one are a turn of
    their own."""
    out: list[list[Message]] = []
    for message in messages:
        if message.role == "user" or not out:
            out.append([message])
        else:
            out[-1].append(message)
    return [tuple(turn) for turn in out]


def turns_to_drop(fixed: int, turn_sizes: Sequence[int], limit: int | None) -> int | None:
    """The fewest oldest turns to leave out so that the rest fit: the least ``k`` with
    ``fixed + sum(turn_sizes[k:]) <= limit``.

    Args:
        fixed: what is always sent (system, tools, the new prompt, overheads).
        turn_sizes: each earlier turn's size, oldest first.
        limit: the budget (``None``: no budget, nothing dropped).

    Returns:
        ``k`` (0 to ``len(turn_sizes)``), or ``None`` when ``fixed`` alone passes ``limit``.
    """
    if limit is None:
        return 0
    if fixed > limit:
        return None
    total = fixed + sum(turn_sizes)
    k = 0
    while total > limit:
        total -= turn_sizes[k]
        k += 1
    return k


def chars_of(messages: Iterable[Message]) -> int:
    """Characters of the messages' contents."""
    return sum(len(m.content) for m in messages)


def remember(history: Sequence[Message], new: Sequence[Message], answer: str,
             max_chars: int) -> list[Message]:
    """The session's history after an answer: ``history``, the ``start``'s own messages and
    the answer; then its oldest whole turns are dropped while it holds more than
    ``max_chars`` characters (they could never be sent again: a request is at most that)."""
    turns = split_turns([*history, *new, Message("assistant", answer)])
    sizes = [chars_of(turn) for turn in turns]
    total = sum(sizes)
    k = 0
    while total > max_chars and k < len(turns) - 1:
        total -= sizes[k]
        k += 1
    return [message for turn in turns[k:] for message in turn]
