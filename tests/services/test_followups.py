"""Non-response: missed records, one gentle follow-up, alerts on silence; replays add nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, NudgeState, PatientStatus
from coachbot.models import AdherenceRecord, Alert, Nudge, Patient
from coachbot.queries.adherence import adherence_by_track
from coachbot.runtime import Runtime
from coachbot.services.followups import process_reply_windows
from coachbot.services.tick import TickSummary, run_tick
from tests.support.builders import MONDAY_0830_NEW_YORK, make_patient
from tests.support.twilio_signing import inbound_params, post_signed

T0 = MONDAY_0830_NEW_YORK
DAY = dt.timedelta(days=1)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)  # no BEGIN IMMEDIATE: reads never block the service
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


def sent_nudge(
    session: Session,
    patient: Patient,
    track: str,
    sent_at: dt.datetime,
    window: dt.timedelta,
    key: str | None = None,
) -> Nudge:
    nudge = Nudge(
        patient_id=patient.id,
        track=track,
        occurrence_key=key or f"{track}:{sent_at:%Y-%m-%dT%H:%M}",
        due_at=sent_at,
        send_at=sent_at,
        state=NudgeState.SENT,
        sent_at=sent_at,
        reply_window_ends_at=sent_at + window,
        created_at=sent_at,
        updated_at=sent_at,
    )
    session.add(nudge)
    session.commit()
    return nudge


def process(runtime: Runtime, now: dt.datetime) -> TickSummary:
    return process_reply_windows(runtime.session_factory, runtime.library, runtime.settings, now)


def records(session: Session) -> dict[int | None, str]:
    session.expire_all()
    return {r.nudge_id: r.outcome for r in session.scalars(select(AdherenceRecord))}


def followups(session: Session) -> list[Nudge]:
    session.expire_all()
    return list(session.scalars(select(Nudge).where(Nudge.occurrence_key.like("%:followup"))))


def silence_alerts(session: Session) -> list[Alert]:
    session.expire_all()
    return list(session.scalars(select(Alert).where(Alert.kind == AlertKind.SILENCE)))


def test_a_closed_window_without_a_reply_is_missed_and_gets_one_followup(
    runtime: Runtime, session: Session
) -> None:
    patient = make_patient(session, tracks={"diet": "08:30"})
    nudge = sent_nudge(session, patient, "diet", T0, dt.timedelta(hours=8))
    closed = T0 + dt.timedelta(hours=8, minutes=1)  # 16:31 in New York

    assert process(runtime, closed - dt.timedelta(minutes=2)).missed == 0
    summary = process(runtime, closed)

    assert (summary.missed, summary.followups) == (1, 1)
    assert records(session) == {nudge.id: "missed"}
    (followup,) = followups(session)
    assert followup.occurrence_key == f"{nudge.occurrence_key}:followup"
    assert (followup.track, followup.template_id) == ("diet", "followup.diet")
    assert (followup.state, followup.send_at, followup.due_at) == ("planned", closed, closed)
    # Replays add nothing.
    again = process(runtime, closed + dt.timedelta(minutes=5))
    assert (again.missed, again.followups) == (0, 0)
    assert len(followups(session)) == 1


def test_an_answered_nudge_is_left_alone(runtime: Runtime, session: Session, client: Any) -> None:
    patient = make_patient(session)
    nudge = sent_nudge(session, patient, "diet", T0, dt.timedelta(hours=8))
    with freeze_time(T0 + dt.timedelta(hours=1)):
        post_signed(client, "/sms/inbound", inbound_params(patient.phone_e164, "skip"))
    summary = process(runtime, T0 + DAY)
    assert (summary.missed, summary.followups) == (0, 0)
    assert records(session) == {nudge.id: "skipped"}


def test_a_reply_to_the_followup_counts_for_the_original_and_sent_is_not_inflated(
    runtime: Runtime, session: Session, client: Any
) -> None:
    patient = make_patient(session, tracks={"diet": "08:30"})
    nudge = sent_nudge(session, patient, "diet", T0, dt.timedelta(hours=8))
    closed = T0 + dt.timedelta(hours=8, minutes=1)
    process(runtime, closed)
    run_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, closed)
    (followup,) = followups(session)
    assert followup.state == NudgeState.SENT

    with freeze_time(closed + dt.timedelta(minutes=20)):
        answer = post_signed(client, "/sms/inbound", inbound_params(patient.phone_e164, "done"))
    assert "<Message>" in answer.get_data(as_text=True)
    assert records(session) == {nudge.id: "done"}

    # The follow-up's own window closing adds neither a miss nor a second follow-up.
    summary = process(runtime, closed + DAY)
    assert (summary.missed, summary.followups) == (0, 0)
    with runtime.session_factory() as s:
        (row,) = adherence_by_track(s, now=closed + DAY, days=7, patient_ids=[patient.id])
    assert (row.track, row.sent, row.done, row.missed) == ("diet", 1, 1, 0)


def test_an_unanswered_followup_leaves_the_original_missed_once(
    runtime: Runtime, session: Session
) -> None:
    patient = make_patient(session, tracks={"diet": "08:30"})
    nudge = sent_nudge(session, patient, "diet", T0, dt.timedelta(hours=8))
    closed = T0 + dt.timedelta(hours=8, minutes=1)
    process(runtime, closed)
    run_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, closed)
    summary = process(runtime, closed + DAY)
    assert (summary.missed, summary.followups) == (0, 0)
    assert records(session) == {nudge.id: "missed"}
    with runtime.session_factory() as s:
        (row,) = adherence_by_track(s, now=closed + DAY, days=7, patient_ids=[patient.id])
    assert (row.sent, row.done, row.missed) == (1, 0, 1)


def test_no_followup_when_the_next_allowed_instant_is_too_far_away(
    runtime: Runtime, session: Session
) -> None:
    """Mindfulness at 17:00 with a 4 h window closes at 21:00, after the 20:00 allowed end."""
    patient = make_patient(session, tracks={"mindfulness": "17:00"})
    evening = T0 + dt.timedelta(hours=8, minutes=30)
    nudge = sent_nudge(session, patient, "mindfulness", evening, dt.timedelta(hours=4))
    summary = process(runtime, evening + dt.timedelta(hours=4, minutes=1))
    assert (summary.missed, summary.followups) == (1, 0)
    assert records(session) == {nudge.id: "missed"}


def test_a_followup_waits_for_the_end_of_quiet_hours(runtime: Runtime, session: Session) -> None:
    patient = make_patient(session, quiet=(dt.time(16, 0), dt.time(17, 0)))
    sent_nudge(session, patient, "diet", T0, dt.timedelta(hours=8))
    closed = T0 + dt.timedelta(hours=8, minutes=1)  # 16:31 local, inside quiet hours
    process(runtime, closed)
    (followup,) = followups(session)
    assert followup.send_at == T0 + dt.timedelta(hours=8, minutes=30)  # 17:00 local


def test_no_followup_for_a_patient_who_is_no_longer_active(
    runtime: Runtime, session: Session
) -> None:
    patient = make_patient(session, status=PatientStatus.OPTED_OUT)
    sent_nudge(session, patient, "diet", T0, dt.timedelta(hours=8))
    summary = process(runtime, T0 + dt.timedelta(hours=8, minutes=1))
    assert (summary.missed, summary.followups) == (1, 0)


def test_misses_in_a_row_raise_one_alert_until_the_patient_answers_again(
    runtime: Runtime, session: Session, client: Any
) -> None:
    patient = make_patient(session)
    window = dt.timedelta(hours=8)
    for day in range(4):
        sent_nudge(session, patient, "diet", T0 + day * DAY, window)
        process(runtime, T0 + day * DAY + window + dt.timedelta(minutes=1))
        assert len(silence_alerts(session)) == (1 if day >= 2 else 0)
    (alert,) = silence_alerts(session)
    assert (alert.severity, alert.detail, alert.patient_id) == ("normal", "missed_in_a_row", 1)

    answered = sent_nudge(session, patient, "diet", T0 + 4 * DAY, window)
    with freeze_time(T0 + 4 * DAY + dt.timedelta(hours=1)):
        post_signed(client, "/sms/inbound", inbound_params(patient.phone_e164, "done"))
    assert records(session)[answered.id] == "done"
    for day in range(5, 8):
        sent_nudge(session, patient, "diet", T0 + day * DAY, window)
        process(runtime, T0 + day * DAY + window + dt.timedelta(minutes=1))
    assert len(silence_alerts(session)) == 2


def test_silence_on_the_symptom_checkin_is_a_high_alert_without_a_followup(
    runtime: Runtime, session: Session
) -> None:
    patient = make_patient(session, tracks={"checkin": "09:00"})
    patient.checkin_enabled = True
    session.commit()
    nudge = sent_nudge(session, patient, "checkin", T0, dt.timedelta(hours=6))
    summary = process(runtime, T0 + dt.timedelta(hours=6, minutes=1))
    assert (summary.missed, summary.checkin_alerts, summary.followups) == (1, 1, 0)
    (alert,) = silence_alerts(session)
    assert (alert.severity, alert.detail, alert.status) == ("high", "checkin_no_reply", "open")
    assert records(session) == {nudge.id: "missed"}
    assert process(runtime, T0 + DAY).checkin_alerts == 0
    assert len(silence_alerts(session)) == 1


def test_an_answered_checkin_raises_no_silence_alert(
    runtime: Runtime, session: Session, client: Any
) -> None:
    patient = make_patient(session, tracks={"checkin": "09:00"})
    patient.checkin_enabled = True
    session.commit()
    sent_nudge(session, patient, "checkin", T0, dt.timedelta(hours=6))
    with freeze_time(T0 + dt.timedelta(hours=2)):
        post_signed(client, "/sms/inbound", inbound_params(patient.phone_e164, "0"))
    assert process(runtime, T0 + DAY).checkin_alerts == 0
    assert silence_alerts(session) == []


def test_a_backlog_after_downtime_is_recorded_without_reminders_or_alerts(
    runtime: Runtime, session: Session
) -> None:
    patient = make_patient(session, tracks={"checkin": "09:00"})
    patient.checkin_enabled = True
    session.commit()
    sent_nudge(session, patient, "checkin", T0, dt.timedelta(hours=6))
    sent_nudge(session, patient, "diet", T0, dt.timedelta(hours=8))
    summary = process(runtime, T0 + 3 * DAY)
    assert (summary.missed, summary.followups, summary.checkin_alerts) == (2, 0, 0)
