"""The streams each identity runs and starts, counted in Redis for every process
(``engine.kind = "redis"``; ``[limits]``, ``docs/engines.md``, "Limits across processes").

Keys (``P`` = ``engine.key_prefix`` + ``limits:``)::

    P streams:{subject}   sorted set: token -> lease end (ms, Redis TIME); a member per stream
                          running or queued (``limits.max_streams_per_identity``)
    P starts:{subject}    sorted set: token -> start (ms); the streams started in the last
                          minute (``limits.streams_per_minute``, a moving window)
    P conns:{subject}     sorted set: token -> lease end; open connections (WebSocket, SSE)
    P addrs:{address}     the same per client address (``limits.max_connections_per_*``)

A start is one Lua script (:data:`RESERVE`, atomic: it drops lapsed members, refuses or adds
the stream), a connection another (:data:`CONNECT`): never a count that two processes both
read as free. A member is a lease: the
process that holds it renews it every :data:`RENEW_S` while the stream runs or waits and
removes it as soon as the stream ends, so the count is exact while processes live and the
streams of a process that died drop out within :data:`LEASE_S`. Both keys expire with their
last member. Only starts are counted: a mirror (another process's stream followed here) is
never a second stream. Commands: https://redis.io/docs/latest/commands/zadd/,
https://redis.io/docs/latest/develop/interactive/programmability/eval-intro/.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import coredis
import trio

from streamer.config import Config
from streamer.engines.redis_keys import Keys
from streamer.engines.redis_log import REDIS_ERRORS, connect, with_retry
from streamer.runtime.waiter import Waiter
from streamer.security.ratelimits import Ending, Verdict

#: what refused a connection, by :data:`CONNECT`'s answer
CONNECTION_LIMITS = {1: "max_connections_per_identity", 2: "max_connections_per_address"}

logger = logging.getLogger("streamer.runtime")

#: a stream's count lapses this long after its process last renewed it (s): how long the
#: streams of a process that died still count
LEASE_S = 30.0
#: how often a process renews the counts of its streams (s)
RENEW_S = 10.0
#: the moving window of ``limits.streams_per_minute`` (ms)
WINDOW_MS = 60_000
#: how long a start waits for Redis (s); then the process counts alone
RETRY_S = 2.0

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

#: KEYS: streams, starts; ARGV: token, max_streams, per_minute, lease_ms, window_ms,
#: tokens to release first... -> {0: admitted | 1: too many streams | 2: too many starts, wait}
RESERVE = _NOW + """
for i = 6, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max, per = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, window = tonumber(ARGV[4]), tonumber(ARGV[5])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return {1, 0} end
if per > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= per then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {2, tonumber(oldest[2]) + window - now}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], window)
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return {0, 0}
"""

#: KEYS: an identity's connections, an address's; ARGV: token, max_identity, max_address,
#: lease_ms, tokens to release first... -> 0: admitted | 1: the identity's limit | 2: the
#: address's
CONNECT = _NOW + """
for i = 5, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) redis.call('ZREM', KEYS[2], ARGV[i]) end
for i = 1, 2 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now) end
for i = 1, 2 do
  local max = tonumber(ARGV[i + 1])
  if max > 0 and redis.call('ZCARD', KEYS[i]) >= max then return i end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now + tonumber(ARGV[4]), ARGV[1])
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
return 0
"""

#: KEYS: a count; ARGV: lease_ms, tokens... (members already gone are not added back)
RENEW = _NOW + """
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""


class RedisLimits:
    """This process's side of the shared counts (``ClientLimits.shared``); run :meth:`run`
    in the server nursery.

    Args:
        config: ``engine.redis_url`` and ``engine.key_prefix``.
    """

    def __init__(self, config: Config) -> None:
        self.url = config.engine.redis_url
        self._timeout_s = config.engine.command_timeout_s
        self._prefix = Keys(config.engine.key_prefix).limits
        self._redis: coredis.Redis[Any] | None = None
        self._ready = trio.Event()
        self._scripts: dict[str, Any] = {}
        #: the counted things' tokens: ``token -> (the counts holding it, its stream)``
        self._held: dict[str, tuple[tuple[str, ...], Ending | None]] = {}
        #: tokens released here, not yet removed in Redis: ``token -> counts``
        self._releasing: dict[str, tuple[str, ...]] = {}
        #: ``stream_id -> token`` of the bound streams
        self._tokens: dict[str, str] = {}
        self._wake = Waiter()

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Hold the client; renew held counts every :data:`RENEW_S`, remove released ones
        at once. Redis errors are logged and retried (a lapsed count errs towards
        admitting); at the end, this process's counts are removed."""
        async with connect(self.url, self._timeout_s) as redis:
            self._redis = redis
            for name, script in (("reserve", RESERVE), ("connect", CONNECT),
                                 ("renew", RENEW)):
                self._scripts[name] = redis.register_script(script)
            self._ready.set()
            task_status.started()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._renewing)
                    await self._releasing_loop()
            finally:  # a graceful end released each count as its stream ended; the rest
                for token in list(self._held):  # lapse within LEASE_S if this fails
                    self.release(token)
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    try:
                        await self._flush()
                    except Exception as exc:  # the client may be closing already
                        logger.debug("limits: final release failed: %r", exc)

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script; ``trio.TooSlowError`` when Redis did not answer (a frozen Redis
        too) in :data:`RETRY_S` from the call."""
        with trio.fail_after(RETRY_S):
            await self._ready.wait()
            script = self._scripts[name]
            return await with_retry(lambda: script(keys=keys, args=args, client=self._redis),
                                    RETRY_S)

    async def reserve(self, subject: str, max_streams: int, per_minute: int) -> Verdict:
        """See ``security.ratelimits.SharedCounts.reserve``. Raises ``RedisUnavailable``
        or ``trio.TooSlowError`` when Redis does not answer in :data:`RETRY_S`."""
        if not max_streams and not per_minute:
            return Verdict(f"-{secrets.token_hex(8)}")  # nothing to count
        token = secrets.token_hex(8)
        streams, starts = self._key("streams", subject), self._key("starts", subject)
        # this process's ended streams leave the count first, even if their removal is
        # still on its way (a client that starts again at once is never refused for them)
        pending = [t for t, keys in self._releasing.items() if streams in keys]
        code, wait_ms = await self._script("reserve", [streams, starts], [
            token, max_streams, per_minute, int(LEASE_S * 1000), WINDOW_MS, *pending])
        if int(code) == 0:
            self._held[token] = ((streams, starts), None)
            return Verdict(token)
        refused = "streams_per_minute" if int(code) == 2 else "max_streams_per_identity"
        return Verdict(None, refused, int(wait_ms))

    async def reserve_connection(self, subject: str, address: str, max_identity: int,
                                 max_address: int) -> Verdict:
        """See ``security.ratelimits.SharedCounts.reserve_connection``; raises like
        :meth:`reserve`."""
        token = secrets.token_hex(8)
        keys = [self._key("conns", subject), self._key("addrs", address)]
        # this process's closed connections leave the counts first (as :meth:`reserve`)
        pending = [t for t, held in self._releasing.items() if set(held) & set(keys)]
        code = await self._script("connect", keys, [token, max_identity, max_address,
                                                    int(LEASE_S * 1000), *pending])
        if int(code) == 0:
            self._held[token] = ((*keys,), None)
            return Verdict(token)
        return Verdict(None, CONNECTION_LIMITS[int(code)])

    def bind(self, token: str, stream: Ending) -> None:
        if token in self._held:
            self._held[token] = (self._held[token][0], stream)
            self._tokens[stream.stream_id] = token

    def release(self, token: str, *, refund: bool = False) -> None:
        held = self._held.pop(token, None)
        if held is not None:
            keys, stream = held
            if stream is not None:
                self._tokens.pop(stream.stream_id, None)
            # a start's minute hit stays, unless it is refunded (it never started)
            starts = self._key("starts", "")
            self._releasing[token] = tuple(k for k in keys
                                           if refund or not k.startswith(starts))
            self._wake.wake()

    def ended(self, stream_id: str) -> None:
        """The stream ended: its count is released now (no-op for a stream not counted)."""
        token = self._tokens.get(stream_id)
        if token is not None:
            self.release(token)

    def held(self) -> int:
        """Things (streams, connections) this process counts in Redis now."""
        return len(self._held)

    async def _releasing_loop(self) -> None:
        while True:
            await self._wake.wait()
            try:
                await self._flush()
            except REDIS_ERRORS as exc:  # the counts lapse within LEASE_S anyway
                logger.error("limits: releasing counts in redis failed: %r", exc)
                await trio.sleep(RETRY_S)  # (they stay pending: the next wake retries)

    async def _flush(self) -> None:
        """Remove the released tokens from their counts; they stay pending (a start on
        this process removes them too) until Redis answered."""
        releasing = dict(self._releasing)
        if not releasing or self._redis is None:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, tokens in _by_key(releasing.items()).items():
                pipe.zrem(key, tokens)
        for token in releasing:
            self._releasing.pop(token, None)

    async def _renewing(self) -> None:
        """Every :data:`RENEW_S`: release the counts of streams that ended unseen (a crash),
        renew the others' leases (a start's minute hit is not a lease)."""
        while True:
            await trio.sleep(RENEW_S)
            for token, (_, stream) in list(self._held.items()):
                if stream is not None and stream.state == "done":
                    self.release(token)
            starts = self._key("starts", "")
            leases = {key: tokens for key, tokens in _by_key(
                (token, keys) for token, (keys, _) in self._held.items()).items()
                if not key.startswith(starts)}
            if not leases or self._redis is None:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, tokens in leases.items():
                        self._scripts["renew"](keys=[key], args=[int(LEASE_S * 1000), *tokens],
                                               client=pipe)
            except REDIS_ERRORS as exc:  # (refused writes too: OOM, READONLY)
                logger.error("limits: renewing counts in redis failed: %r", exc)


def _by_key(items: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, list[str]]:
    """``(token, keys)`` pairs as ``key -> tokens``."""
    out: dict[str, list[str]] = defaultdict(list)
    for token, keys in items:
        for key in keys:
            out[key].append(token)
    return out
