"""The store behind ``MessageStore`` (issue 17): the Redis store behaves as the SQLite store
(the same tests run on both), its keys expire with ``persistence.retention_days``, and with
``engine.kind = "redis"`` an answer streamed on process A is read through process B's REST
API (``GET /api/sessions/{id}/messages``)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from streamer.config import Config, ConfigError, PersistenceConfig
from streamer.conversation import Message
from streamer.engines.redis_log import RedisUnavailable, connect
from streamer.engines.redis_store import RedisStore
from streamer.errors import SessionNotFound
from streamer.persistence import MessageRecord, MessageStore, Store, open_store, store_kind
from streamer.runtime.registry import Registry
from streamer.security.identity import Identity
from streamer.wire.controls import Start
from tests.conftest import ServerProcess, create_session, make_config
from tests.engines.test_redis_log import RedisServer, running_redis
from tests.engines.test_redis_serve import pair  # noqa: F401 - A and B, a module fixture

#: one redis-server for the module (each test its own key prefix)
redis_server = pytest.fixture(running_redis, scope="module", name="redis_server")
#: every wait of a test is bounded by this (s)
BOUND_S = 60.0
_prefixes = itertools.count()


def redis_config(redis_server: RedisServer, **changes: object) -> Config:
    return make_config(**{"engine.kind": "redis", "engine.redis_url": redis_server.url,
                          "engine.key_prefix": f"st{next(_prefixes)}:", **changes})


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, nursery: trio.Nursery,
                tmp_path: Path) -> AsyncIterator[MessageStore]:
    """The SQLite store on a file, and the Redis store on a real redis-server."""
    if request.param == "sqlite":
        opened: MessageStore = await Store.open(PersistenceConfig(
            database_path=str(tmp_path / "s.db")))
    else:
        server = request.getfixturevalue("redis_server")
        opened = await open_store(redis_config(server), nursery)
        assert isinstance(opened, RedisStore)
    yield opened
    await opened.aclose()


async def test_messages_keep_their_position_through_updates(store: MessageStore) -> None:
    await store.save_messages([MessageRecord("u1", "sess-0001", "user", "hi"),
                               MessageRecord("a1", "sess-0001", "assistant", "par")])
    await store.save_message(MessageRecord("u2", "sess-0001", "user", "more"))
    # a checkpoint, then the final answer, of the first assistant message
    await store.save_message(MessageRecord("a1", "sess-0001", "assistant", "partial answer",
                                           blocks=["<p>partial answer</p>"], last_seq=9,
                                           usage={"input_tokens": 1, "output_tokens": 2},
                                           finish_reason="stop"))
    records = await store.messages("sess-0001")
    assert [(r.message_id, r.markdown) for r in records] == [
        ("u1", "hi"), ("a1", "partial answer"), ("u2", "more")]
    assert records[1].blocks == ["<p>partial answer</p>"] and records[1].last_seq == 9
    assert records[1].usage == {"input_tokens": 1, "output_tokens": 2}
    assert (await store.message("a1")) == records[1]
    assert await store.message("nope") is None
    assert await store.messages("nope") == []
    await store.save_messages([])


async def test_delete_cascades_and_purge_drops_old_sessions(store: MessageStore) -> None:
    for sid in ("sess-old-1", "sess-new-1"):
        await store.save_message(MessageRecord(f"m-{sid}", sid, "user", "x"))
    assert await store.delete_session("sess-new-1")
    assert not await store.delete_session("sess-new-1")
    assert await store.messages("sess-new-1") == []
    assert await store.message("m-sess-new-1") is None
    assert await store.purge(older_than_s=3600) == 0  # the old one is only seconds old
    await trio.sleep(0.01)  # wall clock: the store stamps Unix time
    assert await store.purge(older_than_s=0.001) == 1
    assert not await store.has_session("sess-old-1")
    assert await store.message("m-sess-old-1") is None


async def test_sessions_record_their_owner(store: MessageStore) -> None:
    await store.create_session("sess_abc", "alice")
    await store.create_session("sess_abc", "mallory")  # never changes hands
    assert await store.session_owner("sess_abc") == "alice"
    assert await store.session_owner("nope") is None
    assert await store.has_session("sess_abc") and not await store.has_session("nope")
    # a session first saved by a message (no owner recorded) is the anonymous identity's
    await store.save_message(MessageRecord("m1", "chat-0001", "user", "hi"))
    await store.create_session("chat-0001", "alice")
    assert await store.session_owner("chat-0001") == "anonymous"


async def test_unicode_and_large_answers_round_trip(store: MessageStore) -> None:
    text = "é💡 " * 40_000  # 120,000 characters: bounded by streams.max_response_chars
    record = MessageRecord("a1", "sess-big", "assistant", text, html=f"<p>{text}</p>",
                           blocks=[f"<p>{text}</p>"], provider="echo", model="echo-1",
                           created_at=1.5, completed_at=2.5, finish_reason="length")
    await store.save_message(record)
    assert await store.message("a1") == record


async def test_redis_keys_expire_with_the_retention(redis_server: RedisServer,
                                                    nursery: trio.Nursery) -> None:
    config = redis_config(redis_server, **{"persistence.retention_days": 2.0})
    store = await open_store(config, nursery)
    prefix = f"{config.engine.key_prefix}store:"
    await store.create_session("s1", "alice")
    await store.save_message(MessageRecord("m1", "s1", "user", "hi"))
    day_ms = 86_400_000
    async with connect(redis_server.url) as redis:
        for key in ("session:s1", "order:s1", "messages:s1"):
            assert 2 * day_ms - 60_000 < await redis.pttl(prefix + key) <= 2 * day_ms
        # the message's where-key outlives its session (renewed once a period)
        assert 3 * day_ms < await redis.pttl(prefix + "where:m1") <= 4 * day_ms
    await store.aclose()
    forever = await open_store(redis_config(redis_server, **{
        "persistence.retention_days": 0.0}), nursery)
    await forever.save_message(MessageRecord("m2", "s2", "user", "hi"))
    assert await forever.message("m2") is not None
    await forever.aclose()


async def test_a_late_partial_save_never_replaces_a_finished_answer(
        redis_server: RedisServer, nursery: trio.Nursery) -> None:
    store = await open_store(redis_config(redis_server), nursery)

    def answer(text: str, seq: int, finish: str | None) -> MessageRecord:
        return MessageRecord("s_1", "sess-late", "assistant", text, last_seq=seq,
                             finish_reason=finish, completed_at=None if finish is None else 2.0)

    async def stored() -> str | None:
        found = await store.message("s_1")
        return None if found is None else found.markdown

    await store.save_message(answer("the whole answer", 80, "stop"))  # the owner's end
    await store.save_message(answer("the partial", 50, "error"))  # a lost stream's, late
    assert await stored() == "the whole answer"
    await store.save_message(answer("a checkpoint", 80, None))  # late, as far, not final
    assert await stored() == "the whole answer"
    await store.save_message(answer("the whole answer, again", 80, "stop"))  # equal: saved
    assert await stored() == "the whole answer, again"
    await store.save_message(answer("went on", 95, None))  # a frozen owner came back
    assert await stored() == "went on"
    assert [m.message_id for m in await store.messages("sess-late")] == ["s_1"]
    await store.aclose()


def test_the_store_follows_the_engine_unless_chosen() -> None:
    assert store_kind(make_config()) == "sqlite"
    assert store_kind(make_config(**{"engine.kind": "redis"})) == "redis"
    assert store_kind(make_config(**{"engine.kind": "redis",
                                     "persistence.store": "sqlite"})) == "sqlite"
    from streamer.config import _validate
    with pytest.raises(ConfigError, match=r"persistence\.store"):
        _validate(make_config(**{"persistence.store": "redis"}))


# -- two real processes -----------------------------------------------------------------------


async def test_an_answer_streamed_on_a_is_read_through_b(
        pair: tuple[ServerProcess, ServerProcess]) -> None:  # noqa: F811 - the fixture
    """Both processes run ``--engine redis`` with a SQLite path each: the answer must come
    from the store they share (Redis), not from A's file."""
    a, b = pair
    with trio.fail_after(BOUND_S):
        await create_session(a.base_url, "store-cross-1")
        async with httpx.AsyncClient(base_url=a.base_url, timeout=BOUND_S) as client:
            done = await client.post("/api/sessions/store-cross-1/complete", json={
                "type": "start", "prompt": "# Title\n\nstored on A", "provider": "echo",
                "echo": {"delta_chars": 5, "interval_ms": 1}})
        assert done.status_code == 200, done.text
        answer = done.json()
        async with httpx.AsyncClient(base_url=b.base_url, timeout=BOUND_S) as client:
            listed = await client.get("/api/sessions/store-cross-1/messages")
        assert listed.status_code == 200, listed.text
        messages = listed.json()["messages"]
        assert [(m["role"], m["status"]) for m in messages] == [
            ("user", "complete"), ("assistant", "complete")]
        assert messages[0]["markdown"] == "# Title\n\nstored on A"
        assert messages[1]["message_id"] == answer["stream_id"]
        assert messages[1]["html"] == answer["html"] and messages[1]["finish_reason"] == "stop"


async def test_a_session_opened_on_another_process_has_its_owner_and_history(
        redis_server: RedisServer, nursery: trio.Nursery) -> None:
    """Two registries (two processes' worth) with the Redis store: a session made and
    answered on the first opens on the second with the identity it was created with, and
    the conversation the model is sent there is the stored one."""
    config = redis_config(redis_server)
    alice = Identity("alice", "api_key", {"max_tokens": 50}, "alice-key-1")
    first, second = Registry(config), Registry(config)
    with trio.fail_after(BOUND_S):
        for registry in (first, second):
            registry.bind(nursery)
            registry.store = await open_store(config, nursery)
        made, _ = await first.create_session(alice, "alice-chat-02")
        stream = await made.start(Start((Message("user", "remember 42"),), provider="echo"))
        await stream.done.wait()
        other_credential = Identity("alice", "api_key", {}, "alice-key-2")
        found = await second.find_session(other_credential, "alice-chat-02")
        assert found.owner == alice
        assert [(m.role, m.content) for m in found.history] == [
            ("user", "remember 42"), ("assistant", stream.markdown)]
        with pytest.raises(SessionNotFound):  # bob's own namespace: no such session
            await second.find_session(Identity("bob", "api_key"), "alice-chat-02")


async def test_a_redis_store_that_does_not_answer_is_refused_at_open(
        nursery: trio.Nursery) -> None:
    down = RedisServer()  # a free port, never started
    config = make_config(**{"engine.kind": "redis", "engine.redis_url": down.url})
    with trio.fail_after(BOUND_S), pytest.raises(RedisUnavailable, match="does not answer"):
        await open_store(config, nursery)
