"""The operator console: programmes (edit, preview, save, history, restore), global settings,
the message library and delivery health. Operators run delivery; nothing here shows a
patient's name, number or words (the preview names patients by id and time zone only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from coachbot.content import catalogue
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.states import Role
from coachbot.queries.delivery_health import SPANS, delivery_health
from coachbot.services import operations, program_edits, programs, track_settings
from coachbot.services.errors import ValidationFailed
from coachbot.web.common import db, now, roles_required, runtime, staff, write_sessions
from coachbot.web.forms import ActionForm, CoachbotForm

bp = Blueprint("operator", __name__, url_prefix="/operator")

_TRACKS: Any = list(TRACK_POLICIES)
_FOLLOWUPS: Any = list(programs.FOLLOWUP_POLICIES)
_QUIET: Any = list(programs.QUIET_POLICIES)
_console = roles_required(Role.OPERATOR, Role.ADMIN)


class TrackForm(CoachbotForm):
    # Choices are not enforced here: the service names an unknown track in its own error.
    track = SelectField("Track", choices=_TRACKS, validate_choice=False)
    # The number of times a day is checked by the service (schedules.validate_schedule), as
    # for the command line.
    times = StringField("Times (HH:MM, comma separated)")
    days = StringField("Days (e.g. daily, mon-fri, mon,wed,fri)")
    phases = StringField(
        "Phases (days since enrolment, e.g. 0-28:daily;28-:mon,wed,fri)", validators=[Optional()]
    )
    reply_window_minutes = StringField("Reply window (minutes)")
    followup = SelectField("Follow-up when unanswered", choices=_FOLLOWUPS, validate_choice=False)
    quiet_policy = SelectField(
        "Outside the send window or in quiet hours", choices=_QUIET, validate_choice=False
    )
    base_version = HiddenField()


class CloseWatchForm(CoachbotForm):
    """A programme's close-watch weeks; every field is checked by the service at once."""

    days = StringField("Default length (days)")
    check_time = StringField("Daily check time (caregiver's local HH:MM)")
    followup_after_hours = StringField("Hours before the one follow-up, and again before the alert")
    seen_today_time = StringField('"Have you seen them today?" time (local HH:MM)')
    items_en = TextAreaField("Check items in English (one a line)")
    items_es = TextAreaField("Check items in Spanish (one a line)")
    base_version = HiddenField()


class RestoreForm(CoachbotForm):
    version = HiddenField()
    base_version = HiddenField()


class NewProgramForm(CoachbotForm):
    name = StringField("New programme name")
    description = StringField("Description", validators=[Optional()])


class SettingsForm(CoachbotForm):
    window_start = StringField("Allowed send window starts (local HH:MM)")
    window_end = StringField("Allowed send window ends (local HH:MM)")
    daily_cap = StringField("Daily cap (automated texts per patient per day)")
    max_concurrency = StringField("Concurrent API calls")
    segments_per_second = StringField("Segments per second (empty: uncapped)")
    stale_limit = StringField("Staleness limit in minutes (empty: each track's own)")


def _int(text: str | None, field: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise ValidationFailed({field: "a whole number is required"}) from None


@bp.get("/")
@_console
def index() -> ResponseReturnValue:
    return redirect(url_for("operator.program_list"))


# --- programmes -------------------------------------------------------------------------


@bp.route("/programs", methods=["GET", "POST"])
@_console
def program_list() -> ResponseReturnValue:
    form = NewProgramForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            program = program_edits.create_program(
                write_sessions(),
                form.name.data or "",
                description=form.description.data or "",
                actor=staff().actor,
                now=now(),
            )
        except ValidationFailed as exc:
            db().rollback()
            errors = exc.errors
        else:
            flash(f"Created programme {program.name} from standard.", "info")
            return redirect(url_for("operator.program_show", name=program.name))
    status = 422 if errors else 200
    return render_template(
        "operator/programs.html",
        items=programs.list_programs(db()),
        form=form,
        errors=errors,
        day_names=programs.day_names,
    ), status


@bp.get("/programs/<name>")
@_console
def program_show(name: str) -> ResponseReturnValue:
    try:
        view = programs.show_program(db(), name)
    except ValidationFailed:
        abort(404)
    return render_template(
        "operator/program.html",
        program=view,
        versions=programs.history(db(), name),
        restore_form=RestoreForm(),
        day_names=programs.day_names,
    )


def _track_form_defaults(view: programs.ProgramView, track: str) -> dict[str, Any]:
    current = view.tracks[track]
    return {
        "track": track,
        "times": current.times,
        "days": programs.day_names(current.days),
        "phases": current.phases or "",
        "reply_window_minutes": str(current.reply_window_minutes),
        "followup": current.followup,
        "quiet_policy": current.quiet_policy,
        "base_version": str(view.version),
    }


@bp.route("/programs/<name>/edit", methods=["GET", "POST"])
@_console
def program_edit(name: str) -> ResponseReturnValue:
    """Edit one track: Preview shows who it reaches and their next nudges; Save (offered
    only under a preview) writes a new version, refused if the programme moved on."""
    try:
        view = programs.show_program(db(), name)
    except ValidationFailed:
        abort(404)
    track = request.args.get("track", "sleep")
    if request.method == "GET":
        if track not in TRACK_POLICIES:
            abort(404)
        form = TrackForm(data=_track_form_defaults(view, track))
    else:
        form = TrackForm()
    errors: dict[str, str] = {}
    preview = None
    status = 200
    if form.validate_on_submit():
        action = request.form.get("action", "preview")
        try:
            base_version = _int(form.base_version.data, "version")
            proposed = programs.validate_track(
                db(),
                track=form.track.data or "",
                times=form.times.data or "",
                days=form.days.data or "",
                phases=form.phases.data or None,
                reply_window_minutes=form.reply_window_minutes.data or "",
                followup=form.followup.data or "",
                quiet_policy=form.quiet_policy.data or "",
            )
            if action == "save":
                result = program_edits.save_track(
                    write_sessions(),
                    name,
                    proposed,
                    base_version=base_version,
                    actor=staff().actor,
                    now=now(),
                )
                flash(
                    f"Saved {result.program} version {result.version}:"
                    f" {result.schedules_changed} patient schedules follow it from the next"
                    f" tick ({result.nudges_replaced} planned nudges replaced).",
                    "info",
                )
                return redirect(url_for("operator.program_show", name=name))
            preview = programs.preview_track(db(), name, proposed, now=now())
            if preview.base_version != base_version:
                errors["version"] = (
                    f"{name} is now at version {preview.base_version}; you opened version"
                    f" {base_version}. Reload the edit page before saving."
                )
                status = 409
        except program_edits.StaleVersion as exc:
            errors, status = exc.errors, 409
        except ValidationFailed as exc:
            errors, status = exc.errors, 422
        db().rollback()
    elif request.method == "POST":
        # A bad CSRF token never gets here (CSRFProtect answers 400 first): a field's own
        # check refused it.
        errors, status = {name: "; ".join(msgs) for name, msgs in form.errors.items()}, 422
    return render_template(
        "operator/edit.html",
        program=view,
        form=form,
        errors=errors,
        preview=preview,
        day_names=programs.day_names,
    ), status


def _close_watch_defaults(view: programs.ProgramView) -> dict[str, Any]:
    watch = view.close_watch
    return {
        "days": str(watch.days),
        "check_time": f"{watch.check_time:%H:%M}",
        "followup_after_hours": str(watch.followup_after_hours),
        "seen_today_time": f"{watch.seen_today_time:%H:%M}",
        "items_en": "\n".join(watch.items_for("en")),
        "items_es": "\n".join(watch.items_for("es")),
        "base_version": str(view.version),
    }


@bp.route("/programs/<name>/close-watch", methods=["GET", "POST"])
@_console
def program_close_watch(name: str) -> ResponseReturnValue:
    """The programme's close-watch weeks: length, check time, follow-up, items. Saving
    writes a new version (refused if the programme moved on, or if an item would make the
    daily check longer than two texts)."""
    try:
        view = programs.show_program(db(), name)
    except ValidationFailed:
        abort(404)
    form = CloseWatchForm(data=_close_watch_defaults(view) if request.method == "GET" else None)
    errors: dict[str, str] = {}
    status = 200
    if form.validate_on_submit():
        fields = {f.name: str(f.data or "") for f in form if f.name not in ("csrf_token",)}
        try:
            proposed = track_settings.validate_close_watch(runtime().library, **fields)
            result = program_edits.save_close_watch(
                write_sessions(),
                name,
                proposed,
                base_version=_int(form.base_version.data, "version"),
                actor=staff().actor,
                now=now(),
            )
        except program_edits.StaleVersion as exc:
            errors, status = exc.errors, 409
        except ValidationFailed as exc:
            errors, status = exc.errors, 422
        else:
            flash(f"Saved {result.program} version {result.version}: close watch.", "info")
            return redirect(url_for("operator.program_show", name=name))
        db().rollback()
    elif request.method == "POST":
        errors, status = {n: "; ".join(msgs) for n, msgs in form.errors.items()}, 422
    return render_template(
        "operator/close_watch.html", program=view, form=form, errors=errors
    ), status


@bp.post("/programs/<name>/restore")
@_console
def program_restore(name: str) -> ResponseReturnValue:
    form = RestoreForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        result = program_edits.restore_version(
            write_sessions(),
            name,
            _int(form.version.data, "version"),
            base_version=_int(form.base_version.data, "version"),
            actor=staff().actor,
            now=now(),
        )
    except ValidationFailed as exc:
        db().rollback()
        flash("Not restored: " + "; ".join(exc.errors.values()), "error")
        return redirect(url_for("operator.program_show", name=name))
    flash(
        f"Restored version {form.version.data} as version {result.version}:"
        f" {result.schedules_changed} patient schedules follow it from the next tick.",
        "info",
    )
    return redirect(url_for("operator.program_show", name=name))


# --- global settings ----------------------------------------------------------------------


def _sender() -> str:
    gateway = runtime().gateway
    return str(getattr(gateway, "sender", gateway.name))


@bp.route("/settings", methods=["GET", "POST"])
@_console
def settings_page() -> ResponseReturnValue:
    current = operations.global_settings(db(), _sender())
    if request.method == "GET":
        form = SettingsForm(
            data={
                "window_start": f"{current.window_start:%H:%M}",
                "window_end": f"{current.window_end:%H:%M}",
                "daily_cap": str(current.daily_cap),
                "max_concurrency": str(current.max_concurrency),
                "segments_per_second": (
                    f"{current.segments_per_second:g}"
                    if current.segments_per_second is not None
                    else ""
                ),
                "stale_limit": (
                    str(current.stale_limit_minutes)
                    if current.stale_limit_minutes is not None
                    else ""
                ),
            }
        )
    else:
        form = SettingsForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            operations.update_global_settings(
                write_sessions(),
                sender=_sender(),
                window_start=form.window_start.data or "",
                window_end=form.window_end.data or "",
                daily_cap=form.daily_cap.data or "",
                max_concurrency=form.max_concurrency.data or "",
                segments_per_second=form.segments_per_second.data or "",
                stale_limit_minutes=form.stale_limit.data or "",
                actor=staff().actor,
                now=now(),
            )
        except ValidationFailed as exc:
            errors = exc.errors
            if "window" in errors:
                errors["window_end"] = errors.pop("window")
        else:
            flash("Settings saved; the next tick uses them.", "info")
            return redirect(url_for("operator.settings_page"))
    return render_template("operator/settings.html", form=form, errors=errors, current=current), (
        422 if errors else 200
    )


# --- message library ----------------------------------------------------------------------


@bp.get("/templates")
@_console
def templates_page() -> ResponseReturnValue:
    """The contents list: each track with its families and lint problems. The old filter
    (?track=&language=) now lands on the track's own page."""
    track = request.args.get("track", "")
    language = request.args.get("language", "")
    if track:
        target = url_for("operator.template_track", track=track)
        return redirect(f"{target}?{urlencode({'language': language})}" if language else target)
    library = runtime().library
    problems, entries = catalogue.browse(library)
    return render_template(
        "operator/templates.html",
        entries=entries,
        languages=library.languages(),
        problem_count=len(problems),
    )


@bp.get("/templates/<track>")
@_console
def template_track(track: str) -> ResponseReturnValue:
    library = runtime().library
    if track not in catalogue.tracks(library):
        abort(404)
    language = request.args.get("language", "")
    problems, entries = catalogue.browse(library)
    return render_template(
        "operator/template_track.html",
        track=track,
        entries=entries,
        families=catalogue.families(library, problems, track=track, language=language),
        languages=library.languages(),
        language=language,
    )


# --- delivery health ----------------------------------------------------------------------


@bp.get("/health")
@_console
def health() -> ResponseReturnValue:
    """Delivery health for operators: counts and codes only, never a patient's words."""
    span = request.args.get("span", "24h")
    if span not in SPANS:
        span = "24h"
    backend = runtime().gateway.name
    report = delivery_health(
        db(), now=now(), span=span, tick_seconds=runtime().settings.tick_seconds, backend=backend
    )
    return render_template(
        "operator/health.html",
        report=report,
        backend_name=backend,
        spans=list(SPANS),
        tick_seconds=runtime().settings.tick_seconds,
        action_form=ActionForm(),
    )
