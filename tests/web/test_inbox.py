"""The "To read" inbox: texts the bot did not act on wait, oldest first with their age, for
the person who may read them (a clinician: their own patients; an admin: unknown numbers),
until someone marks them read (CSRF, audited, once)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import AuditEntry, InboundMessage
from coachbot.queries.inbox import PER_PAGE, to_read_count, to_read_page
from coachbot.runtime import Runtime
from coachbot.web.inbox import age_text
from tests.support.builders import make_inbound, make_patient
from tests.web.test_dashboard_support import (
    NOW,
    make_staff,
    post_form,
    recorded_statements,
    sign_in,
)

HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def ana(client: Any, session: Session) -> int:
    user_id = make_staff(session, "ana@clinic.test")
    assert sign_in(client, "ana@clinic.test").status_code == 302
    return user_id


def _owned_by(session: Session, clinician_id: int, first_name: str) -> Any:
    patient = make_patient(session, first_name=first_name)
    patient.clinician_id = clinician_id
    session.commit()
    return patient


def _rows(html: str) -> list[str]:
    """The table's rows as text, tags stripped, in page order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def _audit(session: Session, action: str) -> list[AuditEntry]:
    session.expire_all()
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_a_clinician_sees_their_patients_waiting_texts_oldest_first_with_their_age(
    client: Any, session: Session, ana: int
) -> None:
    other = make_staff(session, "ben@clinic.test")
    rosa = _owned_by(session, ana, "Rosa")
    luis = _owned_by(session, ana, "Luis")
    theirs = _owned_by(session, other, "Carmen")
    make_inbound(session, patient=luis, body="what time is my appointment", received_at=NOW - HOUR)
    make_inbound(session, patient=rosa, body="the cards are hard today", received_at=NOW - 3 * HOUR)
    make_inbound(session, patient=theirs, body="not yours", received_at=NOW - 5 * HOUR)
    make_inbound(session, body="a stranger", received_at=NOW - 5 * HOUR)
    make_inbound(session, patient=rosa, body="an answer", received_at=NOW, needs_reading=False)
    done = make_inbound(session, patient=rosa, body="already read", received_at=NOW - 9 * HOUR)
    done.read_at, done.read_by_id = NOW, ana
    session.commit()

    html = client.get("/to-read").get_data(as_text=True)

    assert _rows(html) == [
        "3 h ago 2026-11-23 15:00 UTC Rosa the cards are hard today "
        "Mark read the text from Rosa, 3 h ago",
        "1 h ago 2026-11-23 17:00 UTC Luis what time is my appointment "
        "Mark read the text from Luis, 1 h ago",
    ]
    assert 'To read <span class="count">(2' in html  # the count in the navigation


def test_the_navigation_count_shows_on_every_page_and_not_when_nothing_waits(
    client: Any, session: Session, ana: int
) -> None:
    assert "To read</a>" in client.get("/patients").get_data(as_text=True)
    make_inbound(session, patient=_owned_by(session, ana, "Rosa"), body="hi", received_at=NOW)
    assert '(1<span class="sr-only"> waiting</span>)' in client.get("/patients").get_data(
        as_text=True
    )


def test_an_admin_sees_only_texts_from_unknown_numbers_masked(
    client: Any, session: Session
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    make_staff(session, "root@clinic.test", role="admin")
    make_inbound(
        session, patient=_owned_by(session, clinician, "Rosa"), body="mine", received_at=NOW
    )
    make_inbound(session, from_e164="+16175550123", body="who is this", received_at=NOW - HOUR)
    assert sign_in(client, "root@clinic.test").status_code == 302

    html = client.get("/to-read").get_data(as_text=True)

    assert _rows(html)[0].startswith("1 h ago 2026-11-23 17:00 UTC Unknown number ***0123 who is")
    assert len(_rows(html)) == 1
    assert "+16175550123" not in html
    assert [e.detail for e in _audit(session, "inbox.view")] == ["unknown senders"]


def test_an_operator_has_no_inbox(client: Any, session: Session) -> None:
    make_staff(session, "op@clinic.test", role="operator")
    assert sign_in(client, "op@clinic.test").status_code == 302
    assert client.get("/to-read").status_code == 404
    assert "To read" not in client.get("/operator/programs").get_data(as_text=True)


def test_reading_the_inbox_is_audited_for_each_patient_on_the_page(
    client: Any, session: Session, ana: int
) -> None:
    rosa = _owned_by(session, ana, "Rosa")
    luis = _owned_by(session, ana, "Luis")
    for patient in (rosa, rosa, luis):
        make_inbound(session, patient=patient, body="hello", received_at=NOW - HOUR)
    assert client.get("/to-read").status_code == 200
    entries = _audit(session, "inbox.view")
    assert sorted(e.patient_id for e in entries if e.patient_id) == sorted([rosa.id, luis.id])
    assert {e.actor for e in entries} == {f"staff:{ana}"}


def test_mark_read_records_who_and_when_audits_it_and_the_text_leaves_the_inbox(
    client: Any, session: Session, ana: int
) -> None:
    rosa = _owned_by(session, ana, "Rosa")
    message = make_inbound(session, patient=rosa, body="call me?", received_at=NOW - HOUR)

    answer = post_form(client, f"/to-read/{message.id}/read")

    assert answer.status_code == 302
    session.expire_all()
    row = session.get_one(InboundMessage, message.id)
    assert (row.read_at, row.read_by_id) == (NOW, ana)
    [entry] = _audit(session, "inbox.mark_read")
    assert (entry.actor, entry.patient_id, entry.outcome, entry.detail) == (
        f"staff:{ana}",
        rosa.id,
        "ok",
        f"inbound={message.id}",
    )
    html = client.get("/to-read").get_data(as_text=True)
    assert "call me?" not in html
    assert "Nothing to read." in html


def test_mark_read_without_the_csrf_token_changes_nothing(
    client: Any, session: Session, ana: int
) -> None:
    message = make_inbound(
        session, patient=_owned_by(session, ana, "Rosa"), body="x", received_at=NOW
    )
    assert client.post(f"/to-read/{message.id}/read").status_code == 400
    session.expire_all()
    assert session.get_one(InboundMessage, message.id).read_at is None


def test_marking_another_clinicians_patients_text_is_a_denied_audited_404(
    client: Any, session: Session, ana: int
) -> None:
    other = make_staff(session, "ben@clinic.test")
    theirs = _owned_by(session, other, "Carmen")
    message = make_inbound(session, patient=theirs, body="private", received_at=NOW)
    stranger = make_inbound(session, body="a stranger", received_at=NOW)

    assert post_form(client, f"/to-read/{message.id}/read").status_code == 404
    assert post_form(client, f"/to-read/{stranger.id}/read").status_code == 404
    assert post_form(client, "/to-read/999999/read").status_code == 404

    session.expire_all()
    assert session.get_one(InboundMessage, message.id).read_at is None
    assert session.get_one(InboundMessage, stranger.id).read_at is None
    denied = [e for e in _audit(session, "inbox.mark_read") if e.outcome == "denied"]
    assert len(denied) == 3
    assert denied[0].patient_id == theirs.id


def test_a_text_marked_read_twice_keeps_its_first_reader(
    client: Any, session: Session, ana: int
) -> None:
    message = make_inbound(
        session, patient=_owned_by(session, ana, "Rosa"), body="x", received_at=NOW
    )
    assert post_form(client, f"/to-read/{message.id}/read").status_code == 302
    with freeze_time(NOW + dt.timedelta(minutes=2)):
        again = post_form(client, f"/to-read/{message.id}/read", follow_redirects=True)
    assert "Someone already marked that text read." in again.get_data(as_text=True)
    session.expire_all()
    assert session.get_one(InboundMessage, message.id).read_at == NOW
    assert len(_audit(session, "inbox.mark_read")) == 1


def test_the_inbox_is_paged_oldest_first(client: Any, session: Session, ana: int) -> None:
    rosa = _owned_by(session, ana, "Rosa")
    for n in range(PER_PAGE + 2):
        make_inbound(session, patient=rosa, body=f"text {n}", received_at=NOW - n * HOUR / 10)
    first = _rows(client.get("/to-read").get_data(as_text=True))
    second = _rows(client.get("/to-read?page=2").get_data(as_text=True))
    assert len(first) == PER_PAGE
    assert f"text {PER_PAGE + 1}" in first[0]  # the oldest
    assert [r.split(" Mark read")[0].split("Rosa ")[1] for r in second] == ["text 1", "text 0"]
    assert "Page 2 of 2" in client.get("/to-read?page=9").get_data(as_text=True)


def test_the_page_costs_the_same_statements_for_three_texts_or_a_hundred(
    client: Any, session: Session, runtime: Runtime, ana: int
) -> None:
    rosa = _owned_by(session, ana, "Rosa")

    def statements() -> int:
        with recorded_statements(runtime.engine) as seen:
            assert client.get("/to-read").status_code == 200
        return len([s for s in seen if s.upper().startswith("SELECT")])

    for n in range(3):
        make_inbound(session, patient=rosa, body=f"t{n}", received_at=NOW - n * HOUR)
    few = statements()
    for n in range(3, 100):
        make_inbound(session, patient=rosa, body=f"t{n}", received_at=NOW - n * HOUR)
    assert statements() == few


def test_the_queries_scope_by_role(session: Session) -> None:
    ana = make_staff(session, "ana@clinic.test")
    rosa = _owned_by(session, ana, "Rosa")
    make_inbound(session, patient=rosa, body="a", received_at=NOW)
    make_inbound(session, body="b", received_at=NOW)
    assert to_read_count(session, viewer_id=ana, role="clinician") == 1
    assert to_read_count(session, viewer_id=ana, role="admin") == 1
    assert to_read_count(session, viewer_id=ana, role="operator") == 0
    page = to_read_page(session, viewer_id=ana, role="operator")
    assert (page.items, page.total, page.pages) == ([], 0, 1)


@pytest.mark.parametrize(
    ("waited", "text"),
    [
        (dt.timedelta(seconds=30), "just now"),
        (dt.timedelta(minutes=25), "25 min ago"),
        (dt.timedelta(hours=3, minutes=59), "3 h ago"),
        (dt.timedelta(hours=47), "47 h ago"),
        (dt.timedelta(days=4, hours=2), "4 days ago"),
        (-dt.timedelta(minutes=5), "just now"),  # a clock a little ahead is not "in the future"
    ],
)
def test_age_reads_as_a_person_says_it(waited: dt.timedelta, text: str) -> None:
    assert age_text(NOW - waited, NOW) == text
