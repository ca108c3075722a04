"""Every Redis key name the redis engine writes, in one place (``docs/engines.md``), and the
one conversion of a Redis reply to text. Pure: no I/O, no runtime imports.

Keys (``P`` = ``engine.key_prefix``)::

    P stream:{stream_id}        a stream's log (a Redis Stream; ``engines/redis_log.py``)
    P epoch                     the epochs' counter (``INCR``)
    P starts                    the streams begun, for every process (a Redis Stream)
    P wake:{process_id}:{n}     a stream reader's wake stream (``engines/redis_reader.py``)
    P lease:{stream_id}         a stream's generation lease (``engines/redis_lease.py``)
    P lost:{stream_id}          the claim on a lost stream's partial answer
    P control:{process_id}      a process's routed controls (``engines/redis_control.py``)
    P ack:{request_id}          a routed control's answer
    P queued:{stream_id}        the process holding a queued stream
    P session:{session_key}     a session's identity and current stream (``redis_meta.py``)
    P meta:{stream_id}          a stream's metadata
    P watched:{stream_id}       another process has subscribers of the stream
    P store:…                   the store's namespace (``engines/redis_store.py``)
    P limits:…                  the shared limits' namespace (``engines/redis_limits.py``)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _named(kind: str) -> Callable[[Keys, str], str]:
    """The method naming ``{prefix}{kind}:{name}``."""
    def name(self: Keys, ident: str) -> str:
        return f"{self.prefix}{kind}:{ident}"
    name.__name__ = kind
    return name


@dataclass(frozen=True, slots=True)
class Keys:
    """The key names under ``prefix`` (``engine.key_prefix``, e.g. ``"streamer:"``); each
    method takes the stream's, process's, request's or session key's id (the table above).
    """

    prefix: str

    stream = _named("stream")
    lease = _named("lease")
    lost = _named("lost")
    control = _named("control")
    ack = _named("ack")
    queued = _named("queued")
    session = _named("session")
    meta = _named("meta")
    watched = _named("watched")

    def wake(self, process_id: str, n: int) -> str:
        return f"{self.prefix}wake:{process_id}:{n}"

    #: the epochs' counter, the streams begun, and the store's and the limits' namespaces
    #: (their keys are ``{store}{kind}:{name}``, ``{limits}{kind}:{name}``)
    epoch: str = field(init=False)
    starts: str = field(init=False)
    store: str = field(init=False)
    limits: str = field(init=False)

    def __post_init__(self) -> None:
        for name, suffix in (("epoch", "epoch"), ("starts", "starts"), ("store", "store:"),
                             ("limits", "limits:")):
            object.__setattr__(self, name, f"{self.prefix}{suffix}")


def text(value: Any) -> str | None:
    """A Redis reply as text: bytes decoded (UTF-8), anything else as ``str``; ``None``
    (a missing key or field) stays ``None``."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
