import logging
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from coachbot.content import (
    MessageLibrary,
    TemplateError,
    load_library,
    pick_variant,
)
from coachbot.content.library import DEFAULT_TEMPLATES_DIR, TEMPLATES_DIR_ENV
from tests.unit.template_builders import make_template, write_templates

TRACKS = ("sleep", "exercise", "diet", "mindfulness", "rehab")

CAREGIVER_IDS = {
    "caregiver.welcome",
    "caregiver.optin_confirmed",
    "caregiver.check",
    "caregiver.check_followup",
    "caregiver.seen_today",
    "caregiver.which_person",
    "caregiver.ack_ok",
    "caregiver.ack_concern",
    "caregiver.not_understood",
}
# The ids the rest of coachbot calls; renaming one breaks a caller.
CONTRACT_IDS = {
    *(f"nudge.{track}" for track in TRACKS),
    "nudge.checkin",
    *(f"tip.{track}" for track in TRACKS),
    *(f"followup.{track}" for track in TRACKS),
    "welcome",
    "optin_confirmed",
    "help",
    "stop_confirmation",
    "start_confirmation",
    "ack.done",
    "ack.skip",
    "ack.value",
    "ack.typo_done",
    "ack.free_text",
    "streak",
    "reengage",
    "red_flag",
    "crisis",
    "crisis_no_line",
    "unknown_sender",
    "revocation_paused",
    "not_understood",
    *CAREGIVER_IDS,
    # A handwriting sample's answers (services/media_samples.py, services/media_fetch.py).
    "media.thanks",
    "media.refused",
}

PATIENT = {
    "first_name": "Maria",
    "homework": "your home exercises",
    "clinic_name": "Lakeside Clinic",
    "clinic_phone": "+1 555 010 0100",
    "streak": 3,
}


@pytest.fixture(scope="module")
def library() -> MessageLibrary:
    return load_library()


def test_every_contract_id_exists_in_english_and_spanish(library: MessageLibrary) -> None:
    assert set(library.template_ids()) == CONTRACT_IDS
    assert library.languages() == ["en", "es"]
    for template_id in CONTRACT_IDS:
        assert library.has_template(template_id, "en")
        assert library.has_template(template_id, "es")


def test_render_fills_declared_variables_and_counts_segments(library: MessageLibrary) -> None:
    message = library.render("nudge.rehab", "en", PATIENT, seed="p1:2025-03-01")
    assert message.template_id == "nudge.rehab"
    assert message.language == "en"
    assert message.variant_id in library.variant_ids("nudge.rehab", "en")
    assert "Maria" in message.body
    assert "your home exercises" in message.body
    assert "{{" not in message.body
    assert message.segments.segments == 1
    assert message.segments.encoding == "GSM-7"


def test_rendered_body_has_whitespace_collapsed(library: MessageLibrary) -> None:
    message = library.render("help", "en", PATIENT)
    assert message.body == message.body.strip()
    assert "  " not in message.body
    assert "\n" not in message.body


def test_streak_renders_number_passed_as_int(library: MessageLibrary) -> None:
    message = library.render("streak", "en", {**PATIENT, "streak": 12})
    assert "12" in message.body


def test_red_flag_is_fixed_text_naming_the_clinic_and_the_countrys_emergency_number(
    library: MessageLibrary,
) -> None:
    for language in ("en", "es"):
        assert len(library.variant_ids("red_flag", language)) == 1
        gb = library.render("red_flag", language, {**PATIENT, "emergency_number": "999"}).body
        assert "+1 555 010 0100" in gb
        assert "999" in gb
        assert "911" not in gb
        # Also sent to numbers we do not know: no name in it.
        assert "Maria" not in gb


def test_crisis_reply_names_the_crisis_line_and_the_emergency_number(
    library: MessageLibrary,
) -> None:
    uk = {"emergency_number": "999", "crisis_line": "116 123"}
    for language in ("en", "es"):
        body = library.render("crisis", language, uk).body
        assert ("116 123" in body, "999" in body) == (True, True)
        no_line = library.render("crisis_no_line", language, {**PATIENT, "emergency_number": "112"})
        assert ("112" in no_line.body, "+1 555 010 0100" in no_line.body) == (True, True)
        for message in (library.render("crisis", language, uk), no_line):
            assert message.segments.segments <= 2


def test_free_text_ack_says_who_reads_it_and_how_to_reach_them(library: MessageLibrary) -> None:
    en = library.render("ack.free_text", "en", PATIENT).body
    assert en == (
        "Thanks, Maria. Your care team will read this during clinic hours. "
        "If it's urgent, call +1 555 010 0100."
    )
    assert "+1 555 010 0100" in library.render("ack.free_text", "es", PATIENT).body


def test_checkin_numbers_the_seven_symptoms_in_order(library: MessageLibrary) -> None:
    for variant_id in library.variant_ids("nudge.checkin", "en"):
        body = library.render_variant("nudge.checkin", "en", variant_id, PATIENT).body
        positions = [
            body.index(f"{n} {symptom}")
            for n, symptom in enumerate(
                [
                    "confusion",
                    "trouble finding words",
                    "changes in handwriting",
                    "shaking or seizures",
                    "severe headache",
                    "weakness",
                    "falls",
                ],
                start=1,
            )
        ]
        assert positions == sorted(positions)
        assert "Reply 0 if none" in body


def test_variable_outside_allowlist_is_refused(library: MessageLibrary) -> None:
    with pytest.raises(TemplateError, match="phone_number"):
        library.render("ack.done", "en", {"first_name": "Maria", "phone_number": "+15550100"})


def test_allowlisted_variable_the_template_does_not_declare_is_not_offered(
    tmp_path: Path,
) -> None:
    lib = load_library(
        write_templates(
            tmp_path,
            make_template(
                variables=("first_name",),
                en=[{"id": "a-01", "body": "{{ first_name }} {{ clinic_name }}"}],
            ),
        )
    )
    with pytest.raises(TemplateError, match="clinic_name"):
        lib.render("ack.done", "en", {"first_name": "Maria", "clinic_name": "Lakeside"})


@pytest.mark.parametrize(
    "body",
    [
        "{{ patient.phone }}",
        "{{ ''.__class__ }}",
        "{{ first_name.__class__.__mro__ }}",
        "{{ first_name.secret }}",
        "{{ range(3) }}",
    ],
)
def test_template_cannot_reach_beyond_its_string_variables(tmp_path: Path, body: str) -> None:
    lib = load_library(write_templates(tmp_path, make_template(en=[{"id": "a-01", "body": body}])))

    class Patient:
        secret = "diagnosis"

        def __str__(self) -> str:
            return "Maria"

    with pytest.raises(TemplateError) as caught:
        lib.render("ack.done", "en", {"first_name": Patient()})
    assert "diagnosis" not in str(caught.value)


def test_declared_variable_left_out_fails_under_strict_undefined(
    library: MessageLibrary,
) -> None:
    with pytest.raises(TemplateError, match="homework"):
        library.render("nudge.rehab", "en", {"first_name": "Maria"})


def test_missing_spanish_falls_back_to_english_and_logs_without_body(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib = load_library(write_templates(tmp_path, make_template(languages=("en",))))
    with caplog.at_level(logging.WARNING, logger="coachbot.content.library"):
        message = lib.render("ack.done", "es", {"first_name": "Maria"})
    assert message.language == "en"
    assert message.body == "Nice, Maria."
    [record] = caplog.records
    assert record.name == "coachbot.content.library"
    assert "ack.done" in record.getMessage()
    assert "Maria" not in record.getMessage()


def test_unknown_language_falls_back_to_english(library: MessageLibrary) -> None:
    assert library.render("ack.done", "fr", PATIENT).language == "en"


def test_regional_language_tag_uses_the_base_language(
    library: MessageLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert library.render("ack.done", "es-MX", PATIENT).language == "es"
    assert caplog.records == []


def test_unknown_template_id_is_an_error(library: MessageLibrary) -> None:
    with pytest.raises(TemplateError, match=r"nudge\.nap"):
        library.render("nudge.nap", "en", PATIENT)


def test_same_seed_picks_same_variant(library: MessageLibrary) -> None:
    picks = {
        library.render("nudge.sleep", "en", PATIENT, seed="42:2025-03-01").variant_id
        for _ in range(5)
    }
    assert len(picks) == 1


def test_different_seeds_spread_over_all_variants(library: MessageLibrary) -> None:
    variant_ids = library.variant_ids("nudge.diet", "en")
    picks = {pick_variant(variant_ids, f"patient-{n}:2025-03-01") for n in range(200)}
    assert picks == set(variant_ids)


def test_pick_variant_skips_avoided_ids() -> None:
    assert pick_variant(["a", "b", "c"], "seed", avoid={"a", "c"}) == "b"


def test_pick_variant_falls_back_to_all_when_everything_is_avoided() -> None:
    assert pick_variant(["a", "b"], "seed", avoid={"a", "b"}) in {"a", "b"}


def test_pick_variant_needs_at_least_one_variant() -> None:
    with pytest.raises(TemplateError):
        pick_variant([], "seed")


def test_pick_variant_is_stable_across_processes() -> None:
    """Python's hash() is salted per process; the choice must not be."""
    code = (
        "from coachbot.content import pick_variant;"
        "print([pick_variant(list('abcdefgh'), f'p:{n}') for n in range(20)])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1


@pytest.mark.parametrize(
    "template_id", [f"nudge.{t}" for t in TRACKS] + [f"tip.{t}" for t in TRACKS]
)
@pytest.mark.parametrize("language", ["en", "es"])
def test_one_message_a_day_never_repeats_within_seven_days(
    library: MessageLibrary, template_id: str, language: str
) -> None:
    start = date(2025, 1, 1)
    for patient_id in range(1, 6):
        history: list[str] = []
        for offset in range(60):
            day = start + timedelta(days=offset)
            recent = history[-7:]
            message = library.render(
                template_id, language, PATIENT, seed=f"{patient_id}:{day}", avoid=recent
            )
            assert message.variant_id not in recent
            history.append(message.variant_id)


def test_variant_ids_are_unique_across_the_library(library: MessageLibrary) -> None:
    for language in library.languages():
        ids = [
            variant_id
            for template_id in library.template_ids()
            for variant_id in library.variant_ids(template_id, language)
        ]
        assert len(ids) == len(set(ids))


def test_default_library_is_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEMPLATES_DIR_ENV, raising=False)
    assert load_library() is load_library()
    assert DEFAULT_TEMPLATES_DIR.name == "message_templates"


def test_env_var_points_the_default_load_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_templates(tmp_path, make_template(languages=("en",)))
    monkeypatch.setenv(TEMPLATES_DIR_ENV, str(tmp_path))
    assert load_library().template_ids() == ["ack.done"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({**make_template(), "kind": "shout"}, r"t\.yaml: templates\[0\] \(ack\.done\)\.kind"),
        ({**make_template(), "colour": "red"}, r"t\.yaml: .*\.colour: unknown field"),
        (
            {k: v for k, v in make_template().items() if k != "max_segments"},
            r"\.max_segments: required",
        ),
        ({**make_template(), "track": "naps"}, r"\.track"),
        (
            make_template(en=[{"id": "a-01", "body": "{{ first_name"}]),
            r"variants\.en\[0\]\.body: template syntax error",
        ),
        (make_template(en=[{"id": "a-01", "body": "  "}]), r"variants\.en\[0\]\.body"),
        (
            make_template(en=[{"id": "a-01", "body": "x", "allow_ucs2": "yes"}]),
            r"variants\.en\[0\]\.allow_ucs2",
        ),
        (make_template(en=[{"id": "A 01", "body": "x"}]), r"variants\.en\[0\]\.id"),
        (
            make_template(en=[{"id": "a-01", "body": "x"}, {"id": "a-01", "body": "y"}]),
            r"variants\.en\[1\]\.id: .*'a-01' is already used by ack\.done",
        ),
    ],
)
def test_malformed_template_names_file_and_field(
    tmp_path: Path, template: dict[str, object], expected: str
) -> None:
    write_templates(tmp_path, template)
    with pytest.raises(TemplateError, match=expected):
        load_library(tmp_path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("templates: [\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"broken\.yaml: invalid YAML"):
        load_library(tmp_path)


def test_template_id_defined_twice_names_both_files(tmp_path: Path) -> None:
    write_templates(tmp_path, make_template(), name="a.yaml")
    write_templates(tmp_path, make_template(), name="b.yaml")
    with pytest.raises(TemplateError, match=r"b\.yaml: .*duplicate of the template in a\.yaml"):
        load_library(tmp_path)


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        load_library(tmp_path / "nope")
