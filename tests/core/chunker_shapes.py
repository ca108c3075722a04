"""Adversarial markdown shapes for the chunker's cost tests and benchmark (not a test module).

Each shape is a function ``n -> text`` of about ``n`` characters that keeps one construct
going: long containers (loose lists, tables, quotes, code, paragraphs), nesting, openers
that never close, raw HTML, reference definitions, setext underlines, line breaks. The
shapes the issue reported (a loose list, a link label that never closes) are among them.
``tests/core/test_chunker_linear.py`` streams them and checks that the work per delta does
not grow; ``bench/chunker_bench.py --shapes`` times them.
"""

from __future__ import annotations

from collections.abc import Callable

WORDS = "alpha beta gamma delta epsilon zeta eta theta".split()


def words(i: int, k: int = 5) -> str:
    """``k`` plain words, varied by ``i``."""
    return " ".join(WORDS[(i + j) % len(WORDS)] for j in range(k))


def repeat(unit: Callable[[int], str], head: str = "") -> Callable[[int], str]:
    """A shape: ``head`` then ``unit(0) + unit(1) + ...``, cut to ``n`` characters."""
    def shape(n: int) -> str:
        out, total, i = [head], len(head), 0
        while total < n:
            piece = unit(i)
            out.append(piece)
            total += len(piece)
            i += 1
        return "".join(out)[:n]
    return shape


def _table(row: Callable[[int], str]) -> Callable[[int], str]:
    return repeat(row, "| a | b | c |\n|---|---|---|\n")


def _deep(i: int) -> str:
    return "  " * (1 + i % 3) + f"- sub {words(i)}\n"


#: name -> shape. The comment says what the shape keeps open.
SHAPES: dict[str, Callable[[int], str]] = {
    # long containers
    "loose_list": repeat(lambda i: f"- item {words(i)}\n\n"),
    "loose_ordered": repeat(lambda i: f"{i + 1}. item {words(i)}\n\n"),
    "loose_paragraphs": repeat(lambda i: f"- **Step {i}** {words(i)}\n\n  {words(i + 1)}\n\n"),
    "code_in_items": repeat(lambda i: f"- run:\n  ```sh\n  cmd {words(i, 3)}\n  ```\n"),
    "tight_list": repeat(lambda i: f"- item {words(i)}\n"),
    "table": _table(lambda i: f"| {WORDS[i % 8]} | {i} | x |\n"),
    "table_markup": _table(lambda i: f"| **{WORDS[i % 8]}** | `{i}` | [x](https://e.com) |\n"),
    "table_ragged": _table(lambda i: "| x " * (1 + i % 4) + "|\n"),
    "quote": repeat(lambda i: f"> {words(i)}\n"),
    "quote_markup": repeat(lambda i: f"> **{WORDS[i % 8]}** and `x` {words(i)}\n"),
    "code_fence": repeat(lambda i: f"x = {i}  # {words(i)}\n", "```python\n"),
    "indented_code": repeat(lambda i: f"    code {words(i)}\n"),
    "paragraph_lines": repeat(lambda i: f"{words(i)}\n"),
    "inline_spans": repeat(
        lambda i: f"**{WORDS[i % 8]}** *{WORDS[(i + 1) % 8]}* `c{i}` [l](https://e.com/{i}) "),
    "nested_emphasis": repeat(lambda i: f"*a **b _{i}_ c** d* {words(i)} "),
    "hard_breaks": repeat(lambda i: f"{words(i)}  \n"),
    "backslash_breaks": repeat(lambda i: f"{words(i)}\\\n"),
    # nesting
    "nested_list": repeat(lambda i: "  " * (i % 4) + f"- item {words(i)}\n"),
    "deep_item": repeat(_deep, "- top\n"),
    "list_in_quote": repeat(lambda i: f"> - item {words(i)}\n"),
    "quote_in_list": repeat(lambda i: f"- > item {words(i)}\n"),
    "quote_list_quote": repeat(lambda i: f"- > - item {words(i)}\n"),
    "quote_depths": repeat(lambda i: "> " * (1 + i % 5) + f"{words(i)}\n"),
    # openers that never close
    "open_label": lambda n: ("[" + "word " * n)[:n],
    "open_label_mid": lambda n: ("Text [" + "word " * n)[:n],
    "open_image": lambda n: ("![" + "word " * n)[:n],
    "open_star": lambda n: ("Text *" + "word " * n)[:n],
    "open_underscore": lambda n: ("Text _" + "word " * n)[:n],
    "open_backtick": lambda n: ("Text `" + "word " * n)[:n],
    "open_angle": lambda n: ("Text <" + "word" * n)[:n],
    "open_math": lambda n: ("Text $" + "word " * n)[:n],
    "open_latex": lambda n: ("Text \\(" + "word " * n)[:n],
    "open_latex_block": lambda n: ("\\[\n" + "word " * n)[:n],
    "open_display_math": repeat(lambda i: f"{words(i)}\n\n", "\\[\n"),
    "latex_lines": repeat(lambda i: f"a \\({words(i)}\n"),
    "latex_inline": repeat(lambda i: f"see \\(x_{{{i}}}\\) and \\[y\\] {words(i)} "),
    "latex_blocks": repeat(lambda i: f"{words(i)}\n\\[\nx_{{{i}}}\n\\]\n"),
    "star_lines": repeat(lambda i: f"a *{words(i)}\n"),
    "underscore_lines": repeat(lambda i: f"a _{words(i)}\n"),
    "backtick_lines": repeat(lambda i: f"a `{words(i)}\n"),
    "bracket_lines": repeat(lambda i: f"a [{words(i)}\n"),
    "image_lines": repeat(lambda i: f"a ![{words(i)}\n"),
    "angle_lines": repeat(lambda i: f"a <b {words(i)}\n"),
    "label_lines": repeat(lambda i: f"[{words(i)}\n"),
    "delimiter_soup": repeat(lambda i: "*_`[<!" [i % 6] + f"{WORDS[i % 8]} "),
    # raw HTML
    "html_block": repeat(lambda i: f"{words(i)}\n", "<div>\n"),
    "html_inline": repeat(lambda i: f"a <span>{words(i)}</span> "),
    "html_comment": repeat(lambda i: f"{words(i)}\n", "<!--\n"),
    # reference definitions
    "refdefs": repeat(lambda i: f"[r{i}]: https://e.com/{i}\n"),
    "ref_uses": repeat(lambda i: f"see [r{i}] and {words(i)}\n"),
    # setext underlines
    "setext_headings": repeat(lambda i: f"{words(i)}\n===\n\n"),
    "setext_paragraph": lambda n: SHAPES["paragraph_lines"](n - 4) + "\n---",
    # the rest
    "entities": repeat(lambda i: f"a &amp; b &copy {words(i)} "),
    "urls": repeat(lambda i: f"see https://e.com/{i} and www.x{i}.com "),
}
