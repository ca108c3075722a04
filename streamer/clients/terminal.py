"""The terminal client: ``streamer stream "prompt"``.

Connects with trio-websocket, starts one stream, prints the answer as plain text while it
streams (the document's text; a block that changes after it was printed is reprinted only
from where it differs), a progress line on stderr when stderr is a TTY, ``stop`` on the first
Ctrl-C (a second one quits at once). Exit status: 0 on ``finish_reason`` stop/length,
1 on an ``error`` event (its code is printed), 130 on a second Ctrl-C.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import secrets
import signal
import sys
from typing import Any, TextIO

import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from streamer.render.ops import apply_op
from streamer.wire.events import op_from_chunk

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


async def run_terminal_client(args: argparse.Namespace) -> int:
    """``streamer stream``: stream one answer to the terminal; the exit status."""
    base = args.url.rstrip("/")
    ws_base = "ws" + base[4:] if base.startswith("http") else base
    session_id = "cli_" + secrets.token_urlsafe(12)
    view = AnswerView(sys.stdout, sys.stderr)
    try:
        async with open_websocket_url(f"{ws_base}/ws/stream/{session_id}") as ws, \
                trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_sigint, ws)
            await ws.send_message(json.dumps(start_message(args)))
            status = None
            while status is None:
                status = view.on_event(json.loads(await ws.get_message()))
            nursery.cancel_scope.cancel()
    except KeyboardInterrupt:
        return 130
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
