"""The one-shot pipeline (``streamer.render``): goldens, block cutting, and threats.

Security tests are grouped by threat (as mistune's and nh3's own suites are): script
injection, event handlers, dangerous URL schemes (with case, entity, percent and whitespace
tricks), images, attribute injection.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from streamer.render.markdown import RenderConfig, Renderer, normalize_markdown
from streamer.render.sanitize import LINK_REL, url_scheme

HERE = Path(__file__).resolve().parents[1]
SPEC_PATH = Path(__file__).resolve().parents[1] / "corpus" / "commonmark-spec.json"
ANSWERS = sorted((HERE / "corpus" / "answers").glob("*.md"))
XSS_PATH = HERE / "corpus" / "xss.md"

R = Renderer()
R_IMG = Renderer(RenderConfig(allow_images=True))
REL = f'rel="{LINK_REL}"'


def _corpus() -> list[tuple[str, str]]:
    docs = [(p.stem, p.read_text(encoding="utf-8")) for p in ANSWERS]
    docs.append(("xss", XSS_PATH.read_text(encoding="utf-8")))
    if SPEC_PATH.exists():
        spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
        docs += [(f"spec-{ex['example']}", ex["markdown"]) for ex in spec]
    return docs


CORPUS = _corpus()


# -- goldens -------------------------------------------------------------------------------

GOLDEN = [
    ("headings", "# One\n## Two\n###### Six\n", "<h1>One</h1>\n<h2>Two</h2>\n<h6>Six</h6>\n"),
    ("setext", "Title\n=====\n", "<h1>Title</h1>\n"),
    (
        "nested lists",
        "- a\n  - b\n    - c\n- d\n",
        "<ul>\n<li>a<ul>\n<li>b<ul>\n<li>c</li>\n</ul>\n</li>\n</ul>\n</li>\n<li>d</li>\n</ul>\n",
    ),
    ("ordered start", "3. x\n4. y\n", '<ol start="3">\n<li>x</li>\n<li>y</li>\n</ol>\n'),
    (
        "table, alignment dropped",
        "| Name | Age |\n|:-----|----:|\n| **Al** | 3 |\n",
        "<table>\n<thead>\n<tr>\n  <th>Name</th>\n  <th>Age</th>\n</tr>\n</thead>\n"
        "<tbody>\n<tr>\n  <td><strong>Al</strong></td>\n  <td>3</td>\n</tr>\n</tbody>\n</table>\n",
    ),
    (
        "fenced code with language",
        "```python\nif a < b & c:\n    pass\n```\n",
        '<pre><code class="language-python">if a &lt; b &amp; c:\n    pass</code></pre>\n',
    ),
    ("fenced code without language", "~~~\nplain\n~~~\n", "<pre><code>plain</code></pre>\n"),
    ("indented code", "    indented\n", "<pre><code>indented</code></pre>\n"),
    (
        "link gets rel",
        '[site](https://example.com "T")',
        f'<p><a href="https://example.com" title="T" {REL}>site</a></p>\n',
    ),
    ("mailto link", "[m](mailto:a@b.co)", f'<p><a href="mailto:a@b.co" {REL}>m</a></p>\n'),
    (
        "bare url (url plugin)",
        "see https://example.com/a?q=1.",
        f'<p>see <a href="https://example.com/a?q=1" {REL}>https://example.com/a?q=1</a>.</p>\n',
    ),
    (
        "angle autolink",
        "<https://e.com/?a=1&b=2>",
        f'<p><a href="https://e.com/?a=1&amp;b=2" {REL}>https://e.com/?a=1&amp;b=2</a></p>\n',
    ),
    ("email autolink", "<a@b.co>", f'<p><a href="mailto:a@b.co" {REL}>a@b.co</a></p>\n'),
    (
        "inline raw html escaped",
        "a <b>bold</b> word",
        "<p>a &lt;b&gt;bold&lt;/b&gt; word</p>\n",
    ),
    (
        "block raw html escaped",
        '<div class="x">\nhi\n</div>\n',
        '<p>&lt;div class="x"&gt;\nhi\n&lt;/div&gt;</p>\n',
    ),
    ("entities decoded", "AT&amp;T &copy; &#60;x&#62;", "<p>AT&amp;T © &lt;x&gt;</p>\n"),
    ("strikethrough", "~~gone~~ and ~one~", "<p><del>gone</del> and ~one~</p>\n"),
    (
        "emphasis",
        "*a* **b** ***c***",
        "<p><em>a</em> <strong>b</strong> <em><strong>c</strong></em></p>\n",
    ),
    ("hard break", "a  \nb\\\nc", "<p>a<br>\nb<br>\nc</p>\n"),
    (
        "blockquote",
        "> q\n> > n\n",
        "<blockquote>\n<p>q</p>\n<blockquote>\n<p>n</p>\n</blockquote>\n</blockquote>\n",
    ),
    ("thematic break", "***\n", "<hr>\n"),
    ("inline code", "`<b> & x`", "<p><code>&lt;b&gt; &amp; x</code></p>\n"),
    ("relative link is text", "[docs](/docs) [top](#top) [p](//host/x)", "<p>docs top p</p>\n"),
    ("image off by default: alt text", '![a *cat*](https://x.y/c.png "t")', "<p>a cat</p>\n"),
    (
        "inline math for Tiptap Mathematics",
        "Euler: $e^{i\\pi} + 1 = 0$ and $$a<b$$.",
        '<p>Euler: <span data-type="inline-math" data-latex="e^{i\\pi} + 1 = 0"></span> and '
        '<span data-type="inline-math" data-latex="a&lt;b"></span>.</p>\n',
    ),
    ("dollar amounts are not math", "costs $5 and $6.", "<p>costs $5 and $6.</p>\n"),
    (
        "block math",
        '$$\n\\int_0^1 x\\,dx "q" & y\n$$\n',
        '<div data-type="block-math" data-latex="\\int_0^1 x\\,dx &quot;q&quot; &amp; y"></div>\n',
    ),
    (
        "block math in a quote",
        "> $$\n> a^2\n> $$\n",
        '<blockquote>\n<div data-type="block-math" data-latex="a^2"></div>\n</blockquote>\n',
    ),
    (
        "task list for Tiptap TaskList",
        "- [ ] todo\n- [x] **done**\n  - [X] nested\n",
        '<ul data-type="taskList">\n<li data-type="taskItem" data-checked="false">todo</li>\n'
        '<li data-type="taskItem" data-checked="true"><strong>done</strong>'
        '<ul data-type="taskList">\n<li data-type="taskItem" data-checked="true">nested</li>\n'
        "</ul>\n</li>\n</ul>\n",
    ),
    (
        "a list with plain items keeps its markers as text",
        "- [ ] a\n- b\n",
        "<ul>\n<li>[ ] a</li>\n<li>b</li>\n</ul>\n",
    ),
    ("an ordered list is no task list", "1. [x] a\n", "<ol>\n<li>[x] a</li>\n</ol>\n"),
]


@pytest.mark.parametrize(
    ("markdown", "expected"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN]
)
def test_golden(markdown: str, expected: str) -> None:
    assert R.render(markdown) == expected


def test_render_blocks_cuts_top_level_blocks() -> None:
    md = "# T\n\n\n\npara\n\n[r]: https://x.y\n\n- a\n- b\n\n```\ncode\n\nmore\n```\n"
    assert R.render_blocks(md) == [
        "<h1>T</h1>\n",
        "<p>para</p>\n",
        "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n",
        "<pre><code>code\n\nmore</code></pre>\n",
    ]
    assert R.render(md) == "".join(R.render_blocks(md))
    assert R.render_blocks("") == [] and R.render_blocks("\n\n  \n") == []


def test_render_part_carries_reference_definitions() -> None:
    blocks, refs = R.render_part("[d]: https://x.y/d 'D'\n")
    assert blocks == [] and set(refs) == {"D"}
    blocks, new = R.render_part("see [d]\n", refs)
    assert blocks == [f'<p>see <a href="https://x.y/d" title="D" {REL}>d</a></p>\n']
    assert new == {}
    # the first definition wins, across parts too
    blocks, new = R.render_part("[d]: https://other\n\n[d]\n", refs)
    assert 'href="https://x.y/d"' in blocks[0] and new == {}


def test_normalize_nul_and_surrogates() -> None:
    assert normalize_markdown("a\x00b") == "a\ufffdb"
    assert normalize_markdown("\ud83d\ude00") == "\U0001F600"
    assert normalize_markdown("x\ud800y") == "x\ufffdy"
    assert R.render("\ud83d") == "<p>\ufffd</p>\n"


@pytest.mark.parametrize(("name", "markdown"), CORPUS, ids=[c[0] for c in CORPUS])
def test_sanitizing_per_block_equals_sanitizing_the_document(name: str, markdown: str) -> None:
    raw_blocks, _ = R._render_raw(markdown)
    whole = R.sanitize("".join(raw_blocks))
    assert "".join(R.render_blocks(markdown)) == whole
    for block in R.render_blocks(markdown):
        assert R.sanitize(block) == block  # a fixed point: well-formed and clean


# -- threats: script injection -------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=https://evil/x.js></SCRIPT>",
        "text <script>alert(1)</script> text",
        "<script>\nalert(1)\n</script>\n",
        "<style>body{display:none}</style>",
        "<iframe src=https://evil></iframe>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "| <script>x</script> |\n|---|\n| <script>y</script> |",
        "> <script>alert(1)</script>",
        "- <script>alert(1)</script>",
        "<!-- <script>alert(1)</script> -->",
    ],
)
def test_raw_html_never_becomes_markup(markdown: str) -> None:
    out = R.render(markdown)
    assert "<script" not in out.lower() and "<style" not in out.lower()
    assert "<iframe" not in out.lower() and "<img" not in out.lower()
    assert "&lt;" in out  # shown as text


# -- threats: event handlers and attribute injection ---------------------------------------


@pytest.mark.parametrize(
    "markdown",
    [
        "<img src=x onerror=alert(1)>",
        '<div onclick="alert(1)">x</div>',
        '<a href="https://ok" onmouseover="alert(1)">x</a>',
        '[t](https://example.com "x\\" onclick=\\"alert(1)")',
        '[q](https://example.com/"onmouseover="alert(1))',
        '```js" onmouseover="alert(1)\nx\n```',
        "```python onclick=alert(1)\nx\n```",
    ],
)
def test_no_event_handler_attributes(markdown: str) -> None:
    out = R.render(markdown)
    # every attribute the output has is one of the allowlisted ones
    import re

    for attrs in re.findall(r"<[a-z0-9]+((?:\s+[a-z-]+=\"[^\"]*\")*)\s*/?>", out):
        names = re.findall(r'\s([a-z-]+)="', attrs)
        assert set(names) <= {"href", "title", "rel", "class", "start"}, out
    assert not re.search(r'\son[a-z]+="', re.sub(r'="[^"]*"', '=""', out).replace('=""', "")), out


def test_code_class_only_language_token() -> None:
    assert 'class="language-c++"' in R.render("```c++\nx\n```")
    assert "class=" not in R.render('```a"b\nx\n```')
    assert "class=" not in R.render("```<script>\nx\n```")


# -- threats: dangerous URL schemes --------------------------------------------------------

BAD_URLS = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "JaVaScRiPt:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)",
    "javascript&colon;alert(1)",
    "javascript&#58;alert(1)",
    "javascript%3Aalert(1)",
    "%6A%61%76%61%73%63%72%69%70%74:alert(1)",
    "java%2573cript:alert(1)",
    "java&#10;script:alert(1)",
    "java&#9;script:alert(1)",
    "&#0;javascript:alert(1)",
    "<javascript:alert(1)>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,x",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "&#118;bscript:msgbox(1)",
    "file:///etc/passwd",
    "tel:+123",
    "ftp://example.com",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_link_urls_render_as_text(url: str) -> None:
    out = R.render(f"[click]({url})")
    assert "href" not in out and "<a" not in out
    assert "click" in out


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_reference_link_urls_render_as_text(url: str) -> None:
    out = R.render(f"[click][r]\n\n[r]: {url}\n")
    assert "href" not in out


@pytest.mark.parametrize(
    "markdown",
    ["<javascript:alert(1)>", "<JAVASCRIPT:alert(1)>", "<data:text/html,x>", "<vbscript:x>"],
)
def test_bad_autolinks_render_as_text(markdown: str) -> None:
    out = R.render(markdown)
    assert "href" not in out
    assert ":" in out  # the URL is shown as text


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("https://x", "https"),
        ("HTTP://x", "http"),
        ("mailto:a@b", "mailto"),
        ("/rel", None),
        ("#frag", None),
        ("//host/x", None),
        ("java\tscript:x", "javascript"),
        (" \x01javascript:x", "javascript"),
        ("java%2573cript:x", "javascript"),
        ("&#x6A;avascript&colon;x", "javascript"),
    ],
)
def test_url_scheme(url: str, scheme: str | None) -> None:
    assert url_scheme(url) == scheme


def test_good_links_keep_href_and_get_rel() -> None:
    out = R.render("[a](https://a.b/c?d=1&e=2) [b](http://b.c) [c](mailto:x@y.z)")
    assert out.count(REL) == 3
    assert 'href="https://a.b/c?d=1&amp;e=2"' in out


def test_link_wrapping_a_bad_link() -> None:
    out = R.render("[![img](javascript:alert(1))](javascript:alert(2))")
    assert out == "<p>img</p>\n"


# -- threats: images -----------------------------------------------------------------------


def test_images_off_by_default_render_alt_text() -> None:
    assert R.render("![a cat](https://example.com/cat.png)") == "<p>a cat</p>\n"
    assert R.render("![](https://example.com/cat.png)") == "<p></p>\n"
    assert "<img" not in R.render("![x](https://example.com/x.png)\n\n[![y](https://i/y.png)](https://l)")


def test_images_on_when_configured() -> None:
    out = R_IMG.render('![a cat](https://example.com/cat.png "Cat")')
    assert out == ('<p><img src="https://example.com/cat.png" alt="a cat" title="Cat"'
                   ' loading="lazy"></p>\n')
    linked = R_IMG.render("[![y](https://i/y.png)](https://l)")
    assert linked == (f'<p><a href="https://l" {REL}><img src="https://i/y.png" alt="y"'
                      ' loading="lazy"></a></p>\n')


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "/relative.png",
        "mailto:a@b",
        "VBSCRIPT:x",
    ],
)
def test_images_with_bad_sources_fall_back_to_alt(url: str) -> None:
    assert R_IMG.render(f"![alt]({url})") == "<p>alt</p>\n"


def test_raw_img_tag_escaped_even_with_images() -> None:
    out = R_IMG.render("<img src=https://x/y.png onerror=alert(1)>")
    assert "<img" not in out and "&lt;img" in out


# -- the XSS corpus as a whole ------------------------------------------------------------


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


@pytest.mark.parametrize("markdown", [
    '$"><img src=x onerror=alert(1)>$',
    "$$\n</div><script>alert(1)</script>\n$$\n",
    '$x" onmouseover="alert(1)$',
])
def test_math_cannot_break_out_of_its_attribute(markdown: str) -> None:
    out = R.render(markdown)
    parser = _Attrs()
    parser.feed(out)
    parser.close()
    assert [tag for tag, _ in parser.tags if tag not in ("p", "span", "div")] == []
    for _, attrs in parser.tags:
        assert {name for name, _ in attrs} <= {"data-type", "data-latex"}


def test_data_types_are_only_the_editor_ones() -> None:
    assert R.sanitize('<ul data-type="x"><li data-type="taskItem" data-checked="maybe">a</li>'
                      '</ul><span data-type="mention">b</span>') == (
        '<ul><li data-type="taskItem">a</li></ul><span>b</span>')


def test_xss_corpus_renders_safely() -> None:
    for renderer in (R, R_IMG):
        out = renderer.render(XSS_PATH.read_text(encoding="utf-8"))
        assert "<script" not in out.lower()
        parser = _Attrs()
        parser.feed(out)
        parser.close()
        assert parser.tags
        for tag, attrs in parser.tags:
            assert tag in renderer.allowed_tags
            for name, value in attrs:
                assert not name.startswith("on"), (tag, name)
                if name in ("href", "src"):
                    assert url_scheme(value or "") in {"http", "https", "mailto"}, value


# -- the simple renderers: the same HTML as mistune, without it ---------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SIMPLE_ATOMS = [
    "word", "Ab", "x1", "é", "9", " ", " ", "  ", ",", ".", ":", ";", "?", "!", "'", '"', "(", ")",
    "-", "**", "*", "~~", "~", "`", "[", "]", "](https://e.com/a)", "](http://x.org/p-q_r.s~t/u)",
    "_", "/", "&", "<", "$", "\\", "www.", "\u00a0", "#", "|", "**word**", "*a b*", "**x y.z**",
    "~~gone~~", "`code()`", "` a `", "`a*b`", "[a b](https://e.com/x)", "***", "![i](https://e.com/i)",
]
_LINE_STARTS = [
    "", "", "# ", "## ", "###### ", "####### ", "#", "- ", "* ", "+ ", "-  ", "-     ", "1. ",
    "0. ", "007. ", "3) ", "1234567890. ", "> ", ">", ">  ", "> > ", "- - ", " ", "    ",
    "- [ ] ", "- [x] ", "-", "1.", "***", "---", "===",
]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_SIMPLE_ATOMS), min_size=1, max_size=12))
def test_render_inline_simple_is_render_inline(atoms: list[str]) -> None:
    renderer = Renderer()
    text = " " + "".join(atoms)
    simple = renderer.render_inline_simple(text)
    if simple is not None:
        assert simple == renderer.render_inline(text)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_LINE_STARTS), st.lists(st.sampled_from(_SIMPLE_ATOMS), max_size=8),
       st.sampled_from(["", "\n", " \n", "  "]))
def test_render_line_simple_is_render_part(start: str, atoms: list[str], end: str) -> None:
    renderer = Renderer()
    line = start + "".join(atoms) + end
    simple = renderer.render_line_simple(line)
    if simple is not None:
        assert simple == renderer.render_part(line)[0]


def test_simple_renderers_take_the_common_cases() -> None:
    renderer = Renderer()
    assert renderer.render_inline_simple(" a **b** `c()` [d](https://e.com/f) ~~g~~ *h*.") == (
        ' a <strong>b</strong> <code>c()</code> '
        f'<a href="https://e.com/f" rel="{LINK_REL}">d</a> <del>g</del> <em>h</em>.')
    assert renderer.render_line_simple("## Title *x*\n") == ["<h2>Title <em>x</em></h2>\n"]
    assert renderer.render_line_simple("3. Item") == ['<ol start="3">\n<li>Item</li>\n</ol>\n']
    # not simple: left to mistune
    for text in (" a_b_", " **a***b*", " ![i](https://e.com/i)", " see https://x.com",
                 " www.example.com", " &amp;", " `a` `` b"):
        assert renderer.render_inline_simple(text) is None, text
    for line in ("- [ ] task", "- 1. nested", "> > deep", "    code", "#nospace", "a\nb"):
        assert renderer.render_line_simple(line) is None, line
    rows = "| a **b** | |\n|c|d|\n"
    assert renderer.render_rows_simple(rows, 2) == (
        "<tr>\n  <td>a <strong>b</strong></td>\n  <td></td>\n</tr>\n"
        "<tr>\n  <td>c</td>\n  <td>d</td>\n</tr>\n")
    assert renderer.render("| h | i |\n|--|:-:|\n" + rows).endswith(
        "<tbody>\n" + renderer.render_rows_simple(rows, 2) + "</tbody>\n</table>\n")
    for bad in ("| a | b | c |\n", "| a \\| b |\n", "| `a|b` | c |\n", "a | b\n"):
        assert renderer.render_rows_simple(bad, 2) is None, bad


def test_simple_renderers_turn_off_when_a_sample_renders_otherwise() -> None:
    renderer = Renderer()
    renderer.render_inline = lambda text, refs=None: "changed"  # type: ignore[method-assign]
    assert renderer._simple_inline_templates() is None


ITEM_MARKERS = ["- ", "* ", "+ ", "1. ", "2) ", "10. ", "-  ", "1.  "]
#: mostly simple content, some of what is not
ITEM_ATOMS = ["word", "Ab", "é", "9", " ", " ", ",", ".", ":", "!", "(", ")", "**word**",
              "`code()`", "[a b](https://e.com/x)", "*a b*", "~~gone~~", "*", "`", "_", "  ",
              "[", "<", "&", "\\", "#", "-"]
NESTED_MARKERS = ["- ", "* ", "+ ", "1. ", "1) ", "2. ", "3) ", "-", "1."]


@settings(max_examples=1500, deadline=None)
@given(top=st.sampled_from(ITEM_MARKERS),
       nested=st.lists(st.tuples(st.sampled_from(["", " ", "  ", "   ", "    "]),
                                 st.sampled_from(NESTED_MARKERS),
                                 st.lists(st.sampled_from(ITEM_ATOMS), min_size=0,
                                          max_size=4)), min_size=1, max_size=4),
       atoms=st.lists(st.sampled_from(ITEM_ATOMS), min_size=1, max_size=4),
       end=st.sampled_from(["", "\n", " ", "  \n"]))
def test_render_item_simple_is_render_part(top: str, nested: list[tuple[str, str, list[str]]],
                                           atoms: list[str], end: str) -> None:
    """A list item with a nested list, rendered without mistune, is the pipeline's render
    wherever it is not ``None``, and it takes the common shapes (checked below)."""
    width = len(top)
    lines = [top + "".join(atoms)]
    for extra, marker, words in nested:
        lines.append(" " * width + extra + marker + " " + "".join(words))
    text = "\n".join(lines) + end
    simple = R.render_item_simple(text)
    if simple is not None:
        assert simple == R.render_part(text)[0], text


def test_render_item_simple_takes_the_common_shapes() -> None:
    for text in ["- Install it\n  - on **macOS**\n  - on `linux`\n",
                 "3. Step\n   1. first [link](https://e.com/x)\n   2. second",
                 "- a\n  * b\n  * c "]:
        simple = R.render_item_simple(text)
        assert simple is not None and simple == R.render_part(text)[0], text
    for text in ["- a\n  3. b\n",  # an ordered list not at 1 cannot interrupt a paragraph
                 "- a\n  - b\n  * c\n",  # another bullet: another list
                 "- a\n   - b\n",  # not the item's content column
                 "- a\n  - b\n    - c\n"]:  # deeper
        assert R.render_item_simple(text) is None, text



@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.lists(st.lists(st.lists(st.sampled_from(_SIMPLE_ATOMS),
                                                     max_size=4), min_size=1, max_size=5),
                                   min_size=1, max_size=3),
       st.sampled_from(["---", ":--", "--:", ":-:"]))
def test_render_rows_simple_is_the_table_body(columns: int, rows: list[list[list[str]]],
                                              align: str) -> None:
    renderer = Renderer()
    head = "| " + " | ".join(f"H{i}" for i in range(columns)) + " |\n"
    head += "|" + f"{align}|" * columns + "\n"
    rows_md = "".join("| " + " | ".join("".join(cell) for cell in row) + " |\n" for row in rows)
    simple = renderer.render_rows_simple(rows_md, columns)
    if simple is not None:
        table = renderer.render(head + rows_md)
        assert table.startswith("<table>") and f"<tbody>\n{simple}</tbody>" in table
