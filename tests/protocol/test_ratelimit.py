"""Token buckets with a fake clock: bursts, refills, the two limits of a request, and bounded memory."""

from __future__ import annotations

import pytest

from openline.protocol.ratelimit import (
    InvalidRate,
    Rate,
    RateLimiter,
    TokenBuckets,
    parse_rate,
    retry_after_milliseconds,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/m", Rate(600, 60.0)),
        ("20/s", Rate(20, 1.0)),
        (" 5000 / h ", Rate(5000, 3600.0)),
        ("100/d", Rate(100, 86400.0)),
        ("100/10s", Rate(100, 10.0)),
        ("3/2m", Rate(3, 120.0)),
        ("20/S", Rate(20, 1.0)),
        ("off", None),
        ("OFF", None),
    ],
)
def test_rates_parse(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "20", "/s", "0/s", "20/0s", "20/x", "-1/s", "1.5/s", "20/s/s", "many"])
def test_what_is_not_a_rate_is_refused_saying_what_is(text: str) -> None:
    with pytest.raises(InvalidRate, match="per s, m, h or d"):
        parse_rate(text)


def test_a_rate_reads_back_as_written() -> None:
    assert [str(parse_rate(t)) for t in ("600/m", "20/s", "100/10s")] == ["600/m", "20/s", "100/10s"]


def test_a_burst_of_the_count_then_a_wait_for_one_token() -> None:
    buckets = TokenBuckets(Rate(3, 6.0))  # one token every 2 s
    for _ in range(3):
        assert buckets.wait("k", 100.0) == 0.0
        buckets.take("k", 100.0)
    assert buckets.wait("k", 100.0) == pytest.approx(2.0)
    assert buckets.wait("k", 101.5) == pytest.approx(0.5)
    assert buckets.wait("k", 102.0) == 0.0
    buckets.take("k", 102.0)
    assert buckets.wait("k", 102.0) == pytest.approx(2.0)


def test_a_bucket_refills_to_its_count_and_no_further() -> None:
    buckets = TokenBuckets(Rate(2, 1.0))
    buckets.take("k", 0.0)
    buckets.take("k", 0.0)
    for _ in range(2):  # an hour later: two again, not thousands
        assert buckets.wait("k", 3600.0) == 0.0
        buckets.take("k", 3600.0)
    assert buckets.wait("k", 3600.0) > 0.0


def test_keys_have_buckets_of_their_own() -> None:
    buckets = TokenBuckets(Rate(1, 60.0))
    buckets.take("a", 0.0)
    assert buckets.wait("a", 0.0) > 0.0
    assert buckets.wait("b", 0.0) == 0.0


def test_a_clock_going_back_refills_nothing_and_breaks_nothing() -> None:
    buckets = TokenBuckets(Rate(1, 10.0))
    buckets.take("k", 100.0)
    assert buckets.wait("k", 50.0) == pytest.approx(10.0)


def test_idle_buckets_are_dropped_as_the_table_is_used() -> None:
    buckets = TokenBuckets(Rate(5, 10.0))
    for i in range(1000):
        buckets.take(f"key{i}", 0.0)
    assert len(buckets) == 1000
    for i in range(1000):  # a period later, each use drops idle buckets (full again: the same as none)
        buckets.take(f"other{i % 10}", 10.0 + i * 0.001)
    assert len(buckets) <= 10


def test_the_table_never_holds_more_than_its_bound() -> None:
    buckets = TokenBuckets(Rate(5, 3600.0), max_keys=100)
    for i in range(10_000):  # a flood of distinct keys, none idle long enough to be dropped
        buckets.take(f"key{i}", float(i) / 1000)
        assert len(buckets) <= 101
    assert buckets.wait("key9999", 10.0) == 0.0  # the recent ones are kept: four tokens left
    buckets.take("key9999", 10.0)
    assert len(buckets) <= 101


def test_a_request_takes_from_both_of_its_buckets_or_from_neither() -> None:
    limiter = RateLimiter(Rate(3, 30.0), Rate(2, 30.0))  # refills: 10 s and 15 s a token
    assert limiter.acquire("cred", "conv", 0.0) == 0.0
    assert limiter.acquire("cred", "conv", 0.0) == 0.0
    assert limiter.acquire("cred", "conv", 0.0) == pytest.approx(15.0)  # the conversation is empty
    # the refused request took nothing: the credential still has its third token, for another conversation
    assert limiter.acquire("cred", "other", 0.0) == 0.0
    assert limiter.acquire("cred", "other", 0.0) == pytest.approx(10.0)  # now the credential is empty
    assert limiter.acquire("another", "other", 0.0) == 0.0


def test_a_missing_key_or_limit_is_not_counted() -> None:
    only_credentials = RateLimiter(Rate(1, 60.0), None)
    assert only_credentials.enabled
    assert only_credentials.acquire("cred", "conv", 0.0) == 0.0
    assert only_credentials.acquire("cred2", "conv", 0.0) == 0.0  # no conversation limit
    assert only_credentials.acquire(None, "conv", 0.0) == 0.0
    assert not RateLimiter(None, None).enabled
    assert RateLimiter(None, None).acquire("cred", "conv", 0.0) == 0.0


@pytest.mark.parametrize(
    ("wait", "seconds", "milliseconds"),
    [(0.0001, 1, 1), (0.4, 1, 400), (1.0, 1, 1000), (1.2, 2, 1200), (59.9991, 60, 60000)],
)
def test_retry_after_rounds_up(wait: float, seconds: int, milliseconds: int) -> None:
    assert retry_after_seconds(wait) == seconds
    assert retry_after_milliseconds(wait) == milliseconds
