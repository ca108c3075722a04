"""The conversation's domain types: what a session remembers and a provider is asked.

These are not wire types: the ``start`` control (:mod:`streamer.wire.controls`) carries them,
the session keeps its history as them, and every provider reads them
(:class:`streamer.providers.base.ProviderRequest`). Pure: no I/O, no Trio.
"""

from __future__ import annotations

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
    """The ``echo`` provider's options (``start.echo``): characters per delta and the pause
    between deltas in milliseconds; ``None`` falls back to ``[providers.echo]``."""

    delta_chars: int | None = None
    interval_ms: float | None = None
