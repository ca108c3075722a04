"""One owner per generation: a stream's lease in Redis (``docs/engines.md``, "Ownership").

======================================  =====================================================
key                                     value
======================================  =====================================================
``{prefix}lease:{stream_id}``           the id of the process that runs the stream's model
                                        call (``SET NX PX engine.lease_ttl_s``), renewed
                                        every third of the TTL while the stream runs, then
                                        :data:`ENDED` once its ``end`` record is stored
``{prefix}lost:{stream_id}``            the claim of the one process that persists a lost
                                        stream's partial answer (``SET NX PX``)
======================================  =====================================================

A stream whose lease is gone while its log has no ``end`` lost its owner (killed, cut off from
Redis): the processes that mirror it end it with ``generation_lost`` and its partial answer.
Renewing and releasing compare the holder first (a Lua script, atomic in Redis), so a process
never extends or deletes a lease it does not hold. Commands:
https://redis.io/docs/latest/commands/set/ (``NX``, ``PX``),
https://redis.io/docs/latest/develop/interact/programmability/eval-intro/.
"""

from __future__ import annotations

import coredis
from coredis.tokens import PureToken

from streamer.engines.redis_keys import Keys, text

#: renew: extend the lease if this process holds it (1), take it again if it is gone, e.g.
#: after a ``FLUSHALL`` (2), or tell that another process holds it (0)
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

#: a released lease's value: the stream's ``end`` is stored (no owner is needed any more)
ENDED = "~ended"

#: release: mark the lease ended (for ARGV[2] ms) if this process holds it (1), else nothing
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], '""" + ENDED + """', 'PX', ARGV[2])
  return 1
end
return 0
"""


async def take_lease(redis: coredis.Redis[bytes], prefix: str, stream_id: str, holder: str,
                     ttl_ms: int) -> bool:
    """``SET lease holder NX PX ttl_ms``: ``True`` if ``holder`` owns the stream now."""
    return bool(await redis.set(Keys(prefix).lease(stream_id), holder, px=ttl_ms,
                                condition=PureToken.NX))


async def renew_lease(redis: coredis.Redis[bytes], prefix: str, stream_id: str, holder: str,
                      ttl_ms: int) -> int:
    """Extend ``holder``'s lease by ``ttl_ms``: 1 renewed, 2 taken again (it was gone), 0 held
    by another process (nothing changed)."""
    result = await redis.eval(_RENEW, keys=[Keys(prefix).lease(stream_id)],
                              args=[holder, ttl_ms])
    return result if isinstance(result, int) else 0


async def release_lease(redis: coredis.Redis[bytes], prefix: str, stream_id: str,
                        holder: str, keep_ms: int) -> bool:
    """The stream's ``end`` is stored: if ``holder`` holds the lease, its value becomes
    :data:`ENDED` for ``keep_ms`` (a mirror that lags behind then knows the ``end`` is there,
    not a dead owner); ``True`` if it did."""
    return bool(await redis.eval(_RELEASE, keys=[Keys(prefix).lease(stream_id)],
                                 args=[holder, keep_ms]))


async def lease_holder(redis: coredis.Redis[bytes], prefix: str, stream_id: str
                       ) -> str | None:
    """The process that holds the stream's lease: ``None`` when nobody does (it expired:
    the owner died), :data:`ENDED` once the stream's ``end`` is stored."""
    return text(await redis.get(Keys(prefix).lease(stream_id)))


async def claim_lost(redis: coredis.Redis[bytes], prefix: str, stream_id: str, holder: str,
                     ttl_ms: int) -> bool:
    """Claim the writing of a lost stream's partial answer: ``True`` for exactly one caller
    (``SET NX PX``; the claim lives ``ttl_ms``)."""
    return bool(await redis.set(Keys(prefix).lost(stream_id), holder, px=ttl_ms,
                                condition=PureToken.NX))
