"""The clinician's pages: enrolment, the patients list, the patient page, care changes,
the alerts queue, roles, ownership (404 plus an audit row) and the phone simulator."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from coachbot.models import Alert, AuditEntry, OutboundMessage, Patient, StaffUser
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, give_history, make_staff, post_form, sign_in

ENROL = {
    "first_name": "Rosa",
    "phone": "(617) 555-0177",
    "timezone": "America/Chicago",
    "language": "en",
    "quiet_hours": "21:00-07:30",
    "track_sleep": "y",
    "times_sleep": "8:15",
    "track_rehab": "y",
    "times_rehab": "15:00, 19:30",
    "homework": "word cards\nbalance practice",
    "caregiver_phone": "",
    "consent_how": "signed form in clinic",
    "consent_when": "2026-11-20T10:30",
}


@pytest.fixture(autouse=True)
def frozen() -> Any:
    """Every page is read at NOW, the instant the history is built around."""
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def clinician(client: Any, session: Session) -> int:
    user_id = make_staff(session, "ana@clinic.test")
    assert sign_in(client, "ana@clinic.test").status_code == 302
    return user_id


def _own(session: Session, clinician_id: int, **kwargs: Any) -> Patient:
    patient = make_patient(session, **kwargs)
    patient.clinician_id = clinician_id
    session.commit()
    return patient


def test_enrolment_shows_every_bad_field_at_once_and_writes_nothing(
    client: Any, session: Session, clinician: int
) -> None:
    bad = {**ENROL, "phone": "555", "timezone": "Mars/Olympus", "times_rehab": "25:99"}
    answer = post_form(client, "/patients/new", bad)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'id="phone-error"' in html
    assert 'id="timezone-error"' in html
    assert 'id="times_rehab-error"' in html
    assert session.scalar(select(func.count(Patient.id))) == 0


def test_enrolment_creates_the_patient_with_per_track_times_and_texts_the_welcome(
    client: Any, session: Session, clinician: int
) -> None:
    answer = post_form(client, "/patients/new", ENROL)
    assert answer.status_code == 302
    patient = session.scalars(select(Patient)).one()
    assert (patient.phone_e164, patient.status, patient.clinician_id) == (
        "+16175550177",
        PatientStatus.PENDING_CONSENT,
        clinician,
    )
    assert {s.track: s.local_times for s in patient.schedules} == {
        "sleep": "08:15",
        "rehab": "15:00,19:30",
    }
    # The attested time, read in the patient's zone (Chicago, UTC-6 in November).
    assert patient.consent_method == "signed form in clinic"
    assert patient.consent_at == dt.datetime(2026, 11, 20, 16, 30, tzinfo=dt.UTC)
    assert [h.description for h in patient.homework] == ["word cards", "balance practice"]
    welcome = session.scalars(select(OutboundMessage)).one()
    assert welcome.kind == "welcome"
    assert "YES" in welcome.body


def test_enrolment_refuses_a_consent_time_in_the_future_or_missing(
    client: Any, session: Session, clinician: int
) -> None:
    for when, message in (
        ("2026-11-24T09:00", "consent cannot be given in the future"),
        ("", "when consent was given is required"),
    ):
        answer = post_form(client, "/patients/new", {**ENROL, "consent_when": when})
        assert answer.status_code == 422
        assert message in answer.get_data(as_text=True)
    assert session.scalar(select(func.count(Patient.id))) == 0


def test_bulk_enrolment_with_one_bad_row_writes_nothing_and_reports_the_row(
    client: Any, session: Session, clinician: int
) -> None:
    csv_text = (
        "first_name,phone,timezone,tracks\n"
        "Ada,+16175550181,America/New_York,sleep\n"
        "Ben,not-a-number,America/New_York,sleep\n"
        "Cy,+16175550181,America/New_York,yoga\n"
    )
    answer = post_form(
        client,
        "/patients/bulk",
        {"csv_file": (io.BytesIO(csv_text.encode()), "patients.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Nothing was enrolled" in html
    for fragment in (
        "<td>3</td><td>phone</td>",
        "<td>4</td><td>tracks</td>",
        "same number as line 2",
    ):
        assert fragment in html
    assert session.scalar(select(func.count(Patient.id))) == 0
    session.rollback()  # SQLite: the test's read must not hold the lock the app needs

    good = (
        "first_name,phone,timezone,tracks\n"
        "Ada,+16175550181,America/New_York,sleep\n"
        "Ben,+16175550182,Europe/London,rehab\n"
    )
    answer = post_form(
        client,
        "/patients/bulk",
        {"csv_file": (io.BytesIO(good.encode()), "patients.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302
    assert session.scalar(select(func.count(Patient.id))) == 2


def test_changing_the_number_needs_a_fresh_opt_in(
    client: Any, session: Session, clinician: int
) -> None:
    patient = _own(session, clinician, first_name="Maya")
    form = {
        "first_name": "Maya",
        "phone": "+16175550199",
        "timezone": "America/New_York",
        "language": "en",
        "track_sleep": "y",
        "times_sleep": "08:30",
    }
    assert post_form(client, f"/patients/{patient.id}/edit", form).status_code == 302
    session.expire_all()
    changed = session.get_one(Patient, patient.id)
    assert (changed.phone_e164, changed.status, changed.opted_in_at) == (
        "+16175550199",
        PatientStatus.PENDING_CONSENT,
        None,
    )
    welcome = session.scalars(select(OutboundMessage)).one()
    assert (welcome.to_e164, welcome.kind) == ("+16175550199", "welcome")
    actions = set(
        session.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == patient.id))
    )
    assert {"consent.number_changed", "patient.edit"} <= actions


def test_pause_resume_and_discharge_move_the_status_and_are_audited(
    client: Any, session: Session, clinician: int
) -> None:
    patient_id = _own(session, clinician).id
    for action, expected in (
        ("pause", "paused"),
        ("resume", "active"),
        ("discharge", "discharged"),
    ):
        assert post_form(client, f"/patients/{patient_id}/{action}").status_code == 302
        session.expire_all()
        assert session.get_one(Patient, patient_id).status == expected
        session.rollback()
    # A discharged patient cannot be resumed from the dashboard.
    post_form(client, f"/patients/{patient_id}/resume")
    session.expire_all()
    assert session.get_one(Patient, patient_id).status == "discharged"
    session.rollback()
    actions = list(
        session.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == patient_id))
    )
    assert actions.count("patient.pause") == 1
    assert "patient.discharge" in actions


def test_the_list_shows_adherence_streak_last_reply_and_alerts_and_filters(
    client: Any, session: Session, clinician: int
) -> None:
    maya = _own(session, clinician, first_name="Maya")
    _own(session, clinician, first_name="Tom", status=PatientStatus.PAUSED)
    give_history(session, maya)
    html = client.get("/patients").get_data(as_text=True)
    assert "Maya" in html
    assert "Tom" in html
    # 7 days: days 0..6 sent, day 2 and 5 unanswered -> 5 of 7; 30 days: 7/10 = 70%;
    # answered today and yesterday -> a 2-day streak. In words, not "71% / 70% · 2 d".
    assert (
        "<strong>sleep</strong>: 5 of 7 done this week (71%); 70% over 30 days;"
        " done 2 days running" in html
    )
    # Maya's open urgent red flag puts her first, flagged in words, not only as a count.
    assert html.index("Maya") < html.index("Tom")
    assert "Urgent alert" in html
    assert "Red flag 1 h ago" in html
    assert "English" in html
    assert '<a class="badge"' in html
    only_paused = client.get("/patients?status=paused").get_data(as_text=True)
    assert "Tom" in only_paused
    assert "Maya" not in only_paused
    searched = client.get("/patients?q=may").get_data(as_text=True)
    assert "Maya" in searched
    assert "Tom" not in searched
    by_alerts = client.get("/patients?sort=alerts").get_data(as_text=True)
    assert by_alerts.index("Maya") < by_alerts.index("Tom")
    by_adherence = client.get("/patients?sort=adherence").get_data(as_text=True)
    assert by_adherence.index("Maya") < by_adherence.index("Tom")


def test_the_list_pages_fifty_at_a_time(client: Any, session: Session, clinician: int) -> None:
    for i in range(55):
        _own(session, clinician, first_name=f"P{i:02d}")
    first = client.get("/patients").get_data(as_text=True)
    assert "Page 1 of 2" in first
    assert "P49" in first
    assert "P50" not in first
    second = client.get("/patients?page=2").get_data(as_text=True)
    assert "P50" in second
    assert "P54" in second
    assert "P00" not in second


def test_the_patient_page_shows_timeline_heatmap_trends_alerts_and_audit(
    client: Any, session: Session, clinician: int
) -> None:
    maya = _own(session, clinician, first_name="Maya")
    give_history(session, maya)
    html = client.get(f"/patients/{maya.id}").get_data(as_text=True)
    assert html.count('class="msg msg-out"') == 10
    assert html.count('class="msg msg-in"') == 7
    assert 'class="heatmap"' in html
    assert 'class="hm-done"' in html
    assert 'class="hm-missed"' in html
    # The trends are charts with a table fallback: sleep hours, and days done each week.
    assert '<figure class="cb-chart" id="numbers-sleep">' in html
    assert "<caption>sleep: reported numbers (hours)</caption>" in html
    assert '<figure class="cb-chart" id="adherence-sleep">' in html
    assert "Red flag" in html
    assert "red_flag" not in html  # the kind in words, never the code
    assert "patient.view" in html  # the audit trail includes this very view
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "patient.view")).one()
    assert (entry.patient_id, entry.outcome, entry.actor) == (maya.id, "ok", f"staff:{clinician}")


def test_alerts_are_acknowledged_then_resolved_with_a_note_and_time_to_ack_is_kept(
    client: Any, session: Session, clinician: int, frozen: Any
) -> None:
    maya = _own(session, clinician)
    give_history(session, maya)
    alert_id = session.scalars(select(Alert.id)).one()
    session.rollback()
    frozen.move_to(NOW + dt.timedelta(minutes=14))
    assert "waiting 74 min" in client.get("/alerts").get_data(as_text=True)
    assert post_form(client, f"/alerts/{alert_id}/acknowledge").status_code == 302
    frozen.move_to(NOW + dt.timedelta(minutes=40))
    assert post_form(client, f"/alerts/{alert_id}/resolve", {"note": ""}).status_code == 302
    session.expire_all()
    assert session.get_one(Alert, alert_id).status == "acknowledged"  # a note is required
    session.rollback()
    post_form(client, f"/alerts/{alert_id}/resolve", {"note": "called, ED advised"})
    session.expire_all()
    done = session.get_one(Alert, alert_id)
    assert done.status == "resolved"
    assert done.resolution_note == "called, ED advised"
    assert done.acknowledged_at is not None
    assert done.acknowledged_at - done.created_at == dt.timedelta(minutes=74)
    session.rollback()
    assert "74 min" in client.get("/alerts?view=resolved").get_data(as_text=True)


def _routes(patient_id: int, alert_id: int) -> list[tuple[str, str]]:
    return [
        ("GET", f"/patients/{patient_id}"),
        ("GET", f"/patients/{patient_id}/edit"),
        ("POST", f"/patients/{patient_id}/edit"),
        ("POST", f"/patients/{patient_id}/pause"),
        ("POST", f"/patients/{patient_id}/resume"),
        ("POST", f"/patients/{patient_id}/discharge"),
        ("GET", f"/exports/patients/{patient_id}.csv"),
        ("GET", f"/exports/patients/{patient_id}.fhir.json"),
        ("POST", f"/alerts/{alert_id}/acknowledge"),
        ("POST", f"/alerts/{alert_id}/resolve"),
        ("POST", f"/simulator/{patient_id}/reply"),
    ]


def test_every_patient_route_answers_404_to_another_clinician_and_is_audited(
    app: Any, session: Session
) -> None:
    owner = make_staff(session, "ana@clinic.test")
    other = make_staff(session, "bo@clinic.test")
    maya = _own(session, owner)
    give_history(session, maya)
    alert_id = session.scalars(select(Alert.id)).one()
    maya_id = maya.id
    session.rollback()
    client = app.test_client()
    sign_in(client, "bo@clinic.test")
    routes = _routes(maya_id, alert_id)
    for method, path in routes:
        answer = (
            client.get(path)
            if method == "GET"
            else post_form(client, path, {"note": "x", "body": "YES", "first_name": "X"})
        )
        assert answer.status_code == 404, (method, path)
    denied = session.scalars(
        select(AuditEntry).where(
            AuditEntry.outcome == "denied", AuditEntry.actor == f"staff:{other}"
        )
    ).all()
    assert len(denied) == len(routes)
    assert {d.patient_id for d in denied} == {maya_id}
    # Nothing changed, and nothing of Maya's leaked into the other clinician's list.
    session.expire_all()
    assert session.get_one(Patient, maya_id).status == "active"
    assert session.get_one(Alert, alert_id).status == "open"
    session.rollback()
    assert "Maya" not in client.get("/patients").get_data(as_text=True)
    assert "red_flag" not in client.get("/alerts").get_data(as_text=True)


def test_operators_reach_delivery_health_but_no_patient_record(app: Any, session: Session) -> None:
    owner = make_staff(session, "ana@clinic.test")
    make_staff(session, "ops@clinic.test", role="operator")
    maya = _own(session, owner)
    give_history(session, maya)
    client = app.test_client()
    sign_in(client, "ops@clinic.test")
    health = client.get("/delivery")
    assert health.status_code == 200
    assert "7 hours" not in health.get_data(as_text=True)  # no reply text for operators
    for path in ("/patients", f"/patients/{maya.id}", "/alerts", "/staff", "/simulator"):
        assert client.get(path).status_code == 404, path


def test_admins_create_deactivate_and_change_the_role_of_staff(
    client: Any, session: Session
) -> None:
    make_staff(session, "boss@clinic.test", role="admin")
    sign_in(client, "boss@clinic.test")
    assert client.get("/patients").status_code == 404
    bad = post_form(client, "/staff", {"email": "nope", "role": "clinician", "password": "short"})
    assert bad.status_code == 422
    made = post_form(
        client,
        "/staff",
        {
            "email": "new@clinic.test",
            "display_name": "New",
            "role": "clinician",
            "password": "a-long-enough-password",
        },
    )
    assert made.status_code == 302
    user_id = session.scalars(
        select(StaffUser.id).where(StaffUser.email == "new@clinic.test")
    ).one()
    session.rollback()
    post_form(client, f"/staff/{user_id}/role", {"role": "operator"})
    post_form(client, f"/staff/{user_id}/active")
    user = session.get_one(StaffUser, user_id)
    assert (user.role, user.is_active) == ("operator", False)


def test_the_simulator_reply_goes_through_the_signed_webhook_and_opts_the_patient_in(
    client: Any, session: Session, clinician: int
) -> None:
    post_form(client, "/patients/new", ENROL)
    patient_id = session.scalars(select(Patient.id)).one()
    session.rollback()
    page = client.get("/simulator").get_data(as_text=True)
    assert "YES" in page  # the welcome, on Rosa's phone
    answer = post_form(client, f"/simulator/{patient_id}/reply", {"body": "YES"})
    assert answer.status_code == 302
    assert session.get_one(Patient, patient_id).status == PatientStatus.ACTIVE
    # The confirmation came back through TwiML and shows on the phone.
    confirmation = session.scalars(
        select(OutboundMessage.body).where(OutboundMessage.kind == "reply")
    ).one()
    session.rollback()
    assert confirmation[:10] in client.get("/simulator").get_data(as_text=True)


def test_the_simulator_is_absent_outside_development(
    client: Any, session: Session, clinician: int, runtime: Any
) -> None:
    import dataclasses

    runtime.settings = dataclasses.replace(runtime.settings, sms_backend="twilio")
    assert client.get("/simulator").status_code == 404
