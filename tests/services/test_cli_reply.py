"""`coachbot reply`: one text through the real inbound pipeline at a given instant, the reply
printed, so the README's loop runs from the shell on the same clock as `coachbot tick --now`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.cli.reply import reply_text
from coachbot.db import make_engine
from coachbot.models import InboundMessage
from coachbot.services.inbound import EMPTY_TWIML, twiml_message
from coachbot.settings import Settings
from tests.services.test_cli import _run

PHONE = "+16175550142"
ENROLL = [
    "enroll",
    *("--first-name", "Maya", "--phone", "(617) 555-0142", "--tz", "America/New_York"),
    *("--tracks", "sleep,exercise", "--times", "08:30"),
]
YES_AT = "2026-11-23T13:00:00Z"
TICK_AT = "2026-11-23T13:30:00Z"  # 08:30 in New York: both nudges go out


def _inbound(settings: Settings) -> list[InboundMessage]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = list(s.scalars(select(InboundMessage).order_by(InboundMessage.id)))
    engine.dispose()
    return rows


def _reply(settings: Settings, body: str, now: str | None = None, phone: str = PHONE) -> Result:
    return _run(
        settings, "reply", "--phone", phone, "--body", body, *(["--now", now] if now else [])
    )


def _enrol(settings: Settings) -> None:
    # Enrolment has no --now: the day before, 13:00 in New York, inside the send window.
    with freeze_time("2026-11-22T18:00:00Z"):
        enrolled = _run(settings, *ENROLL)
    assert enrolled.exit_code == 0, enrolled.output


def test_the_readme_loop_runs_from_the_shell_on_one_clock(settings: Settings) -> None:
    _enrol(settings)
    yes = _run(settings, "reply", "--phone", "(617) 555-0142", "--body", "YES", "--now", YES_AT)
    assert yes.exit_code == 0, yes.output
    assert "You're signed up" in yes.stdout
    tick = _run(settings, "tick", "--now", TICK_AT)
    assert tick.exit_code == 0, tick.output
    assert "sent=2" in tick.stdout

    done = _run(settings, "reply", "--phone", PHONE, "--body", "DONE", "--now", TICK_AT)
    assert done.exit_code == 0, done.output
    assert "Maya" in done.stdout

    adherence = _run(settings, "adherence", "--json", "--now", "2026-11-23T14:00:00Z")
    assert adherence.exit_code == 0, adherence.output
    (patient,) = json.loads(adherence.stdout)["patients"]
    sleep = next(t for t in patient["tracks"] if t["track"] == "sleep")
    assert (sleep["done"], sleep["last_reply_at"]) == (1, "2026-11-23T13:30:00+00:00")


def test_the_text_is_stored_as_received_at_the_given_instant_with_a_console_sid(
    settings: Settings,
) -> None:
    _enrol(settings)
    result = _run(settings, "reply", "--phone", PHONE, "--body", "YES", "--now", YES_AT)
    assert result.exit_code == 0, result.output
    (row,) = _inbound(settings)
    assert row.provider_sid.startswith("SMcli")
    assert (row.from_e164, row.body, row.received_at.isoformat()) == (
        PHONE,
        "YES",
        "2026-11-23T13:00:00+00:00",
    )
    assert row.to_e164 == settings.clinic_phone


def test_a_text_that_gets_no_answer_prints_no_reply(settings: Settings) -> None:
    _enrol(settings)
    assert (
        _run(settings, "reply", "--phone", PHONE, "--body", "STOP", "--now", YES_AT).exit_code == 0
    )
    # After STOP nothing but HELP and the keywords is answered.
    result = _run(settings, "reply", "--phone", PHONE, "--body", "hello", "--now", TICK_AT)
    assert result.exit_code == 0, result.output
    assert result.stdout == "(no reply)\n"


def test_a_bad_phone_is_named_and_nothing_is_stored(settings: Settings) -> None:
    result = _run(settings, "reply", "--phone", "12", "--body", "DONE")
    assert result.exit_code == 2
    assert "--phone: '12' is not a valid phone number" in result.output
    assert _inbound(settings) == []


def test_an_instant_without_an_offset_is_refused(settings: Settings) -> None:
    result = _run(
        settings, "reply", "--phone", PHONE, "--body", "DONE", "--now", "2026-11-23T08:30"
    )
    assert result.exit_code == 2
    assert "has no UTC offset" in result.output
    assert _inbound(settings) == []


def test_a_database_that_cannot_take_the_text_is_an_error_not_no_reply(
    settings: Settings, tmp_path: Path
) -> None:
    result = _run(
        settings,
        "reply",
        "--phone",
        PHONE,
        "--body",
        "DONE",
        DATABASE_URL=f"sqlite:///{tmp_path}/empty.db",
    )
    assert result.exit_code == 2
    assert "(no reply)" not in result.stdout
    assert "not migrated" in result.output


def test_reply_text_reads_the_message_out_of_the_twiml() -> None:
    assert reply_text(twiml_message("Thanks & well done <3")) == "Thanks & well done <3"
    assert reply_text(EMPTY_TWIML) is None
    assert reply_text(twiml_message("")) is None


def test_each_call_is_a_new_message_with_its_own_sid(settings: Settings) -> None:
    # Each call is a new message (its own sid), as two texts from a phone would be.
    _enrol(settings)
    for _ in range(2):
        assert _run(settings, "reply", "--phone", PHONE, "--body", "hi").exit_code == 0
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        sids = s.scalar(select(func.count(func.distinct(InboundMessage.provider_sid))))
    engine.dispose()
    assert sids == 2
