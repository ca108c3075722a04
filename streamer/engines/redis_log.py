"""The redis engine of the stream log: a stream's log replicated through a Redis Stream
(``docs/engines.md``).

- :class:`RedisLogPublisher` runs on the process that generates a stream: it follows the
  stream's :class:`~streamer.log.stream_log.MemoryStreamLog` and sends what is new, every wake,
  as one pipeline of ``XADD`` commands (``MAXLEN ~`` the replay window, counted in Redis
  entries) to the key ``{prefix}stream:{stream_id}``, ending with the ``end`` record; a Redis
  entry holds one record, or up to :data:`BATCH_RECORDS` of them (:func:`batch_fields`).
- :class:`RedisLogFollower` runs on any other process: ``XREAD`` from its Redis id cursor
  into a mirror ``MemoryStreamLog`` (the existing subscriptions read it unchanged), finished
  on the ``end`` record; live, through the process's one multi-key reader
  (``engines/redis_reader.py``) when it is given one.

The epoch comes from Redis: every ``XADD`` after the first uses ``NOMKSTREAM``, so a key that
Redis lost (``FLUSHALL``, a restart without persistence, a failover) answers nil; the publisher
then takes a new epoch (``INCR {prefix}epoch``) and republishes the log from seq 1. A follower
that meets another epoch or a missing ``seq`` raises :class:`LogGap` with its mirror an exact
prefix of the stream. Connection errors are retried with backoff for ``retry_s``, then
:class:`RedisUnavailable`. Commands: https://redis.io/docs/latest/commands/xadd/,
https://redis.io/docs/latest/commands/xread/; the client is coredis (runs under Trio via anyio).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import coredis
import trio
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import RedisError, UnblockedError
from coredis.tokens import PureToken

from streamer.engines.redis_keys import Keys
from streamer.log.codec import Record, decode_record, encode_record
from streamer.log.stream_log import LogEntry, MemoryStreamLog
from streamer.runtime.waiter import Waiter

if TYPE_CHECKING:
    from streamer.engines.redis_reader import StreamReaders

T = TypeVar("T")

#: what a lost connection raises (coredis' own, and timeouts of a half-open socket)
CONNECTION_ERRORS = (RedisConnectionError, TimeoutError, OSError)
#: what any Redis command may raise: a lost connection, or Redis refusing the command
#: (``OOM`` under ``maxmemory-policy noeviction``, ``MISCONF``, ``READONLY`` on a replica,
#: ``EXECABORT``: coredis' ``ResponseError``); a long-lived loop survives all of them
REDIS_ERRORS = (RedisError, TimeoutError, OSError)
#: what :func:`with_retry` retries: a lost connection, and a blocking read that Redis ended
#: (``UNBLOCKED``: its role changed, a failover) and answers again
RETRIED_ERRORS = (*CONNECTION_ERRORS, UnblockedError)


#: the field of a Redis entry that carries several records: the JSON list of their fields
BATCH_FIELD = "b"
#: records per Redis entry at most (a wake's records go in as few entries as this allows)
BATCH_RECORDS = 64


def batch_fields(records: list[Record]) -> dict[str, str]:
    """The fields of one Redis entry holding ``records``: one record's own fields, or
    several under :data:`BATCH_FIELD` (one ``XADD`` instead of one per log entry)."""
    if len(records) == 1:
        return encode_record(records[0])
    return {BATCH_FIELD: json.dumps([encode_record(r) for r in records], ensure_ascii=False,
                                    separators=(",", ":"))}


def batch_records(fields: Mapping[Any, Any]) -> list[Record]:
    """The records of one Redis entry (:func:`batch_fields`). Raises ``ValueError``."""
    raw = fields.get(BATCH_FIELD, fields.get(BATCH_FIELD.encode()))
    if raw is None:
        return [decode_record(fields)]
    try:
        items = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed record batch: {exc}") from exc
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("a record batch is a JSON list of objects")
    return [decode_record(item) for item in items]


class LogGap(Exception):
    """The follower cannot continue its mirror exactly: ``why`` (the epoch changed, entries
    were trimmed or lost). ``epoch`` is the epoch found in Redis (``None``: unknown). The
    mirror holds an exact prefix of the stream; a resume against it is a ``resume_gap``."""

    def __init__(self, why: str, epoch: str | None) -> None:
        super().__init__(why)
        self.why = why
        self.epoch = epoch


class RedisUnavailable(Exception):
    """Redis did not answer for ``retry_s`` (the last connection error is the cause)."""


#: what a blocking client's commands wait beyond ``timeout_s`` (:func:`connect`): the
#: longest block the engine asks for (a routed stop's ``BLPOP``, 2 s) and a margin
BLOCKING_EXTRA_S = 3.0


def connect(url: str, timeout_s: float | None = None, *, blocking: bool = False
            ) -> coredis.Redis[bytes]:
    """A client for ``url`` (``redis://host:port/db``); use it as ``async with client:``.

    ``timeout_s`` (``engine.command_timeout_s``; ``None``: none) bounds the connection and
    every reply (coredis' ``connect_timeout``, ``stream_timeout``): a Redis that stops
    answering raises ``TimeoutError`` (one of :data:`CONNECTION_ERRORS`) rather than hang.
    A ``blocking`` client (blocking ``XREAD`` and ``BLPOP`` only) waits
    :data:`BLOCKING_EXTRA_S` more for its replies."""
    reply_s = None if timeout_s is None else timeout_s + (BLOCKING_EXTRA_S if blocking else 0)
    return coredis.Redis.from_url(url, decode_responses=False, connect_timeout=timeout_s,
                                  stream_timeout=reply_s)


def epoch_of(count: int) -> str:
    """The epoch of the counter's value ``count`` and a random suffix (the counter restarts
    after a flush; the suffix keeps a new epoch from equalling an old one), as
    ``"{count}-{6 hex}"`` (a cursor's epoch: ``[A-Za-z0-9_-]{1,32}``, ``wire/cursor.py``)."""
    return f"{count}-{secrets.token_hex(3)}"


async def new_epoch(redis: coredis.Redis[bytes], prefix: str) -> str:
    """A stream epoch from Redis: ``INCR {prefix}epoch`` (:func:`epoch_of`)."""
    return epoch_of(await redis.incr(Keys(prefix).epoch))


async def with_retry(call: Callable[[], Awaitable[T]], retry_s: float) -> T:
    """``await call()``, again after connection errors (and ``UNBLOCKED`` reads:
    :data:`RETRIED_ERRORS`; backoff 50 ms doubling to 1 s) for at most ``retry_s``
    seconds. Raises :class:`RedisUnavailable` after that."""
    deadline = trio.current_time() + retry_s
    delay = 0.05
    while True:
        try:
            return await call()
        except RETRIED_ERRORS as exc:
            if trio.current_time() + delay > deadline:
                raise RedisUnavailable(f"redis unavailable for {retry_s} s: {exc}") from exc
        await trio.sleep(delay)
        delay = min(delay * 2, 1.0)


class RedisLogPublisher:
    """Replicates one stream's log to Redis; :meth:`run` returns once the ``end`` record is
    stored (run it in the stream's nursery, beside the generation).

    Args:
        redis: an entered coredis client.
        log: the stream's log (the source of truth; it is only read).
        prefix: the keys' prefix (``engine.key_prefix``).
        maxlen: ``XADD … MAXLEN ~ maxlen`` (``engine.replay_maxlen``, entries).
        retry_s: how long connection errors are retried before :class:`RedisUnavailable`.
        ttl_s: the key expires this long after the last batch (every pipeline sets it, the
            ``end``'s too: ``resume.window_s``; 0: never), so finished streams, and the
            streams of a publisher that died before its ``end``, do not pile up in Redis.
        on_create: called with the pipeline of every batch that creates the key (the
            first, and the first after a lost key): what it queues there (the stream's
            metadata) is stored with the stream's first records, again after a flush.
        interval_s: the least time between two pipelines (0: one per wake): what comes
            meanwhile goes in the next, so a stream costs at most ``1 / interval_s`` round
            trips a second, and other processes see its entries up to that much later.
    """

    def __init__(self, redis: coredis.Redis[bytes], log: MemoryStreamLog, *,
                 prefix: str = "streamer:", maxlen: int = 10_000,
                 retry_s: float = 30.0, ttl_s: float = 900.0,
                 on_create: Callable[[Any], None] | None = None,
                 interval_s: float = 0.0) -> None:
        self._redis = redis
        self._log = log
        self._key = Keys(prefix).stream(log.stream_id)
        self._prefix = prefix
        self._maxlen = maxlen
        self._retry_s = retry_s
        self._ttl_ms = int(ttl_s * 1000)
        self._on_create = on_create
        self._interval_s = interval_s
        #: the stream's current epoch (``None`` before the first batch)
        self.epoch: str | None = None
        #: how many pipelines were sent, and epochs taken after the first (for tests, metrics)
        self.batches = 0
        self.epoch_changes = 0
        self._sent_seq = 0
        self._sent_parts = 0
        self._ended = False
        self._created = False

    async def run(self) -> None:
        """Publish until the log's ``end`` is stored. Raises :class:`RedisUnavailable`."""
        waiter = Waiter()
        self._log.attach(waiter, source=True)
        try:
            while True:
                await self.publish()
                if self._ended:
                    return
                if self._interval_s > 0:
                    await trio.sleep(self._interval_s)
                await waiter.wait()
        finally:
            self._log.detach(waiter)

    async def publish(self) -> None:
        """:meth:`publish_pending`, retried on connection errors for ``retry_s``. Raises
        :class:`RedisUnavailable`."""
        await with_retry(self.publish_pending, self._retry_s)

    async def publish_pending(self) -> None:
        """Send every record not yet stored, in one pipeline; after a lost key, take a new
        epoch and send the whole log again. Raises coredis' connection errors."""
        while True:
            if self.epoch is None:
                self.epoch = await new_epoch(self._redis, self._prefix)
            records, seq, parts = self._pending()
            if not records:
                return
            if await self._send(records):
                self._sent_seq, self._sent_parts = seq, parts
                self._ended = self._ended or records[-1].kind == "end"
                return
            # the key is gone (flushed, restarted, failed over): a new epoch, from seq 1
            self.epoch = None
            self.epoch_changes += 1
            self._sent_seq = self._sent_parts = 0
            self._created = self._ended = False

    def _pending(self) -> tuple[list[Record], int, int]:
        log, epoch = self._log, self.epoch or ""
        parts = self._sent_parts
        records: list[Record] = []
        entries: list[LogEntry] = log.cursor(self._sent_seq).take()
        for entry in entries:
            pieces = tuple(log.source(parts, entry.source_parts))
            parts = entry.source_parts
            records.append(Record("entry", epoch, pieces, parts, entry))
        seq = entries[-1].seq if entries else self._sent_seq
        pieces = tuple(log.source(parts, log.source_count))
        if log.finished and log.complete is not None and not self._ended:
            records.append(Record("end", epoch, pieces, log.source_count,
                                  complete=log.complete, error=log.error))
        elif pieces:
            records.append(Record("source", epoch, pieces, log.source_count))
        return records, seq, log.source_count

    async def _send(self, records: list[Record]) -> bool:
        """One pipeline of ``XADD``s, each of at most :data:`BATCH_RECORDS` records;
        ``False``: the key was lost (nothing was stored)."""
        replies: list[Any] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(records), BATCH_RECORDS):
                replies.append(pipe.xadd(
                    self._key, batch_fields(records[start:start + BATCH_RECORDS]),
                    nomkstream=self._created or None, trim_strategy=PureToken.MAXLEN,
                    threshold=self._maxlen, trim_operator=PureToken.APPROXIMATELY))
            if self._ttl_ms > 0:  # (a publisher killed mid-stream leaves no key forever)
                pipe.pexpire(self._key, self._ttl_ms)
            if not self._created and self._on_create is not None:
                self._on_create(pipe)
        ids = [await reply for reply in replies]
        self.batches += 1
        if any(entry_id is None for entry_id in ids):
            return False
        self._created = True
        return True


class RedisLogFollower:
    """Follows one stream's Redis Stream into :attr:`log`, a mirror ``MemoryStreamLog``.

    Args:
        redis: an entered coredis client.
        stream_id: the stream to follow.
        prefix: the keys' prefix (``engine.key_prefix``).
        epoch: the epoch the mirror must have (a client cursor's); ``None``: the first found.
        block_ms: one ``XREAD``'s blocking time (a read that times out is simply repeated).
        count: at most this many records per ``XREAD``.
        retry_s: how long connection errors are retried before :class:`RedisUnavailable`.
        reader: the process's :class:`~streamer.engines.redis_reader.StreamReaders`: the
            live part of :meth:`run` is read there (one multi-key ``XREAD`` for many
            streams, on a client of its own); ``None``: a blocking ``XREAD`` of its own on
            ``redis`` (holds one of its pooled connections while it blocks).
    """

    def __init__(self, redis: coredis.Redis[bytes], stream_id: str, *,
                 prefix: str = "streamer:", epoch: str | None = None, block_ms: int = 1_000,
                 count: int = 512, retry_s: float = 30.0,
                 reader: StreamReaders | None = None) -> None:
        self._redis = redis
        self._reader = reader
        self._key = Keys(prefix).stream(stream_id)
        self._block_ms = block_ms
        self._count = count
        self._retry_s = retry_s
        self.log = MemoryStreamLog(stream_id)
        self.epoch = epoch
        #: the Redis id of the last record applied (the follower's cursor)
        self.last_id = "0-0"

    async def run(self) -> MemoryStreamLog:
        """Mirror until the ``end`` record; returns the finished mirror.

        Raises:
            LogGap: the epoch changed or records are missing (the mirror stays a prefix).
            RedisUnavailable: connection errors for longer than ``retry_s``.
            ValueError: a record that is not the codec's.
        """
        if self._reader is not None and not self.log.finished:
            async with self._reader.follow(self._key, self.last_id) as following:
                while not self.log.finished:
                    self._apply_batch(await following.next())
        while not self.log.finished:
            self._apply_batch(await with_retry(self._read, self._retry_s))
        return self.log

    async def catch_up(self) -> None:
        """Mirror what Redis holds now, without blocking: returns once a read finds nothing
        new (or the ``end``), so a resume planned next sees every entry published before.
        Raises like :meth:`run`."""
        while not self.log.finished:
            batch = await with_retry(lambda: self._read(block=False), self._retry_s)
            if not batch:
                return
            self._apply_batch(batch)

    def _apply_batch(self, batch: list[tuple[str, Any]]) -> None:
        for entry_id, fields in batch:
            for record in batch_records(fields):
                self.apply(record)
            self.last_id = entry_id

    async def _read(self, block: bool = True) -> list[tuple[str, Any]]:
        reply = await self._redis.xread({self._key: self.last_id}, count=self._count,
                                        block=self._block_ms if block else None)
        if not reply:
            return []
        return [(entry.identifier.decode() if isinstance(entry.identifier, bytes)
                 else str(entry.identifier), entry.field_values)
                for entries in reply.values() for entry in entries]

    def apply(self, record: Record) -> None:
        """Apply one record to the mirror. A record the mirror already holds (same epoch, an
        entry's seq or a source record's pieces already applied: the publisher resent a
        pipeline whose reply was lost, ``with_retry``) is skipped. Raises :class:`LogGap`
        (nothing applied) when it does not continue the mirror exactly."""
        log = self.log
        if log.finished:
            return  # (a resent end, in the same read as the first)
        if self.epoch is None:
            self.epoch = record.epoch
        if record.epoch != self.epoch:
            raise LogGap(f"the stream's epoch changed ({self.epoch} → {record.epoch})",
                         record.epoch)
        entry = record.entry
        if record.parts <= log.source_count and (
                entry.seq <= log.last_seq if entry is not None else record.kind == "source"):
            return  # applied already: a resent record
        if entry is not None and entry.seq != log.last_seq + 1:
            raise LogGap(f"entries missing: seq {entry.seq} after {log.last_seq}", record.epoch)
        if log.source_count + len(record.sources) != record.parts:
            raise LogGap(f"source pieces missing: {record.parts} after {log.source_count}",
                         record.epoch)
        for piece in record.sources:
            log.append_source(piece)
        if entry is not None and entry.op is not None:
            log.append(entry.op)
        elif entry is not None and entry.event is not None:
            log.append_event(entry.event)
        elif record.kind == "end" and record.complete is not None:
            log.finish(record.complete, record.error)
