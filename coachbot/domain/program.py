"""Program defaults per track: when nudges go out, what a reply means, how long it may wait.

The default *times* here are the built-in programme; operators change times, days and
phases per track with `coachbot schedule set-default` (stored in `program_defaults`).

Quiet-hours policy, per track (what happens to a nudge that falls outside the allowed
window or inside the patient's quiet hours):

* sleep, exercise, diet, rehab, checkin: DEFER to the first permitted instant (the morning
  sleep question still makes sense at 08:00; the check-in is clinical and never dropped).
* mindfulness: SKIP, because an evening wind-down prompt moved to the next morning is
  the wrong message at the wrong time.

Stale limit: after downtime a nudge overdue by more than its track's limit (2 hours; the
check-in 6) ends as `missed (too_late)` instead of joining a burst. Overdue is counted from
the first instant the window and quiet hours allowed it (`schedule.overdue`), so a nudge
deferred to the window's start is never dropped for the deferral itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from coachbot.domain.replies import Expectation
from coachbot.domain.schedule import QuietPolicy


@dataclass(frozen=True)
class TrackPolicy:
    track: str
    default_times: tuple[dt.time, ...]
    expectation: Expectation
    reply_window: dt.timedelta
    # After downtime, a nudge older than this is recorded as missed instead of sent late.
    stale_limit: dt.timedelta = dt.timedelta(hours=2)
    quiet_policy: QuietPolicy = QuietPolicy.DEFER


TRACK_POLICIES: dict[str, TrackPolicy] = {
    p.track: p
    for p in (
        # The sleep nudge is the morning check "how many hours did you sleep?".
        TrackPolicy("sleep", (dt.time(8, 30),), Expectation.SLEEP_HOURS, dt.timedelta(hours=10)),
        TrackPolicy("exercise", (dt.time(10, 0),), Expectation.MINUTES, dt.timedelta(hours=10)),
        TrackPolicy("diet", (dt.time(12, 0),), Expectation.DONE_SKIP, dt.timedelta(hours=8)),
        TrackPolicy(
            "mindfulness",
            (dt.time(17, 0),),
            Expectation.RATING,
            dt.timedelta(hours=4),
            quiet_policy=QuietPolicy.SKIP,
        ),
        TrackPolicy("rehab", (dt.time(15, 0),), Expectation.DONE_SKIP, dt.timedelta(hours=6)),
        # The symptom check-in is clinical: a late one is still worth sending, never skipped.
        TrackPolicy(
            "checkin",
            (dt.time(9, 0),),
            Expectation.CHECKIN,
            dt.timedelta(hours=6),
            stale_limit=dt.timedelta(hours=6),
        ),
    )
}

COACHING_TRACKS: tuple[str, ...] = ("sleep", "exercise", "diet", "mindfulness", "rehab")
LANGUAGES: tuple[str, ...] = ("en", "es")
DEFAULT_DAILY_CAP = 5
# The programme every patient follows unless a clinician assigns another.
STANDARD = "standard"
PLANNING_HORIZON = dt.timedelta(hours=6)
# The longest reply window a programme may set (operators choose 15 minutes to 48 hours).
MAX_REPLY_WINDOW = dt.timedelta(hours=48)
CLAIM_LEASE = dt.timedelta(minutes=5)


def parse_tracks(text: str) -> tuple[str, ...]:
    """'sleep, exercise' -> ('sleep', 'exercise'); unknown names are named in the error."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError("at least one track is required")
    unknown = [n for n in names if n not in TRACK_POLICIES or n == "checkin"]
    if unknown:
        raise ValueError(
            f"unknown track {', '.join(repr(u) for u in unknown)};"
            f" choose from {', '.join(COACHING_TRACKS)}"
        )
    return tuple(dict.fromkeys(names))
