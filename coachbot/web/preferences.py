"""The signed-in person's own settings ("My settings"), and how the clinical pages say things:
times local to the person's own zone if they chose one, else the clinic's (CLINIC_TIMEZONE),
and codes in plain words (`coachbot.domain.labels`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import Length

from coachbot.domain import adherence, labels, need
from coachbot.services.errors import ValidationFailed
from coachbot.services.preferences import own_timezone, set_own_timezone
from coachbot.web.common import login_required, now, read_db, runtime, staff, write_sessions

bp = Blueprint("preferences", __name__, url_prefix="/me")


class SettingsForm(FlaskForm):  # type: ignore[misc]  # untyped base class
    timezone = StringField("Time zone", validators=[Length(max=64)])


def viewer_zone() -> ZoneInfo:
    """The zone this request's times are shown in, read once per request."""
    if "viewer_zone" not in g:
        chosen = own_timezone(read_db(), staff().user_id) if current_user.is_authenticated else None
        g.viewer_zone = ZoneInfo(chosen or runtime().settings.clinic_timezone)
    zone: ZoneInfo = g.viewer_zone
    return zone


@bp.app_context_processor
def _wording() -> dict[str, object]:
    return {
        "labels": labels,
        "need": need,
        "adherence_words": adherence,
        "viewer_zone_name": lambda: viewer_zone().key,
    }


@bp.app_template_filter("local")
def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> Markup:
    """An instant as a <time> element in the viewer's zone, with the zone's abbreviation."""
    if value is None:
        return Markup("never")
    local = value.astimezone(viewer_zone())
    return Markup('<time datetime="{}">{} {}</time>').format(
        value.isoformat(), local.strftime(fmt), local.tzname() or ""
    )


@bp.app_template_filter("local_iso")
def local_iso(value: dt.datetime) -> str:
    """The instant as ISO 8601 in the viewer's zone, to the minute: a chart's x value that
    its table fallback can show as is."""
    return value.astimezone(viewer_zone()).isoformat(timespec="minutes")


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings() -> ResponseReturnValue:
    form = SettingsForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            saved = set_own_timezone(
                write_sessions(),
                staff().user_id,
                form.timezone.data or "",
                now=now(),
                actor=staff().actor,
            )
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(f"Times now show in {saved or 'the clinic time zone'}.", "info")
            return redirect(url_for("preferences.settings"))
    elif not form.is_submitted():
        form.timezone.data = own_timezone(read_db(), staff().user_id) or ""
    else:
        errors = {name: "; ".join(msgs) for name, msgs in form.errors.items()}
    return render_template(
        "my_settings.html",
        form=form,
        errors=errors,
        clinic_zone=runtime().settings.clinic_timezone,
    ), (422 if errors else 200)
