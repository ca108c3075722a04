"""Session and stream metadata shared through Redis (``docs/engines.md``): which identity a
session belongs to, its current stream, and which session a stream belongs to, so that any
process can check who may resume a stream and mirror it.

======================================  =====================================================
key                                     value
======================================  =====================================================
``{prefix}session:{session_key}``       a hash: ``identity`` (the JSON of the
                                        :class:`~streamer.security.identity.Identity` the
                                        session was created with), ``current`` (the id of
                                        its latest stream, if any)
``{prefix}meta:{stream_id}``            the JSON of a :class:`StreamMeta`
``{prefix}watched:{stream_id}``         set while another process has subscribers of the
                                        stream (a short TTL, renewed): the generating
                                        process's grace period counts them
``{prefix}starts``                      a Redis Stream: one entry per stream begun on any
                                        process (``k`` its session key, ``s`` its id;
                                        ``MAXLEN ~`` :data:`STARTS_MAXLEN`): every process
                                        reads it, so a connection idle on one process takes
                                        up a stream its session began on another
======================================  =====================================================

Every key expires ``ttl_s`` after its last write (``resume.window_s``, at least
:data:`MIN_TTL_S`); a running stream's keys are refreshed (:func:`refresh`). Commands:
https://redis.io/docs/latest/commands/hset/, https://redis.io/docs/latest/commands/pexpire/.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import coredis
from coredis.tokens import PureToken

from streamer.engines.redis_keys import Keys, text
from streamer.security.identity import Identity

#: the shortest life of a metadata key (s): a window of 0 still lets a running stream be found
MIN_TTL_S = 60.0
#: entries kept in ``{prefix}starts`` (``MAXLEN ~``): its readers follow it live
STARTS_MAXLEN = 10_000


@dataclass(frozen=True, slots=True)
class StreamMeta:
    """What another process needs to mirror a stream and check a resume of it.

    Attributes:
        stream_id: the stream.
        session_key: the session it belongs to (its id namespaced by owner).
        provider, model: for its ``stream_start``.
        pacing_mode, pacing_cps: the ``start``'s own pacing (``None``: the server's).
    """

    stream_id: str
    session_key: str
    provider: str
    model: str
    pacing_mode: str | None = None
    pacing_cps: float | None = None


def _ttl_ms(ttl_s: float) -> int:
    return int(max(ttl_s, MIN_TTL_S) * 1000)


def identity_json(identity: Identity) -> str:
    """The identity as JSON (its policy overrides are JSON already: a key file's or a
    JWT's claims)."""
    fields = asdict(identity)
    fields["policy"] = dict(identity.policy)
    return json.dumps(fields, separators=(",", ":"), default=str)


def identity_of(raw: str) -> Identity:
    """The identity of :func:`identity_json`. Raises ``ValueError`` on anything else."""
    try:
        fields = json.loads(raw)
        return Identity(str(fields["subject"]), fields["method"], dict(fields["policy"]),
                        fields.get("credential_id"))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed identity in redis: {exc}") from exc


def queue_session(pipe: Any, prefix: str, session_key: str, identity: Identity, ttl_s: float,
                  stream: StreamMeta | None = None) -> None:
    """Add to the pipeline ``pipe`` the commands that store the session's identity (and,
    with ``stream``, its current stream, the stream's metadata and its entry in
    ``{prefix}starts``); every key written expires ``ttl_s`` later (but ``starts``)."""
    key, ttl_ms = Keys(prefix).session(session_key), _ttl_ms(ttl_s)
    fields = {"identity": identity_json(identity)}
    if stream is not None:
        fields["current"] = stream.stream_id
    pipe.hset(key, fields)
    pipe.pexpire(key, ttl_ms)
    if stream is not None:
        pipe.set(Keys(prefix).meta(stream.stream_id), json.dumps(asdict(stream)),
                 px=ttl_ms)
        queue_start(pipe, prefix, stream)


async def save_session(redis: coredis.Redis[bytes], prefix: str, session_key: str,
                       identity: Identity, ttl_s: float,
                       stream: StreamMeta | None = None) -> None:
    """:func:`queue_session` in a pipeline of its own."""
    async with redis.pipeline(transaction=False) as pipe:
        queue_session(pipe, prefix, session_key, identity, ttl_s, stream)


async def refresh(redis: coredis.Redis[bytes], prefix: str, session_key: str, stream_id: str,
                  ttl_s: float) -> None:
    """The session's and the stream's keys (its metadata and its log) expire ``ttl_s`` from
    now."""
    ttl_ms = _ttl_ms(ttl_s)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.pexpire(Keys(prefix).session(session_key), ttl_ms)
        pipe.pexpire(Keys(prefix).meta(stream_id), ttl_ms)
        pipe.pexpire(Keys(prefix).stream(stream_id), ttl_ms)


async def load_session(redis: coredis.Redis[bytes], prefix: str, session_key: str
                       ) -> tuple[Identity | None, str | None]:
    """``(the identity the session was created with, its current stream id)``; ``None`` for
    what Redis does not hold. Raises ``ValueError`` on a malformed identity."""
    raw, current = await redis.hmget(Keys(prefix).session(session_key),
                                     ["identity", "current"])
    identity = identity_of(str(text(raw))) if raw is not None else None
    return identity, text(current)


async def load_stream(redis: coredis.Redis[bytes], prefix: str, stream_id: str
                      ) -> StreamMeta | None:
    """The stream's metadata, ``None`` if Redis does not hold it (never written, expired,
    flushed) or it is malformed."""
    raw = await redis.get(Keys(prefix).meta(stream_id))
    if raw is None:
        return None
    try:
        return StreamMeta(**json.loads(text(raw) or ""))
    except (TypeError, json.JSONDecodeError):
        return None


def queue_start(pipe: Any, prefix: str, stream: StreamMeta) -> None:
    """Add to ``pipe`` the entry that tells every process the stream began
    (``{prefix}starts``)."""
    pipe.xadd(Keys(prefix).starts, {"k": stream.session_key, "s": stream.stream_id},
              trim_strategy=PureToken.MAXLEN, threshold=STARTS_MAXLEN,
              trim_operator=PureToken.APPROXIMATELY)


async def last_start_id(redis: coredis.Redis[bytes], prefix: str) -> str:
    """The id of the latest entry of ``{prefix}starts`` (``0-0``: none): a reader that begins
    now reads what comes after it."""
    entries = await redis.xrevrange(Keys(prefix).starts, count=1)
    return str(text(entries[0].identifier)) if entries else "0-0"


async def read_starts(redis: coredis.Redis[bytes], prefix: str, last_id: str, block_ms: int
                      ) -> list[tuple[str, str, str]]:
    """The streams begun after ``last_id`` (blocking ``XREAD`` up to ``block_ms``):
    ``[(entry id, session key, stream id)]``; malformed entries are skipped."""
    reply = await redis.xread({Keys(prefix).starts: last_id}, count=256, block=block_ms)
    out = []
    for entries in (reply or {}).values():
        for entry in entries:
            fields = {text(k): text(v) for k, v in entry.field_values.items()}
            out.append((str(text(entry.identifier)), fields.get("k") or "",
                        fields.get("s") or ""))
    return out
