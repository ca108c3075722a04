"""What a line of the open tail is: the chunker's regexes and line predicates.

The fast, hot and splice paths of :mod:`streamer.render.chunker` take a delta without a
render only where the text around it leaves one reading; these are the tests of that text
(CommonMark 0.31 and GFM sections in the docstrings) and of the HTML it rendered to. All are
functions of their arguments, but for :class:`TailScan`, which keeps how far it has scanned
the open tail (the tail only grows between renders, so each line is scanned once).

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from streamer.render.chunker.metrics import TAG_RE
from streamer.render.ops import escape_text, split_trailer, trailer_start

#: The line that holds the last block's text, for the fast path (:meth:`TailScan.line_kind`).
LineKind = Literal["paragraph", "quote", "item", "heading"]

#: Delta characters the fast path accepts: Unicode letters and digits, space, and
#: punctuation that is no inline delimiter here: ``, . : ? ! ' " - (`` (not ``)``, which could
#: close a link destination; not ``;``, which could end an entity; not ``/``, without which
#: no bare URL forms (``https://``, GFM §6.9); not ``*_`~[]<>&\``).
FAST_DELTA_RE: Final = re.compile(r"(?:[^\W_]|[ ,.:?!'\"(-])+")
#: A delta the hot path takes mid-line in an open fence: no newline, nothing the renderer
#: normalizes (``\r``, NUL, surrogates).
CODE_DELTA_RE: Final = re.compile("[^\n\r\x00\ud800-\udfff]+")
#: Characters the fast path accepts right before the delta (after trailing spaces).
FAST_PREV_RE: Final = re.compile(r"[^\W_]|[,.:?!'\"(-]")
#: A list item's or an ATX heading's line start, up to its content: ``- ``, ``12. ``,
#: ``- [x] ``, ``## ``.
_FAST_LINE_RE: Final = re.compile(r"(?P<item> *(?:[-+*]|[0-9]{1,9}[.)]) {1,4}"
                                  r"(?:\[[ xX]\] +)?)"
                                  r"|(?P<heading>#{1,6} +)")
#: What the last block must be for each kind of line.
_FAST_BLOCK_PREFIX: Final = {"item": ("<ul>", "<ul ", "<ol>", "<ol "),
                             "heading": ("<h1>", "<h2>", "<h3>", "<h4>", "<h5>", "<h6>")}
_LINK_START_RE: Final = re.compile(r"!?\[[^\]\[\n]*\]\(")


def plain_line_start(text: str, p: int) -> bool:
    """Whether the (block content of the) line starting at ``p`` is already plain inline text
    that letters appended at its end cannot turn into a block marker: it starts with a letter,
    or with ``*``/``_`` then a non-blank (emphasis, not a list marker or a thematic break: a
    letter follows somewhere), or with a backtick or ``~`` that does not open a fence, or
    with an inline link or image (``[text](``, never a definition), or with a bracket that
    is not closed on the line."""
    first = text[p]
    if first.isalpha():
        return True
    rest = text[p:]
    if first in "*_":
        return len(rest) > 1 and rest[1] not in " \t" and any(c.isalpha() for c in rest)
    if first == "`":
        return not rest.startswith("```")
    if first == "~":
        return not rest.startswith("~~~")
    if first in "[!":
        # an inline link or image, not a link reference definition (``[label]:``); or a
        # bracket not closed on the line (callers rule out a line that may be a definition's)
        return _LINK_START_RE.match(rest) is not None or (
            "]" not in rest and rest[first == "!":][:1] == "[")
    return False


def _indent_end(text: str, p: int) -> int:
    """Where the spaces that begin at ``p`` end."""
    while p < len(text) and text[p] == " ":
        p += 1
    return p


def _item_lines(lines: str) -> tuple[bool, int]:
    """For complete lines of the open tail: (no line starts an HTML block, fence lines)."""
    fences = 0
    for line in lines.split("\n"):
        stripped = line.lstrip(" \t")
        if stripped.startswith("<"):
            return False, fences
        body = _FAST_LINE_RE.sub("", stripped, count=1) if _FAST_LINE_RE.match(stripped) \
            else stripped
        if body.startswith(("```", "~~~")):
            fences += 1
    return True, fences





#: In a block's text so far (tags and code spans removed): what a later closer could still
#: pair with (an ``_`` between two letters or digits cannot open, §6.2).
_UNCLOSED_RE: Final = re.compile(r"[*~`\[$\\]|&lt;|(?<![^\W_])_|_(?![^\W_])")
_CODE_SPAN_RE: Final = re.compile(r"<code>.*?</code>", re.DOTALL)
#: A line that may start an HTML block (§4.6), whose text is not inline-parsed.
HTML_LINE_RE: Final = re.compile(r"(?m)^[ >]*<")
#: A top-level list item's marker and its space: ``- ``, ``12. ``, ``3) ``.
ITEM_MARKER_RE: Final = re.compile(r"([-+*]|[0-9]{1,9}[.)]) ")
#: Fences and math blocks (``$$``, ``\[``), whose content a blank line can change.
FENCE_ANYWHERE_RE: Final = re.compile(r"```|~~~|\$\$|\\\[")
#: A line that may open or close a math block: ``$$``, ``\[`` or ``\]`` after quote
#: markers, list markers and indentation (group 1: the mark, group 2: the rest of the line).
_MATH_LINE_RE: Final = re.compile(r"[ \t>*+\-0-9.)]*(\$\$|\\\[|\\\])(.*)")
QUOTE_PREFIX_RE: Final = re.compile(r"(?:> ?)+")
#: A line that may be (or begin) a link reference definition (§4.7), in a quote or list item
#: too: ``[`` then ``]:`` on the line, or no ``]`` yet (a label may span lines) within 999
#: characters (mistune's ``LINK_LABEL``: no label is longer); not a task item's
#: ``[ ]``/``[x]``. Its destination may come on the next line, so a plain line after it may
#: render nothing.
DEF_LINE_RE: Final = re.compile(
    r"(?m)^[ \t>*+\-0-9.)]*\[(?![ xX]\] )(?:[^\n]*\]:|[^\]\n]{0,999}$)")
#: A quote's trailer whose deepest last element is a paragraph (or an inline element in one:
#: the fast path never appends after one, its markdown ends in a delimiter or a URL).
QUOTE_TRAILER_RE: Final = re.compile(r"(?:</(?:a|strong|em|del|code|span)>)*</p>")
#: A trailer whose deepest last element is text in a paragraph or a list item (maybe in an
#: inline element).
_NESTED_TRAILER_RE: Final = re.compile(r"(?:</(?:a|strong|em|del|code|span)>)*</(?:p|li)>")
#: A line's container markers: block quote markers, list item markers (with a task item's
#: box) and indentation, in any mix (``"> - "``, ``"- > "``, ``"   "``).
_NESTED_PREFIX_RE: Final = re.compile(
    r"(?: *(?:> ?|(?:[-+*]|[0-9]{1,9}[.)]) {1,4}(?:\[[ xX]\] +)?))* *")
#: An indented line start inside a list item: a nested item's marker, or text, that begins
#: with a letter or a simple inline delimiter (emphasis, a code span, a link, strikethrough).
SUB_LINE_RE: Final = re.compile(r" {2,}(?:(?:[-+*]|[0-9]{1,9}[.)]) +)?(?=[^\W_]|[*`\[~]\S)")
#: A blank line (whitespace only; a carriage return before its newline too) inside a text.
BLANK_LINE_RE: Final = re.compile(r"\n[ \t\r]*\n")
#: A text's last line is an empty list item (a marker alone) or blank (a lone ``\r`` ends a
#: line too).
EMPTY_ITEM_RE: Final = re.compile(
    r"(?:^|\n|\r(?!\n))[ \t>]*(?:[-+*]|[0-9]{1,9}[.)])?[ \t\r]*\n\Z")
CONTAINER_END_RE: Final = re.compile(r"</(?:p|li|h[1-6])>")
#: A line that may be a table's delimiter row (GFM §4.10), in a quote or list item too.
TABLE_DELIM_LINE_RE: Final = re.compile(
    r"(?m)^[ \t>]*(?:[-+*] +|[0-9]+[.)] +)?\|?[ \t]*:?-+:?[ \t]*\|")
_FENCE_OPEN_RE: Final = re.compile(r"( {0,3})(`{3,}|~{3,})")
_CODE_OPEN_RE: Final = re.compile(r'<pre><code(?: class="[^"]*")?>')
SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
#: A carriage return that ends a line on its own (CommonMark §2.1), which the fence
#: bookkeeping here does not follow (it splits lines at ``\n``).
LONE_CR_RE: Final = re.compile(r"\r(?!\n)")


#: Punctuation that may follow a closed inline element directly (:func:`punct_after_closer`).
_AFTER_CLOSER_RE: Final = re.compile(r"[.,:;!?]")


def punct_after_closer(core: str, piece: str) -> bool:
    """Whether ``piece``, put right after ``core`` (the text so far, ending in no space),
    leaves how ``core`` renders unchanged as a space would: it starts with ``. , : ; ! ?``
    and ``core`` ends in a closed code span or link (a backtick or ``)``: neither is a
    flanking delimiter), or in an emphasis closer run (``*``/``_``) that follows a letter or
    digit. Such a run is right-flanking and not left-flanking whether a space or punctuation
    follows (CommonMark §6.2: left-flanking needs no punctuation after it, or whitespace or
    punctuation before), so it closes the same way (and ``_`` may close when followed by
    punctuation). After any other character the cut must follow a space."""
    if not _AFTER_CLOSER_RE.match(piece):
        return False
    last = core[-1]
    if last in "`)":
        return True
    if last in "*_":
        i = len(core) - 2
        while i >= 0 and core[i] == last:
            i -= 1
        return i >= 0 and core[i].isalnum()
    return False


_IN_DESTINATION_RE: Final = re.compile(r"\]\([^)\s]*\Z")


def bare_url(word: str) -> bool:
    """Whether ``word`` may hold a bare URL (GFM §6.9): a ``://`` that is not inside an
    inline link's destination (``[a](https://x)`` holds none; ``[a](b)https://x`` does)."""
    i = word.find("://")
    while i >= 0:
        if _IN_DESTINATION_RE.search(word, 0, i) is None:
            return True
        i = word.find("://", i + 3)
    return False



def left_open(html_text: str, start: int, end: int) -> bool:
    """Whether the text of ``html_text[start:end]`` (a block's HTML) holds something a later
    closer could pair with (:data:`_UNCLOSED_RE`). Code spans and tags count as punctuation
    between the texts around them (in the markdown, a delimiter stood there: ``~~s~~_u``
    shows ``s_u``, yet the ``_`` follows a ``~`` and can open emphasis, §6.2)."""
    return _UNCLOSED_RE.search(
        TAG_RE.sub("\x00", _CODE_SPAN_RE.sub("\x00", html_text[start:end]))) is not None


def quote_content(text: str, line_start: int, block: str) -> int | None:
    """Where the content of a block quote's line starts, if that line is plain paragraph text
    that is the quote's last text (its markers ``>`` at column 0, the quote's deepest last
    element a paragraph), else ``None``."""
    m = QUOTE_PREFIX_RE.match(text, line_start)
    if m is None or m.end() >= len(text) or not plain_line_start(text, m.end()):
        return None
    if not QUOTE_TRAILER_RE.match(block, trailer_start(block)):
        return None
    return m.end()


def open_fence(tail: str) -> tuple[str, int] | None:
    """A fence opened in column 0 whose line is complete and which is still open at the end
    of ``tail`` (which starts at a block start): ``(marker, where its code starts)``, or
    ``None``. Only column-0 fences count: an indented fence (in a list item, or one whose
    content loses indentation) is left to rendering."""
    fence, start, indent = fence_state(tail)
    if fence is None or indent or start > len(tail) or LONE_CR_RE.search(tail):
        return None
    return fence, start


_ALNUM_RE: Final = re.compile(r"[^\W_]")
#: A trailer whose deepest last element is a code block, maybe in list items and quotes.
_CODE_TRAILER_RE: Final = re.compile(r"</code></pre>\n(?:</(?:li|ul|ol|blockquote)>\n)*\Z")


def in_code_line(tail: str, last: str) -> bool:
    """Whether code appended to the last line of ``tail`` goes on as the text of the last
    block ``last``'s deepest code block (an indented one, or a fence in a list item or a
    quote): that code block is the block's last element, and the line holds a letter or a
    digit (so it is shown already, and no later character makes it a closing fence, a
    thematic break or a setext underline), is not digits alone (``1`` becomes ``1.``, an
    ordered item's marker that may end the code: ``"1. x\\n    ```\\n1."``) and does not begin
    with a fence character."""
    if not _CODE_TRAILER_RE.match(last, trailer_start(last)):
        return False
    line_start = tail.rfind("\n") + 1
    line = tail[line_start:]
    prefix = _NESTED_PREFIX_RE.match(line)
    content = line[prefix.end() if prefix is not None else 0:].lstrip(" \t")
    # a letter or digit: no later character makes the line a thematic break, a setext
    # underline or a closing fence (a line of spaces and tabs alone is not shown yet); no
    # fence character first: a fence's info string may still be growing
    return _ALNUM_RE.search(line) is not None and content[:1] not in "`~" \
        and "\r" not in line and not content.isdigit()


def last_item_start(tail: str) -> int:
    """Where the last top-level item of a list at the end of ``tail`` starts: the last line
    that starts in column 0 (the lines after it are indented)."""
    start = tail.rfind("\n", 0, len(tail) - 1) + 1
    while start > 0 and tail[start] == " ":
        start = tail.rfind("\n", 0, start - 1) + 1
    return start


class OpenBlocks:
    """Whether a fence or a math block (``$$``, ``\\[``) is open at a line start of a tail,
    scanned incrementally: each line once until :meth:`reset` (the tail was cut), unless a
    line start before the last one asked is asked about. A cut there proves nothing: an open
    fence's empty code renders as an empty closed one does, and an unclosed math block
    renders as paragraphs, until the closer makes the lines on both sides one block.
    Fences in containers are not told apart (as :func:`fence_state`); math marks inside a
    fence are code."""

    __slots__ = ("_closer", "_fence", "_pos")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the scan (the tail starts again)."""
        self._pos = 0
        self._fence: str | None = None
        self._closer: str | None = None

    def open_at(self, tail: str, p: int) -> bool:
        """Whether a fence or math block of ``tail`` is open at ``p`` (a line start)."""
        if p < self._pos:
            self.reset()
        fence, closer = self._fence, self._closer
        for line in tail[self._pos:p].split("\n")[:-1]:
            if fence is not None:
                stripped = line.lstrip(" ")
                if len(line) - len(stripped) < 4 and stripped.startswith(fence) \
                        and stripped.lstrip(fence[0]).strip(" \t") == "":
                    fence = None
                continue
            m = _FENCE_OPEN_RE.match(line)
            if m and not (m.group(2)[0] == "`" and "`" in line[m.end():]):
                fence = m.group(2)
                continue
            mark = _MATH_LINE_RE.match(line)
            if mark is None:
                continue
            if closer is None:
                want = "$$" if mark.group(1) == "$$" else "\\]"
                if mark.group(1) != "\\]" and want not in mark.group(2):
                    closer = want
            elif mark.group(1) == closer or closer in mark.group(2):
                closer = None
        self._pos, self._fence, self._closer = p, fence, closer
        return fence is not None or closer is not None


def _last_escaped(text: str, ch: str, lo: int) -> int:
    """Where the last backslash escaping ``ch`` in ``text[lo:]`` is (an odd run of
    backslashes before ``ch``: ``\\\\(`` is an escaped backslash, then ``(``), or -1."""
    end = len(text)
    while True:
        k = text.rfind("\\" + ch, lo, end)
        if k < 0:
            return -1
        j = k
        while j > lo and text[j - 1] == "\\":
            j -= 1
        if (k - j) % 2 == 0:
            return k
        end = k


def latex_open(text: str, lo: int) -> bool:
    """Whether inline math in LaTeX's delimiters may be open at the end of ``text`` (its
    line starts at ``lo``: inline math stays on its line): a ``\\(`` (``\\[``) after the last
    ``\\)`` (``\\]``). Its opener renders as a plain ``(``, so the block's HTML cannot tell;
    a ``\\)`` that comes later would make math of the text between. Conservative (a code
    span's ``\\(`` counts too); usually O(distance to the last delimiter)."""
    return (_last_escaped(text, "(", lo) > _last_escaped(text, ")", lo)
            or _last_escaped(text, "[", lo) > _last_escaped(text, "]", lo))


def fence_state(tail: str) -> tuple[str | None, int, int]:
    """The top-level fence (§4.5) still open at the end of ``tail`` (which starts at a block
    start), as ``(marker, where its code starts, its indentation)``, or ``(None, 0, 0)``.
    Fences in containers are not told apart (callers rule containers out)."""
    fence: str | None = None
    start = pos = indent = 0
    for line in tail.split("\n"):
        if fence is None:
            m = _FENCE_OPEN_RE.match(line)
            if m and not (m.group(2)[0] == "`" and "`" in line[m.end():]):
                fence, start, indent = m.group(2), pos + len(line) + 1, len(m.group(1))
        else:
            stripped = line.lstrip(" ")
            if len(line) - len(stripped) < 4 and stripped.startswith(fence):
                if stripped.lstrip(fence[0]).strip(" \t") == "":
                    fence = None
        pos += len(line) + 1
    return (fence, start, indent) if fence is not None else (None, 0, 0)


def code_matches(block: str, code: str) -> bool:
    """Whether ``block`` is exactly a code block holding ``code`` (less a final newline):
    the check that the fast path's model of an open fence is the renderer's."""
    head, trailer = split_trailer(block)
    if trailer != "</code></pre>\n":
        return False
    text = escape_text(code[:-1] if code.endswith("\n") else code)
    if not head.endswith(text):
        return False
    return _CODE_OPEN_RE.fullmatch(head, 0, len(head) - len(text)) is not None


class TailScan:
    """Incremental scans of the open tail for lines that change how later lines parse: HTML
    block starts and fences. The tail only grows between renders and commits, so each complete
    line is scanned once (a long table, list or paragraph costs O(new text) per call); the
    chunker calls :meth:`reset` when the tail is rendered again or committed."""

    __slots__ = ("_fence_scan", "_html_scan", "_item_scan")

    def __init__(self) -> None:
        #: :meth:`has_html_line`'s scan: (the last line's start, the tail's length then, an
        #: HTML line seen before that line)
        self._html_scan = (0, 0, False)
        #: :meth:`last_item_line`'s scan: (scanned up to, fence lines, an HTML line seen)
        self._item_scan = (0, 0, False)
        #: :meth:`fence_marks`' scan: (the tail's length then, the marks seen)
        self._fence_scan: tuple[int, frozenset[str]] = (0, frozenset())

    def reset(self) -> None:
        """Forget the scans (the tail was rendered again or committed)."""
        self._html_scan = (0, 0, False)
        self._item_scan = (0, 0, False)
        self._fence_scan = (0, frozenset())

    def fence_marks(self, tail: str) -> frozenset[str]:
        """The fence and math marks (:data:`FENCE_ANYWHERE_RE`: ````` `` ` ``, ``~~~``,
        ``$$``, ``\\[``) anywhere in ``tail`` (the open tail as it is now). What was searched before
        is not searched again (but for the last two characters: a mark may span the
        boundary)."""
        scanned, marks = self._fence_scan
        if scanned > len(tail):  # a shorter tail than the last look (a path gave up)
            scanned, marks = 0, frozenset()
        if scanned < len(tail):
            found = FENCE_ANYWHERE_RE.findall(tail, max(0, scanned - 2))
            if found:
                marks = marks.union(found)
            self._fence_scan = (len(tail), marks)
        return marks

    def has_html_line(self, tail: str) -> bool:
        """Whether a line of ``tail`` (the open tail as it is now) may start an HTML block
        (:data:`HTML_LINE_RE`). Each complete line is searched once, and the last one matched
        at its start only."""
        line_start, scanned, seen = self._html_scan
        if scanned > len(tail):  # a shorter tail than the last look (a path gave up)
            line_start = scanned = 0
            seen = False
        if not seen:
            nl = tail.rfind("\n", scanned)
            if nl >= 0:
                seen = HTML_LINE_RE.search(tail, line_start, nl + 1) is not None
                line_start = nl + 1
        self._html_scan = (line_start, len(tail), seen)
        return seen or HTML_LINE_RE.match(tail, line_start) is not None

    def takes_plain(self, core: str, last: str) -> bool:
        """Whether plain text (:data:`FAST_DELTA_RE` characters) appended to ``core`` (the
        tail less its trailing spaces) goes on as the text of its last line, changing no
        structure: the text so far ends in a letter, digit or ``, . : ? ! ' " - (``, the line
        holds the last text of the last block ``last`` (:meth:`line_kind`), and its last word
        holds no ``://`` that the text would extend into a bare URL (GFM §6.9)."""
        if not core or not FAST_PREV_RE.fullmatch(core[-1]):
            return False
        line_start = core.rfind("\n") + 1
        if "\r" in core[line_start:] or self.line_kind(core, line_start, last) is None:
            return False
        return "://" not in core[max(line_start, core.rfind(" ", line_start) + 1):]

    def line_kind(self, core: str, line_start: int, last: str) -> LineKind | None:
        """Whether the line at ``line_start`` of ``core`` holds the last text of the last
        block ``last``, begun as plain inline text, so that text appended to it changes no
        structure: ``"paragraph"``, ``"quote"`` (a block quote's paragraph line), ``"item"``
        (the last list item's line) or ``"heading"`` (ATX), else ``None``."""
        if last.startswith("<p>"):
            # (a paragraph's line may begin with up to 3 spaces, which it drops)
            content = _indent_end(core, line_start)
            return "paragraph" if content - line_start < 4 and content < len(core) \
                and plain_line_start(core, content) else None
        if last.startswith("<blockquote>") and quote_content(core, line_start, last) is not None:
            return "quote"
        marker = _FAST_LINE_RE.match(core, line_start)
        if marker is not None and marker.lastgroup == "heading":
            content = marker.end()
            return "heading" if last.startswith(_FAST_BLOCK_PREFIX["heading"]) \
                and content < len(core) and plain_line_start(core, content) else None
        if not last.startswith(("<ul", "<ol", "<blockquote>")):
            return None
        # a line of a list item or a quote under any mix of quote markers, item markers and
        # indentation (an item's line, a paragraph's line in it, a lazy continuation)
        prefix = _NESTED_PREFIX_RE.match(core, line_start)
        content = prefix.end() if prefix is not None else line_start
        if content == line_start or content >= len(core) or not plain_line_start(core, content):
            return None
        # the deepest last element must be that text (not, say, a code block that an
        # indented fence opened: fence lines are only counted), in no HTML block
        if not _NESTED_TRAILER_RE.match(last, trailer_start(last)) \
                or HTML_LINE_RE.match(core, line_start):
            return None
        return "item" if self.last_item_line(core, line_start) else None

    def last_item_line(self, text: str, line_start: int) -> bool:
        """Whether the item line at ``line_start`` (at most 3 spaces in) holds the list's last
        text: no fence may be open before it in the open tail, and no line of the tail may
        start an HTML block (``<``), which could swallow the line as raw text."""
        if line_start and text[line_start - 1] != "\n":
            return False
        pos, fences, html_line = self._item_scan
        if line_start < pos:
            pos, fences, html_line = 0, 0, False
        if line_start > pos:
            ok, n = _item_lines(text[pos:line_start - 1])
            fences += n
            html_line = html_line or not ok
            self._item_scan = (line_start, fences, html_line)
        return not html_line and fences % 2 == 0
