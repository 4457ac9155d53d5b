"""When a nudge is due and when it may be sent: pure functions over local wall times.

Schedules are local wall times plus an IANA zone, never a fixed UTC offset, so a patient's
08:30 stays 08:30 across daylight saving. Every instant in and out of this module is an aware
datetime; results are always in UTC. Nothing here reads the clock or does I/O.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from coachbot.domain.clock import require_aware, utc_offset_at

TRACKS: tuple[str, ...] = ("sleep", "exercise", "diet", "mindfulness", "rehab", "checkin")

ALL_DAYS: frozenset[int] = frozenset(range(7))

# More than a dozen texts a day on one track is never a care plan; the cap also keeps the
# stored list ("HH:MM,...", 200 characters) storable. Every way in (enrolment, the care plan,
# programme defaults, a patient's own schedule) checks it.
MAX_TIMES_PER_TRACK = 12

_ONE_DAY = dt.timedelta(days=1)
_ONE_SECOND = dt.timedelta(seconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# tzdata never puts two offset changes within an hour of each other, so sampling the offset
# hourly finds every transition in a span.
_TRANSITION_PROBE = dt.timedelta(hours=1)


def _check_days(days: frozenset[int], what: str) -> None:
    bad = sorted(d for d in days if not isinstance(d, int) or not 0 <= d <= 6)
    if bad:
        raise ValueError(f"{what} must be 0 (Monday) .. 6 (Sunday), got {bad}")


def _check_wall_time(t: dt.time, what: str) -> None:
    if t.tzinfo is not None:
        raise ValueError(f"{what} must be a local wall time without tzinfo, got {t!r}")


@dataclass(frozen=True)
class Phase:
    """A span of the programme, counted in days since enrolment, with its own days of week."""

    from_day: int
    to_day: int | None
    days_of_week: frozenset[int]

    def __post_init__(self) -> None:
        if self.from_day < 0:
            raise ValueError(f"phase from_day must be >= 0, got {self.from_day}")
        if self.to_day is not None and self.to_day <= self.from_day:
            raise ValueError(
                f"phase to_day must be after from_day, got {self.from_day}..{self.to_day}"
            )
        # An empty set is allowed on purpose: it is how a planned pause week is written.
        _check_days(self.days_of_week, "phase days_of_week")

    def covers(self, day_index: int) -> bool:
        return self.from_day <= day_index and (self.to_day is None or day_index < self.to_day)


@dataclass(frozen=True)
class TrackSchedule:
    track: str
    times: tuple[dt.time, ...]
    days_of_week: frozenset[int] = ALL_DAYS
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    phases: tuple[Phase, ...] = ()

    def __post_init__(self) -> None:
        if self.track not in TRACKS:
            raise ValueError(f"unknown track {self.track!r}; choose from {', '.join(TRACKS)}")
        # A schedule that can never fire is a silent missed nudge; refuse it up front.
        if not self.times:
            raise ValueError(f"schedule for {self.track!r} has no times")
        for t in self.times:
            _check_wall_time(t, "schedule time")
            # The occurrence key has minute resolution; seconds would let two slots share a key.
            if t.second or t.microsecond:
                raise ValueError(f"schedule times are whole minutes, got {t.isoformat()}")
        minutes = [t.replace(fold=0) for t in self.times]
        if len(set(minutes)) != len(minutes):
            raise ValueError(f"schedule for {self.track!r} repeats a time: {self.times}")
        if not self.days_of_week:
            raise ValueError(f"schedule for {self.track!r} has no days of week")
        _check_days(self.days_of_week, "days_of_week")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        ordered = sorted(self.phases, key=lambda p: p.from_day)
        for earlier, later in pairwise(ordered):
            if earlier.to_day is None or earlier.to_day > later.from_day:
                raise ValueError(f"phases overlap: {earlier} and {later}")

    def days_for(self, local_date: dt.date, enrolled_on: dt.date | None) -> frozenset[int]:
        if not self.phases:
            return self.days_of_week
        if enrolled_on is None:
            # Falling back to days_of_week would text on the wrong days; make the caller say.
            raise ValueError(f"schedule for {self.track!r} has phases; enrolled_on is required")
        index = (local_date - enrolled_on).days
        for phase in self.phases:
            if phase.covers(index):
                return phase.days_of_week
        return frozenset()

    def active_on(self, local_date: dt.date, enrolled_on: dt.date | None) -> bool:
        if self.start_date is not None and local_date < self.start_date:
            return False
        if self.end_date is not None and local_date > self.end_date:
            return False
        return local_date.weekday() in self.days_for(local_date, enrolled_on)


@dataclass(frozen=True)
class Occurrence:
    track: str
    local_date: dt.date
    wall_time: dt.time
    due_at: dt.datetime

    @property
    def key(self) -> str:
        return f"{self.track}:{self.local_date.isoformat()}T{self.wall_time:%H:%M}"


def _local_naive(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _candidates(wall: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime, bool]:
    """Both PEP 495 readings of a naive local datetime as UTC, and whether either is real.

    In a fold both readings exist (fold=0 is the earlier); in a gap neither does, and the
    fold=0 reading (the pre-transition offset) is the wall time pushed forward by the gap.
    """
    u0 = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    u1 = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    exists = _local_naive(u0, zone) == wall or _local_naive(u1, zone) == wall
    return u0, u1, exists


def _real_instants(wall: dt.datetime, zone: ZoneInfo) -> list[dt.datetime]:
    """Every instant whose local reading is exactly `wall`: none, one, or two in a fold."""
    u0, u1, _ = _candidates(wall, zone)
    return sorted({u for u in (u0, u1) if _local_naive(u, zone) == wall})


def _due_instant(wall: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, bool]:
    """Scheduling rule: first occurrence of a repeated time, a missing time moved by the gap.

    Returns the instant and whether it was shifted out of a gap.
    """
    real = _real_instants(wall, zone)
    if real:
        return real[0], False
    u0, u1, _ = _candidates(wall, zone)
    # Taking the later reading rather than trusting fold=0 keeps this right whichever way
    # round the offsets are: the later reading is always the one past the transition.
    return max(u0, u1), True


def due_instant(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A naive local wall time as the instant it is due, by the scheduling rule above."""
    return _due_instant(wall, zone)[0]


def _to_seconds(instant: dt.datetime) -> int:
    return (instant - _EPOCH) // _ONE_SECOND


def _from_seconds(seconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds)


def _first_second_where(
    lo: dt.datetime, hi: dt.datetime, pred: Callable[[dt.datetime], bool]
) -> dt.datetime:
    """Smallest whole second in (lo, hi] where a monotone predicate turns true.

    Zone transitions fall on whole seconds in tzdata, so a second-resolution search is exact.
    """
    lo_s, hi_s = _to_seconds(lo), -(-(hi - _EPOCH) // _ONE_SECOND)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if pred(_from_seconds(mid)):
            hi_s = mid
        else:
            lo_s = mid
    return _from_seconds(hi_s)


def _earliest_at_or_after(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """First instant whose local reading is >= `wall` (the transition itself inside a gap)."""
    u0, u1, exists = _candidates(wall, zone)
    if exists:
        return _real_instants(wall, zone)[0]
    lo, hi = min(u0, u1), max(u0, u1)
    return _first_second_where(lo, hi, lambda u: _local_naive(u, zone) >= wall)


def _transitions(zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """Instants in (lo, hi] where the zone's UTC offset changes."""
    found: list[dt.datetime] = []
    a = lo
    while a < hi:
        b = min(a + _TRANSITION_PROBE, hi)
        before = utc_offset_at(a, zone)
        if utc_offset_at(b, zone) != before:

            def changed(u: dt.datetime, before: dt.timedelta = before) -> bool:
                return utc_offset_at(u, zone) != before

            found.append(_first_second_where(a, b, changed))
        a = b
    return found


def occurrences_between(
    schedule: TrackSchedule,
    zone: ZoneInfo,
    start: dt.datetime,
    end: dt.datetime,
    *,
    enrolled_on: dt.date | None = None,
) -> list[Occurrence]:
    """Every occurrence with start <= due_at < end, sorted by due_at (all UTC).

    One per local day per slot: a repeated wall time fires at its first occurrence and a
    missing one moves forward by the gap. If a moved time lands on the very instant another
    slot of the same schedule fires (02:30 and 03:30 on a spring-forward night, or a whole
    skipped calendar day), only the slot that genuinely reads that wall time is kept: the
    patient gets one text at that moment, not two identical ones.
    """
    start = require_aware(start, "start")
    end = require_aware(end, "end")
    if schedule.phases and enrolled_on is None:
        # Refused whatever the window (even an empty one) so the bug shows up in tests.
        raise ValueError(f"schedule for {schedule.track!r} has phases; enrolled_on is required")
    if end <= start:
        return []
    # Margins: a gap shift can move an occurrence up to a day later (a skipped date), so
    # dates before the window's first local date can still land inside it.
    first = start.astimezone(zone).date() - 2 * _ONE_DAY
    last = end.astimezone(zone).date() + _ONE_DAY
    by_instant: dict[dt.datetime, tuple[bool, Occurrence]] = {}
    day = first
    while day <= last:
        if schedule.active_on(day, enrolled_on):
            for wall_time in schedule.times:
                wall_time = wall_time.replace(fold=0)
                due_at, shifted = _due_instant(dt.datetime.combine(day, wall_time), zone)
                if not start <= due_at < end:
                    continue
                occ = Occurrence(schedule.track, day, wall_time, due_at)
                held = by_instant.get(due_at)
                # Two slots can only share an instant when one was shifted out of a gap;
                # keep the one whose wall time really happens then.
                if held is None or (held[0] and not shifted):
                    by_instant[due_at] = (shifted, occ)
        day += _ONE_DAY
    return [by_instant[u][1] for u in sorted(by_instant)]


@dataclass(frozen=True)
class LocalWindow:
    """A span of local wall time, start inclusive, end exclusive; wraps midnight if start > end.

    start == end is empty (not "all day"), so a misconfigured window can never widen sending.
    """

    start: dt.time
    end: dt.time

    def __post_init__(self) -> None:
        _check_wall_time(self.start, "window start")
        _check_wall_time(self.end, "window end")

    def contains(self, t: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


DEFAULT_ALLOWED_WINDOW = LocalWindow(dt.time(8), dt.time(20))
DEFAULT_DAILY_CAP = 5


class QuietPolicy(StrEnum):
    DEFER = "defer"
    SKIP = "skip"


@dataclass(frozen=True)
class SendDecision:
    action: Literal["send", "defer", "skip"]
    send_at: dt.datetime | None
    reason: str | None


def _may_send_local(t: dt.time, allowed: LocalWindow, quiet: LocalWindow | None) -> bool:
    return allowed.contains(t) and not (quiet is not None and quiet.contains(t))


def may_send_at(
    instant: dt.datetime, zone: ZoneInfo, allowed: LocalWindow, quiet: LocalWindow | None
) -> bool:
    """True when the local wall time of `instant` is inside `allowed` and not inside `quiet`."""
    local = require_aware(instant, "instant").astimezone(zone).time()
    return _may_send_local(local, allowed, quiet)


def _blocked_reason(local: dt.time, allowed: LocalWindow, quiet: LocalWindow | None) -> str:
    # Quiet hours are the patient's own request, so name them first when both apply.
    if quiet is not None and quiet.contains(local):
        return "quiet_hours"
    return "outside_allowed_window"


def place_in_window(
    due_at: dt.datetime,
    zone: ZoneInfo,
    allowed: LocalWindow,
    quiet: LocalWindow | None,
    policy: QuietPolicy,
    *,
    max_defer: dt.timedelta = dt.timedelta(hours=16),
) -> SendDecision:
    """Send now, defer to the earliest permitted instant within max_defer, or skip.

    Permission depends only on the local wall reading, which moves continuously except at
    offset transitions. So the earliest permitted instant is due_at itself, an instant where
    the wall clock reads an opening boundary (allowed.start or quiet.end), or a transition
    instant; checking just those candidates is exact and never lands inside quiet hours.
    """
    due_at = require_aware(due_at, "due_at")
    if max_defer < dt.timedelta(0):
        raise ValueError(f"max_defer must not be negative, got {max_defer}")
    local = due_at.astimezone(zone).time()
    if _may_send_local(local, allowed, quiet):
        return SendDecision("send", due_at, None)
    reason = _blocked_reason(local, allowed, quiet)
    if policy is QuietPolicy.SKIP:
        return SendDecision("skip", None, reason)

    limit = due_at + max_defer
    boundaries = [allowed.start] + ([quiet.end] if quiet is not None else [])
    candidates = _transitions(zone, due_at, limit)
    day = due_at.astimezone(zone).date() - _ONE_DAY
    last_day = limit.astimezone(zone).date() + _ONE_DAY
    while day <= last_day:
        for boundary in boundaries:
            candidates.extend(_real_instants(dt.datetime.combine(day, boundary), zone))
        day += _ONE_DAY
    permitted = [
        u for u in candidates if due_at <= u <= limit and may_send_at(u, zone, allowed, quiet)
    ]
    if not permitted:
        return SendDecision("skip", None, "no_window")
    return SendDecision("defer", min(permitted), reason)


def overdue(
    due_at: dt.datetime,
    now: dt.datetime,
    stale_limit: dt.timedelta,
    zone: ZoneInfo,
    allowed: LocalWindow,
    quiet: LocalWindow | None,
    policy: QuietPolicy,
) -> bool:
    """Whether a nudge is later than its track's stale limit, counted from the first instant
    the window and quiet hours let it go, not from its wall-clock slot.

    A 05:59 sleep nudge deferred to the 08:00 window start is on time at 08:00; only a send
    that slipped past the permitted instant (downtime, a backlog) is "too late". The
    placement is computed only when the slot itself is older than the limit, so the common
    on-time path costs one subtraction.
    """
    if now - due_at <= stale_limit:
        return False
    decision = place_in_window(due_at, zone, allowed, quiet, policy)
    permitted_from = decision.send_at if decision.send_at is not None else due_at
    return now - permitted_from > stale_limit


def local_day_bounds(day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of a local calendar day.

    A day may be 23 or 25 hours, start after midnight where midnight is skipped, or be empty
    (start == end) where the whole date was skipped. Consecutive days tile the timeline.
    """
    start = _earliest_at_or_after(dt.datetime.combine(day, dt.time()), zone)
    end = _earliest_at_or_after(dt.datetime.combine(day + _ONE_DAY, dt.time()), zone)
    return start, end


def count_in_local_day(instants: Iterable[dt.datetime], day: dt.date, zone: ZoneInfo) -> int:
    """How many instants fall in local_day_bounds(day): the per-patient daily cap uses this."""
    start, end = local_day_bounds(day, zone)
    return sum(1 for i in instants if start <= require_aware(i) < end)


_HHMM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def parse_hhmm(text: str) -> dt.time:
    """'08:30', '8:30', '20:00' -> time. Anything else, including '24:00', is refused."""
    # [0-9] rather than \d: \d would accept Arabic-Indic and other Unicode digits.
    match = _HHMM.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid time {text!r}: expected HH:MM from 00:00 to 23:59")
    return dt.time(int(match.group(1)), int(match.group(2)))


_DAY_NAMES: dict[str, int] = {}
for _index, _names in enumerate(
    (
        ("mon", "monday", "lun", "lunes"),
        ("tue", "tues", "tuesday", "mar", "martes"),
        ("wed", "wednesday", "mie", "miercoles"),
        ("thu", "thur", "thurs", "thursday", "jue", "jueves"),
        ("fri", "friday", "vie", "viernes"),
        ("sat", "saturday", "sab", "sabado"),
        ("sun", "sunday", "dom", "domingo"),
    )
):
    for _name in _names:
        _DAY_NAMES[_name] = _index

_DAY_SETS: dict[str, frozenset[int]] = {
    "daily": ALL_DAYS,
    "everyday": ALL_DAYS,
    "diario": ALL_DAYS,
    "diariamente": ALL_DAYS,
    "weekdays": frozenset(range(5)),
    "laborables": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}

# Multi-word phrases are rewritten to one token before splitting on spaces and commas.
_PHRASES: tuple[tuple[str, str], ...] = (
    ("todos los dias", "daily"),
    ("every day", "daily"),
    ("entre semana", "weekdays"),
    ("fines de semana", "weekends"),
    ("fin de semana", "weekends"),
)


def _fold_text(text: str) -> str:
    # Accents dropped so "miércoles" and "miercoles", "sábado" and "sabado" both parse.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.split())


def parse_days(text: str) -> frozenset[int]:
    """'mon,wed,fri', 'daily', 'weekdays', 'weekends', 'mon-fri' (English or Spanish) -> days.

    Ranges may wrap ('fri-mon'). Unknown or empty tokens are refused, naming the token.
    """
    folded = _fold_text(text)
    for phrase, token in _PHRASES:
        folded = folded.replace(phrase, token)
    folded = re.sub(r"\s*[-–]\s*", "-", folded)
    if not folded.strip(" ,;"):
        raise ValueError(f"no days given in {text!r}")
    days: set[int] = set()
    for token in re.split(r"\s*[,;]\s*|\s+", folded.strip()):
        if not token:
            raise ValueError(f"empty day between separators in {text!r}")
        if token in _DAY_SETS:
            days |= _DAY_SETS[token]
        elif token in _DAY_NAMES:
            days.add(_DAY_NAMES[token])
        elif "-" in token:
            first, _, last = token.partition("-")
            if first not in _DAY_NAMES or last not in _DAY_NAMES:
                raise ValueError(f"unknown day range {token!r} in {text!r}")
            a, b = _DAY_NAMES[first], _DAY_NAMES[last]
            days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
        else:
            raise ValueError(f"unknown day {token!r} in {text!r}")
    return frozenset(days)
