"""Benchmarks. ``python -m bench`` is the load harness (issue 16, ``bench/harness.py``); the
other scripts here run on their own (``make bench``)."""
