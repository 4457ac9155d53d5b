"""The on-call rota page (admins): who is on call now, the "on call now" override, the weekly
shifts; staff mobiles are edited on the staff page. Also the loud "nobody is on call"
warning on the patients list, the operator console and delivery health."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # stubs predate 3.3
from wtforms.validators import Length, Optional

from coachbot.domain.states import Role
from coachbot.queries.staff import active_clinicians, staff_names
from coachbot.services import oncall as rota
from coachbot.services.errors import ValidationFailed
from coachbot.web.common import now, read_db, roles_required, runtime, staff, write_sessions
from coachbot.web.forms import ActionForm, CoachbotForm

bp = Blueprint("oncall", __name__, url_prefix="/oncall")

_WEEKDAY_CHOICES: Any = [SelectChoice(str(i), name) for i, name in enumerate(rota.WEEKDAYS)]
# Endpoints that carry the warning: where someone would notice that nobody is paged.
_WARNED = ("dashboard.patients", "dashboard.delivery", "oncall.page")


class OverrideForm(CoachbotForm):
    email = SelectField("On call now", validate_choice=False)
    backup_email = SelectField("Backup", validate_choice=False)


class ShiftForm(CoachbotForm):
    weekday = SelectField("Day", choices=_WEEKDAY_CHOICES)
    start = StringField("Starts (HH:MM)", validators=[Length(max=5)])
    end = StringField("Ends (HH:MM)", validators=[Length(max=5)])
    email = SelectField("On call", validate_choice=False)
    backup_email = SelectField("Backup", validate_choice=False, validators=[Optional()])


def _choices(form: OverrideForm | ShiftForm) -> None:
    people: Any = [
        SelectChoice(u.email, f"{u.display_name} ({u.email})") for u in active_clinicians(read_db())
    ]
    form.email.choices = people
    form.backup_email.choices = [SelectChoice("", "no backup"), *people]


@bp.route("", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def page() -> ResponseReturnValue:
    override_form, shift_form = OverrideForm(prefix="o"), ShiftForm(prefix="s")
    _choices(override_form)
    _choices(shift_form)
    errors: dict[str, str] = {}
    which = request.form.get("which", "")
    try:
        if which == "override" and override_form.validate_on_submit():
            rota.set_override(
                write_sessions(),
                primary_email=override_form.email.data or "",
                backup_email=override_form.backup_email.data or None,
                now=now(),
                actor=staff().actor,
            )
            flash("On call set until changed.", "info")
            return redirect(url_for("oncall.page"))
        if which == "shift" and shift_form.validate_on_submit():
            rota.add_shift(
                write_sessions(),
                weekday=int(shift_form.weekday.data or 0),
                start=shift_form.start.data or "",
                end=shift_form.end.data or "",
                primary_email=shift_form.email.data or "",
                backup_email=shift_form.backup_email.data or None,
                now=now(),
                actor=staff().actor,
            )
            flash("Shift added.", "info")
            return redirect(url_for("oncall.page"))
    except ValidationFailed as exc:
        # Keyed by the submitted form's field names (the forms carry a prefix each).
        prefix = "o" if which == "override" else "s"
        errors = {f"{prefix}-{name}": message for name, message in exc.errors.items()}
    view = rota.rota(read_db(), runtime().settings, now())
    names = staff_names(read_db())
    status = 422 if errors else 200
    return render_template(
        "oncall.html",
        view=view,
        names=names,
        weekdays=rota.WEEKDAYS,
        override_form=override_form,
        shift_form=shift_form,
        action_form=ActionForm(),
        errors=errors,
    ), status


@bp.post("/clear")
@roles_required(Role.ADMIN)
def clear() -> ResponseReturnValue:
    if ActionForm().validate_on_submit():
        rota.clear_override(write_sessions(), now=now(), actor=staff().actor)
        flash("Override cleared: the weekly shifts decide.", "info")
    return redirect(url_for("oncall.page"))


@bp.post("/shifts/<int:shift_id>/delete")
@roles_required(Role.ADMIN)
def delete(shift_id: int) -> ResponseReturnValue:
    if ActionForm().validate_on_submit():
        if rota.delete_shift(write_sessions(), shift_id, now=now(), actor=staff().actor):
            flash(f"Shift #{shift_id} deleted.", "info")
        else:
            flash(f"No shift #{shift_id}.", "error")
    return redirect(url_for("oncall.page"))


@bp.app_context_processor
def _oncall_warning() -> dict[str, object]:
    """`nobody_on_call` for the pages that carry the warning (one read, only there)."""
    endpoint = request.endpoint or ""
    if not current_user.is_authenticated or not (
        endpoint in _WARNED or endpoint.startswith("operator.")
    ):
        return {}
    return {"nobody_on_call": rota.nobody_on_call(read_db(), runtime().settings, now())}
