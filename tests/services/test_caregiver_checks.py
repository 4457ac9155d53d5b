"""The caregiver's daily close-watch check, run by the real tick on a real database: sent at
the programme's local time in the caregiver's zone (daylight saving included), once however
many dispatchers run, never to a caregiver who has not said YES, is suppressed or is in
quiet hours; one follow-up, then a HIGH alert; and "Have you seen ...?" when the patient
was silent on their check-in."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

from freezegun import freeze_time
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, AlertSeverity, PatientStatus
from coachbot.models import Alert, Caregiver, CaregiverCheck, OutboundMessage, Patient
from coachbot.runtime import Runtime
from coachbot.services import consent
from coachbot.services.caregivers.check_sends import OUTBOUND_KIND
from coachbot.services.tick import TickSummary, run_clock_tick, run_tick
from tests.support.builders import make_caregiver, make_patient, make_sent_nudge

NEW_YORK = ZoneInfo("America/New_York")
MADRID = ZoneInfo("Europe/Madrid")
START = dt.date(2026, 3, 5)  # close watch from here: New York changes clocks on 8 March


def _at(day: dt.date, hour: int, minute: int, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone).astimezone(dt.UTC)


def _watched(
    session: Session, *, tz: str = "America/New_York", days: int | None = None, **kw: object
) -> Patient:
    patient = make_patient(session, tz=tz, tracks={"sleep": "08:30"})
    patient.close_watch_from = START
    patient.close_watch_days = days
    session.commit()
    make_caregiver(session, patient, **kw)  # type: ignore[arg-type]
    return patient


def _tick(runtime: Runtime, now: dt.datetime) -> TickSummary:
    with freeze_time(now):
        return run_clock_tick(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
        )


def _texts(
    runtime: Runtime, kind: str = OUTBOUND_KIND["observation"]
) -> list[tuple[str, dt.datetime]]:
    with runtime.read_session_factory() as session:
        rows = session.execute(
            select(OutboundMessage.to_e164, OutboundMessage.created_at)
            .where(OutboundMessage.kind == kind)
            .order_by(OutboundMessage.id)
        ).all()
        return [(to, at) for to, at in rows]


def _checks(runtime: Runtime) -> list[tuple[str, str, dt.date]]:
    with runtime.read_session_factory() as session:
        rows = session.execute(
            select(CaregiverCheck.kind, CaregiverCheck.state, CaregiverCheck.local_date).order_by(
                CaregiverCheck.id
            )
        ).all()
        return [(k, s, d) for k, s, d in rows]


def test_the_check_goes_at_six_pm_local_in_two_zones_through_a_clock_change(
    runtime: Runtime, session: Session
) -> None:
    york = _watched(session, tz="America/New_York")
    spain = _watched(session, tz="Europe/Madrid")
    assert york.close_watch_from == START
    for day in (dt.date(2026, 3, 7), dt.date(2026, 3, 8)):  # before and after New York's change
        for zone in (MADRID, NEW_YORK):
            before = len(_texts(runtime))
            _tick(runtime, _at(day, 17, 59, zone))
            assert len(_texts(runtime)) == before, "nothing before 18:00 local"
            _tick(runtime, _at(day, 18, 0, zone))
            sent = _texts(runtime)
            assert len(sent) == before + 1
            assert sent[-1][1] == _at(day, 18, 0, zone)
    # 18:00 in New York was 23:00 UTC on the 7th and 22:00 UTC on the 8th.
    assert _at(dt.date(2026, 3, 7), 18, 0, NEW_YORK).hour == 23
    assert _at(dt.date(2026, 3, 8), 18, 0, NEW_YORK).hour == 22
    with runtime.read_session_factory() as read:
        body = read.scalars(
            select(OutboundMessage.body).where(OutboundMessage.patient_id == spain.id)
        ).first()
    assert body is not None
    assert body.startswith("Daily check for Maya. Today, could they: 1) say the year")
    assert "(0-4)" in body


def test_no_check_outside_the_close_watch_weeks(runtime: Runtime, session: Session) -> None:
    _watched(session, days=3)  # 5, 6 and 7 March
    _tick(runtime, _at(dt.date(2026, 3, 7), 18, 0, NEW_YORK))
    _tick(runtime, _at(dt.date(2026, 3, 8), 18, 0, NEW_YORK))
    _tick(runtime, _at(dt.date(2026, 3, 4), 18, 0, NEW_YORK))
    assert [d for _, _, d in _checks(runtime)] == [dt.date(2026, 3, 7)]


def test_only_an_opted_in_unsuppressed_caregiver_outside_quiet_hours_gets_it(
    runtime: Runtime, session: Session
) -> None:
    ok = _watched(session, phone="+16175559001")
    _watched(session, phone="+16175559002", status=PatientStatus.PENDING_CONSENT)
    _watched(session, phone="+16175559003", status=PatientStatus.OPTED_OUT)
    _watched(session, phone="+16175559004")
    _watched(session, phone="+16175559005")
    with runtime.session_factory.begin() as write:
        consent.suppress(write, "+16175559004", source="test", text=None, now=ok.enrolled_at)
    session.execute(
        update(Caregiver)
        .where(Caregiver.phone_e164 == "+16175559005")
        .values(quiet_start=dt.time(17), quiet_end=dt.time(21))
    )
    session.commit()
    summary = _tick(runtime, _at(dt.date(2026, 3, 6), 18, 0, NEW_YORK))
    assert [to for to, _ in _texts(runtime)] == ["+16175559001"]
    assert summary.caregiver_checks == 1
    assert summary.caregiver_skipped == 4
    assert sorted(s for _, s, _ in _checks(runtime)) == ["sent"] + ["skipped"] * 4


def test_two_dispatchers_at_the_same_minute_send_each_check_once(
    runtime: Runtime, session: Session
) -> None:
    for _ in range(12):
        _watched(session)
    now = _at(dt.date(2026, 3, 6), 18, 0, NEW_YORK)

    def dispatcher() -> TickSummary:
        return run_tick(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        summaries = list(pool.map(lambda _: dispatcher(), range(2)))
    assert sum(s.caregiver_checks for s in summaries) == 12
    sent = _texts(runtime)
    assert len(sent) == 12
    assert len({to for to, _ in sent}) == 12
    # A later tick the same day adds nothing.
    dispatcher()
    assert len(_texts(runtime)) == 12


def test_no_answer_gets_one_follow_up_then_a_high_alert(runtime: Runtime, session: Session) -> None:
    patient = _watched(session)
    day = dt.date(2026, 3, 6)
    _tick(runtime, _at(day, 18, 0, NEW_YORK))
    _tick(runtime, _at(day, 18, 59, NEW_YORK))
    assert _texts(runtime, "caregiver_followup") == []
    _tick(runtime, _at(day, 19, 0, NEW_YORK))
    _tick(runtime, _at(day, 19, 1, NEW_YORK))
    assert len(_texts(runtime, "caregiver_followup")) == 1
    summary = _tick(runtime, _at(day, 19, 59, NEW_YORK))
    assert summary.caregiver_no_answer == 0
    summary = _tick(runtime, _at(day, 20, 0, NEW_YORK))
    assert summary.caregiver_no_answer == 1
    _tick(runtime, _at(day, 20, 5, NEW_YORK))
    with runtime.read_session_factory() as read:
        alerts = read.scalars(select(Alert).where(Alert.patient_id == patient.id)).all()
        assert [(a.kind, a.severity, a.detail) for a in alerts] == [
            (AlertKind.CAREGIVER_NO_ANSWER, AlertSeverity.HIGH, "caregiver_check_missed")
        ]
        check = read.scalars(select(CaregiverCheck)).one()
        assert (check.state, check.alert_id) == ("missed", alerts[0].id)
    with runtime.read_session_factory() as read:
        body = read.scalars(
            select(OutboundMessage.body).where(OutboundMessage.kind == "caregiver_followup")
        ).one()
    assert body == (
        "A quick reminder: how did Maya do on today's check? Reply 0-4, or OK, WORSE or WORRIED."
    )


def test_an_answered_check_gets_no_follow_up_nor_alert(runtime: Runtime, session: Session) -> None:
    _watched(session)
    day = dt.date(2026, 3, 6)
    _tick(runtime, _at(day, 18, 0, NEW_YORK))
    # What the inbound side (services.caregivers.answers) records for an answer.
    with runtime.session_factory.begin() as write:
        write.execute(
            update(CaregiverCheck).values(
                state="answered", answered_at=_at(day, 18, 30, NEW_YORK), score=4
            )
        )
    for hour in (19, 20, 21):
        _tick(runtime, _at(day, hour, 0, NEW_YORK))
    assert _texts(runtime, "caregiver_followup") == []
    with runtime.read_session_factory() as read:
        assert (
            read.scalar(select(Alert.id).where(Alert.kind == AlertKind.CAREGIVER_NO_ANSWER)) is None
        )


def test_a_silent_check_in_asks_the_caregiver_have_you_seen_them(
    runtime: Runtime, session: Session
) -> None:
    patient = _watched(session)
    day = dt.date(2026, 3, 6)
    # The patient's check-in went at 10:00 and its two-hour window closes unanswered.
    make_sent_nudge(
        session,
        patient,
        sent_at=_at(day, 10, 0, NEW_YORK),
        window=dt.timedelta(hours=2),
        track="checkin",
    )
    session.commit()
    _tick(runtime, _at(day, 12, 30, NEW_YORK))  # the miss is recorded
    _tick(runtime, _at(day, 18, 59, NEW_YORK))
    assert _texts(runtime, "caregiver_seen") == []
    summary = _tick(runtime, _at(day, 19, 0, NEW_YORK))
    assert summary.caregiver_seen_today == 1
    with runtime.read_session_factory() as read:
        body = read.scalars(
            select(OutboundMessage.body).where(OutboundMessage.kind == "caregiver_seen")
        ).one()
    assert body == "Have you seen Maya today? Reply 1 if all is fine, 2 if you are worried."
    _tick(runtime, _at(day, 19, 59, NEW_YORK))
    summary = _tick(runtime, _at(day, 20, 0, NEW_YORK))
    assert summary.caregiver_no_answer == 1
    with runtime.read_session_factory() as read:
        details = read.scalars(
            select(Alert.detail)
            .where(Alert.kind == AlertKind.CAREGIVER_NO_ANSWER)
            .order_by(Alert.detail)
        ).all()
    # The day's observation check went at 18:59 (the first tick after 18:00): its own
    # no-answer alert is not due yet.
    assert details == ["caregiver_seen_missed"]


def test_a_patient_who_answered_their_check_in_causes_no_seen_today(
    runtime: Runtime, session: Session
) -> None:
    _watched(session)
    day = dt.date(2026, 3, 6)
    _tick(runtime, _at(day, 19, 0, NEW_YORK))
    assert _texts(runtime, "caregiver_seen") == []


def test_a_check_left_sending_by_a_dead_dispatcher_is_never_resent(
    runtime: Runtime, session: Session
) -> None:
    _watched(session)
    day = dt.date(2026, 3, 6)
    _tick(runtime, _at(day, 18, 0, NEW_YORK))
    # As if the dispatcher had claimed it and died before recording the send.
    with runtime.session_factory.begin() as write:
        write.execute(update(CaregiverCheck).values(state="sending"))
    _tick(runtime, _at(day, 18, 4, NEW_YORK))
    assert _checks(runtime)[0][1] == "sending"  # inside the lease: left alone
    _tick(runtime, _at(day, 18, 5, NEW_YORK))
    assert _checks(runtime)[0][1] == "sent"
    assert len(_texts(runtime)) == 1
    _tick(runtime, _at(day, 19, 0, NEW_YORK))
    assert len(_texts(runtime, "caregiver_followup")) == 1  # the follow-up still comes
