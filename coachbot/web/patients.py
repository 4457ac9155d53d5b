"""Enrolment, the patient page, edits and status changes; every route checks ownership."""

from __future__ import annotations

import datetime as dt
import io

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from coachbot.domain import labels
from coachbot.domain.program import COACHING_TRACKS
from coachbot.domain.states import Role
from coachbot.models import Patient, StaffUser
from coachbot.queries import caregivers as caregiver_queries
from coachbot.queries.patient_page import (
    TimelineCursor,
    heat_tally,
    heatmap_weeks,
    patient_detail,
    weekly_adherence,
)
from coachbot.services import consent
from coachbot.services.bulk_enrollment import RowError, bulk_enroll
from coachbot.services.care import CarePlan, PatientChanges, check_care_plan, edit_patient
from coachbot.services.caregivers.records import caregiver_numbers, caregiver_of, never_invited
from coachbot.services.enrollment import (
    EnrollmentRequest,
    enroll_patient,
    opted_out_notes,
    parse_times,
    validate_enrollment,
    zone_named,
)
from coachbot.services.errors import ValidationFailed
from coachbot.services.status_changes import TransitionRefused, change_status, resume_block
from coachbot.services.welcomes import welcome_note
from coachbot.web.common import (
    audit_ok,
    db,
    fresh_reads,
    now,
    owned_patient,
    read_db,
    roles_required,
    runtime,
    staff,
    write_sessions,
)
from coachbot.web.forms import ActionForm, BulkEnrolForm, EditPatientForm, EnrolForm, NoteForm

bp = Blueprint("patients", __name__, url_prefix="/patients")
MAX_UPLOAD_BYTES = 1_000_000
LEDGER_ROWS = 50  # the page shows the newest; the CSV export has them all


def _attested_instant(local: dt.datetime, timezone: str) -> dt.datetime | None:
    """The form's wall time read in the patient's zone (a bad zone is reported on its own
    field, so this stays quiet about it). OverflowError for a wall time at the very end of
    the calendar (year 1 east of UTC, year 9999 west of it)."""
    zone = zone_named(timezone)
    if zone is None:
        return None
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


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
        consent_how = (form.consent_how.data or "").strip()
        consent_at = None
        if form.consent_when.data is None:
            errors["consent_when"] = "when consent was given is required"
        else:
            try:
                consent_at = _attested_instant(form.consent_when.data, form.timezone.data or "")
            except OverflowError:
                errors["consent_when"] = "not a date consent could have been given"
            if consent_at is not None and consent_at > now():
                errors["consent_when"] = "consent cannot be given in the future"
        # Everything, per-track times and homework included, is checked before the one
        # transaction that writes the patient: a refused form writes nothing.
        req = EnrollmentRequest(
            first_name=form.first_name.data or "",
            phone=form.phone.data or "",
            timezone=form.timezone.data or "",
            language=form.language.data or "en",
            tracks=",".join(chosen),
            track_times=tuple((t, getattr(form, f"times_{t}").data or "") for t in chosen),
            quiet_hours=(form.quiet_hours.data or "").strip() or None,
            clinician_email=_clinician_email(),
            consent=consent_how,
            consent_at=consent_at,
            caregiver_phone=(form.caregiver_phone.data or "").strip() or None,
            caregiver_name=form.caregiver_name.data,
            caregiver_language=form.caregiver_language.data,
            close_watch_from=form.close_watch_from.data,
            close_watch_days=form.close_watch_days.data,
            checkin=bool(form.checkin.data),
            homework=tuple(
                line.strip() for line in (form.homework.data or "").splitlines() if line.strip()
            ),
        )
        try:
            validate_enrollment(read_db(), req, runtime().settings)
        except ValidationFailed as exc:
            errors = {**exc.errors, **errors}
        if not errors:
            rt = runtime()
            patient = enroll_patient(
                write_sessions(),
                rt.gateway,
                rt.library,
                rt.settings,
                req,
                now=now(),
                actor=staff().actor,
            )
            fresh_reads()  # the notes below read what the enrolment committed
            note = welcome_note(read_db(), patient, now()) or ""
            said = f"{patient.first_name} is enrolled; the welcome text asks for YES."
            if consent.is_suppressed(read_db(), patient.phone_e164):
                said, note = f"{patient.first_name} is enrolled; no welcome was texted.", ""
            opted_out = opted_out_notes(read_db(), rt.settings, patient)
            flash(" ".join([said, note, *opted_out]).replace("  ", " ").strip(), "info")
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
        text, problem = _csv_text(form.csv_file.data.read(MAX_UPLOAD_BYTES + 1))
        if problem:
            flash(problem, "error")
            return render_template("bulk.html", form=form, row_errors=[]), 422
        rt = runtime()
        clinician_email = _clinician_email()
        # A file the csv module cannot read comes back as a row error, like a bad row.
        patients, row_errors = bulk_enroll(
            write_sessions(),
            rt.gateway,
            rt.library,
            rt.settings,
            text,
            clinician_email=clinician_email,
            now=now(),
            actor=staff().actor,
        )
        if not row_errors:
            _flash_opted_out_rows(patients)
            held = sum(p.welcome_due_at is not None for p in patients)
            flash(
                f"Enrolled {len(patients)} patients; each was texted the welcome."
                if not held
                else f"Enrolled {len(patients)} patients; {held} welcome texts wait for the"
                " end of the patient's quiet hours or the send window and go then.",
                "info",
            )
            return redirect(url_for("dashboard.patients"))
        flash("Nothing was enrolled: fix the rows below and upload the file again.", "error")
    return render_template("bulk.html", form=form, row_errors=row_errors), (
        422 if row_errors else 200
    )


def _flash_opted_out_rows(patients: list[Patient]) -> None:
    """The rows enrolled on a number (patient's or caregiver's) that opted out: nothing is
    sent to it until it texts START. Rows are numbered as in the file (header = line 1)."""
    caregivers = caregiver_numbers(read_db(), [p.id for p in patients])
    numbers = [p.phone_e164 for p in patients] + [n for ns in caregivers.values() for n in ns]
    stopped = consent.suppressed_among(read_db(), numbers)
    lines = [
        str(line)
        for line, p in enumerate(patients, start=2)
        if stopped.intersection([p.phone_e164, *caregivers.get(p.id, [])])
    ]
    if lines:
        flash(
            f"Line(s) {', '.join(lines)}: {consent.opted_out_notice(runtime().settings)};"
            " nothing is texted to that number until then.",
            "error",
        )


def _csv_text(raw: bytes) -> tuple[str, str | None]:
    """The upload as text, or why it is refused. A file is read whole or not at all: one cut
    at the size limit could end on a row boundary and enrol the first rows only."""
    if len(raw) > MAX_UPLOAD_BYTES:
        return "", f"The file is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB: split it."
    try:
        # Universal newlines, as Python reads a text file: the csv module refuses a bare CR
        # (Excel for Mac ends lines with one) unless it arrives as a line end.
        text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline=None).read()
    except UnicodeDecodeError:
        return "", "The file is not UTF-8 text."
    if "\x00" in text:  # no text file holds NUL, and PostgreSQL cannot store it
        return "", "The file holds NUL characters: save it as CSV text."
    return text, None


@bp.get("/<int:patient_id>")
@roles_required(Role.CLINICIAN)
def show(patient_id: int) -> ResponseReturnValue:
    # Read from the read session (no SQLite write lock while the page is built); only the
    # audit row is written, through the write session. Ending the read transaction after
    # the audit commit lets the page's own snapshot include this very view.
    patient = owned_patient(patient_id, "patient.view", session=read_db(), on_call=True)
    audit_ok("patient.view", patient.id)
    fresh_reads()
    # The timeline pages back from `before` (a cursor from the "Older messages" link); a
    # cursor that does not parse is the first page.
    before = TimelineCursor.parse(request.args.get("before", "")[:64])
    detail = patient_detail(read_db(), patient, now(), before)
    calendars = {t: heatmap_weeks(cells) for t, cells in detail.heatmap.items()}
    # The thread names the caregivers who wrote, and those we texted.
    caregiver_texts = [
        m.id for m in detail.timeline if m.direction == "in" and m.kind == "caregiver"
    ]
    sent = [m.id for m in detail.timeline if m.direction == "out"]
    return render_template(
        "patient.html",
        d=detail,
        p=patient,
        resume_refusal=resume_block(read_db(), patient, runtime().settings),
        ledger=consent.ledger(read_db(), patient.id, patient.phone_e164, limit=LEDGER_ROWS),
        paged=before is not None,
        calendars=calendars,
        tallies={t: heat_tally(cells, labels.HEAT_STATES) for t, cells in detail.heatmap.items()},
        weekly={t: weekly_adherence(weeks) for t, weeks in calendars.items()},
        action_form=ActionForm(),
        note_form=NoteForm(),
        cg=caregiver_queries.caregiver_panel(read_db(), patient, now()),
        cgq=caregiver_queries,
        caregiver_names=caregiver_queries.caregiver_names(read_db(), caregiver_texts),
        caregiver_recipients=caregiver_queries.caregiver_recipients(read_db(), patient, sent),
    )


@bp.get("/<int:patient_id>/consent.csv")
@roles_required(Role.CLINICIAN)
def consent_csv(patient_id: int) -> ResponseReturnValue:
    """The patient's whole consent ledger, for audits and disputes (the download audited)."""
    patient = owned_patient(patient_id, "export.consent_csv", session=read_db())
    audit_ok("export.consent_csv", patient.id)
    events = consent.ledger(read_db(), patient.id, patient.phone_e164)
    response = Response("".join(consent.ledger_csv(events)), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="patient-{patient.id}-consent.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:patient_id>/edit", methods=["GET", "POST"])
@roles_required(Role.CLINICIAN)
def edit(patient_id: int) -> ResponseReturnValue:
    reading = request.method == "GET"
    patient = owned_patient(patient_id, "patient.edit", session=read_db())
    form = EditPatientForm()
    errors: dict[str, str] = {}
    if reading:
        # The form shows the record (number, caregiver, homework): a view like any other.
        audit_ok("patient.edit_view", patient.id)
        form.first_name.data = patient.first_name
        form.phone.data = patient.phone_e164
        form.timezone.data = patient.timezone
        form.language.data = patient.language
        form.quiet_hours.data = (
            f"{patient.quiet_start:%H:%M}-{patient.quiet_end:%H:%M}"
            if patient.quiet_start and patient.quiet_end
            else ""
        )
        _show_caregiver(form, patient)
        form.checkin.data = patient.checkin_enabled
        schedules = {s.track: s for s in patient.schedules}
        for track in COACHING_TRACKS:
            getattr(form, f"track_{track}").data = track in schedules
            if track in schedules:
                getattr(form, f"times_{track}").data = schedules[track].local_times
        form.homework.data = "\n".join(h.description for h in patient.homework if h.active)
    elif form.validate_on_submit():
        plan, errors = _care_plan(form)
        if not errors:
            errors = _save_edit(patient, form, plan)
        if not errors:
            return redirect(url_for("patients.show", patient_id=patient.id))
    else:
        errors = {name: "; ".join(msgs) for name, msgs in form.errors.items()}
    caregiver = caregiver_of(read_db(), patient.id)
    invitable = caregiver is not None and never_invited(caregiver)
    return render_template(
        "edit.html",
        form=form,
        errors=errors,
        p=patient,
        tracks=COACHING_TRACKS,
        invitable=invitable,
    ), (422 if errors else 200)


def _show_caregiver(form: EditPatientForm, patient: Patient) -> None:
    """The edit form shows the patient's caregiver and close-watch weeks as saved."""
    caregiver = caregiver_of(read_db(), patient.id)
    form.caregiver_phone.data = caregiver.phone_e164 if caregiver else ""
    form.caregiver_name.data = caregiver.first_name if caregiver else ""
    form.caregiver_language.data = caregiver.language if caregiver else ""
    form.close_watch_from.data = patient.close_watch_from
    days = patient.close_watch_days
    form.close_watch_days.data = str(days) if days is not None else ""


def _care_plan(form: EditPatientForm) -> tuple[CarePlan, dict[str, str]]:
    errors: dict[str, str] = {}
    tracks: dict[str, str] = {}
    for track in COACHING_TRACKS:
        if getattr(form, f"track_{track}").data:
            try:
                tracks[track] = parse_times(getattr(form, f"times_{track}").data or "")
            except ValueError as exc:
                errors[f"times_{track}"] = str(exc)
    homework = tuple(
        line.strip() for line in (form.homework.data or "").splitlines() if line.strip()
    )
    plan = CarePlan(tracks, homework)
    # Checked before anything is saved, so the details are not saved without the plan.
    return plan, errors or check_care_plan(plan)


def _save_edit(patient: Patient, form: EditPatientForm, plan: CarePlan) -> dict[str, str]:
    """Details and care plan in one transaction: a failure saves neither."""
    rt = runtime()
    try:
        edited = edit_patient(
            write_sessions(),
            rt.gateway,
            rt.library,
            rt.settings,
            patient.id,
            PatientChanges(
                first_name=form.first_name.data or "",
                phone=form.phone.data or "",
                timezone=form.timezone.data or "",
                language=form.language.data or "en",
                quiet_hours=form.quiet_hours.data,
                caregiver_phone=form.caregiver_phone.data,
                checkin=bool(form.checkin.data),
                caregiver_name=form.caregiver_name.data,
                caregiver_language=form.caregiver_language.data,
                close_watch_from=form.close_watch_from.data,
                close_watch_days=form.close_watch_days.data,
                invite_caregiver=bool(form.caregiver_invite.data),
            ),
            plan,
            now=now(),
            actor=staff().actor,
        )
    except ValidationFailed as exc:
        return exc.errors
    patient, changed = edited.patient, edited.changed
    fresh_reads()  # the notes below read what the edit committed
    opted_out = opted_out_notes(read_db(), rt.settings, patient)
    if "phone" in changed:
        note = welcome_note(read_db(), patient, now()) or ""
        said = "New number saved: texts resume once the patient answers YES."
        if consent.is_suppressed(read_db(), patient.phone_e164):
            said, note = "New number saved; no welcome was texted.", ""
        flash(" ".join([said, note, *opted_out]).replace("  ", " ").strip(), "info")
    elif any(c.startswith("caregiver_") for c in changed) and opted_out:
        flash(" ".join(["Saved.", *opted_out]), "info")
    else:
        flash("Saved.", "info")
    return {}


@bp.post("/<int:patient_id>/<any(pause, resume, discharge):action>")
@roles_required(Role.CLINICIAN)
def status(patient_id: int, action: str) -> ResponseReturnValue:
    owned_patient(patient_id, f"patient.{action}", session=read_db())
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        patient = change_status(
            write_sessions(),
            patient_id,
            action,
            now=now(),
            actor=staff().actor,
            settings=runtime().settings,
        )
    except TransitionRefused as exc:
        flash(str(exc), "error")
    else:
        flash(f"{patient.first_name} is now {patient.status}.", "info")
    return redirect(url_for("patients.show", patient_id=patient_id))
