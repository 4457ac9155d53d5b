"""The phone simulator reads without SQLite's write lock: it is the page a developer keeps
reloading while the webhook and the clock write."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from freezegun import freeze_time
from sqlalchemy.orm import Session

from coachbot.models import InboundMessage, OutboundMessage, Patient
from coachbot.runtime import Runtime
from coachbot.web.simulator import THREAD_LENGTH
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import (
    NOW,
    give_history,
    make_staff,
    recorded_statements,
    sign_in,
    writes,
)


def test_the_phones_page_shows_each_thread_and_writes_nothing(
    client: Any, session: Session, runtime: Runtime
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    maya = make_patient(session, first_name="Maya")
    maya.clinician_id = clinician
    session.commit()
    give_history(session, maya, days=3)
    with freeze_time(NOW) as frozen:
        sign_in(client, "ana@clinic.test")
        frozen.tick(dt.timedelta(seconds=5))
        with recorded_statements(runtime.engine) as seen:
            page = client.get("/simulator")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Texts the clinic sent arrive on the phone; the patient's replies leave it.
    assert html.count('class="sms-in"') == 3
    assert html.count('class="sms-out"') == 2
    assert any("FROM outbound_messages" in s for s in seen)
    assert writes(seen) == []


def _clinicians_patient(session: Session, clinician: int, first_name: str) -> Patient:
    patient = make_patient(session, first_name=first_name)
    patient.clinician_id = clinician
    session.commit()
    return patient


def _page_statements(client: Any, runtime: Runtime) -> tuple[list[str], str]:
    with recorded_statements(runtime.engine) as seen:
        page = client.get("/simulator")
    assert page.status_code == 200
    return seen, page.get_data(as_text=True)


def test_the_phones_page_takes_as_many_statements_for_six_patients_as_for_one(
    client: Any, session: Session, runtime: Runtime
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    give_history(session, _clinicians_patient(session, clinician, "Maya"), days=3)
    with freeze_time(NOW):
        sign_in(client, "ana@clinic.test")
        one, _ = _page_statements(client, runtime)
        for name in ("Ben", "Cara", "Dev", "Eli", "Fay"):
            give_history(session, _clinicians_patient(session, clinician, name), days=3)
        six, html = _page_statements(client, runtime)
    assert html.count('class="phone"') == 6
    assert html.count('class="sms-in"') == 6 * 3
    assert len(six) == len(one), six
    # The texts of every phone, both ways, come in one statement.
    assert sum("outbound_messages" in s for s in six) == 1


def test_each_phone_shows_its_own_newest_texts_oldest_first(
    client: Any, session: Session, runtime: Runtime
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    maya = _clinicians_patient(session, clinician, "Maya")
    ben = _clinicians_patient(session, clinician, "Ben")
    cara = _clinicians_patient(session, clinician, "Cara")  # no texts yet
    start = NOW - dt.timedelta(days=2)
    # Maya: more texts each way than a thread shows, alternating clinic text and reply.
    for i in range(THREAD_LENGTH):
        at = start + dt.timedelta(minutes=2 * i)
        session.add(
            OutboundMessage(
                patient_id=maya.id,
                to_e164=maya.phone_e164,
                body=f"maya-sent-{i:02d}",
                kind="nudge",
                backend="console",
                created_at=at,
            )
        )
        session.add(
            InboundMessage(
                provider_sid=f"SMsim{i:04d}",
                from_e164=maya.phone_e164,
                to_e164="+16175550100",
                body=f"maya-reply-{i:02d}",
                patient_id=maya.id,
                received_at=at + dt.timedelta(minutes=1),
            )
        )
    session.add(
        OutboundMessage(
            patient_id=ben.id,
            to_e164=ben.phone_e164,
            body="ben-sent-00",
            kind="nudge",
            backend="console",
            created_at=start,
        )
    )
    session.commit()
    with freeze_time(NOW):
        sign_in(client, "ana@clinic.test")
        _, html = _page_statements(client, runtime)
    found = re.findall(r'<section class="phone" id="phone-(\d+)"(.*?)</section>', html, re.S)
    sections = dict(found)
    maya_texts = re.findall(r">(maya-[a-z]+-\d\d)<", sections[str(maya.id)])
    # The newest THREAD_LENGTH of both directions together, oldest first.
    expected = [f"maya-{kind}-{i:02d}" for i in range(THREAD_LENGTH) for kind in ("sent", "reply")]
    assert maya_texts == expected[-THREAD_LENGTH:]
    assert re.findall(r">(\w+-sent-\d\d)<", sections[str(ben.id)]) == ["ben-sent-00"]
    assert "No texts yet." in sections[str(cara.id)]
    # By first name, as before.
    assert [int(pid) for pid, _ in found] == [ben.id, cara.id, maya.id]


def test_a_bot_reply_reads_under_the_text_it_answers_and_a_muted_reply_is_no_bubble(
    session: Session,
) -> None:
    from coachbot.queries.simulator import IN, OUT, phones

    clinician = make_staff(session, "ana@clinic.test")
    maya = _clinicians_patient(session, clinician, "Maya")
    at = NOW - dt.timedelta(minutes=5)
    # The bot's answer is written at the very instant the reply arrived: only the order
    # rule puts it under the reply.
    for body, backend in (("Great, logged 7 hours.", "console"), ("", "muted")):
        session.add(
            OutboundMessage(
                patient_id=maya.id,
                to_e164=maya.phone_e164,
                body=body,
                kind="reply",
                backend=backend,
                created_at=at,
            )
        )
    session.add(
        InboundMessage(
            provider_sid="SMsimorder1",
            from_e164=maya.phone_e164,
            to_e164="+16175550100",
            body="7 hours",
            patient_id=maya.id,
            received_at=at,
        )
    )
    session.commit()
    (phone,) = phones(session, clinician, THREAD_LENGTH)
    assert [(d, body) for d, _at, body in phone.texts] == [
        (OUT, "7 hours"),
        (IN, "Great, logged 7 hours."),
    ]
