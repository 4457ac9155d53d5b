"""Settings fail fast and name every bad variable at once."""

from __future__ import annotations

import pytest

from coachbot.settings import DEFAULT_DATABASE_URL, Settings, SettingsError


def test_an_empty_environment_runs_with_sqlite_and_the_console_backend() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.sms_backend == "console"
    assert settings.env == "development"


def test_postgresql_urls_are_normalised_to_the_psycopg_driver() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@db:5432/coach"})
    assert settings.database_url == "postgresql+psycopg://u@db:5432/coach"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"DATABASE_URL": "not a url at all"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"COACHBOT_ENV": "staging"}, "COACHBOT_ENV"),
        ({"SMS_BACKEND": "carrier-pigeon"}, "SMS_BACKEND"),
        ({"SMS_BACKEND": "twilio"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "XX123"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_FROM_NUMBER": "555-1234"}, "TWILIO_FROM_NUMBER"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "AB12"}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_API_BASE_URL": "ftp://x"}, "TWILIO_API_BASE_URL"),
        ({"PUBLIC_BASE_URL": "coach.example.org"}, "PUBLIC_BASE_URL"),
        ({"CLINIC_PHONE": "call us"}, "CLINIC_PHONE"),
        ({"TICK_SECONDS": "0"}, "TICK_SECONDS"),
        ({"TWILIO_TIMEOUT_SECONDS": "forever"}, "TWILIO_TIMEOUT_SECONDS"),
    ],
)
def test_each_bad_variable_is_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert any(p.startswith(named) for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_together() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DATABASE_URL": "nope", "SMS_BACKEND": "x", "CLINIC_PHONE": "y"})
    assert len(caught.value.problems) == 3
    assert "DATABASE_URL" in str(caught.value)
    assert "CLINIC_PHONE" in str(caught.value)


def test_production_refuses_default_secret_debug_sqlite_and_plain_http() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"COACHBOT_ENV": "production", "FLASK_DEBUG": "1"})
    text = str(caught.value)
    for name in (
        "SECRET_KEY",
        "FLASK_DEBUG",
        "DATABASE_URL",
        "PUBLIC_BASE_URL",
        "TWILIO_AUTH_TOKEN",
        "CLINIC_NAME",
    ):
        assert name in text


def test_a_complete_production_environment_is_accepted() -> None:
    settings = Settings.from_env(
        {
            "COACHBOT_ENV": "production",
            "SECRET_KEY": "x" * 48,
            "DATABASE_URL": "postgresql+psycopg://coach@db/coach",
            "PUBLIC_BASE_URL": "https://coach.example.org/",
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_MESSAGING_SERVICE_SID": "MG" + "2" * 32,
            "CLINIC_NAME": "Lakeside Neurology",
        }
    )
    assert settings.public_base_url == "https://coach.example.org"
    assert settings.sms_backend == "twilio"


def test_handwriting_samples_are_kept_under_media_dir() -> None:
    assert Settings.from_env({}).media_dir == "instance/media"
    assert Settings.from_env({"MEDIA_DIR": " /var/lib/coachbot/media "}).media_dir == (
        "/var/lib/coachbot/media"
    )
