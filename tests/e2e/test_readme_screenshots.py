"""The README's screenshots, taken from the demo clinic in a real browser, and the demo logins.

`coachbot demo-seed` (the real command, as `make run` runs it) seeds the live server's
database; each role then signs in and each page is checked for what it should show before it
is photographed. The pictures go to test-artifacts/readme-screenshots/, or, with
UPDATE_SCREENSHOTS=1, to docs/screenshots/ where README.md embeds them (so CI never dirties
the tree; re-run with the variable after a page changes).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from coachbot.domain.clock import utcnow
from coachbot.runtime import Runtime
from coachbot.services.demo import DEMO_LOGINS, DemoLogin, seed_demo
from coachbot.services.demo_cast import CAST
from coachbot.settings import Settings
from tests.e2e.conftest import ARTIFACTS

ROOT = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("UPDATE_SCREENSHOTS") == "1"
FOLDER = ROOT / "docs" / "screenshots" if UPDATE else ARTIFACTS / "readme-screenshots"
VIEWPORT = {"width": 1280, "height": 900}
HOMES = {"clinician": "/patients", "operator": "/operator/health", "admin": "/staff"}


def _login(role: str) -> DemoLogin:
    return next(login for login in DEMO_LOGINS if login.role == role)


def _sign_in(chromium: Any, live_server: str, role: str) -> Any:
    """A browser context of the role's own (no shared cookie), signed in on its home page."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    page = context.new_page()
    login = _login(role)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}{HOMES[role]}")
    return page


def _shoot(page: Any, name: str) -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(FOLDER / f"{name}.png"))  # the viewport: what a reader first sees


def _seed_with_the_command(settings: Settings) -> str:
    script = Path(sys.executable).with_name("coachbot")
    env = {**os.environ, "DATABASE_URL": settings.database_url, "SMS_BACKEND": "console"}
    env.pop("CLINIC_NAME", None)  # the development default is the demo clinic's name
    started = time.perf_counter()
    done = subprocess.run(
        [str(script), "demo-seed"], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seconds = time.perf_counter() - started
    logging.getLogger(__name__).info("demo-seed took %.1f s: %s", seconds, done.stdout.strip())
    return done.stdout


def test_each_demo_login_signs_in_and_lands_on_its_home_page(
    chromium: Any, live_server: str, runtime: Runtime
) -> None:
    only_logins = tuple(p for p in CAST if p.first_name == "Iris")  # no 90 days needed here
    seed_demo(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        utcnow(),
        only_logins,
    )
    for role, heading in (
        ("clinician", "Patients"),
        ("operator", "Delivery health"),
        ("admin", "Staff accounts"),
    ):
        page = _sign_in(chromium, live_server, role)
        assert page.locator("h1").first.inner_text().startswith(heading)
        page.context.close()


def test_the_readme_screenshots_show_the_demo_clinic(
    chromium: Any, live_server: str, settings: Settings
) -> None:
    output = _seed_with_the_command(settings)
    assert "demo clinic seeded: 26 patients, 90 days of history" in output

    clinician = _sign_in(chromium, live_server, "clinician")
    rows = clinician.locator("table.patients tbody tr")
    assert rows.count() == 26
    first = rows.first
    # Triage first: a patient with an open urgent alert (a red flag, or Clara's caregiver
    # answering WORRIED) heads the list.
    assert first.get_attribute("data-need") == "urgent_alert"
    assert first.locator("th a").inner_text() in ("Clara", "Nora", "Rosa")
    _shoot(clinician, "patients")

    first.locator("th a").click()
    clinician.locator("table.heatmap").first.wait_for()
    assert clinician.locator("h1").first.inner_text().startswith(("Clara", "Nora", "Rosa"))
    _shoot(clinician, "patient")

    clinician.goto(f"{live_server}/alerts")
    clinician.get_by_text("cant find my words today").first.wait_for()  # the patient's words
    _shoot(clinician, "alerts")
    clinician.context.close()

    operator = _sign_in(chromium, live_server, "operator")
    operator.get_by_role("heading", name="Totals").wait_for()
    _shoot(operator, "operator-health")
    operator.goto(f"{live_server}/operator/templates")
    operator.get_by_role("heading", name="Contents").wait_for()
    _shoot(operator, "templates")
    operator.context.close()

    for name in ("patients", "patient", "alerts", "operator-health", "templates"):
        assert (FOLDER / f"{name}.png").stat().st_size > 10_000, name
