"""Read side for the patient page: everything it shows, from one statement
(`patient_page_sql.patient_page_statement`), put in the page's order here."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from coachbot.domain.adherence import STREAK_LIMIT_DAYS, streak_from_days
from coachbot.domain.clock import utc_offset_at
from coachbot.domain.coaching import FOLLOWUP_SUFFIX
from coachbot.models import Patient
from coachbot.queries import patient_page_sql as page_sql
from coachbot.queries.adherence import FRACTION_UNIT
from coachbot.queries.dashboard import TrackSummary

TIMELINE_PAGE = 50  # messages per page; "Older messages" pages back to the very first one
HEATMAP_DAYS = 90
HOMEWORK_DAYS = 7
AUDIT_ROWS = 100
# A day's cell shows the best thing that happened: index = rank.
HEAT_STATES = ("none", "waiting", "missed", "skipped", "partial", "done")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class TimelineItem(NamedTuple):
    at: dt.datetime
    direction: str  # "out" | "in"
    kind: str
    body: str
    status: str  # delivery status for texts we sent, the pipeline's outcome for replies
    id: int


class TimelineCursor(NamedTuple):
    """The last message of a timeline page: the next (older) page starts after it, in the
    paging order (newest first; at the same instant the text we sent first, then by id,
    newest first)."""

    at: dt.datetime
    inbound: bool
    id: int

    def token(self) -> str:
        micros = (self.at - _EPOCH) // dt.timedelta(microseconds=1)
        return f"{micros}.{int(self.inbound)}.{self.id}"

    @classmethod
    def parse(cls, token: str) -> TimelineCursor | None:
        """The cursor in a link, or None for anything that is not one."""
        try:
            micros, inbound, message_id = (int(part) for part in token.split("."))
            at = _EPOCH + dt.timedelta(microseconds=micros)
        except (ValueError, OverflowError):
            return None
        if inbound not in (0, 1) or message_id < 0:
            return None
        return cls(at, bool(inbound), message_id)


class HeatCell(NamedTuple):
    day: dt.date
    state: str  # one of HEAT_STATES


class TrendPoint(NamedTuple):
    at: dt.datetime
    value: float


class HomeworkLine(NamedTuple):
    id: int
    description: str
    active: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class HomeworkCompletion:
    item: HomeworkLine
    prompted_7: int  # rehab nudges sent in the last 7 days that asked for this item
    done_7: int  # of those, answered done

    @property
    def pct_7(self) -> int | None:
        return round(100 * self.done_7 / self.prompted_7) if self.prompted_7 else None


class AlertLine(NamedTuple):
    id: int
    created_at: dt.datetime
    kind: str
    severity: str
    status: str
    resolution_note: str | None


class AuditLine(NamedTuple):
    id: int
    at: dt.datetime
    actor: str
    action: str
    outcome: str
    detail: str | None


@dataclass
class PatientDetail:
    patient: Patient
    timeline: list[TimelineItem]
    older: TimelineCursor | None  # where the next page of older messages starts, if any
    heatmap: dict[str, list[HeatCell]]
    trends: dict[str, list[TrendPoint]]
    units: dict[str, str]
    homework: list[HomeworkCompletion]
    alerts: list[AlertLine]
    audit: list[AuditLine]
    summaries: list[TrackSummary]


@dataclass(frozen=True)
class _Calendar:
    """A zone's recent days as the page's SQL needs them; the same for every patient in
    the zone for a whole local day, so it is computed once per zone and day."""

    day_number: int  # today's local date, in days since 1970-01-01
    base_offset: int  # the UTC offset (seconds) before the oldest transition
    transitions: tuple[tuple[dt.datetime, int], ...]  # (instant, offset from then), newest first
    cells: tuple[tuple[HeatCell, ...], ...]  # cells[i][rank]: day i of the heatmap (oldest first)


def _offset(instant: dt.datetime, zone: ZoneInfo) -> int:
    return int(utc_offset_at(instant, zone).total_seconds())


@functools.lru_cache(maxsize=1024)
def _calendar(zone_name: str, today: dt.date) -> _Calendar:
    zone = ZoneInfo(zone_name)
    # A little wider than the heatmap and the streak reach, so every row they read is covered.
    start = dt.datetime.combine(today - dt.timedelta(days=HEATMAP_DAYS + 3), dt.time(), dt.UTC)
    samples = [start + dt.timedelta(days=n) for n in range(HEATMAP_DAYS + 6)]
    offsets = [_offset(t, zone) for t in samples]
    transitions = []
    for (lo, before), (hi, after) in itertools.pairwise(zip(samples, offsets, strict=True)):
        if before == after:
            continue
        # Zones change offset at most once a day, on a whole second: halve the day down to
        # the first second of the new offset.
        low, high = int(lo.timestamp()), int(hi.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            at = dt.datetime.fromtimestamp(middle, dt.UTC)
            low, high = (middle, high) if _offset(at, zone) == before else (low, middle)
        transitions.append((dt.datetime.fromtimestamp(high, dt.UTC), after))
    days = [today - dt.timedelta(days=n) for n in range(HEATMAP_DAYS - 1, -1, -1)]
    return _Calendar(
        day_number=(today - _EPOCH.date()).days,
        base_offset=offsets[0],
        transitions=tuple(reversed(transitions)),
        cells=tuple(tuple(HeatCell(day, state) for state in HEAT_STATES) for day in days),
    )


# The first page starts after a message later than any.
_NEWEST = TimelineCursor(dt.datetime(9999, 1, 1, tzinfo=dt.UTC), False, 0)


def _params(
    patient: Patient, now: dt.datetime, calendar: _Calendar, cursor: TimelineCursor
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "pid": patient.id,
        "now": now,
        "since7": now - dt.timedelta(days=7),
        "since30": now - dt.timedelta(days=30),
        "since90": now - dt.timedelta(days=HEATMAP_DAYS),
        "streak_since": now - dt.timedelta(days=STREAK_LIMIT_DAYS + 2),
        "since_homework": now - dt.timedelta(days=HOMEWORK_DAYS),
        "followup": f"%{FOLLOWUP_SUFFIX}",
        "c_at": cursor.at,
        "c_in": int(cursor.inbound),
        "c_id": cursor.id,
        "lim": TIMELINE_PAGE + 1,  # one more tells whether an older page exists
        "audit_rows": AUDIT_ROWS,
        "today": calendar.day_number,
        "of_base": calendar.base_offset,
    }
    for n, (instant, offset) in enumerate(calendar.transitions):
        params[f"tr{n}"] = instant
        params[f"of{n}"] = offset
    return params


@dataclass
class _Sections:
    """The statement's rows sorted into the page's parts, in no order yet."""

    tracks: list[str] = field(default_factory=list)
    grid: dict[str, str] = field(default_factory=dict)
    counts: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    partials: dict[str, tuple[int, int]] = field(default_factory=dict)
    streak_days: dict[str, str] = field(default_factory=dict)
    timeline: list[TimelineItem] = field(default_factory=list)
    trend_rows: list[tuple[dt.datetime, int, str, float, str | None]] = field(default_factory=list)
    homework: list[HomeworkCompletion] = field(default_factory=list)
    alerts: list[AlertLine] = field(default_factory=list)
    audit: list[AuditLine] = field(default_factory=list)

    def add(self, row: Any) -> None:
        sec, tag, i1, i2, i3, i4, at, s1, s2, s3, f = row
        pack = page_sql.PARTIAL_PACK
        if sec == page_sql.TIMELINE:
            self.timeline.append(TimelineItem(at, "in" if i1 else "out", tag, s1, s2, i2))
        elif sec == page_sql.TRENDS:
            # A partial answer's fraction done is part of the answer, not a trend of the
            # track's numbers (filtered here: the statement has no characters to spare).
            if s1 != FRACTION_UNIT:
                self.trend_rows.append((at, i1, tag, f, s1))
        elif sec == page_sql.AUDIT:
            self.audit.append(AuditLine(i1, at, tag, s1, s2, s3))
        elif sec == page_sql.GRID:
            self.grid[tag] = s1 or ""
            self.counts[tag] = (i1, i2 % pack, i3, i4 % pack)
            self.partials[tag] = (i2 // pack, i4 // pack)
        elif sec == page_sql.STREAK:
            self.streak_days[tag] = s1 or ""
        elif sec == page_sql.TRACKS:
            self.tracks.append(tag)
        elif sec == page_sql.HOMEWORK:
            self.homework.append(HomeworkCompletion(HomeworkLine(i1, s1, bool(i2), at), i3, i4))
        elif sec == page_sql.ALERTS:
            self.alerts.append(AlertLine(i1, at, tag, s1, s2, s3))


def patient_detail(
    session: Session,
    patient: Patient,
    now: dt.datetime,
    before: TimelineCursor | None = None,
) -> PatientDetail:
    """Everything the patient page shows, in one statement. `before` is where a page of
    older messages starts (from `PatientDetail.older`); the rest of the page is the same."""
    zone = ZoneInfo(patient.timezone)
    calendar = _calendar(patient.timezone, now.astimezone(zone).date())
    statement = page_sql.patient_page_statement(
        session.get_bind().dialect.name, len(calendar.transitions)
    )
    params = _params(patient, now, calendar, before or _NEWEST)
    parts = _Sections()
    # All rows in one fetch (a hundred or so), not one driver call per row.
    for row in session.connection().execute(statement, params).all():
        parts.add(row)
    return _assemble(patient, calendar, parts)


def _assemble(patient: Patient, calendar: _Calendar, parts: _Sections) -> PatientDetail:
    """UNION ALL keeps no order between or within its parts: each part is put in the page's
    order here (a few hundred rows at most)."""
    timeline = sorted(parts.timeline, key=_newest_first, reverse=True)
    older = None
    if len(timeline) > TIMELINE_PAGE:
        del timeline[TIMELINE_PAGE:]
        last = timeline[-1]
        older = TimelineCursor(last.at, last.direction == "in", last.id)
    # Shown as a conversation reads: oldest first, a reply under the text it answers.
    timeline.reverse()
    tracks = sorted(parts.tracks)
    heatmap = {t: _heat_row(calendar, parts.grid.get(t, "")) for t in tracks}
    for track, cells in parts.grid.items():
        if track not in heatmap:  # a track no longer on the plan still shows its days
            heatmap[track] = _heat_row(calendar, cells)
    trends: dict[str, list[TrendPoint]] = defaultdict(list)
    units: dict[str, str] = {}
    for at, _id, track, value, unit in sorted(parts.trend_rows, key=lambda r: (r[0], r[1])):
        trends[track].append(TrendPoint(at, value))
        if unit:
            units[track] = unit
    summaries = [
        TrackSummary(
            t,
            *parts.counts.get(t, (0, 0, 0, 0)),
            _streak_of(parts.streak_days.get(t, "")),
            *parts.partials.get(t, (0, 0)),
        )
        for t in tracks
    ]
    return PatientDetail(
        patient=patient,
        timeline=timeline,
        older=older,
        heatmap=heatmap,
        trends=dict(trends),
        units=units,
        homework=sorted(parts.homework, key=lambda h: h.item.id),
        alerts=sorted(parts.alerts, key=lambda a: (a.created_at, a.id), reverse=True),
        audit=sorted(parts.audit, key=lambda e: (e.at, e.id), reverse=True),
        summaries=summaries,
    )


def _newest_first(item: TimelineItem) -> tuple[dt.datetime, bool, int]:
    """The page's order, reversed: at the same instant the text we sent is newer than the
    reply it answers (a bot reply is written at the instant its text arrived)."""
    return (item.at, item.direction == "out", item.id)


def _heat_row(calendar: _Calendar, cells: str) -> list[HeatCell]:
    """The track's 90 days from its nudges' cells ("days ago * 8 + rank", comma-separated):
    each day shows the best rank among its nudges."""
    # Ascending, so a day's last (kept) entry is its best rank.
    best = {value >> 3: value & 7 for value in sorted(map(int, cells.split(",")))} if cells else {}
    last = HEATMAP_DAYS - 1
    return [day[best.get(last - index, 0)] for index, day in enumerate(calendar.cells)]


def _streak_of(days: str) -> int:
    """Consecutive local days ending today from "days ago" numbers, capped."""
    return streak_from_days({int(d) for d in days.split(",")} if days else set())


@dataclass(frozen=True)
class HeatWeek:
    """One column of the calendar heatmap: Monday to Sunday, None outside the 90 days."""

    days: tuple[HeatCell | None, ...]
    month: str  # the month's short name on the column where a month starts, else ""


def heatmap_weeks(cells: list[HeatCell]) -> list[HeatWeek]:
    """The heatmap's days as week columns (Monday first), each labelled with the month that
    starts in it (the first column always names its month)."""
    if not cells:
        return []
    padded: list[HeatCell | None] = [None] * cells[0].day.weekday() + list(cells)
    padded += [None] * (-len(padded) % 7)
    weeks = []
    for start in range(0, len(padded), 7):
        days = tuple(padded[start : start + 7])
        real = [d for d in days if d is not None]
        starts_month = start == 0 or any(d.day.day == 1 for d in real)
        first = next((d for d in real if d.day.day == 1), real[0])
        weeks.append(HeatWeek(days, f"{first.day:%b}" if starts_month else ""))
    return weeks


# A day's worth toward a week's adherence: done counts whole, partial half (as in rates),
# skipped and missed count as nothing; waiting and nothing due are left out.
_DAY_CREDIT = {"done": 1.0, "partial": 0.5, "skipped": 0.0, "missed": 0.0}


class WeekRate(NamedTuple):
    monday: dt.date
    pct: int | None  # None: nothing was due that week


def weekly_adherence(weeks: list[HeatWeek]) -> list[WeekRate]:
    """Each heatmap week's share of days done, for the adherence trend: counted from the
    calendar's own cells, so the trend and the heatmap cannot disagree."""
    rates = []
    for week in weeks:
        credits = [_DAY_CREDIT[d.state] for d in week.days if d and d.state in _DAY_CREDIT]
        first = next(d for d in week.days if d is not None)
        monday = first.day - dt.timedelta(days=first.day.weekday())
        pct = round(100 * sum(credits) / len(credits)) if credits else None
        rates.append(WeekRate(monday, pct))
    return rates


# The heatmap's summary counts the states in the legend's order.
_LEGEND_ORDER = ("done", "partial", "skipped", "missed", "waiting", "none")


def heat_tally(cells: list[HeatCell], words: dict[str, str]) -> str:
    """The days of each state in `words` ("1 done, 2 partly done, 86 nothing due"): the
    heatmap's summary for a screen reader, before its day-by-day cells."""
    counts = dict.fromkeys(_LEGEND_ORDER, 0)
    for cell in cells:
        counts[cell.state] += 1
    return ", ".join(f"{counts[s]} {words[s]}" for s in _LEGEND_ORDER if counts[s])
