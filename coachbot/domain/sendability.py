"""May we text this number now, and if not, why not? One pure check for every send path.

The dispatcher (a claimed nudge), the follow-up planner, the tick's recovered replies, the
held welcome, a caregiver's invitation and their close-watch texts (`caregiver_rules`) each
ask the same question with their own answers to a few knobs: which
patient status they text, whether lateness counts, whether quiet hours defer or skip, and
whether the daily cap applies. The order of the checks is the dispatcher's, so a refusal
names the first rule that failed:

1. consent: the patient's status (``patient_<status>``), then the suppression list
   (``suppressed``) when the caller looked it up;
2. lateness (``too_late``, a miss rather than a skip): only for a row with a due time and
   a stale limit, counted from the first permitted instant (`schedule.overdue`);
3. freshness (``stale``): a reply that no longer answers anything;
4. the send window and the patient's quiet hours: send, defer to the next permitted
   instant, or skip (``quiet_hours``, ``outside_allowed_window``, ``no_window``);
5. the daily cap (``daily_cap``).

Nothing here reads the database or the clock: callers pass what they read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from coachbot.domain import schedule as sched
from coachbot.domain.states import PatientStatus

SUPPRESSED = "suppressed"
TOO_LATE = "too_late"
STALE = "stale"
DAILY_CAP = "daily_cap"

Action = Literal["send", "defer", "skip", "missed"]


def refused_status(status: str) -> str:
    """The reason a recipient in `status` is refused when the rules want another one. The
    same for a patient and a caregiver, who share the consent statuses."""
    return f"patient_{status}"


@dataclass(frozen=True)
class Recipient:
    """What the check needs to know about the person behind the number."""

    status: str
    zone: ZoneInfo
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    # None: the caller did not look the number up (the gateway's guard still will).
    suppressed: bool | None = None

    @property
    def quiet(self) -> sched.LocalWindow | None:
        if self.quiet_start is None or self.quiet_end is None:
            return None
        return sched.LocalWindow(self.quiet_start, self.quiet_end)


@dataclass(frozen=True)
class Lateness:
    """A planned row's slot and how late it may still go (the track's stale limit)."""

    due_at: dt.datetime
    stale_limit: dt.timedelta


@dataclass(frozen=True)
class Verdict:
    """``send`` now; ``defer`` to ``send_at``; ``skip`` or ``missed`` with a ``reason``."""

    action: Action
    send_at: dt.datetime | None = None
    reason: str | None = None

    @property
    def may_send_now(self) -> bool:
        return self.action == "send"


@dataclass(frozen=True)
class Rules:
    """The caller's answers to the knobs; the defaults are the dispatcher's for a nudge."""

    window: sched.LocalWindow
    quiet_policy: sched.QuietPolicy = sched.QuietPolicy.DEFER
    required_status: str = PatientStatus.ACTIVE
    max_defer: dt.timedelta = dt.timedelta(hours=16)
    lateness: Lateness | None = None
    # The instant after which the text no longer answers anything (a late reply).
    fresh_until: dt.datetime | None = None
    daily_cap: int | None = None
    sent_today: int = 0


def caregiver_rules(window: sched.LocalWindow, fresh_until: dt.datetime) -> Rules:
    """A caregiver's close-watch text (the daily check, its follow-up, "Have you seen ...?"):
    only to a caregiver who said YES, and at its time or not at all: quiet hours and the send
    window skip it rather than defer it, and it goes stale once its answer window has passed
    (`fresh_until`). The status check names the caregiver's status like a patient's."""
    return Rules(
        window=window,
        quiet_policy=sched.QuietPolicy.SKIP,
        required_status=PatientStatus.ACTIVE,
        fresh_until=fresh_until,
    )


def check(recipient: Recipient, now: dt.datetime, rules: Rules) -> Verdict:
    """The verdict for texting `recipient` at `now` under `rules`."""
    if recipient.status != rules.required_status:
        return Verdict("skip", reason=refused_status(recipient.status))
    if recipient.suppressed:
        return Verdict("skip", reason=SUPPRESSED)
    quiet = recipient.quiet
    if rules.lateness is not None and sched.overdue(
        rules.lateness.due_at,
        now,
        rules.lateness.stale_limit,
        recipient.zone,
        rules.window,
        quiet,
        rules.quiet_policy,
    ):
        return Verdict("missed", reason=TOO_LATE)
    if rules.fresh_until is not None and now > rules.fresh_until:
        return Verdict("skip", reason=STALE)
    placed = sched.place_in_window(
        now, recipient.zone, rules.window, quiet, rules.quiet_policy, max_defer=rules.max_defer
    )
    if placed.action != "send":
        return Verdict(placed.action, placed.send_at, placed.reason)
    if rules.daily_cap is not None and rules.sent_today >= rules.daily_cap:
        return Verdict("skip", reason=DAILY_CAP)
    return Verdict("send", now)
