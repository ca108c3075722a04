"""Benchmark the incremental renderer against the one-shot render (not a test).

    python bench/chunker_bench.py [--sizes 10,50,200] [--delta 4] [--reps 3] [--naive-stride 8]

For generated LLM-style answers (headings, paragraphs with inline markup and links, nested
bullet lists, numbered lists, pipe tables, fenced code in several languages, block quotes;
deterministic, like perf-lab §3's ``mdgen``) streamed in ``--delta``-character deltas, prints:

- ``one-shot ms``: ``Renderer.render`` of the whole answer (the fastest of ``--reps`` runs,
  more for answers under 200 KB: ``reps * 200 / KB``, so each size gets about as much time);
- ``chunker s``: every ``feed`` plus ``close`` (the fastest of as many runs), ``us/delta``, the
  slowest single ``feed`` in ms, and ``close ms`` (one full render for reconciliation);
- ``ratio``: chunker total / one-shot;
- ``text ops``: share of emitted ops that are non-empty ``text`` ops; ``fast``: share of deltas
  handled without re-rendering; ``commits``; ``repairs``: final blocks close() had to change;
- ``naive s``: re-render + sanitize everything at every delta, only for the smallest size,
  timed on every ``--naive-stride``-th delta and multiplied by the stride;
- per realistic corpus document: µs/delta, text-op share (of all ops, and of the ops that
  change content, leaving out the empty ``text`` ops that only mark a block final), fast
  share and flicker (``flicker_chars``), and the shares for the corpus as a whole;
- worst cases (``--worst-sizes``): one long list, code block, table, nested quotes and one
  paragraph of nested emphasis, µs/delta at each size: a flat row is linear, a growing one
  is not;
- adversarial shapes (``--shape-sizes``, ``--shape-delta``, ``--shapes``; ``--only-shapes``
  prints this table alone): one row per shape of ``tests/core/chunker_shapes.py`` (long
  containers, nesting, openers that never close, raw HTML, reference definitions, setext
  underlines, tables), µs per delta at each size in ``--shape-delta``-character deltas
  (1: the attacker's), the last size's over the first's, how the chunker stays linear
  on it (``exact``: its paths; ``budget``: the work budget deferred renders) and the
  slowest single ``feed`` at the last size in ms (one render of the open tail).

The machine is noisy (perf-lab §"Machine"): compare ratios from the same run. Each figure is
the fastest of its repetitions (the least disturbed run, as ``timeit`` advises), one-shot and
chunker runs interleaved.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamer.render.chunker import Chunker, flicker_chars
from streamer.render.markdown import Renderer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
from chunker_shapes import SHAPES

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "answers"
TAG_RE = re.compile(r'<(?:[^>"]|"[^"]*")*>')

WORDS = (
    "the a server stream token latency editor block render client request response buffer "
    "python trio async markdown table list code value error retry cache memory thread socket "
    "simple fast careful linear quadratic measure result answer model prompt output input"
).split()

CODE = {
    "python": [
        "def handler(request):",
        "    data = request.json()",
        "    if data.get(\"x\") < 3 and data[\"y\"] & 1:",
        "        return {\"ok\": True, \"html\": \"<b>yes</b>\"}",
        "",
        "    for i in range(10):",
        "        print(i, i ** 2)",
        "    return None",
    ],
    "bash": ["#!/usr/bin/env bash", "set -euo pipefail", "curl -fsSL \"$URL\" | jq '.items[]'",
             "", "echo \"done\" >&2"],
    "json": ["{", "  \"id\": 42,", "  \"tags\": [\"a\", \"<b>\"],", "  \"ok\": true", "}"],
    "js": ["const res = await fetch(url);", "if (!res.ok && retry > 0) {",
           "  throw new Error(`HTTP ${res.status}`);", "}", "",
           "console.log(data.items.length > 0);"],
}


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    roll = rng.random()
    i = rng.randrange(len(words))
    if roll < 0.2:
        words[i] = f"**{words[i]}**"
    elif roll < 0.35:
        words[i] = f"*{words[i]}*"
    elif roll < 0.5:
        words[i] = f"`{words[i]}()`"
    elif roll < 0.6:
        words[i] = f"[{words[i]}](https://example.com/{words[i]})"
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "!", ":"])


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))


def section(rng: random.Random) -> str:
    out = [f"{'#' * rng.choice([2, 3])} {sentence(rng).rstrip('.!:')}", "", paragraph(rng), ""]
    kind = rng.random()
    if kind < 0.25:
        for _ in range(rng.randint(2, 6)):
            out.append(f"- {sentence(rng)}")
            if rng.random() < 0.3:
                out.append(f"  - {sentence(rng)}")
        out.append("")
    elif kind < 0.4:
        for n in range(1, rng.randint(3, 7)):
            out.append(f"{n}. {sentence(rng)}")
        out.append("")
    elif kind < 0.55:
        cols = rng.randint(3, 5)
        out.append("| " + " | ".join(rng.choice(WORDS).title() for _ in range(cols)) + " |")
        out.append("|" + "---|" * cols)
        for _ in range(rng.randint(3, 10)):
            out.append("| " + " | ".join(rng.choice(WORDS) for _ in range(cols)) + " |")
        out.append("")
    elif kind < 0.8:
        lang = rng.choice(list(CODE))
        lines = CODE[lang] * rng.randint(1, 4)
        out += [f"```{lang}", *lines, "```", ""]
    else:
        out += [f"> {sentence(rng)}", f"> {sentence(rng)}", ""]
    out += [paragraph(rng), ""]
    return "\n".join(out) + "\n"


def make_answer(size_bytes: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size_bytes:
        s = section(rng)
        parts.append(s)
        total += len(s.encode())
    return "".join(parts)


def run_chunker(renderer: Renderer, deltas: list[str]) -> tuple[float, float, float, Chunker, list]:
    """Stream ``deltas``: ``(total s, slowest feed s, close s, chunker, ops)``.

    The total is timed over a loop with no timer inside it; the slowest single ``feed`` comes
    from a second run that times each one (two clock reads per delta would add about 5 % to a
    total of a few µs per delta)."""
    chunker = Chunker(renderer)
    ops: list = []
    t0 = time.perf_counter()
    for d in deltas:
        ops.extend(chunker.feed(d))
    t_close = time.perf_counter()
    ops.extend(chunker.close())
    end = time.perf_counter()
    timed = Chunker(renderer)
    worst = 0.0
    for d in deltas:
        t = time.perf_counter()
        timed.feed(d)
        worst = max(worst, time.perf_counter() - t)
    return end - t0, worst, end - t_close, chunker, ops


def corpus_report(renderer: Renderer, delta: int) -> None:
    """Per realistic corpus document: µs/delta, text-op share (of all ops, and of the ops
    that change content: without the empty ``text`` ops that only mark a block final), fast
    share, flicker chars; then the corpus as a whole."""
    print(f"\n{'corpus document':<28} {'KB':>5} {'us/delta':>8} {'text ops':>8} "
          f"{'of changes':>10} {'fast':>6} {'flicker':>7}")
    n_text = n_ops = n_markers = 0
    for path in sorted(CORPUS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        deltas = [text[j:j + delta] for j in range(0, len(text), delta)]
        total, _, _, chunker, ops = run_chunker(renderer, deltas)
        assert chunker.html == renderer.render(text), path.name
        texts = sum(op.op == "text" and bool(op.text) for op in ops)
        markers = sum(op.op == "text" and not op.text for op in ops)
        n_text, n_ops, n_markers = n_text + texts, n_ops + len(ops), n_markers + markers
        print(f"{path.stem:<28} {len(text) / 1000:>5.1f} {total / len(deltas) * 1e6:>8.0f} "
              f"{texts / max(1, len(ops)):>8.0%} {texts / max(1, len(ops) - markers):>10.0%} "
              f"{chunker.stats.fast_path / chunker.stats.deltas:>6.0%} {flicker_chars(ops):>7}")
    print(f"{'(all)':<28} {'':>5} {'':>8} {n_text / max(1, n_ops):>8.0%} "
          f"{n_text / max(1, n_ops - n_markers):>10.0%}")


def worst_case(kind: str, size_bytes: int, rng: random.Random) -> str:
    """One construct of about ``size_bytes``: the shapes that keep the open tail long."""
    out: list[str] = []
    total = 0
    while total < size_bytes:
        if kind == "list":
            line = f"- {sentence(rng)}\n"
        elif kind == "code":
            line = rng.choice(CODE["python"]) + "\n"
        elif kind == "table":
            line = "| " + " | ".join(rng.choice(WORDS) for _ in range(4)) + " |\n"
        elif kind == "quotes":
            line = "> " * rng.randint(1, 8) + sentence(rng) + "\n"
        else:  # nested emphasis in one long paragraph
            w = [rng.choice(WORDS) for _ in range(4)]
            line = f"*{w[0]} **{w[1]} _{w[2]}_ {w[3]}** end* "
        out.append(line)
        total += len(line)
    if kind == "code":
        return "```python\n" + "".join(out) + "```\n"
    if kind == "table":
        return "| A | B | C | D |\n|---|---|---|---|\n" + "".join(out)
    return "".join(out)


def worst_report(renderer: Renderer, delta: int, sizes: list[int], reps: int) -> None:
    """µs per delta for each worst case at growing sizes (the fastest of ``reps``): linear
    when the row stays flat. ``ratio``: chunker / one-shot at the largest size (one long
    block is never committed, so ``close()`` renders it once more: at least 1 plus the
    feeds); ``lines``: the construct's lines (items, rows) at the largest size."""
    print(f"\n{'worst case':<12} " + " ".join(f"{f'{kb} KB us/delta':>15}" for kb in sizes)
          + f" {'ratio (last)':>12} {'growth':>7} {'lines':>7}")
    for kind in ("list", "code", "table", "quotes", "emphasis"):
        per_delta = []
        ratio = 0.0
        for kb in sizes:
            text = worst_case(kind, kb * 1000, random.Random(7))
            deltas = [text[j:j + delta] for j in range(0, len(text), delta)]
            one = total = float("inf")
            for _ in range(reps):
                t = time.perf_counter()
                renderer.render(text)
                one = min(one, time.perf_counter() - t)
                run = run_chunker(renderer, deltas)
                total = min(total, run[0])
            assert run[3].html == renderer.render(text), kind
            per_delta.append(total / len(deltas) * 1e6)
            ratio = total / one
        growth = per_delta[-1] / per_delta[0]
        print(f"{kind:<12} " + " ".join(f"{u:>15.1f}" for u in per_delta)
              + f" {ratio:>12.1f} {growth:>6.2f}x {text.count(chr(10)):>7}")


def shape_report(renderer: Renderer, sizes: list[int], delta: int, names: list[str]) -> None:
    """µs per delta of each adversarial shape at each size (one run each: the larger sizes
    take seconds), the last size's figure over the first's, whether the work budget
    deferred renders at the last size (``budget``) or the paths alone kept it flat
    (``exact``), and the slowest single ``feed`` at the last size."""
    print(f"\n{'shape (' + str(delta) + '-char deltas)':<26} "
          + " ".join(f"{f'{k}k us/delta':>12}" for k in sizes)
          + f" {f'{sizes[-1]}k/{sizes[0]}k':>9} {'how':>7} {'max ms':>7}")
    clock = time.perf_counter
    for name in names:
        per_delta = []
        deferred = 0
        slowest = 0.0
        for k in sizes:
            text = SHAPES[name](k * 1000)
            deltas = [text[j:j + delta] for j in range(0, len(text), delta)]
            chunker = Chunker(renderer)
            slowest = 0.0
            start = clock()
            for d in deltas:
                t = clock()
                chunker.feed(d)
                slowest = max(slowest, clock() - t)
            per_delta.append((clock() - start) / len(deltas) * 1e6)
            deferred = chunker.stats.deferred
            chunker.close()
            assert chunker.html == renderer.render(text), name
        how = "budget" if deferred else "exact"
        print(f"{name:<26} " + " ".join(f"{u:>12.1f}" for u in per_delta)
              + f" {per_delta[-1] / per_delta[0]:>8.2f}x {how:>7} {slowest * 1e3:>7.1f}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10,50,200", help="answer sizes in KB")
    ap.add_argument("--delta", type=int, default=4, help="characters per delta")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--naive-stride", type=int, default=8)
    ap.add_argument("--worst-sizes", default="5,25,100",
                    help="sizes in KB for the worst cases (one long list, code block, table, "
                         "nested quotes, nested emphasis); '' skips them")
    ap.add_argument("--shape-sizes", default="2,8,16,32,64",
                    help="sizes in thousands of characters for the adversarial shapes; '' "
                         "skips them")
    ap.add_argument("--shape-delta", type=int, default=1,
                    help="characters per delta for the adversarial shapes")
    ap.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    ap.add_argument("--only-shapes", action="store_true",
                    help="print the adversarial shapes' table alone")
    args = ap.parse_args()

    renderer = Renderer()
    renderer.render(make_answer(20_000, seed=99))  # warm-up: regex compilation, caches
    shape_names = args.shapes.split(",") if args.shapes else list(SHAPES)
    shape_sizes = [int(k) for k in args.shape_sizes.split(",")] if args.shape_sizes else []
    if args.only_shapes:
        shape_report(renderer, shape_sizes, args.shape_delta, shape_names)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    header = (f"{'KB':>6} {'deltas':>7} {'one-shot ms':>11} {'chunker s':>9} {'us/delta':>8} "
              f"{'max ms':>7} {'close ms':>8} {'ratio':>6} {'text ops':>8} {'fast':>6} "
              f"{'commits':>7} {'repairs':>7} {'naive s':>8}")
    print(header)
    print("-" * len(header))
    for i, kb in enumerate(sizes):
        text = make_answer(kb * 1000)
        deltas = [text[j:j + args.delta] for j in range(0, len(text), args.delta)]
        one_shot = []
        runs = []
        # a small answer takes milliseconds, where a stray pause weighs most: more runs
        for _ in range(max(args.reps, args.reps * 200 // kb)):
            t = time.perf_counter()
            expected = renderer.render(text)
            one_shot.append(time.perf_counter() - t)
            runs.append(run_chunker(renderer, deltas))
        total = min(r[0] for r in runs)
        worst = statistics.median(r[1] for r in runs)
        close_s = min(r[2] for r in runs)
        _, _, _, chunker, ops = runs[0]
        assert chunker.html == expected, "chunker diverged from the one-shot render"
        st = chunker.stats
        text_share = sum(op.op == "text" and bool(op.text) for op in ops) / max(1, len(ops))
        naive = "-"
        if i == 0:
            stride = args.naive_stride
            t = time.perf_counter()
            end = 0
            for j, d in enumerate(deltas):
                end += len(d)
                if j % stride == 0:
                    renderer.render(text[:end])
            naive = f"{(time.perf_counter() - t) * stride:.2f}"
        one = min(one_shot)
        print(f"{len(text) / 1000:>6.1f} {len(deltas):>7} {one * 1e3:>11.1f} {total:>9.2f} "
              f"{total / len(deltas) * 1e6:>8.0f} {worst * 1e3:>7.2f} {close_s * 1e3:>8.1f} "
              f"{total / one:>6.1f} {text_share:>8.0%} {st.fast_path / st.deltas:>6.0%} "
              f"{st.commits:>7} {st.close_repairs:>7} {naive:>8}")
    corpus_report(renderer, args.delta)
    if args.worst_sizes:
        worst_report(renderer, args.delta, [int(k) for k in args.worst_sizes.split(",")],
                     args.reps)
    if shape_sizes:
        shape_report(renderer, shape_sizes, args.shape_delta, shape_names)


if __name__ == "__main__":
    main()
