"""What an operator watches (``docs/operations.md``): Prometheus metrics of one app
(:mod:`.metrics`), structured log records (:mod:`.logging`), and the load balancer's health
checks with the ``/metrics`` route (:mod:`.health`).

It sits beside the pipeline, not in it: the runtime counts with cheap increments at the points
that already exist (a frame written, a stream finished, a trace entry) and this package turns
the counts into text when someone asks.
"""
