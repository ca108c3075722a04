"""One blocking reader for all the Redis Streams a process follows (``docs/engines.md``,
"One reader for the followed streams").

A blocking ``XREAD`` holds its connection until it returns, so one read per followed stream
on the process's client would take every pooled connection once 64 streams are followed
(coredis' default pool), and every other command of the process would wait for a read to
time out. Instead, :class:`StreamReaders` runs a few reader tasks on a client of their own
(never the command client); each follows up to ``max_keys`` streams with a single
multi-key ``XREAD COUNT … BLOCK …`` (https://redis.io/docs/latest/commands/xread/) and hands
each stream's entries to its :class:`Following`. A new reader starts when every reader has
``max_keys`` streams, so the blocking connections grow with ``streams / max_keys``, not with
the streams.

A stream added while its reader is blocked wakes the read at once: the read also follows the
reader's wake stream ``{prefix}wake:{process_id}:{n}`` from its last id, and the adding task
appends to it (``XADD MAXLEN 1``, expiring after :data:`WAKE_TTL_MS`); the read returns and
is issued again with the new key. A stream removed is only dropped from the next read.
Connection errors are retried for ``retry_s`` (``with_retry``); after that (or when Redis
refuses the read, e.g. a key of another type) every stream the reader followed gets
:class:`~streamer.engines.redis_log.RedisUnavailable` (logged); the reader goes on for the
streams added later.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import coredis
import trio
from coredis.tokens import PureToken

from streamer.engines.redis_keys import Keys, text
from streamer.engines.redis_log import REDIS_ERRORS, RedisUnavailable, with_retry
from streamer.runtime.waiter import Waiter

logger = logging.getLogger("streamer.runtime")

#: streams one ``XREAD`` follows at most (a reader more starts beyond)
MAX_KEYS = 256
#: a reader's wake stream expires this long after its last wake (ms)
WAKE_TTL_MS = 60_000

Entries = list[tuple[str, Any]]


def id_order(identifier: str) -> tuple[int, int]:
    """A Redis entry id as ``(milliseconds, sequence)``, the order Redis gives them."""
    ms, _, seq = identifier.partition("-")
    return int(ms), int(seq or 0)


class Following:
    """One stream followed through a reader: its entries after ``last_id``, handed over by
    the reader (:meth:`next`)."""

    def __init__(self, key: str, last_id: str) -> None:
        self.key = key
        #: the id of the last entry handed over (the read goes on after it)
        self.last_id = last_id
        self._pending: Entries = []
        self._error: BaseException | None = None
        self._waiter = Waiter()

    async def next(self) -> Entries:
        """The entries handed over since the last call, ``[(entry id, fields)]`` (waits for
        at least one). Raises :class:`RedisUnavailable` if the reader gave up."""
        while not self._pending and self._error is None:
            await self._waiter.wait()
        if self._pending:
            batch, self._pending = self._pending, []
            return batch
        assert self._error is not None
        raise self._error

    def hand_over(self, entries: list[Any]) -> None:
        """Keep the entries after :attr:`last_id` (the read may start earlier: another
        follower of the same key) and wake the follower."""
        after = id_order(self.last_id)
        new = [(str(text(e.identifier)), e.field_values) for e in entries
               if id_order(str(text(e.identifier))) > after]
        if new:
            self._pending.extend(new)
            self.last_id = new[-1][0]
            self._waiter.wake()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._waiter.wake()


class _Reader:
    """One task's multi-key blocking ``XREAD`` over its followed streams."""

    def __init__(self, redis: coredis.Redis[Any], wake_key: str, block_ms: int, count: int,
                 retry_s: float) -> None:
        self.redis = redis
        self.wake_key = wake_key
        self.follows: list[Following] = []
        self.reads = 0
        self._block_ms, self._count, self._retry_s = block_ms, count, retry_s
        self._wake_id = "0-0"
        self._reading = False
        self._woken = False
        self._idle = Waiter()

    async def add(self, follow: Following) -> None:
        self.follows.append(follow)
        if not self._reading:
            self._idle.wake()  # (or picked up by the next read)
        elif not self._woken:  # one wake per read, however many streams come meanwhile
            self._woken = True
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xadd(self.wake_key, {"w": "1"}, trim_strategy=PureToken.MAXLEN,
                              threshold=1)
                    pipe.pexpire(self.wake_key, WAKE_TTL_MS)
            except REDIS_ERRORS:  # the read is failing too (its retry reads the new key),
                pass  # or Redis refuses writes: the new key is read when the read returns

    def remove(self, follow: Following) -> None:
        if follow in self.follows:
            self.follows.remove(follow)

    async def run(self) -> None:
        while True:
            if not self.follows:
                await self._idle.wait()
                continue
            self._reading, self._woken = True, False
            try:
                reply = await with_retry(self._read, self._retry_s)
            except Exception as exc:  # Redis gone, or refused the read: the followers end
                error = exc if isinstance(exc, RedisUnavailable) else RedisUnavailable(
                    f"the stream reader's XREAD failed: {exc!r}")
                logger.error("redis stream reader: %s", error)
                for follow in self.follows:
                    follow.fail(error)
                await trio.sleep(0.05)  # they leave; a read that keeps failing never spins
                continue
            finally:
                self._reading = False
            self._hand_over(reply or {})

    async def _read(self) -> Any:
        streams: dict[str, str] = {self.wake_key: self._wake_id}
        for follow in self.follows:
            known = streams.get(follow.key)
            if known is None or id_order(follow.last_id) < id_order(known):
                streams[follow.key] = follow.last_id
        self.reads += 1
        return await self.redis.xread(streams, count=self._count, block=self._block_ms)

    def _hand_over(self, reply: Any) -> None:
        by_key = {str(text(key)): entries for key, entries in reply.items()}
        wakes = by_key.pop(self.wake_key, None)
        if wakes:
            self._wake_id = str(text(wakes[-1].identifier))
        for follow in list(self.follows):
            entries = by_key.get(follow.key)
            if entries:
                follow.hand_over(entries)


class StreamReaders:
    """The process's readers of followed Redis Streams (see the module's doc).

    Args:
        redis: an entered coredis client for blocking reads only (not the command client:
            each reader holds one of its connections while it blocks).
        prefix: the keys' prefix (``engine.key_prefix``).
        process_id: names the readers' wake streams.
        block_ms: one ``XREAD``'s blocking time (a read that times out is repeated).
        count: entries per stream per ``XREAD`` at most.
        retry_s: how long connection errors are retried before the followers get
            :class:`RedisUnavailable`.
        max_keys: streams per ``XREAD`` at most.
    """

    def __init__(self, redis: coredis.Redis[Any], *, prefix: str, process_id: str,
                 block_ms: int = 1_000, count: int = 512, retry_s: float = 30.0,
                 max_keys: int = MAX_KEYS) -> None:
        self.redis = redis
        self._keys, self._process_id = Keys(prefix), process_id
        self._args = (block_ms, count, retry_s)
        self._max_keys = max_keys
        self.readers: list[_Reader] = []
        self._nursery: trio.Nursery | None = None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Hold the readers' nursery until cancelled (start it with ``nursery.start``)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    @property
    def followed(self) -> int:
        """The streams followed now."""
        return sum(len(reader.follows) for reader in self.readers)

    @asynccontextmanager
    async def follow(self, key: str, last_id: str) -> AsyncIterator[Following]:
        """Follow the Redis Stream ``key`` after the entry id ``last_id`` while the context
        is open. Raises :class:`RedisUnavailable` when the readers are not running."""
        reader = self._reader()
        follow = Following(key, last_id)
        try:
            await reader.add(follow)  # (cancelled during its wake: removed all the same)
            yield follow
        finally:
            reader.remove(follow)

    def _reader(self) -> _Reader:
        """The reader with the fewest streams, a new one if they all have ``max_keys``."""
        if self._nursery is None:
            raise RedisUnavailable("the stream readers are not running")
        if self.readers:
            reader = min(self.readers, key=lambda r: len(r.follows))
            if len(reader.follows) < self._max_keys:
                return reader
        reader = _Reader(self.redis, self._keys.wake(self._process_id, len(self.readers)),
                         *self._args)
        self.readers.append(reader)
        self._nursery.start_soon(reader.run, name=f"stream reader {len(self.readers)}")
        return reader
