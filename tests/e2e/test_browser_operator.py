"""The operator's console in a real browser, with the app sending through the real twilio SDK
to the loopback Twilio server: edit a programme, preview, save, tick and see the new time
used; restore the earlier version; watch delivery health show an injected failure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.clock import tick_once
from coachbot.domain.clock import utcnow
from coachbot.domain.states import NudgeState
from coachbot.models import Nudge, OutboundMessage
from coachbot.runtime import Runtime, build_runtime
from coachbot.settings import Settings
from tests.e2e.conftest import Screenshots
from tests.support.builders import make_patient
from tests.support.fake_twilio import FakeTwilio, Fault
from tests.support.sign_in import make_staff, sign_in_browser
from tests.support.twilio_signing import AUTH_TOKEN

ACCOUNT_SID = "AC" + "e7" * 16


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, hang_limit=5) as server:
        yield server


@pytest.fixture
def runtime(settings: Settings, fake: FakeTwilio) -> Iterator[Runtime]:
    """The live server and the ticks below send through Twilio's SDK to the fake."""
    rt = build_runtime(
        dataclasses.replace(
            settings,
            sms_backend="twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from_number="+16175550100",
            twilio_api_base_url=fake.base_url,
            twilio_timeout_seconds=2.0,
        )
    )
    yield rt
    rt.close()


def _midday_zone(now: dt.datetime) -> str:
    """A fixed-offset zone where it is late morning now, well inside the send window."""
    for offset in range(-12, 15):
        name = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"
        if 11 <= now.astimezone(ZoneInfo(name)).hour < 14:
            return name
    raise AssertionError("some offset is always late morning")


def _tick(runtime: Runtime, now: dt.datetime) -> None:
    """One clock tick in its own thread, as the clock process runs it: Playwright keeps an
    asyncio loop running in the test's thread, and the Twilio gateway runs its own."""
    worker = threading.Thread(target=tick_once, args=(runtime, now), name="clock")
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the tick did not finish within 30 s"


def test_an_operator_edits_previews_saves_sees_the_new_time_used_and_restores(
    page: Any,
    live_server: str,
    runtime: Runtime,
    session: Session,
    shots: Screenshots,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_staff(session, "ops@clinic.test", role="operator")
    start = utcnow()
    zone = ZoneInfo(_midday_zone(start))
    patient = make_patient(
        session, tz=zone.key, first_name="Rosa", enrolled_at=start - dt.timedelta(days=3)
    )
    new_local = (start + dt.timedelta(minutes=3)).astimezone(zone)
    new_time = f"{new_local:%H:%M}"

    sign_in_browser(page, live_server, "ops@clinic.test")
    page.get_by_role("link", name="Operator console").click()
    page.get_by_role("link", name="standard").click()
    page.get_by_role("link", name="Edit sleep").click()
    page.get_by_label("Times (HH:MM, comma separated)").fill(new_time)
    page.get_by_role("button", name="Preview changes").click()
    preview = page.locator("section.preview")
    preview.get_by_text(f"times: 08:30 -> {new_time}").wait_for()
    row = preview.locator("table.preview-patients tbody tr", has_text=f"#{patient.id}")
    assert new_time in row.locator("td.after").inner_text()
    assert "Rosa" not in page.content()
    shots.take("preview")

    page.get_by_role("button", name="Save version 2").click()
    page.get_by_text("Saved standard version 2").wait_for()
    assert page.locator("tr[data-track='sleep'] td.times").inner_text() == new_time
    shots.take("saved")

    # The next tick, just after the new time, sends the sleep nudge at the new time.
    due = new_local.replace(second=0, microsecond=0)
    ticked_at = due + dt.timedelta(seconds=20)
    _tick(runtime, ticked_at)
    with runtime.session_factory() as s:
        sent = s.scalars(select(Nudge).where(Nudge.state == NudgeState.SENT)).one()
        assert sent.due_at == due.astimezone(dt.UTC)
    # The operator looks just after that tick. The tick ran ~3 minutes ahead of the wall
    # clock; read at the wall clock, the health page's hour buckets would leave the send
    # out whenever an hour boundary fell in between.
    monkeypatch.setattr("coachbot.web.common.utcnow", lambda: ticked_at.astimezone(dt.UTC))
    page.get_by_role("link", name="Delivery health").first.click()
    assert page.locator("td[data-figure='sent']").inner_text() == "1"
    shots.take("health-after-tick")

    page.get_by_role("link", name="Programmes").click()
    page.get_by_role("link", name="standard").click()
    page.locator("tr[data-version='1']").get_by_role("button", name="Restore v1").click()
    page.get_by_text("Restored version 1 as version 3").wait_for()
    assert page.locator("tr[data-track='sleep'] td.times").inner_text() == "08:30"
    assert "restored v1" in page.locator("tr[data-version='3']").inner_text()
    shots.take("restored")


def test_delivery_health_shows_a_failure_injected_at_the_twilio_server(
    page: Any,
    live_server: str,
    runtime: Runtime,
    session: Session,
    fake: FakeTwilio,
    shots: Screenshots,
) -> None:
    make_staff(session, "ops@clinic.test", role="operator")
    start = utcnow()
    zone = ZoneInfo(_midday_zone(start))
    due_local = (start - dt.timedelta(minutes=1)).astimezone(zone)
    make_patient(
        session,
        tz=zone.key,
        tracks={"sleep": f"{due_local:%H:%M}"},
        enrolled_at=start - dt.timedelta(days=3),
    )
    fake.inject(Fault.invalid_to())
    _tick(runtime, start)
    with runtime.session_factory() as s:
        assert s.scalars(select(Nudge.state)).all() == [NudgeState.FAILED]
        assert s.scalars(select(OutboundMessage)).all() == []

    sign_in_browser(page, live_server, "ops@clinic.test")
    failures = page.locator("table.failures")
    failures.get_by_text("21211").wait_for()
    assert "21211 1" in " ".join(failures.inner_text().split())
    assert page.locator("td[data-figure='failed']").inner_text() == "1"
    assert page.locator("p.clock-alarm").count() == 0
    shots.take("health-failure")
