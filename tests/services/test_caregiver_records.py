"""A caregiver and the close-watch weeks as a clinician enters them (services.caregivers.records
through enrolment and the edit): a new number is a caregiver pending consent with an
invitation due; a number that is already a caregiver is linked only; a new number asks for
YES again; unlinking keeps a record still in use; every change is audited and every consent
change is in the ledger; bad input is refused field by field with nothing written."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from coachbot.domain.states import PatientStatus
from coachbot.models import (
    AuditEntry,
    Caregiver,
    CaregiverCheck,
    CaregiverLink,
    ConsentEvent,
    Patient,
    StaffUser,
)
from coachbot.runtime import Runtime
from coachbot.services.care import (
    CarePlan,
    PatientChanges,
    change_caregiver,
    change_close_watch,
    edit_patient,
)
from coachbot.services.caregivers.records import CaregiverEntry
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient
from coachbot.services.errors import ValidationFailed
from tests.support.builders import make_caregiver, make_patient
from tests.web.test_dashboard_support import make_staff

NOW = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)  # noon in New York
LATER = NOW + dt.timedelta(days=2)
PATIENT = "+16175550301"
OTHER_PATIENT = "+16175550302"
CAREGIVER = "+16175550311"
NEW_CAREGIVER = "+16175550312"


def _enrol(runtime: Runtime, phone: str = PATIENT, **overrides: object) -> int:
    with runtime.session_factory() as session:
        if session.scalar(select(func.count()).select_from(StaffUser)) == 0:
            make_staff(session, "ana@clinic.test")
    fields: dict[str, object] = {
        "first_name": "Ana",
        "phone": phone,
        "timezone": "America/New_York",
        "clinician_email": "ana@clinic.test",
        "tracks": "sleep",
    }
    fields.update(overrides)
    patient = enroll_patient(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        EnrollmentRequest(**fields),  # type: ignore[arg-type]
        now=NOW,
        actor="staff:1",
    )
    return patient.id


def _edit(runtime: Runtime, patient_id: int, *, now: dt.datetime = LATER, **caregiver: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "first_name": "Ana",
        "phone": PATIENT,
        "timezone": "America/New_York",
        "language": "en",
        "quiet_hours": None,
        "caregiver_phone": None,
        "checkin": False,
    }
    fields.update(caregiver)
    return edit_patient(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        patient_id,
        PatientChanges(**fields),  # type: ignore[arg-type]
        CarePlan({"sleep": "08:30"}, ()),
        now=now,
        actor="staff:1",
    )


def _caregivers(runtime: Runtime) -> list[tuple[str, str, str, str, dt.datetime | None]]:
    with runtime.read_session_factory() as s:
        rows = s.execute(
            select(
                Caregiver.phone_e164,
                Caregiver.first_name,
                Caregiver.language,
                Caregiver.status,
                Caregiver.invite_due_at,
            ).order_by(Caregiver.id)
        ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]


def _links(runtime: Runtime) -> set[tuple[int, str]]:
    with runtime.read_session_factory() as s:
        rows = s.execute(
            select(CaregiverLink.patient_id, Caregiver.phone_e164).join(
                Caregiver, Caregiver.id == CaregiverLink.caregiver_id
            )
        ).all()
        return {(p, n) for p, n in rows}


def _ledger(runtime: Runtime, number: str) -> list[str]:
    with runtime.read_session_factory() as s:
        return list(
            s.scalars(
                select(ConsentEvent.event)
                .where(ConsentEvent.number_e164 == number)
                .order_by(ConsentEvent.id)
            )
        )


def _audits(runtime: Runtime, prefix: str) -> list[str]:
    with runtime.read_session_factory() as s:
        return [
            f"{a}:{d}"
            for a, d in s.execute(
                select(AuditEntry.action, AuditEntry.detail)
                .where(AuditEntry.action.startswith(prefix))
                .order_by(AuditEntry.id)
            )
        ]


def test_enrolling_with_a_new_caregiver_makes_them_pending_with_the_invitation_due_now(
    runtime: Runtime,
) -> None:
    patient_id = _enrol(
        runtime,
        caregiver_phone="(617) 555-0311",
        caregiver_name=" Sam ",
        close_watch_from="2026-11-24",
        close_watch_days="21",
    )
    assert _caregivers(runtime) == [(CAREGIVER, "Sam", "en", "pending-consent", NOW)]
    assert _links(runtime) == {(patient_id, CAREGIVER)}
    assert _ledger(runtime, CAREGIVER) == ["caregiver_added"]
    assert [a.split(":")[0] for a in _audits(runtime, "caregiver.")] == ["caregiver.link"]
    with runtime.read_session_factory() as s:
        patient = s.get_one(Patient, patient_id)
        assert (patient.close_watch_from, patient.close_watch_days) == (dt.date(2026, 11, 24), 21)
        assert s.scalars(select(Caregiver)).one().timezone == "America/New_York"


def test_the_caregiver_language_defaults_to_the_patients(runtime: Runtime) -> None:
    _enrol(runtime, language="es", caregiver_phone=CAREGIVER, caregiver_name="Sam")
    assert _caregivers(runtime)[0][2] == "es"


def test_a_number_already_a_caregiver_is_linked_only_and_not_invited_again(
    runtime: Runtime,
) -> None:
    with runtime.session_factory() as s:
        bo = make_patient(s, first_name="Bo", phone=OTHER_PATIENT)
        make_caregiver(s, bo, phone=CAREGIVER, first_name="Sam")  # active since Nov 1
    patient_id = _enrol(runtime, caregiver_phone=CAREGIVER, caregiver_name="Samuel")
    # Their consent stands: still active, no invitation due, their name as they were added.
    assert _caregivers(runtime) == [(CAREGIVER, "Sam", "en", "active", None)]
    assert _links(runtime) == {(patient_id, CAREGIVER), (bo.id, CAREGIVER)}
    assert _ledger(runtime, CAREGIVER) == []


def test_an_opted_out_caregiver_linked_again_stays_opted_out(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        bo = make_patient(s, first_name="Bo", phone=OTHER_PATIENT)
        make_caregiver(s, bo, phone=CAREGIVER, status=PatientStatus.OPTED_OUT)
    _enrol(runtime, caregiver_phone=CAREGIVER, caregiver_name="Sam")
    assert _caregivers(runtime)[0][3:] == ("opted-out", None)


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"caregiver_phone": PATIENT, "caregiver_name": "Sam"},
            {"caregiver_phone": "the caregiver number must differ from the patient's"},
        ),
        (
            {"caregiver_phone": OTHER_PATIENT, "caregiver_name": "Sam"},
            {"caregiver_phone": "this number is a patient's own number"},
        ),
        (
            {"caregiver_phone": "12345", "caregiver_name": "Sam"},
            {"caregiver_phone": "'12345' is not a valid phone number"},
        ),
        (
            {"caregiver_phone": CAREGIVER},
            {"caregiver_name": "the caregiver's first name is required with their number"},
        ),
        (
            {"caregiver_name": "Sam"},
            {"caregiver_phone": "give the caregiver's mobile number, or leave the name empty"},
        ),
        (
            {"caregiver_phone": CAREGIVER, "caregiver_name": "Sam", "caregiver_language": "fr"},
            {"caregiver_language": "'fr' is not supported; choose en or es"},
        ),
        (
            {"caregiver_phone": CAREGIVER, "caregiver_name": "S" * 41},
            {"caregiver_name": "at most 40 characters (it goes into their texts)"},
        ),
        (
            {"close_watch_from": "2026-02-30"},
            {"close_watch_from": "'2026-02-30' is not a date such as 2026-12-01"},
        ),
        (
            {"close_watch_from": "2026-12-01", "close_watch_days": "0"},
            {"close_watch_days": "from 1 to 90 days"},
        ),
        (
            {"close_watch_from": "2026-12-01", "close_watch_days": "91"},
            {"close_watch_days": "from 1 to 90 days"},
        ),
        (
            {"close_watch_from": "2026-12-01", "close_watch_days": "two weeks"},
            {"close_watch_days": "a whole number of days"},
        ),
        (
            {"close_watch_days": "14"},
            {"close_watch_from": "the first close-watch day is required with a length"},
        ),
    ],
)
def test_bad_caregiver_or_close_watch_input_is_refused_with_nothing_written(
    runtime: Runtime, fields: dict[str, str], errors: dict[str, str]
) -> None:
    with runtime.session_factory() as s:
        make_patient(s, first_name="Bo", phone=OTHER_PATIENT)
    with pytest.raises(ValidationFailed) as refused:
        _enrol(runtime, **fields)
    assert refused.value.errors == errors
    assert _caregivers(runtime) == []
    with runtime.read_session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 1  # Bo only


def test_a_patients_own_number_may_not_be_a_caregivers(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        bo = make_patient(s, first_name="Bo", phone=OTHER_PATIENT)
        make_caregiver(s, bo, phone=CAREGIVER)
    with pytest.raises(ValidationFailed) as refused:
        _enrol(runtime, phone=CAREGIVER)
    assert refused.value.errors == {"phone": "this number is a caregiver's"}


def test_editing_the_name_and_language_changes_the_record_and_is_audited(
    runtime: Runtime,
) -> None:
    patient_id = _enrol(runtime, caregiver_phone=CAREGIVER, caregiver_name="Sam")
    edited = _edit(
        runtime,
        patient_id,
        caregiver_phone=CAREGIVER,
        caregiver_name="Sammy",
        caregiver_language="es",
    )
    assert edited.changed == ["caregiver_name", "caregiver_language"]
    assert _caregivers(runtime) == [(CAREGIVER, "Sammy", "es", "pending-consent", NOW)]
    assert _audits(runtime, "caregiver.edit") == [
        "caregiver.edit:caregiver 1: caregiver_name,caregiver_language"
    ]
    assert _ledger(runtime, CAREGIVER) == ["caregiver_added"]  # no consent change


def test_an_unchanged_caregiver_is_not_touched_by_an_edit(runtime: Runtime) -> None:
    patient_id = _enrol(runtime, caregiver_phone=CAREGIVER, caregiver_name="Sam")
    edited = _edit(runtime, patient_id, caregiver_phone="617-555-0311", caregiver_name="Sam")
    assert edited.changed == []
    assert _audits(runtime, "caregiver.edit") == []


def test_a_new_number_for_an_active_caregiver_asks_for_yes_again(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Ana", phone=PATIENT)
        make_caregiver(s, patient, phone=CAREGIVER, first_name="Sam")
    edited = _edit(runtime, patient.id, caregiver_phone=NEW_CAREGIVER, caregiver_name="Sam")
    assert edited.changed == ["caregiver_phone"]
    assert _caregivers(runtime) == [(NEW_CAREGIVER, "Sam", "en", "pending-consent", LATER)]
    assert _ledger(runtime, NEW_CAREGIVER) == ["caregiver_number_changed"]
    with runtime.read_session_factory() as s:
        caregiver = s.scalars(select(Caregiver)).one()
        assert (caregiver.opted_in_at, caregiver.invited_at) == (None, None)


def test_a_new_number_for_a_shared_caregiver_leaves_the_other_patient_alone(
    runtime: Runtime,
) -> None:
    with runtime.session_factory() as s:
        ana = make_patient(s, first_name="Ana", phone=PATIENT)
        bo = make_patient(s, first_name="Bo", phone=OTHER_PATIENT)
        make_caregiver(s, ana, phone=CAREGIVER)
        make_caregiver(s, bo, phone=CAREGIVER)
    _edit(runtime, ana.id, caregiver_phone=NEW_CAREGIVER, caregiver_name="Sam")
    assert _links(runtime) == {(ana.id, NEW_CAREGIVER), (bo.id, CAREGIVER)}
    assert [c[3:] for c in _caregivers(runtime)] == [
        ("active", None),
        ("pending-consent", LATER),
    ]
    assert [a.split(":")[0] for a in _audits(runtime, "caregiver.")] == [
        "caregiver.unlink",
        "caregiver.link",
    ]


def test_clearing_the_caregiver_removes_a_record_used_nowhere_else(runtime: Runtime) -> None:
    patient_id = _enrol(runtime, caregiver_phone=CAREGIVER, caregiver_name="Sam")
    assert _edit(runtime, patient_id).changed == ["caregiver_removed"]
    assert _caregivers(runtime) == []
    assert _audits(runtime, "caregiver.unlink") == ["caregiver.unlink:caregiver 1 removed"]
    assert _ledger(runtime, CAREGIVER) == ["caregiver_added"]  # the ledger keeps its history


def test_unlinking_keeps_a_caregiver_linked_elsewhere_or_with_history(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        ana = make_patient(s, first_name="Ana", phone=PATIENT)
        bo = make_patient(s, first_name="Bo", phone=OTHER_PATIENT)
        shared = make_caregiver(s, ana, phone=CAREGIVER)
        make_caregiver(s, bo, phone=CAREGIVER)
        solo_patient = make_patient(s, first_name="Cy")
        solo = make_caregiver(s, solo_patient, phone=NEW_CAREGIVER)
        s.add(
            CaregiverCheck(
                patient_id=solo_patient.id,
                caregiver_id=solo.id,
                kind="observation",
                local_date=dt.date(2026, 11, 22),
                items=4,
                due_at=NOW,
                state="answered",
                score=4,
                created_at=NOW,
            )
        )
        s.commit()
        shared_id, solo_id = shared.id, solo.id
    for patient_id in (ana.id, solo_patient.id):
        assert change_caregiver(
            runtime.session_factory, runtime.settings, patient_id, None, now=LATER, actor="cli"
        ) == ["caregiver_removed"]
    assert _links(runtime) == {(bo.id, CAREGIVER)}
    assert _audits(runtime, "caregiver.unlink") == [
        f"caregiver.unlink:caregiver {shared_id} kept",
        f"caregiver.unlink:caregiver {solo_id} kept",
    ]
    assert len(_caregivers(runtime)) == 2


def test_change_caregiver_adds_one_to_a_patient_without_and_names_bad_fields(
    runtime: Runtime,
) -> None:
    with runtime.session_factory() as s:
        patient_id = make_patient(s, first_name="Ana", phone=PATIENT).id
    with pytest.raises(ValidationFailed) as refused:
        change_caregiver(
            runtime.session_factory,
            runtime.settings,
            patient_id,
            CaregiverEntry(CAREGIVER, "", None),
            now=LATER,
            actor="cli",
        )
    assert list(refused.value.errors) == ["caregiver_name"]
    assert _caregivers(runtime) == []
    changed = change_caregiver(
        runtime.session_factory,
        runtime.settings,
        patient_id,
        CaregiverEntry(CAREGIVER, "Sam", None),
        now=LATER,
        actor="cli",
    )
    assert changed == ["caregiver_added"]
    assert _caregivers(runtime) == [(CAREGIVER, "Sam", "en", "pending-consent", LATER)]
    with pytest.raises(LookupError):
        change_caregiver(
            runtime.session_factory, runtime.settings, 999, None, now=LATER, actor="cli"
        )


def test_the_close_watch_is_set_changed_and_cleared_with_an_audit(runtime: Runtime) -> None:
    patient_id = _enrol(runtime, close_watch_from=dt.date(2026, 11, 24))
    with runtime.read_session_factory() as s:
        patient = s.get_one(Patient, patient_id)
        assert (patient.close_watch_from, patient.close_watch_days) == (dt.date(2026, 11, 24), None)
    edited = _edit(
        runtime, patient_id, close_watch_from=dt.date(2026, 11, 25), close_watch_days="14"
    )
    assert edited.changed == ["close_watch_from", "close_watch_days"]
    sessions = runtime.session_factory
    assert change_close_watch(sessions, patient_id, None, None, now=LATER, actor="cli") == [
        "close_watch_from",
        "close_watch_days",
    ]
    with pytest.raises(ValidationFailed):
        change_close_watch(sessions, patient_id, "2026-11-31", None, now=LATER, actor="cli")
    assert _audits(runtime, "patient.close_watch") == [
        "patient.close_watch:close_watch_from,close_watch_days"
    ]


def test_a_caregiver_never_invited_is_invited_only_when_asked(runtime: Runtime) -> None:
    """A number given before caregivers could be texted is a caregiver pending consent whom
    nothing was sent (migration 0013): an edit invites them only when the clinician asks."""
    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Ana", phone=PATIENT)
        migrated = make_caregiver(
            s,
            patient,
            phone=CAREGIVER,
            first_name="Caregiver",
            status=PatientStatus.PENDING_CONSENT,
        )
        migrated.invited_at = None
        s.commit()
    assert _edit(runtime, patient.id, caregiver_phone=CAREGIVER, caregiver_name="Sam").changed == [
        "caregiver_name"
    ]
    assert _caregivers(runtime) == [(CAREGIVER, "Sam", "en", "pending-consent", None)]
    edited = _edit(
        runtime, patient.id, caregiver_phone=CAREGIVER, caregiver_name="Sam", invite_caregiver=True
    )
    assert edited.changed == ["caregiver_invited"]
    assert _caregivers(runtime) == [(CAREGIVER, "Sam", "en", "pending-consent", LATER)]
    assert _ledger(runtime, CAREGIVER) == ["caregiver_invited"]
    # Once invited (or once they answered), asking again does nothing.
    again = _edit(
        runtime, patient.id, caregiver_phone=CAREGIVER, caregiver_name="Sam", invite_caregiver=True
    )
    assert again.changed == []
