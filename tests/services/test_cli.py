"""The `coachbot` console script: bad input is refused with one clear message, a non-zero
exit, and nothing written."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.cli import main
from coachbot.db import make_engine
from coachbot.models import AuditEntry, OutboundMessage, Patient, StaffUser
from coachbot.settings import Settings


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "SMS_BACKEND": "console",
        "CLINIC_NAME": settings.clinic_name,
        "CLINIC_PHONE": settings.clinic_phone,
        **extra,
    }


def _run(settings: Settings, *args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=_env(settings, **env))


def _counts(settings: Settings) -> tuple[int, int, int]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        counts = (
            s.scalar(select(func.count(Patient.id))) or 0,
            s.scalar(select(func.count(OutboundMessage.id))) or 0,
            s.scalar(select(func.count(AuditEntry.id))) or 0,
        )
    engine.dispose()
    return counts


ENROLL = ["enroll", "--first-name", "Ana", "--phone", "+16175550177", "--tz", "America/Chicago"]


@freeze_time("2026-11-23T18:00:00Z")  # noon in Chicago: inside the send window
def test_enroll_prints_the_new_patient_id_and_texts_the_welcome(settings: Settings) -> None:
    result = _run(settings, *ENROLL, "--tracks", "sleep,diet", "--times", "09:15")
    assert result.exit_code == 0, result.output
    patient_id = int(result.output.strip())
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        patient = s.get_one(Patient, patient_id)
        assert patient.phone_e164 == "+16175550177"
        assert sorted(sch.track for sch in patient.schedules) == ["diet", "sleep"]
        assert {sch.local_times for sch in patient.schedules} == {"09:15"}
        (welcome,) = s.scalars(select(OutboundMessage)).all()
        assert welcome.to_e164 == "+16175550177"
    engine.dispose()


@freeze_time("2026-11-24T05:00:00Z")  # 23:00 in Chicago: outside the send window
def test_enroll_at_night_holds_the_welcome_and_says_when_it_goes(settings: Settings) -> None:
    result = _run(settings, *ENROLL, "--tracks", "sleep", "--times", "09:15")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().isdigit()  # scripts still read the id alone
    assert "The welcome text will go at 08:00 their time" in result.stderr
    assert _counts(settings)[1] == 0  # nothing texted yet


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--phone", "+18005550100"], "phone: '+18005550100' is not a mobile number"),
        (["--phone", "12345"], "phone:"),
        (["--tz", "Mars/Olympus_Mons"], "timezone: 'Mars/Olympus_Mons' is not an IANA time zone"),
        (["--tracks", "sleep,yoga"], "tracks: unknown track 'yoga'"),
        (["--times", "25:00"], "times:"),
        (["--language", "fr"], "language: 'fr' is not supported"),
        (["--clinician", "nobody@example.org"], "clinician: no clinician account"),
    ],
)
def test_bad_enrolment_input_is_refused_and_nothing_is_written(
    settings: Settings, change: list[str], message: str
) -> None:
    args = list(ENROLL)
    for flag, value in zip(change[::2], change[1::2], strict=True):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    result = _run(settings, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert _counts(settings) == (0, 0, 0)


def test_a_number_already_enrolled_is_refused(settings: Settings) -> None:
    assert _run(settings, *ENROLL).exit_code == 0
    again = _run(settings, *ENROLL)
    assert again.exit_code == 2
    assert "phone: this number is already enrolled" in again.output
    assert _counts(settings)[0] == 1


def test_a_malformed_database_url_is_named_and_exits_non_zero(settings: Settings) -> None:
    result = _run(settings, *ENROLL, DATABASE_URL="not-a-url")
    assert result.exit_code == 2
    assert "DATABASE_URL: not a database URL" in result.output


def test_tick_refuses_an_instant_without_an_offset(settings: Settings) -> None:
    result = _run(settings, "tick", "--now", "2026-11-23T08:30:00")
    assert result.exit_code == 2
    assert "has no UTC offset" in result.output


def test_create_user_reads_the_password_from_the_environment(settings: Settings) -> None:
    result = _run(
        settings,
        "create-user",
        "--email",
        "Dr.Lee@Clinic.example",
        "--role",
        "clinician",
        COACHBOT_PASSWORD="a-long-enough-password",
    )
    assert result.exit_code == 0, result.output
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        user = s.scalars(select(StaffUser)).one()
        assert user.email == "dr.lee@clinic.example"
        assert user.password_hash.startswith("$argon2id$")
    engine.dispose()


def test_create_user_refuses_a_short_password(settings: Settings) -> None:
    result = _run(
        settings,
        "create-user",
        "--email",
        "a@b.example",
        "--role",
        "operator",
        COACHBOT_PASSWORD="short",
    )
    assert result.exit_code == 2
    assert "password: at least 12 characters" in result.output


def test_adherence_for_an_unknown_patient_is_an_error(settings: Settings) -> None:
    result = _run(settings, "adherence", "--patient", "999", "--json")
    assert result.exit_code == 2
    assert "no patient with id 999" in result.output


def test_demo_seed_is_idempotent(settings: Settings) -> None:
    """The full 90-day seed is played by tests/e2e/test_readme_screenshots.py through this
    same command; here one pending patient stands in for the cast, so the second run's
    answer is checked without playing 90 days twice."""
    from coachbot.runtime import build_runtime
    from coachbot.services.demo import seed_demo
    from coachbot.services.demo_cast import CAST

    runtime = build_runtime(settings)
    pending = tuple(p for p in CAST if p.first_name == "Iris")
    with freeze_time("2026-11-23T18:00:00Z"):
        seed_demo(
            runtime.session_factory,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC),
            pending,
        )
    runtime.close()
    before = _counts(settings)
    second = _run(settings, "demo-seed")
    assert second.exit_code == 0, second.output
    assert "demo data already there (1 patients)" in second.output
    assert _counts(settings) == before


def test_demo_seed_is_refused_in_production(settings: Settings) -> None:
    result = _run(
        settings,
        "demo-seed",
        COACHBOT_ENV="production",
        SECRET_KEY="x" * 48,
        PUBLIC_BASE_URL="https://coach.example.org",
        TWILIO_AUTH_TOKEN="token",
        DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none",
    )
    assert result.exit_code == 2
    assert "demo data is refused in production" in result.output


def test_the_console_script_is_installed_and_migrates_a_fresh_database(tmp_path: Path) -> None:
    """Runs the real entry point, as `make run` and the Procfile's release step do."""
    script = Path(sys.executable).with_name("coachbot")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    done = subprocess.run(
        [str(script), "db", "upgrade"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "database at head" in done.stdout
