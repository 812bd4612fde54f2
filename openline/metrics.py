"""The service's Prometheus metrics (prometheus-client), in a registry of each app's own: what `/metrics` shows.

Requests are labelled by route template (`/v3/directline/conversations/{conversation_id}/activities`), never
by their path, so ids cannot multiply the series; requests no route took (unknown paths, CORS preflights)
share the label `other`. The count of stored conversations is read from the store when scraped, at most every
`CONVERSATIONS_TTL` seconds (on a shared store it is the store's count, the same on every instance).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from openline.protocol.errors import ErrorKind

log = logging.getLogger("openline.metrics")
# no `_created` series beside each counter and histogram (a timestamp per label set, which doubles the text
# and that Prometheus does not read from this format); a setting of the process's prometheus-client
disable_created_metrics()  # type: ignore[no-untyped-call]

OTHER_ROUTE = "other"
CONVERSATIONS_TTL = 5.0  # seconds a count of the stored conversations is shown before it is read again
CONVERSATIONS_TIMEOUT = 2.0  # seconds the count may take before the scrape shows NaN instead
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WEBSOCKET"})
# request latency, seconds: from a cached GET (a millisecond) to a POST waiting on a slow bot
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)
OUTCOMES = {
    None: "delivered",
    ErrorKind.BOT_TIMEOUT: "timeout",
    ErrorKind.BOT_UNREACHABLE: "unreachable",
    ErrorKind.BOT_REJECTED: "rejected",
}


class _Requests(Collector):
    """The request counter and latency histogram, kept as plain numbers and made metric families when scraped.

    prometheus-client's own Counter and Histogram take a lock and check their state on every update (about 2 µs
    a request for the two); requests are counted on the event loop's thread only, and scraped there too, so
    a list per label set, updated without a lock, gives the same series for a tenth of that.
    """

    def __init__(self) -> None:
        # (route, method, status) -> [observations per bucket (the last: above every bound), sum of seconds]
        self.stats: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, key: tuple[str, str, int], seconds: float) -> None:
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = [0.0] * (len(_REQUEST_BUCKETS) + 2)
        stats[bisect.bisect_left(_REQUEST_BUCKETS, seconds)] += 1  # bucket i: seconds <= bound i, as `le` says
        stats[-1] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        counter = CounterMetricFamily(
            "openline_http_requests",
            "HTTP requests and WebSocket sessions answered, by route template, method and status (101: a WebSocket"
            " accepted)",
            labels=["route", "method", "status"],
        )
        by_route: dict[tuple[str, str], list[float]] = {}
        for (route, method, status), stats in self.stats.items():
            counter.add_metric([route, method, str(status)], sum(stats[:-1]))
            merged = by_route.setdefault((route, method), [0.0] * len(stats))
            for i, value in enumerate(stats):
                merged[i] += value
        histogram = HistogramMetricFamily(
            "openline_http_request_duration_seconds",
            "Time to answer a request (a WebSocket: its whole session)",
            labels=["route", "method"],
        )
        bounds = [*(floatToGoString(b) for b in _REQUEST_BUCKETS), "+Inf"]  # type: ignore[no-untyped-call]
        for labels, stats in by_route.items():
            cumulative = [float(c) for c in itertools.accumulate(stats[:-1])]
            histogram.add_metric(list(labels), list(zip(bounds, cumulative, strict=True)), stats[-1])
        yield counter
        yield histogram


class Metrics:
    """Every metric of one app. `count_conversations()` reads the store's count (called when scraped)."""

    def __init__(self, count_conversations: Callable[[], Awaitable[int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = _Requests()
        r.register(self._requests)
        self.deliveries = Counter(
            "openline_bot_deliveries",
            "Activities POSTed to bots, by outcome: delivered (2xx), rejected (another"
            " status), unreachable (no answer: refused, reset), timeout (no answer within the bot timeout)",
            ["outcome"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "openline_bot_delivery_duration_seconds",
            "Time a bot took to answer a delivery, by outcome",
            ["outcome"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.deliveries_in_flight = Gauge(
            "openline_bot_deliveries_in_flight", "Deliveries waiting for the bot's answer", registry=r
        )
        self.open_websockets = Gauge(
            "openline_open_websockets",
            "Open WebSockets: 3.0 streams and inspector live feeds, by route template",
            ["route"],
            registry=r,
        )
        self.conversations = Gauge(
            "openline_stored_conversations",
            "Conversations in the store (every instance's, on a shared store);"
            f" read at most every {CONVERSATIONS_TTL:g} s; NaN when the store could not say",
            registry=r,
        )
        self._count = count_conversations
        self.count_every = CONVERSATIONS_TTL  # seconds
        self._counted_at = -math.inf
        self._counting = asyncio.Lock()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (`route`: its template, or OTHER_ROUTE; `seconds` it took)."""
        self._requests.observe((route, method if method in _METHODS else "other", status), seconds)

    def delivery(self, error: ErrorKind | None, seconds: float) -> None:
        """Count one delivery to a bot and its outcome (`error`: None when the bot took it)."""
        outcome = OUTCOMES.get(error, "failed")
        self.deliveries.labels(outcome).inc()
        self.delivery_seconds.labels(outcome).observe(seconds)

    async def exposition(self) -> bytes:
        """The text format of every metric, the stored conversations counted anew when their count is old."""
        await self._refresh_conversations()
        return generate_latest(self.registry)

    async def _refresh_conversations(self) -> None:
        if self._count is None:
            return
        async with self._counting:  # scrapes at once count once
            if time.monotonic() - self._counted_at < self.count_every:
                return
            try:
                async with asyncio.timeout(CONVERSATIONS_TIMEOUT):
                    self.conversations.set(await self._count())
            except Exception as e:  # the store away or slow: the scrape still answers
                log.warning("could not count the stored conversations for /metrics: %s", e)
                self.conversations.set(math.nan)
            self._counted_at = time.monotonic()
