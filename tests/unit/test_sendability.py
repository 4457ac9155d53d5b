"""The one "may we text this number now, and why not?" check, rule by rule.

Each row is one situation a send path meets; the instants are New York local times (UTC
is what the check takes), the send window 08:00-20:00, quiet hours 21:00-07:30 unless a
row says otherwise.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from coachbot.domain import schedule as sched
from coachbot.domain.sendability import Lateness, Recipient, Rules, Verdict, check
from coachbot.domain.states import PatientStatus

NEW_YORK = ZoneInfo("America/New_York")
WINDOW = sched.LocalWindow(dt.time(8), dt.time(20))
HOUR = dt.timedelta(hours=1)


def at(hour: int, minute: int = 0, day: int = 10) -> dt.datetime:
    """A New York wall time in June 2026, as the UTC instant the check takes."""
    return dt.datetime(2026, 6, day, hour, minute, tzinfo=NEW_YORK).astimezone(dt.UTC)


def person(
    status: str = PatientStatus.ACTIVE,
    *,
    quiet: tuple[dt.time, dt.time] | None = (dt.time(21), dt.time(7, 30)),
    suppressed: bool | None = None,
) -> Recipient:
    start, end = quiet if quiet is not None else (None, None)
    return Recipient(status, NEW_YORK, start, end, suppressed)


NUDGE = Rules(WINDOW)
NUDGE_SKIPPING_QUIET = Rules(WINDOW, quiet_policy=sched.QuietPolicy.SKIP)
WELCOME = Rules(
    WINDOW, required_status=PatientStatus.PENDING_CONSENT, max_defer=dt.timedelta(hours=30)
)


@pytest.mark.parametrize(
    ("recipient", "now", "rules", "expected"),
    [
        pytest.param(person(), at(10), NUDGE, Verdict("send", at(10)), id="active-in-window"),
        pytest.param(
            person(PatientStatus.OPTED_OUT),
            at(10),
            NUDGE,
            Verdict("skip", reason="patient_opted-out"),
            id="opted-out",
        ),
        pytest.param(
            person(PatientStatus.PAUSED),
            at(10),
            NUDGE,
            Verdict("skip", reason="patient_paused"),
            id="paused",
        ),
        pytest.param(
            person(PatientStatus.PENDING_CONSENT),
            at(10),
            NUDGE,
            Verdict("skip", reason="patient_pending-consent"),
            id="nudge-before-consent",
        ),
        pytest.param(
            person(PatientStatus.PENDING_CONSENT),
            at(10),
            WELCOME,
            Verdict("send", at(10)),
            id="welcome-waits-for-consent",
        ),
        pytest.param(
            person(PatientStatus.ACTIVE),
            at(10),
            WELCOME,
            Verdict("skip", reason="patient_active"),
            id="no-welcome-once-active",
        ),
        pytest.param(
            person(suppressed=True),
            at(10),
            NUDGE,
            Verdict("skip", reason="suppressed"),
            id="suppressed-number",
        ),
        pytest.param(
            person(suppressed=False),
            at(10),
            NUDGE,
            Verdict("send", at(10)),
            id="looked-up-not-suppressed",
        ),
        pytest.param(
            person(PatientStatus.DISCHARGED, suppressed=True),
            at(10),
            NUDGE,
            Verdict("skip", reason="patient_discharged"),
            id="status-named-before-suppression",
        ),
        pytest.param(
            person(),
            at(23),
            NUDGE,
            Verdict("defer", at(8, day=11), "quiet_hours"),
            id="quiet-hours-defer-to-window-start",
        ),
        pytest.param(
            person(quiet=None),
            at(20, 30),
            NUDGE,
            Verdict("defer", at(8, day=11), "outside_allowed_window"),
            id="after-window-defers",
        ),
        pytest.param(
            person(),
            at(23),
            NUDGE_SKIPPING_QUIET,
            Verdict("skip", reason="quiet_hours"),
            id="quiet-hours-skip-policy",
        ),
        pytest.param(
            person(quiet=(dt.time(12), dt.time(13))),
            at(12, 30),
            NUDGE,
            Verdict("defer", at(13), "quiet_hours"),
            id="nap-defers-to-its-end",
        ),
        pytest.param(
            person(quiet=(dt.time(0), dt.time(23, 59))),
            at(10),
            Rules(WINDOW, max_defer=dt.timedelta(hours=16)),
            Verdict("skip", reason="no_window"),
            id="quiet-all-day-no-window",
        ),
        pytest.param(
            person(),
            at(11),
            Rules(WINDOW, lateness=Lateness(at(8, 30), 2 * HOUR)),
            Verdict("missed", reason="too_late"),
            id="too-late-after-downtime",
        ),
        pytest.param(
            person(),
            at(9, 30),
            Rules(WINDOW, lateness=Lateness(at(6), 2 * HOUR)),
            Verdict("send", at(9, 30)),
            id="late-slot-counted-from-window-start",
        ),
        pytest.param(
            person(PatientStatus.OPTED_OUT),
            at(10),
            Rules(WINDOW, lateness=Lateness(at(7), 2 * HOUR)),
            Verdict("skip", reason="patient_opted-out"),
            id="consent-named-before-lateness",
        ),
        pytest.param(
            person(),
            at(10),
            Rules(WINDOW, fresh_until=at(9, 59)),
            Verdict("skip", reason="stale"),
            id="reply-no-longer-fresh",
        ),
        pytest.param(
            person(),
            at(10),
            Rules(WINDOW, fresh_until=at(10)),
            Verdict("send", at(10)),
            id="reply-fresh-to-the-instant",
        ),
        pytest.param(
            person(),
            at(10),
            Rules(WINDOW, daily_cap=5, sent_today=5),
            Verdict("skip", reason="daily_cap"),
            id="daily-cap-reached",
        ),
        pytest.param(
            person(),
            at(10),
            Rules(WINDOW, daily_cap=5, sent_today=4),
            Verdict("send", at(10)),
            id="under-daily-cap",
        ),
        pytest.param(
            person(),
            at(23),
            Rules(WINDOW, daily_cap=5, sent_today=5),
            Verdict("defer", at(8, day=11), "quiet_hours"),
            id="deferral-before-cap",
        ),
    ],
)
def test_verdict(recipient: Recipient, now: dt.datetime, rules: Rules, expected: Verdict) -> None:
    assert check(recipient, now, rules) == expected


def test_only_send_may_send_now() -> None:
    assert Verdict("send", at(10)).may_send_now
    for action in ("defer", "skip", "missed"):
        assert not Verdict(action, reason="x").may_send_now


def test_half_set_quiet_hours_are_no_quiet_hours() -> None:
    """A patient with only a quiet start stored has no quiet window, as the dispatcher read it."""
    half = Recipient(PatientStatus.ACTIVE, NEW_YORK, dt.time(21), None)
    assert half.quiet is None
    assert check(half, at(19), NUDGE) == Verdict("send", at(19))
