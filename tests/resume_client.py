"""A resuming protocol client for tests: applies events to a document, checks ``seq``, and
reconnects over WebSocket or SSE with its cursor after any connection failure."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from streamer.render.ops import apply_op
from streamer.wire.events import op_from_chunk


class DuplicateEvent(AssertionError):
    """The server sent a ``seq`` the client had already applied."""


@dataclass
class Doc:
    """The client's copy of one stream."""

    stream_id: str | None = None
    epoch: str | None = None
    last_seq: int = 0
    blocks: list[str] = field(default_factory=list)
    complete: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    snapshots: int = 0
    events: int = 0

    @property
    def html(self) -> str:
        return "".join(self.blocks)

    def apply(self, ev: dict[str, Any]) -> None:
        self.events += 1
        kind = ev["type"]
        if kind == "connected":
            self.epoch = self.epoch or ev.get("epoch")
        elif kind == "stream_start" and self.stream_id is None:
            self.stream_id = ev["stream_id"]
        elif kind == "snapshot":
            self.blocks = list(ev["blocks"])
            self.last_seq, self.epoch = ev["seq"], ev["epoch"]
            self.snapshots += 1
        elif kind == "chunk":
            if ev["seq"] <= self.last_seq:
                raise DuplicateEvent(f"seq {ev['seq']} after {self.last_seq}: {ev}")
            apply_op(self.blocks, op_from_chunk(ev))
            self.last_seq, self.epoch = ev["seq"], ev["epoch"]
        elif kind == "stream_complete":
            self.complete = ev
        elif kind == "error":
            self.errors.append(ev)

    def cursor_query(self) -> str:
        if self.stream_id is None:
            return ""
        return "?" + urlencode({"stream_id": self.stream_id, "epoch": self.epoch or "",
                                "last_seq": self.last_seq})

    def last_event_id(self) -> str | None:
        if self.stream_id is None or self.epoch is None:
            return None
        return f"{self.stream_id}:{self.epoch}:{self.last_seq}"


async def ws_follow(ws_base: str, session_id: str, doc: Doc,
                    ssl_context: ssl.SSLContext | None = None) -> bool:
    """One WebSocket connection: apply events until ``stream_complete`` (``True``) or the
    connection fails (``False``)."""
    url = f"{ws_base}/ws/stream/{session_id}{doc.cursor_query()}"
    try:
        async with open_websocket_url(url, ssl_context=ssl_context, connect_timeout=5,
                                      disconnect_timeout=1) as ws:
            while True:
                doc.apply(json.loads(await ws.get_message()))
                if doc.complete is not None:
                    return True
    except (ConnectionClosed, HandshakeError, OSError, trio.BrokenResourceError,
            trio.TooSlowError):
        return doc.complete is not None


async def sse_follow(base_url: str, session_id: str, doc: Doc,
                     ssl_context: ssl.SSLContext | None = None) -> bool:
    """One SSE connection (``Last-Event-ID`` = the cursor): like :func:`ws_follow`."""
    headers = {"Accept": "text/event-stream"}
    if (last := doc.last_event_id()) is not None:
        headers["Last-Event-ID"] = last
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10,
                                     verify=ssl_context or True) as client, \
                client.stream("GET", f"/api/sessions/{session_id}/events",
                              headers=headers) as response:
            buffer = ""
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer:
                    raw, buffer = buffer.split("\n\n", 1)
                    data = [line[5:].lstrip(" ") for line in raw.split("\n")
                            if line.startswith("data:")]
                    if data:
                        doc.apply(json.loads("\n".join(data)))
                    if doc.complete is not None:
                        return True
    except (httpx.HTTPError, OSError, trio.BrokenResourceError):
        pass
    return doc.complete is not None
