"""The paging settings read from the environment: defaults, and one clear line per bad value."""

from __future__ import annotations

import pytest

from coachbot.settings import Settings, SettingsError


def test_paging_defaults_page_every_five_minutes_and_the_backup_at_fifteen() -> None:
    settings = Settings.from_env({})
    assert (settings.paging_repage_minutes, settings.paging_backup_minutes) == (5.0, 15.0)
    assert (settings.smtp_url, settings.clinic_timezone, settings.pager_enabled) == (
        None,
        "UTC",
        True,
    )


def test_paging_values_from_the_environment_are_kept() -> None:
    settings = Settings.from_env(
        {
            "SMTP_URL": "smtp+starttls://pager:secret@mail.example.org:587",
            "PAGING_FROM_EMAIL": "pager@clinic.example",
            "PAGING_REPAGE_MINUTES": "2.5",
            "PAGING_BACKUP_MINUTES": "10",
            "CLINIC_TIMEZONE": "Europe/London",
            "PAGER_ENABLED": "0",
        }
    )
    assert settings.smtp_url == "smtp+starttls://pager:secret@mail.example.org:587"
    assert (settings.paging_repage_minutes, settings.paging_backup_minutes) == (2.5, 10.0)
    assert (settings.clinic_timezone, settings.pager_enabled) == ("Europe/London", False)


def test_every_bad_paging_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "SMTP_URL": "http://mail.example.org",
                "PAGING_FROM_EMAIL": "pager",
                "PAGING_REPAGE_MINUTES": "0",
                "PAGING_BACKUP_MINUTES": "soon",
                "CLINIC_TIMEZONE": "Mars/Olympus",
            }
        )
    assert caught.value.problems == [
        "SMTP_URL: must be smtp://host:port or smtp+starttls://host:port",
        "PAGING_FROM_EMAIL: must be an e-mail address",
        "PAGING_REPAGE_MINUTES: must be a number of minutes between 0.1 and 1440",
        "PAGING_BACKUP_MINUTES: must be a number of minutes between 0.1 and 1440",
        "CLINIC_TIMEZONE: unknown IANA time zone 'Mars/Olympus'",
    ]
