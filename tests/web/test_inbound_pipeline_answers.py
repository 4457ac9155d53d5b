"""The inbound pipeline's answers to nudges, through signed webhook posts against a real
database: what is recorded against which open nudge and acknowledged, typos, caregivers' texts,
several open nudges, reply windows (the programme's, for a send whose outcome is unknown) and
replies with no open nudge."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import NudgeState
from coachbot.models import (
    AdherenceRecord,
    OutboundMessage,
)
from coachbot.services import program_edits, programs
from tests.support import inbound_webhook
from tests.support.builders import make_caregiver, make_patient
from tests.support.inbound_webhook import (
    T0,
    count,
    last_inbound,
    make_nudge,
    post,
    text_of,
)

# A plain engine, so reading between two posts never holds SQLite's write lock against the
# webhook (tests/support/inbound_webhook.py).
session = inbound_webhook.session


# --- answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("track", "body", "outcome", "value", "unit", "template"),
    [
        ("diet", "done", "done", None, None, "ack.done"),
        ("diet", "👍", "done", None, None, "ack.done"),
        ("diet", "Skip", "skipped", None, None, "ack.skip"),
        ("diet", "hoy no", "skipped", None, None, "ack.skip"),
        ("sleep", "7.5h", "done", 7.5, "hours", "ack.value"),
        ("sleep", "about 6", "done", 6, "hours", "ack.value"),
        ("exercise", "about 20 minutes", "done", 20, "minutes", "ack.value"),
        ("mindfulness", "3", "done", 3, "rating", "ack.value"),
        ("diet", "dnoe", "done", None, None, "ack.typo_done"),
    ],
)
def test_answers_are_recorded_against_the_open_nudge_and_acknowledged(
    client: Any,
    session: Session,
    track: str,
    body: str,
    outcome: str,
    value: float | None,
    unit: str | None,
    template: str,
) -> None:
    patient = make_patient(session)
    nudge = make_nudge(session, patient, track, window=dt.timedelta(hours=4))
    answer = text_of(post(client, patient.phone_e164, body, T0 + dt.timedelta(minutes=20)))
    record = session.scalars(select(AdherenceRecord)).one()
    assert (record.nudge_id, record.outcome, record.value, record.unit) == (
        nudge.id,
        outcome,
        value,
        unit,
    )
    assert not record.is_proxy
    reply = session.scalars(select(OutboundMessage)).one()
    assert reply.template_id == template
    assert reply.body in answer.replace("&amp;", "&")
    row = last_inbound(session)
    assert row.nudge_id == nudge.id


def test_a_typo_is_echoed_as_what_was_logged(client: Any, session: Session) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    answer = text_of(post(client, patient.phone_e164, "DOEN", T0 + dt.timedelta(minutes=1)))
    assert "logged as done" in answer or "as DONE" in answer


def test_a_caregivers_text_is_theirs_not_an_answer_to_the_patients_nudge(
    client: Any, session: Session
) -> None:
    """A caregiver answers their own checks: their words never log the patient's nudge."""
    patient = make_patient(session)
    caregiver = make_caregiver(session, patient, phone="+16175550777")
    make_nudge(session, patient, "exercise")
    post(client, "+16175550777", "she walked 20 min", T0 + dt.timedelta(minutes=30))
    assert session.scalars(select(AdherenceRecord)).all() == []
    row = last_inbound(session)
    assert (row.patient_id, row.caregiver_id, row.is_proxy) == (patient.id, caregiver.id, True)
    assert row.nudge_id is None


def test_several_open_nudges_take_the_most_recent_unless_a_track_is_named(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    sleep = make_nudge(session, patient, "sleep", sent_at=T0)
    exercise = make_nudge(session, patient, "exercise", sent_at=T0 + dt.timedelta(hours=1))
    diet = make_nudge(session, patient, "diet", sent_at=T0 + dt.timedelta(hours=2))
    later = T0 + dt.timedelta(hours=3)
    post(client, patient.phone_e164, "done", later)
    post(client, patient.phone_e164, "slept 7 hours", later + dt.timedelta(minutes=1))
    post(client, patient.phone_e164, "walked 25 min", later + dt.timedelta(minutes=2))
    records = {r.nudge_id: r for r in session.scalars(select(AdherenceRecord))}
    assert set(records) == {sleep.id, exercise.id, diet.id}
    assert (records[sleep.id].value, records[sleep.id].unit) == (7, "hours")
    assert (records[exercise.id].value, records[exercise.id].unit) == (25, "minutes")
    assert records[diet.id].outcome == "done"


def test_a_late_reply_within_the_window_counts_and_after_it_is_free_text(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    nudge = make_nudge(session, patient, "diet", window=dt.timedelta(hours=8))
    post(client, patient.phone_e164, "skip", T0 + dt.timedelta(hours=7, minutes=59))
    assert session.scalars(select(AdherenceRecord)).one().nudge_id == nudge.id
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(hours=8, minutes=1))
    assert session.scalars(select(AdherenceRecord)).one().outcome == "skipped"
    assert last_inbound(session).outcome == "free_text"


def test_the_latest_answer_to_a_nudge_wins(client: Any, session: Session) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    post(client, patient.phone_e164, "skip", T0 + dt.timedelta(minutes=1))
    post(client, patient.phone_e164, "did it after all", T0 + dt.timedelta(hours=2))
    assert session.scalars(select(AdherenceRecord)).one().outcome == "done"


def test_a_reply_without_an_open_nudge_is_kept_as_free_text(client: Any, session: Session) -> None:
    patient = make_patient(session)
    answer = text_of(post(client, patient.phone_e164, "done", T0))
    assert "care team" in answer
    row = last_inbound(session)
    assert (row.outcome, row.nudge_id, row.body) == ("free_text", None, "done")
    assert count(session, AdherenceRecord) == 0


def test_a_reply_to_a_nudge_in_an_ambiguous_state_still_counts(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    nudge = make_nudge(session, patient, "diet", state=NudgeState.AMBIGUOUS)
    nudge.sent_at = T0
    session.commit()
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(minutes=5))
    assert session.scalars(select(AdherenceRecord)).one().nudge_id == nudge.id


def _set_reply_window(session: Session, track: str, minutes: int) -> None:
    view = programs.show_program(session, "standard")
    changed = program_edits.with_changes(view.tracks[track], reply_window_minutes=minutes)
    session.commit()  # the read ends before the save's own transaction
    program_edits.save_track(
        sessionmaker(session.get_bind()),
        "standard",
        changed,
        base_version=view.version,
        actor="test",
        now=T0,
    )
    session.expire_all()


def test_an_ambiguous_nudge_stays_open_for_its_programmes_longer_reply_window(
    client: Any, session: Session
) -> None:
    """No reply window is set on a send whose outcome is unknown: the programme in force
    says how long it waits for an answer, even past every built-in window (diet's is 8 h,
    the longest 10 h)."""
    patient = make_patient(session)
    _set_reply_window(session, "diet", 20 * 60)
    nudge = make_nudge(session, patient, "diet", state=NudgeState.AMBIGUOUS)
    nudge.sent_at = T0
    session.commit()
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(hours=12))
    assert session.scalars(select(AdherenceRecord)).one().nudge_id == nudge.id


def test_an_ambiguous_nudge_closes_with_its_programmes_shorter_reply_window(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    _set_reply_window(session, "diet", 60)
    nudge = make_nudge(session, patient, "diet", state=NudgeState.AMBIGUOUS)
    nudge.sent_at = T0
    session.commit()
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(hours=2))
    row = last_inbound(session)
    assert (row.outcome, row.nudge_id) == ("free_text", None)
    assert count(session, AdherenceRecord) == 0
