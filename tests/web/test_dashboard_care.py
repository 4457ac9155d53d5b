"""Care changes from the dashboard: tracks, times and homework on the edit page, per-item
homework completion, bulk enrolment in one transaction, and pages read through the read
session."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import NudgeState
from coachbot.models import (
    AdherenceRecord,
    AuditEntry,
    HomeworkItem,
    Nudge,
    OutboundMessage,
    Patient,
    ProgramDefault,
    TrackSchedule,
)
from coachbot.queries.patient_page import patient_detail
from coachbot.services import care, enrollment
from coachbot.services.errors import ValidationFailed
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, make_staff, post_form, sign_in


@pytest.fixture(autouse=True)
def frozen() -> Any:
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


def _nudge(
    session: Session,
    patient: Patient,
    track: str,
    due: dt.datetime,
    state: NudgeState = NudgeState.PLANNED,
    body: str | None = None,
) -> Nudge:
    nudge = Nudge(
        patient_id=patient.id,
        track=track,
        occurrence_key=f"{track}:{due.isoformat()}",
        due_at=due,
        send_at=due,
        state=state,
        sent_at=due if state != NudgeState.PLANNED else None,
        reply_window_ends_at=due + dt.timedelta(hours=10),
        rendered_body=body,
        created_at=due,
        updated_at=due,
    )
    session.add(nudge)
    session.flush()
    return nudge


def _edit_form(**extra: str) -> dict[str, str]:
    return {
        "first_name": "Maya",
        "phone": "+16175550123",
        "timezone": "America/New_York",
        "language": "en",
        **extra,
    }


def test_the_edit_page_changes_times_stops_and_starts_tracks_and_replaces_homework(
    client: Any, session: Session, clinician: int
) -> None:
    maya = _own(
        session,
        clinician,
        phone="+16175550123",
        tracks={"sleep": "08:30", "exercise": "10:00"},
    )
    maya.homework.append(HomeworkItem(description="word cards", created_at=NOW))
    maya.homework.append(HomeworkItem(description="balance", created_at=NOW))
    later = NOW + dt.timedelta(days=1)
    for schedule in maya.schedules:
        schedule.planned_through = later  # dispatch has planned a day ahead
    old_sleep = _nudge(session, maya, "sleep", later)
    old_exercise = _nudge(session, maya, "exercise", later)
    session.commit()
    page = client.get(f"/patients/{maya.id}/edit").get_data(as_text=True)
    assert 'value="08:30"' in page
    assert "word cards\nbalance" in page

    form = _edit_form(
        track_sleep="y",
        times_sleep="21:00",
        track_rehab="y",
        times_rehab="15:00",
        homework="word cards\nstairs, twice",
    )
    assert post_form(client, f"/patients/{maya.id}/edit", form).status_code == 302

    session.expire_all()
    schedules = {
        s.track: s
        for s in session.scalars(select(TrackSchedule).where(TrackSchedule.patient_id == maya.id))
    }
    assert {t: s.local_times for t, s in schedules.items()} == {
        "sleep": "21:00",
        "rehab": "15:00",
    }
    # The clinician's times are the patient's own, planned again from now on.
    assert schedules["sleep"].is_custom
    assert schedules["sleep"].planned_through == NOW
    assert schedules["rehab"].planned_through == NOW
    # Texts planned at the old time, or for the stopped track, will not go out.
    assert session.get_one(Nudge, old_sleep.id).state == NudgeState.CANCELLED
    assert session.get_one(Nudge, old_exercise.id).state_reason == "track_stopped"
    items = {
        h.description: h.active
        for h in session.scalars(select(HomeworkItem).where(HomeworkItem.patient_id == maya.id))
    }
    assert items == {"word cards": True, "balance": False, "stairs, twice": True}
    detail = session.scalars(
        select(AuditEntry.detail).where(AuditEntry.action == "patient.care_plan")
    ).one()
    assert detail is not None
    assert "exercise:stopped" in detail
    assert "sleep:times" in detail


def test_a_bad_time_on_the_edit_page_saves_nothing(
    client: Any, session: Session, clinician: int
) -> None:
    maya = _own(session, clinician, phone="+16175550123", tracks={"sleep": "08:30"})
    form = _edit_form(first_name="Mia", track_sleep="y", times_sleep="25:99")
    answer = post_form(client, f"/patients/{maya.id}/edit", form)
    assert answer.status_code == 422
    assert 'id="times_sleep-error"' in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get_one(Patient, maya.id).first_name == "Maya"
    no_tracks = post_form(client, f"/patients/{maya.id}/edit", _edit_form())
    assert no_tracks.status_code == 422
    assert "choose at least one track" in no_tracks.get_data(as_text=True)


def test_an_edit_that_fails_part_way_saves_neither_details_nor_care_plan(
    client: Any, session: Session, clinician: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    maya = _own(session, clinician, phone="+16175550123", tracks={"sleep": "08:30"})

    def crash(*_args: Any, **_kwargs: Any) -> list[str]:
        raise RuntimeError("the database went away")

    # The details are applied first; the care plan then fails.
    monkeypatch.setattr(care, "_apply_care_plan", crash)
    form = _edit_form(first_name="Mia", track_sleep="y", times_sleep="21:00")
    with pytest.raises(RuntimeError):
        post_form(client, f"/patients/{maya.id}/edit", form)
    session.expire_all()
    assert session.get_one(Patient, maya.id).first_name == "Maya"
    edits = session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.action.in_(["patient.edit", "patient.care_plan"])
        )
    ).all()
    assert edits == []


def test_a_new_time_zone_cancels_what_was_planned_in_the_old_one_and_replans_from_now(
    client: Any, session: Session, clinician: int
) -> None:
    maya = _own(session, clinician, phone="+16175550123", tracks={"sleep": "08:30"})
    later = NOW + dt.timedelta(hours=5)
    maya.schedules[0].planned_through = later
    maya.checkin_enabled = True
    maya.schedules.append(
        TrackSchedule(
            track="checkin",
            local_times="20:00",
            days_of_week="0123456",
            planned_through=later,
            updated_at=NOW,
        )
    )
    session.flush()
    sleep = _nudge(session, maya, "sleep", later)
    checkin = _nudge(session, maya, "checkin", later)
    session.commit()

    form = _edit_form(timezone="America/Los_Angeles", track_sleep="y", times_sleep="08:30")
    form["checkin"] = "y"
    assert post_form(client, f"/patients/{maya.id}/edit", form).status_code == 302
    session.expire_all()
    assert session.get_one(Nudge, sleep.id).state_reason == "timezone_changed"
    assert session.get_one(Nudge, checkin.id).state == NudgeState.CANCELLED
    planned = session.scalars(
        select(TrackSchedule.planned_through).where(TrackSchedule.patient_id == maya.id)
    ).all()
    assert planned == [NOW, NOW]
    session.rollback()

    # Switching the check-in off stops its track: nothing planned for it goes out.
    replanned = _nudge(session, session.get_one(Patient, maya.id), "checkin", later)
    session.commit()
    form.pop("checkin")
    form["timezone"] = "America/Los_Angeles"
    assert post_form(client, f"/patients/{maya.id}/edit", form).status_code == 302
    session.expire_all()
    assert session.get_one(Nudge, replanned.id).state_reason == "track_stopped"
    tracks = session.scalars(
        select(TrackSchedule.track).where(TrackSchedule.patient_id == maya.id)
    ).all()
    assert tracks == ["sleep"]


def test_homework_completion_is_counted_per_item_from_the_rehab_texts_that_named_it(
    session: Session,
) -> None:
    maya = make_patient(session, tracks={"rehab": "15:00"})
    cards = HomeworkItem(description="word cards", created_at=NOW - dt.timedelta(days=20))
    stairs = HomeworkItem(description="stairs", created_at=NOW - dt.timedelta(days=2, hours=12))
    maya.homework.extend([cards, stairs])
    session.flush()
    for day in range(1, 6):
        due = NOW - dt.timedelta(days=day)
        # Days 1-2 named both items; days 3-5 only the cards (the stairs came later).
        body = "Rehab: word cards; stairs" if day <= 2 else "Rehab: word cards"
        nudge = _nudge(session, maya, "rehab", due, NudgeState.DELIVERED, body)
        if day in (1, 3, 4):
            session.add(
                AdherenceRecord(
                    patient_id=maya.id,
                    nudge_id=nudge.id,
                    track="rehab",
                    outcome="done",
                    recorded_at=due + dt.timedelta(hours=1),
                )
            )
    # A text sent before bodies were kept counts for items assigned before it was due.
    _nudge(session, maya, "rehab", NOW - dt.timedelta(days=6), NudgeState.DELIVERED)
    # Older than the 7-day window, and an unsent row: neither counts.
    _nudge(session, maya, "rehab", NOW - dt.timedelta(days=9), NudgeState.DELIVERED, "word cards")
    _nudge(session, maya, "rehab", NOW + dt.timedelta(hours=2))
    session.commit()

    figures = {
        h.item.description: (h.done_7, h.prompted_7, h.pct_7)
        for h in patient_detail(session, maya, NOW).homework
    }
    assert figures == {"word cards": (3, 6, 50), "stairs": (1, 2, 50)}


def test_the_patient_page_shows_each_homework_item_with_its_completion(
    client: Any, session: Session, clinician: int
) -> None:
    maya = _own(session, clinician, tracks={"rehab": "15:00"})
    maya.homework.append(HomeworkItem(description="word cards", created_at=NOW))
    session.commit()
    html = client.get(f"/patients/{maya.id}").get_data(as_text=True)
    assert "word cards" in html
    assert "(0 of 0 rehab prompts that asked for it)" in html


def test_bulk_enrolment_that_fails_part_way_leaves_nothing_enrolled_and_sends_nothing(
    client: Any, session: Session, clinician: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = enrollment.add_patient  # the function care imported; care's name is patched
    calls = []

    def crash_on_third(*args: Any, **kwargs: Any) -> Patient:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(care, "add_patient", crash_on_third)
    rows = "".join(f"P{i},+1617555018{i},America/New_York,sleep\n" for i in range(4))
    csv_text = "first_name,phone,timezone,tracks\n" + rows
    with pytest.raises(RuntimeError):
        post_form(
            client,
            "/patients/bulk",
            {"csv_file": (io.BytesIO(csv_text.encode()), "patients.csv")},
            content_type="multipart/form-data",
        )
    assert session.scalar(select(func.count(Patient.id))) == 0
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0
    assert not session.scalars(
        select(AuditEntry).where(AuditEntry.action == "patient.enroll")
    ).all()


def test_bulk_enrolment_reports_the_row_that_fails_while_writing(
    client: Any, session: Session, clinician: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that passed the check can still fail as it is written (a number enrolled by
    someone else meanwhile): the report names it and nothing is kept."""
    real = enrollment.add_patient  # the function care imported; care's name is patched
    calls = []

    def taken_on_second(*args: Any, **kwargs: Any) -> Patient:
        calls.append(1)
        if len(calls) == 2:
            raise ValidationFailed({"phone": "this number is already enrolled"})
        return real(*args, **kwargs)

    monkeypatch.setattr(care, "add_patient", taken_on_second)
    csv_text = (
        "first_name,phone,timezone\n"
        "Ada,+16175550181,America/New_York\n"
        "Ben,+16175550182,America/New_York\n"
    )
    answer = post_form(
        client,
        "/patients/bulk",
        {"csv_file": (io.BytesIO(csv_text.encode()), "patients.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 422
    assert "<td>3</td><td>phone</td>" in answer.get_data(as_text=True)
    assert session.scalar(select(func.count(Patient.id))) == 0


def test_bulk_enrolment_commits_every_row_before_the_first_welcome_is_sent(
    client: Any, session: Session, clinician: int, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = enrollment.send_welcome  # the function care imported; care's name is patched

    def counting(db: Session, *args: Any, **kwargs: Any) -> None:
        with runtime.read_session_factory() as other:
            seen.append(other.scalar(select(func.count(Patient.id))) or 0)
        real(db, *args, **kwargs)

    monkeypatch.setattr(care, "send_welcome", counting)
    csv_text = (
        "first_name,phone,timezone\n"
        "Ada,+16175550181,America/New_York\n"
        "Ben,+16175550182,America/New_York\n"
    )
    answer = post_form(
        client,
        "/patients/bulk",
        {"csv_file": (io.BytesIO(csv_text.encode()), "patients.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302
    assert seen == [2, 2]
    assert session.scalar(select(func.count(OutboundMessage.id))) == 2


def test_the_list_and_the_patient_page_read_through_the_read_session(
    client: Any, session: Session, clinician: int, runtime: Any
) -> None:
    maya = _own(session, clinician)
    opened = []
    real = runtime.read_session_factory

    def counting() -> Session:
        opened.append(1)
        return real()  # type: ignore[no-any-return]

    runtime.read_session_factory = counting
    try:
        assert client.get("/patients").status_code == 200
        assert len(opened) == 1
        assert client.get(f"/patients/{maya.id}").status_code == 200
        assert len(opened) == 2
    finally:
        runtime.read_session_factory = real


def test_turning_the_check_in_on_in_an_edit_follows_the_programme_default(
    client: Any, session: Session, clinician: int
) -> None:
    # An operator changed the programme's check-in: daily at 09:30 for the first 28 days,
    # then Monday, Wednesday and Friday.
    session.add(
        ProgramDefault(
            track="checkin",
            local_times="09:30",
            days_of_week="0123456",
            phases="0-28:0123456;28-:024",
            updated_at=NOW,
            updated_by="staff:operator",
        )
    )
    maya = _own(session, clinician, phone="+16175550124", tracks={"sleep": "08:30"})
    session.commit()

    form = _edit_form(track_sleep="y", times_sleep="08:30")
    form["checkin"] = "y"
    assert post_form(client, f"/patients/{maya.id}/edit", form).status_code == 302
    session.expire_all()
    checkin = session.scalars(
        select(TrackSchedule).where(
            TrackSchedule.patient_id == maya.id, TrackSchedule.track == "checkin"
        )
    ).one()
    assert (checkin.local_times, checkin.days_of_week, checkin.phases) == (
        "09:30",
        "0123456",
        "0-28:0123456;28-:024",
    )
