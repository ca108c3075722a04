"""The answer's HTML blocks as what a person reads in a terminal: ``rich`` renderables.

Why from the HTML and not from markdown: while an answer streams, the protocol carries only
the document's HTML blocks (``chunk``, ``snapshot``; protocol.md, "Document operations");
the source markdown arrives once, in ``stream_complete.markdown``. Those blocks are the
server's one rendering (mistune + math + task lists, then the nh3 sanitizer), complete and
well-formed after every op, and their joined final form *is* the answer (invariant 2). Parsing
the markdown again with another parser (``rich.markdown`` uses markdown-it) would show a
different document wherever the two dialects differ (math, task lists, tables' edge cases,
what the server held back), and could not show the answer until it ended. The sanitizer's tag
set is closed (:data:`streamer.render.sanitize.ALLOWED_TAGS`), so a direct mapping of each
element is total: ``table`` → a bordered :class:`rich.table.Table`, ``ul``/``ol`` → items
with their markers (``•``, ``1.``, ``[x]``), ``pre><code class="language-…"`` → a
:class:`rich.syntax.Syntax` highlighted by Pygments, math → its LaTeX source (``$x^2$``,
display math between ``$$`` lines), links with their URL, headings, quotes, rules.

Pure: no I/O; parsing with the standard library's :class:`html.parser.HTMLParser`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.rule import Rule
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

__all__ = ["Node", "Prefixed", "parse_html", "render_block", "render_blocks", "tail_html"]

_VOID = frozenset({"br", "hr", "img"})
_BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "ul", "ol",
                     "li", "hr", "table", "div"})
_INLINE_STYLES = {"strong": "bold", "em": "italic", "del": "strike", "s": "strike",
                  "code": "bold cyan"}
_HEADING_STYLES = {"h1": "bold underline", "h2": "bold", "h3": "bold italic",
                   "h4": "italic", "h5": "italic", "h6": "italic dim"}
_BULLETS = ("•", "◦", "▪")
_SPACES_RE = re.compile(r"[ \t\r\n\f]+")
_LANGUAGE_RE = re.compile(r"language-([A-Za-z0-9_+#.\-]+)")
#: the style of math shown as its LaTeX source
MATH_STYLE = "cyan"
#: Pygments' theme for code blocks (``rich.syntax``)
CODE_THEME = "monokai"


@dataclass
class Node:
    """One element: its tag, attributes and children (nodes and text, in order)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        """All the text inside, as it stands (no whitespace folding)."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    """Builds a :class:`Node` tree; tolerant of what a well-formed block never has (a stray
    end tag closes up to its element, or is ignored)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(html_text: str) -> Node:
    """The element tree of an HTML fragment (one block or several), under a ``#root`` node."""
    builder = _TreeBuilder()
    builder.feed(html_text)
    builder.close()
    return builder.root


# ------------------------------------------------------------------ inline content


def _inline(children: Iterable[Node | str], text: Text, style: str = "") -> None:
    """Append inline content to ``text``: whitespace folded as a browser does, marks as
    styles, math as its LaTeX source, links with their URL."""
    for child in children:
        if isinstance(child, str):
            _append_folded(text, child, style)
        elif child.tag == "br":
            text.rstrip()
            text.append("\n")
        elif child.tag == "span" and child.attrs.get("data-type") == "inline-math":
            text.append(f"${child.attrs.get('data-latex', '')}$", style=MATH_STYLE)
        elif child.tag == "a":
            _link(child, text, style)
        elif child.tag == "img":
            text.append(f"[image: {child.attrs.get('alt') or child.attrs.get('src', '')}]",
                        style="dim")
        else:
            extra = _INLINE_STYLES.get(child.tag, "")
            _inline(child.children, text, f"{style} {extra}".strip())


def _append_folded(text: Text, data: str, style: str) -> None:
    folded = _SPACES_RE.sub(" ", data)
    if folded.startswith(" ") and (not text.plain or text.plain[-1] in " \n"):
        folded = folded[1:]
    if folded:
        text.append(folded, style=style or None)


def _link(node: Node, text: Text, style: str) -> None:
    href = node.attrs.get("href", "")
    start = len(text)
    _inline(node.children, text, style)
    label = text.plain[start:]
    text.stylize(Style(underline=True, color="blue", link=href or None), start)
    if href and label.strip() != href and href.removeprefix("mailto:") != label.strip():
        text.append(f" <{href}>", style="dim")


def inline_text(node: Node, style: str = "") -> Text:
    """The inline content of ``node`` as one styled :class:`Text` (edges trimmed)."""
    text = Text()
    _inline(node.children, text, style)
    text.rstrip()
    return text


# ------------------------------------------------------------------ blocks


class Prefixed:
    """A renderable drawn ``len(first)`` columns in, with ``first`` before its first line and
    ``rest`` before the others (a list marker and its hanging indent, a quote's bar)."""

    def __init__(self, body: RenderableType, first: Text, rest: Text) -> None:
        self.body, self.first, self.rest = body, first, rest

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        indent = max(self.first.cell_len, self.rest.cell_len)
        width = max(1, options.max_width - indent)
        lines = console.render_lines(self.body, options.update(width=width), pad=False)
        for number, line in enumerate(lines):
            prefix = self.first if number == 0 else self.rest
            yield from prefix.render(console)
            yield Segment(" " * (indent - prefix.cell_len))
            yield from line
            yield Segment.line()


def _contents(children: list[Node | str], depth: int) -> list[RenderableType]:
    """Mixed block and inline children (a list item's): inline runs become paragraphs."""
    out: list[RenderableType] = []
    run: list[Node | str] = []

    def flush() -> None:
        text = Text()
        _inline(run, text)
        text.rstrip()
        if text.plain.strip():
            out.append(text)
        run.clear()

    for child in children:
        if isinstance(child, Node) and child.tag in _BLOCKS:
            flush()
            out.extend(_block(child, depth))
        else:
            run.append(child)
    flush()
    return out


def _list(node: Node, depth: int) -> Iterator[RenderableType]:
    ordered = node.tag == "ol"
    number = int(node.attrs.get("start", "1") or 1) if ordered else 0
    items = [c for c in node.children if isinstance(c, Node) and c.tag == "li"]
    width = len(f"{number + len(items) - 1}.") if ordered else 1
    for item in items:
        if item.attrs.get("data-type") == "taskItem":
            checked = item.attrs.get("data-checked") == "true"
            marker = Text("[x]" if checked else "[ ]", style="green" if checked else "")
        elif ordered:
            marker = Text(f"{number}.".rjust(width))
            number += 1
        else:
            marker = Text(_BULLETS[depth % len(_BULLETS)], style="bold")
        marker.append(" ")
        body = _contents(item.children, depth + 1)
        yield Prefixed(Group(*body) if body else Text(""), marker, Text(" " * marker.cell_len))


def _table(node: Node) -> Table:
    table = Table(box=box.SQUARE, show_lines=False, header_style="bold", expand=False)
    rows: list[list[Text]] = []
    header: list[Text] = []
    for section in (c for c in node.children if isinstance(c, Node)):
        trs = [section] if section.tag == "tr" else [
            r for r in section.children if isinstance(r, Node) and r.tag == "tr"]
        for tr in trs:
            cells = [inline_text(c) for c in tr.children
                     if isinstance(c, Node) and c.tag in ("th", "td")]
            if section.tag == "thead" and not header:
                header = cells
            else:
                rows.append(cells)
    columns = max([len(header), *(len(r) for r in rows)] or [0])
    for index in range(columns):
        table.add_column(header[index] if index < len(header) else "")
    table.show_header = bool(header)
    for row in rows:
        table.add_row(*row, *([""] * (columns - len(row))))
    return table


def _code(node: Node) -> Syntax:
    code = next((c for c in node.children if isinstance(c, Node) and c.tag == "code"), node)
    match = _LANGUAGE_RE.search(code.attrs.get("class", ""))
    source = code.text().rstrip("\n")
    return Syntax(source, match.group(1) if match else "text", theme=CODE_THEME,
                  word_wrap=True, background_color="default")


def _math_block(latex: str) -> Text:
    latex = latex.strip("\n")
    if "\n" in latex:
        return Text(f"$$\n{latex}\n$$", style=MATH_STYLE)
    return Text(f"    $$ {latex} $$", style=MATH_STYLE)


def _block(node: Node, depth: int = 0) -> list[RenderableType]:
    """One element's renderables (``[]`` for one that shows nothing)."""
    tag = node.tag
    if tag in _HEADING_STYLES:
        return [inline_text(node, _HEADING_STYLES[tag])]
    if tag == "pre":
        return [_code(node)]
    if tag in ("ul", "ol"):
        return [Group(*_list(node, depth))]
    if tag == "table":
        return [_table(node)]
    if tag == "hr":
        return [Rule(style="dim")]
    if tag == "blockquote":
        bar = Text("▌ ", style="dim")
        return [Prefixed(Group(*_spaced(_contents(node.children, depth))), bar, bar)]
    if tag == "div" and node.attrs.get("data-type") == "block-math":
        return [_math_block(node.attrs.get("data-latex", ""))]
    if tag in ("#root", "div", "li"):
        return _spaced(_contents(node.children, depth))
    text = inline_text(node)
    return [text] if text.plain.strip() else []


def _spaced(parts: list[RenderableType]) -> list[RenderableType]:
    """Top-level blocks with a blank line between them, as a page shows paragraphs."""
    out: list[RenderableType] = []
    for part in parts:
        if out:
            out.append(Text(""))
        out.append(part)
    return out


@lru_cache(maxsize=256)
def render_block(html_text: str) -> tuple[RenderableType, ...]:
    """One block's renderables (cached by its HTML: a block that did not change is not
    parsed again). ``""`` (a block folded into another) shows nothing: ``()``."""
    return tuple(_block(parse_html(html_text))) if html_text.strip() else ()


def render_blocks(blocks: Iterable[str]) -> Group:
    """Several blocks, a blank line between two that show something."""
    parts = [Group(*r) for r in map(render_block, blocks) if r]
    return Group(*_spaced(list(parts)))


def _nth_last(text: str, needle: str, count: int, floor: int) -> int:
    """Where the ``count``-th last ``needle`` after ``floor`` starts, or -1 (fewer)."""
    end = len(text)
    for _ in range(count):
        end = text.rfind(needle, floor, end)
        if end < 0:
            return -1
    return end


def tail_html(block: str, rows: int) -> str:
    """A growing table or code block cut to its last ``rows`` rows or lines (a table keeps
    its header), still well-formed: what a live view of at most ``rows`` lines needs, found
    from the block's end in O(``rows``) string searches instead of parsing it all (a
    2,000-row table takes seconds to parse and lay out). Other blocks come back whole.
    """
    if block.startswith("<table>"):
        head_end = block.find("</thead>")
        head_end = head_end + len("</thead>") if head_end >= 0 else len("<table>")
        cut = _nth_last(block, "<tr>", rows, head_end)
        if cut > head_end:
            return f"{block[:head_end]}\n<tbody>\n{block[cut:]}"
    elif block.startswith("<pre><code"):
        head_end = block.find(">", len("<pre><code")) + 1
        cut = _nth_last(block, "\n", rows + 1, head_end)
        if cut > head_end:
            return block[:head_end] + block[cut + 1:]
    return block
