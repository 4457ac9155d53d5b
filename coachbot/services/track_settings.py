"""A programme's settings for one track: what they are, how a version stores them, how an
edit is validated, and how two versions differ."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from coachbot.content import MessageLibrary
from coachbot.content.lint import SAMPLE_VARIABLES, clinician_text_problem
from coachbot.domain import close_watch
from coachbot.domain import schedule as sched
from coachbot.domain.coaching import FOLLOWUP_TRACKS
from coachbot.domain.program import TRACK_POLICIES
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import (
    ScheduleSpec,
    dispatch_settings,
    shortest_interval,
    times_outside_window,
    validate_schedule,
)

FOLLOWUP_POLICIES = ("once", "none")
QUIET_POLICIES = tuple(p.value for p in sched.QuietPolicy)


@dataclass(frozen=True)
class TrackSettings:
    """One track of a programme: when its nudges go out and how a reply is waited for."""

    track: str
    times: str  # "HH:MM,HH:MM"
    days: str  # digits Monday=0..Sunday=6
    phases: str | None  # "0-28:0123456;28-:024", days since enrolment
    reply_window_minutes: int
    followup: str  # once | none: one gentle follow-up when the window closes unanswered
    quiet_policy: str  # defer | skip: a nudge outside the window or in quiet hours

    def schedule_spec(self) -> ScheduleSpec:
        return ScheduleSpec(self.track, self.times, self.days, self.phases)

    def describe(self) -> str:
        return (
            f"times={self.times} days={self.days} phases={self.phases or '-'}"
            f" reply={self.reply_window_minutes}m followup={self.followup}"
            f" quiet={self.quiet_policy}"
        )


def built_in_settings(track: str) -> TrackSettings:
    policy = TRACK_POLICIES[track]
    return TrackSettings(
        track=track,
        times=",".join(f"{t:%H:%M}" for t in policy.default_times),
        days="0123456",
        phases=None,
        reply_window_minutes=int(policy.reply_window.total_seconds() // 60),
        followup="once" if track in FOLLOWUP_TRACKS else "none",
        quiet_policy=str(policy.quiet_policy),
    )


def decode_tracks(settings_json: str) -> dict[str, TrackSettings]:
    tracks = json.loads(settings_json)["tracks"]
    out = {track: built_in_settings(track) for track in TRACK_POLICIES}
    for track, values in tracks.items():
        if track in TRACK_POLICIES:
            out[track] = TrackSettings(track=track, **values)
    return out


def decode_close_watch(settings_json: str) -> close_watch.CloseWatchSettings:
    """The version's close-watch rules; the built-in defaults for a version saved before
    programmes had them."""
    return close_watch.parse(json.loads(settings_json).get("close_watch"))


def encode_tracks(
    tracks: dict[str, TrackSettings], watch: close_watch.CloseWatchSettings | None = None
) -> str:
    body = {
        t: {k: v for k, v in asdict(s).items() if k != "track"} for t, s in sorted(tracks.items())
    }
    stored: dict[str, object] = {"tracks": body}
    if watch is not None:
        stored["close_watch"] = watch.as_json()
    return json.dumps(stored, sort_keys=True)


def validate_track(
    session: Session,
    *,
    track: str,
    times: str,
    days: str = "daily",
    phases: str | None = None,
    reply_window_minutes: int | str | None = None,
    followup: str = "once",
    quiet_policy: str = "defer",
) -> TrackSettings:
    """Every field checked at once: the schedule (via schedules.validate_schedule), the
    times against the allowed send window, and a reply window no longer than the shortest
    gap between two nudges (a longer one would swallow the next nudge's answer)."""
    errors: dict[str, str] = {}
    spec: ScheduleSpec | None = None
    try:
        spec = validate_schedule(track, times, _day_names(days), phases or None)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    minutes: int | None = None
    try:
        minutes = int(str(reply_window_minutes).strip())
        if not 15 <= minutes <= 48 * 60:
            errors["reply_window_minutes"] = "must be between 15 and 2880 minutes"
            minutes = None
    except ValueError:
        errors["reply_window_minutes"] = "a whole number of minutes is required"
    if followup not in FOLLOWUP_POLICIES:
        errors["followup"] = f"choose from {', '.join(FOLLOWUP_POLICIES)}"
    if quiet_policy not in QUIET_POLICIES:
        errors["quiet_policy"] = f"choose from {', '.join(QUIET_POLICIES)}"
    if spec is not None:
        window = dispatch_settings(session).window
        outside = times_outside_window(spec.local_times, window)
        if outside:
            errors["times"] = (
                f"{', '.join(outside)} outside the allowed send window"
                f" {window.start:%H:%M}-{window.end:%H:%M}"
            )
        if minutes is not None:
            gap = shortest_interval(spec)
            if dt.timedelta(minutes=minutes) > gap:
                errors["reply_window_minutes"] = (
                    f"{minutes} minutes is longer than the {_span(gap)} between two nudges"
                )
    if errors or spec is None or minutes is None:
        raise ValidationFailed(errors)
    return TrackSettings(
        spec.track,
        spec.local_times,
        spec.days_of_week,
        spec.phases,
        minutes,
        followup,
        quiet_policy,
    )


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def day_names(days: str) -> str:
    """The stored digits ('024') as the names people type ('mon,wed,fri')."""
    return ",".join(_WEEKDAYS[int(d)] for d in days) if days.isdigit() else days


def _day_names(days: str) -> str:
    # Stored digits are accepted as well as names, so a form can round-trip what it shows.
    days = days.strip()
    return day_names(days) if days.isdigit() and all(c in "0123456" for c in days) else days


def _span(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}" if rest else f"{hours}h"


def track_changes(old: TrackSettings, new: TrackSettings) -> list[str]:
    """What an edit changes, field by field: "times: 08:00 -> 09:00"."""
    old_d, new_d = asdict(old), asdict(new)
    return [f"{k}: {old_d[k] or '-'} -> {new_d[k] or '-'}" for k in old_d if old_d[k] != new_d[k]]


CHECK_TEMPLATE = "caregiver.check"


def validate_close_watch(library: MessageLibrary, **form: str) -> close_watch.CloseWatchSettings:
    """A programme's close-watch edit, every field checked at once (the domain's rules), then
    the check text each language's items compose: it must pass the linter's privacy words
    and fit the template's two segments for a long first name, or the items field is refused
    with the reason. Raises ValidationFailed naming the fields."""
    items = {lang: form.get(f"items_{lang}", "") for lang in close_watch.LANGUAGES}
    try:
        watch = close_watch.validate(
            days=form.get("days", ""),
            check_time=form.get("check_time", ""),
            followup_after_hours=form.get("followup_after_hours", ""),
            seen_today_time=form.get("seen_today_time", ""),
            items=items,
        )
    except close_watch.InvalidCloseWatch as exc:
        errors = exc.errors
    else:
        errors = {}
    for language in close_watch.LANGUAGES:
        field = f"items_{language}"
        parsed = close_watch.split_items(items[language])
        if field in errors or not parsed:
            continue
        problem = clinician_text_problem(" ".join(parsed)) or _check_too_long(
            library, language, parsed
        )
        if problem:
            errors[field] = problem
    if errors:
        raise ValidationFailed(errors)
    return watch


def check_variables(first_name: str, items: tuple[str, ...]) -> dict[str, object]:
    """What the check template is rendered with: the one place that composes it."""
    return {
        "first_name": first_name,
        "check_items": close_watch.items_text(items),
        "item_count": len(items),
    }


def _check_too_long(library: MessageLibrary, language: str, items: tuple[str, ...]) -> str | None:
    template = library.template(CHECK_TEMPLATE, language)
    variables = check_variables(str(SAMPLE_VARIABLES["first_name"]), items)
    for variant in template.variants:
        rendered = library.render_variant(CHECK_TEMPLATE, language, variant.id, variables)
        if rendered.segments.segments > template.max_segments:
            return (
                f"with these items the daily check is {rendered.segments.segments} SMS segments"
                f" (at most {template.max_segments}): shorten or remove an item"
            )
    return None
