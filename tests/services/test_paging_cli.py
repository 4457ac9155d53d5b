"""`coachbot create-user --phone`, `coachbot oncall set|show|shift-add|shift-delete`,
`coachbot alerts`, and the clock tick's paging: clear errors with exit 2, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner, Result
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.cli import main
from coachbot.domain.states import AlertKind, AlertSeverity
from coachbot.models import Alert, AuditEntry, Page, StaffUser
from coachbot.runtime import Runtime
from coachbot.services.alerts import raise_alert
from coachbot.services.paging import handle_staff_sms
from coachbot.services.tick import run_clock_tick
from coachbot.settings import Settings
from tests.support.builders import make_patient

NOW = "2026-12-03T07:00:00Z"


def _run(settings: Settings, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        main,
        list(args),
        env={
            "DATABASE_URL": settings.database_url,
            "SMS_BACKEND": "console",
            "COACHBOT_PASSWORD": "correct horse battery",
            "CLINIC_TIMEZONE": "America/New_York",
            **env,
        },
    )


def _user(settings: Settings, email: str, *extra: str) -> Result:
    return _run(settings, "create-user", "--email", email, "--role", "clinician", *extra)


def test_create_user_keeps_a_valid_mobile_in_e164_and_refuses_a_bad_one(
    settings: Settings, session: Session
) -> None:
    ok = _user(settings, "a@clinic.example", "--phone", "(617) 555-0142")
    assert ok.exit_code == 0, ok.output
    bad = _user(settings, "b@clinic.example", "--phone", "555")
    assert bad.exit_code == 2
    assert "error: phone: '555' is not a valid phone number" in bad.output
    taken = _user(settings, "c@clinic.example", "--phone", "+16175550142")
    assert taken.exit_code == 2
    assert "another staff account has this number" in taken.output
    phones = session.execute(select(StaffUser.email, StaffUser.phone_e164)).all()
    assert [tuple(p) for p in phones] == [("a@clinic.example", "+16175550142")]


@freeze_time(NOW)
def test_oncall_set_show_and_clear(settings: Settings) -> None:
    _user(settings, "night@clinic.example", "--phone", "+16175550142")
    _user(settings, "backup@clinic.example")
    nobody = _run(settings, "oncall", "show")
    assert "NOBODY IS ON CALL" in nobody.output
    result = _run(
        settings,
        "oncall",
        "set",
        "--email",
        "Night@clinic.example",
        "--backup-email",
        "backup@clinic.example",
    )
    assert result.exit_code == 0, result.output
    assert result.output == "on call now: night@clinic.example (backup backup@clinic.example)\n"
    shown = json.loads(_run(settings, "oncall", "show", "--json").output)
    assert shown["source"] == "override"
    assert shown["primary"]["email"] == "night@clinic.example"
    assert shown["primary"]["sms"] is True
    assert shown["backup"]["sms"] is False
    cleared = _run(settings, "oncall", "set", "--clear")
    assert cleared.stdout == "override cleared\n"
    assert "WARNING: nobody is on call now" in cleared.stderr


@freeze_time(NOW)  # Thursday 02:00 in New York
def test_weekly_shifts_from_the_cli_follow_the_clinic_time_zone(settings: Settings) -> None:
    _user(settings, "night@clinic.example")
    added = _run(
        settings,
        "oncall",
        "shift-add",
        "--day",
        "2",
        "--start",
        "20:00",
        "--end",
        "08:00",
        "--email",
        "night@clinic.example",
    )
    assert added.exit_code == 0, added.output
    shown = _run(settings, "oncall", "show")
    assert "on call: night@clinic.example (weekly shift)" in shown.output
    assert "#1 Wednesday 20:00-08:00 night@clinic.example" in shown.output
    assert _run(settings, "oncall", "shift-delete", "1").exit_code == 0
    missing = _run(settings, "oncall", "shift-delete", "1")
    assert (missing.exit_code, missing.stderr) == (2, "error: no shift #1\n")


def test_oncall_set_names_each_problem_and_exits_2(settings: Settings) -> None:
    both = _run(settings, "oncall", "set")
    assert (both.exit_code, both.stderr) == (
        2,
        "error: give --email (and optionally --backup-email), or --clear\n",
    )
    unknown = _run(settings, "oncall", "set", "--email", "nobody@clinic.example")
    assert (unknown.exit_code, unknown.stderr) == (
        2,
        "error: email: no staff account nobody@clinic.example\n",
    )
    bad_time = _run(
        settings,
        "oncall",
        "shift-add",
        "--day",
        "1",
        "--start",
        "25:00",
        "--end",
        "08:00",
        "--email",
        "x@clinic.example",
    )
    assert (bad_time.exit_code, bad_time.stderr) == (
        2,
        "error: start: '25:00' is not a time such as 08:00\n",
    )


def test_the_tick_sends_the_page_nobody_sent_and_alerts_json_lists_it_with_its_ack(
    settings: Settings, runtime: Runtime, session: Session
) -> None:
    now = dt.datetime.fromisoformat(NOW)
    _user(settings, "night@clinic.example", "--phone", "+16175550142")
    _run(settings, "oncall", "set", "--email", "night@clinic.example")
    patient = make_patient(session)
    with runtime.session_factory() as s:
        # Raised by a web process that died before its pager ran.
        alert = raise_alert(
            s,
            patient_id=patient.id,
            kind=AlertKind.RED_FLAG,
            severity=AlertSeverity.URGENT,
            detail="x",
            now=now,
        )
        s.commit()
        alert_id = alert.id
    summary = run_clock_tick(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
    )
    assert "paged=1 page_failures=0 page_retries=0" in summary.as_text()
    with runtime.session_factory() as s:
        assert handle_staff_sms(s, "+16175550142", "ACK", now) is not None
        s.commit()
    listed = _run(settings, "alerts", "--status", "all", "--json")
    assert listed.exit_code == 0, listed.output
    [item] = json.loads(listed.output)["alerts"]
    assert item["id"] == alert_id
    assert item["status"] == "acknowledged"
    assert item["acknowledged_by"] == "night"
    [page] = item["pages"]
    assert (page["channel"], page["state"], page["recipient"], page["attempt"]) == (
        "sms",
        "sent",
        "night",
        0,
    )
    assert json.loads(_run(settings, "alerts", "--json").output)["alerts"] == []
    with runtime.session_factory() as s:
        reads = s.scalars(select(AuditEntry).where(AuditEntry.action == "cli.alerts")).all()
        assert [r.patient_id for r in reads] == [patient.id]
        assert s.get(Alert, alert_id) is not None
        assert len(s.scalars(select(Page)).all()) == 1
