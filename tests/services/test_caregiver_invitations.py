"""The caregiver's invitation ("Reply YES ...") goes by the tick at the caregiver's first
permitted instant, once however many clocks run, with the welcome's rules: their own zone
and quiet hours, never to a suppressed number, never again once sent."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from coachbot.models import AuditEntry, Caregiver, OutboundMessage
from coachbot.runtime import Runtime
from coachbot.services import consent
from coachbot.services.caregivers.invitations import KIND, send_due_invitations
from coachbot.services.tick import run_clock_tick
from tests.support.builders import make_caregiver, make_patient

# London keeps GMT in November: local time is UTC.
LATE = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)
QUIET_ENDS = dt.datetime(2026, 11, 24, 7, 30, tzinfo=dt.UTC)
WINDOW_OPENS = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
MIDDAY = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _pending(session: Session, phone: str, *, due: dt.datetime, language: str = "en") -> int:
    patient = make_patient(session, first_name="Ana", tz="Europe/London")
    caregiver = make_caregiver(
        session, patient, phone=phone, status=PatientStatus.PENDING_CONSENT, language=language
    )
    caregiver.invited_at = None
    caregiver.invite_due_at = due
    caregiver.quiet_start, caregiver.quiet_end = dt.time(21), dt.time(7, 30)
    session.commit()
    return caregiver.id


def _invites(runtime: Runtime) -> list[tuple[str, str, dt.datetime]]:
    with runtime.read_session_factory() as session:
        rows = session.execute(
            select(OutboundMessage.to_e164, OutboundMessage.body, OutboundMessage.created_at)
            .where(OutboundMessage.kind == KIND)
            .order_by(OutboundMessage.id)
        ).all()
        return [(to, body, at) for to, body, at in rows]


def _tick(runtime: Runtime, now: dt.datetime) -> None:
    with freeze_time(now):
        run_clock_tick(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
        )


def test_an_invitation_due_in_the_window_goes_at_once_and_only_once(
    runtime: Runtime, session: Session
) -> None:
    caregiver_id = _pending(session, "+447911000001", due=MIDDAY)
    _tick(runtime, MIDDAY)
    _tick(runtime, MIDDAY + dt.timedelta(minutes=1))
    ((to, body, at),) = _invites(runtime)
    assert (to, at) == ("+447911000001", MIDDAY)
    assert "Reply YES to get short texts helping Ana's recovery" in body
    with runtime.read_session_factory() as read:
        caregiver = read.get_one(Caregiver, caregiver_id)
        assert (caregiver.invited_at, caregiver.invite_due_at) == (MIDDAY, None)
        assert caregiver.status == PatientStatus.PENDING_CONSENT


def test_an_invitation_in_quiet_hours_waits_for_them_to_end(
    runtime: Runtime, session: Session
) -> None:
    _pending(session, "+447911000002", due=LATE, language="es")
    _tick(runtime, LATE)
    _tick(runtime, QUIET_ENDS - dt.timedelta(minutes=1))
    assert _invites(runtime) == []
    # 07:30 ends the quiet hours but the send window opens at 08:00.
    _tick(runtime, QUIET_ENDS)
    assert _invites(runtime) == []
    _tick(runtime, WINDOW_OPENS)
    ((_, body, at),) = _invites(runtime)
    assert at == WINDOW_OPENS
    assert "Responda SI" in body


def test_a_suppressed_number_gets_no_invitation(runtime: Runtime, session: Session) -> None:
    caregiver_id = _pending(session, "+447911000003", due=MIDDAY)
    with runtime.session_factory.begin() as write:
        consent.suppress(write, "+447911000003", source="test", text=None, now=MIDDAY)
    _tick(runtime, MIDDAY)
    assert _invites(runtime) == []
    with runtime.read_session_factory() as read:
        assert read.get_one(Caregiver, caregiver_id).invite_due_at is None
        assert read.scalar(
            select(AuditEntry.id).where(AuditEntry.action == "caregiver.invite_suppressed")
        )


def test_a_caregiver_who_already_answered_is_not_invited(
    runtime: Runtime, session: Session
) -> None:
    caregiver_id = _pending(session, "+447911000004", due=MIDDAY)
    with runtime.session_factory.begin() as write:
        write.get_one(Caregiver, caregiver_id).status = PatientStatus.ACTIVE
    _tick(runtime, MIDDAY)
    assert _invites(runtime) == []


def test_two_clocks_send_each_invitation_once(runtime: Runtime, session: Session) -> None:
    for n in range(8):
        _pending(session, f"+4479110001{n:02d}", due=MIDDAY)

    def clock() -> int:
        return send_due_invitations(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, MIDDAY
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sum(pool.map(lambda _: clock(), range(2))) == 8
    assert len({to for to, _, _ in _invites(runtime)}) == len(_invites(runtime)) == 8
