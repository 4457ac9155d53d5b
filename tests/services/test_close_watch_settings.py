"""A programme's close-watch settings are versioned like its tracks: saved as a new version,
kept by a track edit, brought back by a restore, copied into a new programme; an edit whose
items would name a diagnosis or push the check past two texts is refused by field."""

from __future__ import annotations

import datetime as dt

import pytest

from coachbot.content import load_library
from coachbot.domain import close_watch
from coachbot.runtime import Runtime
from coachbot.services import program_edits, programs
from coachbot.services.errors import ValidationFailed
from coachbot.services.track_settings import validate_close_watch

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "days": "21",
        "check_time": "17:00",
        "followup_after_hours": "2",
        "seen_today_time": "19:30",
        "items_en": "say the year\nwrite one sentence",
        "items_es": "decir el ano\nescribir una frase",
    }
    form.update(overrides)
    return form


def _view(runtime: Runtime, name: str = "standard") -> programs.ProgramView:
    with runtime.read_session_factory() as session:
        return programs.show_program(session, name)


def test_saved_kept_by_a_track_edit_restored_and_copied(runtime: Runtime) -> None:
    sessions = runtime.session_factory
    assert _view(runtime).close_watch == close_watch.DEFAULTS
    proposed = validate_close_watch(load_library(), **_form())
    result = program_edits.save_close_watch(
        sessions, "standard", proposed, base_version=1, actor="test", now=NOW
    )
    assert result.version == 2
    assert _view(runtime).close_watch == proposed
    with sessions() as session:
        sleep = program_edits.propose_track(session, "standard", "sleep", times="09:00")
    program_edits.save_track(sessions, "standard", sleep, base_version=2, actor="t", now=NOW)
    assert _view(runtime).close_watch == proposed  # a track edit keeps it
    program_edits.restore_version(sessions, "standard", 1, base_version=3, actor="t", now=NOW)
    assert _view(runtime).close_watch == close_watch.DEFAULTS  # v1 had none: the defaults
    program_edits.restore_version(sessions, "standard", 2, base_version=4, actor="t", now=NOW)
    program_edits.create_program(sessions, "trial", actor="t", now=NOW)
    assert _view(runtime, "trial").close_watch == proposed


def test_an_unchanged_save_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ValidationFailed) as caught:
        program_edits.save_close_watch(
            runtime.session_factory,
            "standard",
            close_watch.DEFAULTS,
            base_version=1,
            actor="t",
            now=NOW,
        )
    assert set(caught.value.errors) == {"close_watch"}


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"items_en": "any sign of ICANS today"}, "items_en", "diagnosis"),
        (
            {"items_es": "\n".join(["contar hacia atras desde cien de siete en siete"] * 6)},
            "items_es",
            "segments",
        ),
        ({"check_time": "7pm"}, "check_time", "HH:MM"),
    ],
)
def test_a_refused_edit_names_the_field(overrides: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_close_watch(load_library(), **_form(**overrides))
    assert set(caught.value.errors) == {field}
    assert words in caught.value.errors[field]
