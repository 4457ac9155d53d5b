"""On-call paging in a real browser, pages going through the real twilio SDK to the loopback
Twilio stand-in: an admin sets who is on call on the rota page (and sees a field's error),
a red flag pages that clinician, who opens the alert from their queue although the patient
is not theirs, sees who was paged and how, and acknowledges it. Each page passes axe."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy.orm import Session

from coachbot.domain.clock import utcnow
from coachbot.domain.states import AlertKind, AlertSeverity
from coachbot.models import Alert
from coachbot.runtime import Runtime, build_runtime
from coachbot.services import oncall, paging
from coachbot.services.alerts import raise_alert
from coachbot.settings import Settings
from tests.e2e.conftest import Screenshots
from tests.support.builders import make_patient
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN
from tests.web.test_dashboard_support import PASSWORD, make_staff

ACCOUNT_SID = "AC" + "f8" * 16
BEN_PHONE = "+16175550142"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, hang_limit=5) as server:
        yield server


@pytest.fixture
def runtime(settings: Settings, fake: FakeTwilio) -> Iterator[Runtime]:
    rt = build_runtime(
        dataclasses.replace(
            settings,
            sms_backend="twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_from_number="+16175550100",
            twilio_api_base_url=fake.base_url,
            twilio_timeout_seconds=2.0,
        )
    )
    yield rt
    rt.close()


def _axe_clean(page: Any, name: str) -> None:
    results = Axe().run(
        page, options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    )
    violations = results.response["violations"]
    assert not violations, f"{name}: " + "; ".join(f"{v['id']}: {v['help']}" for v in violations)


def _sign_in(page: Any, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))


def _page_in_thread(runtime: Runtime) -> None:
    """As the pager thread does; Playwright keeps an asyncio loop in the test's thread."""
    worker = threading.Thread(
        target=paging.run_due,
        args=(runtime.session_factory, runtime.gateway, runtime.settings, utcnow()),
    )
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()


def test_admin_sets_the_on_call_who_is_paged_opens_the_alert_and_acknowledges_it(
    page: Any,
    live_server: str,
    runtime: Runtime,
    session: Session,
    fake: FakeTwilio,
    shots: Screenshots,
) -> None:
    ana = make_staff(session, "ana@clinic.test")
    ben = make_staff(session, "ben@clinic.test")
    make_staff(session, "ada@clinic.test", role="admin")
    user = oncall.set_staff_phone(
        runtime.session_factory, ben, BEN_PHONE, default_region="US", now=utcnow(), actor="t"
    )
    assert user is not None
    maya = make_patient(session, first_name="Maya")
    maya.clinician_id = ana
    session.commit()

    _sign_in(page, live_server, "ada@clinic.test")
    page.get_by_role("link", name="On call").click()
    page.get_by_text("Nobody is on call.").wait_for()
    shots.take("rota-nobody")
    _axe_clean(page, "rota")
    page.get_by_label("Starts (HH:MM)").fill("8pm")
    page.get_by_label("Ends (HH:MM)").fill("08:00")
    page.get_by_role("button", name="Add shift").click()
    page.get_by_text("'8pm' is not a time such as 08:00", exact=True).wait_for()
    _axe_clean(page, "rota-errors")
    page.locator("#o-email").select_option("ben@clinic.test")
    page.get_by_role("button", name="Set on call").click()
    page.get_by_text("On call now: ben").wait_for()
    shots.take("rota-ben")
    page.get_by_role("button", name="Sign out").click()

    alert = raise_alert(
        session,
        patient_id=maya.id,
        kind=AlertKind.RED_FLAG,
        severity=AlertSeverity.URGENT,
        detail="code",
        now=utcnow(),
    )
    session.commit()
    _page_in_thread(runtime)
    [sms] = fake.sent_to(BEN_PHONE)
    assert f"/alerts/{alert.id}" in sms.body

    _sign_in(page, live_server, "ben@clinic.test")
    page.get_by_role("link", name="Alerts").click()
    page.get_by_role("heading", name="Paged to you (on call)").wait_for()
    page.get_by_role("link", name=f"#{alert.id}").click()
    page.get_by_role("heading", name=f"Alert #{alert.id}: Urgent, Red flag").wait_for()
    row = page.locator("table.pages tbody tr").first
    assert row.locator("td").all_inner_texts()[:5] == ["1", "ben", "primary", "SMS", "sent"]
    shots.take("alert-paged")
    _axe_clean(page, "alert")
    page.get_by_role("button", name=f"Acknowledge alert #{alert.id}").click()
    page.get_by_text("by ben,").wait_for()
    shots.take("alert-acknowledged")
    page.get_by_role("link", name="Maya").click()
    page.get_by_role("heading", name="Maya").first.wait_for()
    session.expire_all()
    stored = session.get(Alert, alert.id)
    assert stored is not None
    assert (stored.status, stored.acknowledged_by_id) == ("acknowledged", ben)
