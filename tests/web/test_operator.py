"""The operator console through the Flask client: programme edit with preview, save and
restore, field errors that save nothing, stale edits refused, global settings, the message
library, delivery health with its clock alarm, and no patient's words anywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import NudgeState
from coachbot.models import AuditEntry, ClockHeartbeat, ProgramVersion
from coachbot.services.schedules import dispatch_settings
from tests.support.builders import make_nudge, make_patient
from tests.web.test_dashboard_support import NOW, give_history, make_staff, post_form, sign_in

EDIT = "/operator/programs/standard/edit"
SLEEP = {
    "track": "sleep",
    "times": "09:15",
    "days": "daily",
    "phases": "",
    "reply_window_minutes": "600",
    "followup": "once",
    "quiet_policy": "defer",
    "base_version": "1",
}


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def operator(client: Any, session: Session) -> int:
    user_id = make_staff(session, "ops@clinic.test", role="operator")
    assert sign_in(client, "ops@clinic.test").status_code == 302
    return user_id


def _versions(session: Session) -> int:
    session.rollback()
    return session.scalar(select(func.count(ProgramVersion.id))) or 0


def test_preview_shows_the_patients_and_new_times_then_save_makes_version_2(
    client: Any, session: Session, operator: int
) -> None:
    patient = make_patient(session, first_name="Maya")
    page = client.get(EDIT + "?track=sleep").get_data(as_text=True)
    assert 'value="08:30"' in page
    assert "Save version" not in page

    preview = post_form(client, EDIT, {**SLEEP, "action": "preview"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "times: 08:30 -&gt; 09:15" in html
    assert f"#{patient.id}" in html
    assert "09:15" in html
    assert "Maya" not in html  # operators see ids and zones, not names
    assert "Save version 2" in html
    assert _versions(session) == 1

    saved = post_form(client, EDIT, {**SLEEP, "action": "save"})
    assert saved.status_code == 302
    show = client.get("/operator/programs/standard").get_data(as_text=True)
    assert "version 2" in show
    assert "Restore v1" in show
    assert _versions(session) == 2
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "program.save"))
    assert entry.actor == f"staff:{operator}"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"times": "06:00"}, "times"),
        ({"track": "yoga"}, "track"),
        ({"times": "09:00,12:00", "reply_window_minutes": "600"}, "reply_window_minutes"),
    ],
)
def test_invalid_changes_show_the_field_error_and_save_nothing(
    client: Any, session: Session, operator: int, changes: dict[str, str], field: str
) -> None:
    answer = post_form(client, EDIT, {**SLEEP, **changes, "action": "save"})
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.get_data(as_text=True)
    assert _versions(session) == 1


def test_a_save_from_an_old_version_is_refused_with_a_conflict(
    client: Any, session: Session, operator: int
) -> None:
    assert post_form(client, EDIT, {**SLEEP, "action": "save"}).status_code == 302
    stale = post_form(client, EDIT, {**SLEEP, "times": "10:45", "action": "save"})
    assert stale.status_code == 409
    assert "nothing was saved" in stale.get_data(as_text=True)
    assert _versions(session) == 2
    late_preview = post_form(client, EDIT, {**SLEEP, "times": "10:45", "action": "preview"})
    assert late_preview.status_code == 409
    assert "Save version" not in late_preview.get_data(as_text=True)


def test_restore_is_one_click_and_becomes_a_new_version(
    client: Any, session: Session, operator: int
) -> None:
    post_form(client, EDIT, {**SLEEP, "action": "save"})
    restored = post_form(
        client, "/operator/programs/standard/restore", {"version": "1", "base_version": "2"}
    )
    assert restored.status_code == 302
    show = client.get("/operator/programs/standard").get_data(as_text=True)
    assert "restored v1" in show
    assert "version 3" in show
    assert '<td class="times">08:30</td>' in show


def test_global_settings_are_validated_together_and_saved_together(
    client: Any, session: Session, operator: int
) -> None:
    good = {
        "window_start": "09:00",
        "window_end": "19:00",
        "daily_cap": "4",
        "max_concurrency": "8",
        "segments_per_second": "2.5",
        "stale_limit": "90",
    }
    bad = post_form(client, "/operator/settings", {**good, "daily_cap": "99", "stale_limit": "1"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="daily_cap-error"' in html
    assert 'id="stale_limit-error"' in html
    session.rollback()
    assert dispatch_settings(session).window.start == dt.time(8)  # nothing saved

    assert post_form(client, "/operator/settings", good).status_code == 302
    session.rollback()
    config = dispatch_settings(session)
    assert (config.window.start, config.daily_cap, config.max_concurrency) == (
        dt.time(9),
        4,
        8,
    )
    assert config.stale_limit == dt.timedelta(minutes=90)
    assert config.pace_for("console") == 2.5
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"dispatch.settings", "dispatch.pace", "dispatch.stale_limit"} <= actions


def test_templates_page_shows_each_family_with_samples_segments_and_encoding(
    client: Any, operator: int
) -> None:
    # The old filter lands on the track's own page.
    moved = client.get("/operator/templates?track=sleep&language=es")
    assert moved.status_code == 302
    assert moved.headers["Location"].endswith("/operator/templates/sleep?language=es")
    html = client.get("/operator/templates/sleep?language=es").get_data(as_text=True)
    for family in ("nudge.sleep", "followup.sleep", "tip.sleep"):
        assert f'data-template="{family}" data-language="es"' in html
    assert 'data-language="en"' not in html
    assert "nudge.diet" not in html
    assert "Alexandria" in html  # the sample render
    assert "(GSM-7)" not in html
    assert "GSM" in html or "UCS" in html
    assert "units)" in html
    every_language = client.get("/operator/templates/sleep").get_data(as_text=True)
    assert every_language.count('<section class="family"') > html.count('<section class="family"')
    # The contents page lists every family of every track, each linked to its track's page,
    # and no samples: those live on the track pages.
    contents = client.get("/operator/templates").get_data(as_text=True)
    assert '<section class="family"' not in contents
    assert contents.count("data-toc-family=") > every_language.count('<section class="family"')
    assert 'href="/operator/templates/sleep#nudge.sleep-es"' in contents
    assert client.get("/operator/templates/no-such-track").status_code == 404


def test_delivery_health_counts_failures_by_code_and_alarms_on_a_silent_clock(
    client: Any, session: Session, operator: int
) -> None:
    patient = make_patient(session)
    make_nudge(
        session,
        patient,
        due=NOW - dt.timedelta(hours=1),
        state=NudgeState.FAILED,
        state_reason="21211",
        key="sleep:x",
    )
    session.add(ClockHeartbeat(name="dispatch", last_tick_at=NOW - dt.timedelta(seconds=16)))
    session.commit()
    html = client.get("/operator/health").get_data(as_text=True)
    assert '<th scope="row">21211</th><td>1</td>' in html
    assert '<td data-figure="failed">1</td>' in html
    assert "Clock alarm" in html  # 16 s silent > three 5 s intervals
    # Charts drawn by the vendored library from data islands, each with its table fallback;
    # the console backend reports no delivery, so no delivery-rate chart and "not tracked".
    assert html.count('<figure class="cb-chart"') == 3
    assert html.count('<script type="application/json" id="chart-') == 3
    assert html.count('<details class="cb-chart__table">') == 3
    assert '<td data-figure="delivered">not tracked</td>' in html
    assert '<td data-figure="rate">not tracked</td>' in html
    month = client.get("/operator/health?span=30d").get_data(as_text=True)
    assert "last 30 days" in month

    with freeze_time(NOW - dt.timedelta(seconds=6)):
        assert "Clock alarm" not in client.get("/operator/health").get_data(as_text=True)


def test_operators_reach_the_console_but_never_a_patients_replies(
    app: Any, session: Session
) -> None:
    owner = make_staff(session, "ana@clinic.test")
    make_staff(session, "ops@clinic.test", role="operator")
    maya = make_patient(session, first_name="Maya")
    maya.clinician_id = owner
    session.commit()
    give_history(session, maya)
    ops = app.test_client()
    sign_in(ops, "ops@clinic.test")
    for path in (
        "/operator/programs",
        "/operator/programs/standard",
        EDIT + "?track=sleep",
        "/operator/settings",
        "/operator/templates",
        "/operator/health",
        "/delivery",
    ):
        answer = ops.get(path)
        assert answer.status_code == 200, path
        text = answer.get_data(as_text=True)
        assert "7 hours" not in text, path
        assert "Maya" not in text, path
    preview = post_form(ops, EDIT, {**SLEEP, "action": "preview"}).get_data(as_text=True)
    assert f"#{maya.id}" in preview
    assert "7 hours" not in preview
    assert "Maya" not in preview
    assert maya.phone_e164 not in preview
    for path in ("/patients", f"/patients/{maya.id}", "/alerts", f"/patients/{maya.id}/export"):
        assert ops.get(path).status_code == 404, path

    clinician = app.test_client()
    sign_in(clinician, "ana@clinic.test")
    assert clinician.get("/operator/programs").status_code == 404
