"""Hold back undecided markdown: text deltas in, the *decided* prefix of the text out.

The chunker renders whatever text it is given. Given a prefix that ends inside a construct
that is not decided yet (``**bol``, ``[label](htt``, a line ``| a | b |`` that becomes a
table header only if a delimiter row follows, a fence line still typing its info string), it
would show the raw syntax (``**bol`` as text) and later take it back when the construct
closes: *flicker*. :class:`HoldBack` sits in front of the chunker and releases text only up
to the first position whose rendering can still change because of what follows::

    hold = HoldBack()
    for delta in deltas:
        chunker_input(hold.feed(delta))     # the decided text, possibly ""
    chunker_input(hold.flush())            # end of text: everything held

The released pieces always join to the input (``"".join(released) == "".join(deltas)`` after
:meth:`HoldBack.flush`), so holding back never changes the final document, only *when* a
character is shown. What is held (CommonMark 0.31 and GFM 0.29 sections in brackets):

* **Inline** (§6), inside paragraphs, headings, list items and table cells: a ``*``/``_``
  run that can open emphasis (left-flanking, §6.2) until closers of its length arrived; a
  ``~~`` run likewise (GFM §6.5); a backtick run until a run of the same length (§6.1); ``[``
  or ``![`` until ``]`` and, if ``(`` follows, the balanced ``)`` (§6.3); ``<`` + letter until
  ``>`` or a character that cannot be in an autolink (§6.5); ``&`` while it can still become
  an entity reference (§2.5); a trailing ``\\``; ``$`` math while a closing ``$`` may still
  come on the same line (mistune's math plugin pattern), and ``\\(``/``\\[`` likewise
  (LaTeX's delimiters: math or an escaped character, see ``docs/chunker.md``); a word
  that is or may become a bare URL (``https://…``, ``www.…``; GFM §6.9) until it ends;
  trailing spaces (two of them before a newline make a hard line break, §6.7). An opener
  whose construct cannot close any more (its paragraph ended: a blank line or a line that
  starts another block) is decided as literal text and released.
* **Line starts** (§4, §5): a line is held while its beginning can still become a block
  marker: ``#`` runs without a space yet, ``-``/``*``/``+``/``=``/``_`` lines that may be a
  thematic break, setext underline or list marker, digits that may become ``1.``, backtick or
  tilde runs that may open a fence (a fence line is held until its info string is complete,
  then the code block shows at once and grows line by line; inside it a line that may be the
  closing fence is held until it ends), ``[`` that may be a link reference definition (which
  renders nothing), ``$$`` and ``\\[`` math blocks (held whole, until the closing ``$$`` or
  ``\\]``), and a ``|``
  line outside a table until the next line tells whether it is a table's delimiter row
  (:mod:`streamer.render.linestart` decides line starts).

A held construct is released after :data:`HOLD_MAX_CHARS` characters whatever it is
(:attr:`HoldBack.overflows` counts that), so an unclosed ``**`` cannot hide the rest of a long
paragraph; this is the only case that can flicker. Cost: a :meth:`HoldBack.feed` scans the
held text (usually a word or one construct), O(held) and never more than the cap; held text
of 64 characters or more is scanned again only once it grew by an eighth, and an overflow
releases all but half the cap, so a long hold costs O(1) amortized per character (it may be
released up to an eighth of its length late).

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from streamer.render.linestart import QUOTE_RE, LineKind, line_step

__all__ = ["HOLD_MAX_CHARS", "HoldBack"]

#: Characters held at most: past this, the held text is released whatever it is.
HOLD_MAX_CHARS: Final = 800
#: Held text at least this long is scanned again only once it grew by an eighth.
_RESCAN_MIN: Final = 64

_ENTITY_RE: Final = re.compile(
    r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});")
_ENTITY_PREFIX_RE: Final = re.compile(
    r"&(?:#[xX][0-9a-fA-F]{0,6}|#[0-9]{0,7}|[A-Za-z][A-Za-z0-9]{0,31})?")
_URL_STARTS: Final = ("https://", "http://", "www.")
#: Characters that start an inline construct (or a URL word: ``h``, ``w``).
_INLINE_SPECIAL: Final = frozenset("\\`*_~[!<&$ \thw")
_PUNCT_RE: Final = re.compile(r"[^\w\s]")
#: Text that :meth:`HoldBack.feed` decides at once inside a line: words with no character
#: that can start a construct, no word after a space that starts like a URL (``h``, ``w``);
#: the trailing spaces (group 1) stay held.
_PLAIN_DELTA_RE: Final = re.compile(
    r"(?:[^\\`*_~\[!<&$\s]+| +[^\\`*_~\[!<&$\shw][^\\`*_~\[!<&$\s]*)"
    r"(?: +[^\\`*_~\[!<&$\shw][^\\`*_~\[!<&$\s]*)*( *)")

#: :meth:`HoldBack.feed_plain`'s text: as :data:`_PLAIN_DELTA_RE`, of letters, digits and
#: ``, . : ? ' " - (`` only (the chunker's plain-text characters, less ``!``).
_PLAIN_FAST_RE: Final = re.compile(
    r"(?:(?:[^\W_]|[,.:?'\"(-])+| +(?![hw])(?:[^\W_]|[,.:?'\"(-])+)"
    r"(?: +(?![hw])(?:[^\W_]|[,.:?'\"(-])+)*( *)")


def _is_space(c: str) -> bool:
    return c == "" or c.isspace()


def _is_punct(c: str) -> bool:
    return bool(c) and _PUNCT_RE.fullmatch(c) is not None


@dataclass(slots=True)
class _Ctx:
    """Where the released text ends: what the next character continues."""

    #: the open fence's marker (``"```"``, ``"~~~~"``) while inside a fenced code block
    fence: str | None = None
    #: the previous line was part of a table (header, delimiter row or row)
    in_table: bool = False
    #: ``None`` at a line start, else what the rest of the current line is
    line: LineKind | None = None
    #: the last released character (``"\\n"`` at the start)
    prev: str = "\n"


class HoldBack:
    """The hold-back filter of one stream. See the module docstring.

    Attributes:
        overflows: times held text was released because it reached :data:`HOLD_MAX_CHARS`.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._ctx = _Ctx()
        self.overflows = 0
        #: the held text is scanned again once it is this long (a long hold that the last
        #: scan could not decide waits for an eighth more text: O(1) amortized per character)
        self._next_scan = 0

    @property
    def pending(self) -> str:
        """The text held now (not yet released)."""
        return self._pending

    def feed(self, delta: str) -> str:
        """Take the next delta; return the text it decides (``""`` if it only grows a hold)."""
        if not delta:
            return ""
        c = self._ctx
        if c.line == "code" and not self._pending and "\n" not in delta:
            # mid-line in a code block: the line's start decided it, nothing in it can
            # change that before its newline (what _scan does for a "code" line, without it)
            c.prev = delta[-1]
            return delta
        out = self._plain(delta, _PLAIN_DELTA_RE)
        if out is not None:
            return out
        self._pending += delta
        n = len(self._pending)
        if n < self._next_scan and n <= HOLD_MAX_CHARS:
            return ""  # a long hold is looked at again once it grew by an eighth
        k, ctx = self._scan(0)
        if n - k > HOLD_MAX_CHARS:
            # too long undecided: take what holds it as literal text, up to half the cap
            # from the end (so the next overflow is HOLD_MAX_CHARS / 2 characters away)
            self.overflows += 1
            k, ctx = self._scan(n - HOLD_MAX_CHARS // 2)
        out = self._pending[:k]
        if out:
            self._pending = self._pending[k:]
            self._ctx = ctx
        rest = n - k
        self._next_scan = rest + rest // 8 if rest >= _RESCAN_MIN else 0
        return out

    def feed_plain(self, delta: str) -> str | None:
        """:meth:`feed` for the common case, or ``None`` (and nothing taken) outside it:
        mid-line in a paragraph or heading, with nothing but spaces held, plain words of
        letters, digits and ``, . : ? ' " - (`` (the characters the chunker's hot path
        appends as they are) are decided at once, but for trailing spaces. One pattern checks
        both, so the chunker's hot path pays one match per delta."""
        return self._plain(delta, _PLAIN_FAST_RE)

    def _plain(self, delta: str, pattern: re.Pattern[str]) -> str | None:
        """Mid-line plain words (no construct can start in them, :data:`_PLAIN_DELTA_RE`):
        decided as they are, but for trailing spaces (a hard break if a newline follows,
        §6.7), which stay held; ``None`` if the context or the text is not that."""
        c = self._ctx
        pending = self._pending
        if (c.line != "para" and c.line != "heading") or (pending and not pending.isspace()):
            return None
        text = pending + delta if pending else delta
        m = pattern.fullmatch(text)
        if m is None or (text[0] in "hw" and _is_space(c.prev)):
            return None
        spaces = m.end(1) - m.start(1)
        out = text[:len(text) - spaces] if spaces else text
        self._pending = text[len(out):]
        self._next_scan = 0  # (what was held is released)
        c.prev = out[-1]
        return out

    def flush(self) -> str:
        """End of text: release everything held (the filter is done after it)."""
        out = self._pending
        self._pending = ""
        self._next_scan = 0
        return out

    # -- the scan ---------------------------------------------------------------------------

    def _scan(self, force_until: int) -> tuple[int, _Ctx]:
        """The end of the decided prefix of the held text, and the context there.

        ``force_until``: before this position every hold is overruled (an inline opener is
        taken as a literal character, a held line start as paragraph text).
        The loop walks the held text once: at a line start it decides the line
        (:func:`~streamer.render.linestart.line_step`), inside inline text it skips plain
        characters and asks :meth:`_inline` about the others.
        """
        s = self._pending
        n = len(s)
        c = self._ctx
        fence, in_table, line, prev = c.fence, c.in_table, c.line, c.prev
        i = 0
        # the current line's start, the character before it, and where its content starts
        line_begin, prev_begin, content_at = 0, prev, -1
        while i < n:
            if line is None:  # a line start: decide what the line is
                step = line_step(s, i, fence, in_table, prev, False)
                if step is None and i < force_until:
                    step = line_step(s, i, fence, in_table, prev, True)
                if step is None:
                    return i, _Ctx(fence, in_table, None, prev)
                if step[3] == "para" or step[3] == "heading":
                    line_begin, prev_begin, content_at = i, prev, step[0]
                i, fence, in_table, line, prev = step
                continue
            if line == "code":
                eol = s.find("\n", i)
                if eol < 0:
                    i, prev = n, s[n - 1]
                else:
                    i, line, prev = eol + 1, None, "\n"
                continue
            # inline text of a paragraph, heading or table row
            ch = s[i]
            if ch == "\n":
                i, line, prev = i + 1, None, "\n"
                continue
            if ch not in _INLINE_SPECIAL or (ch in "hw" and not _is_space(prev)):
                i, prev = i + 1, ch
                continue
            end_ = i + 1 if i < force_until else self._inline(s, i, prev, line)
            if end_ is None:
                if i == content_at and line_begin >= force_until:
                    # held at the line's first character: decide the line again next time
                    return line_begin, _Ctx(fence, in_table, None, prev_begin)
                return i, _Ctx(fence, in_table, line, prev)
            i, prev = end_, s[end_ - 1]
        return n, _Ctx(fence, in_table, line, prev)

    @staticmethod
    def _para_ends(s: str, i: int, line: LineKind) -> int | None:
        """Where the inline scope containing ``i`` ends, or ``None`` if not known yet.

        A heading's scope is its line; a paragraph's, the first newline followed by a blank
        line or by a line that starts another block.
        """
        n = len(s)
        if line == "heading":
            j = s.find("\n", i)
            return j if j >= 0 else None
        j = i
        while True:
            j = s.find("\n", j)
            if j < 0:
                return None
            k = j + 1
            q = QUOTE_RE.match(s, k)
            if q:
                k = q.end()
            while k < n and s[k] in " \t":
                k += 1
            if k == n:
                return None
            ch = s[k]
            if ch == "\n" or ch in "#`~|>-+*=$<" or ch.isdigit() or s.startswith("\\[", k):
                return j
            j += 1

    def _inline(self, s: str, i: int, prev: str, line: LineKind) -> int | None:
        """The end of the decided construct starting at ``s[i]``, or ``None`` to hold at ``i``."""
        n = len(s)
        ch = s[i]
        if ch in " \t":
            j = i
            while j < n and s[j] in " \t":
                j += 1
            return None if j == n else j
        if ch in "hw":
            return _url_word(s, i)
        if ch == "\\":
            if i + 1 == n:
                return None
            if s[i + 1] == "\n":  # a hard line break once the next line has begun
                return None if i + 2 == n else i + 1
            if s[i + 1] in "([":
                return _latex(s, i)
            return i + 2
        if ch == "&":
            m = _ENTITY_RE.match(s, i)
            if m:
                return m.end()
            prefix = _ENTITY_PREFIX_RE.match(s, i)  # (always matches: "&" alone does)
            return None if prefix is not None and prefix.end() == n else i + 1
        if ch == "<":
            return _angle(s, i)
        if ch == "!":
            if i + 1 == n:
                return None
            return self._brackets(s, i + 1, line) if s[i + 1] == "[" else i + 1
        if ch == "[":
            return self._brackets(s, i, line)
        if ch == "`":
            return self._code_span(s, i, line)
        if ch in "*_~":
            return self._delimiter(s, i, prev, line)
        if ch == "$":
            return self._math(s, i)
        return i + 1  # pragma: no cover - _INLINE_SPECIAL is exhausted above

    def _code_span(self, s: str, i: int, line: LineKind) -> int | None:
        """A backtick run at ``i``: through the closing run of the same length (§6.1), or
        the run alone as literal text once its scope ended without one."""
        n = len(s)
        run = _run(s, i, "`")
        scope = self._para_ends(s, i, line)
        limit = n if scope is None else scope
        for m in re.finditer(r"`+", s[i + run:limit]):
            if len(m.group()) == run:
                if i + run + m.end() == n and scope is None:
                    return None  # the closing run may still grow
                return i + run + m.end()
        return None if scope is None else i + run

    def _delimiter(self, s: str, i: int, prev: str, line: LineKind) -> int | None:
        n = len(s)
        ch = s[i]
        run = _run(s, i, ch)
        if i + run == n:
            return None  # flanking depends on the next character
        if ch == "~" and run < 2:
            return i + run
        if not _can_open(ch, prev, s[i + run]):
            return i + run
        scope = self._para_ends(s, i, line)
        limit = n if scope is None else scope
        need = run
        j = i + run
        while j < limit:
            k = s.find(ch, j, limit)
            if k < 0:
                break
            r = _run(s, k, ch)
            if k + r == n:
                return None
            if ch != "~" or r >= 2:
                if _can_close(ch, s[k - 1], s[k + r]):
                    need -= r
                    if need <= 0:
                        return k + r
                elif _can_open(ch, s[k - 1], s[k + r]):
                    need += r  # a nested opener needs its own closers first
            j = k + r
        return None if scope is None else i + run

    def _brackets(self, s: str, i: int, line: LineKind) -> int | None:
        """``[`` at ``i``: through the link's end, or ``i + 1`` when it cannot be one."""
        n = len(s)
        scope = self._para_ends(s, i, line)
        limit = n if scope is None else scope
        close = _matching(s, i, "[", "]", limit)
        if close is None:
            return None if scope is None else i + 1
        if close + 1 >= n:
            return None
        nxt = s[close + 1]
        if nxt == "(":
            end = _matching(s, close + 1, "(", ")", limit)
            if end is None:
                return None if scope is None else close + 1
            return end + 1
        if nxt == "[":
            end = _matching(s, close + 1, "[", "]", limit)
            if end is None:
                return None if scope is None else close + 1
            return end + 1
        return close + 1

    @staticmethod
    def _math(s: str, i: int) -> int | None:
        n = len(s)
        if i + 1 == n:
            return None
        if s[i + 1] == "$":
            k = s.find("$$", i + 2)
            eol = s.find("\n", i)
            if k >= 0 and (eol < 0 or k < eol):
                return k + 2
            return None if eol < 0 else i + 2
        if s[i + 1].isspace():
            return i + 1
        j = i + 1
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "\n":
                return i + 1
            if c == "$":
                if j + 1 == n:
                    return None
                if not s[j + 1].isdigit():
                    return j + 1
            j += 1
        return None


def _latex(s: str, i: int) -> int | None:
    """``\\(`` or ``\\[`` at ``i``: through its closer when it is inline math
    (:data:`streamer.render.markdown.LATEX_INLINE_PATTERN`: on the line, not empty, a
    backslash and the next character a pair), ``i + 2`` (an escaped character) once it
    cannot be, ``None`` while it may still be."""
    n = len(s)
    close = ")" if s[i + 1] == "(" else "]"
    j = i + 2
    if j + 1 < n and s[j] == "\\" and s[j + 1] == close:
        return i + 2  # "\\(\\)": empty, two escaped characters
    while j < n:
        c = s[j]
        if c == "\n":
            return i + 2
        if c == "\\":
            if j + 1 == n:
                return None
            if s[j + 1] == "\n":
                return i + 2
            if s[j + 1] == close and j > i + 2:
                return j + 2
            j += 2
            continue
        j += 1
    return None


def _url_word(s: str, i: int) -> int | None:
    """An ``h`` or ``w`` after a space at ``i``: held while its word is or may become a bare
    URL (``https://``, ``http://``, ``www.``; GFM §6.9) that is still growing."""
    n = len(s)
    word_end = i
    while word_end < n and not s[word_end].isspace() and s[word_end] != "<":
        word_end += 1
    word = s[i:word_end]
    if word_end == n and any(u.startswith(word) or word.startswith(u) for u in _URL_STARTS):
        return None  # a URL (or maybe one) still growing
    return i + 1


def _angle(s: str, i: int) -> int | None:
    """``<`` at ``i``: through an autolink's ``>`` (§6.5), or ``i + 1`` when it cannot be
    one; ``None`` while it may still be one."""
    n = len(s)
    if i + 1 == n:
        return None
    if not s[i + 1].isalpha():
        return i + 1
    j = i + 1
    while j < n and s[j] not in " \t\n<>":
        j += 1
    if j == n:
        return None
    return j + 1 if s[j] == ">" else i + 1


def _run(s: str, i: int, ch: str) -> int:
    j = i
    while j < len(s) and s[j] == ch:
        j += 1
    return j - i


def _flanking(before: str, after: str) -> tuple[bool, bool]:
    """CommonMark §6.2: whether a delimiter run between ``before`` and ``after`` (``""`` for
    a line edge) is (left-flanking, right-flanking)."""
    left = not _is_space(after) and (not _is_punct(after) or _is_space(before)
                                     or _is_punct(before))
    right = not _is_space(before) and (not _is_punct(before) or _is_space(after)
                                       or _is_punct(after))
    return left, right


def _can_open(ch: str, before: str, after: str) -> bool:
    """§6.2: ``*``/``~`` runs open when left-flanking; ``_`` also must not be right-flanking
    unless preceded by punctuation."""
    left, right = _flanking(before, after)
    return left and (ch != "_" or not right or _is_punct(before))


def _can_close(ch: str, before: str, after: str) -> bool:
    left, right = _flanking(before, after)
    return right and (ch != "_" or not left or _is_punct(after))


def _matching(s: str, i: int, open_: str, close: str, limit: int) -> int | None:
    """The index of the bracket closing ``s[i]`` before ``limit`` (escapes skipped)."""
    depth = 0
    j = i
    while j < limit:
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return None
