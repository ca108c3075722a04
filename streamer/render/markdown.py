"""The one-shot pipeline: markdown → HTML → sanitize, cut into top-level blocks.

This is the reference render of the protocol (``docs/protocol.md``, "One-shot render" and
invariant 2): ``POST /api/render`` serves :meth:`Renderer.render`, ``stream_complete.html``
equals it, and the incremental :class:`streamer.render.chunker.Chunker` converges to it.

Pipeline, built once per process from :class:`RenderConfig`:

1. **Normalize** the input: U+0000 becomes U+FFFD (CommonMark 0.31 §2.3 "Insecure
   characters"); surrogate code points (a pair split across deltas and re-joined, or a lone
   half from a JSON ``\\ud83d`` escape) are re-paired, lone ones become U+FFFD, because the
   sanitizer (Rust) only accepts valid Unicode.
2. **Parse** with mistune 3 (``create_markdown(escape=True, plugins=["table",
   "strikethrough", "url", math])``; https://mistune.lepture.com/en/latest/guide.html),
   plus GFM task lists (§5.3). Math is mistune's math plugin syntax (``$…$``, ``$$…$$``,
   blocks also in quotes and lists) and LaTeX's delimiters as models write them
   (``\\(…\\)`` inline, ``\\[…\\]`` display: :data:`LATEX_INLINE_PATTERN`,
   :data:`LATEX_BLOCK_PATTERN`; the rule is in ``docs/chunker.md``, "Math delimiters"),
   rendered the way Tiptap's Mathematics extension parses it: ``<span
   data-type="inline-math" data-latex="…">`` and ``<div data-type="block-math"
   data-latex="…">``; a bullet list whose every item starts ``[ ]``/``[x]`` renders as
   Tiptap's TaskList (``<ul data-type="taskList">``, ``<li data-type="taskItem"
   data-checked="true|false">``). mistune follows CommonMark closely but not completely
   (see the tests and the chunker's notes).
   Raw HTML in the markdown is escaped: it shows as text, it is never passed through.
   mistune's block parser is :class:`_BlockParser`: a list item that a quote line ends, or
   a quote that a list item ends, returns before that line is parsed (mistune parsed it
   inside the container's call: a ``RecursionError`` from ~120 alternating line pairs, and
   the blocks out of order; ``docs/chunker.md``, "Lists and quotes that end each other"), so
   the stack grows only with nesting, which mistune stops at ``max_nested_level`` (20).
3. **Render each top-level token** to HTML on its own (the "blocks": ``<p>…</p>\\n``,
   ``<pre><code …>…</code></pre>\\n``, ``<table>…</table>\\n``, …). Blank lines and link
   reference definitions produce no block. mistune's own renderer is used with three
   overrides: text decodes entities before escaping (below), links whose URL is not an
   absolute ``http``/``https``/``mailto`` URL render as their text only, and images render
   as their alt text unless ``allow_images``.
4. **Sanitize each block** with one reused ``nh3.Cleaner`` (ammonia;
   https://nh3.readthedocs.io/) whose allowlist matches a Tiptap editor with StarterKit +
   Table + Link (:mod:`streamer.render.sanitize`). Sanitizing per block gives the same
   bytes as sanitizing the joined document (checked by the tests on every corpus), so
   :meth:`Renderer.render` ``== "".join(render_blocks(...))`` is honest.

Policy decisions (where a user would ask "where did my …go?"):

* **Links** keep ``href`` (and ``title``) only for absolute ``http:``, ``https:`` and
  ``mailto:`` URLs, after percent-decoding, entity-decoding and removing whitespace and
  control characters (so ``java&#115;cript:``, ``JaVaScRiPt:``, ``java%73cript:``,
  ``java\\tscript:`` are all recognised). Any other link, **including relative ones**
  (``/docs``, ``#top``, ``//host``), renders as its plain text: an answer has no base URL, and
  a relative link would resolve against the host application's own origin. The sanitizer
  enforces the same rule a second time (``url_schemes``, ``url_relative="deny"``) and adds
  ``rel="noopener noreferrer nofollow"`` to every ``<a>``.
* **Images** are off by default (a remote image tells its server who reads the answer): the
  image syntax renders as its alt text, as a screen reader would read it. With
  ``allow_images`` they render as ``<img src alt title>`` for ``http``/``https`` sources only
  (anything else falls back to the alt text).
* **Table alignment**: mistune's ``style="text-align:…"`` on cells is dropped (Tiptap's table
  cells have no such attribute and ``style`` is not worth allowing for it).
* **Code language**: ``class`` survives only on ``<code>`` and only as one
  ``language-<name>`` token (``[A-Za-z0-9_+#.-]``), which is what Tiptap's CodeBlock reads.
* **Entities** (``&amp;``, ``&copy;``, ``&#60;``) are decoded as CommonMark §6.2 says, then
  escaped again: mistune's ``escape=True`` alone would show ``&copy;`` literally.

Around this pipeline: :mod:`streamer.render.sanitize` holds the allowlists, the URL rule
(:func:`~streamer.render.sanitize.url_scheme`) and the cleaner; :mod:`streamer.render.templates`
the mistune-free fast renderers (``render_*_simple``), whose templates are real renders of
samples, checked when the :class:`Renderer` is built.

:class:`RenderConfig` is :class:`streamer.config.RenderConfig`, re-exported here (one type for
the config file and the renderer).

This module is pure: no I/O, no Trio. A :class:`Renderer` holds no per-call state, so one
instance serves the whole process.
"""
from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Final, Protocol

import mistune
from mistune.block_parser import BlockParser
from mistune.core import BlockState, InlineState
from mistune.inline_parser import InlineParser
from mistune.plugins import import_plugin
from mistune.plugins.math import (
    BLOCK_MATH_PATTERN,
    INLINE_MATH_PATTERN,
    math_in_list,
    math_in_quote,
    parse_block_math,
    parse_inline_math,
)
from mistune.plugins.task_lists import TASK_LIST_ITEM
from mistune.util import safe_entity, striptags

from streamer.config import RenderConfig
from streamer.render import templates
from streamer.render.sanitize import (
    ALLOWED_URL_SCHEMES,
    IMAGE_URL_SCHEMES,
    make_cleaner,
    url_scheme,
)

__all__ = ["RefLinks", "RenderConfig", "Renderer", "normalize_markdown"]

#: mistune's link reference definitions: ``unikey(label)`` → ``{"url", "label", "title"?}``.
RefLinks = dict[str, dict[str, Any]]

_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")


def normalize_markdown(markdown: str) -> str:
    """Make ``markdown`` safe to hand to the pipeline (NUL and surrogates, see module doc)."""
    if "\x00" in markdown:
        markdown = markdown.replace("\x00", "\ufffd")
    if _SURROGATE_RE.search(markdown):
        markdown = markdown.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return markdown


#: The containers that end each other: a list item ends at a line that starts a block quote,
#: a block quote's lazy lines at a line that starts a list item.
_CONTAINERS: Final = frozenset({"list", "block_quote"})


class _ParseMethod(Protocol):
    def __call__(self, m: re.Match[str], state: BlockState) -> int | None: ...


class _BlockState(BlockState):
    """mistune's block state, knowing whether one of its own lists or quotes is collecting
    its lines (:class:`_BlockParser`). mistune makes each child state of this class."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        #: a list or block quote of this state is being parsed
        self.open_container = False
        #: it ended at a line that starts the other container
        self.cut = False

    def prepend_token(self, token: dict[str, Any]) -> None:
        # mistune puts a quote that a block ended before that block's token (already
        # parsed); a quote cut at a list has no token after it yet: it is the last
        if self.cut:
            self.append_token(token)
        else:
            super().prepend_token(token)


class _BlockParser(BlockParser):
    """mistune's block parser, with lists and block quotes that end each other in turn.

    mistune (3.4, ``list_parser._collect_list_item_lines``, ``extract_block_quote``) parses
    the block that ends a list item or a quote's lazy lines *inside* that container's call,
    against the same state, so ``"-\\n>b\\n" * n`` nests 8 Python frames per line pair:
    a ``RecursionError`` from about 120 pairs (600 characters), which no
    ``max_nested_level`` bounds (nothing nests); and the blocks come out in the wrong order
    (lists first, then the quotes in reverse), the quote glued to a paragraph before the
    chain. Here the container ends at that line and returns; the loop of its state parses
    the line next, as it parses any block: the recursion depth does not grow with the
    lines, and the blocks stay in document order. Any other block that ends a container (a
    fence, a thematic break, HTML, a heading) is parsed as mistune does: it ends no one.
    """

    state_cls = _BlockState

    def parse_method(self, m: re.Match[str], state: BlockState) -> int | None:
        if (m.lastgroup in _CONTAINERS and isinstance(state, _BlockState)
                and state.open_container):
            state.cut = True
            return state.cursor  # the line's start: the state's loop parses it
        return super().parse_method(m, state)

    def parse_block_quote(self, m: re.Match[str], state: BlockState) -> int:
        return _as_container(super().parse_block_quote, m, state)

    def parse_list(self, m: re.Match[str], state: BlockState) -> int:
        return _as_container(super().parse_list, m, state)


def _as_container(parse: _ParseMethod, m: re.Match[str], state: BlockState) -> int:
    """``parse(m, state)`` with ``state`` marked as parsing a container."""
    if not isinstance(state, _BlockState):
        end = parse(m, state)
    else:
        was = state.open_container, state.cut
        state.open_container, state.cut = True, False
        try:
            end = parse(m, state)
        finally:
            state.open_container, state.cut = was
    assert end is not None  # mistune's list and quote always end somewhere
    return end


class _HTMLRenderer(mistune.HTMLRenderer):
    """mistune's HTML renderer with streamer's link and image policy."""

    def __init__(self, *, allow_images: bool) -> None:
        super().__init__(escape=True)
        self._allow_images = allow_images

    def softbreak(self) -> str:
        # a soft line break renders as the space a browser shows for it: Tiptap/ProseMirror
        # drop a whitespace-only "\n" text node between two inline elements
        # (``<em>a</em>\n<em>b</em>`` became "ab" in the editor)
        return " "

    def block_code(self, code: str, info: str | None = None) -> str:
        # without the code's final newline, as the editor serializes a code block (with it,
        # Tiptap shows an empty last line)
        return super().block_code(code.removesuffix("\n"), info)

    def text(self, text: str) -> str:
        # mistune's escape=True text() escapes ``&`` without decoding entities first, so
        # ``&copy;`` would show as "&copy;" (CommonMark §6.2 decodes it: "©"). Decode, then
        # escape: ``&lt;script&gt;`` still ends up as text, never as a tag.
        return safe_entity(text)

    def link(self, text: str, url: str, title: str | None = None) -> str:
        if url_scheme(url) not in ALLOWED_URL_SCHEMES:
            return text
        return super().link(text, url, title)

    def list(self, text: str, ordered: bool, **attrs: Any) -> str:
        if attrs.get("task"):
            return '<ul data-type="taskList">\n' + text + "</ul>\n"
        return super().list(text, ordered, **attrs)

    def task_list_item(self, text: str, checked: bool = False) -> str:
        state = "true" if checked else "false"
        return f'<li data-type="taskItem" data-checked="{state}">' + text + "</li>\n"

    def inline_math(self, text: str) -> str:
        return f'<span data-type="inline-math" data-latex="{html.escape(text)}"></span>'

    def block_math(self, text: str) -> str:
        return f'<div data-type="block-math" data-latex="{html.escape(text)}"></div>\n'

    def image(self, text: str, url: str, title: str | None = None) -> str:
        if self._allow_images and url_scheme(url) in IMAGE_URL_SCHEMES:
            return super().image(text, url, title)
        # ``text`` is the alt's rendered (escaped) HTML; its text is the alt text.
        return striptags(text)


def _task_mark(item: dict[str, Any]) -> re.Match[str] | None:
    """The ``[ ]``/``[x]`` marker that starts a list item's first paragraph, if any."""
    children = item.get("children") or []
    if item.get("type") != "list_item" or not children:
        return None
    first = children[0]
    if first.get("type") not in ("block_text", "paragraph"):
        return None
    return TASK_LIST_ITEM.match(first.get("text", ""))


def _mark_task_lists(tokens: list[dict[str, Any]]) -> None:
    """Turn bullet lists whose every item starts with a task marker into task lists.

    GFM §5.3 task list items, as Tiptap can hold them: TaskList holds only TaskItems, so a
    list with some plain items (or an ordered one) keeps its markers as text, as CommonMark
    without the extension renders them.
    """
    for tok in tokens:
        if tok.get("type") == "list" and not tok.get("attrs", {}).get("ordered"):
            items = tok.get("children") or []
            marks = [_task_mark(item) for item in items]
            if items and all(marks):
                tok["attrs"]["task"] = True
                for item, mark in zip(items, marks, strict=True):
                    assert mark is not None
                    first = item["children"][0]
                    first["text"] = first["text"][mark.end():]
                    item["type"] = "task_list_item"
                    item["attrs"] = {"checked": mark.group(1) != "[ ]"}
        children = tok.get("children")
        if isinstance(children, list):
            _mark_task_lists(children)


def _task_lists_hook(md: mistune.Markdown, state: BlockState) -> None:
    _mark_task_lists(state.tokens)


def _parse_inline_math(inline: InlineParser, m: re.Match[str], state: InlineState) -> int:
    """mistune's inline math, with ``$$…$$`` inside a paragraph kept inline (mistune makes
    it a block token, which would put a ``<div>`` inside the ``<p>``)."""
    end = parse_inline_math(inline, m, state)
    if state.tokens[-1]["type"] == "block_math":
        state.tokens[-1]["type"] = "inline_math"
    return end


#: LaTeX's display delimiters as a block (``docs/chunker.md``, "Math delimiters"): ``\[…\]``
#: on one line, or ``\[`` alone on a line, the math, ``\]`` at the start of a line; as
#: mistune's ``$$`` block (:data:`BLOCK_MATH_PATTERN`) with the other delimiters.
LATEX_BLOCK_PATTERN: Final = (
    r"^ {0,3}\\\[(?!\\\])(?P<latex_single>[^\n]*?)\\\][ \t]*(?:\n|$)|"
    r"^ {0,3}\\\[[ \t]*\n(?P<latex_multi>[\s\S]*?)\n\\\][ \t]*(?:\n|$)"
)
#: LaTeX's inline delimiters ``\(…\)`` and, inside a paragraph, ``\[…\]``: on one line,
#: not empty (``\(\)`` is two escaped parentheses), a backslash and the character after it
#: taken as a pair (so the first ``\)`` reached that way closes, and ``\\(`` is an escaped
#: backslash then ``(``: mistune's escape rule takes the ``\\`` first).
LATEX_INLINE_PATTERN: Final = (
    r"\\\((?!\\\))(?P<latex_paren>(?:[^\\\n]|\\[^\n])+?)\\\)|"
    r"\\\[(?!\\\])(?P<latex_bracket>(?:[^\\\n]|\\[^\n])+?)\\\]"
)


def _latex_parser(kind: str, first: str, second: str) -> Any:
    """A mistune parse function: the match's group ``first`` (else ``second``), its spaces
    dropped, as a ``kind`` token (``block_math``, ``inline_math``: rendered as ``$$``/``$``)."""
    def parse(parser: Any, m: re.Match[str], state: BlockState | InlineState) -> int:
        text = m.group(first)
        state.append_token({"type": kind, "raw": (text if text is not None
                                                  else m.group(second)).strip()})
        return m.end()
    return parse


def _math(md: mistune.Markdown) -> None:
    """Math as mistune's math plugin parses it (``$…$``, ``$$…$$``), and in LaTeX's
    delimiters (``\\(…\\)``, ``\\[…\\]``, as KaTeX's auto-render reads them), rendered for
    Tiptap. The LaTeX rules come before mistune's escape rule, which would take ``\\(`` as
    an escaped parenthesis."""
    md.block.register("block_math", BLOCK_MATH_PATTERN, parse_block_math, before="list")
    md.block.register("latex_block", LATEX_BLOCK_PATTERN,
                      _latex_parser("block_math", "latex_single", "latex_multi"), before="list")
    md.inline.register("inline_math", INLINE_MATH_PATTERN, _parse_inline_math,
                       before="codespan")
    md.inline.register("latex_inline", LATEX_INLINE_PATTERN,
                       _latex_parser("inline_math", "latex_paren", "latex_bracket"),
                       before="escape")
    math_in_quote(md)
    math_in_list(md)
    for rules in (md.block.block_quote_rules, md.block.list_rules):
        md.block.insert_rule(rules, "latex_block", before="list")


class Renderer:
    """Markdown → sanitized HTML blocks. Build once, reuse (not per request or stream).

    Args:
        config: the render policy; defaults to :class:`RenderConfig()` (no images).

    The instance keeps no per-call state and is safe to share between streams.
    """

    def __init__(self, config: RenderConfig | None = None) -> None:
        self.config = config if config is not None else RenderConfig()
        html_renderer = _HTMLRenderer(allow_images=self.config.allow_images)
        # mistune.create_markdown(escape=True, renderer=html_renderer, plugins=[...]) with
        # the block parser whose lists and quotes end each other without recursion
        md = mistune.Markdown(
            renderer=html_renderer, block=_BlockParser(), inline=InlineParser(),
            plugins=[import_plugin(name) for name in ("table", "strikethrough", "url", _math)],
        )
        md.before_render_hooks.append(_task_lists_hook)
        # The plugins registered their render functions on ``html_renderer`` above. The
        # parser now returns tokens (``renderer=None`` is mistune's "ast" mode) and we render
        # each top-level token ourselves.
        md.renderer = None
        self._md = md
        self._html = html_renderer
        self._cleaner, self.allowed_tags = make_cleaner(allow_images=self.config.allow_images)
        #: the mistune-free fast renderers, their templates checked on samples now
        self._simple = templates.build(self)
        #: quotes nest at least this deep as written (mistune parses deeper ones otherwise
        #: past its ``max_nested_level``); the chunker builds nested quotes up to it
        self.max_quote_depth = next(
            (n for n in (16, 6) if self.render("> " * n + "a\n").count("<blockquote>") == n), 0)

    def sanitize(self, html_text: str) -> str:
        """Sanitize an HTML fragment with this renderer's allowlist (idempotent)."""
        return self._cleaner.clean(html_text)

    def render_part(
        self, markdown: str, ref_links: Mapping[str, Mapping[str, Any]] | None = None
    ) -> tuple[list[str], RefLinks]:
        """Render a part of a document, given the link definitions of the parts before it.

        This is :meth:`render_blocks` for the incremental renderer: a document cut at a line
        boundary into parts renders, part by part, to the same blocks as in one go whenever the
        cut falls between top-level blocks (:class:`~streamer.render.chunker.Chunker` checks that).

        Args:
            markdown: the part's markdown text.
            ref_links: link reference definitions from earlier parts (CommonMark §4.7: they
                apply to the whole document; the first definition of a label wins). Not
                mutated.

        Returns:
            ``(blocks, new_ref_links)``: the sanitized top-level blocks (never empty strings),
            and the definitions this part adds (labels not already in ``ref_links``).
        """
        raw_blocks, defined = self._render_raw(markdown, ref_links)
        clean = self._cleaner.clean
        blocks = [block for block in map(clean, raw_blocks) if block]
        if ref_links:
            new_refs = {k: v for k, v in defined.items() if k not in ref_links}
        else:
            new_refs = defined
        return blocks, new_refs

    def _render_raw(
        self, markdown: str, ref_links: Mapping[str, Mapping[str, Any]] | None = None
    ) -> tuple[list[str], RefLinks]:
        """mistune's HTML per top-level token, before sanitizing (tests compare the two)."""
        state: BlockState = _BlockState()
        if ref_links:
            state.env["ref_links"].update(ref_links)
        tokens, state = self._md.parse(normalize_markdown(markdown), state)
        assert isinstance(tokens, list)  # renderer=None: mistune returns the token list
        render_token = self._html.render_token
        raw_blocks = [raw for raw in (render_token(token, state) for token in tokens) if raw]
        return raw_blocks, state.env["ref_links"]

    def render_inline(
        self, text: str, ref_links: Mapping[str, Mapping[str, Any]] | None = None
    ) -> str:
        """Sanitized HTML of ``text`` as inline content (the inside of a paragraph).

        For the incremental renderer: a paragraph's inline text cut after whitespace, where
        nothing before the cut is left open, renders as the two pieces' inline HTML joined
        (:class:`~streamer.render.chunker.Chunker` relies on that only where the tests verify it).
        Unlike a paragraph, ``text`` is not stripped: leading and trailing whitespace stay.
        """
        state = BlockState()
        if ref_links:
            state.env["ref_links"].update(ref_links)
        tokens = self._md.inline(normalize_markdown(text), state.env)
        return self._cleaner.clean(self._html.render_tokens(tokens, state))

    # -- the fast renderers (streamer.render.templates): the same HTML, without mistune ----

    def render_inline_simple(self, text: str) -> str | None:
        """:meth:`render_inline` of ``text`` without mistune, for the common simple cases
        (:meth:`SimpleRenderer.inline <streamer.render.templates.SimpleRenderer.inline>`),
        or ``None``. O(len)."""
        return self._simple.inline(text)

    def render_content_simple(self, content: str) -> str | None:
        """:meth:`render_inline_simple` of a block's content after its marker, or ``None``
        (:meth:`~streamer.render.templates.SimpleRenderer.content`)."""
        return self._simple.content(content)

    def render_line_simple(self, line: str) -> list[str] | None:
        """:meth:`render_part` of a one-line text (a heading, list item, quote line or
        paragraph of simple content) without mistune, or ``None``
        (:meth:`~streamer.render.templates.SimpleRenderer.line`)."""
        return self._simple.line(line)

    def render_item_simple(self, item: str) -> list[str] | None:
        """:meth:`render_part` of one list item with a nested list of simple items without
        mistune, or ``None`` (:meth:`~streamer.render.templates.SimpleRenderer.item`)."""
        return self._simple.item(item)

    def render_rows_simple(self, rows: str, columns: int) -> str | None:
        """The ``<tr>`` elements of complete simple table rows of ``columns`` cells without
        mistune, or ``None`` (:meth:`~streamer.render.templates.SimpleRenderer.rows`)."""
        return self._simple.rows(rows, columns)

    def _simple_inline_templates(self) -> dict[str, str] | None:
        """The fast renderers' templates, from renders of samples by this renderer (``None``:
        it renders some sample otherwise; the simple paths are off)."""
        return templates.sample_templates(self)

    def render_blocks(self, markdown: str) -> list[str]:
        """The document as its top-level blocks.

        Args:
            markdown: the whole document (any line endings; ``\\r\\n`` and ``\\r`` count as
                ``\\n`` as in CommonMark).

        Returns:
            One string per top-level block, each one complete, sanitized element followed by
            ``"\\n"`` (``"<p>hi</p>\\n"``); no empty strings. Raises nothing for any ``str``.
        """
        return self.render_part(markdown)[0]

    def render(self, markdown: str) -> str:
        """The reference one-shot render: ``"".join(self.render_blocks(markdown))``."""
        return "".join(self.render_part(markdown)[0])
