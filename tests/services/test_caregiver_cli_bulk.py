"""The caregiver and the close-watch weeks on the command line and in the bulk CSV: a good
entry is saved as the forms save it; a bad one is named (the flag, or the line and column),
the command exits non-zero, and nothing is written."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time
from sqlalchemy import func, select

from coachbot.cli import main
from coachbot.models import Caregiver, CaregiverLink, Patient
from coachbot.runtime import Runtime
from coachbot.services.bulk_enrollment import RowError, bulk_enroll
from coachbot.services.caregivers.records import caregiver_of
from coachbot.settings import Settings
from tests.support.builders import make_caregiver, make_patient
from tests.web.test_dashboard_support import make_staff

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # noon in Chicago
ENROLL = ["enroll", "--first-name", "Ana", "--phone", "+16175550501", "--tz", "America/Chicago"]
CAREGIVER = "+16175550511"


def _run(settings: Settings, *args: str) -> Result:
    env = {
        "DATABASE_URL": settings.database_url,
        "SMS_BACKEND": "console",
        "CLINIC_NAME": settings.clinic_name,
        "CLINIC_PHONE": settings.clinic_phone,
    }
    with freeze_time(NOW):
        return CliRunner().invoke(main, list(args), env=env)


def _counts(runtime: Runtime) -> tuple[int, int, int]:
    with runtime.read_session_factory() as s:
        return (
            s.scalar(select(func.count()).select_from(Patient)) or 0,
            s.scalar(select(func.count()).select_from(Caregiver)) or 0,
            s.scalar(select(func.count()).select_from(CaregiverLink)) or 0,
        )


def test_enroll_with_a_caregiver_and_a_close_watch(settings: Settings, runtime: Runtime) -> None:
    result = _run(
        settings,
        *ENROLL,
        "--caregiver",
        "617-555-0511",
        "--caregiver-name",
        "Sam",
        "--caregiver-language",
        "es",
        "--close-watch-from",
        "2026-11-24",
        "--close-watch-days",
        "21",
    )
    assert result.exit_code == 0, result.output
    patient_id = int(result.stdout.strip())
    with runtime.read_session_factory() as s:
        patient = s.get_one(Patient, patient_id)
        assert (patient.close_watch_from, patient.close_watch_days) == (dt.date(2026, 11, 24), 21)
        caregiver = caregiver_of(s, patient_id)
        assert caregiver is not None
        assert (caregiver.phone_e164, caregiver.first_name, caregiver.language) == (
            CAREGIVER,
            "Sam",
            "es",
        )
        assert (caregiver.status, caregiver.invite_due_at) == ("pending-consent", NOW)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--caregiver", CAREGIVER], "error: --caregiver-name: the caregiver's first name is"),
        (["--caregiver-name", "Sam"], "error: --caregiver: give the caregiver's mobile number"),
        (
            ["--caregiver", "+16175550501", "--caregiver-name", "Sam"],
            "error: --caregiver: the caregiver number must differ from the patient's",
        ),
        (
            ["--caregiver", CAREGIVER, "--caregiver-name", "Sam", "--caregiver-language", "de"],
            "error: --caregiver-language: 'de' is not supported",
        ),
        (["--close-watch-from", "24/11/2026"], "error: --close-watch-from: '24/11/2026' is not"),
        (
            ["--close-watch-from", "2026-11-24", "--close-watch-days", "0"],
            "error: --close-watch-days: from 1 to 90 days",
        ),
        (["--close-watch-days", "10"], "error: --close-watch-from: the first close-watch day"),
    ],
)
def test_bad_caregiver_or_close_watch_flags_are_named_and_nothing_is_written(
    settings: Settings, runtime: Runtime, extra: list[str], message: str
) -> None:
    result = _run(settings, *ENROLL, *extra)
    assert result.exit_code == 2
    assert message in result.stderr
    assert _counts(runtime) == (0, 0, 0)


def test_patient_caregiver_and_close_watch_commands(settings: Settings, runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        patient_id = make_patient(s, phone="+16175550502").id
    added = _run(
        settings, "patient", "caregiver", "--id", str(patient_id), "--caregiver", CAREGIVER,
        "--caregiver-name", "Sam",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert f"patient {patient_id}: caregiver_added" in added.output
    refused = _run(settings, "patient", "caregiver", "--id", str(patient_id), "--caregiver", "1")
    assert refused.exit_code == 2
    assert "error: --caregiver: '1' is not a phone number" in refused.stderr
    assert "error: --caregiver-name:" in refused.stderr
    watch = _run(
        settings, "patient", "close-watch", "--id", str(patient_id), "--close-watch-from",
        "2026-11-30", "--close-watch-days", "14",
    )  # fmt: skip
    assert watch.exit_code == 0, watch.output
    bad = _run(
        settings, "patient", "close-watch", "--id", str(patient_id), "--close-watch-from",
        "2026-11-30", "--close-watch-days", "100",
    )  # fmt: skip
    assert (bad.exit_code, bad.stderr.strip()) == (
        2,
        "error: --close-watch-days: from 1 to 90 days",
    )
    removed = _run(settings, "patient", "caregiver", "--id", str(patient_id), "--remove")
    assert f"patient {patient_id}: caregiver_removed" in removed.output
    with runtime.read_session_factory() as s:
        patient = s.get_one(Patient, patient_id)
        assert (patient.close_watch_from, patient.close_watch_days) == (dt.date(2026, 11, 30), 14)
    assert _counts(runtime) == (1, 0, 0)
    missing = _run(settings, "patient", "caregiver", "--id", "999", "--remove")
    assert (missing.exit_code, missing.stderr.strip()) == (2, "error: no patient with id 999")
    both = _run(settings, "patient", "close-watch", "--id", str(patient_id), "--clear",
                "--close-watch-from", "2026-11-30")  # fmt: skip
    assert both.exit_code == 2
    assert "give the first day, or --clear (not both)" in both.stderr


HEADER = (
    "first_name,phone,timezone,caregiver_phone,caregiver_name,caregiver_language,"
    "close_watch_from,close_watch_days\n"
)


def _bulk(runtime: Runtime, text: str) -> tuple[list[Patient], list[RowError]]:
    with runtime.session_factory() as s:
        make_staff(s, "ana@clinic.test")
    return bulk_enroll(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        text,
        clinician_email="ana@clinic.test",
        now=NOW,
        actor="staff:1",
    )


def test_a_bulk_file_with_one_caregiver_for_two_patients_makes_one_caregiver(
    runtime: Runtime,
) -> None:
    _patients, errors = _bulk(
        runtime,
        HEADER
        + f"Ana,+16175550501,America/Chicago,{CAREGIVER},Sam,es,2026-11-24,28\n"
        + f"Bo,+16175550502,America/Chicago,{CAREGIVER},Sam,,2026-11-25,\n"
        + "Cy,+16175550503,America/Chicago,,,,,\n",
    )
    assert errors == []
    assert _counts(runtime) == (3, 1, 2)
    with runtime.read_session_factory() as s:
        watches = [
            (p.first_name, p.close_watch_from, p.close_watch_days)
            for p in s.scalars(select(Patient).order_by(Patient.id))
        ]
        assert watches == [
            ("Ana", dt.date(2026, 11, 24), 28),
            ("Bo", dt.date(2026, 11, 25), None),
            ("Cy", None, None),
        ]
        caregiver = s.scalars(select(Caregiver)).one()
        assert (caregiver.language, caregiver.invite_due_at) == ("es", NOW)


def test_bad_bulk_rows_name_the_line_and_column_and_enrol_nobody(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        other = make_patient(s, first_name="Di", phone="+16175550509")
        make_caregiver(s, other, phone="+16175550519")
    patients, errors = _bulk(
        runtime,
        HEADER
        + f"Ana,+16175550501,America/Chicago,{CAREGIVER},,,,\n"
        + "Bo,+16175550502,America/Chicago,+16175550501,Sam,,2026-13-01,\n"
        + "Cy,+16175550503,America/Chicago,,,,2026-11-24,365\n"
        + "Ed,+16175550519,America/Chicago,,,,,\n"
        + "Fa,+16175550504,America/Chicago,+16175550509,Sam,fr,,\n",
    )
    assert patients == []
    assert [(e.line, e.field) for e in errors] == [
        (2, "caregiver_name"),
        (3, "caregiver_phone"),
        (3, "close_watch_from"),
        (4, "close_watch_days"),
        (5, "phone"),
        (6, "caregiver_language"),
        (6, "caregiver_phone"),
    ]
    assert errors[1].message == "the patient's own number on line 2"
    assert errors[4].message == "this number is a caregiver's"
    assert errors[6].message == "this number is a patient's own number"
    assert _counts(runtime) == (1, 1, 1)  # Di and her caregiver only
