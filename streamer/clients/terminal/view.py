"""The answer the terminal client holds, and the three ways it shows it.

:class:`Answer` is one stream's document exactly as the browser's ``DocumentMirror``
(``streamer/static/src/mirror.js``) keeps it: blocks built by the ops
(:func:`streamer.render.ops.apply_op`), each event with a ``seq`` at or below the last one
applied dropped (a replay after a reconnect), a ``snapshot`` taken unless older, the final
``stream_complete.html`` as the repair of a document that missed ops.

Screens: :class:`LiveScreen` (stdout is a terminal: ``rich.live.Live`` draws the open blocks
and a progress line; a block marked ``final`` is printed above it once, for good, so the
work per refresh is the open tail's, not the answer's), :class:`PlainScreen` (a pipe or a
file: each block once it is final, no colours) and :class:`JsonScreen` (``--json``: every
server event the client applies, one JSON object a line).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.text import Text

from streamer.clients.terminal.rendering import render_block, tail_html
from streamer.render.ops import apply_op
from streamer.wire.events import op_from_chunk

__all__ = ["Answer", "JsonScreen", "LiveScreen", "PlainScreen", "Screen", "progress_text",
           "state_text"]

Event = dict[str, Any]


class Answer:
    """One stream's document and its resume cursor (``stream_id``, ``epoch``, ``last_seq``)."""

    def __init__(self) -> None:
        self.stream_id: str | None = None
        self.blocks: list[str] = []
        self.final: list[bool] = []
        #: the highest ``seq`` applied (0: none); a resume asks for what follows it
        self.last_seq = 0
        self.epoch: str | None = None
        self.complete: Event | None = None
        #: an op did not fit (a server bug or a lost event): ``stream_complete`` repairs it
        self.desynced = False

    def cursor(self) -> tuple[str, str | None, int] | None:
        """Where a reconnect resumes: an unfinished stream with something applied, else
        ``None`` (the browser client's rule: ``stream-client.js`` ``_unfinishedStream``)."""
        if self.stream_id is None or self.complete is not None or self.last_seq <= 0:
            return None
        return self.stream_id, self.epoch, self.last_seq

    def accept(self, ev: Event) -> bool:
        """Apply one event of this stream; ``False`` when it was already applied (dropped)."""
        seq = ev.get("seq")
        kind = ev.get("type")
        if kind == "snapshot":
            if isinstance(seq, int) and seq < self.last_seq:
                return False
            self.blocks = list(ev.get("blocks") or [])
            self.final = [False] * len(self.blocks)
            self.desynced = False
        elif isinstance(seq, int) and seq <= self.last_seq:
            return False
        elif kind == "chunk":
            self._apply_chunk(ev)
        elif kind == "stream_complete":
            self._complete(ev)
        if isinstance(seq, int):
            self.last_seq = seq
        if isinstance(ev.get("epoch"), str):
            self.epoch = ev["epoch"]
        return True

    def _apply_chunk(self, ev: Event) -> None:
        try:
            apply_op(self.blocks, op_from_chunk(ev))
        except (ValueError, KeyError, TypeError):
            self.desynced = True
            return
        block = ev["block"]
        self.final.extend([False] * (len(self.blocks) - len(self.final)))
        self.final[block] = bool(ev.get("final", False))

    def _complete(self, ev: Event) -> None:
        """The end. When the blocks do not join to ``html`` (ops never delivered: a ``stop``
        with a backlog; or a desync), the leading final blocks that ``html`` starts with stay
        (a screen may have shown them for good) and the rest of ``html`` is one block."""
        self.complete = ev
        final_html = ev.get("html")
        if isinstance(final_html, str) and (self.desynced or "".join(self.blocks) != final_html):
            keep, length = 0, 0
            while (keep < len(self.blocks) and self.final[keep] and not self.desynced
                   and final_html.startswith(self.blocks[keep], length)):
                length += len(self.blocks[keep])
                keep += 1
            rest = final_html[length:]
            self.blocks = self.blocks[:keep] + ([rest] if rest else [])
            self.desynced = False
        self.final = [True] * len(self.blocks)


# ------------------------------------------------------------------ status line texts


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms < 60_000 else f"{ms / 60_000:.0f} min"


def progress_text(ev: Event, width: int = 20) -> str:
    """A ``progress`` event as one line: characters shown of those received and the time
    remaining (``eta_ms``, the time the received rest needs), with a bar once the whole
    answer is known (``generation_done``); while the model still writes, both are lower
    bounds (``+``)."""
    received, delivered = ev.get("received_chars", 0), ev.get("delivered_chars", 0)
    done = bool(ev.get("generation_done"))
    more = "" if done else "+"
    eta = ev.get("eta_ms")
    if isinstance(eta, (int, float)) and eta >= 50:
        left = f" · {_seconds(eta)}{more} left"
    else:
        left = " · paused" if eta is None and ev.get("backlog_chars") else ""
    text = f"{delivered:,}/{received:,}{more} chars{left}"
    if done and received:
        filled = round(width * min(1.0, delivered / received))
        return f"{'━' * filled}{'╌' * (width - filled)} {text}"
    return text


def state_text(ev: Event) -> str | None:
    """A ``state`` or queued ``stream_start`` as a status line, or ``None``."""
    if ev.get("type") == "stream_start":
        if ev.get("queued"):
            return f"queued (position {ev.get('position', '?')})"
        if ev.get("resumed"):
            return None
        return f"{ev.get('model') or ev.get('provider')}: waiting for the first token…"
    state = ev.get("state")
    if state == "waiting":
        if not ev.get("position"):
            return "generating"
        eta = ev.get("eta_ms")
        return (f"waiting for the model (position {ev['position']}"
                + (f", about {_seconds(eta)})" if eta else ")"))
    if state == "retrying":
        return (f"the provider failed ({ev.get('code')}); retry {ev.get('attempt')} in "
                f"{_seconds(ev.get('retry_in_ms') or 0)}")
    return None


# ------------------------------------------------------------------ screens


class Screen:
    """What every screen does; the runner calls these."""

    def event(self, ev: Event) -> None:
        """An applied server event (the JSON screen prints it)."""

    def show(self, answer: Answer) -> None:
        """The document changed."""

    def status(self, text: str) -> None:
        """The progress line (transient)."""

    def notice(self, text: str) -> None:
        """A message worth keeping (a reconnect, a resume gap): stderr."""

    def tick(self) -> None:
        """Draw what changed since the last tick (called about 15 times a second)."""

    def close(self, answer: Answer) -> None:
        """The end: everything still open is shown for good."""


class _Blocks:
    """Prints blocks for good, in order, with a blank line between two that show something."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.printed = 0
        self.shown_any = False

    def settle(self, answer: Answer, everything: bool = False) -> None:
        while self.printed < len(answer.blocks) and (everything or answer.final[self.printed]):
            parts = render_block(answer.blocks[self.printed])
            self.printed += 1
            if parts:
                if self.shown_any:
                    self.console.print()
                self.console.print(Group(*parts))
                self.shown_any = True


class PlainScreen(Screen):
    """stdout is a pipe or a file: blocks printed once final, no colours; the progress line
    on stderr when stderr is a terminal."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.blocks = _Blocks(Console(file=out, color_system=None, soft_wrap=False))
        self.err = err
        self.err_tty = err.isatty()
        self.line = ""

    def show(self, answer: Answer) -> None:
        self.blocks.settle(answer)

    def status(self, text: str) -> None:
        if self.err_tty and text != self.line:
            self.line = text
            self.err.write(f"\r\x1b[2K{text}")
            self.err.flush()

    def notice(self, text: str) -> None:
        self.status("")
        print(f"streamer: {text}", file=self.err, flush=True)

    def close(self, answer: Answer) -> None:
        self.status("")
        self.blocks.settle(answer, everything=True)


class JsonScreen(PlainScreen):
    """``--json``: each applied server event on its own line of stdout, nothing else."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        super().__init__(out, err)
        self.out = out

    def event(self, ev: Event) -> None:
        self.out.write(json.dumps(ev, ensure_ascii=False) + "\n")
        self.out.flush()

    def show(self, answer: Answer) -> None:
        pass

    def close(self, answer: Answer) -> None:
        self.status("")


class _Tail:
    """The open blocks, cut to their last lines so the live region fits the screen (a long
    code block streaming shows its end)."""

    def __init__(self, parts: list[RenderableType], status: Text) -> None:
        self.parts, self.status = parts, status

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = max(1, (options.height or console.height) - 2)
        lines = console.render_lines(Group(*self.parts), options, pad=False) if self.parts \
            else []
        for line in lines[-room:]:
            yield from line
            yield Segment.line()
        yield from self.status.render(console)


class LiveScreen(Screen):
    """stdout is a terminal: the final blocks printed above, the open ones and the progress
    line drawn live (``rich.live.Live``, refreshed by :meth:`tick`, not by a thread)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.console = Console(file=out)
        self.blocks = _Blocks(self.console)
        self.live = Live(console=self.console, auto_refresh=False, transient=True,
                         redirect_stdout=False, redirect_stderr=False)
        self.answer: Answer | None = None
        self.line = Text("")
        self.dirty = True
        #: when the next draw may start (``time.monotonic()``)
        self.next_draw = 0.0
        self.live.start()

    def show(self, answer: Answer) -> None:
        self.answer = answer
        self.blocks.settle(answer)
        self.dirty = True

    def status(self, text: str) -> None:
        if text != self.line.plain:
            self.line = Text(text, style="dim")
            self.dirty = True

    def notice(self, text: str) -> None:
        self.status(text)

    def tick(self) -> None:
        """Draw the open blocks, each cut to what the screen can show (:func:`tail_html`),
        and wait before the next draw four times as long as this one took (at most a fifth of
        the time goes to drawing, however large the open block)."""
        now = time.monotonic()
        if not self.dirty or now < self.next_draw:
            return
        self.dirty = False
        parts: list[RenderableType] = []
        answer = self.answer
        rows = max(1, self.console.height)
        if answer is not None:
            for block in answer.blocks[self.blocks.printed:]:
                rendered = render_block(tail_html(block, rows))
                if rendered:
                    if parts or self.blocks.shown_any:
                        parts.append(Text(""))
                    parts.append(Group(*rendered))
        self.live.update(_Tail(parts, self.line), refresh=True)
        self.next_draw = time.monotonic() + 4 * (time.monotonic() - now)

    def close(self, answer: Answer) -> None:
        self.live.update(Text(""), refresh=True)
        self.live.stop()
        self.blocks.settle(answer, everything=True)
