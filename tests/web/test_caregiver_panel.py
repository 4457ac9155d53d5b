"""The caregiver panel of the patient page (issue #16): consent, last answer, close watch and
the daily counts against the baseline, from queries/caregivers.py; and the caregiver's texts
marked in the thread by name."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from coachbot.models import ProgramVersion
from coachbot.queries.caregivers import (
    caregiver_names,
    caregiver_panel,
    consent_words,
    score_chart,
)
from coachbot.services.programs import get_program
from tests.support.builders import (
    make_caregiver,
    make_caregiver_check,
    make_inbound,
    make_outbound,
    make_patient,
)
from tests.web.test_dashboard_support import NOW, make_staff, sign_in

TODAY = dt.date(2026, 11, 23)  # NOW in New York


@pytest.fixture
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


def _days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def test_the_panel_reads_consent_checks_and_close_watch(session: Session) -> None:
    maya = make_patient(session)
    maya.close_watch_from = _days_ago(4)
    maya.close_watch_days = 21
    sam = make_caregiver(session, maya, first_name="Sam", baseline=4)
    make_caregiver(session, maya, first_name="Lee", status=PatientStatus.PENDING_CONSENT)
    other = make_patient(session, first_name="Bo")
    make_caregiver_check(session, other, sam, day=_days_ago(1), score=1)  # not about Maya
    make_caregiver_check(session, maya, sam, day=_days_ago(3), score=4)
    make_caregiver_check(session, maya, sam, day=_days_ago(2), state="missed")
    make_caregiver_check(session, maya, sam, day=_days_ago(1), score=3)
    make_caregiver_check(session, maya, sam, day=_days_ago(0), concern="worse")
    make_caregiver_check(session, maya, sam, day=_days_ago(200), score=0)  # outside the chart

    panel = caregiver_panel(session, maya, NOW)

    assert panel.close_watch is not None
    assert panel.close_watch.words == "Day 5 of 21"
    assert panel.close_watch.last_day == _days_ago(4) + dt.timedelta(days=20)
    assert [c.first_name for c in panel.caregivers] == ["Lee", "Sam"]
    lee_line, sam_line = panel.caregivers
    assert lee_line.status == PatientStatus.PENDING_CONSENT
    assert lee_line.checks == []
    assert lee_line.last_answer is None
    assert [c.local_date for c in sam_line.checks] == [_days_ago(n) for n in (3, 2, 1, 0)]
    assert sam_line.missed == 1
    assert sam_line.last_answer is not None
    assert sam_line.last_answer.answer == "WORSE"
    assert sam_line.checks[2].answer == "3 of 4 as usual"
    chart = score_chart(sam_line)
    assert chart.x == [f"{_days_ago(n):%d %b}" for n in (3, 2, 1, 0)]
    assert chart.series[0]["values"] == [4, None, 3, None]
    assert chart.series[1] == {"label": "Baseline", "values": [4, 4, 4, 4]}


def test_close_watch_before_after_and_none(session: Session) -> None:
    maya = make_patient(session)
    assert caregiver_panel(session, maya, NOW).close_watch is None
    maya.close_watch_from = TODAY + dt.timedelta(days=2)
    assert caregiver_panel(session, maya, NOW).close_watch.words == "Not started yet"  # type: ignore[union-attr]
    # No length of their own: the default 28 days; day 28 is the last one.
    maya.close_watch_from = _days_ago(27)
    assert caregiver_panel(session, maya, NOW).close_watch.words == "Day 28 of 28"  # type: ignore[union-attr]
    maya.close_watch_from = _days_ago(28)
    assert caregiver_panel(session, maya, NOW).close_watch.words == "Ended"  # type: ignore[union-attr]


def test_without_a_length_of_their_own_the_programmes_applies(session: Session) -> None:
    maya = make_patient(session)
    maya.close_watch_from = _days_ago(0)
    standard = get_program(session, "standard")  # recreated if the tables were emptied
    version = session.scalars(
        select(ProgramVersion).where(
            ProgramVersion.program_id == standard.id,
            ProgramVersion.version == standard.current_version,
        )
    ).one()
    settings = json.loads(version.settings_json)
    settings["close_watch"] = {"days": 21}
    version.settings_json = json.dumps(settings)
    session.commit()
    watch = caregiver_panel(session, maya, NOW).close_watch
    assert watch is not None
    assert watch.words == "Day 1 of 21"
    maya.close_watch_days = 10  # the patient's own length wins
    assert caregiver_panel(session, maya, NOW).close_watch.words == "Day 1 of 10"  # type: ignore[union-attr]


def test_caregiver_names_are_read_for_caregiver_texts_only(session: Session) -> None:
    maya = make_patient(session)
    sam = make_caregiver(session, maya, first_name="Sam")
    theirs = make_inbound(session, body="3", received_at=NOW, patient=maya, is_proxy=True)
    theirs.caregiver_id = sam.id
    mine = make_inbound(session, body="done", received_at=NOW, patient=maya)
    session.commit()
    assert caregiver_names(session, [theirs.id, mine.id]) == {theirs.id: ("Sam", "en")}
    assert caregiver_names(session, []) == {}


def test_the_page_shows_the_panel_chart_and_the_marked_thread(
    client: Any, session: Session, frozen: Any
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    sign_in(client, "ana@clinic.test")
    maya = make_patient(session)
    maya.clinician_id = clinician
    maya.close_watch_from = _days_ago(2)
    sam = make_caregiver(session, maya, first_name="Sam", baseline=4)
    make_caregiver_check(session, maya, sam, day=_days_ago(1), score=4)
    make_caregiver_check(session, maya, sam, day=_days_ago(0), score=2, answered_at=NOW)
    asked = make_outbound(
        session, maya, created_at=NOW - dt.timedelta(hours=1), kind="caregiver_check", body="Q"
    )
    asked.to_e164 = sam.phone_e164
    make_outbound(session, maya, created_at=NOW - dt.timedelta(hours=2), body="Sleep?")
    text = make_inbound(session, body="2", received_at=NOW, patient=maya, is_proxy=True)
    text.caregiver_id = sam.id
    session.commit()

    page = client.get(f"/patients/{maya.id}").get_data(as_text=True)
    # The check we sent Sam is marked as his; the patient's own text is hers.
    assert re.search(
        r'Daily observation check to <span class="usa-tag cb-tag cb-tag--caregiver">Caregiver Sam',
        page,
    )
    assert "Coaching text to patient" in page

    assert "Close watch:" in page
    assert "Day 3 of 28" in page
    assert "Caregiver Sam" in page
    assert "Active since" in page
    assert "2 of 4 as usual" in page
    island = re.search(r'id="caregiver-\d+-data">([^<]+)</script>', page)
    assert island is not None
    data = json.loads(island.group(1))
    assert data["series"][0]["values"] == [4, 2]
    assert data["series"][1] == {"label": "Baseline", "values": [4, 4]}
    # The thread's mark on Sam's text, its words naming him.
    assert re.search(r'cb-tag--caregiver">Caregiver Sam</span> · ', page)
    # Viewing the panel is the page's own audited view.
    assert "patient.view" in page


def test_the_page_explains_no_caregiver_and_no_close_watch(
    client: Any, session: Session, frozen: Any
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    sign_in(client, "ana@clinic.test")
    maya = make_patient(session)
    maya.clinician_id = clinician
    session.commit()
    page = client.get(f"/patients/{maya.id}").get_data(as_text=True)
    assert "No caregiver." in page
    assert "Not in close watch." in page
    assert "cb-tag--caregiver" not in page


def test_consent_is_said_for_each_state(session: Session) -> None:
    maya = make_patient(session)
    added = NOW - dt.timedelta(days=3)
    waiting = make_caregiver(session, maya, status=PatientStatus.PENDING_CONSENT, now=added)
    never_invited = make_caregiver(session, maya, status=PatientStatus.PENDING_CONSENT, now=added)
    never_invited.invited_at = None
    left = make_caregiver(session, maya, now=added)
    left.status = PatientStatus.OPTED_OUT
    left.opted_out_at = NOW - dt.timedelta(days=1)
    active = make_caregiver(session, maya, now=added)
    session.commit()
    lines = {line.id: line for line in caregiver_panel(session, maya, NOW).caregivers}
    assert consent_words(lines[waiting.id]) == ("Pending their YES since", added)
    assert consent_words(lines[never_invited.id]) == (
        "Pending: invitation not sent yet; added",
        added,
    )
    assert consent_words(lines[left.id]) == ("Opted out", NOW - dt.timedelta(days=1))
    assert consent_words(lines[active.id]) == ("Active since", added)
