"""The alerts queue: the clinician's own patients' alerts, and the ones paged to them while on
call; each alert's page shows who was paged, when, by which channel, and who acknowledged."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from coachbot.domain.states import Role
from coachbot.models import Alert, Patient
from coachbot.queries.alerts import alert_words
from coachbot.queries.dashboard import alerts_queue
from coachbot.queries.pages import paged_alerts, pages_for, was_paged
from coachbot.services.alerts import AlertActionRefused, acknowledge_alert, resolve_alert
from coachbot.services.viewing import record_page_view
from coachbot.web.common import (
    audit_ok,
    db,
    now,
    owned_patient,
    read_db,
    roles_required,
    staff,
    write_sessions,
)
from coachbot.web.forms import NoteForm

bp = Blueprint("alerts", __name__, url_prefix="/alerts")
_VIEWS = ("active", "resolved")


@bp.get("")
@roles_required(Role.CLINICIAN, Role.ADMIN)
def queue() -> ResponseReturnValue:
    view = request.args.get("view", "active")
    view = view if view in _VIEWS else "active"
    # A clinician's queue holds their own patients; an admin's the alerts no patient holds.
    mine = staff().user_id if staff().role == Role.CLINICIAN else None
    items = alerts_queue(read_db(), clinician_id=mine, status=view)
    own = {a.id for a, _ in items}
    paged = [(a, n) for a, n in paged_alerts(read_db(), staff().user_id) if a.id not in own]
    shown = [a for a, _ in items + paged]
    words = alert_words(read_db(), [a.id for a in shown])
    # The patients' own words are on the page: each patient shown gets a row in their trail.
    record_page_view(
        write_sessions(),
        actor=staff().actor,
        action="alert.queue_view",
        now=now(),
        patient_ids=[a.patient_id for a in shown if words[a.id].words is not None],
    )
    return render_template(
        "alerts.html",
        items=items,
        paged=paged,
        words=words,
        pages=pages_for(read_db(), [a.id for a in shown]),
        view=view,
        form=NoteForm(),
        now=now(),
    )


def _owned_alert(alert_id: int, action: str) -> Alert:
    alert = db().get(Alert, alert_id)
    if alert is not None and was_paged(db(), staff().user_id, alert_id=alert_id):
        # The on-call covers the whole clinic: any alert they were paged for, audited.
        audit_ok(action, alert.patient_id, f"alert={alert_id} on-call: paged")
        return alert
    if alert is not None and alert.patient_id is None and staff().role == Role.ADMIN:
        # A red flag from a number no record holds: admins watch those.
        audit_ok(action, None, f"alert={alert_id} no patient")
        return alert
    # Alerts without a patient (e.g. unknown sender) belong to no clinician's queue.
    owned_patient(alert.patient_id if alert and alert.patient_id else 0, action)
    assert alert is not None
    return alert


@bp.get("/<int:alert_id>")
@roles_required(Role.CLINICIAN, Role.ADMIN)
def show(alert_id: int) -> ResponseReturnValue:
    alert = _owned_alert(alert_id, "alert.view")
    patient = db().get(Patient, alert.patient_id) if alert.patient_id else None
    return render_template(
        "alert.html",
        a=alert,
        patient=patient,
        said=alert_words(db(), [alert.id])[alert.id],
        pages=pages_for(db(), [alert.id])[alert.id],
        form=NoteForm(),
        now=now(),
    )


@bp.post("/<int:alert_id>/<any(acknowledge, resolve):action>")
@roles_required(Role.CLINICIAN, Role.ADMIN)
def act(alert_id: int, action: str) -> ResponseReturnValue:
    patient_id = _owned_alert(alert_id, f"alert.{action}").patient_id
    form = NoteForm()
    if not form.validate_on_submit():
        abort(400)
    me, at = staff().user_id, now()
    try:
        if action == "acknowledge":
            done = acknowledge_alert(
                write_sessions(), alert_id, actor_id=me, now=at, note=form.note.data
            )
        else:
            done = resolve_alert(
                write_sessions(), alert_id, actor_id=me, now=at, note=form.note.data or ""
            )
    except AlertActionRefused as exc:
        flash(str(exc), "error")
    else:
        flash(f"Alert {done.id} {done.status}.", "info")
    target = request.form.get("next", "")
    if target == "patient" and patient_id:
        return redirect(url_for("patients.show", patient_id=patient_id))
    if target == "alert":
        return redirect(url_for("alerts.show", alert_id=alert_id))
    return redirect(url_for("alerts.queue"))
