"""Paging in the web process and on the pages: the webhook kicks the pager thread (a page at
the Twilio stand-in within seconds of the inbound POST), the on-call opens the alert and the
patient they were paged for (audited), the alert page lists the pages, admins edit mobiles
and the rota, and nobody on call is a loud warning."""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.app import create_app
from coachbot.domain.clock import utcnow
from coachbot.domain.states import AlertKind, AlertSeverity
from coachbot.models import Alert, AuditEntry, OnCallShift, Patient, StaffUser
from coachbot.runtime import Runtime, build_runtime
from coachbot.services import oncall, paging
from coachbot.services.alerts import raise_alert
from coachbot.services.paging import Pager
from coachbot.settings import Settings
from tests.support.builders import make_patient
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN, inbound_params, post_signed
from tests.web.test_dashboard_support import make_staff, post_form, sign_in, writer_of

ACCOUNT_SID = "AC" + "e5" * 16
ONCALL_PHONE = "+16175550142"


def _set_phone(session: Session, user_id: int, phone: str) -> None:
    user = oncall.set_staff_phone(
        writer_of(session), user_id, phone, default_region="US", now=utcnow(), actor="t"
    )
    assert user is not None


@pytest.fixture
def clinic(session: Session) -> dict[str, int]:
    """Ana owns Maya; Ben is on call (not Maya's clinician); Ada is an admin."""
    ana = make_staff(session, "ana@clinic.test")
    ben = make_staff(session, "ben@clinic.test")
    ada = make_staff(session, "ada@clinic.test", role="admin")
    _set_phone(session, ben, ONCALL_PHONE)
    maya = make_patient(session, first_name="Maya", phone="+16175554567")
    maya.clinician_id = ana
    session.commit()
    oncall.set_override(
        writer_of(session),
        primary_email="ben@clinic.test",
        backup_email=None,
        now=utcnow(),
        actor="t",
    )
    return {"ana": ana, "ben": ben, "ada": ada, "maya": maya.id}


def _alert(runtime: Runtime, patient_id: int | None) -> int:
    with runtime.session_factory() as s:
        alert = raise_alert(
            s,
            patient_id=patient_id,
            kind=AlertKind.RED_FLAG,
            severity=AlertSeverity.URGENT,
            detail="code",
            now=utcnow(),
        )
        s.commit()
        return alert.id


def _page(runtime: Runtime) -> None:
    paging.run_due(runtime.session_factory, runtime.gateway, runtime.settings, utcnow())


@pytest.fixture
def paging_app(settings: Settings) -> Iterator[tuple[Any, FakeTwilio, Runtime]]:
    """The app as gunicorn builds it: Twilio (the stand-in) and the pager thread on."""
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        rt = build_runtime(
            dataclasses.replace(
                settings,
                sms_backend="twilio",
                twilio_account_sid=ACCOUNT_SID,
                twilio_from_number="+16175550100",
                twilio_api_base_url=fake.base_url,
                pager_enabled=True,
            )
        )
        app = create_app(runtime=rt)
        app.config["TESTING"] = True
        yield app, fake, rt
        pager: Pager = app.extensions["coachbot_pager"]
        pager.stop()
        rt.close()


def test_a_red_flag_text_pages_the_on_call_within_seconds_of_the_post(
    paging_app: tuple[Any, FakeTwilio, Runtime], clinic: dict[str, int]
) -> None:
    app, fake, runtime = paging_app
    started = time.monotonic()
    response = post_signed(
        app.test_client(), "/sms/inbound", inbound_params("+16175554567", "I had a seizure")
    )
    assert response.status_code == 200
    deadline = started + 5
    while not fake.sent_to(ONCALL_PHONE) and time.monotonic() < deadline:
        time.sleep(0.02)
    [page] = fake.sent_to(ONCALL_PHONE)
    assert time.monotonic() - started < 5
    with runtime.session_factory() as s:
        alert = s.scalars(select(Alert)).one()
    assert f"alert #{alert.id}" in page.body
    assert "Maya" not in page.body


def test_a_kicked_pager_keeps_running_after_a_failed_run() -> None:
    runs: list[int] = []

    def run() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("database away")

    pager = Pager(run).start()
    try:
        for _ in range(2):
            before = len(runs)
            pager.kick()
            deadline = time.monotonic() + 5
            while len(runs) == before and time.monotonic() < deadline:
                time.sleep(0.01)
        assert len(runs) == 2
    finally:
        pager.stop()


def test_the_on_call_opens_the_alert_and_patient_they_were_paged_for_audited(
    app: Any, runtime: Runtime, session: Session, clinic: dict[str, int]
) -> None:
    alert_id = _alert(runtime, clinic["maya"])
    client = app.test_client()
    sign_in(client, "ben@clinic.test")
    # Not paged yet: Maya is not Ben's patient.
    assert client.get(f"/patients/{clinic['maya']}").status_code == 404
    assert client.get(f"/alerts/{alert_id}").status_code == 404
    _page(runtime)
    page = client.get(f"/alerts/{alert_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Nobody was paged" not in html
    assert re.search(r"<td>1</td><td>ben</td><td>primary</td><td>SMS</td>\s*<td>sent", html)
    assert client.get(f"/patients/{clinic['maya']}").status_code == 200
    queue = client.get("/alerts").get_data(as_text=True)
    assert "Paged to you (on call)" in queue
    assert f'href="/alerts/{alert_id}"' in queue
    acked = post_form(client, f"/alerts/{alert_id}/acknowledge", {"next": "alert"})
    assert acked.status_code == 302
    html = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert "by ben," in html
    session.expire_all()
    trail = [
        (e.actor, e.action, e.outcome, e.detail)
        for e in session.scalars(
            select(AuditEntry)
            .where(AuditEntry.patient_id == clinic["maya"])
            .order_by(AuditEntry.id)
        )
    ]
    ben = f"staff:{clinic['ben']}"
    assert (ben, "patient.view", "denied", "not the owning clinician") in trail
    assert (ben, "alert.view", "ok", f"alert={alert_id} on-call: paged") in trail
    assert (ben, "patient.view", "ok", "on-call: paged for an unresolved alert") in trail
    assert (ben, "alert.acknowledge", "ok", f"alert={alert_id} kind=red_flag") in trail


def test_the_patient_page_closes_to_the_on_call_once_the_alert_is_resolved(
    app: Any, runtime: Runtime, clinic: dict[str, int]
) -> None:
    alert_id = _alert(runtime, clinic["maya"])
    _page(runtime)
    client = app.test_client()
    sign_in(client, "ben@clinic.test")
    post_form(client, f"/alerts/{alert_id}/acknowledge")
    post_form(client, f"/alerts/{alert_id}/resolve", {"note": "called, fine"})
    assert client.get(f"/patients/{clinic['maya']}").status_code == 404
    # The alert itself stays readable to the person paged for it.
    assert client.get(f"/alerts/{alert_id}").status_code == 200


def test_another_clinician_never_paged_cannot_open_the_alert(
    app: Any, runtime: Runtime, session: Session, clinic: dict[str, int]
) -> None:
    make_staff(session, "cy@clinic.test")
    alert_id = _alert(runtime, clinic["maya"])
    _page(runtime)
    client = app.test_client()
    sign_in(client, "cy@clinic.test")
    assert client.get(f"/alerts/{alert_id}").status_code == 404
    assert post_form(client, f"/alerts/{alert_id}/acknowledge").status_code == 404


def test_an_admin_edits_a_staff_mobile_and_sees_the_fields_error(
    app: Any, session: Session, clinic: dict[str, int]
) -> None:
    client = app.test_client()
    sign_in(client, "ada@clinic.test")
    ok = post_form(client, f"/staff/{clinic['ana']}/phone", {"phone": "617 555 0199"})
    assert ok.status_code == 302
    bad = post_form(client, f"/staff/{clinic['ana']}/phone", {"phone": ONCALL_PHONE})
    assert bad.status_code == 422
    assert "another staff account has this number" in bad.get_data(as_text=True)
    session.expire_all()
    ana = session.get(StaffUser, clinic["ana"])
    assert ana is not None
    assert ana.phone_e164 == "+16175550199"
    created = post_form(
        client,
        "/staff",
        {
            "email": "dee@clinic.test",
            "display_name": "Dee",
            "role": "clinician",
            "password": "x" * 12,
            "phone": "12",
        },
    )
    assert created.status_code == 422
    assert "is not a valid phone number" in created.get_data(as_text=True)


def test_an_admin_sets_on_call_and_weekly_shifts_on_the_rota_page(
    app: Any, session: Session, clinic: dict[str, int]
) -> None:
    client = app.test_client()
    sign_in(client, "ada@clinic.test")
    page = client.get("/oncall").get_data(as_text=True)
    assert "On call now: ben" in page
    added = post_form(
        client,
        "/oncall",
        {
            "which": "shift",
            "s-weekday": "2",
            "s-start": "20:00",
            "s-end": "08:00",
            "s-email": "ana@clinic.test",
            "s-backup_email": "ben@clinic.test",
        },
    )
    assert added.status_code == 302
    refused = post_form(
        client,
        "/oncall",
        {"which": "shift", "s-weekday": "2", "s-start": "8pm", "s-end": "08:00", "s-email": ""},
    )
    assert refused.status_code == 422
    assert "&#39;8pm&#39; is not a time such as 08:00" in refused.get_data(as_text=True)
    session.expire_all()
    shift = session.scalars(select(OnCallShift)).one()
    assert (shift.weekday, f"{shift.start_time:%H:%M}", shift.primary_id) == (
        2,
        "20:00",
        clinic["ana"],
    )
    set_now = post_form(
        client, "/oncall", {"which": "override", "o-email": "ana@clinic.test", "o-backup_email": ""}
    )
    assert set_now.status_code == 302
    assert "On call now: ana" in client.get("/oncall").get_data(as_text=True)
    assert post_form(client, f"/oncall/shifts/{shift.id}/delete").status_code == 302
    assert post_form(client, "/oncall/clear").status_code == 302
    assert "Nobody is on call." in client.get("/oncall").get_data(as_text=True)


def test_nobody_on_call_is_a_loud_warning_on_the_patients_list_and_the_console(
    app: Any, session: Session, clinic: dict[str, int]
) -> None:
    ana = app.test_client()
    sign_in(ana, "ana@clinic.test")
    assert "Nobody is on call." not in ana.get("/patients").get_data(as_text=True)
    oncall.clear_override(writer_of(session), now=utcnow(), actor="t")
    assert "Nobody is on call." in ana.get("/patients").get_data(as_text=True)
    ops = app.test_client()
    make_staff(session, "ops@clinic.test", role="operator")
    sign_in(ops, "ops@clinic.test")
    assert "Nobody is on call." in ops.get("/operator/health").get_data(as_text=True)
    assert "Nobody is on call." in ops.get("/operator/programs").get_data(as_text=True)
    assert "Nobody is on call." not in ana.get("/alerts").get_data(as_text=True)


def test_a_patient_record_shown_to_the_on_call_is_still_only_read(
    app: Any, runtime: Runtime, session: Session, clinic: dict[str, int]
) -> None:
    _alert(runtime, clinic["maya"])
    _page(runtime)
    client = app.test_client()
    sign_in(client, "ben@clinic.test")
    assert post_form(client, f"/patients/{clinic['maya']}/pause").status_code == 404
    session.expire_all()
    maya = session.get(Patient, clinic["maya"])
    assert maya is not None
    assert maya.status == "active"


def test_a_stream_of_kicks_runs_the_pager_at_most_every_min_interval() -> None:
    runs: list[float] = []
    pager = Pager(lambda: runs.append(time.monotonic()), min_interval=0.1).start()
    try:
        until = time.monotonic() + 0.55
        while time.monotonic() < until:
            pager.kick()
            time.sleep(0.001)
        time.sleep(0.25)  # the last kick still runs
    finally:
        pager.stop()
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert 5 <= len(runs) <= 8
    assert min(gaps) >= 0.095


def test_an_admin_sees_and_acknowledges_a_red_flag_from_an_unknown_number(
    app: Any, runtime: Runtime, session: Session, clinic: dict[str, int]
) -> None:
    """A red flag texted from a number no record holds belongs to no clinician: admins watch
    those alerts (and the on-call, who is paged); a clinician's queue never lists them."""
    stranger = _alert(runtime, None)
    own = _alert(runtime, clinic["maya"])
    admin = app.test_client()
    sign_in(admin, "ada@clinic.test")
    queue = admin.get("/alerts").get_data(as_text=True)
    assert f"#{stranger}" in queue
    assert f"#{own}" not in queue  # a patient's alert stays with their clinician
    assert "unknown sender" in queue
    assert admin.get(f"/alerts/{stranger}").status_code == 200
    assert admin.get(f"/alerts/{own}").status_code == 404
    assert post_form(admin, f"/alerts/{stranger}/acknowledge").status_code == 302
    session.expire_all()
    acknowledged = session.get(Alert, stranger)
    assert acknowledged is not None
    assert acknowledged.acknowledged_by_id == clinic["ada"]
    clinician = app.test_client()
    sign_in(clinician, "ana@clinic.test")
    assert f"#{stranger}" not in clinician.get("/alerts").get_data(as_text=True)


def test_the_on_call_acknowledges_by_texting_ack_and_a_stranger_cannot(
    app: Any, runtime: Runtime, session: Session, clinic: dict[str, int]
) -> None:
    """ACK <id> from the on-call's registered phone goes through the real webhook and
    acknowledges in their name; the same text from any other number changes nothing."""
    alert_id = _alert(runtime, clinic["maya"])
    _page(runtime)
    client = app.test_client()
    stranger = post_signed(
        client, "/sms/inbound", inbound_params("+16175559876", f"ACK {alert_id}", "SMack1")
    )
    assert stranger.status_code == 200
    session.expire_all()
    assert session.get_one(Alert, alert_id).acknowledged_by_id is None
    answer = post_signed(
        client, "/sms/inbound", inbound_params(ONCALL_PHONE, f"ack {alert_id}", "SMack2")
    )
    assert "acknowledged" in answer.get_data(as_text=True)
    session.rollback()  # end the read transaction above: see what the webhook committed
    acknowledged = session.get_one(Alert, alert_id)
    assert (acknowledged.status, acknowledged.acknowledged_by_id) == ("acknowledged", clinic["ben"])
    audited = session.scalars(
        select(AuditEntry.actor).where(AuditEntry.action == "alert.acknowledge")
    ).all()
    assert f"staff:{clinic['ben']}" in audited
