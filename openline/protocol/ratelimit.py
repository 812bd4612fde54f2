"""Rate limits as token buckets: a `Rate` ("600/m": 600 at once, refilled over a minute) and bounded buckets of them.

How this works: each key (a hashed credential, a conversation id) has a bucket
that holds up to `count` tokens and refills at `count / period` tokens a
second; a request takes one token, or is refused with the seconds until one
will be there. A bucket untouched for a whole period is full again, the same as
no bucket at all, so such buckets are dropped as the table is used; the table
also keeps at most `max_keys` buckets, forgetting the least recently used past
that (which at worst gives that key its burst again). Pure code: the caller
passes the time.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass

PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_KEYS = 100_000  # buckets kept per limit (about 200 bytes each)
_DROP_PER_TAKE = 4  # idle buckets looked at (and dropped) on each take: the table shrinks as it is used


class InvalidRate(ValueError):
    """A rate that is not `N/unit` or `off`; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `period` seconds: a burst of `count`, then `count / period` a second."""

    count: int
    period: float

    def __str__(self) -> str:
        unit = next((u for u, seconds in PERIODS.items() if seconds == self.period), None)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.period:g}s"


def parse_rate(text: str) -> Rate | None:
    """A Rate from "600/m", "20/s", "1000/h", "5000/d" or "100/10s"; None for "off". Raises InvalidRate."""
    value = text.strip().lower()
    if value in ("off", "none", "0"):
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*(\d*)\s*([smhd])", value)
    if not match or int(match.group(1)) == 0 or match.group(2) == "0":
        raise InvalidRate(f"{text!r} is not a rate: use a count per s, m, h or d (e.g. 600/m, 20/s), or off")
    period = int(match.group(2) or 1) * PERIODS[match.group(3)]
    return Rate(min(int(match.group(1)), 1_000_000_000), period)


def retry_after_seconds(wait: float) -> int:
    """The whole seconds of HTTP's `Retry-After` (RFC 9110 §10.2.3) for a wait: rounded up, at least 1."""
    return max(1, math.ceil(wait))


def retry_after_milliseconds(wait: float) -> int:
    """The same wait in whole milliseconds, rounded up, at least 1 (what botframework-directlinejs reads)."""
    return max(1, math.ceil(wait * 1000))


class TokenBuckets:
    """One bucket per key for one `Rate`; at most `max_keys` of them."""

    def __init__(self, rate: Rate, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._per_second = rate.count / rate.period
        # key -> (tokens, when they were counted); least recently taken from first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.rate.count)
        tokens, counted = bucket
        return min(float(self.rate.count), tokens + max(0.0, now - counted) * self._per_second)

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may take a token (0.0: now); takes nothing."""
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._per_second

    def take(self, key: str, now: float) -> None:
        """Take one token of `key` (its bucket may go below zero only if `wait` said otherwise: callers check)."""
        self._buckets[key] = (self._tokens(key, now) - 1.0, now)
        self._buckets.move_to_end(key)
        self._drop_idle(now)

    def _drop_idle(self, now: float) -> None:
        for _ in range(_DROP_PER_TAKE):
            if not self._buckets:
                return
            key, (_, counted) = next(iter(self._buckets.items()))
            if now - counted < self.rate.period and len(self._buckets) <= self.max_keys:
                return
            del self._buckets[key]  # full again (or one too many): the same as no bucket


class RateLimiter:
    """The two limits of a request: per credential and per conversation (either may be None: not limited)."""

    def __init__(self, per_credential: Rate | None, per_conversation: Rate | None, max_keys: int = MAX_KEYS) -> None:
        self.credentials = TokenBuckets(per_credential, max_keys) if per_credential else None
        self.conversations = TokenBuckets(per_conversation, max_keys) if per_conversation else None

    @property
    def enabled(self) -> bool:
        return self.credentials is not None or self.conversations is not None

    def acquire(self, credential: str | None, conversation: str | None, now: float) -> float:
        """0.0 when the request may go (a token of each of its buckets taken); otherwise the seconds to wait
        before it could, and nothing is taken. A None key is not counted."""
        checks = [
            (buckets, key)
            for buckets, key in ((self.credentials, credential), (self.conversations, conversation))
            if buckets is not None and key is not None
        ]
        wait = max((buckets.wait(key, now) for buckets, key in checks), default=0.0)
        if wait > 0.0:
            return wait
        for buckets, key in checks:
            buckets.take(key, now)
        return 0.0
