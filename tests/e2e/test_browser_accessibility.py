"""Every staff page state, as each role reaches it, checked in a real browser with axe-core
against WCAG 2.0/2.1 A and AA: every page each role can open (the signed-out login page, the
clinician's pages with a patient who has history and alerts, the operator console, the
admin's pages), each form shown with its errors (a form with its errors must be as usable as
a fresh one), the empty lists, and the 400, 404 and 500 pages.

One test per page state, so a regression names it; the failure lists each rule broken, its
impact, what it asks for and the elements that break it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, AlertSeverity, PatientStatus
from coachbot.models import Alert, HomeworkItem, Patient
from coachbot.services import consent
from coachbot.services.alerts import acknowledge_alert, raise_alert, resolve_alert
from tests.support.builders import (
    make_caregiver,
    make_caregiver_check,
    make_inbound,
    make_patient,
)
from tests.support.sign_in import sign_in_browser as sign_in
from tests.support.sign_in import writer_of
from tests.web.test_dashboard_support import NOW, give_history, make_staff

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
EMAILS = {
    "clinician": "ana@clinic.test",
    "operator": "ops@clinic.test",
    "admin": "root@clinic.test",
}
AXE = Axe()


@dataclass(frozen=True)
class Visit:
    """A page as one role sees it: `path` may name {patient}, {alert} or {last_alert}; `act`
    is what the person does there before the check (submit a form with a mistake, ask for a
    preview); `seed=False` leaves the database with the staff account only (the empty
    states); `fault` names a function the page calls, made to raise (the 500 page); `status`
    is the answer the page must come with when nothing is done on it; `caregivers` adds the
    patient's caregivers, close watch, daily checks and a caregiver's text."""

    role: str | None
    path: str
    act: Callable[[Any], None] | None = None
    seed: bool = True
    fault: str | None = None
    status: int = 200
    caregivers: bool = False


def _submit(button: str, **fields: str) -> Callable[[Any], None]:
    """Fills the labelled fields and presses the button, as a person would."""

    def act(page: Any) -> None:
        for label, value in fields.items():
            page.get_by_label(label.replace("_", " "), exact=True).fill(value)
        page.get_by_role("button", name=button, exact=True).click()
        page.wait_for_load_state()

    return act


def _forge_csrf(button: str) -> Callable[[Any], None]:
    """Submits the form with a forged CSRF token: the 400 page."""

    def act(page: Any) -> None:
        page.evaluate(
            "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'x')"
        )
        page.get_by_role("button", name=button, exact=True).click()
        page.get_by_role("heading", name="Request refused").wait_for()

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
    "patient-caregivers": Visit("clinician", "/patients/{patient}", caregivers=True),
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
    "alert": Visit("clinician", "/alerts/{alert}"),
    "alert-resolved": Visit("clinician", "/alerts/{last_alert}"),
    "not-found": Visit("clinician", "/patients/999999", status=404),
    "refused": Visit("clinician", "/account/tokens", _forge_csrf("Create token"), status=400),
    # The clinician's lists with nobody and nothing in them.
    "patients-empty": Visit("clinician", "/patients", seed=False),
    "alerts-empty": Visit("clinician", "/alerts", seed=False),
    "to-read-empty": Visit("clinician", "/to-read", seed=False),
    "simulator-empty": Visit("clinician", "/simulator", seed=False),
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
    "templates-track": Visit("operator", "/operator/templates/sleep?language=es"),
    "health-month": Visit("operator", "/operator/health?span=30d"),
    "health-old-address": Visit("operator", "/delivery"),
    "health-empty": Visit("operator", "/operator/health", seed=False),
    "server-error": Visit(
        "operator", "/operator/health", fault="coachbot.web.operator.delivery_health", status=500
    ),
    "operator-tokens": Visit("operator", "/account/tokens"),
    # The admin's pages.
    "staff": Visit("admin", "/staff"),
    "staff-errors": Visit("admin", "/staff", _submit("Create", Email="not-an-email")),
    "admin-alerts": Visit("admin", "/alerts"),
    "admin-to-read": Visit("admin", "/to-read"),
    "staff-phone-errors": Visit(
        "admin",
        "/staff",
        _submit("Save mobile of root@clinic.test", **{"Mobile of root@clinic.test": "12"}),
    ),
    # The admin's is the unknown sender's red flag: a patient's belongs to their clinician.
    "admin-alert": Visit("admin", "/alerts/{last_alert}"),
    "oncall": Visit("admin", "/oncall"),
    "oncall-errors": Visit("admin", "/oncall", _submit("Add shift", **{"Starts (HH:MM)": "25:99"})),
    "suppressions": Visit("admin", "/admin/suppressions"),
    "suppressions-empty": Visit("admin", "/admin/suppressions", seed=False),
    "admin-console": Visit("admin", "/operator/programs"),
    "admin-health": Visit("admin", "/operator/health"),
    "admin-tokens": Visit("admin", "/account/tokens"),
    "operator-my-settings": Visit("operator", "/me/settings"),
    "admin-my-settings": Visit("admin", "/me/settings"),
}


def _seed(session: Session, role: str | None, *, history: bool = True) -> dict[str, int]:
    """The visit's staff account only (each costs a password hash) and, with `history`, a
    patient with ten days of history, homework and an open red flag; for a clinician, the
    patient is theirs and also has an acknowledged alert and a resolved one. Returns the ids
    the paths name: {patient}, {alert} (the first alert) and {last_alert}."""
    staff_id = make_staff(session, EMAILS[role], role=role) if role else None
    if not history:
        session.commit()
        return {"patient": 0, "alert": 0, "last_alert": 0}
    patient_id = _seed_history(session, role, staff_id)
    first, last = session.execute(select(func.min(Alert.id), func.max(Alert.id))).one()
    return {"patient": patient_id, "alert": first or 0, "last_alert": last or 0}


def _seed_history(session: Session, role: str | None, staff_id: int | None) -> int:
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
        session.commit()  # the use cases below run their own transactions
        ack_at = NOW - dt.timedelta(days=1)
        acknowledge_alert(writer_of(session), alert.id, actor_id=staff_id, now=ack_at)
        if resolve:
            resolve_alert(
                writer_of(session), alert.id, actor_id=staff_id, now=NOW, note="Called her."
            )
    session.commit()
    return rosa.id


def _seed_caregivers(session: Session, patient_id: int) -> None:
    """Caregiver panel states: one caregiver active with a week of checks (a count, a word,
    a missed day), one waiting for their YES; close watch on; the active one's text."""
    rosa = session.get_one(Patient, patient_id)
    rosa.close_watch_from = NOW.date() - dt.timedelta(days=6)
    sam = make_caregiver(session, rosa, first_name="Sam", baseline=4)
    make_caregiver(session, rosa, first_name="Lee", status=PatientStatus.PENDING_CONSENT)
    for ago in range(6, 0, -1):
        day = NOW.date() - dt.timedelta(days=ago)
        if ago == 2:
            make_caregiver_check(session, rosa, sam, day=day, state="missed")
        else:
            make_caregiver_check(session, rosa, sam, day=day, score=4 if ago > 3 else 3)
    make_caregiver_check(session, rosa, sam, day=NOW.date(), concern="worse")
    text = make_inbound(session, body="Worse", received_at=NOW, patient=rosa, is_proxy=True)
    text.caregiver_id = sam.id
    session.commit()


def _broken(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("a failure the 500 page must survive")


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
    ids = _seed(session, visit.role, history=visit.seed)
    if visit.caregivers:
        _seed_caregivers(session, ids["patient"])
    if visit.role is not None:
        sign_in(page, live_server, EMAILS[visit.role])
    if visit.fault is not None:
        monkeypatch.setattr(visit.fault, _broken)
    answer = page.goto(live_server + visit.path.format(**ids))
    if visit.act is None:
        # The page state is the one named: a 404 visit is the 404 page, not a bad seed.
        assert answer.status == visit.status, f"{name}: {answer.status} from {page.url}"
    else:
        visit.act(page)

    results = AXE.run(
        page, options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    )
    violations = results.response["violations"]
    assert not violations, (
        f"{name} ({page.url}) breaks {len(violations)} WCAG 2.1 AA rule(s):\n" + _report(violations)
    )
