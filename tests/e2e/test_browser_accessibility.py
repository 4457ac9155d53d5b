"""Every staff page, as each role reaches it, checked in a real browser with axe-core against
WCAG 2.0/2.1 A and AA: the signed-out login page, the clinician's pages with a patient who has
history and alerts, the operator console, the admin's staff page, and the error states of the
forms (a form shown with its errors must be as usable as a fresh one).

One test per page, so a regression names the page; the failure lists each rule broken, its
impact, what it asks for and the elements that break it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, AlertSeverity
from coachbot.models import HomeworkItem
from coachbot.services import consent
from coachbot.services.alerts import acknowledge_alert, raise_alert, resolve_alert
from tests.support.builders import make_inbound, make_patient
from tests.web.test_dashboard_support import NOW, PASSWORD, give_history, make_staff

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
EMAILS = {
    "clinician": "ana@clinic.test",
    "operator": "ops@clinic.test",
    "admin": "root@clinic.test",
}
AXE = Axe()


@dataclass(frozen=True)
class Visit:
    """A page as one role sees it: `path` may name {patient}; `act` is what the person does
    there before the check (submit a form with a mistake, ask for a preview)."""

    role: str | None
    path: str
    act: Callable[[Any], None] | None = None


def _submit(button: str, **fields: str) -> Callable[[Any], None]:
    """Fills the labelled fields and presses the button, as a person would."""

    def act(page: Any) -> None:
        for label, value in fields.items():
            page.get_by_label(label.replace("_", " "), exact=True).fill(value)
        page.get_by_role("button", name=button, exact=True).click()
        page.wait_for_load_state()

    return act


def _upload_bad_csv(page: Any) -> None:
    page.get_by_label("CSV file").set_input_files(
        files=[
            {
                "name": "patients.csv",
                "mimeType": "text/csv",
                "buffer": b"first_name,phone,timezone\nRosa,not a phone,Mars/Olympus\n,,\n",
            }
        ]
    )
    page.get_by_role("button", name="Check and enrol").click()
    page.get_by_role("heading", name="Problems").wait_for()


VISITS: dict[str, Visit] = {
    "login": Visit(None, "/login"),
    "login-refused": Visit(
        None, "/login", _submit("Sign in", Email="ana@clinic.test", Password="not-the-password")
    ),
    # The clinician's pages.
    "patients": Visit("clinician", "/patients"),
    "patients-filtered": Visit("clinician", "/patients?q=zzz&status=paused&sort=last_reply"),
    "patient": Visit("clinician", "/patients/{patient}"),
    "enrol": Visit("clinician", "/patients/new"),
    "enrol-errors": Visit(
        "clinician",
        "/patients/new",
        _submit("Enrol and send the welcome", Mobile_number="not a phone", Time_zone="Mars/Base"),
    ),
    "edit": Visit("clinician", "/patients/{patient}/edit"),
    "edit-errors": Visit(
        "clinician", "/patients/{patient}/edit", _submit("Save", Mobile_number="12")
    ),
    "bulk": Visit("clinician", "/patients/bulk"),
    "bulk-errors": Visit("clinician", "/patients/bulk", _upload_bad_csv),
    "alerts": Visit("clinician", "/alerts"),
    "alerts-resolved": Visit("clinician", "/alerts?view=resolved"),
    "to-read": Visit("clinician", "/to-read"),
    "simulator": Visit("clinician", "/simulator"),
    "my-settings": Visit("clinician", "/me/settings"),
    "my-settings-errors": Visit(
        "clinician", "/me/settings", _submit("Save", Time_zone="Mars/Olympus")
    ),
    "tokens": Visit("clinician", "/account/tokens"),
    "tokens-issued": Visit(
        "clinician", "/account/tokens", _submit("Create token", Token_name="reporting")
    ),
    "tokens-errors": Visit("clinician", "/account/tokens", _submit("Create token")),
    "not-found": Visit("clinician", "/patients/999999"),
    # The operator console.
    "health": Visit("operator", "/operator/health"),
    "programs": Visit("operator", "/operator/programs"),
    "programs-errors": Visit("operator", "/operator/programs", _submit("Create programme")),
    "program": Visit("operator", "/operator/programs/standard"),
    "program-edit": Visit("operator", "/operator/programs/standard/edit?track=sleep"),
    "program-preview": Visit(
        "operator", "/operator/programs/standard/edit?track=sleep", _submit("Preview changes")
    ),
    "program-edit-errors": Visit(
        "operator",
        "/operator/programs/standard/edit?track=sleep",
        _submit("Preview changes", **{"Times (HH:MM, comma separated)": "25:99"}),
    ),
    "settings": Visit("operator", "/operator/settings"),
    "settings-errors": Visit(
        "operator",
        "/operator/settings",
        _submit("Save settings", **{"Concurrent API calls": "many"}),
    ),
    "templates": Visit("operator", "/operator/templates"),
    # The admin's pages.
    "staff": Visit("admin", "/staff"),
    "staff-errors": Visit("admin", "/staff", _submit("Create", Email="not-an-email")),
    "admin-alerts": Visit("admin", "/alerts"),
    "admin-to-read": Visit("admin", "/to-read"),
    "oncall": Visit("admin", "/oncall"),
    "suppressions": Visit("admin", "/admin/suppressions"),
}


def _seed(session: Session, role: str | None) -> int:
    """The visit's staff account only (each costs a password hash) and a patient with ten
    days of history, homework and an open red flag; for a clinician, the patient is theirs and
    also has an acknowledged alert and a resolved one. Returns the patient's id."""
    staff_id = make_staff(session, EMAILS[role], role=role) if role else None
    rosa = make_patient(
        session,
        first_name="Rosa",
        tracks={"sleep": "08:30", "exercise": "17:00"},
        enrolled_at=NOW - dt.timedelta(days=20),
    )
    rosa.clinician_id = staff_id if role == "clinician" else None
    session.add(
        HomeworkItem(
            patient_id=rosa.id,
            description="Ten minutes of balance exercises",
            assigned_by_id=staff_id,
            created_at=NOW - dt.timedelta(days=20),
        )
    )
    give_history(session, rosa)
    # A text waiting to be read: Rosa's for her clinician, a stranger's (and the stranger's
    # red flag, and a number that opted out) for an admin.
    make_inbound(session, body="Can I move my visit?", received_at=NOW, patient=rosa)
    if role == "admin":
        make_inbound(session, body="who is this", received_at=NOW, from_e164="+16175559876")
        raise_alert(
            session,
            patient_id=None,
            kind=AlertKind.RED_FLAG,
            severity=AlertSeverity.URGENT,
            detail="fall",
            now=NOW,
        )
        consent.suppress(session, "+16175559877", source="opt_out", text="STOP", now=NOW)
        session.commit()
    if staff_id is None or role != "clinician":
        return rosa.id
    for detail, resolve in (("no_reply:3d", False), ("missed:sleep", True)):
        alert = raise_alert(
            session,
            patient_id=rosa.id,
            kind=AlertKind.SILENCE,
            severity=AlertSeverity.NORMAL,
            detail=detail,
            now=NOW - dt.timedelta(days=2),
        )
        session.flush()
        acknowledge_alert(session, alert, actor_id=staff_id, now=NOW - dt.timedelta(days=1))
        if resolve:
            resolve_alert(session, alert, actor_id=staff_id, now=NOW, note="Called her.")
    session.commit()
    return rosa.id


def _sign_in(page: Any, live_server: str, role: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(EMAILS[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))


def _report(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    {target}  --  {summary}")
    return "\n".join(lines)


@pytest.mark.parametrize("name", list(VISITS))
def test_page_meets_wcag_2_1_aa(
    name: str, page: Any, live_server: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    visit = VISITS[name]
    # The app's clock two hours after the seeded history, so the heatmap, trend and timeline
    # show it whatever today's date is.
    monkeypatch.setattr("coachbot.web.common.utcnow", lambda: NOW + dt.timedelta(hours=2))
    patient_id = _seed(session, visit.role)
    if visit.role is not None:
        _sign_in(page, live_server, visit.role)
    page.goto(live_server + visit.path.format(patient=patient_id))
    if visit.act is not None:
        visit.act(page)

    results = AXE.run(
        page, options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    )
    violations = results.response["violations"]
    assert not violations, (
        f"{name} ({page.url}) breaks {len(violations)} WCAG 2.1 AA rule(s):\n" + _report(violations)
    )
