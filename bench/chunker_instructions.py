"""The chunker against the one-shot render in CPU instructions (not a test).

    python bench/chunker_instructions.py [--sizes 10,50,200] [--delta 4]

Wall-clock ratios on these shared 2-core machines move by ±30 % from run to run
(``bench/chunker_bench.py``). Instruction counts do not: ``valgrind --tool=callgrind`` counts
the instructions of one process exactly, whatever else the machine is doing. For each size
this runs three processes under callgrind on the same generated answer as
``chunker_bench.py``: a baseline (imports, building the renderer, generating the answer and
its 4-character deltas), the baseline plus one ``Renderer.render`` of the whole answer, and
the baseline plus streaming it through a :class:`~streamer.render.chunker.Chunker` (every ``feed``
and ``close``); it prints the instructions of the two workloads (their run minus the
baseline) and their ratio. Instructions are not time (a cache miss costs more than an add),
so read this next to the wall-clock table.

Needs valgrind (Debian: ``apt-get install valgrind``); takes about a minute per 100 KB.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def workload(mode: str, kb: int, delta: int) -> None:
    """The measured process: ``mode`` is ``base``, ``oneshot`` or ``chunker``."""
    from chunker_bench import make_answer

    from streamer.render.chunker import Chunker
    from streamer.render.markdown import Renderer

    renderer = Renderer()
    renderer.render(make_answer(5_000, seed=99))  # warm-up, as in chunker_bench.py
    text = make_answer(kb * 1000)
    deltas = [text[j:j + delta] for j in range(0, len(text), delta)]
    if mode == "oneshot":
        renderer.render(text)
    elif mode == "chunker":
        chunker = Chunker(renderer)
        for d in deltas:
            chunker.feed(d)
        chunker.close()


def count(mode: str, kb: int, delta: int) -> int:
    """Instructions of one run of :func:`workload` under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             sys.executable, __file__, "--workload", mode, "--sizes", str(kb),
             "--delta", str(delta)],
            capture_output=True, text=True, check=True,
        )
    m = re.search(r"Collected : (\d+)", proc.stderr)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{proc.stderr}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10,50,200", help="answer sizes in KB")
    ap.add_argument("--delta", type=int, default=4, help="characters per delta")
    ap.add_argument("--workload", choices=["base", "oneshot", "chunker"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.workload:
        workload(args.workload, sizes[0], args.delta)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    print(f"{'KB':>5} {'one-shot Minstr':>15} {'chunker Minstr':>14} {'ratio':>6}")
    for kb in sizes:
        base = count("base", kb, args.delta)
        one = count("oneshot", kb, args.delta) - base
        chunker = count("chunker", kb, args.delta) - base
        print(f"{kb:>5} {one / 1e6:>15.0f} {chunker / 1e6:>14.0f} {chunker / one:>6.2f}")


if __name__ == "__main__":
    main()
