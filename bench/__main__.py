"""``python -m bench``: the load harness (``bench/harness.py``)."""

from bench.harness import main

main()
