"""One app's Prometheus metrics (``GET /metrics``; the list with types and labels is in
``docs/operations.md``).

Each app has its own :class:`Metrics` and its own ``prometheus_client.CollectorRegistry``
(never the process-wide default: tests build many apps in one process). The counts are
plain Python numbers kept where the runtime already is, and a custom collector
(prometheus_client docs, "Custom Collectors") turns them into metric families when
``/metrics`` is read:

- the per-frame path (a frame written, a chunk delivered) does an attribute increment on an
  object bound once per connection (:class:`Sent`) or a ``bisect`` into a bucket list
  (:class:`Buckets`): no lock, no label lookup, no allocation for ASCII frames;
- rarer events (a stream finished, an error, a retry, a resume, a limit hit) add to a
  ``collections.Counter`` keyed by their label;
- gauges (connections and streams by state, backlog) are read from the runtime's registry at
  scrape time, so nothing is counted for them at all.

Everything runs on the Trio thread, so the numbers need no lock.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

if TYPE_CHECKING:
    from streamer.runtime.registry import Registry
    from streamer.runtime.stream import Stream

#: a frame as a transport writes it (WebSocket text, SSE and AI SDK bytes)
Frame = TypeVar("Frame", bound=str | bytes)
#: what ``/metrics`` answers with: the text format 0.0.4, which every Prometheus reads (what
#: ``prometheus_client``'s own handler sends a scraper that asks for nothing newer)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: the transports whose frames are counted (``aisdk``: ``POST /api/chat``'s response)
TRANSPORTS = ("websocket", "sse", "aisdk")
#: histogram bounds (s): time to first token, the gap between two deliveries to one
#: connection, a stream's whole duration
TTFT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
GAP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DURATION_BUCKETS_S = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: a stream's cancel reason (``Stream.cancel``, the trace's ``cancelled``) → its cause label
CANCEL_CAUSES = (("stop", "stop"), ("no subscriber", "grace_period"),
                 ("server shutdown", "server_shutdown"), ("session deleted", "session_deleted"),
                 ("removed from the queue", "queue_remove"))
#: errors that end a stream early the way a cancellation does (the cancellation matrix)
ERROR_CAUSES = {"paused_too_long": "paused_too_long", "provider_timeout": "provider_timeout",
                "response_too_large": "response_too_large"}
#: errors that are a limit reached: the setting's name
ERROR_LIMITS = {"paused_too_long": "streams.paused_limit_s",
                "response_too_large": "streams.max_response_chars"}
#: resume outcomes (``log/resume.py``'s plans)
RESUME_OUTCOMES = ("exact", "gap", "stored", "not_found")


def cancel_cause(reason: str) -> str:
    """The cause label of a cancel reason (``other`` for one this table does not know)."""
    for prefix, cause in CANCEL_CAUSES:
        if reason.startswith(prefix):
            return cause
    return "other"


def utf8_len(data: str | bytes) -> int:
    """Bytes ``data`` takes on the wire: ``len`` for bytes and ASCII text (CPython knows a
    string is ASCII without scanning it), an encode only for other text."""
    if isinstance(data, bytes) or data.isascii():
        return len(data)
    return len(data.encode())


class Sent:
    """Frames and bytes one transport wrote (bound once per connection)."""

    __slots__ = ("bytes", "events", "heartbeats")

    def __init__(self) -> None:
        self.events = 0
        self.heartbeats = 0
        self.bytes = 0

    def event(self, data: Frame) -> Frame:
        """Count one event's frame; returns it (``yield sent.event(frame)``)."""
        self.events += 1
        # utf8_len inlined: this runs once per frame
        self.bytes += len(data) if isinstance(data, bytes) or data.isascii() \
            else len(data.encode())
        return data

    def heartbeat(self, data: Frame) -> Frame:
        self.heartbeats += 1
        self.bytes += utf8_len(data)
        return data


class Buckets:
    """A histogram's counts: one per bound (``le``, Prometheus' inclusive upper bound) and
    one past the last, their values' sum. :meth:`observe` is a ``bisect`` and two adds."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count of values <= le)`` per bound, ``+Inf`` last."""
        out, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class StreamObserver:
    """One stream's trace listener (:class:`~streamer.runtime.trace.Trace`): the time to
    first token (``started`` to the first ``first_token``) and provider retries."""

    __slots__ = ("metrics", "provider", "seen_first", "started_ms")

    def __init__(self, metrics: Metrics, provider: str) -> None:
        self.metrics = metrics
        self.provider = provider
        self.started_ms: float | None = None
        self.seen_first = False

    def __call__(self, name: str, t_ms: float, detail: Mapping[str, Any]) -> None:
        if name == "started":
            self.started_ms = t_ms
        elif name == "first_token" and not self.seen_first and self.started_ms is not None:
            self.seen_first = True
            self.metrics.ttft_of(self.provider).observe((t_ms - self.started_ms) / 1000)
        elif name == "retry":
            self.metrics.retries[(self.provider, str(detail.get("code")))] += 1


class Metrics:
    """The counts of one app, and its ``CollectorRegistry`` (:attr:`registry`).

    Args:
        live: the runtime's registry, read for the gauges at scrape time (``None``: no
            gauges, for tests of the counts alone).
    """

    def __init__(self, live: Registry | None = None) -> None:
        self.live = live
        self.sent = {transport: Sent() for transport in TRANSPORTS}
        self.chunk_gap = Buckets(GAP_BUCKETS_S)
        self.ttft: dict[str, Buckets] = {}
        self.duration = Buckets(DURATION_BUCKETS_S)
        self.connections_opened: Counter[str] = Counter()
        self.streams_finished: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.cancellations: Counter[str] = Counter()
        self.retries: Counter[tuple[str, str]] = Counter()
        self.resumes: Counter[str] = Counter()
        self.limits: Counter[str] = Counter()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ counting

    def sent_by(self, transport: str) -> Sent:
        """The frame counts of ``transport`` (bind once, then increment)."""
        return self.sent.setdefault(transport, Sent())

    def ttft_of(self, provider: str) -> Buckets:
        found = self.ttft.get(provider)
        if found is None:
            found = self.ttft[provider] = Buckets(TTFT_BUCKETS_S)
        return found

    def error(self, code: str) -> None:
        """An error told to a client: a refused request or control message, a resume gap
        (a stream's own error is counted once when it finishes, :meth:`stream_finished`)."""
        self.errors[code] += 1

    def limit_hit(self, name: str) -> None:
        """A limit refused or ended something; ``name`` is its setting (``section.key``)."""
        self.limits[name] += 1

    def resume(self, outcome: str) -> None:
        """A resume cursor's plan: ``exact``, ``gap``, ``stored`` or ``not_found``."""
        self.resumes[outcome] += 1

    def stream_observer(self, provider: str) -> StreamObserver:
        return StreamObserver(self, provider)

    def stream_finished(self, stream: Stream) -> None:
        """A stream's answer is over (before any subscriber hears of it): its finish reason,
        duration, error (once, however many follow it) and cancel cause."""
        self.streams_finished[stream.finish_reason or "error"] += 1
        complete, error = stream.log.complete, stream.log.error
        if complete is not None and complete.duration_ms is not None:
            self.duration.observe(complete.duration_ms / 1000)
        code = error.code if error is not None else None
        if code is not None:
            self.errors[code] += 1
            if code in ERROR_LIMITS:
                self.limits[ERROR_LIMITS[code]] += 1
        if stream.cancel_reason is not None:
            self.cancellations[cancel_cause(stream.cancel_reason[0])] += 1
        elif code in ERROR_CAUSES:
            self.cancellations[ERROR_CAUSES[code]] += 1

    # ------------------------------------------------------------------ reading

    def exposition(self) -> bytes:
        """The Prometheus text of everything (``prometheus_client.generate_latest``)."""
        return generate_latest(self.registry)

    def families(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._histograms()
        if self.live is not None:
            yield from live_gauges(self.live, self.limits)
        else:
            yield _labelled(CounterMetricFamily, "streamer_limits_hit",
                            "Limits reached, by the setting's name", "limit", self.limits)

    def _counters(self) -> Iterator[Metric]:
        by_transport = [(t, s) for t, s in self.sent.items()]
        for name, doc, attr in (
                ("streamer_events_sent", "Events written, by transport", "events"),
                ("streamer_bytes_sent", "Payload bytes written (UTF-8), by transport", "bytes"),
                ("streamer_heartbeats_sent", "Heartbeats written, by transport",
                 "heartbeats")):
            family = CounterMetricFamily(name, doc, labels=["transport"])
            for transport, sent in by_transport:
                family.add_metric([transport], getattr(sent, attr))
            yield family
        yield _labelled(CounterMetricFamily, "streamer_connections_opened",
                        "Connections opened, by transport", "transport",
                        self.connections_opened, ("websocket", "sse"))
        yield _labelled(CounterMetricFamily, "streamer_streams_finished",
                        "Streams finished, by finish reason", "finish_reason",
                        self.streams_finished, ("stop", "length", "cancelled", "error"))
        yield _labelled(CounterMetricFamily, "streamer_errors", "Errors told to clients, by code",
                        "code", self.errors)
        yield _labelled(CounterMetricFamily, "streamer_cancellations",
                        "Streams ended early, by cause", "cause", self.cancellations)
        yield _labelled(CounterMetricFamily, "streamer_resumes",
                        "Resume cursors, by outcome", "outcome", self.resumes, RESUME_OUTCOMES)
        retries = CounterMetricFamily("streamer_provider_retries",
                                      "Provider calls retried, by provider and error code",
                                      labels=["provider", "code"])
        for (provider, code), count in sorted(self.retries.items()):
            retries.add_metric([provider, code], count)
        yield retries

    def _histograms(self) -> Iterator[Metric]:
        ttft = HistogramMetricFamily("streamer_time_to_first_token_seconds",
                                     "From a stream's start to its first output, by provider",
                                     labels=["provider"])
        for provider, buckets in sorted(self.ttft.items()):
            ttft.add_metric([provider], buckets.cumulative(), buckets.total)
        yield ttft
        for name, doc, buckets in (
                ("streamer_chunk_gap_seconds",
                 "Between two deliveries to one connection while it streams", self.chunk_gap),
                ("streamer_stream_duration_seconds", "From a stream's start to its end",
                 self.duration)):
            family = HistogramMetricFamily(name, doc)
            family.add_metric([], buckets.cumulative(), buckets.total)
            yield family


def _labelled(kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, doc: str,
              label: str, counts: Mapping[str, float], always: Iterable[str] = ()) -> Metric:
    """A family with one label: ``counts`` by its value, ``always`` present (as 0)."""
    family = kind(name, doc, labels=[label])
    for value in sorted({*always, *counts}):
        family.add_metric([value], counts.get(value, 0))
    return family


def live_gauges(live: Registry, limits: Counter[str]) -> Iterator[Metric]:
    """What the runtime holds now, and the limits its security counters saw refused."""
    states: Counter[tuple[str, str]] = Counter()
    backlog = outbox = 0
    for connection in live.live_connections:
        transport = str(getattr(connection, "transport", "other"))
        sub = getattr(connection, "subscription", None)
        state = "idle" if sub is None else "paused" if sub.pacer.paused else "streaming"
        states[(transport, state)] += 1
        if sub is not None:
            backlog += sub.pacer.progress().backlog_chars
        box = getattr(connection, "outbox", None)
        outbox += box.queued() if box is not None else 0
    connections = GaugeMetricFamily("streamer_connections",
                                    "Open connections, by transport and delivery state",
                                    labels=["transport", "state"])
    for transport in sorted({"websocket", "sse", *(t for t, _ in states)}):
        for state in ("streaming", "paused", "idle"):
            connections.add_metric([transport, state], states[(transport, state)])
    yield connections
    queued = sum(len(s.queue) for s in live.sessions.values())
    yield _labelled(GaugeMetricFamily, "streamer_streams", "Streams, by state", "state",
                    {"queued": queued, "running": len(live.running_streams())})
    yield GaugeMetricFamily("streamer_sessions", "Sessions in memory", value=len(live.sessions))
    yield GaugeMetricFamily("streamer_subscriptions", "Connections following a stream now",
                            value=live.active_subscriptions)
    yield GaugeMetricFamily("streamer_backlog_chars",
                            "Characters generated but not yet delivered, over all connections",
                            value=backlog)
    yield GaugeMetricFamily("streamer_outbox_events",
                            "Events queued for connections' writers", value=outbox)
    yield GaugeMetricFamily("streamer_draining", "1 while the server drains",
                            value=int(live.draining))
    refused = Counter(limits)
    for source in (live.limits, live.policy):
        refused.update(getattr(source, "hits", {}))
    yield _labelled(CounterMetricFamily, "streamer_limits_hit",
                    "Limits reached, by the setting's name", "limit", refused)


class _Collector:
    """The app's one collector: :meth:`Metrics.families` at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self.metrics.families()
