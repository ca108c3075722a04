"""The store of sessions and messages in Redis (``persistence.store = "redis"``, the default
with ``engine.kind = "redis"``): every process of a deployment reads every answer, finished
or partial (``docs/engines.md``, "Persistence").

Keys (``P`` = ``engine.key_prefix`` + ``store:``)::

    P session:{session_key}   hash: created_at, updated_at (Redis TIME, Unix seconds), owner
                              (the subject; absent = "anonymous", as SQLite's NULL),
                              refreshed (when its messages' where-keys were last renewed)
    P order:{session_key}     sorted set: message_id -> position (the count when first saved)
    P messages:{session_key}  hash: message_id -> the MessageRecord as JSON, and
                              message_id#rank -> how far it got (:func:`rank_of`)
    P where:{message_id}      string: the message's session_key (``message(id)``)
    P sessions                sorted set: session_key -> updated_at (``purge``)

Writes are Lua scripts (atomic; several records' scripts go in one ``MULTI``), registered
through coredis (``Redis.register_script``, ``EVALSHA``;
https://redis.io/docs/latest/develop/interactive/programmability/eval-intro/). The scripts
name keys they compute, so the store needs one Redis (with replicas), not Redis Cluster.

Bounded like the SQLite store: with ``persistence.retention_days`` > 0 a session's keys
expire that long after its last write (``PEXPIRE``), its where-keys twice that long, renewed
whenever a retention period has passed since the last renewal (so they outlive the session
and never more than two periods); :meth:`RedisStore.purge` deletes sessions past it at once,
as SQLite's does. Messages are bounded by ``streams.max_response_chars`` and
``streams.max_prompt_chars``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import coredis
import trio

from streamer.config import Config
from streamer.engines.redis_client import HeldClient
from streamer.engines.redis_keys import Keys, text
from streamer.engines.redis_log import with_retry
from streamer.persistence import MessageRecord

T = TypeVar("T")

#: how long one store call retries a lost connection (s), then ``RedisUnavailable``
RETRY_S = 2.0
#: sessions one purge script deletes at most (the purge repeats until none is left)
PURGE_BATCH = 200

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6\n"

#: drop(P, session_key) -> 1 if the session existed: its keys, its where-keys, its age
_DROP = """
local function drop(P, sid)
  local existed = redis.call('EXISTS', P .. 'session:' .. sid)
  for _, id in ipairs(redis.call('ZRANGE', P .. 'order:' .. sid, 0, -1)) do
    if redis.call('GET', P .. 'where:' .. id) == sid then
      redis.call('DEL', P .. 'where:' .. id)
    end
  end
  redis.call('DEL', P .. 'session:' .. sid, P .. 'order:' .. sid, P .. 'messages:' .. sid)
  redis.call('ZREM', P .. 'sessions', sid)
  return existed
end
"""

#: KEYS: session, order, messages, where, sessions; ARGV: session_key, message_id, JSON,
#: ttl_ms (0: none), P, rank (:func:`rank_of`) -> 0 when a stored record of a higher rank
#: is kept (a late partial save after the answer's end), else 1
SAVE = _NOW + """
local ttl, rank = tonumber(ARGV[4]), tonumber(ARGV[6])
if tonumber(redis.call('HGET', KEYS[3], ARGV[2] .. '#rank') or '-1') > rank then return 0 end
redis.call('HSET', KEYS[3], ARGV[2] .. '#rank', rank)
redis.call('HSETNX', KEYS[1], 'created_at', now)
redis.call('HSET', KEYS[1], 'updated_at', now)
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  redis.call('ZADD', KEYS[2], redis.call('ZCARD', KEYS[2]), ARGV[2])
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('SET', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], now, ARGV[1])
if ttl > 0 then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
  redis.call('PEXPIRE', KEYS[4], 2 * ttl)
  local renewed = tonumber(redis.call('HGET', KEYS[1], 'refreshed') or '0')
  if (now - renewed) * 1000 >= ttl then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
      redis.call('PEXPIRE', ARGV[5] .. 'where:' .. id, 2 * ttl)
    end
    redis.call('HSET', KEYS[1], 'refreshed', now)
  end
end
return 1
"""

#: KEYS: session, sessions; ARGV: session_key, owner, ttl_ms
CREATE = _NOW + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'created_at', now, 'updated_at', now, 'owner', ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""

#: KEYS: session, order, messages, sessions; ARGV: P, session_key
DELETE = _DROP + "return drop(ARGV[1], ARGV[2])\n"

#: KEYS: sessions; ARGV: P, older_than_s, batch -> {deleted, looked at}
PURGE = _NOW + _DROP + """
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])),
                       'LIMIT', 0, tonumber(ARGV[3]))
local count = 0
for _, sid in ipairs(old) do count = count + drop(ARGV[1], sid) end
return {count, #old}
"""


def record_json(record: MessageRecord) -> str:
    """A message as the JSON the store keeps (every field of :class:`MessageRecord`)."""
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False, separators=(",", ":"))


def rank_of(record: MessageRecord) -> int:
    """How far ``record`` got: its ``last_seq``, then final (a ``finish_reason``) over a
    checkpoint. A save never replaces a stored record of a higher rank, so a late partial
    save (a lost stream's, after its owner came back and ended it; a checkpoint that
    arrives after the end) cannot undo a finished answer; an equal rank is replaced."""
    return record.last_seq * 2 + (record.finish_reason is not None)


def record_of(raw: bytes | str) -> MessageRecord:
    """The message of :func:`record_json`. Raises ``ValueError`` on anything else."""
    try:
        return MessageRecord(**json.loads(raw))
    except (TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed message in redis: {exc}") from exc


class RedisStore:
    """The :class:`~streamer.persistence.MessageStore` in Redis.

    Open with :meth:`open`, close with :meth:`aclose`. Every method raises
    ``streamer.engines.redis_log.RedisUnavailable`` when Redis does not answer for
    :data:`RETRY_S`, and ``ValueError`` on a malformed stored message.

    Args:
        client: the held coredis client.
        prefix: ``engine.key_prefix``.
        ttl_s: ``persistence.retention_days`` in seconds (0: keys never expire).
    """

    def __init__(self, client: HeldClient, prefix: str, ttl_s: float) -> None:
        self._client = client
        self._prefix = Keys(prefix).store
        self._ttl_ms = int(ttl_s * 1000)
        self.path = f"redis {client.url.rsplit('@', 1)[-1]} keys {self._prefix}*"
        redis = client.redis
        self._save = redis.register_script(SAVE)
        self._create = redis.register_script(CREATE)
        self._delete = redis.register_script(DELETE)
        self._purge = redis.register_script(PURGE)

    @classmethod
    async def open(cls, config: Config, nursery: trio.Nursery) -> RedisStore:
        """The store at ``engine.redis_url``; its client lives in a task of ``nursery``.

        Raises:
            RedisUnavailable: Redis does not answer.
        """
        client = HeldClient(config.engine.redis_url, config.engine.command_timeout_s)
        await client.start(nursery)
        return cls(client, config.engine.key_prefix,
                   config.persistence.retention_days * 86_400)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    async def _call(self, call: Callable[[coredis.Redis[Any]], Awaitable[T]]) -> T:
        return await with_retry(lambda: call(self._client.redis), RETRY_S)

    # -- writes -------------------------------------------------------------------------

    async def save_messages(self, records: list[MessageRecord]) -> None:
        """Insert or update messages in one ``MULTI`` (touching their sessions, made if
        needed). A message keeps the position it was first saved at, and a stored record
        that got further (:func:`rank_of`) is kept."""

        async def write(redis: coredis.Redis[Any]) -> None:
            async with redis.pipeline(transaction=True) as pipe:
                for r in records:
                    sid = r.session_id
                    self._save(keys=[self._key("session", sid), self._key("order", sid),
                                     self._key("messages", sid),
                                     self._key("where", r.message_id),
                                     f"{self._prefix}sessions"],
                               args=[sid, r.message_id, record_json(r), self._ttl_ms,
                                     self._prefix, rank_of(r)], client=pipe)

        if records:
            await self._call(write)

    async def save_message(self, record: MessageRecord) -> None:
        """:meth:`save_messages` of one message."""
        await self.save_messages([record])

    async def create_session(self, session_id: str, owner: str) -> None:
        """Record a new session and its owner's subject (a no-op if it exists)."""
        await self._call(lambda redis: self._create(
            keys=[self._key("session", session_id), f"{self._prefix}sessions"],
            args=[session_id, owner, self._ttl_ms], client=redis))

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; ``True`` if it existed."""
        existed: Any = await self._call(lambda redis: self._delete(
            keys=[self._key("session", session_id), self._key("order", session_id),
                  self._key("messages", session_id), f"{self._prefix}sessions"],
            args=[self._prefix, session_id], client=redis))
        return bool(existed)

    async def purge(self, older_than_s: float) -> int:
        """Delete sessions not updated for ``older_than_s`` seconds (Redis's clock); how
        many existed still (the others had expired already)."""
        deleted = 0
        while True:
            reply: Any = await self._call(lambda redis: self._purge(
                keys=[f"{self._prefix}sessions"],
                args=[self._prefix, repr(float(older_than_s)), PURGE_BATCH], client=redis))
            count, seen = reply
            deleted += int(count)
            if int(seen) < PURGE_BATCH:
                return deleted

    # -- reads --------------------------------------------------------------------------

    async def session_owner(self, session_id: str) -> str | None:
        """The subject that owns a stored session (``"anonymous"`` for a session first
        saved without one), or ``None`` if the store does not know it."""
        created, owner = await self._call(lambda redis: redis.hmget(
            self._key("session", session_id), ["created_at", "owner"]))
        if created is None:
            return None
        return "anonymous" if owner is None else str(text(owner))

    async def messages(self, session_id: str) -> list[MessageRecord]:
        """A session's messages, oldest first (empty if the session is unknown)."""

        async def read(redis: coredis.Redis[Any]) -> tuple[Any, Any]:
            async with redis.pipeline(transaction=False) as pipe:
                order = pipe.zrange(self._key("order", session_id), 0, -1)
                stored = pipe.hgetall(self._key("messages", session_id))
            return await order, await stored

        order, stored = await self._call(read)
        by_id = {text(k): v for k, v in stored.items()}
        return [record_of(by_id[text(i)]) for i in order if text(i) in by_id]

    async def message(self, message_id: str) -> MessageRecord | None:
        """One message by id (an assistant message's id is its ``stream_id``)."""
        session = await self._call(lambda redis: redis.get(self._key("where", message_id)))
        if session is None:
            return None
        raw = await self._call(lambda redis: redis.hget(
            self._key("messages", str(text(session))), message_id))
        return None if raw is None else record_of(raw)

    async def has_session(self, session_id: str) -> bool:
        found = await self._call(lambda redis: redis.exists([self._key("session", session_id)]))
        return bool(found)


__all__ = ["RedisStore", "rank_of", "record_json", "record_of"]
