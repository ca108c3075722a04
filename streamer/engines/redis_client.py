"""A coredis client held open by a task of its own (``docs/engines.md``).

coredis' client is an async context whose connection pool runs an anyio task group: it must
be entered and left in one task. The store and the limits are opened in the server's
start-up hook and closed in its shutdown hook (two different tasks), so each holds its client
through a :class:`HeldClient`: a task in the server nursery enters the client and keeps it
until :meth:`HeldClient.aclose` cancels it.
"""

from __future__ import annotations

from typing import Any

import coredis
import trio

from streamer.engines.redis_log import CONNECTION_ERRORS, RedisUnavailable, connect


class HeldClient:
    """One coredis client for ``url``, alive between :meth:`start` and :meth:`aclose`.

    Args:
        url: ``redis://host:port/db`` (``engine.redis_url``).
        timeout_s: how long a command waits for Redis's answer (``engine.command_timeout_s``).
    """

    def __init__(self, url: str, timeout_s: float | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._redis: coredis.Redis[bytes] | None = None
        self._scope: trio.CancelScope | None = None
        self._closed = trio.Event()

    async def start(self, nursery: trio.Nursery) -> None:
        """Open the client in a task of ``nursery`` and ``PING`` once.

        Raises:
            RedisUnavailable: Redis does not answer.
        """
        try:
            await nursery.start(self._hold)
        except (*CONNECTION_ERRORS, BaseExceptionGroup) as exc:
            if isinstance(exc, BaseExceptionGroup) and not exc.subgroup(CONNECTION_ERRORS):
                raise
            raise RedisUnavailable(f"redis at {self.url.rsplit('@', 1)[-1]} does not answer"
                                   ) from exc

    async def _hold(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with connect(self.url, self.timeout_s) as redis:
                    await redis.ping()
                    self._redis = redis
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._redis = None
            self._closed.set()

    @property
    def redis(self) -> coredis.Redis[Any]:
        """The entered client.

        Raises:
            RedisUnavailable: not started, or closed.
        """
        if self._redis is None:
            raise RedisUnavailable("the redis client is closed")
        return self._redis

    async def aclose(self) -> None:
        """Leave the client (its task ends); a no-op if it never started."""
        if self._scope is None:
            return
        self._scope.cancel()
        await self._closed.wait()
