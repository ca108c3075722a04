"""The engines' fixtures: ``redis_server``, a real redis-server per test (a module may
override it with one of its own, e.g. module-scoped)."""

from __future__ import annotations

import pytest

from tests.engines.test_redis_log import running_redis

redis_server = pytest.fixture(running_redis, name="redis_server")
