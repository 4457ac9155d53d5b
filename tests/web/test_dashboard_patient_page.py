"""The patient page's one statement: local days across a DST change and in a half-hour zone,
7- and 30-day counts without follow-ups, the streak, and a timeline that pages back to the
very first message in the page's order."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from coachbot.domain.states import NudgeState
from coachbot.models import AdherenceRecord, InboundMessage, Nudge, OutboundMessage, Patient
from coachbot.queries.patient_page import TIMELINE_PAGE, TimelineCursor, patient_detail
from coachbot.queries.patient_page_sql import patient_page_statement
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, make_staff, sign_in

UTC = dt.UTC


@pytest.fixture
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


def _nudge(
    session: Session,
    patient: Patient,
    due: dt.datetime,
    state: NudgeState = NudgeState.DELIVERED,
    *,
    track: str = "sleep",
    key: str | None = None,
    window_ends: dt.datetime | None = None,
) -> Nudge:
    nudge = Nudge(
        patient_id=patient.id,
        track=track,
        occurrence_key=key or f"{track}:{due.isoformat()}",
        due_at=due,
        send_at=due,
        state=state,
        sent_at=due if state in (NudgeState.SENT, NudgeState.DELIVERED) else None,
        reply_window_ends_at=window_ends or due + dt.timedelta(hours=2),
        created_at=due,
        updated_at=due,
    )
    session.add(nudge)
    session.flush()
    return nudge


def _answer(
    session: Session, patient: Patient, outcome: str, at: dt.datetime, nudge: Nudge | None = None
) -> None:
    session.add(
        AdherenceRecord(
            patient_id=patient.id,
            nudge_id=nudge.id if nudge else None,
            track=nudge.track if nudge else "sleep",
            outcome=outcome,
            recorded_at=at,
        )
    )


def test_days_are_the_patients_own_across_a_dst_change(session: Session) -> None:
    # New York leaves daylight time at 06:00 UTC on 1 November 2026 (02:00 EDT -> 01:00 EST).
    maya = make_patient(session, tz="America/New_York", tracks={"sleep": "08:30"})
    oct31_2330_edt = dt.datetime(2026, 11, 1, 3, 30, tzinfo=UTC)
    nov1_0030_edt = dt.datetime(2026, 11, 1, 4, 30, tzinfo=UTC)
    nov1_2330_est = dt.datetime(2026, 11, 2, 4, 30, tzinfo=UTC)
    _answer(session, maya, "done", oct31_2330_edt, _nudge(session, maya, oct31_2330_edt))
    _answer(session, maya, "skipped", nov1_0030_edt, _nudge(session, maya, nov1_0030_edt))
    _nudge(session, maya, nov1_2330_est)  # unanswered, window over: missed, but skipped wins
    # Today (23 November, 13:00 EST): one answered, one still open, one not sent yet.
    morning = NOW - dt.timedelta(hours=4)
    _answer(session, maya, "done", morning, _nudge(session, maya, morning))
    _nudge(session, maya, NOW - dt.timedelta(hours=1), window_ends=NOW + dt.timedelta(hours=1))
    _nudge(session, maya, NOW - dt.timedelta(minutes=5), NudgeState.PLANNED)
    # A follow-up shows on the calendar but is not counted as another text sent.
    followup = _nudge(session, maya, morning + dt.timedelta(hours=1), key="sleep:x:followup")
    _answer(session, maya, "done", morning + dt.timedelta(hours=2), followup)
    # Done yesterday at 23:59 and today at 00:01 local, and not the day before: a 2-day streak.
    _answer(session, maya, "done", dt.datetime(2026, 11, 23, 4, 59, tzinfo=UTC))
    _answer(session, maya, "done", dt.datetime(2026, 11, 23, 5, 1, tzinfo=UTC))
    session.commit()

    detail = patient_detail(session, maya, NOW)
    cells = {c.day: c.state for c in detail.heatmap["sleep"]}
    assert len(cells) == 90
    assert max(cells) == dt.date(2026, 11, 23)
    shown = {day: state for day, state in cells.items() if state != "none"}
    assert shown == {
        dt.date(2026, 10, 31): "done",
        dt.date(2026, 11, 1): "skipped",
        dt.date(2026, 11, 23): "done",
    }
    (sleep,) = detail.summaries
    # Sent in 7 days: this morning's and the open one (the follow-up and the planned are not).
    assert (sleep.sent_7, sleep.done_7, sleep.sent_30, sleep.done_30) == (2, 1, 5, 2)
    assert sleep.streak == 2


@pytest.mark.parametrize(
    ("zone", "last_second", "first_day", "second_day"),
    [
        # Half an hour off UTC: 18:29:59 UTC is 23:59:59 in Kolkata.
        ("Asia/Kolkata", dt.datetime(2026, 11, 20, 18, 29, 59, tzinfo=UTC), 20, 21),
        # Santiago springs forward at midnight: 23:59:59 is followed by 01:00:00.
        ("America/Santiago", dt.datetime(2026, 9, 6, 3, 59, 59, tzinfo=UTC), 5, 6),
    ],
)
def test_days_turn_at_the_patients_own_midnight(
    session: Session, zone: str, last_second: dt.datetime, first_day: int, second_day: int
) -> None:
    ravi = make_patient(session, tz=zone, tracks={"sleep": "08:30"})
    next_second = last_second + dt.timedelta(seconds=1)
    _answer(session, ravi, "skipped", last_second, _nudge(session, ravi, last_second))
    _answer(session, ravi, "done", next_second, _nudge(session, ravi, next_second))
    session.commit()
    cells = {c.day: c.state for c in patient_detail(session, ravi, NOW).heatmap["sleep"]}
    month = last_second.month
    assert cells[dt.date(2026, month, first_day)] == "skipped"
    assert cells[dt.date(2026, month, second_day)] == "done"
    assert max(cells) == NOW.astimezone(ZoneInfo(zone)).date()


def _conversation(session: Session, patient: Patient, count: int) -> list[tuple[str, str]]:
    """`count` texts each way, one a minute, and every third pair sharing its instant."""
    sent = []
    for n in range(count):
        at = NOW - dt.timedelta(minutes=2 * n)
        session.add(
            OutboundMessage(
                patient_id=patient.id,
                to_e164=patient.phone_e164,
                body=f"out {n}",
                kind="nudge",
                backend="console",
                delivery_status="delivered",
                created_at=at,
            )
        )
        session.add(
            InboundMessage(
                provider_sid=f"SMpage{patient.id}x{n}",
                from_e164=patient.phone_e164,
                to_e164="+16175550100",
                body=f"in {n}",
                patient_id=patient.id,
                received_at=at if n % 3 == 0 else at - dt.timedelta(minutes=1),
            )
        )
        # Newest first. At the same instant the text sent is the newer: a bot reply is
        # written at the instant of the text it answers, so it reads under it.
        sent += [("out", f"out {n}"), ("in", f"in {n}")]
    session.commit()
    return sent


def test_the_timeline_pages_back_through_every_message_once_in_order(session: Session) -> None:
    maya = make_patient(session)
    expected = _conversation(session, maya, 70)
    pages = []
    cursor = None
    while True:
        detail = patient_detail(session, maya, NOW, cursor)
        pages.append([(m.direction, m.body) for m in detail.timeline])
        if detail.older is None:
            break
        # The link carries the cursor as text.
        cursor = TimelineCursor.parse(detail.older.token())
    assert [len(p) for p in pages] == [TIMELINE_PAGE, TIMELINE_PAGE, 140 - 2 * TIMELINE_PAGE]
    # Each page reads oldest first, as a conversation does; the pages go back in time.
    assert [m for page in pages for m in reversed(page)] == expected


def test_the_page_links_to_older_messages_and_back(
    client: Any, session: Session, frozen: Any
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    sign_in(client, "ana@clinic.test")
    maya = make_patient(session)
    maya.clinician_id = clinician
    session.commit()
    _conversation(session, maya, 30)
    first = client.get(f"/patients/{maya.id}").get_data(as_text=True)
    assert first.count('class="msg msg-') == TIMELINE_PAGE
    assert "Newest messages" not in first
    link = re.search(r'<a rel="next" href="([^"]+)">Older messages</a>', first)
    assert link
    older = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert older.count('class="msg msg-') == 60 - TIMELINE_PAGE
    assert "out 29" in older
    assert "out 29" not in first
    assert "Newest messages" in older
    assert "Older messages" not in older
    # A cursor that does not parse is the first page, not an error.
    junk = client.get(f"/patients/{maya.id}?before=drop%20table")
    assert junk.status_code == 200
    assert junk.get_data(as_text=True).count('class="msg msg-') == TIMELINE_PAGE


def test_a_cursor_survives_its_link_and_anything_else_is_no_cursor() -> None:
    cursor = TimelineCursor(dt.datetime(2026, 11, 23, 17, 59, 1, 123456, tzinfo=UTC), True, 42)
    assert TimelineCursor.parse(cursor.token()) == cursor
    for junk in ("", "abc", "1.2", "1.0.2.3", "1.5.3", "1.0.-4", "9" * 30 + ".0.1"):
        assert TimelineCursor.parse(junk) is None, junk


@pytest.mark.parametrize("transitions", [0, 1, 2])
def test_the_page_statement_fits_psycopgs_parse_cache(transitions: int) -> None:
    # psycopg re-parses every execution of a statement over 4,096 characters or 50
    # parameters; within them it parses once and prepares it on the server.
    compiled = patient_page_statement("postgresql", transitions).compile(
        # SQLAlchemy leaves the psycopg dialect's constructor unannotated.
        dialect=postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    )
    assert len(str(compiled)) <= 4096
    assert len(compiled.binds) <= 50
