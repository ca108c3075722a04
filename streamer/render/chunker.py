"""The incremental renderer: markdown deltas in, document operations out.

A :class:`Chunker` turns one stream's text deltas into :class:`~streamer.render.ops.Op` values that
build the client's block list (``docs/protocol.md``, "Document operations")::

    chunker = Chunker(renderer)
    for delta in provider_deltas:
        send(chunker.feed(delta))
    send(chunker.close())
    assert chunker.html == renderer.render(chunker.markdown)

Guarantees, for any split of the text into deltas:

1. After any prefix of the ops, applied with :func:`~streamer.render.ops.apply_op` to an empty list,
   every block is a complete, sanitized element (or ``""``, a slot whose block was folded into
   an earlier one) and the list equals :attr:`Chunker.blocks` at that point.
2. After :meth:`Chunker.close`, ``"".join(blocks) == renderer.render(markdown)`` exactly.
3. Per delta, only the *open tail* is re-rendered; committed blocks are rendered and sanitized
   once (when they are committed) and never again during :meth:`feed`.

Hold-back
---------

Deltas first pass :class:`~streamer.render.holdback.HoldBack`, which releases text only once what
follows cannot change how it renders (``**bol`` waits for its closer, a ``| a | b |`` line
for its delimiter row, a fence line for its end); the rest of this docstring is about the
released text, which the chunker renders. Held text counts in :attr:`Chunker.markdown` and
is released by :meth:`Chunker.close`. ``hold_back=False`` renders every delta as it comes
(the guarantees above hold either way: the hold-back only decides *when* text is shown).

How it works
------------

The text is split into a *committed* prefix and an open *tail*, always at a line start.
Each :meth:`feed` appends the delta to the tail, re-renders the tail (with the link reference
definitions of the committed prefix, CommonMark §4.7), and diffs the tail's blocks against
what the client holds:

* unchanged block: no op;
* the new HTML is the old one with plain text appended at its last text position
  (``new == head + X + trailer`` with ``(head, trailer) = split_trailer(old)``, ``X`` free of
  ``<`` and ``escape_text(unescape(X)) == X``): a ``text`` op;
* otherwise a ``splice`` where the block keeps most of its beginning (it trims an ASCII
  end and appends the new end: O(change) on the wire; blocks of :data:`SPLICE_MIN_BLOCK`
  characters or more), else a ``replace``; a new slot is an ``append``;
* the tail now renders to fewer blocks than it has slots (``"-\\n*"`` is two lists,
  ``"-\\n*a"`` one): ``replace`` with ``html=""`` for the surplus slots. Clients keep the empty
  slot; later growth reuses it (``replace``) before any ``append``.

**Commit rule.** A blank line alone is not a safe cut (two ordered lists separated by a blank
line are *one* loose list; perf-lab §3). The tail's earlier blocks are committed at a line
start ``p`` only when

* (B) the line starting at ``p`` is complete (its ``\\n`` arrived) and starts in column 0
  with a non-blank character other than ``[`` (a link reference definition renders nothing,
  so it would prove nothing: ``"- \\n[x]: /u\\na"`` is one list item), or
* (A) the line at ``p`` follows a blank line and has begun (it may be partial) with a character
  that can only start a new block there (:func:`_starts_new_block`: not indentation, a list
  marker or ``[``; nothing continues an earlier block across a blank line into such a line),

**and** the text up to the end of that line (all of the tail for (A), the complete lines only
for (B): a partial next line can change what the candidate line is) renders, cut at ``p``, to
exactly the same blocks as in one piece: ``render(t) == render(t[:p]) + render(t[p:])`` (same
HTML, same block boundaries, ``render(t[p:])`` not empty), and the blocks being sent agree;
**and** the block before the cut is not a list, nor (unless a blank line precedes ``p``) a
block quote or a paragraph followed by a quote or list (:func:`_container_hazard`: two
mistune quirks let later lines change the paragraph before a list or quote, or reorder
blocks; such blocks are committed with the next cut instead). The check costs one render of
the one-line part and, only if that matches, one of the committed part; its blocks are then
committed (rendered and sanitized for the last time during :meth:`feed`) and sent as final.
Each candidate ``p`` is tried once per rule. Anything this lookahead cannot see is repaired
by :meth:`close`.

**Fast path.** A delta of letters, digits, spaces and ``, . : ? ! ' " - (`` appended to a
line whose content starts with a letter (a top-level paragraph line, a block quote's
paragraph line, the line of a list's last item when no line of that list is indented, or an
ATX heading), right after one of those (modulo trailing spaces), outside a bare URL,
cannot change any structure (no delimiter run, entity, autolink, URL, line break or block
marker can form or change flanking), so it becomes a ``text`` op without re-rendering. So do a
line's final newline (mistune ends every text with one: no render changes), a blank line at
the end outside fences and math blocks (after a list too, unless its last item is empty:
mistune makes a list loose on a blank line only once another item follows), a soft break
followed by a letter in such a paragraph (it renders as a space) and code inside an open
column-0 fence (checked against the rendered block when the fence opened). A delta of several
lines is taken line by line, and rendered once from the first line no such path takes. While
a line of the tail may be a link reference definition (its destination may be the next
line, which then renders nothing), these paths are off until the next render.

**Hot path.** Once the fast path took plain text (or a render, splice or new list item left
the line where it would), the next delta of those characters is checked for its characters
alone (what the fast path checked about the line still holds) and appended to lists, not to
the tail and block strings, which are joined when another path needs them: O(delta), about
2 µs per 4-character delta, most of an answer.

**New blocks.** A line that starts in column 0 after a blank line with anything but
whitespace or ``[`` begins a new block, and nothing before it can change any more (unless it
is an open fence or math block, or an HTML block; after a list only a letter, ``#``, fence
or ``|`` line, and not with a quote in the tail: mistune's list and quote parsing reach
across blank lines): the tail's blocks are committed with no render, and only the new line
is rendered (a letter-started plain line is appended as a paragraph with no render at all).

**Splices.** A delta with markup that continues such a line after whitespace (or after a
closed code span, link or emphasis with punctuation that leaves the closer as it is), where
nothing before is left open, is rendered as inline content alone and put before the
container's closing tag; complete table rows are rendered under the table's own header and
put into its body, a new top-level item of a tight list rendered as a one-item list and put
before the list's end, an indented line in a tight list's last item re-renders that item
alone. Each is sent as a ``splice`` op (the block's changed end), so a 2,000-row table or a
100 KB list costs each row or item its own size, not the block's. A whole line that closes
the open fence changes nothing (no render, no op). ``verify_fast_path=True`` re-renders
after every fast, hot or spliced delta and asserts equality (the tests run that way).

**Simple renders.** Inline pieces and one-line tails in the common simple forms (plain words,
``**strong**``, ``*em*``, ``~~del~~``, code spans and ``http(s)`` links; headings, list items,
quote lines and paragraphs of those) are rendered by :meth:`Renderer.render_inline_simple`
and :meth:`Renderer.render_line_simple` without mistune, whose fixed cost per call (tens of
µs) would otherwise dominate; their HTML is the pipeline's own, taken from real renders of
samples.

**close()** releases what is held, renders the open tail once more and, for committed parts
with a block not yet final, re-renders them if link reference definitions came after them; it
repairs every block that differs and marks every block final. Committed blocks are otherwise
what a full render gives (each cut was verified when made; the tests compare every stream with
the one-shot render). ``final=True`` during :meth:`feed` is best effort: committed blocks get
it, except those whose HTML holds a literal ``]`` (a later reference definition could still
turn ``[label]`` into a link); a close-time repair of a block already sent as final is counted
in :attr:`ChunkerStats.close_repairs` (the tests assert 0 on realistic answers).

Op fields
---------

``final`` rides on the op that last changes a block; a block committed without a change gets
a ``text`` op with ``text=""`` and ``final=True`` (a no-op for clients). ``chars`` is the
op's pacing cost in visible characters: ``len(text)`` for ``text``, the block's text length
for ``append``, ``max(0, new - old)`` text length for ``replace`` and ``splice`` (text
length: tags removed, entities decoded, newlines between tags included, see
:func:`text_length`).

Costs: per delta O(delta) on the hot path, O(current line) on the fast path, O(delta) (O(item)
for a nested item) for a splice or a simple render, plus one copy of the last block's string
where a splice or a text op changes it (a memory copy: about 5 µs for a 100 KB block), else
O(tail length) (a mistune render of the tail, ~0.5-1 µs per markdown byte plus tens of µs
per call). The tail is the open block plus at most a few neighbours; inside one huge list,
table, code block, quote or paragraph the common lines take the paths above, so the cost per
delta stays flat (``bench/chunker_bench.py`` prints these worst cases), and only a line no
path takes (a loose list's new item, a table row whose cells differ) renders the whole
block. :meth:`close` costs one render of the tail.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Final

from streamer.render.holdback import HoldBack
from streamer.render.ops import Op, apply_op, escape_text, split_trailer, trailer_start
from streamer.render.markdown import RefLinks, Renderer

__all__ = ["Chunker", "ChunkerClosedError", "ChunkerStats", "flicker_chars", "text_length"]

#: A tag as html5ever serializes it (attribute values are always double-quoted).
_TAG_RE: Final = re.compile(r'<(?:[^>"]|"[^"]*")*>')
#: Delta characters the fast path accepts: Unicode letters and digits, space, and
#: punctuation that is no inline delimiter here: ``, . : ? ! ' " - (`` (not ``)``, which could
#: close a link destination; not ``;``, which could end an entity; not ``/``, without which
#: no bare URL forms (``https://``, GFM §6.9); not ``*_`~[]<>&\``).
_FAST_DELTA_RE: Final = re.compile(r"(?:[^\W_]|[ ,.:?!'\"(-])+")
#: A delta the hot path takes mid-line in an open fence: no newline, nothing the renderer
#: normalizes (``\r``, NUL, surrogates).
_CODE_DELTA_RE: Final = re.compile("[^\n\r\x00\ud800-\udfff]+")
#: Characters the fast path accepts right before the delta (after trailing spaces).
_FAST_PREV_RE: Final = re.compile(r"[^\W_]|[,.:?!'\"(-]")
#: A list item's or an ATX heading's line start, up to its content: ``- ``, ``12. ``,
#: ``- [x] ``, ``## ``.
_FAST_LINE_RE: Final = re.compile(r"(?P<item> {0,3}(?:[-+*]|[0-9]{1,9}[.)]) {1,4}"
                                  r"(?:\[[ xX]\] +)?)"
                                  r"|(?P<heading>#{1,6} +)")
#: What the last block must be for each kind of line.
_FAST_BLOCK_PREFIX: Final = {"item": ("<ul>", "<ul ", "<ol>", "<ol "), "heading": ("<h1>", "<h2>",
                                                                          "<h3>", "<h4>",
                                                                          "<h5>", "<h6>")}


_LINK_START_RE: Final = re.compile(r"!?\[[^\]\[\n]*\]\(")


def _plain_line_start(text: str, p: int) -> bool:
    """Whether the (block content of the) line starting at ``p`` is already plain inline text
    that letters appended at its end cannot turn into a block marker: it starts with a letter,
    or with ``*``/``_`` then a non-blank (emphasis, not a list marker or a thematic break: a
    letter follows somewhere), or with a backtick or ``~`` that does not open a fence, or
    with an inline link or image (``[text](``, never a definition)."""
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
        # an inline link or image, not a link reference definition (``[label]:``)
        return _LINK_START_RE.match(rest) is not None
    return False


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


def _starts_new_block(first: str) -> bool:
    """Whether a line starting with ``first`` after a blank line can only start a new block.

    Excluded: indentation (list item or indented code continuation), list markers (``-``,
    ``+``, ``*``, digits: the same list may go on) and ``[`` (a link reference definition
    renders nothing, so it proves nothing). Anything else (a letter, ``#``, ``>``, ``|``,
    a fence, ``<``, ``_``, …) begins a paragraph, heading, quote, table, code or HTML block.
    """
    return not first.isspace() and not first.isdigit() and first not in "-+*["


def _after_blank_line(text: str, p: int) -> bool:
    """Whether the line before the line start ``p > 0`` is blank (whitespace only)."""
    return text[text.rfind("\n", 0, p - 1) + 1:p].isspace()


def _container_hazard(last_before: str, first_after: str, after_blank_line: bool) -> bool:
    """Whether mistune may still change blocks before a cut because of lines after it.

    Two mistune quirks (``BlockParser.parse_block_quote``, ``list_parser``): while a list or
    block quote is parsed, the block before it is still ``state.tokens[-1]``, and the construct
    that ends the container is parsed *inside* that call, against that state:

    * a list's item collection parses a following block quote (even after blank lines) as
      its end, and a quote parses a following list as its end; a list whose number is not 1
      may not interrupt a paragraph, so ``append_paragraph`` glues it to the paragraph before
      the whole chain: ``"P.\\n- U\\n\\n> Y\\n10. O"`` renders
      ``[<blockquote>Y</blockquote>, <ul>U</ul>, <p>P.\\n10. O</p>]``;
    * a quote is inserted before the *last* token only, so a quote ended by a list that a
      fence then ends comes out after the list: ``"> a\\n- \\n```"`` renders
      ``[<ul>, <blockquote>, <pre>]``.

    So the chunker never cuts right after a list, nor after a quote or between a paragraph and
    a following list or quote unless a blank line precedes the cut (a blank line ends a
    quote's parse and makes ``tokens[-1]`` a blank-line token).
    """
    if last_before.startswith(("<ul", "<ol")):
        return True
    if after_blank_line:
        return False
    if last_before.startswith("<blockquote"):
        return True
    return last_before.startswith("<p>") and first_after.startswith(("<blockquote", "<ul", "<ol"))


#: In a block's text so far (tags and code spans removed): what a later closer could still
#: pair with (an ``_`` between two letters or digits cannot open, §6.2).
_UNCLOSED_RE: Final = re.compile(r"[*~`\[$\\]|&lt;|(?<![^\W_])_|_(?![^\W_])")
_CODE_SPAN_RE: Final = re.compile(r"<code>.*?</code>", re.DOTALL)
#: A line that may start an HTML block (§4.6), whose text is not inline-parsed.
_HTML_LINE_RE: Final = re.compile(r"(?m)^[ >]*<")
#: A top-level list item's marker and its space: ``- ``, ``12. ``, ``3) ``.
_ITEM_MARKER_RE: Final = re.compile(r"([-+*]|[0-9]{1,9}[.)]) ")
#: Fences and math blocks, whose content a blank line can change.
_FENCE_ANYWHERE_RE: Final = re.compile(r"```|~~~|\$\$")
_QUOTE_PREFIX_RE: Final = re.compile(r"(?:> ?)+")
#: A line that may be (or begin) a link reference definition (§4.7), in a quote or list item
#: too: ``[`` then ``]:`` on the line, or no ``]`` yet (a label may span lines); not a task
#: item's ``[ ]``/``[x]``. Its destination may come on the next line, so a plain line after
#: it may render nothing.
_DEF_LINE_RE: Final = re.compile(
    r"(?m)^[ \t>*+\-0-9.)]*\[(?![ xX]\] )(?:[^\n]*\]:|[^\]\n]*$)")
#: A quote's trailer whose deepest last element is a paragraph (or an inline element in one:
#: the fast path never appends after one, its markdown ends in a delimiter or a URL).
_QUOTE_TRAILER_RE: Final = re.compile(r"(?:</(?:a|strong|em|del|code|span)>)*</p>")
#: A list's trailer whose deepest last element is an item's text (maybe in an inline
#: element, or a loose item's paragraph).
_ITEM_TRAILER_RE: Final = re.compile(r"(?:</(?:a|strong|em|del|code|span)>)*(?:</p>\n)?</li>")
#: An indented line start inside a list item: a nested item's marker, or text, that begins
#: with a letter or a simple inline delimiter (emphasis, a code span, a link, strikethrough).
_SUB_LINE_RE: Final = re.compile(r" {2,}(?:(?:[-+*]|[0-9]{1,9}[.)]) +)?(?=[^\W_]|[*`\[~]\S)")
#: A blank line (whitespace only; a carriage return before its newline too) inside a text.
_BLANK_LINE_RE: Final = re.compile(r"\n[ \t\r]*\n")
#: A text's last line is an empty list item (a marker alone) or blank.
_EMPTY_ITEM_RE: Final = re.compile(r"(?:^|\n)[ \t>]*(?:[-+*]|[0-9]{1,9}[.)])?[ \t\r]*\n\Z")
_CONTAINER_END_RE: Final = re.compile(r"</(?:p|li|h[1-6])>")
#: A line that may be a table's delimiter row (GFM §4.10), in a quote or list item too.
_TABLE_DELIM_LINE_RE: Final = re.compile(
    r"(?m)^[ \t>]*(?:[-+*] +|[0-9]+[.)] +)?\|?[ \t]*:?-+:?[ \t]*\|")
_FENCE_OPEN_RE: Final = re.compile(r"( {0,3})(`{3,}|~{3,})")
_CODE_OPEN_RE: Final = re.compile(r'<pre><code(?: class="[^"]*")?>')
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")


#: Punctuation that may follow a closed inline element directly (:func:`_punct_after_closer`).
_AFTER_CLOSER_RE: Final = re.compile(r"[.,:;!?]")


def _punct_after_closer(core: str, piece: str) -> bool:
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


def _bare_url(word: str) -> bool:
    """Whether ``word`` may hold a bare URL (GFM §6.9): a ``://`` that is not inside an
    inline link's destination (``[a](https://x)`` holds none; ``[a](b)https://x`` does)."""
    i = word.find("://")
    while i >= 0:
        if _IN_DESTINATION_RE.search(word, 0, i) is None:
            return True
        i = word.find("://", i + 3)
    return False


def _label_open(tail: str) -> bool:
    """Whether ``tail`` may end inside a link reference definition's label that began at a
    line start: mistune takes up to 500 characters, blank lines included, as a label
    (``LINK_LABEL``; CommonMark §4.7 allows no blank line), so ``[a\n\nb\n\nc]: /u`` is one
    definition that renders nothing, and no block since its ``[`` is settled (nor while its
    ``]`` is last or followed by ``:``). Looks at the last 501 characters only."""
    start = max(0, len(tail) - 501)
    i = tail.rfind("[", start)
    if i < 0:
        return False
    close = tail.find("]", i)
    eol = tail.find("\n", i)
    if close >= 0 and (eol < 0 or close < eol or tail[close + 1:close + 2] not in ("", ":")):
        return False  # a one-line label (the usual paths know those), or no definition's
    line = tail[tail.rfind("\n", 0, i) + 1:i]
    return line.strip(" \t>*+-0123456789.)") == ""


def _left_open(html_text: str, start: int, end: int) -> bool:
    """Whether the text of ``html_text[start:end]`` (a block's HTML) holds something a later
    closer could pair with (:data:`_UNCLOSED_RE`). Code spans and tags count as punctuation
    between the texts around them (in the markdown, a delimiter stood there: ``~~s~~_u``
    shows ``s_u``, yet the ``_`` follows a ``~`` and can open emphasis, §6.2)."""
    return _UNCLOSED_RE.search(
        _TAG_RE.sub("\x00", _CODE_SPAN_RE.sub("\x00", html_text[start:end]))) is not None


def _quote_content(text: str, line_start: int, block: str) -> int | None:
    """Where the content of a block quote's line starts, if that line is plain paragraph text
    that is the quote's last text (its markers ``>`` at column 0, the quote's deepest last
    element a paragraph), else ``None``."""
    m = _QUOTE_PREFIX_RE.match(text, line_start)
    if m is None or m.end() >= len(text) or not _plain_line_start(text, m.end()):
        return None
    if not _QUOTE_TRAILER_RE.match(block, trailer_start(block)):
        return None
    return m.end()


def _open_fence(tail: str) -> tuple[str, int] | None:
    """A fence opened in column 0 whose line is complete and which is still open at the end
    of ``tail`` (which starts at a block start): ``(marker, where its code starts)``, or
    ``None``. Only column-0 fences count: an indented fence (in a list item, or one whose
    content loses indentation) is left to rendering."""
    fence, start, indent = _fence_state(tail)
    if fence is None or indent or start > len(tail):
        return None
    return fence, start


def _last_item_start(tail: str) -> int:
    """Where the last top-level item of a list at the end of ``tail`` starts: the last line
    that starts in column 0 (the lines after it are indented)."""
    start = tail.rfind("\n", 0, len(tail) - 1) + 1
    while start > 0 and tail[start] == " ":
        start = tail.rfind("\n", 0, start - 1) + 1
    return start


def _fence_state(tail: str) -> tuple[str | None, int, int]:
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


def _code_matches(block: str, code: str) -> bool:
    """Whether ``block`` is exactly a code block holding ``code`` (less a final newline):
    the check that the fast path's model of an open fence is the renderer's."""
    head, trailer = split_trailer(block)
    if trailer != "</code></pre>\n":
        return False
    text = escape_text(code[:-1] if code.endswith("\n") else code)
    if not head.endswith(text):
        return False
    return _CODE_OPEN_RE.fullmatch(head, 0, len(head) - len(text)) is not None


class ChunkerClosedError(RuntimeError):
    """:meth:`Chunker.feed` was called after :meth:`Chunker.close`."""


@dataclass(slots=True)
class ChunkerStats:
    """Counters for benchmarks and tests (not part of the wire protocol)."""

    #: non-empty deltas fed
    deltas: int = 0
    #: deltas handled by the fast path (no render)
    fast_path: int = 0
    #: deltas that only grew held-back text (no render, no op)
    held: int = 0
    #: deltas rendered as inline content spliced into the last block (no tail render)
    splices: int = 0
    #: tail re-renders in :meth:`Chunker.feed`
    tail_renders: int = 0
    #: commit candidates checked / committed
    commit_checks: int = 0
    commits: int = 0
    #: ops emitted, by kind (the empty ``text`` ops that only mark ``final`` are ``markers``)
    append_ops: int = 0
    replace_ops: int = 0
    splice_ops: int = 0
    text_ops: int = 0
    markers: int = 0
    #: blocks already sent with ``final=True`` that :meth:`Chunker.close` had to change
    close_repairs: int = 0


def text_length(block: str) -> int:
    """Visible characters of a block's HTML: tags removed, entities decoded.

    Newlines between tags count (about one per line of HTML); it is a pacing cost, not a
    typographic measure. ``text_length(append_text(b, t)) == text_length(b) + len(t)``.
    """
    return len(html.unescape(_TAG_RE.sub("", block)))


def _visible(block: str) -> str:
    """A block's visible characters without whitespace (what flicker is counted in)."""
    return "".join(html.unescape(_TAG_RE.sub("", block)).split())


def flicker_chars(ops: list[Op]) -> int:
    """Flicker of a stream, for tests and benchmarks: visible characters a client showed that
    a later op took away or changed.

    Applies ``ops`` to an empty block list; for every ``replace`` or ``splice``, counts the
    old block's visible non-whitespace characters past the longest common prefix with the
    new block's
    (``*foo`` shown, then ``<em>foo</em>``: the ``*`` and ``foo`` count; ``<p>Title</p>``
    turned into ``<h1>Title</h1>``, or text that only grows, count nothing). Whitespace is
    left out: the newlines between tags are no characters a reader sees.
    """
    blocks: list[str] = []
    count = 0
    for op in ops:
        changes = op.op in ("replace", "splice") and op.block < len(blocks)
        old = _visible(blocks[op.block]) if changes else ""
        apply_op(blocks, op)
        if changes:
            new = _visible(blocks[op.block])
            if not new.startswith(old):
                common = next((k for k, (a, b) in enumerate(zip(old, new, strict=False))
                               if a != b), len(new))
                count += len(old) - common
    return count


def appended_text(old: str, new: str) -> str | None:
    """The plain text ``t`` with ``append_text(old, t) == new``, or ``None`` if there is none.

    ``new`` must be ``head + X + trailer`` where ``(head, trailer) = split_trailer(old)`` and
    ``X`` is serialized text: no ``<``, and ``escape_text(html.unescape(X)) == X``.
    An empty result means ``new == old``.
    """
    head, trailer = split_trailer(old)
    end = len(new) - len(trailer)
    if end < len(head) or not new.startswith(head) or not new.endswith(trailer):
        return None
    x = new[len(head):end]
    if "<" in x:
        return None
    t = html.unescape(x) if "&" in x else x
    if escape_text(t) != x:
        return None
    return t


#: A block shorter than this changes by ``replace``: a ``splice`` saves little there.
SPLICE_MIN_BLOCK: Final = 256


def _appended_after(old: str, new: str, cut: int) -> str | None:
    """:func:`appended_text` for ``new = old[:cut] + new[cut:]`` in O(change): the plain text
    ``t`` with ``append_text(old, t) == new``, or ``None``."""
    if new[cut:cut + 1] == "<" or cut != (start := trailer_start(old)):
        return None  # (markup first: no plain text)
    trailer = old[start:]
    if len(new) - len(trailer) < start or not new.endswith(trailer):
        return None
    return appended_text(trailer, new[start:])


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (bisection over slices
    compared in C: O(length) copied, O(log length) steps)."""
    lo, hi = 0, min(len(a), len(b))
    while hi - lo > 32:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    while lo < hi and a[lo] == b[lo]:
        lo += 1
    return lo


def _splice_cut(old: str, new: str, cut: int | None) -> int | None:
    """Where a ``splice`` from ``old`` to ``new`` cuts (``old[:c] == new[:c]``), or ``None``
    when a ``replace`` is the better op: a short block, a change of most of the block, or a
    removed part that is not ASCII (``trim`` must count the same in every language).

    ``cut``: a known common prefix at a tag boundary (a splice path's), moved on past what
    the removed and the new part still share; else the common prefix is found (O(block),
    after a render that cost more) and moved back to just after a tag, so that it splits no
    tag or entity.
    """
    if len(new) < SPLICE_MIN_BLOCK or not old:
        return None
    if cut is None:
        cut = _common_prefix(old, new)
        if cut < len(old):
            cut = old.rfind(">", 0, cut) + 1
    else:
        shared = _common_prefix(old[cut:], new[cut:])
        if shared:
            cut = max(cut, old.rfind(">", cut, cut + shared) + 1) if cut + shared < len(old) \
                else cut + shared
    if 2 * (len(new) - cut) > len(new) or (not old.isascii() and not old[cut:].isascii()):
        return None
    return cut


class Chunker:
    """Incremental markdown → block ops for one stream. See the module docstring.

    Args:
        renderer: the process's :class:`~streamer.render.Renderer` (shared, stateless).
        verify_fast_path: re-render after every fast-path or spliced delta and raise
            ``AssertionError`` if the result differs (for tests; costs what those paths save).
        hold_back: hold back undecided syntax (:class:`~streamer.render.holdback.HoldBack`); off,
            every delta is rendered as it comes (tests of the rendering core use that).
    """

    def __init__(self, renderer: Renderer, *, verify_fast_path: bool = False,
                 hold_back: bool = True) -> None:
        self._renderer = renderer
        self._verify_fast_path = verify_fast_path
        #: the client's block list, as the ops emitted so far build it
        self._blocks: list[str] = []
        #: per slot: an op with ``final=True`` was emitted for it
        self._final: list[bool] = []
        #: committed markdown, in parts (each part ends with a newline)
        self._committed_md: list[str] = []
        #: slots ``[0, _n_committed)`` hold committed blocks
        self._n_committed = 0
        #: link reference definitions of the committed markdown
        self._refs: RefLinks = {}
        #: the open tail (markdown; :attr:`_tail` joins ``_tail_str`` and the deltas in
        #: ``_tail_more`` that the hot path appended) and its rendered blocks = slots
        #: ``_n_committed …``
        self._tail_str = ""
        self._tail_more: list[str] = []
        self._tail_blocks: list[str] = []
        #: per committed part (``_committed_md[i]``): its first slot, its number of blocks,
        #: and how many link reference definitions were known when it was committed
        self._part_slots: list[tuple[int, int, int]] = []
        #: a fence opened in column 0 that is still open at the tail's end (the last block is
        #: its code block): its marker and where its code starts in the tail; or ``None``
        self._open_fence: tuple[str, int] | None = None
        #: a line of the tail may be a link reference definition (:data:`_DEF_LINE_RE`)
        self._def_line = False
        #: :meth:`_has_html_line`'s scan: (the last line's start, the tail's length then, an
        #: HTML line seen before that line)
        self._html_scan = (0, 0, False)
        #: :meth:`_splice_subitem`'s last find: (the item's start in the tail, the block's
        #: length, where the item's HTML begins in the block)
        self._item_at: tuple[int, int, int] | None = None
        #: link reference definitions in the tail, as of its last render
        self._tail_refs: RefLinks = {}
        #: the last block's table header and delimiter row (markdown), once looked up, and
        #: its number of columns for simple rows (0: rows go to mistune)
        self._table_head: str | None = None
        self._table_columns = 0
        #: :meth:`_last_item_line`'s scan of the tail: (scanned up to, fence lines, an HTML
        #: line seen)
        self._item_scan: tuple[int, int, bool] = (0, 0, False)
        #: how much of the last block's HTML the splice path found closed (0: nothing yet)
        self._checked_head = 0
        #: how much of the last block's HTML :meth:`_tight_list` found free of ``<p>``
        self._p_checked = 0
        #: the tail's length right after :meth:`_close_fence` closed its fence (else -1)
        self._fence_closed_at = -1
        #: the last delta took the fast path's plain-text branch (see :meth:`_feed_hot`); the
        #: spaces at the tail's end, not shown yet; the last block's slot, its last text
        #: position (:func:`trailer_start`), and the texts the hot path appended there since
        #: (joined into the block by :meth:`_flush_hot`)
        self._hot = False
        self._hot_code = False
        self._hot_spaces = 0
        self._hot_slot = 0
        self._hot_cut = 0
        self._hot_texts: list[str] = []
        #: the last :meth:`_feed_cheap` rendered the rest of its feed
        self._rendered_rest = False
        #: visible characters of the piece the last splice inserted
        self._splice_chars = 0
        #: highest commit candidate (a line start in tail coordinates) tried per rule
        self._tried_a = 0
        self._tried_b = 0
        self._n_chars = 0
        self._closed = False
        #: holds back undecided syntax (streamer.render.holdback); the chunker renders what it decides
        self._hold = HoldBack() if hold_back else None
        self._hold_plain = self._hold.feed_plain if self._hold is not None else None
        #: hot, not in code, with a hold-back: :meth:`feed` tries HoldBack.feed_plain first
        self._hot_plain = False
        self._stats = ChunkerStats()
        #: counters not yet folded into ``_stats`` (the hot path's: cheaper than attributes
        #: of another object): deltas fed, hot-path deltas, those of them with no op
        self._n_deltas = 0
        self._n_hot = 0
        self._n_hot_spaces = 0

    # -- views --------------------------------------------------------------------------

    @property
    def blocks(self) -> list[str]:
        """A copy of the client's current block list (``""`` for a folded slot)."""
        self._flush_hot()
        return list(self._blocks)

    @property
    def html(self) -> str:
        """The client's current document: ``"".join(blocks)``."""
        self._flush_hot()
        return "".join(self._blocks)

    @property
    def stats(self) -> ChunkerStats:
        """The counters so far (for benchmarks and tests)."""
        st = self._stats
        if self._n_deltas or self._n_hot:
            st.deltas += self._n_deltas
            st.fast_path += self._n_hot
            st.text_ops += self._n_hot - self._n_hot_spaces
            self._n_deltas = self._n_hot = self._n_hot_spaces = 0
        return st

    @property
    def _tail(self) -> str:
        if self._tail_more:
            self._tail_str += "".join(self._tail_more)
            self._tail_more.clear()
        return self._tail_str

    @_tail.setter
    def _tail(self, value: str) -> None:
        self._tail_str = value
        self._tail_more.clear()

    @property
    def markdown(self) -> str:
        """All text fed so far (joins the committed parts: O(length), don't call per delta)."""
        held = self._hold.pending if self._hold is not None else ""
        return "".join(self._committed_md) + self._tail + held

    @property
    def markdown_chars(self) -> int:
        """``len(markdown)``, in O(1): for size limits checked per delta."""
        return self._n_chars

    @property
    def closed(self) -> bool:
        return self._closed

    # -- input --------------------------------------------------------------------------

    def feed(self, delta: str) -> list[Op]:
        """Take the next text delta (any length, any split); return the ops it causes.

        Raises:
            ChunkerClosedError: after :meth:`close`.
        """
        if self._closed:
            raise ChunkerClosedError("feed() after close()")
        if not delta:
            return []
        self._n_deltas += 1
        self._n_chars += len(delta)
        if self._hot_plain:
            # the hot path's common case: plain words mid-line, decided and checked at once
            plain = self._hold_plain(delta)
            if plain is not None:
                return self._feed_hot(plain)
        decided = self._hold.feed(delta) if self._hold is not None else delta
        if not decided:
            self._stats.held += 1
            return []
        if self._hot:
            if _CODE_DELTA_RE.fullmatch(decided) if self._hot_code \
                    else _FAST_DELTA_RE.fullmatch(decided):
                return self._feed_hot(decided)
            self._leave_hot()
        return self._feed_decided(decided)

    def _feed_hot(self, delta: str) -> list[Op]:
        """The fast path again, right after it appended plain text on the same line: what it
        checked still holds (the line's start and kind did not change, the text before the
        delta ends in a letter, digit or ``, . : ? ! ' " - (``, and no ``/`` could have come
        to make a bare URL), so only the delta's characters are checked (by the caller).
        Likewise code mid-line in an open fence (:meth:`_fast_code`'s checks hold).
        O(delta): the tail and the block grow by appending to lists (plain text needs no
        escaping in HTML), joined when another path needs them. The one op per delta of
        most of an answer: its counters are folded into :attr:`stats` when read."""
        self._tail_more.append(delta)
        self._n_hot += 1
        if self._hot_code:
            text = delta
            self._hot_texts.append(escape_text(delta))
        else:
            if delta[-1] == " ":
                core = delta.rstrip(" ")
                if not core:  # spaces only: shown once text follows (a paragraph drops them)
                    self._hot_spaces += len(delta)
                    self._n_hot_spaces += 1
                    return []
                text = " " * self._hot_spaces + core if self._hot_spaces else core
                self._hot_spaces = len(delta) - len(core)
            elif self._hot_spaces:
                text = " " * self._hot_spaces + delta
                self._hot_spaces = 0
            else:
                text = delta
            self._hot_texts.append(text)
        if self._verify_fast_path:
            self._flush_hot()
            self._verify("hot path")
        return [Op("text", self._hot_slot, None, text, False, len(text))]

    def _has_html_line(self) -> bool:
        """Whether a line of the tail (as it is now) may start an HTML block
        (:data:`_HTML_LINE_RE`). Incremental: the tail only grows between resets, so each
        complete line is searched once and the last one matched at its start only (a long
        table, list or paragraph costs O(new text) per call)."""
        line_start, scanned, seen = self._html_scan
        tail = self._tail
        if scanned > len(tail):  # a shorter tail than the last look (a path gave up)
            line_start = scanned = 0
            seen = False
        if not seen:
            nl = tail.rfind("\n", scanned)
            if nl >= 0:
                seen = _HTML_LINE_RE.search(tail, line_start, nl + 1) is not None
                line_start = nl + 1
        self._html_scan = (line_start, len(tail), seen)
        return seen or _HTML_LINE_RE.match(tail, line_start) is not None

    def _maybe_enter_hot(self) -> None:
        """Enter the hot path if the fast path's plain branch would take any plain delta now
        (the checks of :meth:`_fast_text` for a delta of ``_FAST_DELTA_RE`` characters)."""
        if not self._tail_blocks or self._open_fence is not None or self._def_line:
            return
        core = self._tail.rstrip(" ")
        if not core or not _FAST_PREV_RE.fullmatch(core[-1]):
            return
        line_start = core.rfind("\n") + 1
        if "\r" in core[line_start:] \
                or self._line_kind(core, line_start, self._tail_blocks[-1]) is None:
            return
        if "://" in core[max(line_start, core.rfind(" ", line_start) + 1):]:
            return
        self._enter_hot()

    def _enter_hot(self, *, code: bool = False) -> None:
        """After a plain-text fast path: the next plain delta may take :meth:`_feed_hot`
        (``code``: after code in an open fence, mid-line: the next delta without a newline
        or a character the renderer normalizes)."""
        tail = self._tail
        self._hot = True
        self._hot_code = code
        self._hot_plain = not code and self._hold_plain is not None
        self._hot_spaces = 0 if code else len(tail) - len(tail.rstrip(" "))
        self._hot_slot = slot = self._n_committed + len(self._tail_blocks) - 1
        self._hot_cut = trailer_start(self._blocks[slot])
        self._hot_texts = []

    def _flush_hot(self) -> None:
        """Join the texts the hot path appended into the last block (at its last text
        position, :attr:`_hot_cut`)."""
        if self._hot_texts:
            joined = "".join(self._hot_texts)
            self._hot_texts = []
            old = self._blocks[self._hot_slot]
            cut = self._hot_cut
            new = old[:cut] + joined + old[cut:]
            self._hot_cut = cut + len(joined)
            self._blocks[self._hot_slot] = new
            self._tail_blocks[-1] = new

    def _leave_hot(self) -> None:
        self._flush_hot()
        self._hot = self._hot_plain = False

    def _feed_decided(self, delta: str) -> list[Op]:
        """Grow the tail by ``delta``, text the hold-back filter has released.

        Whole, or else line by line, each piece (a line with its newline) takes a path that
        needs no render of the tail where one applies (:meth:`_feed_cheap`); from the first
        piece that does not, the rest is rendered in one go. A delta of several lines is
        tried whole only where a path takes several lines at once: code in an open fence,
        table rows (``|``), or a line break followed by a letter (a soft break) or ``>`` (a
        quote's next line).
        """
        nl = delta.find("\n")
        if nl < 0 or nl == len(delta) - 1 or self._open_fence is not None or delta[0] == "|" \
                or delta[nl + 1].isalpha() or delta[nl + 1] == ">":
            cheap = self._feed_cheap(delta, delta)
            if cheap is not None or nl < 0 or nl == len(delta) - 1:
                return cheap if cheap is not None else self._feed_render(delta)
        ops: list[Op] = []
        start = 0
        while start < len(delta):
            nl = delta.find("\n", start)
            end = len(delta) if nl < 0 or nl == len(delta) - 1 else nl + 1
            cheap = self._feed_cheap(delta[start:end], delta[start:])
            if cheap is None:
                ops.extend(self._feed_render(delta[start:]))
                break
            ops.extend(cheap)
            if self._rendered_rest:
                break
            start = end
        return ops

    def _feed_cheap(self, delta: str, rest: str) -> list[Op] | None:
        """The ops of ``delta`` (a line, or the end of one) by a fast path or a splice, or
        ``None`` (the tail unchanged). ``rest``: ``delta`` and what follows it in this feed;
        after a commit of the settled tail it is rendered in one go, and
        :attr:`_rendered_rest` says so."""
        if self._hot:
            self._leave_hot()
        old_tail = self._tail
        self._rendered_rest = False
        settled = self._commit_settled(old_tail, delta)
        if settled is not None:
            # the tail's blocks are committed; ``delta`` begins the new tail on its own
            if delta[0].isalpha() and _FAST_DELTA_RE.fullmatch(delta):
                return settled + self._new_paragraph(delta)
            self._rendered_rest = True
            return settled + self._feed_render(rest)
        self._tail = old_tail + delta
        if self._open_fence is not None and self._close_fence(old_tail, delta):
            return []
        if self._tail_blocks and self._tail_blocks[-1].startswith("<blockquote>"):
            quoted = self._quote_line(old_tail, delta, self._tail_blocks[-1])
            if quoted is not None:
                value = quoted[1]
                return self._feed_fast(value) if isinstance(value, str) \
                    else self._feed_spliced(*value)
        fast = self._fast_text(old_tail, delta)
        if fast is not None:
            ops = self._feed_fast(fast)
            if self._open_fence is None:
                if _FAST_DELTA_RE.fullmatch(delta):
                    self._enter_hot()  # plain text on the line
            elif fast and not delta.endswith("\n"):
                # code on a line that already has its first non-space character (so no
                # later character can make it a closing fence): the hot path takes code
                line = self._tail[self._tail.rfind("\n") + 1:]
                if line.strip(" \t"):
                    self._enter_hot(code=True)
            return ops
        spliced = self._splice(old_tail, delta)
        if spliced is None:
            spliced = self._splice_rows(old_tail, delta)
        if spliced is None:
            spliced = self._splice_item(old_tail, delta)
        if spliced is None:
            spliced = self._splice_subitem(old_tail, delta)
        if spliced is not None:
            ops = self._feed_spliced(*spliced)
            if not delta.endswith("\n"):
                self._maybe_enter_hot()
            return ops
        self._tail = old_tail
        return None

    def _commit_settled(self, old_tail: str, delta: str) -> list[Op] | None:
        """A line that begins in column 0 after a blank line, with anything but whitespace
        or ``[``, starts a new block, and the tail's blocks before it are settled: commit
        them with no render (their ops, marking them final), leaving the tail empty; or
        ``None``.

        Nothing continues a paragraph, heading, table, closed code block, block quote or
        thematic break across a blank line into such a line (no lazy line, no setext
        underline, §4.3, §5.1), and a blank line ends a quote's parse (so
        :func:`_container_hazard` does not apply). Left to the render path: after a list as
        the last block, any line but a letter, ``#``, fence or ``|`` one (an item or indented
        text may go on with it, and mistune parses a following quote as the list's end), or
        any line at
        all if the tail holds a quote (mistune puts a quote that a list ended after the
        list); open fences and math blocks (a blank line is their content), HTML blocks (one
        may run on past a blank line), and ``[`` (a link reference definition renders
        nothing, and applies to earlier blocks: :meth:`close` reconciles those).
        """
        if not old_tail.endswith("\n\n") or not self._tail_blocks \
                or self._open_fence is not None or delta[0] in " \t\n\r[" \
                or _label_open(old_tail):
            return None
        if self._tail_blocks[-1].startswith(("<ul", "<ol")) and not (
                (delta[0].isalpha() or delta[0] in "#`~|")
                and not any(b.startswith("<blockquote") for b in self._tail_blocks)):
            # after a list, only a letter, a heading, a fence or a table line (mistune
            # parses a following quote as the list's end, even across blank lines), and not
            # after a quote that a list ended: mistune puts that quote after the list once
            # the list ends
            return None
        if self._has_html_line():
            return None
        fences = _FENCE_ANYWHERE_RE.findall(old_tail)
        if fences:
            # a fence open at the end swallows the blank line and what follows; "```" may
            # be content, not a closer ("```\n```rust\n"): follow them line by line
            if "$$" in fences or _fence_state(old_tail)[0] is not None or any(
                    b.startswith(("<ul", "<ol", "<blockquote")) for b in self._tail_blocks):
                return None
        n_final = len(self._tail_blocks)
        self._committed_md.append(old_tail)
        self._part_slots.append((self._n_committed, n_final, len(self._refs)))
        self._refs.update({k: v for k, v in self._tail_refs.items() if k not in self._refs})
        self._stats.commits += 1
        ops = self._sync(self._tail_blocks, n_final)
        self._n_committed += n_final
        self._tail = ""
        self._tail_blocks = []
        self._tried_a = self._tried_b = 0
        self._reset_tail_state()
        return ops

    def _new_paragraph(self, delta: str) -> list[Op]:
        """Plain text that begins a line, with a letter, on an empty tail: a new paragraph
        (§4.8), appended with no render."""
        self._stats.fast_path += 1
        self._tail = delta
        self._tail_blocks = ["<p>" + escape_text(delta.rstrip(" ")) + "</p>\n"]
        ops = self._sync(self._tail_blocks, 0)  # (into a slot left empty, if there is one)
        self._verify("new paragraph")
        return ops

    def _reset_tail_state(self) -> None:
        """Forget what was derived from the tail's text (after a render or a commit; the
        commit candidates tried are reset by the commits themselves)."""
        self._tail_refs = {}
        self._table_head = None
        self._checked_head = 0
        self._p_checked = 0
        self._fence_closed_at = -1
        self._item_scan = (0, 0, False)
        self._open_fence = None
        self._def_line = False
        self._html_scan = (0, 0, False)
        self._item_at = None
        self._table_columns = 0

    def _feed_render(self, delta: str) -> list[Op]:
        """Render the tail grown by ``delta``; commit what the render proves settled."""
        if self._hot:
            self._leave_hot()
        tail = self._tail + delta
        self._tail = tail
        self._stats.tail_renders += 1
        simple = self._renderer.render_line_simple(tail)
        if simple is not None:
            blocks, refs = simple, {}
        else:
            blocks, refs = self._renderer.render_part(tail, self._refs)
        self._reset_tail_state()
        self._tail_refs = refs
        commit = self._find_commit(tail, blocks, refs)
        n_final = 0
        if commit is not None:
            p, n_final, pre_refs = commit
            self._committed_md.append(tail[:p])
            self._part_slots.append((self._n_committed, n_final, len(self._refs)))
            self._tail = tail[p:]
            self._refs.update(pre_refs)
            self._tried_a = self._tried_b = 0
            self._stats.commits += 1
        ops = self._sync(blocks, n_final)
        if n_final:
            self._n_committed += n_final
            self._tail_blocks = blocks[n_final:]
        else:
            self._tail_blocks = blocks
        fence = None
        if self._tail_blocks and self._tail_blocks[-1].startswith("<pre><code"):
            fence = _open_fence(self._tail)
            if fence and not _code_matches(self._tail_blocks[-1], self._tail[fence[1]:]):
                fence = None
        self._open_fence = fence
        self._def_line = _DEF_LINE_RE.search(self._tail) is not None
        if not tail.endswith("\n"):
            self._maybe_enter_hot()
        return ops

    def close(self) -> list[Op]:
        """End of text: release what is held, reconcile, mark every block final.

        The open tail is rendered once more; committed parts are not, except those holding a
        block not yet final (a literal ``]``) when link reference definitions arrived after
        them (CommonMark §4.7: a definition applies to the whole document). Committed blocks
        are otherwise exactly what a full render gives (each cut was verified when it was
        made), so this costs the tail, not the answer.

        Returns:
            The ops that make ``"".join(blocks) == renderer.render(markdown)`` and carry
            ``final=True`` for every slot not already final. Calling it again returns ``[]``.
        """
        if self._closed:
            return []
        rest = self._hold.flush() if self._hold is not None else ""
        self._leave_hot()
        ops: list[Op] = self._feed_decided(rest) if rest else []
        self._closed = True
        full = self._final_blocks()
        n_slots = len(self._blocks)
        for i, new in enumerate(full):
            if i < n_slots:
                old = self._blocks[i]
                if old != new:
                    if self._final[i]:
                        self._stats.close_repairs += 1
                    ops.append(self._change(i, old, new, final=True))
                elif not self._final[i]:
                    ops.append(self._marker(i))
            else:
                ops.append(self._append(new, final=True))
        for i in range(len(full), n_slots):
            if self._blocks[i]:
                if self._final[i]:
                    self._stats.close_repairs += 1
                ops.append(self._change(i, self._blocks[i], "", final=True))
            elif not self._final[i]:
                ops.append(self._marker(i))
        self._final = [True] * len(self._blocks)
        self._n_committed = len(self._blocks)
        self._tail_blocks = []
        return ops

    # -- internals ----------------------------------------------------------------------

    def _final_blocks(self) -> list[str]:
        """The whole document's blocks: the committed ones (re-rendered where a later link
        definition may apply) and the tail rendered once more."""
        render = self._renderer.render_part
        tail_blocks, tail_refs = render(self._tail, self._refs) if self._tail else ([], {})
        all_refs = {**self._refs, **tail_refs} if tail_refs else self._refs
        full: list[str] = []
        for md, (first, n, n_refs) in zip(self._committed_md, self._part_slots, strict=True):
            blocks = self._blocks[first:first + n]
            if len(all_refs) > n_refs and not all(self._final[first:first + n]):
                again, _ = render(md, all_refs)
                if len(again) != n:  # cannot happen: a definition changes no block structure
                    return self._renderer.render_blocks(self.markdown)
                blocks = again
            full.extend(blocks)
        full.extend(tail_blocks)
        return full

    def _fast_text(self, old_tail: str, delta: str) -> str | None:
        """The text the fast path appends to the last block, or ``None`` if it does not apply."""
        if not self._tail_blocks:
            return None
        last = self._tail_blocks[-1]
        if self._open_fence is not None:
            return self._fast_code(old_tail, delta, self._open_fence, last)
        if self._def_line:
            return None  # the text may be a link reference definition's (rendering nothing)
        if delta == "\n" and len(old_tail) == self._fence_closed_at:
            return ""  # a blank line right after a closed fence shows nothing
        if delta == "\n" and old_tail.endswith("\n") and not last.startswith("<pre") \
                and not _FENCE_ANYWHERE_RE.search(old_tail) and not (
                    last.startswith(("<ul", "<ol")) and _EMPTY_ITEM_RE.search(old_tail)) \
                and not any(b.startswith("<blockquote") for b in self._tail_blocks[:-1]):
            # a blank line at the end shows nothing until the next line begins (after a
            # list too: it makes the list loose only once another item follows; but mistune
            # makes it loose at once after an empty last item, "- a\n-\n\n"; and a blank
            # line can move a quote that a list ended: "> - a\n- b\n\n> c\n" + "\n"
            # puts "> c" before the first quote)
            return ""
        if delta.endswith("\n") and "\n" not in delta[:-1] and old_tail[-1:] != "\n":
            # the line's end alone changes no render (mistune ends the text with a newline
            # anyway): what shows is the text before it
            if delta == "\n":
                return "" if old_tail and old_tail[-1] != " " else None
            text = self._fast_text(old_tail, delta[:-1])
            return None if text is None or delta[-2] == " " else text
        if "\n" in delta and last.startswith(("<p>", "<blockquote>")):
            if self._has_html_line():
                return None  # an HTML block (shown escaped) keeps its newlines
            return self._fast_softbreak(old_tail, delta, last)
        if not _FAST_DELTA_RE.fullmatch(delta):
            return None
        core = old_tail.rstrip(" ")
        if not core or not _FAST_PREV_RE.fullmatch(core[-1]):
            return None
        line_start = core.rfind("\n") + 1
        if "\r" in core[line_start:]:
            return None
        if self._line_kind(core, line_start, last) is None:
            return None
        word = core[max(line_start, core.rfind(" ", line_start) + 1):]
        if "://" in word:  # a bare URL (GFM §6.9) that the delta would extend
            return None
        new_core = (old_tail + delta).rstrip(" ")
        return new_core[len(core):]

    def _close_fence(self, old_tail: str, delta: str) -> bool:
        """Whether ``delta`` is a whole line that closes the open column-0 fence (§4.5: up
        to 3 spaces, a run of the fence character at least as long as the opening one,
        then only spaces or tabs). The code block then shows what it showed (the renderer
        drops the code's last newline while the fence is open and after it closes), so
        nothing is sent and nothing rendered; the fence is no longer open."""
        assert self._open_fence is not None
        marker, code_start = self._open_fence
        if not delta.endswith("\n") or "\n" in delta[:-1] or "\r" in delta \
                or not (old_tail.endswith("\n") or len(old_tail) == code_start):
            return False
        body = delta[:-1].lstrip(" ")
        if len(delta) - 1 - len(body) > 3:
            return False
        run = len(body) - len(body.lstrip(marker[0]))
        if run < len(marker) or body[run:].strip(" \t"):
            return False
        self._stats.fast_path += 1
        self._open_fence = None
        self._fence_closed_at = len(old_tail) + len(delta)
        self._verify("fence close")
        return True

    @staticmethod
    def _fast_code(old_tail: str, delta: str, fence: tuple[str, int],
                   last: str) -> str | None:
        """Code appended inside an open column-0 fence: the text is the code itself, less a
        final newline (the renderer drops the code's last newline until more follows). Any
        line that may close the fence (it starts, after spaces, with the fence character)
        and anything the renderer normalizes (``\r``, NUL, surrogates) goes to a render, as
        does code that would end in a newline the renderer shows (a text op cannot put text
        after a block's trailing newlines)."""
        if "\r" in delta or "\x00" in delta or _SURROGATE_RE.search(delta):
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

    @staticmethod
    def _fast_softbreak(old_tail: str, delta: str, last: str) -> str | None:
        """A plain paragraph line ended by a newline, and a next line begun with a letter: a
        soft line break, which renders as a space (``Renderer`` softbreak), then plain text.
        No space may precede the newline (two make a hard break); the next line starts in
        column 0 with a letter, so it continues the paragraph (no block starts with one)."""
        nl = delta.find("\n")
        head, rest = delta[:nl], delta[nl + 1:]
        prefix = ""
        if last.startswith("<blockquote>"):  # the next line must carry the same quote markers
            line_start = old_tail.rfind("\n") + 1
            m = _QUOTE_PREFIX_RE.match(old_tail, line_start)
            if m is None or not rest.startswith(m.group()):
                return None
            prefix, rest = m.group(), rest[m.end() - line_start:]
        if not rest or not rest[0].isalpha() or not _FAST_DELTA_RE.fullmatch(rest):
            return None
        if head and not _FAST_DELTA_RE.fullmatch(head):
            return None
        core = old_tail.rstrip(" ")
        if not core or not _FAST_PREV_RE.fullmatch(core[-1]):
            return None  # the delta must go on the paragraph's current line
        line = old_tail + head
        if not _FAST_PREV_RE.fullmatch(line[-1]):
            return None
        line_start = line.rfind("\n") + 1
        if "\r" in line[line_start:]:
            return None
        if prefix:
            if _quote_content(line, line_start, last) is None:
                return None
        elif not _plain_line_start(line, line_start):
            return None
        if "://" in line[max(line_start, line.rfind(" ", line_start) + 1):]:
            return None
        return line[len(core):] + " " + rest.rstrip(" ")

    def _quote_line(self, old_tail: str, delta: str,
                    last: str) -> tuple[str, str] | tuple[str, tuple[int, str]] | None:
        """A new line of plain text in a block quote, at any depth: ``("text", t)`` when it
        continues the deepest paragraph, ``("html", (cut, html))`` (a splice, see
        :meth:`_feed_spliced`) when markup joins it or it opens quotes deeper than that
        paragraph's, else ``None``.

        ``delta`` holds the start of the line (its ``>`` markers and a letter-started plain
        text), after the end of the previous one (the rest of it and its newline in the
        same delta, or the newline before). The previous line is a plain paragraph line of
        the quote whose deepest last element is that paragraph (:func:`_quote_content`),
        ending in a plain character (no hard break). A line with at most as many markers as
        the paragraph's quotes are deep continues it (the same quotes, or a lazy
        continuation line, CommonMark §5.1): a soft break, shown as a space, then the text.
        A line with more markers opens the extra quotes inside the deepest one, after its
        paragraph, each quote with a paragraph of the text (as deep as
        :attr:`Renderer.max_quote_depth`, where mistune's nesting is known). The text may
        be simple inline markup (:meth:`Renderer.render_inline_simple`); joining the
        paragraph, only if nothing in it is left open. Either way O(line) with no render,
        but for one copy of the block's string; a line that is not plain text is sent as a
        ``splice`` of the quote's end.
        """
        if self._def_line or "\r" in delta:
            return None
        if old_tail.endswith("\n"):
            if "\n" in delta:
                return None
            head, rest, prev = "", delta, old_tail[:-1]
        else:
            nl = delta.find("\n")
            if nl < 0 or "\n" in delta[nl + 1:]:
                return None
            head, rest, prev = delta[:nl], delta[nl + 1:], old_tail + delta[:nl]
        if head and not _FAST_DELTA_RE.fullmatch(head):
            return None
        m = _QUOTE_PREFIX_RE.match(rest)
        if m is None:
            return None
        content = rest[m.end():].rstrip(" ")
        # plain text, or simple inline markup (rendered without mistune)
        inline = content if content[:1].isalpha() and _FAST_DELTA_RE.fullmatch(content) \
            else self._renderer.render_content_simple(content)
        if inline is None or not prev:
            return None
        # the previous line ends in plain text, or in a closed code span, link or emphasis
        # followed by the newline (as when it was rendered) or by head's plain text (after a
        # space, or punctuation that leaves the closer as it is: _punct_after_closer)
        if head:
            if not _FAST_PREV_RE.fullmatch(prev[-1]) or not (
                    old_tail[-1] == " " or _FAST_PREV_RE.fullmatch(old_tail[-1])
                    or _punct_after_closer(old_tail, head)):
                return None
        elif not _FAST_PREV_RE.fullmatch(prev[-1]) and prev[-1] not in "`)*_":
            return None
        line_start = prev.rfind("\n") + 1
        if "\r" in prev[line_start:] or _quote_content(prev, line_start, last) is None:
            return None
        # head may extend a bare URL (GFM §6.9); a newline ends one, so with no head the
        # previous line's last word is as it was rendered
        if head and "://" in prev[max(line_start, prev.rfind(" ", line_start) + 1):]:
            return None
        shown = old_tail[len(old_tail.rstrip(" ")):] + head if head else ""
        # the paragraph's end, after the inline elements its text may end in
        end = _QUOTE_TRAILER_RE.match(last, trailer_start(last))
        if end is None:
            return None
        cut = end.end() - 4
        trailer = last[cut:]
        if not trailer.startswith("</p>\n"):
            return None
        depth = trailer.count("</blockquote>")
        new_depth = m.group().count(">")
        self._splice_chars = len(shown) + 1 + text_length(inline)
        if new_depth <= depth:
            if inline is content and cut == end.start():
                return "text", shown + " " + content
            # markup joins the paragraph: nothing in it may be left open (a later closer
            # could pair with it); its text is checked once (``_checked_head``, as splices)
            checked = self._checked_head if self._checked_head <= cut else 0
            start = max(last.rfind("<p>", 0, cut), checked)
            if inline is not content and _left_open(last, start, cut):
                return None
            piece = shown + " " + inline
            self._checked_head = cut + len(piece)
            return "html", (cut, piece + trailer)
        if new_depth > self._renderer.max_quote_depth:
            return None
        extra = new_depth - depth
        return "html", (cut, shown + "</p>\n" + "<blockquote>\n" * extra + "<p>" + inline
                        + "</p>\n" + "</blockquote>\n" * extra + trailer[5:])

    def _splice(self, old_tail: str, delta: str) -> tuple[int, str] | None:
        """``delta`` rendered as inline content and spliced into the last block (``(cut,
        html)``, see :meth:`_feed_spliced`), or ``None`` where that is not known to equal a
        render of the whole tail.

        Applies where the fast path's structure holds (the delta continues the current line,
        which is the last text of a paragraph, block quote, ATX heading or last list item,
        and starts as
        plain text) but the delta holds markup (``**b**``, a link, a code span: what hold-back
        releases once decided). The cut between the block's text so far and the new text must
        follow whitespace, and nothing before it may be left open (no literal ``*``, ``~``,
        backtick, ``[``, ``$``, ``<``, ``\\``, nor an ``_`` that could open: a later closer
        could pair with it). Then the inline text renders as its two pieces joined, and only
        the new piece is rendered: O(delta), not O(paragraph).
        """
        # a final newline changes no render (mistune ends the text with one anyway)
        delta = delta[:-1] if delta.endswith("\n") else delta
        if not self._tail_blocks or "\n" in delta or "\r" in delta or delta.endswith("\\"):
            return None  # (a backslash before the newline is a hard break once a line follows)
        if self._def_line or self._has_html_line():
            return None  # an HTML block's text is shown as it is, never parsed as inline
        last = self._tail_blocks[-1]
        core = old_tail.rstrip(" ")
        piece = old_tail[len(core):] + delta
        if not core or core[-1] in "\n\t" or "\t" in piece or (
                piece[:1] != " " and not _punct_after_closer(core, piece)):
            return None
        line_start = core.rfind("\n") + 1
        if "\r" in core[line_start:]:
            return None
        if piece[0] != " " and _bare_url(core[max(line_start, core.rfind(" ", line_start) + 1):]):
            return None  # punctuation that a bare URL may take in (GFM §6.9: "a)!" ends in "!")
        # "[x](" or "![x](" still open: a resolved reference link or image followed by "(" is
        # no literal in the HTML, yet a later ")" makes it an inline link (§6.3)
        opened = core.rfind("](", line_start)
        if opened >= 0 and core.count("(", opened) > core.count(")", opened):
            return None
        # the new inline HTML goes right before the closing tag of the text's container
        # (``</p>``, ``</li>``, ``</hN>``), after any element the text so far ends in
        end = _CONTAINER_END_RE.search(last, trailer_start(last))
        if end is None:
            return None
        cut = end.start()
        kind = self._line_kind(core, line_start, last)
        if kind is None:
            return None
        if kind == "paragraph":
            inner = 3
        elif kind == "quote":
            inner = last.rfind("<p>", 0, cut)
        elif kind == "item":
            inner = max(last.rfind("<li", 0, cut), last.rfind("<p>", 0, cut))
        else:
            if "#" in piece or core[-1] == "#":  # a closing sequence (§4.2)
                return None
            inner = 4
        # only the part of the text not already checked (it only grew since: by text ops
        # and splices, each of which ends at a tag boundary)
        checked = self._checked_head if self._checked_head <= cut else 0
        start = max(inner, checked)
        if _left_open(last, start, cut):
            return None
        html_piece = self._renderer.render_inline_simple(piece.rstrip(" "))
        if html_piece is None:
            if "|" in piece and _TABLE_DELIM_LINE_RE.search(old_tail):
                return None  # cells: with a delimiter row above, the line may be a table's
            refs = {**self._refs, **self._tail_refs} if self._tail_refs else self._refs
            html_piece = self._renderer.render_inline(piece.rstrip(" "), refs)
        self._checked_head = cut
        self._splice_chars = text_length(html_piece)
        return cut, html_piece + last[cut:]

    def _splice_rows(self, old_tail: str, delta: str) -> tuple[int, str] | None:
        """Complete new rows rendered and spliced into the body of the last block, a table
        (``(cut, html)``, see :meth:`_feed_spliced`), or ``None``.

        The rows (``delta``: whole lines that start with ``|``, after a complete line) are
        rendered under the table's own header and delimiter row, so they get the same
        columns; the result must be a table with the same head, else (a row whose cell count
        differs makes mistune drop the whole table) the tail is rendered whole. O(header +
        rows), not O(table).
        """
        last = self._tail_blocks[-1] if self._tail_blocks else ""
        if not last.startswith("<table>") or not old_tail.endswith("\n") \
                or not delta.endswith("\n") or "\r" in delta:
            return None
        if any(not line.startswith("|") for line in delta[:-1].split("\n")):
            return None
        head_md = self._table_head
        if head_md is None:
            # the table's source: the run of "|" lines at the end of the tail (found once per
            # tail render; splices do not move the table's start)
            start = len(old_tail) - 1
            while True:
                prev = old_tail.rfind("\n", 0, start)
                if not old_tail.startswith("|", prev + 1):
                    break
                start = prev
                if prev < 0:
                    break
            lines = old_tail[start + 1:].split("\n", 2)
            if len(lines) < 3:
                return None
            head_md = self._table_head = lines[0] + "\n" + lines[1] + "\n"
            # the simple row path: a plain header whose columns show in the HTML
            n_th = last.count("<th>", 0, last.find("</thead>"))
            header = lines[0].strip(" ")
            self._table_columns = n_th if (
                len(header) >= 2 and header[0] == header[-1] == "|" and "\\" not in header
                and "`" not in header and len(header[1:-1].split("|")) == n_th) else 0
        body_end = last.rfind("</tbody>")
        simple = self._renderer.render_rows_simple(delta, self._table_columns) \
            if self._table_columns and body_end >= 0 else None
        if simple is not None:
            self._splice_chars = text_length(simple)
            return body_end, simple + last[body_end:]
        refs = {**self._refs, **self._tail_refs} if self._tail_refs else self._refs
        piece, _ = self._renderer.render_part(head_md + delta, refs)
        cut = last.find("<tbody>\n")
        if len(piece) != 1 or cut < 0 or not piece[0].startswith(last[:cut + 8]):
            return None
        end = piece[0].rfind("</tbody>")
        body_end = last.rfind("</tbody>")
        if end < 0 or body_end < 0:
            return None
        rows = piece[0][cut + 8:end]
        self._splice_chars = text_length(rows)
        return body_end, rows + last[body_end:]

    def _tight_list(self, old_tail: str, delta: str) -> str:
        """The last block if it is a tight list and ``delta`` begins a line (holding no
        other) after it, else ``""``."""
        last = self._tail_blocks[-1] if self._tail_blocks else ""
        if not last.startswith(("<ul", "<ol")) or not old_tail.endswith("\n") \
                or "\n" in delta or "\r" in delta:
            return ""
        # no "<p>" (a loose list); the block only grows at its end between renders, so
        # only what is new since the last look is scanned
        if last.find("<p>", max(0, min(self._p_checked, len(last)) - 2)) >= 0:
            return ""
        self._p_checked = len(last)
        return last

    def _splice_item(self, old_tail: str, delta: str) -> tuple[int, str] | None:
        """A new top-level item rendered alone and put before the end of the last block, a
        tight list (``(cut, html)``, see :meth:`_feed_spliced`), or ``None``.

        ``delta`` begins a line (and holds no other) with the marker of the list's last
        top-level item (same bullet, or same ordered delimiter); no blank line, HTML line or
        ``<p>`` (a loose list) is in play, so the list stays tight and the earlier items
        cannot change. The item is rendered as a one-item list, whose opening tag must be the
        list's own (a task item joins only a task list, a plain item only a plain list: GFM
        task lists are all-or-nothing here). O(item), not O(list).
        """
        last = self._tight_list(old_tail, delta)
        new_marker = _ITEM_MARKER_RE.match(delta) if last else None
        if new_marker is None or new_marker.end() >= len(delta):
            return None
        start = _last_item_start(old_tail)
        prev_marker = _ITEM_MARKER_RE.match(old_tail, start)
        if prev_marker is None or prev_marker.group(1)[-1] != new_marker.group(1)[-1]:
            return None
        rest = old_tail[start:]
        if _BLANK_LINE_RE.search(rest) or _HTML_LINE_RE.search(rest):
            return None
        piece = self._renderer.render_line_simple(delta)
        if piece is None:
            refs = {**self._refs, **self._tail_refs} if self._tail_refs else self._refs
            piece, _ = self._renderer.render_part(delta, refs)
        open_end = last.find(">\n") + 2
        if len(piece) != 1 or not piece[0].endswith(last[-6:]):  # "</ul>\n" / "</ol>\n"
            return None
        if last.startswith("<ul") and not piece[0].startswith(last[:open_end]):
            return None
        if last.startswith("<ol") and not piece[0].startswith("<ol"):
            return None
        item = piece[0][piece[0].find(">\n") + 2:-6]
        self._splice_chars = text_length(item)
        self._def_line = self._def_line or _DEF_LINE_RE.search(delta) is not None
        return len(last) - 6, item + last[-6:]

    def _splice_subitem(self, old_tail: str, delta: str) -> tuple[int, str] | None:
        """The last top-level item of the last block, a tight list, rendered again alone (as
        a one-item list) now that ``delta`` begins an indented line in it (a nested item,
        say): ``(cut, html)`` (see :meth:`_feed_spliced`), or ``None``.

        The item's lines (from its column-0 marker on) hold no blank line, HTML line, fence
        or possible link reference definition, so the list stays tight and the earlier items
        cannot change. Where the item's HTML begins in the block is found by rendering the
        item as it was (once per block length). O(item), not O(list).
        """
        last = self._tight_list(old_tail, delta)
        m = _SUB_LINE_RE.match(delta) if last else None
        if m is None or m.end() >= len(delta):
            return None
        start = _last_item_start(old_tail)
        if _ITEM_MARKER_RE.match(old_tail, start) is None:
            return None
        item_md = old_tail[start:]
        whole = item_md + delta
        if _BLANK_LINE_RE.search(whole) or _HTML_LINE_RE.search(whole) \
                or _FENCE_ANYWHERE_RE.search(whole) or _DEF_LINE_RE.search(whole):
            return None
        refs = {**self._refs, **self._tail_refs} if self._tail_refs else self._refs
        end_tag = last[-6:]  # "</ul>\n" / "</ol>\n"
        cached = self._item_at
        if cached is not None and cached[:2] == (start, len(last)):
            offset = cached[2]
        else:
            before = self._renderer.render_item_simple(item_md) \
                or self._renderer.render_line_simple(item_md) \
                or self._renderer.render_part(item_md, refs)[0]
            if len(before) != 1 or not before[0].endswith(end_tag):
                return None
            old_item = before[0][before[0].find(">\n") + 2:-6]
            if not last.endswith(old_item + end_tag):
                return None
            offset = len(last) - 6 - len(old_item)
        piece = self._renderer.render_item_simple(whole) \
            or self._renderer.render_part(whole, refs)[0]
        if len(piece) != 1 or not piece[0].endswith(end_tag):
            return None
        open_end = last.find(">\n") + 2
        if last.startswith("<ul") and not piece[0].startswith(last[:open_end]):
            return None
        if last.startswith("<ol") and not piece[0].startswith("<ol"):
            return None
        item = piece[0][piece[0].find(">\n") + 2:-6]
        self._item_at = (start, offset + len(item) + 6, offset)
        self._splice_chars = max(0, text_length(item) - text_length(last[offset:-6]))
        return offset, item + end_tag

    def _feed_spliced(self, cut: int, piece: str) -> list[Op]:
        """The last block becomes ``last[:cut] + piece`` (a splice path's result: ``cut`` is
        at a tag boundary, ``last[cut:]`` is the little the change replaces). Sent as a
        ``text`` op where it is one, else a ``splice`` (O(piece) on the wire)."""
        self._stats.splices += 1
        slot = self._n_committed + len(self._tail_blocks) - 1
        old = self._blocks[slot]
        ops: list[Op] = []
        if piece != old[cut:]:
            new = old[:cut] + piece
            ops.append(self._change(slot, old, new, final=False,
                                    added_chars=self._splice_chars, cut=cut))
            self._tail_blocks[-1] = new
            self._p_checked = min(self._p_checked, cut)
        self._verify("splice")
        return ops

    def _feed_fast(self, text: str) -> list[Op]:
        self._stats.fast_path += 1
        ops: list[Op] = []
        if text:
            slot = self._n_committed + len(self._tail_blocks) - 1
            old = self._blocks[slot]
            cut = trailer_start(old)
            new = old[:cut] + escape_text(text) + old[cut:]  # append_text, one copy fewer
            self._blocks[slot] = new
            self._tail_blocks[-1] = new
            self._stats.text_ops += 1
            ops.append(Op("text", slot, text=text, chars=len(text)))
        self._verify("fast path")
        return ops

    def _line_kind(self, core: str, line_start: int, last: str) -> str | None:
        """Whether the line at ``line_start`` of ``core`` holds the last text of the last
        block ``last``, begun as plain inline text, so that text appended to it changes no
        structure: ``"paragraph"``, ``"quote"`` (a block quote's paragraph line), ``"item"``
        (the last list item's line) or ``"heading"`` (ATX), else ``None``."""
        if last.startswith("<p>"):
            return "paragraph" if _plain_line_start(core, line_start) else None
        if last.startswith("<blockquote>"):
            return "quote" if _quote_content(core, line_start, last) is not None else None
        # a list item's or heading's marker decides where the content starts
        marker = _FAST_LINE_RE.match(core, line_start)
        if marker is None or not last.startswith(_FAST_BLOCK_PREFIX[marker.lastgroup or ""]):
            return None
        content = marker.end()
        if content >= len(core) or not _plain_line_start(core, content):
            return None
        if marker.lastgroup == "item":
            # the list's deepest last element must be the item's text (not, say, a code
            # block that an indented fence opened in it: fence lines are only counted)
            if not _ITEM_TRAILER_RE.match(last, trailer_start(last)):
                return None
            return "item" if self._last_item_line(core, line_start) else None
        return "heading"

    def _last_item_line(self, text: str, line_start: int) -> bool:
        """Whether the item line at ``line_start`` (at most 3 spaces in) holds the list's last
        text: no fence may be open before it in the open tail, and no line of the tail may
        start an HTML block (``<``), which could swallow the line as raw text. Each line of
        the tail is scanned once between renders (the tail only grows then), so a long list
        costs O(new lines) per call."""
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

    def _verify(self, path: str) -> None:
        """With ``verify_fast_path``: the tail's blocks must be what a render gives."""
        if self._verify_fast_path:
            expected, _ = self._renderer.render_part(self._tail, self._refs)
            if expected != self._tail_blocks:
                raise AssertionError(
                    f"{path} diverged on tail {self._tail!r}: "
                    f"{self._tail_blocks!r} != {expected!r}"
                )

    def _find_commit(
        self, tail: str, blocks: list[str], refs: RefLinks
    ) -> tuple[int, int, RefLinks] | None:
        """A verified cut ``(p, number of committed blocks, their ref links)``, or ``None``.

        ``blocks``/``refs``: the render of the whole ``tail``. The cut is verified on the text
        up to the end of the candidate line: for (A) that is the whole tail; for (B) the
        complete lines only, because a partial next line can decide what the candidate line
        is (``"curl x | y\\n|"``: the partial ``|`` makes the line a table header, which stops
        being one when the ``|`` grows into a table row).
        """
        line_start = tail.rfind("\n") + 1
        if line_start == 0 or _label_open(tail):
            return None
        p = 0
        if (
            line_start < len(tail)
            and line_start > self._tried_a
            and _starts_new_block(tail[line_start])
            and _after_blank_line(tail, line_start)
        ):
            p = self._tried_a = line_start
            end = len(tail)
        if not p:
            q = tail.rfind("\n", 0, line_start - 1) + 1
            # "[" may open a link reference definition, which renders nothing: a line that
            # renders nothing proves nothing about where the previous block ends.
            if q > self._tried_b and not tail[q].isspace() and tail[q] != "[":
                p = self._tried_b = q
                end = line_start
        if not p:
            return None
        self._stats.commit_checks += 1
        render = self._renderer.render_part
        if end == len(tail):
            ref_blocks, ref_refs = blocks, refs
        else:
            ref_blocks, ref_refs = render(tail[:end], self._refs)
        all_refs = {**self._refs, **ref_refs} if ref_refs else self._refs
        post_blocks, _ = render(tail[p:end], all_refs)
        n_pre = len(ref_blocks) - len(post_blocks)
        if not post_blocks or n_pre < 0 or ref_blocks[n_pre:] != post_blocks:
            return None
        if n_pre and _container_hazard(
            ref_blocks[n_pre - 1], post_blocks[0], _after_blank_line(tail, p)
        ):
            return None
        if end != len(tail):
            # the blocks sent now (the render of the whole tail) must agree with the cut too
            all_refs = {**self._refs, **refs} if refs else self._refs
            if len(blocks) < n_pre or blocks[n_pre:] != render(tail[p:], all_refs)[0]:
                return None
        pre_blocks, pre_refs = render(tail[:p], self._refs)
        if pre_blocks != ref_blocks[:n_pre] or pre_blocks != blocks[:n_pre]:
            return None
        return p, n_pre, pre_refs

    def _sync(self, tail_blocks: list[str], n_final: int) -> list[Op]:
        """Ops that make the client's tail slots hold ``tail_blocks`` (then ``""``)."""
        ops: list[Op] = []
        base = self._n_committed
        n_slots = len(self._blocks)
        for i, new in enumerate(tail_blocks):
            slot = base + i
            # A block with a literal "]" may still become a link when a reference definition
            # arrives later (CommonMark §4.7): committed, but not promised final.
            final = i < n_final and "]" not in new
            if slot < n_slots:
                old = self._blocks[slot]
                if old != new:
                    ops.append(self._change(slot, old, new, final=final))
                elif final:
                    ops.append(self._marker(slot))
            else:
                ops.append(self._append(new, final=final))
        for slot in range(base + len(tail_blocks), n_slots):
            if self._blocks[slot]:
                ops.append(self._change(slot, self._blocks[slot], "", final=False))
        return ops

    def _change(self, slot: int, old: str, new: str, *, final: bool,
                added_chars: int | None = None, cut: int | None = None) -> Op:
        """A ``text`` op if ``new`` is ``old`` plus plain text, else a ``splice`` where the
        blocks share most of their beginning (:func:`_splice_cut`), else a ``replace``.

        ``added_chars``: the visible characters ``new`` adds, when the caller knows them (a
        splice: the inserted piece's), so a long block is not measured again per op.
        ``cut``: ``old[:cut] == new[:cut]``, at a tag boundary, when the caller knows it (a
        splice path): the op then costs O(change), not O(block).
        """
        self._blocks[slot] = new
        self._final[slot] = self._final[slot] or final
        if cut is None:
            text = appended_text(old, new) if old else None
        else:
            text = _appended_after(old, new, cut)
        if text:
            self._stats.text_ops += 1
            return Op("text", slot, text=text, final=final, chars=len(text))
        cut = _splice_cut(old, new, cut)
        if cut is not None:
            self._stats.splice_ops += 1
            piece = new[cut:]
            chars = (added_chars if added_chars is not None
                     else max(0, text_length(piece) - text_length(old[cut:])))
            return Op("splice", slot, html=piece, final=final, chars=chars,
                      trim=len(old) - cut)
        self._stats.replace_ops += 1
        chars = (added_chars if added_chars is not None
                 else max(0, text_length(new) - text_length(old)))
        return Op("replace", slot, html=new, final=final, chars=chars)

    def _append(self, new: str, *, final: bool) -> Op:
        slot = len(self._blocks)
        self._blocks.append(new)
        self._final.append(final)
        self._stats.append_ops += 1
        return Op("append", slot, html=new, final=final, chars=text_length(new))

    def _marker(self, slot: int) -> Op:
        """An empty ``text`` op: changes nothing, marks the block final."""
        self._final[slot] = True
        self._stats.markers += 1
        return Op("text", slot, text="", final=True)
