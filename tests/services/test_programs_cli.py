"""`coachbot program ...` and `coachbot settings ...`: the console's changes from a terminal,
with the same validation, versions and stale-version refusal as the web."""

from __future__ import annotations

from typing import Any

import click
from click.testing import CliRunner, Result

from coachbot.cli.program import program, settings
from coachbot.runtime import Runtime
from tests.support.builders import make_patient


@click.group()
def cli() -> None:
    """Stands in for `coachbot` until the lead registers the two groups there."""


cli.add_command(program)
cli.add_command(settings)


def _run(runtime: Runtime, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=runtime)


def test_edit_preview_history_and_restore_from_the_terminal(runtime: Runtime, session: Any) -> None:
    patient = make_patient(session)
    preview = _run(
        runtime,
        "program", "preview", "standard", "--track", "sleep", "--times", "09:15",
        "--now", "2026-11-23T12:00:00Z",
    )  # fmt: skip
    assert preview.exit_code == 0, preview.output
    assert "times: 08:30 -> 09:15" in preview.output
    assert f"patient {patient.id} (America/New_York): Mon 08:30" in preview.output
    assert "-> Mon 09:15" in preview.output

    edited = _run(
        runtime,
        "program", "edit", "standard", "--track", "sleep", "--times", "09:15",
        "--base-version", "1",
    )  # fmt: skip
    assert edited.exit_code == 0, edited.output
    assert "standard v2 saved; 1 schedules follow it" in edited.output

    stale = _run(
        runtime,
        "program", "edit", "standard", "--track", "sleep", "--times", "10:00",
        "--base-version", "1",
    )  # fmt: skip
    assert stale.exit_code == 2
    assert "error: version:" in stale.output

    restored = _run(runtime, "program", "restore", "standard", "1", "--base-version", "2")
    assert restored.exit_code == 0, restored.output
    history = _run(runtime, "program", "history", "standard").output.splitlines()
    assert [line.split()[0] for line in history] == ["v3", "v2", "v1"]
    assert "restored v1" in history[0]
    shown = _run(runtime, "program", "show", "standard").output
    assert "sleep        times=08:30" in shown
    assert "standard v3" in _run(runtime, "program", "list").output


def test_invalid_cli_edits_name_the_field_and_save_nothing(runtime: Runtime) -> None:
    for args, field in (
        (("--track", "yoga", "--times", "09:00"), "track"),
        (("--track", "sleep", "--times", "05:00"), "times"),
        (("--track", "sleep", "--times", "09:00,12:00"), "reply_window_minutes"),
    ):
        answer = _run(runtime, "program", "edit", "standard", *args, "--base-version", "1")
        assert answer.exit_code == 2
        assert f"error: {field}:" in answer.output
    assert len(_run(runtime, "program", "history", "standard").output.splitlines()) == 1


def test_settings_show_and_set_all_or_nothing(runtime: Runtime) -> None:
    assert "window_start=08:00" in _run(runtime, "settings", "show").output
    bad = _run(runtime, "settings", "set", "--window-start", "09:00", "--daily-cap", "0")
    assert bad.exit_code == 2
    assert "error: daily_cap:" in bad.output
    assert "window_start=08:00" in _run(runtime, "settings", "show").output
    good = _run(
        runtime,
        "settings", "set", "--window-start", "09:00", "--stale-limit", "45",
        "--segments-per-second", "3",
    )  # fmt: skip
    assert good.exit_code == 0, good.output
    assert "window_start=09:00" in good.output
    assert "stale_limit_minutes=45" in good.output
    assert "segments_per_second=3" in good.output
    cleared = _run(runtime, "settings", "set", "--stale-limit", "none")
    assert "stale_limit_minutes=per-track" in cleared.output


def test_close_watch_from_the_terminal_saves_and_names_a_wrong_option(runtime: Runtime) -> None:
    saved = _run(
        runtime,
        "program", "close-watch", "standard", "--base-version", "1", "--check-time", "17:15",
        "--item-en", "say what day it is", "--item-en", "write their name",
    )  # fmt: skip
    assert saved.exit_code == 0, saved.output
    assert "standard v2 saved: close watch" in saved.output
    shown = _run(runtime, "program", "show", "standard")
    assert "close watch  days=28 check=17:15 followup=1h seen_today=19:00 items_en=2" in (
        shown.output
    )
    refused = _run(
        runtime, "program", "close-watch", "standard", "--base-version", "2", "--days", "120"
    )
    assert refused.exit_code == 2
    assert "error: days: must be between 1 and 90 days" in refused.output
