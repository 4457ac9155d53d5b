"""Consent belongs to the phone number, through signed webhook posts against a real database
(issues #13 and #14): STOP suppresses the number with its words in the ledger and START lifts
it, a caregiver's revocation removes only the caregiver, a patient's own pause is theirs to lift,
a number that texted STOP gets no welcome when enrolled, one confirmation however STOP is
repeated, and HELP after STOP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, PatientStatus
from coachbot.models import (
    AdherenceRecord,
    Caregiver,
    Patient,
)
from coachbot.runtime import Runtime
from coachbot.services import consent
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient
from coachbot.services.status_changes import ResumeRefused, change_status
from tests.support import inbound_webhook
from tests.support.builders import make_caregiver, make_patient
from tests.support.inbound_webhook import (
    CAREGIVER,
    CLINIC_PHONE,
    EMPTY,
    MINUTE,
    STRANGER,
    T0,
    alerts,
    count,
    ledger,
    make_nudge,
    outbound_to,
    post,
    suppressed,
    text_of,
)
from tests.web.test_dashboard_support import make_staff

# The pipeline tests' own view of the database: a plain engine, so reading between two posts
# never holds SQLite's write lock against the webhook.
session = inbound_webhook.session


# --- consent belongs to the number --------------------------------------------------------


def test_stop_suppresses_the_number_with_its_words_in_the_ledger_and_start_lifts_it(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    phone = patient.phone_e164
    post(client, phone, "Stop.", T0)
    assert suppressed(session, phone)
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT
    assert ledger(session, phone) == [
        ("suppression_added", "Stop."),
        ("opt_out", "Stop."),
    ]

    assert "back on" in text_of(post(client, phone, "START", T0 + MINUTE))
    assert not suppressed(session, phone)
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.ACTIVE
    assert ledger(session, phone)[2:] == [("suppression_lifted", "START"), ("resume", "START")]


def test_a_caregivers_stop_texting_me_removes_only_the_caregiver(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    make_nudge(session, patient, "diet")
    post(client, CAREGIVER, "stop texting me", T0 + MINUTE)
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.ACTIVE
    assert session.get_one(Caregiver, caregiver.id).status == PatientStatus.OPTED_OUT
    assert suppressed(session, CAREGIVER)
    assert not suppressed(session, patient.phone_e164)
    (alert,) = alerts(session, AlertKind.REVOCATION)
    assert (alert.patient_id, alert.severity) == (patient.id, "normal")
    assert ("opt_out", "stop texting me") in ledger(session, CAREGIVER)
    # The patient's own answers still count.
    post(client, patient.phone_e164, "done", T0 + 2 * MINUTE)
    assert count(session, AdherenceRecord) == 1


def test_a_patients_own_revocation_is_theirs_to_lift_not_the_clinicians(
    client: Any, session: Session, runtime: Runtime
) -> None:
    patient = make_patient(session)
    phone = patient.phone_e164
    assert "paused" in text_of(post(client, phone, "please stop texting me", T0))
    session.expire_all()
    paused = session.get_one(Patient, patient.id)
    assert (paused.status, paused.paused_by) == (PatientStatus.PAUSED, consent.PAUSED_BY_PATIENT)
    assert ("revocation", "please stop texting me") in ledger(session, phone)

    with pytest.raises(ResumeRefused):
        change_status(runtime.session_factory, patient.id, "resume", now=T0, actor="staff:1")
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.PAUSED

    assert "back on" in text_of(post(client, phone, "YES", T0 + MINUTE))
    session.expire_all()
    resumed = session.get_one(Patient, patient.id)
    assert (resumed.status, resumed.paused_by) == (PatientStatus.ACTIVE, None)


def test_a_number_that_texted_stop_and_is_then_enrolled_gets_no_welcome(
    client: Any, session: Session, runtime: Runtime
) -> None:
    post(client, STRANGER, "STOP", T0 - dt.timedelta(days=1))
    assert suppressed(session, STRANGER)
    control = "+16175550161"
    with runtime.session_factory() as s:
        make_staff(s, "ana@clinic.test")
    for phone in (STRANGER, control):
        request = EnrollmentRequest(
            first_name="Tom",
            phone=phone,
            timezone="America/New_York",
            tracks="sleep",
            clinician_email="ana@clinic.test",
        )
        enroll_patient(
            runtime.session_factory,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            request,
            now=T0,
            actor="test",
        )
    assert outbound_to(session, STRANGER) == []
    assert [m.template_id for m in outbound_to(session, control)] == ["welcome"]
    assert [e for e, _ in ledger(session, STRANGER)][-1] == consent.ENROLLED_SUPPRESSED


def test_an_opt_out_is_confirmed_exactly_once_however_it_is_repeated(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    phone = patient.phone_e164
    assert "unsubscribed" in text_of(post(client, phone, "STOP", T0))
    for i, again in enumerate(["STOP", "stop texting me", "UNSUBSCRIBE", "baja", "s t o p"]):
        assert text_of(post(client, phone, again, T0 + (i + 1) * MINUTE)) == EMPTY
    assert [m.template_id for m in outbound_to(session, phone)] == ["stop_confirmation"]
    assert len(alerts(session, AlertKind.OPT_OUT)) == 1


def test_help_after_stop_is_answered_and_the_patient_stays_opted_out(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    phone = patient.phone_e164
    post(client, phone, "STOP", T0)
    answer = text_of(post(client, phone, "HELP", T0 + MINUTE))
    assert "Reply STOP to opt out" in answer
    assert CLINIC_PHONE in answer
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT
    assert suppressed(session, phone)
    assert ledger(session, phone)[-1] == ("keyword", "HELP")
    # Nothing else restarted: an answer still gets nothing.
    assert text_of(post(client, phone, "done", T0 + 2 * MINUTE)) == EMPTY
