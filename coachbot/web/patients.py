"""Enrolment, the patient page, edits and status changes; every route checks ownership."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from coachbot.domain.program import COACHING_TRACKS
from coachbot.domain.states import Role
from coachbot.models import StaffUser
from coachbot.queries.dashboard import patient_detail
from coachbot.services.care import (
    PatientChanges,
    RowError,
    TransitionRefused,
    bulk_enroll,
    change_status,
    parse_track_times,
    set_track_times,
    update_patient,
)
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient, validate_enrollment
from coachbot.services.errors import ValidationFailed
from coachbot.web.charts import heatmap_svg, trend_svg
from coachbot.web.common import audit_ok, db, now, owned_patient, roles_required, runtime, staff
from coachbot.web.forms import ActionForm, BulkEnrolForm, EditPatientForm, EnrolForm, NoteForm

bp = Blueprint("patients", __name__, url_prefix="/patients")


def _clinician_email() -> str:
    user = db().get(StaffUser, staff().user_id)
    assert user is not None
    return user.email


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.CLINICIAN)
def new() -> ResponseReturnValue:
    form = EnrolForm()
    errors: dict[str, str] = {}
    if request.method == "GET":
        for track in COACHING_TRACKS:
            getattr(form, f"track_{track}").data = True
    if form.validate_on_submit():
        chosen = [t for t in COACHING_TRACKS if getattr(form, f"track_{t}").data]
        times: dict[str, str] = {}
        for track in chosen:
            try:
                times[track] = parse_track_times(getattr(form, f"times_{track}").data or "")
            except ValueError as exc:
                errors[f"times_{track}"] = str(exc)
        consent = (form.consent_how.data or "").strip()
        if consent and form.consent_when.data:
            consent = f"{consent}; given {form.consent_when.data.isoformat()}"
        elif consent:
            errors["consent_when"] = "the date consent was given is required"
        req = EnrollmentRequest(
            first_name=form.first_name.data or "",
            phone=form.phone.data or "",
            timezone=form.timezone.data or "",
            language=form.language.data or "en",
            tracks=",".join(chosen),
            quiet_hours=(form.quiet_hours.data or "").strip() or None,
            clinician_email=_clinician_email(),
            consent=consent,
            caregiver_phone=(form.caregiver_phone.data or "").strip() or None,
            checkin=bool(form.checkin.data),
            homework=tuple(
                line.strip() for line in (form.homework.data or "").splitlines() if line.strip()
            ),
        )
        try:
            validate_enrollment(db(), req, runtime().settings)
        except ValidationFailed as exc:
            errors = {**exc.errors, **errors}
        db().rollback()
        if not errors:
            rt = runtime()
            patient = enroll_patient(
                db(), rt.gateway, rt.library, rt.settings, req, now=now(), actor=staff().actor
            )
            set_track_times(db(), patient, times, now=now(), actor=staff().actor)
            flash(f"{patient.first_name} is enrolled; the welcome text asks for YES.", "info")
            return redirect(url_for("patients.show", patient_id=patient.id))
    elif request.method == "POST":
        errors = {name: "; ".join(msgs) for name, msgs in form.errors.items()}
    return render_template("enrol.html", form=form, errors=errors, tracks=COACHING_TRACKS), (
        422 if errors else 200
    )


@bp.route("/bulk", methods=["GET", "POST"])
@roles_required(Role.CLINICIAN)
def bulk() -> ResponseReturnValue:
    form = BulkEnrolForm()
    row_errors: list[RowError] = []
    if form.validate_on_submit():
        raw = form.csv_file.data.read(1_000_000)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            flash("The file is not UTF-8 text.", "error")
            return render_template("bulk.html", form=form, row_errors=[]), 422
        rt = runtime()
        patients, row_errors = bulk_enroll(
            db(),
            rt.gateway,
            rt.library,
            rt.settings,
            text,
            clinician_email=_clinician_email(),
            now=now(),
            actor=staff().actor,
        )
        if not row_errors:
            flash(f"Enrolled {len(patients)} patients; each was texted the welcome.", "info")
            return redirect(url_for("dashboard.patients"))
        flash("Nothing was enrolled: fix the rows below and upload the file again.", "error")
    return render_template("bulk.html", form=form, row_errors=row_errors), (
        422 if row_errors else 200
    )


@bp.get("/<int:patient_id>")
@roles_required(Role.CLINICIAN)
def show(patient_id: int) -> ResponseReturnValue:
    patient = owned_patient(patient_id, "patient.view")
    audit_ok("patient.view", patient.id)
    detail = patient_detail(db(), patient, now())
    return render_template(
        "patient.html",
        d=detail,
        p=patient,
        heatmaps={t: heatmap_svg(cells) for t, cells in detail.heatmap.items()},
        trends={t: trend_svg(points) for t, points in detail.trends.items()},
        action_form=ActionForm(),
        note_form=NoteForm(),
    )


@bp.route("/<int:patient_id>/edit", methods=["GET", "POST"])
@roles_required(Role.CLINICIAN)
def edit(patient_id: int) -> ResponseReturnValue:
    patient = owned_patient(patient_id, "patient.edit")
    form = EditPatientForm()
    errors: dict[str, str] = {}
    if request.method == "GET":
        form.first_name.data = patient.first_name
        form.phone.data = patient.phone_e164
        form.timezone.data = patient.timezone
        form.language.data = patient.language
        form.quiet_hours.data = (
            f"{patient.quiet_start:%H:%M}-{patient.quiet_end:%H:%M}"
            if patient.quiet_start and patient.quiet_end
            else ""
        )
        form.caregiver_phone.data = patient.caregiver_phone_e164 or ""
        form.checkin.data = patient.checkin_enabled
    elif form.validate_on_submit():
        rt = runtime()
        try:
            changed = update_patient(
                db(),
                rt.gateway,
                rt.library,
                rt.settings,
                patient,
                PatientChanges(
                    first_name=form.first_name.data or "",
                    phone=form.phone.data or "",
                    timezone=form.timezone.data or "",
                    language=form.language.data or "en",
                    quiet_hours=form.quiet_hours.data,
                    caregiver_phone=form.caregiver_phone.data,
                    checkin=bool(form.checkin.data),
                ),
                now=now(),
                actor=staff().actor,
            )
        except ValidationFailed as exc:
            db().rollback()
            errors = exc.errors
        else:
            if "phone" in changed:
                flash("New number saved: texts resume once the patient answers YES.", "info")
            else:
                flash("Saved.", "info")
            return redirect(url_for("patients.show", patient_id=patient.id))
    else:
        errors = {name: "; ".join(msgs) for name, msgs in form.errors.items()}
    return render_template("edit.html", form=form, errors=errors, p=patient), (
        422 if errors else 200
    )


@bp.post("/<int:patient_id>/<any(pause, resume, discharge):action>")
@roles_required(Role.CLINICIAN)
def status(patient_id: int, action: str) -> ResponseReturnValue:
    patient = owned_patient(patient_id, f"patient.{action}")
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        change_status(db(), patient, action, now=now(), actor=staff().actor)
    except TransitionRefused as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        flash(f"{patient.first_name} is now {patient.status}.", "info")
    return redirect(url_for("patients.show", patient_id=patient.id))
