"""A token bucket charged in SMS segments: how fast one sender may hand messages to Twilio.

Twilio meters a sender in message segments per second (a 3-segment text costs three), so
the bucket is charged the segment count, not one per request. Reservations are granted in
order and the caller waits until its own start time, which keeps the long-run rate exact
(a sleep that overshoots is absorbed, not added, because start times come from the bucket,
not from the caller's clock). Pure: the caller passes monotonic seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` segments per second with room for `burst` segments at once.

    `reserve(cost, now)` books `cost` segments and returns how many seconds the caller
    must wait before sending. A message larger than the burst is still allowed (it simply
    waits for the full cost), so a long text is slowed, never refused.
    """

    rate: float
    burst: float
    _tokens: float = field(init=False)
    _updated: float | None = field(default=None, init=False)
    _paused_until: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least one segment, got {self.burst}")
        self._tokens = self.burst

    def _refill(self, now: float) -> None:
        if self._updated is None:
            self._updated = now
            return
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def reserve(self, cost: float, now: float) -> float:
        if cost <= 0:
            raise ValueError(f"cost must be positive, got {cost}")
        self._refill(now)
        # Tokens may go negative: that debt is the queue of reservations ahead of us.
        self._tokens -= cost
        wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        return max(wait, self._paused_until - now)

    def pause_until(self, until: float) -> None:
        """The provider said "slow down" (429 + Retry-After): nothing starts before `until`."""
        self._paused_until = max(self._paused_until, until)


def bucket_for(segments_per_second: float) -> TokenBucket:
    # One second of burst: enough to keep concurrent calls busy without a visible spike.
    return TokenBucket(rate=segments_per_second, burst=max(1.0, segments_per_second))
