"""Stage 2 of the pipeline: markdown deltas -> sanitized HTML block ops. Pure: no trio, no quart.

- ``ops``: the block ops a client applies (``append``/``replace``/``text``/``splice``), ``apply_op``
  and the merge of runs; ``static/client.js`` mirrors this module.
- ``sanitize``: the HTML policy: allowlists, the URL rule, the one nh3 cleaner.
- ``markdown``: the one-shot render (``Renderer``: mistune + math + task lists -> sanitized
  top-level blocks); ``templates``: its mistune-free fast renderers, checked on samples at start.
- ``holdback``: what part of the streamed markdown is decided and may be rendered yet;
  ``linestart``: what a held line's start decides.
- ``chunker``: the incremental renderer (``feed(delta) -> ops``, ``close() -> ops``;
  ``docs/chunker.md``).
"""
