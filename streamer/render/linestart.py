"""Line starts for the hold-back: what the beginning of a held line decides.

:class:`~streamer.render.holdback.HoldBack` releases a line only once its start can no longer
become another block's marker (CommonMark 0.31 §4, §5; GFM 0.29 §4.10 tables): ``#`` runs
without a space yet, ``-``/``*``/``+``/``=``/``_`` lines that may be a thematic break, setext
underline or list marker, digits that may become ``1.``, backtick or tilde runs that may open a
fence (held until the info string is complete), ``[`` that may be a link reference definition
(which renders nothing), ``$$`` and ``\\[`` math blocks (held whole, until the closing ``$$`` or
``\\]``), and a
``|`` line outside a table until the next line tells whether it is a delimiter row. Inside a
fenced code block, a line that may be the closing fence is held until it ends.

:func:`line_step` decides a line (with :func:`classify` outside a code block).

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["QUOTE_RE", "LineDecision", "LineKind", "LineStep", "classify", "content_start",
           "line_step"]

#: What the rest of a line is, once its start was decided.
LineKind = Literal["para", "heading", "code"]
#: A line start's decision, :func:`classify`'s ``(kind, at, info)``.
LineDecision = tuple[str, int, str | None]
#: A line decided, :func:`line_step`'s: ``(where the scan goes on, the open fence's marker
#: there, in a table, the kind of the rest of the line (``None``: at a line start), the
#: character before)``.
LineStep = tuple[int, str | None, bool, LineKind | None, str]

#: A line's block quote markers.
QUOTE_RE: Final = re.compile(r"(?: {0,3}>[ \t]?)+")
_DELIMITER_ROW_RE: Final = re.compile(
    r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_DIGITS_RE: Final = re.compile(r"[0-9]{1,9}")
#: A task item's checkbox at a line start, or what may still become one.
_TASK_RE: Final = re.compile(r"\[(?:[ xX](?:\][ \t]?)?)?")
#: A link label at a line start, and the ``:`` after it (group 1) of a definition.
_LABEL_RE: Final = re.compile(r"\[(?:[^\]\\\n]|\\.)*(?:\](:?))?")


def classify(s: str, start: int, in_table: bool) -> LineDecision:
    """Decide a line's role from its content from ``start`` (after quote markers) to
    its newline (or the held text's end: the line is not complete yet).

    Returns ``(kind, at, info)``: ``hold``; ``fence`` (info: the marker); ``table`` (``at``:
    the end of the delimiter row); ``line`` (release the complete line as it is); ``row``
    (a table row, complete); or a :data:`LineKind` with ``at`` where its inline text
    starts. A list marker or a task item's checkbox is skipped: its content decides.
    """
    eol = s.find("\n", start)
    complete = eol >= 0
    end = eol if complete else len(s)
    p = start
    while True:
        while p < end and s[p] in " \t":
            p += 1
        if p == end:
            return _whole(complete, p, end)
        ch = s[p]
        if ch.isalpha():  # (the common case first: no block starts with a letter)
            return "para", p, None
        if ch == "|" and in_table:
            # a row: held until complete, as mistune drops the whole table (renders a
            # paragraph) while a row has fewer cells than the header
            return ("row", end, None) if complete else ("hold", p, None)
        rest = s[p:end]
        if ch in "-*+_=[" or "0" <= ch <= "9":  # (an ordered item's digits are ASCII)
            step = _container_start(rest, p, end, complete)
            if not isinstance(step, int):
                return step
            p += step  # a list marker: decide its content
            continue
        return _leaf_start(s, rest, p, end, complete)


def _whole(complete: bool, p: int, end: int) -> LineDecision:
    """A line decided as it stands once complete (``line``), held until then."""
    return ("line", end, None) if complete else ("hold", p, None)


def content_start(s: str, i: int) -> int:
    """Where the content of the line at ``i`` starts, after its block quote markers."""
    q = QUOTE_RE.match(s, i)
    return q.end() if q else i


def line_step(s: str, i: int, fence: str | None, in_table: bool, prev: str,
              forced: bool) -> LineStep | None:
    """The line starting at ``i`` decided, in the context of the text before it (``fence``:
    the open fenced code block's marker; ``in_table``: the previous line was a table's;
    ``prev``: the character before ``i``): a :data:`LineStep`, or ``None`` to hold at ``i``.
    ``forced``: the hold is overruled (the line is taken as paragraph text, or as code).

    A line released whole (a fence line, a table's header and delimiter row, a complete line
    or table row, a math block) moves on past it; a paragraph or heading line moves on to
    where its inline text starts, with its kind."""
    if fence is not None:
        return _fence_line(s, i, fence, in_table, forced)
    q = QUOTE_RE.match(s, i)  # (content_start, inline: once per line of held text)
    start = q.end() if q else i
    kind, at, info = ("para", start, None) if forced else classify(s, start, in_table)
    if kind == "hold":
        return None
    if kind in ("fence", "table", "line", "row"):
        # released whole: up to ``at`` (a table's header and delimiter row), else through
        # the newline at ``at``; a fence line opens its code block
        return (at if kind == "table" else at + 1), info, kind in ("table", "row"), None, "\n"
    line: LineKind = "heading" if kind == "heading" else "para"
    return at, None, False, line, s[at - 1] if at > i else prev


def _fence_line(s: str, i: int, fence: str, in_table: bool, forced: bool) -> LineStep | None:
    """A line at ``i`` inside a fenced code block (``fence``: its opening marker), or ``None``
    to hold at ``i``. A line that may close the fence is held until it ends, as is a blank
    code line with nothing after it yet (the code then ends in a newline the renderer
    drops); ``forced`` overrules that hold."""
    n = len(s)
    eol = s.find("\n", i)
    complete = eol >= 0
    end = eol if complete else n
    body = s[content_start(s, i):end].lstrip(" ")
    blank = not body.strip(" \t")
    if not forced and (body[:1] == fence[0] or (blank and (
            not complete or not s[eol + 1:].strip(" \t\n")))):
        if not complete or blank:
            return None
        if _closes_fence(body, fence):
            return eol + 1, None, in_table, None, "\n"
    if complete:
        return eol + 1, fence, in_table, None, "\n"
    return n, fence, in_table, "code", s[n - 1]


def _container_start(rest: str, p: int, end: int, complete: bool) -> int | LineDecision:
    """A line whose content ``rest`` (at ``p``) starts like a container's marker or what may
    become one: ``-``/``*``/``+``/``_``/``=`` (a list item, a thematic break or a setext
    underline), digits (an ordered item), ``[`` (a task item's checkbox, or a link reference
    definition, which renders nothing). Returns the marker's length to skip (its content
    decides the line) or the line's decision."""
    ch = rest[0]
    if ch in "-*+_=":
        if rest.strip(ch + " \t") == "":
            return _whole(complete, p, end)
        if ch in "-*+" and rest[1] in " \t":
            return 2
        return "para", p, None
    if "0" <= ch <= "9":
        m = _DIGITS_RE.match(rest)
        assert m is not None
        after = rest[m.end():]
        if not after:
            return ("para", p, None) if complete else ("hold", p, None)
        if after[0] in ".)":
            if len(after) == 1:
                return _whole(complete, p, end)
            if after[1] in " \t":
                return m.end() + 2
        return "para", p, None
    task = _TASK_RE.match(rest)  # "["
    if task and task.end() == len(rest) and not complete:
        return "hold", p, None  # "[", "[x", "[x]": a task marker or a definition
    if task and rest[task.end() - 1:task.end()] in (" ", "\t") and task.end() == 4:
        return 4  # "[x] ": a task list item's checkbox
    # a link reference definition renders nothing: hold it until it is complete
    m = _LABEL_RE.match(rest)
    if m and (m.end() == len(rest) or m.group(1)) and not complete:
        return "hold", p, None
    return "para", p, None


def _leaf_start(s: str, rest: str, p: int, end: int, complete: bool) -> LineDecision:
    """A line whose content ``rest`` (at ``p``) starts like no container: a fence, an ATX
    heading, a ``$$`` or ``\\[`` math block, a table's header (a ``|`` line outside a table), or a
    paragraph."""
    ch = rest[0]
    if ch in "`~":
        run = len(rest) - len(rest.lstrip(ch))
        if run >= 3 and not (ch == "`" and "`" in rest[run:]):
            return ("fence", end, rest[:run]) if complete else ("hold", p, None)
        if run == len(rest) and not complete:
            return "hold", p, None
        return "para", p, None
    if ch == "#":
        run = len(rest) - len(rest.lstrip("#"))
        if run <= 6:
            if run == len(rest):
                return _whole(complete, p, end)
            if rest[run] in " \t":
                return "heading", p + run, None
        return "para", p, None
    if ch == "$" and rest.startswith("$$"):
        close = s.find("$$", p + 2)
        if close < 0:
            return "hold", p, None
        eol = s.find("\n", close)
        if eol < 0:
            return "hold", p, None
        return "line", eol, None  # the whole math block, through its closing line
    if ch == "\\" and rest.startswith("\\["):
        return _latex_block(s, p)
    if ch == "|":
        return _table_header(s, p, end, complete)
    return "para", p, None


def _latex_block(s: str, p: int) -> LineDecision:
    """A line starting ``\\[``: with its ``\\]`` on the line, released whole once complete
    (a one-line display block, or inline math that starts a paragraph); ``\\[`` alone on
    its line opens a display block, held whole through the line of the first ``\\]`` after
    it (as ``$$``); any other text after it makes a paragraph line (the inline scan holds
    the ``\\[`` until its line tells)."""
    eol = s.find("\n", p)
    rest = s[p + 2:eol if eol >= 0 else len(s)]
    if "\\]" in rest:
        return ("line", eol, None) if eol >= 0 else ("hold", p, None)
    if rest.strip(" \t"):
        return "para", p, None
    close = s.find("\\]", eol) if eol >= 0 else -1
    end = s.find("\n", close) if close >= 0 else -1
    return ("hold", p, None) if end < 0 else ("line", end, None)


def _table_header(s: str, p: int, end: int, complete: bool) -> LineDecision:
    """A ``|`` line outside a table: a header if the next line is a delimiter row."""
    if not complete:
        return "hold", p, None
    nxt = end + 1
    eol = s.find("\n", nxt)
    line_end = eol if eol >= 0 else len(s)
    q = QUOTE_RE.match(s, nxt, line_end)
    body = s[q.end() if q else nxt:line_end]
    if body.strip(" \t|-:") != "":
        return "para", p, None
    if eol < 0:
        return "hold", p, None
    if _DELIMITER_ROW_RE.fullmatch(body) and "-" in body:
        return "table", eol + 1, None
    return "para", p, None


def _closes_fence(body: str, fence: str) -> bool:
    """Whether a code line (without its indentation) closes the fence (§4.5)."""
    run = len(body) - len(body.lstrip(fence[0]))
    return run >= len(fence) and body[run:].strip(" \t") == ""
