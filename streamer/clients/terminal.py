"""The terminal client: ``streamer stream "prompt"``.

Makes its session first (``POST /api/sessions``: a new one, or the one ``--session`` names),
connects with trio-websocket, starts one stream, prints the answer as plain text while it
streams (the document's text; a block that changes after it was printed is reprinted only
from where it differs), a progress line on stderr when stderr is a TTY, ``stop`` on the first
Ctrl-C (a second one quits at once). Exit status: 0 on ``finish_reason`` stop/length,
1 on an ``error`` event or a refused request (its code is printed), 130 on a second Ctrl-C.

Credentials (``docs/security.md``, "Where the token travels"): ``--token`` or the
environment variable ``STREAMER_TOKEN`` goes out as ``Authorization: Bearer <token>`` on the
session's POST and on the WebSocket upgrade (RFC 6750 §2.1; never in a URL). The client sends
no ``Origin`` (``security.allow_missing_origin``).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from functools import partial
from typing import Any, TextIO
from urllib.parse import quote

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from streamer.render.ops import apply_op
from streamer.wire.events import op_from_chunk

#: the environment variable read when ``--token`` is not given
TOKEN_ENV = "STREAMER_TOKEN"
#: seconds the session's POST may take
SESSION_TIMEOUT_S = 30.0

_TAG_RE = re.compile(r"<[^>]*>")
_BLOCK_END_RE = re.compile(r"</(p|h[1-6]|li|pre|blockquote|tr|table|ul|ol)>|<br>|<hr>")


def plain_text(blocks: list[str]) -> str:
    """The document's text: tags dropped, entities decoded, blocks on their own lines."""
    parts = []
    for block in blocks:
        if not block:
            continue
        text = _BLOCK_END_RE.sub(lambda m: m.group(0) + "\n", block)
        text = html.unescape(_TAG_RE.sub("", text))
        parts.append(re.sub(r"\n{3,}", "\n\n", text).strip("\n"))
    return "\n\n".join(parts)


class Printer:
    """Prints the growing answer as plain text.

    On a terminal it follows every change: text that a later chunk re-renders differently
    (``**bold`` becoming **bold**) is rubbed out with backspaces when it is on the current
    line, else the rest is printed on a new line. Into a pipe or file it prints each block
    once it is final (and the rest at the end), so the output is exactly the answer's text.
    """

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.printed = ""
        self.final: set[int] = set()

    def on_op(self, block: int, final: bool) -> None:
        if final:
            self.final.add(block)

    def update(self, blocks: list[str], *, complete: bool = False) -> None:
        if not self.tty and not complete:
            settled = 0
            while settled in self.final and settled < len(blocks):
                settled += 1
            blocks = blocks[:settled]
            if not blocks:
                return
            text = plain_text(blocks) + "\n\n"
        else:
            text = plain_text(blocks)
        common = 0
        limit = min(len(text), len(self.printed))
        while common < limit and text[common] == self.printed[common]:
            common += 1
        rewind = self.printed[common:]
        if rewind:
            if self.tty and "\n" not in rewind:
                self.out.write("\b" * len(rewind) + " " * len(rewind) + "\b" * len(rewind))
            else:
                self.out.write("\n")
        self.out.write(text[common:])
        self.out.flush()
        self.printed = text


def start_message(args: argparse.Namespace) -> dict[str, Any]:
    """The ``start`` control the command line asks for."""
    start: dict[str, Any] = {"type": "start", "prompt": args.prompt,
                             "pacing": {"mode": args.pacing}}
    if args.cps:
        start["pacing"]["cps"] = args.cps
    for key in ("provider", "model"):
        if getattr(args, key):
            start[key] = getattr(args, key)
    if args.max_tokens:
        start["max_tokens"] = args.max_tokens
    return start


class AnswerView:
    """One answer on the terminal: applies the events, prints, and knows when it is over.

    :meth:`on_event` returns the exit status once the answer (or the connection) is done:
    0 on ``finish_reason`` stop/length, 1 after an ``error``.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.err = err
        self.progress_line = err.isatty()
        self.blocks: list[str] = []
        self.printer = Printer(out, out.isatty())
        self.status = 0

    def on_event(self, ev: dict[str, Any]) -> int | None:
        kind = ev.get("type")
        if kind == "chunk":
            apply_op(self.blocks, op_from_chunk(ev))
            self.printer.on_op(ev["block"], ev.get("final", False))
            self.printer.update(self.blocks)
        elif kind == "snapshot":
            self.blocks = list(ev["blocks"])
            self.printer.update(self.blocks)
        elif kind == "progress" and self.progress_line:
            eta = ev.get("eta_ms")
            eta_text = f", {eta / 1000:.1f} s left" if eta else ""
            self.err.write(f"\x1b7\x1b[999;1H\x1b[2K[{ev['delivered_chars']}/"
                           f"{ev['received_chars']} chars{eta_text}]\x1b8")
            self.err.flush()
        elif kind == "error":
            print(f"\nstreamer: error {ev['code']}: {ev['message']}", file=self.err)
            self.status = 1
            if not ev.get("stream_id"):
                return self.status
        elif kind == "stream_complete":
            return self._complete(ev)
        return None

    def _complete(self, ev: dict[str, Any]) -> int:
        blocks = self.blocks
        self.printer.update([ev["html"]] if "".join(blocks) != ev["html"] else blocks,
                            complete=True)
        self.printer.out.write("\n")
        if self.progress_line:
            self.err.write("\x1b7\x1b[999;1H\x1b[2K\x1b8")
        print(f"[{ev['finish_reason']}, {ev.get('duration_ms')} ms]", file=self.err)
        if ev["finish_reason"] == "error":
            self.status = self.status or 1
        return self.status


class Refused(Exception):
    """The server refused a request: its ``error`` body (``code``, ``message``)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code', 'internal_error')}: {error.get('message', '')}")
        self.error = error


def auth_headers(token: str | None) -> dict[str, str]:
    """``Authorization: Bearer <token>`` when there is a token (RFC 6750 §2.1)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _refusal(status: int, body: bytes) -> Refused:
    """The :class:`Refused` of an HTTP error answer: its JSON error body, else the status."""
    try:
        error = json.loads(body)
    except ValueError:
        error = None
    if not isinstance(error, dict) or "code" not in error:
        error = {"code": "unauthorized" if status == 401 else "forbidden" if status == 403
                 else "internal_error", "message": f"HTTP {status}"}
    return Refused(error)


def _post_session(base: str, session_id: str | None, token: str | None) -> dict[str, Any]:
    """``POST {base}/api/sessions`` (blocking; run in a thread): the answer's JSON.

    Raises:
        Refused: the server answered an error status.
        OSError: the server could not be reached (``urllib.error.URLError`` is one).
    """
    body = json.dumps({"session_id": session_id} if session_id else {}).encode()
    request = urllib.request.Request(
        f"{base}/api/sessions", data=body, method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 **auth_headers(token)})
    try:
        with urllib.request.urlopen(request, timeout=SESSION_TIMEOUT_S) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise _refusal(exc.code, exc.read()) from None
    return answer


async def create_session(base: str, session_id: str | None, token: str | None) -> str:
    """Make (or claim, when ``session_id`` names one of the caller's) the session: its id.

    Raises:
        Refused: ``unauthorized``, ``forbidden``, ``invalid_message`` (a bad id), …
        OSError: the server could not be reached.
    """
    answer = await trio.to_thread.run_sync(partial(_post_session, base, session_id, token),
                                           abandon_on_cancel=True)
    created = answer.get("session_id")
    if not isinstance(created, str):
        raise Refused({"code": "invalid_message", "message": "no session_id in the answer"})
    return created


async def run_terminal_client(args: argparse.Namespace) -> int:
    """``streamer stream``: stream one answer to the terminal; the exit status."""
    base = args.url.rstrip("/")
    ws_base = "ws" + base[4:] if base.startswith("http") else base
    token = args.token or os.environ.get(TOKEN_ENV) or None
    headers = [(k.encode(), v.encode()) for k, v in auth_headers(token).items()]
    view = AnswerView(sys.stdout, sys.stderr)
    try:
        session_id = await create_session(base, args.session, token)
        url = f"{ws_base}/ws/stream/{quote(session_id, safe='')}"
        async with open_websocket_url(url, extra_headers=headers) as ws, \
                trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_sigint, ws)
            await ws.send_message(json.dumps(start_message(args)))
            status = None
            while status is None:
                status = view.on_event(json.loads(await ws.get_message()))
            nursery.cancel_scope.cancel()
    except KeyboardInterrupt:
        return 130
    except Refused as exc:
        print(f"streamer: error {exc}", file=sys.stderr)
        return 1
    except ConnectionRejected as exc:
        print(f"streamer: error {_refusal(exc.status_code, exc.body or b'')}", file=sys.stderr)
        return 1
    except (OSError, HandshakeError, ConnectionClosed) as exc:
        print(f"streamer: cannot stream from {base}: {exc}", file=sys.stderr)
        return 1
    return status


async def _stop_on_sigint(ws: WebSocketConnection) -> None:
    """The first Ctrl-C sends ``stop``; a second one quits at once."""
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                await ws.send_message(json.dumps({"type": "stop"}))
            else:
                raise KeyboardInterrupt
