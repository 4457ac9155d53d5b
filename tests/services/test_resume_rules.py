"""No resume without the patient: texts a patient stopped themselves (STOP, or in their own
words) restart only with their START or YES; a clinician restarts only their own pause or the
system's. The same rules through the service and `coachbot patient pause|resume|discharge`,
whose refused resume exits 2 and says why."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.cli import main
from coachbot.domain.states import PatientStatus
from coachbot.models import AuditEntry, ConsentEvent, OutboundMessage, Patient
from coachbot.runtime import Runtime
from coachbot.services import consent
from coachbot.services.status_changes import ResumeRefused, TransitionRefused, change_status
from coachbot.settings import Settings
from tests.support.builders import MONDAY_0830_NEW_YORK, make_patient

NOW = MONDAY_0830_NEW_YORK
FROM_NUMBER = "+16175550100"


def _paused(runtime: Runtime, paused_by: str | None, **kwargs: object) -> int:
    with runtime.session_factory() as s:
        patient = make_patient(s, **kwargs)  # type: ignore[arg-type]
        patient.status = PatientStatus.PAUSED
        patient.paused_by = paused_by
        s.commit()
        return patient.id


def _change(runtime: Runtime, patient_id: int, action: str) -> None:
    change_status(
        runtime.session_factory,
        patient_id,
        action,
        now=NOW,
        actor="staff:1",
        settings=dataclasses.replace(runtime.settings, twilio_from_number=FROM_NUMBER),
    )


def _ledger(runtime: Runtime, patient_id: int) -> list[tuple[str, str | None]]:
    with runtime.session_factory() as s:
        rows = s.execute(
            select(ConsentEvent.event, ConsentEvent.actor)
            .where(ConsentEvent.patient_id == patient_id)
            .order_by(ConsentEvent.id)
        ).all()
        return [(e, a) for e, a in rows]


def test_a_clinician_cannot_resume_a_patient_who_asked_to_stop(runtime: Runtime) -> None:
    patient_id = _paused(runtime, "patient")
    with pytest.raises(ResumeRefused) as refused:
        _change(runtime, patient_id, "resume")
    assert "Only Maya can restart them, by texting START or YES to +1 617-555-0100" in str(
        refused.value
    )
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.PAUSED
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "patient.resume")).one()
        assert (audit.outcome, audit.actor) == ("refused", "staff:1")
    assert _ledger(runtime, patient_id) == [("resume_refused", "staff:1")]


def test_a_clinician_cannot_resume_a_patient_who_opted_out(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        patient_id = make_patient(s, status=PatientStatus.OPTED_OUT).id
    with pytest.raises(ResumeRefused, match=r"opted out by text\. Only Maya can restart"):
        _change(runtime, patient_id, "resume")


def test_a_clinician_resumes_their_own_pause_and_the_ledger_keeps_both(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        patient_id = make_patient(s).id
    _change(runtime, patient_id, "pause")
    with runtime.session_factory() as s:
        patient = s.get_one(Patient, patient_id)
        assert (patient.status, patient.paused_by) == (PatientStatus.PAUSED, "clinician")
    _change(runtime, patient_id, "resume")
    with runtime.session_factory() as s:
        patient = s.get_one(Patient, patient_id)
        assert (patient.status, patient.paused_by) == (PatientStatus.ACTIVE, None)
    assert _ledger(runtime, patient_id) == [
        ("clinician_pause", "staff:1"),
        ("clinician_resume", "staff:1"),
    ]


def test_a_clinician_may_resume_a_pause_the_system_made_for_an_invalid_number(
    runtime: Runtime,
) -> None:
    patient_id = _paused(runtime, "system")
    _change(runtime, patient_id, "resume")
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.ACTIVE


def test_a_clinician_pause_on_a_suppressed_number_cannot_be_resumed(runtime: Runtime) -> None:
    patient_id = _paused(runtime, "clinician", phone="+16175550180")
    with runtime.session_factory() as s:
        consent.suppress(s, "+16175550180", source="keyword", text="STOP", now=NOW)
        s.commit()
    with pytest.raises(ResumeRefused, match=r"This number has opted out\. Ask Maya to text START"):
        _change(runtime, patient_id, "resume")


def test_a_patient_who_never_said_yes_still_cannot_be_resumed(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        patient = make_patient(s, status=PatientStatus.PAUSED)  # opted_in_at is None
        patient.paused_by = "clinician"
        s.commit()
        patient_id = patient.id
    with pytest.raises(TransitionRefused, match="cannot resume"):
        _change(runtime, patient_id, "resume")


# --- the CLI ------------------------------------------------------------------------------


def _cli(settings: Settings, *args: str) -> Result:
    env = {
        "DATABASE_URL": settings.database_url,
        "SMS_BACKEND": "console",
        "CLINIC_NAME": settings.clinic_name,
        "CLINIC_PHONE": settings.clinic_phone,
    }
    return CliRunner().invoke(main, ["patient", *args], env=env)


def test_cli_resume_of_a_patient_who_asked_to_stop_exits_2_and_says_why(
    runtime: Runtime, settings: Settings
) -> None:
    patient_id = _paused(runtime, "patient")
    result = _cli(settings, "resume", "--id", str(patient_id))
    assert result.exit_code == 2
    assert "resume refused: Maya asked to stop the texts. Only Maya can restart them" in (
        result.output
    )
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.PAUSED


def test_cli_pause_resume_and_discharge_follow_the_page_rules(
    runtime: Runtime, settings: Settings
) -> None:
    with runtime.session_factory() as s:
        patient_id = make_patient(s).id
    pause = _cli(settings, "pause", "--id", str(patient_id))
    assert (pause.exit_code, pause.output.strip()) == (0, f"patient {patient_id} is now paused")
    resume = _cli(settings, "resume", "--id", str(patient_id))
    assert (resume.exit_code, resume.output.strip()) == (0, f"patient {patient_id} is now active")
    discharge = _cli(settings, "discharge", "--id", str(patient_id))
    assert discharge.exit_code == 0
    again = _cli(settings, "resume", "--id", str(patient_id))
    assert again.exit_code == 2
    assert "cannot resume a patient who is discharged" in again.output
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.DISCHARGED
    assert [e for e, _ in _ledger(runtime, patient_id)] == [
        "clinician_pause",
        "clinician_resume",
        "discharge",
    ]


def test_cli_names_a_patient_that_does_not_exist(settings: Settings, session: Session) -> None:
    result = _cli(settings, "pause", "--id", "999")
    assert result.exit_code == 2
    assert "no patient with id 999" in result.output


def test_cli_enrol_of_a_suppressed_number_enrols_texts_nothing_and_says_to_text_start(
    runtime: Runtime, settings: Settings
) -> None:
    with runtime.session_factory() as s:
        consent.suppress(s, "+16175550177", source="keyword", text="STOP", now=NOW)
        s.commit()
    env = {
        "DATABASE_URL": settings.database_url,
        "SMS_BACKEND": "console",
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
    }
    result = CliRunner().invoke(
        main,
        ["enroll", "--first-name", "Ana", "--phone", "+16175550177", "--tz", "America/Chicago"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert (
        "The patient's number: this number has opted out; ask them to text START to"
        " +1 617-555-0100." in result.output
    )
    with runtime.session_factory() as s:
        assert s.scalars(select(OutboundMessage)).all() == []
