"""Persistence: sessions and their messages, so answers survive a restart.

:class:`MessageStore` is the interface the runtime uses; two stores are behind it, chosen by
``persistence.store`` (:func:`open_store`): :class:`Store`, the SQLite file of one process
(the default), and ``streamer.engines.redis_store.RedisStore``, Redis itself, which every
process of a deployment with ``engine.kind = "redis"`` reads (``docs/engines.md``).

The SQLite store:

Stdlib :mod:`sqlite3` in WAL mode (https://sqlite.org/wal.html: readers never block the
writer). Every statement runs in a worker thread (``trio.to_thread.run_sync``) behind a
one-slot :class:`trio.CapacityLimiter`, so the event loop never waits on the disk and the
single connection is used by one thread at a time. Streams write rarely: when they start,
every ``persistence.checkpoint_interval_s`` while they run (the partial answer), and when
they end; never per token.

Tables::

    sessions(session_id PK, created_at, updated_at, owner)     -- times: Unix seconds
    messages(message_id PK, session_id → sessions ON DELETE CASCADE, position, role,
             markdown, html, blocks (JSON list of HTML strings), provider, model,
             usage (JSON), finish_reason (NULL while streaming), last_seq,
             created_at, completed_at)

An assistant message's ``message_id`` is its ``stream_id`` (``stream_complete.message_id``).
``session_id`` here is the registry's key of a session (``streamer.runtime.registry.
session_key``: a client-chosen id namespaced by its owner); ``owner`` is the subject of the
identity that created it (``NULL`` in stores from before ownership: the anonymous identity).

The file is created with mode 0600 and its folder with 0700: it holds every conversation.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio

from streamer.config import Config, PersistenceConfig

if TYPE_CHECKING:
    from streamer.engines.redis_store import RedisStore

T = TypeVar("T")

SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    markdown TEXT NOT NULL,
    html TEXT,
    blocks TEXT,
    provider TEXT,
    model TEXT,
    usage TEXT,
    finish_reason TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    completed_at REAL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, position);
CREATE INDEX IF NOT EXISTS sessions_by_age ON sessions(updated_at);
"""


#: columns added after the first release: ``(table, column, definition)``, added when missing
MIGRATIONS = (("sessions", "owner", "TEXT"),)
#: the database file's permissions (it holds every conversation): owner read/write only
FILE_MODE = 0o600


def _create_private(path: Path) -> None:
    """Make the folder (0700) and an empty file (0600) if missing; tighten an existing file."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(FILE_MODE)


def _migrate(db: sqlite3.Connection) -> None:
    for table, column, definition in MIGRATIONS:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def default_database_path() -> Path:
    """``$XDG_DATA_HOME/streamer/streamer.db`` (XDG Base Directory spec; default
    ``~/.local/share``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                           ".local", "share")
    return Path(base) / "streamer" / "streamer.db"


@dataclass(slots=True)
class MessageRecord:
    """One stored message. ``finish_reason`` is ``None`` while the answer is still streaming
    (a checkpoint); ``blocks`` is the document as a list of top-level HTML blocks."""

    message_id: str
    session_id: str
    role: str
    markdown: str
    html: str | None = None
    blocks: list[str] | None = None
    provider: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    last_seq: int = 0
    created_at: float = field(default_factory=time.time)
    completed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The shape of ``GET /api/sessions/{id}/messages`` items."""
        return {"message_id": self.message_id, "role": self.role, "markdown": self.markdown,
                "html": self.html, "provider": self.provider, "model": self.model,
                "usage": self.usage, "finish_reason": self.finish_reason,
                "status": "complete" if self.finish_reason or self.role != "assistant"
                else "streaming",
                "created_at": self.created_at, "completed_at": self.completed_at}


_COLUMNS = ("message_id", "session_id", "role", "markdown", "html", "blocks", "provider",
            "model", "usage", "finish_reason", "last_seq", "created_at", "completed_at")


class MessageStore(Protocol):
    """Where sessions and messages are kept (the SQLite :class:`Store` of one process, or
    ``streamer.engines.redis_store.RedisStore`` shared by several). Every method is a
    coroutine; a store's own failures (a full disk, Redis down) raise from it, and callers
    that must not fail (a stream's saves) log them."""

    #: where it lives, for the start-up log (a file path; a Redis address and key prefix)
    path: str

    async def aclose(self) -> None: ...

    async def save_messages(self, records: list[MessageRecord]) -> None:
        """Insert or update messages at once (touching their sessions, made if needed); a
        message keeps the position it was first saved at."""

    async def save_message(self, record: MessageRecord) -> None:
        """:meth:`save_messages` of one message."""

    async def create_session(self, session_id: str, owner: str) -> None:
        """Record a new session and its owner's subject (a no-op if it exists)."""

    async def session_owner(self, session_id: str) -> str | None:
        """The subject owning a stored session (``"anonymous"`` when none was recorded);
        ``None``: unknown."""

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; ``True`` if it existed."""

    async def purge(self, older_than_s: float) -> int:
        """Delete sessions not updated for ``older_than_s`` seconds; how many."""

    async def messages(self, session_id: str) -> list[MessageRecord]:
        """A session's messages, oldest first (empty if unknown)."""

    async def message(self, message_id: str) -> MessageRecord | None:
        """One message by id (an assistant message's id is its ``stream_id``)."""

    async def has_session(self, session_id: str) -> bool: ...


def store_kind(config: Config) -> str:
    """``sqlite`` or ``redis``: ``persistence.store``, where ``auto`` is ``redis`` with the
    redis engine (every process must read every answer) and ``sqlite`` otherwise."""
    kind = config.persistence.store
    if kind == "auto":
        return "redis" if config.engine.kind == "redis" else "sqlite"
    return kind


async def open_store(config: Config, nursery: trio.Nursery) -> Store | RedisStore:
    """Open the store ``config`` chooses (:func:`store_kind`): :meth:`Store.open`, or a
    ``RedisStore`` whose client lives in a task of ``nursery`` until :meth:`aclose`.

    Raises:
        sqlite3.Error: the SQLite file is unusable.
        streamer.engines.redis_log.RedisUnavailable: Redis does not answer.
    """
    if store_kind(config) == "redis":  # imported here: coredis only when it is used
        from streamer.engines.redis_store import RedisStore
        return await RedisStore.open(config, nursery)
    return await Store.open(config.persistence)


def _record(row: sqlite3.Row) -> MessageRecord:
    return MessageRecord(
        message_id=row["message_id"], session_id=row["session_id"], role=row["role"],
        markdown=row["markdown"], html=row["html"],
        blocks=json.loads(row["blocks"]) if row["blocks"] else None,
        provider=row["provider"], model=row["model"],
        usage=json.loads(row["usage"]) if row["usage"] else None,
        finish_reason=row["finish_reason"], last_seq=row["last_seq"],
        created_at=row["created_at"], completed_at=row["completed_at"])


class Store:
    """The SQLite database of one server process.

    Open with :meth:`open` (creates the file, its folder and the schema), close with
    :meth:`aclose`. Methods are coroutines that run their SQL in a worker thread.

    Raises:
        sqlite3.Error: from any method, if the database file is unusable (disk full,
            corrupt, read-only). Callers that must not fail (a stream's final save) log it.
    """

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self.path = path
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    async def open(cls, config: PersistenceConfig) -> Store:
        """Open (or create) the database named by ``config.database_path``.

        ``":memory:"`` gives a private in-memory database (tests). Answers still marked
        streaming (their process was killed) are marked finished with ``error``.
        """
        path = config.database_path or str(default_database_path())

        def connect() -> sqlite3.Connection:
            if path != ":memory:":
                _create_private(Path(path).expanduser())
            db = sqlite3.connect(os.path.expanduser(path), check_same_thread=False,
                                 isolation_level=None, timeout=10.0)
            db.row_factory = sqlite3.Row
            if path != ":memory:":
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(SCHEMA)
            _migrate(db)
            # answers a killed process left mid-stream (only checkpoints were saved): they
            # will never finish; say so (one process owns a database file)
            db.execute("UPDATE messages SET finish_reason = 'error', completed_at = ?"
                       " WHERE role = 'assistant' AND finish_reason IS NULL", (time.time(),))
            return db

        return cls(await trio.to_thread.run_sync(connect), path)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def aclose(self) -> None:
        await self._run(self._db.close)

    # -- writes -------------------------------------------------------------------------

    async def save_messages(self, records: list[MessageRecord]) -> None:
        """Insert or update messages in one transaction (and touch their sessions, creating
        them if needed). A message keeps the position it was first saved at."""

        def write() -> None:
            with self._transaction():
                for record in records:
                    self._write(record)

        await self._run(write)

    async def create_session(self, session_id: str, owner: str) -> None:
        """Record a new session and its owner's subject (a no-op if it exists)."""

        def write() -> None:
            now = time.time()
            self._db.execute("INSERT INTO sessions(session_id, created_at, updated_at, owner)"
                             " VALUES (?, ?, ?, ?) ON CONFLICT(session_id) DO NOTHING",
                             (session_id, now, now, owner))

        await self._run(write)

    async def session_owner(self, session_id: str) -> str | None:
        """The subject that owns a stored session (``"anonymous"`` for sessions from before
        ownership), or ``None`` if the store does not know it."""

        def read() -> str | None:
            row = self._db.execute("SELECT COALESCE(owner, 'anonymous') FROM sessions"
                                   " WHERE session_id = ?", (session_id,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(read)

    async def save_message(self, record: MessageRecord) -> None:
        """:meth:`save_messages` of one message."""
        await self.save_messages([record])

    def _write(self, record: MessageRecord) -> None:
        now = time.time()
        self._db.execute(
            "INSERT INTO sessions(session_id, created_at, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(session_id) DO UPDATE SET updated_at = excluded.updated_at",
            (record.session_id, now, now))
        position = self._db.execute(
            "SELECT COALESCE((SELECT position FROM messages WHERE message_id = ?),"
            " (SELECT COUNT(*) FROM messages WHERE session_id = ?))",
            (record.message_id, record.session_id)).fetchone()[0]
        values = (record.message_id, record.session_id, record.role, record.markdown,
                  record.html,
                  json.dumps(record.blocks) if record.blocks is not None else None,
                  record.provider, record.model,
                  json.dumps(record.usage) if record.usage is not None else None,
                  record.finish_reason, record.last_seq, record.created_at,
                  record.completed_at)
        self._db.execute(
            f"INSERT OR REPLACE INTO messages({', '.join(_COLUMNS)}, position)"
            f" VALUES ({', '.join('?' * len(_COLUMNS))}, ?)", (*values, position))

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; ``True`` if it existed."""

        def delete() -> bool:
            with self._transaction():
                cur = self._db.execute("DELETE FROM sessions WHERE session_id = ?",
                                       (session_id,))
                return cur.rowcount > 0

        return bool(await self._run(delete))

    async def purge(self, older_than_s: float) -> int:
        """Delete sessions not updated for ``older_than_s`` seconds; returns how many."""

        def delete() -> int:
            with self._transaction():
                cur = self._db.execute("DELETE FROM sessions WHERE updated_at < ?",
                                       (time.time() - older_than_s,))
                return cur.rowcount

        return int(await self._run(delete))

    # -- reads --------------------------------------------------------------------------

    async def messages(self, session_id: str) -> list[MessageRecord]:
        """A session's messages, oldest first (empty if the session is unknown)."""

        def read() -> list[MessageRecord]:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE session_id = ? ORDER BY position",
                (session_id,)).fetchall()
            return [_record(row) for row in rows]

        return list(await self._run(read))

    async def message(self, message_id: str) -> MessageRecord | None:
        """One message by id (an assistant message's id is its ``stream_id``)."""

        def read() -> MessageRecord | None:
            row = self._db.execute("SELECT * FROM messages WHERE message_id = ?",
                                   (message_id,)).fetchone()
            return _record(row) if row is not None else None

        result: MessageRecord | None = await self._run(read)
        return result

    async def has_session(self, session_id: str) -> bool:
        def read() -> bool:
            return self._db.execute("SELECT 1 FROM sessions WHERE session_id = ?",
                                    (session_id,)).fetchone() is not None

        return bool(await self._run(read))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


__all__ = ["MessageRecord", "MessageStore", "Store", "default_database_path", "open_store",
           "store_kind"]
