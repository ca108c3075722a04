"""Control messages routed to the process that runs a stream (``docs/engines.md``,
"Controls routed to the owner").

======================================  =====================================================
key                                     value
======================================  =====================================================
``{prefix}control:{process_id}``        a Redis Stream: the control messages other processes
                                        send to this one (``XADD MAXLEN ~``
                                        :data:`CONTROL_MAXLEN`; it expires
                                        :data:`CONTROL_TTL_MS` after the last one, so a dead
                                        process's stream goes)
``{prefix}ack:{request_id}``            a list: the owner's answer to one message (``LPUSH``,
                                        short-lived), read by the sender with ``BLPOP``
``{prefix}queued:{stream_id}``          a string: the process whose session queue holds the
                                        stream, while it waits (``SET PX``, deleted when it
                                        begins)
======================================  =====================================================

A Redis Stream rather than pub/sub: a message sent while the owner's reader reconnects is
still there when it reads again. A message can still be lost (its owner died, Redis lost it):
the sender waits for the ack a bounded time and otherwise tells its client so. Commands:
https://redis.io/docs/latest/commands/xadd/, https://redis.io/docs/latest/commands/blpop/.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import coredis
from coredis.tokens import PureToken

from streamer.engines.redis_keys import Keys, text

#: control messages kept per process's stream (``MAXLEN ~``); the owner reads them at once
CONTROL_MAXLEN = 1_000
#: a control stream and an ack expire this long after their last write (ms)
CONTROL_TTL_MS = 60_000


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """One control message for the owner of ``stream_id``.

    Attributes:
        request_id: names the ack (``c_`` + 12 hex characters).
        action: what to do (``stop``, ``queue_remove``, ``queue_move``).
        stream_id: the stream it is about.
        sender: the process that sent it (recorded in the owner's trace).
        session: the session key the sender's client is in (the queue controls: the holder
            checks the stream is that session's); ``""`` for ``stop``.
        position: ``queue_move``'s position (0 = next).
    """

    request_id: str
    action: str
    stream_id: str
    sender: str
    session: str = ""
    position: int = 0

    @classmethod
    def new(cls, action: str, stream_id: str, sender: str, session: str = "",
            position: int = 0) -> ControlMessage:
        return cls(f"c_{secrets.token_hex(6)}", action, stream_id, sender, session, position)

    def fields(self) -> dict[str, str]:
        fields = {"r": self.request_id, "a": self.action, "s": self.stream_id,
                  "f": self.sender}
        if self.session:
            fields.update(k=self.session, p=str(self.position))
        return fields

    @classmethod
    def of(cls, fields: dict[Any, Any]) -> ControlMessage:
        """The message of a Redis entry's fields. Raises ``ValueError`` on anything else."""
        got = {text(key): text(value) for key, value in fields.items()}
        try:
            return cls(str(got["r"]), str(got["a"]), str(got["s"]), str(got["f"]),
                       got.get("k") or "", int(got.get("p") or 0))
        except KeyError as exc:
            raise ValueError(f"a control message without {exc}") from exc




async def share_queued(redis: coredis.Redis[bytes], prefix: str, stream_id: str,
                       process_id: str, ttl_ms: int) -> None:
    """Record that ``process_id`` holds the queued ``stream_id`` (``SET PX``)."""
    await redis.set(Keys(prefix).queued(stream_id), process_id, px=ttl_ms)


async def forget_queued(redis: coredis.Redis[bytes], prefix: str, stream_id: str) -> None:
    """The stream left its queue (it began): its holder is no longer recorded."""
    await redis.delete([Keys(prefix).queued(stream_id)])


async def queued_holder(redis: coredis.Redis[bytes], prefix: str, stream_id: str
                        ) -> str | None:
    """The process holding the queued ``stream_id``, or ``None``."""
    return text(await redis.get(Keys(prefix).queued(stream_id)))


async def send_control(redis: coredis.Redis[bytes], prefix: str, owner: str,
                       message: ControlMessage) -> None:
    """Append ``message`` to ``owner``'s control stream (created if needed)."""
    key = Keys(prefix).control(owner)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(key, message.fields(), trim_strategy=PureToken.MAXLEN,
                  threshold=CONTROL_MAXLEN, trim_operator=PureToken.APPROXIMATELY)
        pipe.pexpire(key, CONTROL_TTL_MS)


async def wait_ack(redis: coredis.Redis[bytes], prefix: str, request_id: str,
                   timeout_s: float) -> str | None:
    """The owner's answer to ``request_id`` (``BLPOP``, at most ``timeout_s``); ``None``:
    none came."""
    reply = await redis.blpop([Keys(prefix).ack(request_id)], timeout=timeout_s)
    return text(reply[1]) if reply else None


async def send_ack(redis: coredis.Redis[bytes], prefix: str, request_id: str,
                   result: str) -> None:
    """Answer ``request_id`` with ``result`` (``applied``, ``not_running``)."""
    key = Keys(prefix).ack(request_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(key, [result])
        pipe.pexpire(key, CONTROL_TTL_MS)


async def read_controls(redis: coredis.Redis[bytes], prefix: str, process_id: str,
                        last_id: str, block_ms: int
                        ) -> list[tuple[str, dict[Any, Any]]]:
    """The entries of this process's control stream after ``last_id`` (blocking ``XREAD``
    up to ``block_ms``): ``[(entry id, fields)]``."""
    reply = await redis.xread({Keys(prefix).control(process_id): last_id},
                              count=64, block=block_ms)
    if not reply:
        return []
    return [(str(text(entry.identifier)), dict(entry.field_values))
            for entries in reply.values() for entry in entries]
