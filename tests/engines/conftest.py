"""The engines' fixtures: ``redis_server``, a real redis-server per test (a module may
override it with one of its own, e.g. module-scoped), and ``redis``, a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from streamer.engines.redis_log import connect
from tests.engines.test_redis_log import RedisServer, running_redis

redis_server = pytest.fixture(running_redis, name="redis_server")


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Any]:
    async with connect(redis_server.url) as client:
        yield client
