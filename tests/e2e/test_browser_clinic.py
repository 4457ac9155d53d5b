"""The clinical pages in a real browser: the patients list in need order, times in the
viewer's own zone, the calendar heatmap's labels, the thread in conversation order, the
alerts queue with the patient's words and who was paged, and the phone simulator."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from coachbot.domain.clock import utcnow
from coachbot.domain.states import AlertKind, AlertSeverity
from coachbot.models import Alert, OutboundMessage, Page, Patient
from coachbot.services.alerts import raise_alert
from tests.e2e.conftest import Screenshots
from tests.support.builders import make_delivered_day, make_inbound, make_patient
from tests.web.test_dashboard_support import PASSWORD, make_staff


def _sign_in(page: Any, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/patients")


def _own(session: Session, clinician: int, name: str, **kwargs: Any) -> Patient:
    patient = make_patient(session, first_name=name, **kwargs)
    patient.clinician_id = clinician
    session.commit()
    return patient


def _red_flag(session: Session, patient: Patient, now: dt.datetime, words: str) -> Alert:
    text = make_inbound(
        session, body=words, received_at=now - dt.timedelta(hours=2), patient=patient
    )
    alert = raise_alert(
        session,
        patient_id=patient.id,
        kind=AlertKind.RED_FLAG,
        severity=AlertSeverity.URGENT,
        detail="confusion",
        now=now - dt.timedelta(hours=2),
        inbound_message_id=text.id,
    )
    session.commit()
    return alert


def test_the_list_puts_the_red_flag_first_highlighted_with_why_and_local_times(
    page: Any, live_server: str, session: Session, shots: Screenshots
) -> None:
    now = utcnow()
    ana = make_staff(session, "ana@clinic.test")
    for name in ("Abe", "Bea", "Cal"):
        patient = _own(session, ana, name)
        make_inbound(session, body="ok", received_at=now - dt.timedelta(hours=1), patient=patient)
    silent = _own(session, ana, "Dot")
    make_inbound(session, body="ok", received_at=now - dt.timedelta(days=4), patient=silent)
    zoe = _own(session, ana, "Zoe")  # last by name, first by need
    alert = _red_flag(session, zoe, now, "I feel confused and can't find my words")

    _sign_in(page, live_server, "ana@clinic.test")
    rows = page.locator("table.patients tbody tr")
    assert rows.locator("th a").all_inner_texts() == ["Zoe", "Dot", "Abe", "Bea", "Cal"]
    first = rows.first
    assert first.get_attribute("data-need") == "urgent_alert"
    first.get_by_text("Urgent alert").wait_for()
    assert first.locator("td.why").inner_text() == "Red flag 2 h ago: confusion"
    assert rows.nth(1).locator("td.why").inner_text() == "No reply for 4 days"
    # Highlighted: the urgent row's background is not the plain rows'.
    background = "el => getComputedStyle(el).backgroundColor"
    assert first.evaluate(background) != rows.nth(2).evaluate(background)
    shots.take("patients-need-order")

    # A user with a zone of their own sees every time there.
    page.goto(f"{live_server}/me/settings")
    page.get_by_label("Time zone").fill("Asia/Tokyo")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Times now show in Asia/Tokyo").wait_for()
    page.goto(f"{live_server}/alerts/{alert.id}")
    raised = page.locator("dd time").first
    tokyo = alert.created_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert raised.inner_text() == f"{tokyo:%Y-%m-%d %H:%M} JST"
    assert raised.get_attribute("datetime") == alert.created_at.isoformat()
    shots.take("alert-in-tokyo-time")
    page.goto(f"{live_server}/me/settings")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save").click()
    # The field's own message (the error summary above the form repeats it as a link).
    page.locator(".usa-error-message", has_text="is not a time zone").wait_for()


def test_the_alerts_queue_shows_the_words_who_was_paged_and_who_acknowledged(
    page: Any, live_server: str, session: Session, shots: Screenshots
) -> None:
    now = utcnow()
    ana = make_staff(session, "ana@clinic.test")
    ben = make_staff(session, "ben@clinic.test")
    zoe = _own(session, ana, "Zoe")
    alert = _red_flag(session, zoe, now, "I feel confused and can't find my words")
    session.add(
        Page(
            alert_id=alert.id,
            attempt=0,
            recipient_id=ben,
            role="primary",
            channel="sms",
            state="sent",
            created_at=now - dt.timedelta(hours=2),
            updated_at=now - dt.timedelta(hours=2),
            sent_at=now - dt.timedelta(hours=2),
        )
    )
    stored = session.get_one(Alert, alert.id)
    stored.status = "acknowledged"
    stored.acknowledged_at = now - dt.timedelta(hours=1)
    stored.acknowledged_by_id = ben
    session.commit()

    _sign_in(page, live_server, "ana@clinic.test")
    page.get_by_role("link", name="Alerts", exact=True).click()
    row = page.locator("table.alerts tbody tr", has_text="Zoe")
    row.locator("blockquote.their-words").get_by_text("can't find my words").wait_for()
    assert "red_flag" not in row.inner_text()
    row.get_by_text("Red flag").first.wait_for()
    paged = row.locator("ul.paged li").inner_text()
    assert paged.startswith("Paged ben (primary) by SMS")
    assert "Acknowledged by ben" in row.locator("p.acked").inner_text()
    # The "To read" inbox sits beside it, one tab away.
    page.get_by_role("link", name="To read").first.click()
    page.get_by_role("heading", name="To read").wait_for()
    page.get_by_text("can't find my words").wait_for()
    shots.take("alerts-and-to-read")


def _day_of_nudges(session: Session, patient: Patient, due: dt.datetime, done: bool) -> None:
    make_delivered_day(
        session,
        patient,
        due=due,
        window=dt.timedelta(hours=2),
        done=done,
        answered_after=dt.timedelta(minutes=10),
        value=7.0,
        unit="hours",
    )


def test_the_patient_page_labels_its_heatmap_and_reads_the_thread_in_order(
    page: Any, live_server: str, session: Session, shots: Screenshots
) -> None:
    now = utcnow()
    ana = make_staff(session, "ana@clinic.test")
    zone = ZoneInfo("America/New_York")
    maya = _own(session, ana, "Maya", tracks={"sleep": "08:00"})
    for day in range(1, 80):
        _day_of_nudges(session, maya, now - dt.timedelta(days=day), done=day % 4 != 0)
    asked = now - dt.timedelta(minutes=30)
    answered = now - dt.timedelta(minutes=10)
    for body, kind, backend, at in (
        ("How many hours did you sleep?", "nudge", "console", asked),
        ("Great, 7 hours logged.", "reply", "console", answered),
        ("", "reply", "muted", answered + dt.timedelta(minutes=1)),
    ):
        session.add(
            OutboundMessage(
                patient_id=maya.id,
                to_e164=maya.phone_e164,
                body=body,
                kind=kind,
                backend=backend,
                created_at=at,
            )
        )
    session.commit()
    # The answer is stored after the bot's reply, at the same instant: the order is the rule's.
    make_inbound(session, body="7 hours", received_at=answered, patient=maya, needs_reading=False)

    _sign_in(page, live_server, "ana@clinic.test")
    page.goto(f"{live_server}/patients/{maya.id}")
    heatmap = page.locator("table.heatmap[data-track='sleep']")
    weekdays = heatmap.locator("th.hm-weekday").all_inner_texts()
    assert weekdays == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    months = [m for m in heatmap.locator("thead th span[aria-hidden]").all_inner_texts() if m]
    today = now.astimezone(zone).date()
    first_day = today - dt.timedelta(days=89)
    # Every month that starts inside the 90 days labels the week it starts in, once.
    days = [first_day + dt.timedelta(days=n) for n in range(90)]
    assert [f"{d:%b}" for d in days if d.day == 1] == [m for m in months if m != months[0]] or (
        [f"{d:%b}" for d in days if d.day == 1] == months
    )
    assert len(months) == len(set(months)) >= 3
    assert heatmap.locator("td.hm-done, td.hm-missed, td.hm-none").count() == 90
    # One cell per local day, each titled with its date and state.
    assert heatmap.locator(f"td[title^='{first_day:%a %d %b}:']").count() == 1
    assert heatmap.locator(f"td[title='{today:%a %d %b}: nothing due']").count() == 1
    heatmap.locator("caption").get_by_text("done").wait_for()
    shots.take("patient-heatmap")

    thread = page.locator("ol.timeline li")
    texts = thread.locator(".body").all_inner_texts()
    assert texts[-4:] == [
        "How many hours did you sleep?",
        "7 hours",
        "Great, 7 hours logged.",
        "No reply sent: the hour's limit of automatic replies was reached.",
    ]
    assert "msg-system" in (thread.last.get_attribute("class") or "")
    shots.take("patient-thread")


def test_the_simulator_reads_in_order_and_opens_at_the_newest_text(
    page: Any, live_server: str, session: Session, shots: Screenshots
) -> None:
    now = utcnow()
    ana = make_staff(session, "ana@clinic.test")
    rosa = _own(session, ana, "Rosa")
    for n in range(25):
        at = now - dt.timedelta(minutes=60 - 2 * n)
        session.add(
            OutboundMessage(
                patient_id=rosa.id,
                to_e164=rosa.phone_e164,
                body=f"Clinic text {n:02d}",
                kind="nudge",
                backend="console",
                created_at=at,
            )
        )
    answered = now - dt.timedelta(minutes=2)
    for body, backend in (("Thanks, noted.", "console"), ("", "muted")):
        session.add(
            OutboundMessage(
                patient_id=rosa.id,
                to_e164=rosa.phone_e164,
                body=body,
                kind="reply",
                backend=backend,
                created_at=answered,
            )
        )
    session.commit()
    make_inbound(session, body="done", received_at=answered, patient=rosa, needs_reading=False)

    _sign_in(page, live_server, "ana@clinic.test")
    page.get_by_role("link", name="Phone simulator").click()
    thread = page.locator("section.phone", has_text="Rosa").locator("ol.sms")
    bubbles = thread.locator("li")
    assert bubbles.all_text_contents()[-2:] == ["Sent: done", "Received: Thanks, noted."]
    assert all(text.split(": ", 1)[1].strip() for text in bubbles.all_text_contents())  # no blank
    scrolled = thread.evaluate("el => el.scrollHeight > el.clientHeight")
    assert scrolled  # enough texts to scroll, so the check below means something
    page.wait_for_function(
        "el => Math.abs(el.scrollTop + el.clientHeight - el.scrollHeight) < 2",
        arg=thread.element_handle(),
    )
    shots.take("simulator-newest")
