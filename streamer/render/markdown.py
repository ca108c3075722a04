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
   blocks also in quotes and lists) rendered the way Tiptap's Mathematics extension parses
   it: ``<span data-type="inline-math" data-latex="…">`` and ``<div data-type="block-math"
   data-latex="…">``; a bullet list whose every item starts ``[ ]``/``[x]`` renders as
   Tiptap's TaskList (``<ul data-type="taskList">``, ``<li data-type="taskItem"
   data-checked="true|false">``). mistune
   follows CommonMark closely but not completely (see the tests and the chunker's notes).
   Raw HTML in the markdown is escaped: it shows as text, it is never passed through.
3. **Render each top-level token** to HTML on its own (the "blocks": ``<p>…</p>\\n``,
   ``<pre><code …>…</code></pre>\\n``, ``<table>…</table>\\n``, …). Blank lines and link
   reference definitions produce no block. mistune's own renderer is used with three
   overrides: text decodes entities before escaping (below), links whose URL is not an
   absolute ``http``/``https``/``mailto`` URL render as their text only, and images render
   as their alt text unless ``allow_images``.
4. **Sanitize each block** with one reused ``nh3.Cleaner`` (ammonia;
   https://nh3.readthedocs.io/) whose allowlist matches a Tiptap editor with StarterKit +
   Table + Link (:data:`ALLOWED_TAGS`, :data:`ALLOWED_ATTRIBUTES`). Sanitizing per block
   gives the same bytes as sanitizing the joined document (checked by the tests on every
   corpus), so :meth:`Renderer.render` ``== "".join(render_blocks(...))`` is honest.

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

:class:`RenderConfig` is :class:`streamer.config.RenderConfig`, re-exported here (one type for
the config file and the renderer).

This module is pure: no I/O, no Trio. A :class:`Renderer` holds no per-call state, so one
instance serves the whole process.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

import mistune
import nh3
from mistune.core import BlockState, InlineState
from mistune.inline_parser import InlineParser
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
from streamer.render.ops import escape_text

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "LINK_REL",
    "RefLinks",
    "RenderConfig",
    "Renderer",
]

#: Elements a Tiptap editor with StarterKit + Table + Link + TaskList/TaskItem + Mathematics
#: can hold (``img`` is added only with ``allow_images``). ``del`` and ``s`` both map to
#: StarterKit's Strike mark; ``span``/``div`` only carry math (:data:`DATA_TYPES`).
ALLOWED_TAGS: Final[frozenset[str]] = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "hr", "br", "a",
    "table", "thead", "tbody", "tr", "th", "td",
    "span", "div",
})

#: Attributes per element. ``rel`` on ``a`` is not listed: the sanitizer sets it itself.
ALLOWED_ATTRIBUTES: Final[Mapping[str, frozenset[str]]] = {
    "a": frozenset({"href", "title"}),
    "ol": frozenset({"start"}),
    "th": frozenset({"colspan", "rowspan"}),
    "td": frozenset({"colspan", "rowspan"}),
    "code": frozenset({"class"}),
    "ul": frozenset({"data-type"}),
    "li": frozenset({"data-type", "data-checked"}),
    "span": frozenset({"data-type", "data-latex"}),
    "div": frozenset({"data-type", "data-latex"}),
}

#: The one ``data-type`` value each element may carry: Tiptap's parse rules
#: (``@tiptap/extension-list`` TaskList ``ul[data-type="taskList"]``, TaskItem
#: ``li[data-type="taskItem"]`` with ``data-checked``; ``@tiptap/extension-mathematics``
#: ``span[data-type="inline-math"]`` / ``div[data-type="block-math"]`` with ``data-latex``).
DATA_TYPES: Final[Mapping[str, str]] = {
    "ul": "taskList", "li": "taskItem", "span": "inline-math", "div": "block-math",
}

#: ``img`` and its attributes, allowed only with ``RenderConfig.allow_images``.
IMAGE_ATTRIBUTES: Final[frozenset[str]] = frozenset({"src", "alt", "title"})

#: The only URL schemes a link may carry (images: ``http``/``https`` only).
ALLOWED_URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https", "mailto"})
IMAGE_URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https"})

#: Added to every ``<a>`` by the sanitizer.
LINK_REL: Final = "noopener noreferrer nofollow"

#: mistune's link reference definitions: ``unikey(label)`` → ``{"url", "label", "title"?}``.
RefLinks = dict[str, dict[str, Any]]

_LANGUAGE_CLASS_RE: Final = re.compile(r"language-[A-Za-z0-9_+#.\-]+")
_DIGITS_RE: Final = re.compile(r"[0-9]{1,9}")
_SCHEME_RE: Final = re.compile(r"([a-z][a-z0-9+.\-]*):")
#: What a browser ignores inside a URL: ASCII whitespace and C0/C1 controls (WHATWG URL).
_URL_IGNORED_RE: Final = re.compile(r"[\x00-\x20\x7f-\x9f]+")
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
#: percent-decoding rounds before a URL is judged (``%2573`` → ``%73`` → ``s``)
_URL_DECODE_ROUNDS: Final = 4

#: :meth:`Renderer.render_inline_simple`'s tokens. Plain text: letters, digits, space and
#: ``, . : ; ? ! ' " ( ) -`` (no ``/``: no bare URL can form; no ``&``: no entity; no
#: delimiter). Emphasis, strong, strikethrough: around words that start and end with a letter
#: or digit (so the opener is left-flanking and the closer right-flanking whatever is around
#: them, §6.2). Code spans without ``` ` & < > $ \ ``, newlines. Inline links to absolute
#: ``http(s)`` URLs of unreserved characters and ``/``, with plain text.
#: :meth:`Renderer.render_line_simple`'s line starts (in column 0).
_SIMPLE_LINE_RE: Final = re.compile(
    r"(?P<heading>#{1,6} +)|(?P<bullet>[-+*] {1,4})|(?P<ordered>[0-9]{1,9}[.)] {1,4})"
    r"|(?P<quote>> ?)|(?P<paragraph>)")
#: A list item's line for :meth:`Renderer.render_item_simple`: its marker, one space, its
#: content.
_SIMPLE_ITEM_RE: Final = re.compile(
    r"(?:(?P<bullet>[-+*])|(?P<number>[0-9]{1,9})(?P<delim>[.)])) (?P<content>.*)")
_SIMPLE_WORDS = r"[^\W_](?:(?:[^\W_]|[ ,.:;?!'\"()-])*[^\W_])?"
_SIMPLE_INLINE_RE: Final = re.compile(
    r"(?P<plain>(?:[^\W_]|[ ,.:;?!'\"()-])+)"
    rf"|\*\*(?P<strong>{_SIMPLE_WORDS})\*\*(?![*])"
    rf"|\*(?P<em>{_SIMPLE_WORDS})\*(?![*])"
    rf"|~~(?P<del>{_SIMPLE_WORDS})~~(?![~])"
    r"|`(?P<code>[^`\n\r&<>$\\]+)`(?!`)"
    r"|\[(?P<label>(?:[^\W_]|[ ,.:;?'\"-])+)\]\((?P<href>https?://[A-Za-z0-9._~/-]+)\)"
)


def url_scheme(url: str) -> str | None:
    """The scheme a browser would see in ``url``, lower-cased, or ``None`` if it is relative.

    The URL is percent-decoded (repeatedly), entity-decoded and stripped of whitespace and
    control characters first, so encoding tricks cannot hide a ``javascript:`` scheme.
    """
    for _ in range(_URL_DECODE_ROUNDS):
        decoded = html.unescape(unquote(url))
        if decoded == url:
            break
        url = decoded
    url = _URL_IGNORED_RE.sub("", url).lower()
    m = _SCHEME_RE.match(url)
    return m.group(1) if m else None


def normalize_markdown(markdown: str) -> str:
    """Make ``markdown`` safe to hand to the pipeline (NUL and surrogates, see module doc)."""
    if "\x00" in markdown:
        markdown = markdown.replace("\x00", "\ufffd")
    if _SURROGATE_RE.search(markdown):
        markdown = markdown.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return markdown


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


def _math(md: mistune.Markdown) -> None:
    """Math as mistune's math plugin parses it (``$…$``, ``$$…$$``), rendered for Tiptap."""
    md.block.register("block_math", BLOCK_MATH_PATTERN, parse_block_math, before="list")
    md.inline.register("inline_math", INLINE_MATH_PATTERN, _parse_inline_math,
                       before="codespan")
    math_in_quote(md)
    math_in_list(md)


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """nh3 callback: keep an attribute value, or ``None`` to drop the attribute."""
    if attr == "data-type":
        return value if DATA_TYPES.get(tag) == value else None
    if attr == "data-checked":
        return value if value in ("true", "false") else None
    if attr == "class":
        return value if tag == "code" and _LANGUAGE_CLASS_RE.fullmatch(value) else None
    if attr in ("start", "colspan", "rowspan"):
        return value if _DIGITS_RE.fullmatch(value) else None
    return value


class Renderer:
    """Markdown → sanitized HTML blocks. Build once, reuse (not per request or stream).

    Args:
        config: the render policy; defaults to :class:`RenderConfig()` (no images).

    The instance keeps no per-call state and is safe to share between streams.
    """

    def __init__(self, config: RenderConfig | None = None) -> None:
        self.config = config if config is not None else RenderConfig()
        html_renderer = _HTMLRenderer(allow_images=self.config.allow_images)
        md = mistune.create_markdown(
            escape=True, renderer=html_renderer,
            plugins=["table", "strikethrough", "url", _math],  # type: ignore[list-item]
        )
        md.before_render_hooks.append(_task_lists_hook)
        # The plugins registered their render functions on ``html_renderer`` above. The
        # parser now returns tokens (``renderer=None`` is mistune's "ast" mode) and we render
        # each top-level token ourselves.
        md.renderer = None
        self._md = md
        self._html = html_renderer

        tags = set(ALLOWED_TAGS)
        attributes = {tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}
        url_schemes = set(ALLOWED_URL_SCHEMES)
        if self.config.allow_images:
            tags.add("img")
            attributes["img"] = set(IMAGE_ATTRIBUTES)
        self.allowed_tags: frozenset[str] = frozenset(tags)
        self._cleaner = nh3.Cleaner(
            tags=tags,
            clean_content_tags={"script", "style"},
            attributes=attributes,
            attribute_filter=_attribute_filter,
            strip_comments=True,
            link_rel=LINK_REL,
            url_schemes=url_schemes,
            url_relative="deny",
        )
        self._simple_templates = self._simple_inline_templates()
        if self._simple_templates is not None:  # render_item_simple's nested items
            self._simple_templates["item"] = "<li>{inner}</li>\n"
            for sample in ("- Q9\n  - Q8\n  - Q7\n", "12) Q9\n    1) Q8\n    7) Q7\n",
                           "1. Q9\n   * Q8\n"):
                if self.render_item_simple(sample) != self.render_part(sample)[0]:
                    del self._simple_templates["item"]
                    break
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
        state = BlockState()
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

    def render_inline_simple(self, text: str) -> str | None:
        """:meth:`render_inline` of ``text`` without mistune, for the common simple cases,
        or ``None`` where ``text`` is not one of them.

        ``text`` must be a run of plain words, ``**strong**``, ``*em*``, ``~~del~~``, code
        spans and inline ``http(s)`` links, in the narrow forms of :data:`_SIMPLE_INLINE_RE`
        (where CommonMark §6.1-§6.4 and GFM §6.5 leave one reading whatever surrounds them),
        with plain text between any two emphasis-like tokens (``**a***b*`` is one delimiter
        run, not two). The HTML of each token is the real pipeline's, taken from a sample
        rendered by :meth:`render_inline` when the renderer was built; a pipeline that
        renders a sample otherwise (another mistune, another link policy) disables this.
        The tests compare it with :meth:`render_inline` on generated inputs. Cost: O(len).
        """
        templates = self._simple_templates
        if templates is None or "www." in text:
            return None
        out: list[str] = []
        pos = 0
        prev_delimited = False
        for m in _SIMPLE_INLINE_RE.finditer(text):
            if m.start() != pos:
                return None
            pos = m.end()
            kind = m.lastgroup
            if kind == "plain":
                out.append(m.group())
                prev_delimited = False
                continue
            if kind == "href":  # the link: label and destination
                if text[m.start() - 1:m.start()] == "!":
                    return None  # an image
                out.append(templates["link"].format(href=m.group("href"),
                                                    label=m.group("label")))
                prev_delimited = False
                continue
            if kind == "code":
                code = m.group("code")
                if code[0] == " " and code[-1] == " " and code.strip(" "):
                    code = code[1:-1]  # §6.1: one space stripped from each side
                out.append(templates["code"].format(escape_text(code)))
                prev_delimited = False
                continue
            if prev_delimited:
                return None
            out.append(templates[kind or ""].format(m.group(kind or "")))
            prev_delimited = True
        if pos != len(text):
            return None
        return "".join(out)

    def render_content_simple(self, content: str) -> str | None:
        """:meth:`render_inline_simple` of a block's content after its marker (a heading's,
        an item's, a quote's ``>``), or ``None``: it must start with a letter or a simple
        delimiter (``*``, `````, ``[``, ``~``), so it is no other block marker (``- 1. x`` is
        a list in a list, ``> > x`` a quote in a quote)."""
        if not content or not (content[0].isalpha() or content[0] in "*`[~"):
            return None
        return self.render_inline_simple(content)

    def render_line_simple(self, line: str) -> list[str] | None:
        """:meth:`render_part` of a one-line text without mistune, for the common simple
        cases, or ``None``.

        ``line`` (one line, its newline optional) is an ATX heading (§4.2), a bullet or
        ordered list item (§5.2), a block quote line (§5.1) or a paragraph, starting in
        column 0, whose content :meth:`render_content_simple` renders. The block's HTML
        around the content is the pipeline's own, from samples rendered when the renderer
        was built. A line renders no link reference definition, so the definitions the part
        adds are none.
        """
        templates = self._simple_templates
        if templates is None or "\n" in line[:-1]:
            return None
        m = _SIMPLE_LINE_RE.match(line)
        if m is None:
            return None
        inner = self.render_content_simple(line[m.end():].rstrip(" \n"))
        if inner is None:
            return None
        kind = m.lastgroup
        if kind == "heading":
            level = len(m.group("heading").rstrip(" "))
            return [f"<h{level}>{inner}</h{level}>\n"]
        if kind == "ordered":
            start = int(m.group("ordered").rstrip(" ")[:-1])
            if start != 1:
                return [templates["ol_start"].format(start=start, inner=inner)]
        return [templates[kind or ""].format(inner=inner)]

    def render_item_simple(self, item: str) -> list[str] | None:
        """:meth:`render_part` of one list item with a nested list, without mistune, for the
        common simple case, or ``None``.

        ``item`` (its last newline optional) is a bullet or ordered item line starting in
        column 0 with one space after its marker (§5.2), then one or more lines that each
        hold one item of a nested list, indented to the first line's content: all bullets of
        one character, or ordered items of one delimiter, the first numbered 1 (an ordered
        list that starts otherwise cannot interrupt a paragraph, §5.3). Every content is
        :meth:`render_content_simple` text; only the last line may end in spaces. The HTML
        around the contents is the pipeline's own, checked on samples when the renderer was
        built (as :meth:`render_line_simple`'s): the incremental renderer grows a list's
        nested items with this, O(item).
        """
        templates = self._simple_templates
        if templates is None or "item" not in templates:
            return None
        lines = (item[:-1] if item.endswith("\n") else item).split("\n")
        if len(lines) < 2:
            return None
        top = _SIMPLE_ITEM_RE.fullmatch(lines[0])
        if top is None or lines[0].endswith((" ", "\t")):
            return None
        indent = " " * top.start("content")
        nested: list[str] = []
        kind = ""
        for n, line in enumerate(lines[1:], 2):
            if not line.startswith(indent) or (n < len(lines) and line.endswith((" ", "\t"))):
                return None
            m = _SIMPLE_ITEM_RE.fullmatch(line, len(indent))
            if m is None or (n == 2 and m.group("number") not in (None, "1")):
                return None
            marker = m.group("bullet") or m.group("delim")
            if kind and marker != kind:
                return None
            kind = marker
            inner = self.render_content_simple(m.group("content").rstrip(" "))
            if inner is None:
                return None
            nested.append(templates["item"].format(inner=inner))
        inner = self.render_content_simple(top.group("content"))
        if inner is None:
            return None
        if top.group("bullet"):
            outer = templates["bullet"]
        elif int(top.group("number")) == 1:
            outer = templates["ordered"]
        else:
            outer = templates["ol_start"].replace("{start}", str(int(top.group("number"))))
        sub = "ul" if kind in ("-", "+", "*") else "ol"
        return [outer.format(inner=inner + f"<{sub}>\n" + "".join(nested) + f"</{sub}>\n")]

    def render_rows_simple(self, rows: str, columns: int) -> str | None:
        """The ``<tr>`` elements of complete table rows (GFM §4.10) without mistune, for a
        table of ``columns`` columns, or ``None`` where a row is not simple.

        Each line of ``rows`` (each ending in a newline) must start and end with ``|``, hold
        no backslash or backtick (escaped pipes, pipes in code spans), have exactly
        ``columns`` cells (mistune drops a table whose row differs), and every cell must be
        empty or :meth:`render_inline_simple` text. The row markup is the pipeline's own
        (from a sample rendered at start); alignment never shows (the sanitizer drops it).
        """
        templates = self._simple_templates
        if templates is None or not rows.endswith("\n") or "\\" in rows or "`" in rows:
            return None
        out: list[str] = []
        for line in rows[:-1].split("\n"):
            body = line.strip(" ")
            if len(body) < 2 or body[0] != "|" or body[-1] != "|":
                return None
            cells = body[1:-1].split("|")
            if len(cells) != columns:
                return None
            out.append(templates["row_open"])
            for cell in cells:
                text = cell.strip(" ")
                html_cell = self.render_inline_simple(text) if text else ""
                if html_cell is None:
                    return None
                out.append(templates["cell"].format(html_cell))
            out.append(templates["row_close"])
        return "".join(out)

    def _simple_inline_templates(self) -> dict[str, str] | None:
        """What :meth:`render_inline_simple` emits per token, from real renders of samples
        (``None``: the pipeline renders some sample otherwise; the simple path is off)."""
        samples = {
            "strong": (" **Q9**", " <strong>Q9</strong>", "<strong>{}</strong>"),
            "em": (" *Q9*", " <em>Q9</em>", "<em>{}</em>"),
            "del": (" ~~Q9~~", " <del>Q9</del>", "<del>{}</del>"),
            "code": (" `Q9`", " <code>Q9</code>", "<code>{}</code>"),
            "link": (" [Q9](https://example.com/a)",
                     f' <a href="https://example.com/a" rel="{LINK_REL}">Q9</a>',
                     f'<a href="{{href}}" rel="{LINK_REL}">{{label}}</a>'),
        }
        templates: dict[str, str] = {}
        for kind, (sample, expected, template) in samples.items():
            if self.render_inline(sample) != expected:
                return None
            templates[kind] = template
        blocks = {  # render_line_simple's blocks
            "paragraph": ("Q9 *Q8*\n", "<p>Q9 <em>Q8</em></p>\n", "<p>{inner}</p>\n"),
            "bullet": ("- Q9\n", "<ul>\n<li>Q9</li>\n</ul>\n", "<ul>\n<li>{inner}</li>\n</ul>\n"),
            "ordered": ("1. Q9\n", "<ol>\n<li>Q9</li>\n</ol>\n",
                        "<ol>\n<li>{inner}</li>\n</ol>\n"),
            "ol_start": ("7) Q9\n", '<ol start="7">\n<li>Q9</li>\n</ol>\n',
                         '<ol start="{start}">\n<li>{inner}</li>\n</ol>\n'),
            "quote": ("> Q9\n", "<blockquote>\n<p>Q9</p>\n</blockquote>\n",
                      "<blockquote>\n<p>{inner}</p>\n</blockquote>\n"),
            "heading": ("### Q9\n", "<h3>Q9</h3>\n", "<h3>{inner}</h3>\n"),
        }
        for kind, (sample, expected, template) in blocks.items():
            if self.render_part(sample)[0] != [expected]:
                return None
            templates[kind] = template
        table = self.render("| a | b |\n|---|---|\n| Q9 | |\n")
        if table != ("<table>\n<thead>\n<tr>\n  <th>a</th>\n  <th>b</th>\n</tr>\n</thead>\n"
                     "<tbody>\n<tr>\n  <td>Q9</td>\n  <td></td>\n</tr>\n</tbody>\n</table>\n"):
            return None
        templates.update(row_open="<tr>\n", cell="  <td>{}</td>\n", row_close="</tr>\n")
        return templates

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
