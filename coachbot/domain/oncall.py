"""On-call paging decisions, pure: who is on call at an instant, which alerts page a person,
which page attempt is due, what a page says, and what counts as an ACK.

Rota rule: an explicit override ("on call now, until changed") beats the weekly shifts. A
shift is a weekday and local wall times in the clinic's zone; an end at or before the start
runs past midnight into the next day (equal times: 24 hours). Shifts are matched on the
local wall clock, so a daylight-saving change never opens a gap or a double cover: in the
repeated autumn hour both instants fall in the shift that owns that wall time, and a shift
boundary inside the skipped spring hour takes effect at the first wall time that exists.
When shifts overlap, the one that started last wins (a late cover takes over).

Paging rule: attempt 0 is due when the alert is raised; attempt n at n x the re-page delay
while nobody acknowledged. From the backup delay on, each attempt also pages the backup.
Only the attempt due now is sent (a clock that was down does not fire a burst of missed
attempts), and paging stops after `MAX_PAGE_ATTEMPTS`; the dashboard keeps the alert.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from coachbot.domain.states import AlertKind, AlertSeverity

#: Alerts about consent or delivery, not about the patient's health: a person reads them
#: from the dashboard, nobody is woken for them.
NEVER_PAGED_KINDS = frozenset(
    {AlertKind.REVOCATION, AlertKind.OPT_OUT, AlertKind.REPLY_LOOP, AlertKind.INVALID_NUMBER}
)
PAGED_SEVERITIES = frozenset({AlertSeverity.URGENT, AlertSeverity.HIGH})
#: Two hours of re-pages at the default 5 minutes; after that the open alert stays loud on
#: the dashboard, and a page about a day-old alert would only train people to ignore pages.
MAX_PAGE_ATTEMPTS = 24


def is_pageable(kind: str, severity: str) -> bool:
    """The one rule for which alerts need a person now: urgent or high severity, any kind
    except the consent and delivery ones (a new kind such as crisis pages by default)."""
    return severity in PAGED_SEVERITIES and kind not in NEVER_PAGED_KINDS


@dataclass(frozen=True)
class Shift:
    weekday: int  # Monday=0 .. Sunday=6
    start: dt.time
    end: dt.time
    primary_id: int
    backup_id: int | None = None


@dataclass(frozen=True)
class OnCall:
    primary_id: int
    backup_id: int | None
    source: str  # "override" | "shift"


def _covering_start(shift: Shift, local: dt.datetime) -> dt.datetime | None:
    """The local (naive) start of the run of `shift` that covers `local`, or None."""
    wall = local.time().replace(tzinfo=None, fold=0)
    day = local.date()
    if shift.start < shift.end:
        if local.weekday() == shift.weekday and shift.start <= wall < shift.end:
            return dt.datetime.combine(day, shift.start)
        return None
    # Overnight (or 24 h): from the start on its weekday to the end on the next day.
    if local.weekday() == shift.weekday and wall >= shift.start:
        return dt.datetime.combine(day, shift.start)
    if local.weekday() == (shift.weekday + 1) % 7 and wall < shift.end:
        return dt.datetime.combine(day - dt.timedelta(days=1), shift.start)
    return None


def on_call_at(
    instant: dt.datetime, *, override: OnCall | None, shifts: Sequence[Shift], zone: ZoneInfo
) -> OnCall | None:
    """Who is on call at `instant` (aware); None when nobody is."""
    if instant.tzinfo is None:
        raise ValueError("on_call_at needs an aware instant")
    if override is not None:
        return override
    local = instant.astimezone(zone)
    best: tuple[dt.datetime, Shift] | None = None
    for shift in shifts:
        started = _covering_start(shift, local)
        if started is not None and (best is None or started > best[0]):
            best = (started, shift)
    if best is None:
        return None
    return OnCall(best[1].primary_id, best[1].backup_id, "shift")


@dataclass(frozen=True)
class PageStep:
    attempt: int
    include_backup: bool


def page_step_due(
    created_at: dt.datetime,
    now: dt.datetime,
    *,
    repage: dt.timedelta,
    backup_after: dt.timedelta,
    max_attempts: int = MAX_PAGE_ATTEMPTS,
) -> PageStep | None:
    """The attempt due at `now` for an unacknowledged alert raised at `created_at`."""
    if now < created_at:
        return None
    attempt = int((now - created_at) / repage)
    if attempt >= max_attempts:
        return None
    return PageStep(attempt, include_backup=attempt * repage >= backup_after)


def page_text(
    alert_id: int, severity: str, clinic_name: str, base_url: str, attempt: int = 0
) -> str:
    """What a page says: no patient name, symptom or diagnosis, only where to look. A
    re-page says which one it is, so each attempt's text is unique (an ambiguous send is
    looked up at the provider by its body)."""
    repeat = f" (page {attempt + 1})" if attempt else ""
    return (
        f"{clinic_name}: {severity.upper()} alert #{alert_id}{repeat}. "
        f"Open {base_url}/alerts/{alert_id} . Reply ACK {alert_id} to acknowledge."
    )


def page_subject(alert_id: int, severity: str, clinic_name: str) -> str:
    return f"[{clinic_name}] {severity.upper()} alert #{alert_id}"


@dataclass(frozen=True)
class Ack:
    alert_id: int | None  # None: the sender's latest page


_ACK = re.compile(r"^\s*ack(?:nowledged?)?\s*#?\s*(\d{1,9})?\s*[.!]*\s*$", re.IGNORECASE)


def parse_ack(body: str) -> Ack | None:
    """ "ACK 12", "ack #12", "Ack" (the latest page); anything else is not an ACK."""
    match = _ACK.match(body or "")
    if match is None:
        return None
    return Ack(int(match.group(1)) if match.group(1) else None)
