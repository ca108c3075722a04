"""Stage 2 of the pipeline: markdown deltas -> sanitized HTML block ops. Pure: no trio, no quart.

- ``ops``: the block ops a client applies (``append``/``replace``/``text``/``splice``), ``apply_op``
  and the merge of runs; ``static/client.js`` mirrors this module.
- ``markdown``: the one-shot render (mistune -> nh3 allowlist) and its mistune-free fast paths.
- ``holdback``: what part of the streamed markdown is decided and may be rendered yet.
- ``chunker``: the incremental renderer (``feed(delta) -> ops``, ``close() -> ops``).
"""
