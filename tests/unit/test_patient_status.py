"""The patient status table: every event from every status, and the facts that refuse a
change the table alone would allow (who paused, a suppressed number, no opt-in yet)."""

from __future__ import annotations

import doctest

import pytest

from coachbot.domain import patient_status
from coachbot.domain.patient_status import (
    Event,
    Outcome,
    PatientState,
    PausedBy,
    Refusal,
    transition,
)
from coachbot.domain.states import PatientStatus

PENDING = PatientStatus.PENDING_CONSENT
ACTIVE = PatientStatus.ACTIVE
PAUSED = PatientStatus.PAUSED
OPTED_OUT = PatientStatus.OPTED_OUT
DISCHARGED = PatientStatus.DISCHARGED
NOT_FROM = Refusal.NOT_FROM_STATUS

# (event, status before, status after or the refusal). The patient opted in (except while
# pending), nobody paused them through their own words, the number is not suppressed.
PLAIN_CASES: list[tuple[Event, PatientStatus, PatientStatus | Refusal]] = [
    (Event.OPT_OUT, PENDING, OPTED_OUT),
    (Event.OPT_OUT, ACTIVE, OPTED_OUT),
    (Event.OPT_OUT, PAUSED, OPTED_OUT),
    (Event.OPT_OUT, OPTED_OUT, Refusal.ALREADY),
    (Event.OPT_OUT, DISCHARGED, OPTED_OUT),
    (Event.CARRIER_OPT_OUT, PENDING, OPTED_OUT),
    (Event.CARRIER_OPT_OUT, ACTIVE, OPTED_OUT),
    (Event.CARRIER_OPT_OUT, PAUSED, OPTED_OUT),
    (Event.CARRIER_OPT_OUT, OPTED_OUT, Refusal.ALREADY),
    (Event.CARRIER_OPT_OUT, DISCHARGED, OPTED_OUT),
    (Event.OPT_IN, PENDING, ACTIVE),
    (Event.OPT_IN, ACTIVE, ACTIVE),
    (Event.OPT_IN, PAUSED, ACTIVE),
    (Event.OPT_IN, OPTED_OUT, ACTIVE),
    (Event.OPT_IN, DISCHARGED, Refusal.DISCHARGED),
    (Event.REVOCATION, PENDING, PAUSED),
    (Event.REVOCATION, ACTIVE, PAUSED),
    (Event.REVOCATION, PAUSED, PAUSED),  # a clinician's pause becomes the patient's
    (Event.REVOCATION, OPTED_OUT, NOT_FROM),
    (Event.REVOCATION, DISCHARGED, PAUSED),
    (Event.PAUSE, PENDING, NOT_FROM),
    (Event.PAUSE, ACTIVE, PAUSED),
    (Event.PAUSE, PAUSED, NOT_FROM),
    (Event.PAUSE, OPTED_OUT, NOT_FROM),
    (Event.PAUSE, DISCHARGED, NOT_FROM),
    (Event.RESUME, PENDING, NOT_FROM),
    (Event.RESUME, ACTIVE, NOT_FROM),
    (Event.RESUME, PAUSED, ACTIVE),
    (Event.RESUME, OPTED_OUT, Refusal.PATIENT_OPTED_OUT),
    (Event.RESUME, DISCHARGED, NOT_FROM),
    (Event.DISCHARGE, PENDING, DISCHARGED),
    (Event.DISCHARGE, ACTIVE, DISCHARGED),
    (Event.DISCHARGE, PAUSED, DISCHARGED),
    (Event.DISCHARGE, OPTED_OUT, NOT_FROM),
    (Event.DISCHARGE, DISCHARGED, NOT_FROM),
    (Event.NUMBER_CHANGED, PENDING, PENDING),
    (Event.NUMBER_CHANGED, ACTIVE, PENDING),
    (Event.NUMBER_CHANGED, PAUSED, PENDING),
    (Event.NUMBER_CHANGED, OPTED_OUT, NOT_FROM),
    (Event.NUMBER_CHANGED, DISCHARGED, NOT_FROM),
    (Event.INVALID_NUMBER, PENDING, NOT_FROM),
    (Event.INVALID_NUMBER, ACTIVE, PAUSED),
    (Event.INVALID_NUMBER, PAUSED, NOT_FROM),
    (Event.INVALID_NUMBER, OPTED_OUT, NOT_FROM),
    (Event.INVALID_NUMBER, DISCHARGED, NOT_FROM),
]


def _plain(status: PatientStatus) -> PatientState:
    paused_by = PausedBy.CLINICIAN if status == PAUSED else None
    return PatientState(status, paused_by=paused_by, opted_in=status != PENDING)


def test_the_cases_cover_every_event_from_every_status() -> None:
    covered = {(event, status) for event, status, _ in PLAIN_CASES}
    assert covered == {(event, status) for event in Event for status in PatientStatus}


@pytest.mark.parametrize(("event", "before", "expected"), PLAIN_CASES)
def test_every_event_from_every_status(
    event: Event, before: PatientStatus, expected: PatientStatus | Refusal
) -> None:
    outcome = transition(_plain(before), event)
    if isinstance(expected, Refusal):
        assert (outcome.allowed, outcome.refusal, outcome.status) == (False, expected, before)
        assert not outcome.changed
        assert outcome.reason
    else:
        assert (outcome.allowed, outcome.refusal, outcome.status) == (True, None, expected)


def test_a_refusal_the_table_gives_names_the_event_and_the_status() -> None:
    outcome = transition(_plain(DISCHARGED), Event.PAUSE)
    assert outcome.reason == "cannot pause a patient who is discharged"
    assert transition(_plain(ACTIVE), Event.INVALID_NUMBER).allowed
    assert (
        transition(_plain(PENDING), Event.INVALID_NUMBER).reason
        == "cannot invalid number a patient who is pending-consent"
    )


@pytest.mark.parametrize(
    ("state", "refusal", "reason"),
    [
        (
            PatientState(OPTED_OUT, opted_in=True),
            Refusal.PATIENT_OPTED_OUT,
            "the patient opted out by text; only they can restart",
        ),
        (
            PatientState(PAUSED, paused_by=PausedBy.PATIENT, opted_in=True),
            Refusal.PATIENT_PAUSED,
            "the patient asked to stop; only they can restart",
        ),
        (
            PatientState(
                PAUSED, paused_by=PausedBy.CLINICIAN, opted_in=True, number_suppressed=True
            ),
            Refusal.NUMBER_SUPPRESSED,
            "the number opted out; only a START from it restarts",
        ),
        (
            PatientState(PAUSED, paused_by=PausedBy.CLINICIAN, opted_in=False),
            Refusal.NEVER_OPTED_IN,
            "cannot resume a patient who has not opted in yet",
        ),
    ],
)
def test_a_clinician_never_restarts_what_the_patient_stopped_nor_stands_in_for_their_yes(
    state: PatientState, refusal: Refusal, reason: str
) -> None:
    outcome = transition(state, Event.RESUME)
    assert (outcome.refusal, outcome.reason, outcome.status) == (refusal, reason, state.status)
    assert outcome.patient_owned == (refusal is not Refusal.NEVER_OPTED_IN)


def test_a_clinician_resumes_their_own_pause_and_a_system_pause() -> None:
    for pauser in (PausedBy.CLINICIAN, PausedBy.SYSTEM):
        outcome = transition(PatientState(PAUSED, paused_by=pauser, opted_in=True), Event.RESUME)
        assert outcome == Outcome(status=ACTIVE, paused_by=None, changed=True)


def test_each_pause_records_who_paused() -> None:
    active = PatientState(ACTIVE, opted_in=True)
    assert transition(active, Event.PAUSE).paused_by is PausedBy.CLINICIAN
    assert transition(active, Event.REVOCATION).paused_by is PausedBy.PATIENT
    assert transition(active, Event.INVALID_NUMBER).paused_by is PausedBy.SYSTEM


def test_a_repeated_revocation_changes_nothing_and_says_so() -> None:
    state = PatientState(PAUSED, paused_by=PausedBy.PATIENT, opted_in=True)
    outcome = transition(state, Event.REVOCATION)
    assert (outcome.refusal, outcome.changed, outcome.paused_by) == (
        Refusal.ALREADY,
        False,
        PausedBy.PATIENT,
    )


def test_the_patients_own_start_restarts_their_own_pause_and_clears_the_pauser() -> None:
    state = PatientState(PAUSED, paused_by=PausedBy.PATIENT, opted_in=True)
    assert transition(state, Event.OPT_IN) == Outcome(status=ACTIVE, paused_by=None, changed=True)


def test_start_while_active_is_allowed_and_changes_nothing() -> None:
    outcome = transition(PatientState(ACTIVE, opted_in=True, number_suppressed=True), Event.OPT_IN)
    assert (outcome.allowed, outcome.changed, outcome.status) == (True, False, ACTIVE)


def test_an_opt_out_a_discharge_and_a_new_number_keep_the_record_of_who_paused() -> None:
    state = PatientState(PAUSED, paused_by=PausedBy.SYSTEM, opted_in=True)
    assert transition(state, Event.OPT_OUT).paused_by is PausedBy.SYSTEM
    assert transition(state, Event.DISCHARGE).paused_by is PausedBy.SYSTEM
    assert transition(state, Event.NUMBER_CHANGED).paused_by is PausedBy.SYSTEM


def test_the_module_docstring_example_runs() -> None:
    failures, tried = doctest.testmod(patient_status)
    assert (failures, tried > 0) == (0, True)
