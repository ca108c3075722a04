"""The fast path's decisions for code and line breaks: text the chunker appends with no render.

Each function is a pure test of the tail's text and the last block's HTML: it returns the
text a ``text`` op appends (what the renderer would show), or ``None`` where a render must
decide (``docs/chunker.md``, "Fast path").

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

from streamer.render.chunker.lines import (
    FAST_DELTA_RE,
    FAST_PREV_RE,
    QUOTE_PREFIX_RE,
    SURROGATE_RE,
    plain_line_start,
    quote_content,
)
from streamer.render.ops import trailer_start

__all__ = ["closes_fence", "fast_code", "fast_softbreak"]


def closes_fence(old_tail: str, delta: str, fence: tuple[str, int]) -> bool:
    """Whether ``delta`` is a whole line that closes the open column-0 ``fence`` (its marker,
    where its code starts in the tail; §4.5: up to 3 spaces, a run of the fence character at
    least as long as the opening one, then only spaces or tabs)."""
    marker, code_start = fence
    if not delta.endswith("\n") or "\n" in delta[:-1] or "\r" in delta \
            or not (old_tail.endswith("\n") or len(old_tail) == code_start):
        return False
    body = delta[:-1].lstrip(" ")
    if len(delta) - 1 - len(body) > 3:
        return False
    run = len(body) - len(body.lstrip(marker[0]))
    return run >= len(marker) and not body[run:].strip(" \t")


def fast_code(old_tail: str, delta: str, fence: tuple[str, int], last: str) -> str | None:
    """Code appended inside an open column-0 fence: the text is the code itself, less a
    final newline (the renderer drops the code's last newline until more follows). Any
    line that may close the fence (it starts, after spaces, with the fence character)
    and anything the renderer normalizes (``\\r``, NUL, surrogates) goes to a render, as
    does code that would end in a newline the renderer shows (a text op cannot put text
    after a block's trailing newlines)."""
    if "\r" in delta or "\x00" in delta or SURROGATE_RE.search(delta):
        return None
    marker, code_start = fence
    line = old_tail[old_tail.rfind("\n") + 1:] + delta
    if any(part.lstrip(" ")[:1] == marker[0] for part in line.split("\n")):
        return None
    held_newline = old_tail.endswith("\n") and len(old_tail) > code_start
    text = "\n" + delta if held_newline else delta
    text = text[:-1] if text.endswith("\n") else text
    # the text op appends before a block's trailing newlines: the shown code must end,
    # before and after, in a character that is not one
    if text.endswith("\n") or last[trailer_start(last):] != "</code></pre>\n":
        return None
    return text


def fast_softbreak(old_tail: str, delta: str, last: str) -> str | None:
    """A plain paragraph line ended by a newline, and a next line begun with a letter: a
    soft line break, which renders as a space (``Renderer`` softbreak), then plain text.
    No space may precede the newline (two make a hard break); the next line starts in
    column 0 with a letter, so it continues the paragraph (no block starts with one).
    Only the last line of ``old_tail`` is looked at (callers may pass it alone)."""
    nl = delta.find("\n")
    head, rest = delta[:nl], delta[nl + 1:]
    prefix = ""
    if last.startswith("<blockquote>"):  # the next line must carry the same quote markers
        line_start = old_tail.rfind("\n") + 1
        m = QUOTE_PREFIX_RE.match(old_tail, line_start)
        if m is None or not rest.startswith(m.group()):
            return None
        prefix, rest = m.group(), rest[m.end() - line_start:]
    if not rest or not rest[0].isalpha() or not FAST_DELTA_RE.fullmatch(rest):
        return None
    if head and not FAST_DELTA_RE.fullmatch(head):
        return None
    core = old_tail.rstrip(" ")
    if not core or not FAST_PREV_RE.fullmatch(core[-1]):
        return None  # the delta must go on the paragraph's current line
    line = old_tail + head
    if not FAST_PREV_RE.fullmatch(line[-1]):
        return None
    line_start = line.rfind("\n") + 1
    if "\r" in line[line_start:]:
        return None
    if prefix:
        if quote_content(line, line_start, last) is None:
            return None
    elif not plain_line_start(line, line_start):
        return None
    if "://" in line[max(line_start, line.rfind(" ", line_start) + 1):]:
        return None
    return line[len(core):] + " " + rest.rstrip(" ")
