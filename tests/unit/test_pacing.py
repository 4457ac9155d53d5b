"""The token bucket that paces a sender, charged in SMS segments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coachbot.domain.pacing import TokenBucket, bucket_for


def test_a_full_bucket_lets_a_burst_through_then_spaces_by_segments() -> None:
    bucket = TokenBucket(rate=10, burst=10)
    assert [bucket.reserve(1, 0.0) for _ in range(10)] == [0.0] * 10
    # The eleventh segment waits a tenth of a second; a 3-segment text three tenths more.
    assert bucket.reserve(1, 0.0) == pytest.approx(0.1)
    assert bucket.reserve(3, 0.0) == pytest.approx(0.4)


def test_a_message_longer_than_the_burst_is_slowed_not_refused() -> None:
    bucket = TokenBucket(rate=2, burst=1)
    assert bucket.reserve(5, 0.0) == pytest.approx(2.0)


def test_idle_time_refills_only_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=5, burst=5)
    for _ in range(5):
        bucket.reserve(1, 0.0)
    assert bucket.reserve(5, 100.0) == 0.0
    assert bucket.reserve(1, 100.0) == pytest.approx(0.2)


def test_a_throttle_pause_holds_every_start_until_it_ends() -> None:
    bucket = bucket_for(100)
    bucket.pause_until(7.0)
    assert bucket.reserve(1, 5.0) == pytest.approx(2.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5)])
def test_nonsense_rates_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate=rate, burst=burst)


@given(
    rate=st.floats(min_value=0.5, max_value=500),
    costs=st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=300),
)
def test_the_long_run_rate_never_exceeds_the_configured_segments_per_second(
    rate: float, costs: list[int]
) -> None:
    """Starting each send at its reserved time, segments sent by time t never exceed
    burst + rate * t: the sender's cap holds however the messages are sized."""
    bucket = bucket_for(rate)
    now = 0.0
    sent = 0
    for cost in costs:
        now += bucket.reserve(cost, now)
        sent += cost
        assert sent <= bucket.burst + rate * now + 1e-6
