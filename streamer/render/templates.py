"""The mistune-free fast renderers: the common simple pieces of markdown, from templates.

mistune's fixed cost per call (tens of µs) would dominate the incremental renderer's
per-delta work, so the common simple forms are rendered here without it: inline runs of plain
words, ``**strong**``, ``*em*``, ``~~del~~``, code spans and ``http(s)`` links
(:meth:`SimpleRenderer.inline`); one-line headings, list items, quote lines and paragraphs
of those (:meth:`SimpleRenderer.line`); a list item with a nested list
(:meth:`SimpleRenderer.item`) and table rows (:meth:`SimpleRenderer.rows`). Each form is
narrow enough that CommonMark (§4.2, §5.1-§5.3, §6.1-§6.4) and GFM (§4.10, §6.5) leave it one
reading whatever surrounds it.

The HTML around the text is never written here by hand: :func:`build` renders samples with
the real pipeline when the :class:`~streamer.render.markdown.Renderer` is built and takes each
template from the result; a pipeline that renders a sample otherwise (another mistune, another
link policy) turns that template off, and a method whose template is off returns ``None``
(the caller then renders with mistune). The tests compare every method with the pipeline on
generated inputs.

This module is pure: no I/O, no Trio, no mistune.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Protocol

from streamer.render.ops import escape_text
from streamer.render.sanitize import LINK_REL

__all__ = ["Reference", "SimpleRenderer", "build", "sample_templates"]

#: :meth:`SimpleRenderer.line`'s line starts (in column 0).
_SIMPLE_LINE_RE: Final = re.compile(
    r"(?P<heading>#{1,6} +)|(?P<bullet>[-+*] {1,4})|(?P<ordered>[0-9]{1,9}[.)] {1,4})"
    r"|(?P<quote>> ?)|(?P<paragraph>)")
#: A list item's line for :meth:`SimpleRenderer.item`: its marker, one space, its content.
_SIMPLE_ITEM_RE: Final = re.compile(
    r"(?:(?P<bullet>[-+*])|(?P<number>[0-9]{1,9})(?P<delim>[.)])) (?P<content>.*)")
#: :meth:`SimpleRenderer.inline`'s tokens. Plain text: letters, digits, space and
#: ``, . : ; ? ! ' " ( ) -`` (no ``/``: no bare URL can form; no ``&``: no entity; no
#: delimiter). Emphasis, strong, strikethrough: around words that start and end with a letter
#: or digit (so the opener is left-flanking and the closer right-flanking whatever is around
#: them, §6.2). Code spans without ``` ` & < > $ \ ``, newlines, NUL or surrogates (the
#: pipeline normalizes those). Inline links to absolute
#: ``http(s)`` URLs of unreserved characters and ``/``, with plain text.
_SIMPLE_WORDS = r"[^\W_](?:(?:[^\W_]|[ ,.:;?!'\"()-])*[^\W_])?"
_SIMPLE_INLINE_RE: Final = re.compile(
    r"(?P<plain>(?:[^\W_]|[ ,.:;?!'\"()-])+)"
    rf"|\*\*(?P<strong>{_SIMPLE_WORDS})\*\*(?![*])"
    rf"|\*(?P<em>{_SIMPLE_WORDS})\*(?![*])"
    rf"|~~(?P<del>{_SIMPLE_WORDS})~~(?![~])"
    r"|`(?P<code>[^`\n\r&<>$\\\x00\ud800-\udfff]+)`(?!`)"
    r"|\[(?P<label>(?:[^\W_]|[ ,.:;?'\"-])+)\]\((?P<href>https?://[A-Za-z0-9._~/-]+)\)"
)

#: Inline samples: ``kind -> (markdown, its render_inline, the template)``.
_INLINE_SAMPLES: Final = {
    "strong": (" **Q9**", " <strong>Q9</strong>", "<strong>{}</strong>"),
    "em": (" *Q9*", " <em>Q9</em>", "<em>{}</em>"),
    "del": (" ~~Q9~~", " <del>Q9</del>", "<del>{}</del>"),
    "code": (" `Q9`", " <code>Q9</code>", "<code>{}</code>"),
    "link": (" [Q9](https://example.com/a)",
             f' <a href="https://example.com/a" rel="{LINK_REL}">Q9</a>',
             f'<a href="{{href}}" rel="{LINK_REL}">{{label}}</a>'),
}
#: One-line block samples (:meth:`SimpleRenderer.line`): ``kind -> (markdown, its block,
#: the template)``.
_BLOCK_SAMPLES: Final = {
    "paragraph": ("Q9 *Q8*\n", "<p>Q9 <em>Q8</em></p>\n", "<p>{inner}</p>\n"),
    "bullet": ("- Q9\n", "<ul>\n<li>Q9</li>\n</ul>\n", "<ul>\n<li>{inner}</li>\n</ul>\n"),
    "ordered": ("1. Q9\n", "<ol>\n<li>Q9</li>\n</ol>\n", "<ol>\n<li>{inner}</li>\n</ol>\n"),
    "ol_start": ("7) Q9\n", '<ol start="7">\n<li>Q9</li>\n</ol>\n',
                 '<ol start="{start}">\n<li>{inner}</li>\n</ol>\n'),
    "quote": ("> Q9\n", "<blockquote>\n<p>Q9</p>\n</blockquote>\n",
              "<blockquote>\n<p>{inner}</p>\n</blockquote>\n"),
    "heading": ("### Q9\n", "<h3>Q9</h3>\n", "<h3>{inner}</h3>\n"),
}
_TABLE_SAMPLE: Final = ("| a | b |\n|---|---|\n| Q9 | |\n",
                        "<table>\n<thead>\n<tr>\n  <th>a</th>\n  <th>b</th>\n</tr>\n</thead>\n"
                        "<tbody>\n<tr>\n  <td>Q9</td>\n  <td></td>\n</tr>\n</tbody>\n</table>\n")
#: Nested-item samples (:meth:`SimpleRenderer.item`), compared with the pipeline's blocks.
_ITEM_SAMPLES: Final = ("- Q9\n  - Q8\n  - Q7\n", "12) Q9\n    1) Q8\n    7) Q7\n",
                        "1. Q9\n   * Q8\n")


class Reference(Protocol):
    """The real pipeline, as the self-check needs it (a
    :class:`~streamer.render.markdown.Renderer`)."""

    def render_inline(self, text: str) -> str: ...

    def render_part(self, markdown: str) -> tuple[list[str], object]: ...

    def render(self, markdown: str) -> str: ...


class SimpleRenderer:
    """The fast renderers over one set of templates (see the module docstring).

    Args:
        templates: what each token and block renders to, from :func:`sample_templates`
            (``None``: every method returns ``None``).

    Every method returns the pipeline's HTML for its input, or ``None`` where the input is
    not one of its simple forms (or its template is off). Cost: O(len(input)). Stateless.
    """

    __slots__ = ("_templates",)

    def __init__(self, templates: Mapping[str, str] | None) -> None:
        self._templates = dict(templates) if templates is not None else None

    def drop(self, kind: str) -> None:
        """Turn one template off (a self-check failed for it)."""
        if self._templates is not None:
            self._templates.pop(kind, None)

    def inline(self, text: str) -> str | None:
        """``render_inline(text)`` for a run of plain words, ``**strong**``, ``*em*``,
        ``~~del~~``, code spans and inline ``http(s)`` links in the narrow forms of
        :data:`_SIMPLE_INLINE_RE`, with plain text between any two emphasis-like tokens
        (``**a***b*`` is one delimiter run, not two)."""
        templates = self._templates
        if templates is None or "www." in text:
            return None
        out: list[str] = []
        pos = 0
        prev_delimited = False
        for m in _SIMPLE_INLINE_RE.finditer(text):
            if m.start() != pos:
                return None
            pos = m.end()
            kind = m.lastgroup or ""
            if kind == "plain":
                out.append(m.group())
                prev_delimited = False
                continue
            if kind in ("href", "code"):
                token = self._link_or_code(text, m, templates)
                if token is None:
                    return None
                out.append(token)
                prev_delimited = False
                continue
            if prev_delimited:
                return None
            out.append(templates[kind].format(m.group(kind)))
            prev_delimited = True
        return "".join(out) if pos == len(text) else None

    @staticmethod
    def _link_or_code(text: str, m: re.Match[str], templates: Mapping[str, str]) -> str | None:
        """A link's or a code span's HTML (``None``: the link is an image's)."""
        if m.lastgroup == "href":
            if text[m.start() - 1:m.start()] == "!":
                return None  # an image
            return templates["link"].format(href=m.group("href"), label=m.group("label"))
        code = m.group("code")
        if code[0] == " " and code[-1] == " " and code.strip(" "):
            code = code[1:-1]  # §6.1: one space stripped from each side
        return templates["code"].format(escape_text(code))

    def content(self, content: str) -> str | None:
        """:meth:`inline` of a block's content after its marker (a heading's, an item's, a
        quote's ``>``): it must start with a letter or a simple delimiter (``*``, `````,
        ``[``, ``~``), so it is no other block marker (``- 1. x`` is a list in a list,
        ``> > x`` a quote in a quote)."""
        if not content or not (content[0].isalpha() or content[0] in "*`[~"):
            return None
        return self.inline(content)

    def line(self, line: str) -> list[str] | None:
        """``render_part(line)[0]`` for one line (its newline optional): an ATX heading
        (§4.2), a bullet or ordered list item (§5.2), a block quote line (§5.1) or a
        paragraph, starting in column 0, whose content :meth:`content` renders. A line
        renders no link reference definition, so the part adds none."""
        templates = self._templates
        if templates is None or "\n" in line[:-1]:
            return None
        m = _SIMPLE_LINE_RE.match(line)
        if m is None:
            return None
        inner = self.content(line[m.end():].rstrip(" \n"))
        if inner is None:
            return None
        kind = m.lastgroup or ""
        if kind == "heading":
            level = len(m.group("heading").rstrip(" "))
            return [f"<h{level}>{inner}</h{level}>\n"]
        if kind == "ordered":
            start = int(m.group("ordered").rstrip(" ")[:-1])
            if start != 1:
                return [templates["ol_start"].format(start=start, inner=inner)]
        return [templates[kind].format(inner=inner)]

    def item(self, item: str) -> list[str] | None:
        """``render_part(item)[0]`` for one list item with a nested list.

        ``item`` (its last newline optional) is a bullet or ordered item line starting in
        column 0 with one space after its marker (§5.2), then one or more lines that each
        hold one item of a nested list, indented to the first line's content: all bullets of
        one character, or ordered items of one delimiter, the first numbered 1 (an ordered
        list that starts otherwise cannot interrupt a paragraph, §5.3). Every content is
        :meth:`content` text; only the last line may end in spaces. The incremental renderer
        grows a list's nested items with this, O(item).
        """
        templates = self._templates
        if templates is None or "item" not in templates:
            return None
        lines = (item[:-1] if item.endswith("\n") else item).split("\n")
        if len(lines) < 2:
            return None
        top = _SIMPLE_ITEM_RE.fullmatch(lines[0])
        if top is None or lines[0].endswith((" ", "\t")):
            return None
        nested = self._nested_items(lines, top.start("content"), templates["item"])
        inner = self.content(top.group("content"))
        if nested is None or inner is None:
            return None
        items, sub = nested
        if top.group("bullet"):
            outer = templates["bullet"]
        elif int(top.group("number")) == 1:
            outer = templates["ordered"]
        else:
            outer = templates["ol_start"].replace("{start}", str(int(top.group("number"))))
        return [outer.format(inner=inner + f"<{sub}>\n" + items + f"</{sub}>\n")]

    def _nested_items(self, lines: list[str], indent: int,
                      template: str) -> tuple[str, str] | None:
        """The nested list of :meth:`item` (``lines[1:]``, indented by ``indent``): its
        items' HTML and its tag (``ul``/``ol``), or ``None``."""
        prefix = " " * indent
        nested: list[str] = []
        kind = ""
        for n, line in enumerate(lines[1:], 2):
            if not line.startswith(prefix) or (n < len(lines) and line.endswith((" ", "\t"))):
                return None
            m = _SIMPLE_ITEM_RE.fullmatch(line, indent)
            if m is None or (n == 2 and m.group("number") not in (None, "1")):
                return None
            marker = m.group("bullet") or m.group("delim")
            if kind and marker != kind:
                return None
            kind = marker
            inner = self.content(m.group("content").rstrip(" "))
            if inner is None:
                return None
            nested.append(template.format(inner=inner))
        return "".join(nested), "ul" if kind in ("-", "+", "*") else "ol"

    def rows(self, rows: str, columns: int) -> str | None:
        """The ``<tr>`` elements of complete table rows (GFM §4.10) for a table of
        ``columns`` columns.

        Each line of ``rows`` (each ending in a newline) must start and end with ``|``, hold
        no backslash or backtick (escaped pipes, pipes in code spans), have exactly
        ``columns`` cells (mistune drops a table whose row differs), and every cell must be
        empty or :meth:`inline` text. Alignment never shows (the sanitizer drops it).
        """
        templates = self._templates
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
                html_cell = self.inline(text) if text else ""
                if html_cell is None:
                    return None
                out.append(templates["cell"].format(html_cell))
            out.append(templates["row_close"])
        return "".join(out)


def sample_templates(reference: Reference) -> dict[str, str] | None:
    """The inline, one-line block and table row templates, each checked on a sample rendered
    by ``reference`` (``None``: the pipeline renders some sample otherwise; the simple paths
    are off)."""
    templates: dict[str, str] = {}
    for kind, (sample, expected, template) in _INLINE_SAMPLES.items():
        if reference.render_inline(sample) != expected:
            return None
        templates[kind] = template
    for kind, (sample, expected, template) in _BLOCK_SAMPLES.items():
        if reference.render_part(sample)[0] != [expected]:
            return None
        templates[kind] = template
    if reference.render(_TABLE_SAMPLE[0]) != _TABLE_SAMPLE[1]:
        return None
    templates.update(row_open="<tr>\n", cell="  <td>{}</td>\n", row_close="</tr>\n")
    return templates


def build(reference: Reference) -> SimpleRenderer:
    """The fast renderers of ``reference``'s pipeline, checked on samples at start
    (:func:`sample_templates`; the nested-item template against ``reference.render_part``)."""
    templates = sample_templates(reference)
    if templates is not None:
        templates["item"] = "<li>{inner}</li>\n"
    simple = SimpleRenderer(templates)
    if any(simple.item(sample) != reference.render_part(sample)[0] for sample in _ITEM_SAMPLES):
        simple.drop("item")
    return simple
