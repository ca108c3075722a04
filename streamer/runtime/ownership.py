"""One owner per generation, with the redis engine (``docs/engines.md``, "Ownership"):

- the process that runs a stream holds its lease (``engines/redis_lease.py``) while the
  stream runs (:meth:`Ownership.hold`), and marks it ended once its ``end`` record is stored
  (:meth:`Ownership.release`);
- a process that mirrors a stream watches the lease (:meth:`Ownership.watch`): gone for half
  its TTL while the mirror has no ``end``, the owner is taken as lost (killed, or cut off from
  Redis), and the mirror ends with ``generation_lost`` and its partial answer, which exactly
  one process persists (:meth:`Ownership.persist_lost`, a ``SET NX`` claim);
- a client's ``stop`` that arrives on a process that only mirrors the stream is routed to the
  lease holder's control stream (``engines/redis_control.py``) and waited for
  (:meth:`Ownership.route_stop`); the owner applies it as a local ``stop``
  (:meth:`Ownership.serve_controls`), its trace naming the process it came from;
- a stream queued here is recorded in Redis (:meth:`Ownership.share_queued`) until it begins,
  so a ``queue_remove`` / ``queue_move`` arriving on another process is routed here the same
  way (:meth:`Ownership.route_queue`) and applied to the session's queue as a local one.

Bounds: an owner that dies is noticed within the lease TTL (its last renewal's), plus half the
TTL (the lease is taken again within a third of it after a ``FLUSHALL``, so a flush is not a
death), plus a quarter (the watch's period): under twice ``engine.lease_ttl_s``. A routed
``stop`` is confirmed within :data:`ACK_TIMEOUT_S` or answered ``control_not_delivered``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import coredis
import trio

from streamer.engines.redis_control import (
    ControlMessage,
    forget_queued,
    queued_holder,
    read_controls,
    send_ack,
    send_control,
    share_queued,
    wait_ack,
)
from streamer.engines.redis_keys import Keys
from streamer.engines.redis_lease import (
    ENDED,
    claim_lost,
    lease_holder,
    release_lease,
    renew_lease,
)
from streamer.engines.redis_log import REDIS_ERRORS, RedisUnavailable, with_retry
from streamer.errors import ControlNotDelivered, GenerationLost, StreamNotFound
from streamer.runtime.stream import PERSIST_TIMEOUT_S, Stream

if TYPE_CHECKING:
    from streamer.runtime.session import Session

logger = logging.getLogger("streamer.runtime")

#: how long a routed control waits for the owner's ack (s)
ACK_TIMEOUT_S = 2.0
#: one blocking read of the process's control stream (ms)
CONTROL_BLOCK_MS = 1_000
#: the cancel reason of a mirror whose owner was lost (``mirror.LOCAL_ENDINGS``)
LOST_REASON = "generation lost"
#: the controls routed to the process holding a queued stream
QUEUE_ACTIONS = frozenset({"queue_remove", "queue_move"})


class Ownership:
    """The leases of the streams this process runs, and the controls routed between processes.

    Args:
        prefix: the keys' prefix (``engine.key_prefix``).
        process_id: this process's name in leases and control streams (new at each start).
        lease_ttl_s: ``engine.lease_ttl_s``.
        keep_s: how long a lease marked ended and a lost stream's claim stay (the replay
            window).
    """

    def __init__(self, prefix: str, process_id: str, lease_ttl_s: float,
                 keep_s: float) -> None:
        self.prefix = prefix
        self.process_id = process_id
        self.lease_ttl_s = lease_ttl_s
        self.lease_ms = max(1, int(lease_ttl_s * 1000))
        self.keep_ms = max(self.lease_ms, int(keep_s * 1000))
        #: the streams this process runs and holds the lease of, by id
        self.running: dict[str, Stream] = {}
        #: the streams queued here (not begun yet), with their session, by id
        self.queued: dict[str, tuple[Session, Stream]] = {}
        #: controls applied here for other processes, and routed from here (for tests)
        self.applied = 0
        self.routed = 0

    # ------------------------------------------------------------------ the owner

    async def began(self, redis: coredis.Redis[bytes], stream: Stream) -> None:
        """``stream`` began here with its lease taken (``RedisEngine._claim``): it is this
        process's now, and no longer a queued stream others route queue controls to."""
        self.running[stream.stream_id] = stream
        if self.queued.pop(stream.stream_id, None) is not None:
            try:  # (else it expires: a control for it then finds it no longer queued)
                await forget_queued(redis, self.prefix, stream.stream_id)
            except REDIS_ERRORS as exc:
                stream.record("queued_not_forgotten", error=type(exc).__name__)

    def forget(self, stream_id: str) -> None:
        """The stream's begin failed (Redis did not answer or refused): it runs here without
        a lease, neither running under one nor queued any more."""
        self.running.pop(stream_id, None)
        self.queued.pop(stream_id, None)

    async def share_queued(self, redis: coredis.Redis[bytes], session: Session,
                           stream: Stream) -> None:
        """``stream`` waits in ``session``'s queue here: record this process as its holder
        (for the replay window, or until it begins: :meth:`began`). Redis not answering is
        recorded in its trace (a queue control from another process then finds nothing)."""
        self.queued[stream.stream_id] = (session, stream)
        try:
            await share_queued(redis, self.prefix, stream.stream_id, self.process_id,
                               self.keep_ms)
        except REDIS_ERRORS as exc:
            stream.record("queued_not_shared", error=type(exc).__name__)

    async def hold(self, redis: coredis.Redis[bytes], stream: Stream) -> None:
        """Renew the stream's lease every third of its TTL until cancelled (taking it again
        if Redis lost it). Redis errors (a lost connection, refused writes) are skipped: the
        lease then expires, and the other processes end their mirrors (they could not follow
        either); the stream goes on here."""
        while True:
            await trio.sleep(self.lease_ttl_s / 3)
            try:
                renewed = await renew_lease(redis, self.prefix, stream.stream_id,
                                            self.process_id, self.lease_ms)
            except REDIS_ERRORS as exc:
                logger.debug("stream %s: lease not renewed: %r", stream.stream_id, exc)
                continue
            if renewed == 2:
                stream.record("lease_taken_again")
            elif renewed == 0:
                stream.record("lease_held_elsewhere")

    async def release(self, redis: coredis.Redis[bytes], stream_id: str,
                      retry_s: float) -> None:
        """The stream's ``end`` is stored: its lease says so (:data:`ENDED`) for the replay
        window, so a mirror that lags behind is not taken for an orphan."""
        self.running.pop(stream_id, None)
        await with_retry(lambda: release_lease(redis, self.prefix, stream_id,
                                               self.process_id, self.keep_ms), retry_s)

    async def serve_controls(self, redis: coredis.Redis[bytes]) -> None:
        """Apply the controls other processes send here, each acknowledged, until cancelled
        (Redis errors are retried after a pause; a malformed message is logged and skipped,
        an ack Redis refuses is logged: the sender answers ``control_not_delivered``)."""
        last_id = "0-0"
        while True:
            try:
                batch = await read_controls(redis, self.prefix, self.process_id, last_id,
                                            CONTROL_BLOCK_MS)
            except REDIS_ERRORS as exc:
                logger.debug("routed controls: read failed: %r", exc)
                await trio.sleep(0.5)
                continue
            for entry_id, fields in batch:
                last_id = entry_id
                try:
                    message = ControlMessage.of(fields)
                except ValueError as exc:
                    logger.error("a malformed control message in redis: %s", exc)
                    continue
                result = self.apply(message)
                try:
                    await send_ack(redis, self.prefix, message.request_id, result)
                except REDIS_ERRORS as exc:  # applied, but its sender will not know
                    logger.error("control %s: the ack was lost: %r", message.request_id, exc)
                    self._ack_lost(message, exc)

    def _ack_lost(self, message: ControlMessage, exc: BaseException) -> None:
        """The stream's trace says its routed control's ack was lost (the sender answers
        its client ``control_not_delivered``, though the control may have been applied)."""
        held = self.queued.get(message.stream_id)
        stream = self.running.get(message.stream_id) or (held[1] if held else None)
        if stream is not None:
            stream.record("control_ack_lost", action=message.action,
                          request_id=message.request_id, error=type(exc).__name__)

    def apply(self, message: ControlMessage) -> str:
        """Apply a routed control as a local one: ``applied``, or ``not_running`` (a stop of
        a stream not running here), ``not_queued`` (a queue control for a stream not waiting
        in that session's queue here)."""
        if message.action in QUEUE_ACTIONS:
            return self._apply_queue(message)
        stream = self.running.get(message.stream_id)
        if message.action != "stop" or stream is None or stream.state == "done":
            return "not_running"
        self.applied += 1
        stream.record("control_routed", action=message.action, sender=message.sender,
                      request_id=message.request_id)
        stream.cancel(f"stop from client on process {message.sender}")
        return "applied"

    def _apply_queue(self, message: ControlMessage) -> str:
        """``queue_remove`` / ``queue_move`` of a stream queued here, for the same session
        only (the session's own methods: the same effect and events as a local one)."""
        held = self.queued.get(message.stream_id)
        if held is None or held[0].key != message.session:
            return "not_queued"
        session, stream = held
        stream.record("control_routed", action=message.action, sender=message.sender,
                      request_id=message.request_id)
        try:
            if message.action == "queue_remove":
                session.queue_remove(message.stream_id)
            else:
                session.queue_move(message.stream_id, message.position)
        except StreamNotFound:
            return "not_queued"
        self.applied += 1
        return "applied"

    # ------------------------------------------------------------------ the followers

    async def route_stop(self, redis: coredis.Redis[bytes], stream: Stream) -> None:
        """Send a client's ``stop`` of the mirrored ``stream`` to its owner and wait for the
        ack (:data:`ACK_TIMEOUT_S`).

        Raises:
            ControlNotDelivered: no owner holds the stream's lease, Redis does not answer,
                or the owner did not confirm in time.
        """
        async def holder() -> str | None:
            return await lease_holder(redis, self.prefix, stream.stream_id)

        message = ControlMessage.new("stop", stream.stream_id, self.process_id)
        await self.route(redis, message, holder, stream)

    async def route_queue(self, redis: coredis.Redis[bytes], session: Session, action: str,
                          stream_id: str, position: int = 0) -> None:
        """Send a client's ``queue_remove`` / ``queue_move`` (``action``) of ``stream_id``,
        queued on another process, to that process and wait for the ack.

        Raises:
            StreamNotFound: no process holds it queued in this session (as a local one).
            ControlNotDelivered: Redis does not answer, or the holder did not confirm in
                :data:`ACK_TIMEOUT_S`.
        """
        async def holder() -> str | None:
            found = await queued_holder(redis, self.prefix, stream_id)
            if found is None or found == self.process_id:
                raise StreamNotFound(f"no queued stream {stream_id} in this session")
            return found

        message = ControlMessage.new(action, stream_id, self.process_id, session.key,
                                     position)
        if await self.route(redis, message, holder, None) != "applied":
            raise StreamNotFound(f"no queued stream {stream_id} in this session")

    async def route(self, redis: coredis.Redis[bytes], message: ControlMessage,
                    holder: Callable[[], Awaitable[str | None]], stream: Stream | None
                    ) -> str:
        """Send ``message`` to the process ``holder()`` names and wait for its ack (at most
        :data:`ACK_TIMEOUT_S`); the ack's result (``applied``, …). ``stream``'s trace (if
        any) records the routing.

        Raises:
            ControlNotDelivered: no process holds the stream, Redis does not answer, or the
                holder did not confirm in time.
        """
        what, began = f"{message.action} of {message.stream_id}", trio.current_time()
        try:
            with trio.fail_after(ACK_TIMEOUT_S + 1):
                owner = await holder()
                if owner is None or owner == ENDED:
                    raise ControlNotDelivered(f"{what}: no process holds it")
                await send_control(redis, self.prefix, owner, message)
                result = await wait_ack(redis, self.prefix, message.request_id,
                                        ACK_TIMEOUT_S)
        except (trio.TooSlowError, *REDIS_ERRORS) as exc:
            raise ControlNotDelivered(f"{what}: redis: {exc!r}") from exc
        if result is None:
            if stream is not None:
                stream.record("control_not_delivered", action=message.action, owner=owner)
            raise ControlNotDelivered(f"{what}: {owner} did not answer in "
                                      f"{ACK_TIMEOUT_S:g} s")
        self.routed += 1
        if stream is not None:
            stream.record("control_routed", action=message.action, owner=owner,
                          result=result, ms=round((trio.current_time() - began) * 1000, 1))
        return result

    async def watch(self, redis: coredis.Redis[bytes], mirror: Stream) -> None:
        """End ``mirror`` with ``generation_lost`` once its lease has been gone for half the
        TTL while it has no ``end``; returns then, or runs until cancelled."""
        missing_since: float | None = None
        while not mirror.log.finished:
            await trio.sleep(self.lease_ttl_s / 4)
            try:
                holder = await lease_holder(redis, self.prefix, mirror.stream_id)
            except REDIS_ERRORS:  # the follower reports Redis's absence
                continue
            if holder is not None:
                missing_since = None
                continue
            now = trio.current_time()
            missing_since = now if missing_since is None else missing_since
            if now - missing_since >= self.lease_ttl_s / 2 and not mirror.log.finished:
                mirror.record("lease_lost", missing_ms=round((now - missing_since) * 1000))
                mirror.cancel(LOST_REASON, GenerationLost(
                    f"stream {mirror.stream_id}: its lease is gone without an end"))
                return

    async def persist_lost(self, redis: coredis.Redis[bytes], mirror: Stream) -> bool:
        """Persist a lost mirror's partial answer if this process wins the claim (exactly
        one does; it also makes the stream's log expire with the claim, its owner being
        gone); ``True`` if it wrote it. A store error is logged, never raised."""
        store = mirror.services.store()
        try:
            claimed = await with_retry(lambda: claim_lost(
                redis, self.prefix, mirror.stream_id, self.process_id, self.keep_ms), 2.0)
        except (RedisUnavailable, *REDIS_ERRORS) as exc:
            logger.error("stream %s: the partial answer was not claimed: %r",
                         mirror.stream_id, exc)
            return False
        if claimed:  # the owner died before its end: its log expires with the claim
            try:
                await redis.pexpire(Keys(self.prefix).stream(mirror.stream_id),
                                    self.keep_ms)
            except REDIS_ERRORS as exc:
                logger.error("stream %s: no expiry set on its log: %r", mirror.stream_id, exc)
        if not claimed or store is None or mirror.owner.deleted:
            return False
        with trio.CancelScope(shield=True), trio.move_on_after(PERSIST_TIMEOUT_S):
            try:
                await store.save_messages(mirror.records())
            except Exception:  # a store error must not end the engine, nor the server
                logger.exception("stream %s: could not persist the partial answer",
                                 mirror.stream_id)
                mirror.record("partial_not_persisted")
                return False
            mirror.record("partial_persisted", chars=len(mirror.markdown))
            return True
        return False  # pragma: no cover - a stuck store
