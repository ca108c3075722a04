"""The SQLite store on a real file: WAL, private files, old schemas, answers a killed process
left. What every store does (upserts keep order, deletes cascade, retention purges, owners)
runs on SQLite and on Redis alike in ``tests/engines/test_redis_store.py``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streamer.config import PersistenceConfig
from streamer.persistence import MessageRecord, Store


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "streamer.db"
    store = await Store.open(PersistenceConfig(database_path=str(path)))
    await store.save_message(MessageRecord("u1", "sess-0001", "user", "hi"))
    await store.aclose()
    with sqlite3.connect(path) as db:  # WAL: readers never block the writer
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_answers_left_streaming_by_a_killed_process_are_marked_error(
        tmp_path: Path) -> None:
    config = PersistenceConfig(database_path=str(tmp_path / "s.db"))
    store = await Store.open(config)
    await store.save_message(MessageRecord("a1", "sess-0002", "assistant", "half"))
    await store.aclose()
    store = await Store.open(config)
    (record,) = await store.messages("sess-0002")
    assert record.finish_reason == "error" and record.completed_at is not None
    assert record.to_json()["status"] == "complete"
    await store.aclose()


async def test_the_database_file_is_private_and_old_files_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "new" / "streamer.db"
    store = await Store.open(PersistenceConfig(database_path=str(path)))
    await store.save_message(MessageRecord("m1", "s1", "user", "secret"))
    await store.aclose()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    store = await Store.open(PersistenceConfig(database_path=str(old)))
    await store.aclose()
    assert old.stat().st_mode & 0o777 == 0o600


async def test_sessions_record_their_owner_and_old_stores_gain_the_column(
        tmp_path: Path) -> None:
    path = tmp_path / "old-schema.db"
    db = sqlite3.connect(path)  # a store from before ownership: no owner column
    db.executescript("CREATE TABLE sessions (session_id TEXT PRIMARY KEY,"
                     " created_at REAL NOT NULL, updated_at REAL NOT NULL);"
                     "INSERT INTO sessions VALUES ('chat-0001', 1, 1);")
    db.close()
    store = await Store.open(PersistenceConfig(database_path=str(path)))
    assert await store.session_owner("chat-0001") == "anonymous"
    await store.create_session("sess_abc", "alice")
    await store.create_session("sess_abc", "mallory")  # never changes hands
    assert await store.session_owner("sess_abc") == "alice"
    assert await store.session_owner("nope") is None
    await store.aclose()
