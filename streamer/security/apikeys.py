"""Static API keys, stored hashed in a TOML file (``auth.api_keys_file``).

The file (``streamer auth new-key`` prints entries for it)::

    [[keys]]
    id = "alice-laptop"       # shown in logs, never the key
    subject = "alice"         # the identity; sessions belong to it
    sha256 = "<hex SHA-256 of the key>"
    revoked = false           # optional
    [keys.policy]             # optional: providers, models, daily_chars, daily_tokens, max_tokens
    providers = ["local"]

A key is ``stk_`` + ``secrets.token_urlsafe(32)``: 256 random bits, so a plain SHA-256 is
the right hash (as for GitHub's and Stripe's tokens): nothing is left to guess, and a
password hash (bcrypt, scrypt, Argon2) would only add a per-request cost. The prefix makes
leaked keys easy to find by secret scanners. A key is looked up by its hash and the hash is
compared with ``hmac.compare_digest``.

The file is re-read when its mtime, size or inode changes (checked at most every
:data:`RELOAD_INTERVAL_S`, the ``stat`` and read in a worker thread), so a revoked or
removed key stops working without a restart. A file that becomes unreadable or invalid
keeps the last good keys and logs an error; at start-up it is a :class:`ConfigError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from streamer.config import ConfigError
from streamer.errors import Unauthorized
from streamer.security.identity import ANONYMOUS, Identity, RequestInfo, policy_overrides

log = logging.getLogger("streamer.security.apikeys")

#: every key starts with this (secret scanners and humans recognise it)
KEY_PREFIX = "stk_"
#: the key file is checked for changes at most this often (s)
RELOAD_INTERVAL_S = 1.0
_ENTRY_FIELDS = frozenset({"id", "subject", "sha256", "revoked", "policy"})
#: what identifies one version of the file: (mtime in ns, size, inode), or the error text
Stamp = tuple[int, int, int] | str


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One ``[[keys]]`` entry (the key itself is never stored, only its hash)."""

    id: str
    subject: str
    sha256: str
    revoked: bool = False
    policy: Mapping[str, Any] = field(default_factory=dict)


def new_key() -> str:
    """A new key: ``stk_`` + 43 URL-safe characters (256 random bits, ``secrets``)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The lower-case hex SHA-256 of the key's UTF-8 bytes (64 characters)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_entry(key: str, subject: str, key_id: str) -> str:
    """The ``[[keys]]`` TOML entry for ``key`` (strings quoted JSON-style, which TOML's
    basic strings accept)."""
    return (f"[[keys]]\nid = {json.dumps(key_id)}\nsubject = {json.dumps(subject)}\n"
            f"sha256 = {json.dumps(hash_key(key))}\n")


def _entry(raw: object, index: int, source: str) -> ApiKey:
    """One checked entry; :class:`ConfigError` naming the file and the entry otherwise."""
    name = f"{source}: keys[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: must be a table ([[keys]])")
    if isinstance(raw.get("id"), str) and raw["id"]:
        name += f" ({raw['id']!r})"
    unknown = sorted(set(raw) - _ENTRY_FIELDS)
    if unknown:
        raise ConfigError(f"{name}: unknown field(s) {', '.join(unknown)}")
    for key in ("id", "subject", "sha256"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{name}: {key} must be a non-empty string")
    digest = raw["sha256"].lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ConfigError(f"{name}: sha256 must be 64 hex digits")
    if raw["subject"] == ANONYMOUS.subject:
        raise ConfigError(f"{name}: subject {ANONYMOUS.subject!r} is reserved for "
                          "auth.mode = none")
    revoked = raw.get("revoked", False)
    if not isinstance(revoked, bool):
        raise ConfigError(f"{name}: revoked must be true or false")
    try:
        policy = policy_overrides(raw.get("policy", {}))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return ApiKey(raw["id"], raw["subject"], digest, revoked, policy)


def parse_keys(text: str, source: str) -> dict[str, ApiKey]:
    """The keys of a key file's text, by hash.

    Raises:
        ConfigError: not TOML, a top-level key other than ``keys``, an invalid entry, or a
            duplicate ``id`` or ``sha256`` (the message names ``source`` and the entry).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"keys"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)}")
    entries = data.get("keys", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: keys must be an array of tables ([[keys]])")
    keys: dict[str, ApiKey] = {}
    ids: set[str] = set()
    for index, raw in enumerate(entries):
        entry = _entry(raw, index, source)
        if entry.id in ids:
            raise ConfigError(f"{source}: keys[{index}]: duplicate id {entry.id!r}")
        if entry.sha256 in keys:
            raise ConfigError(f"{source}: keys[{index}] ({entry.id!r}): the same sha256 as "
                              f"{keys[entry.sha256].id!r}")
        ids.add(entry.id)
        keys[entry.sha256] = entry
    return keys


def _stamp(path: Path) -> Stamp:
    try:
        stat = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}"
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class ApiKeyStore:
    """The keys of one file, re-read by :meth:`refresh` when the file changes. Blocking
    (``stat``, ``read``): call :meth:`refresh` from a worker thread on the event loop.

    Raises:
        ConfigError: (constructor) the file is unreadable or invalid.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: Stamp = _stamp(self.path)
        if isinstance(self._stamp, str):
            raise ConfigError(f"auth.api_keys_file {self.path}: {self._stamp}")
        self._keys = self._read()
        if not self._keys:
            log.warning("api keys file %s holds no keys: every request will be refused",
                        self.path)

    def _read(self) -> dict[str, ApiKey]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"auth.api_keys_file {self.path}: cannot read: {exc}") from None
        return parse_keys(text, str(self.path))

    def __len__(self) -> int:
        return len(self._keys)

    def refresh(self) -> bool:
        """Re-read the file if its (mtime, size, inode) changed since the last look.

        Returns:
            Whether a new set of keys was taken. An unreadable or invalid file keeps the
            last good keys and logs one error per change of the file.
        """
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            if isinstance(stamp, str):
                raise ConfigError(f"auth.api_keys_file {self.path}: {stamp}")
            keys = self._read()
        except ConfigError as exc:
            log.error("%s; keeping the last good %d key(s)", exc, len(self._keys))
            return False
        self._keys = keys
        log.info("api keys file %s re-read: %d key(s), %d revoked", self.path, len(keys),
                 sum(k.revoked for k in keys.values()))
        return True

    def lookup(self, token: str | None) -> Identity:
        """The identity ``token`` proves.

        Raises:
            Unauthorized: "missing credentials", "unknown API key", "revoked API key".
        """
        if not token:
            raise Unauthorized("missing credentials")
        digest = hash_key(token)
        entry = self._keys.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            raise Unauthorized("unknown API key")
        if entry.revoked:
            log.info("refused revoked API key %s (subject %s)", entry.id, entry.subject)
            raise Unauthorized("revoked API key")
        return Identity(entry.subject, "api_key", entry.policy, entry.id)


class ApiKeyAuthenticator:
    """``auth.mode = "api_key"``: an :class:`~streamer.security.identity.Authenticator`
    over an :class:`ApiKeyStore`, which it refreshes (in a worker thread, never blocking
    the loop) at most every ``interval_s`` of ``clock`` time (default: Trio's clock)."""

    mode = "api_key"

    def __init__(self, store: ApiKeyStore, *, interval_s: float = RELOAD_INTERVAL_S,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.store = store
        self._interval_s = interval_s
        self._clock = clock
        self._next_check = float("-inf")

    async def authenticate(self, token: str | None, request: RequestInfo) -> Identity:
        """See :meth:`ApiKeyStore.lookup` (after a refresh if one is due)."""
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self._interval_s  # others keep the old keys meanwhile
            await trio.to_thread.run_sync(self.store.refresh)
        return self.store.lookup(token)
