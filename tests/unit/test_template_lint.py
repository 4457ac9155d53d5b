import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from coachbot.content import LintProblem, lint_library, load_library
from coachbot.content.cli import templates
from coachbot.content.library import DEFAULT_TEMPLATES_DIR
from tests.unit.template_builders import make_template, write_templates

SEED_TEXT = DEFAULT_TEMPLATES_DIR.parents[1] / "shared" / "seed" / "neurotoxicity-recovery.txt"


def lint_dir(directory: Path, *templates_: dict[str, Any]) -> list[LintProblem]:
    return lint_library(load_library(write_templates(directory, *templates_)))


def rules(problems: list[LintProblem]) -> set[str]:
    return {problem.rule for problem in problems}


def variants(prefix: str, count: int, body: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{n:02}", "body": body} for n in range(1, count + 1)]


def test_bundled_library_lints_clean() -> None:
    assert [str(p) for p in lint_library(load_library())] == []


def test_every_tip_quotes_the_seed_text_verbatim() -> None:
    if not SEED_TEXT.exists():
        pytest.skip(f"seed text not checked out beside the repository at {SEED_TEXT}")
    seed = " ".join(SEED_TEXT.read_text(encoding="utf-8").replace("’", "'").split())
    library = load_library()
    for template_id in library.template_ids():
        for language in library.languages():
            template = library.template(template_id, language)
            if template.kind != "tip":
                continue
            for variant in template.variants:
                assert variant.source, (template_id, language, variant.id)
                assert " ".join(variant.source.split()) in seed, (template_id, variant.id)


def test_minimal_planted_library_is_clean(tmp_path: Path) -> None:
    """The baseline every planted-defect test changes in exactly one way."""
    assert lint_dir(tmp_path, make_template()) == []


def test_render_rule_catches_a_variant_that_fails_with_sample_data(tmp_path: Path) -> None:
    bad = make_template(en=[{"id": "a-01", "body": "{{ first_name[40] }}"}])
    problems = lint_dir(tmp_path, bad)
    assert rules(problems) == {"render"}
    assert (problems[0].template_id, problems[0].language, problems[0].variant_id) == (
        "ack.done",
        "en",
        "a-01",
    )


def test_segments_rule_catches_a_body_over_its_budget(tmp_path: Path) -> None:
    bad = make_template(en=[{"id": "a-01", "body": "{{ first_name }} " + "x" * 160}])
    assert rules(lint_dir(tmp_path, bad)) == {"segments"}


def test_segments_rule_catches_a_kind_declaring_too_many_segments(tmp_path: Path) -> None:
    assert rules(lint_dir(tmp_path, make_template(max_segments=3))) == {"segments"}


def test_ucs2_rule_reports_the_offending_characters(tmp_path: Path) -> None:
    bad = make_template(es=[{"id": "a-01", "body": "Así, {{ first_name }}."}])
    [problem] = lint_dir(tmp_path, bad)
    assert problem.rule == "ucs2"
    assert "'í'" in problem.message


def test_ucs2_is_accepted_when_the_variant_allows_it(tmp_path: Path) -> None:
    ok = make_template(es=[{"id": "a-01", "body": "Así, {{ first_name }}.", "allow_ucs2": True}])
    assert lint_dir(tmp_path, ok) == []


@pytest.mark.parametrize(
    "body",
    [
        "Your Chemo plan, {{ first_name }}.",
        "{{ first_name }}, NEUROTOXICITY check.",
        "{{ first_name }}: CAR-T day.",
        "{{ first_name }}, oxaliplatin today.",
        "{{ first_name }}, Lead poisoning check.",
        "{% if false %}cancer{% endif %}{{ first_name }}",
    ],
)
def test_privacy_rule_catches_diagnosis_and_drug_words(tmp_path: Path, body: str) -> None:
    problems = lint_dir(tmp_path, make_template(en=[{"id": "a-01", "body": body}]))
    assert rules(problems) == {"privacy"}


def test_privacy_rule_checks_raw_source_even_when_rendered_text_is_clean(
    tmp_path: Path,
) -> None:
    body = "{% if false %}chemotherapy{% endif %}Hi {{ first_name }}"
    [problem] = lint_dir(tmp_path, make_template(en=[{"id": "a-01", "body": body}]))
    assert problem.message == "source contains chemotherapy"


def test_privacy_rule_matches_whole_words_only(tmp_path: Path) -> None:
    body = "{{ first_name }}, a leading example: chemoreceptor, cancellation."
    assert lint_dir(tmp_path, make_template(en=[{"id": "a-01", "body": body}])) == []


def test_carrier_rule_catches_help_without_stop(tmp_path: Path) -> None:
    help_en = (
        "coachbot from {{ clinic_name }}. Up to 5 msgs/day. Call {{ clinic_phone }}. "
        "Msg & data rates may apply."
    )
    help_es = (
        "coachbot de {{ clinic_name }}. Hasta 5 mensajes diarios. Llame al {{ clinic_phone }}. "
        "Responda STOP para cancelar. Pueden aplicarse tarifas de mensajes y datos."
    )
    bad = make_template(
        "help",
        kind="system",
        max_segments=2,
        variables=("clinic_name", "clinic_phone"),
        en=[{"id": "help-01", "body": help_en}],
        es=[{"id": "help-01", "body": help_es}],
    )
    [problem] = lint_dir(tmp_path, bad)
    assert (problem.rule, problem.language, problem.message) == (
        "carrier",
        "en",
        "missing STOP to opt out",
    )


def test_carrier_rule_catches_stop_confirmation_without_start(tmp_path: Path) -> None:
    bad = make_template(
        "stop_confirmation",
        kind="system",
        variables=(),
        en=[{"id": "stop-01", "body": "You will get no more messages."}],
        es=[{"id": "stop-01", "body": "Ya no le enviaremos mensajes. Responda START."}],
    )
    [problem] = lint_dir(tmp_path, bad)
    assert (problem.rule, problem.language, problem.message) == (
        "carrier",
        "en",
        "missing START to resume",
    )


def test_languages_rule_catches_a_template_missing_in_spanish(tmp_path: Path) -> None:
    problems = lint_dir(tmp_path, make_template(), make_template("ack.skip", languages=("en",)))
    assert [(p.rule, p.template_id, p.language) for p in problems] == [
        ("languages", "ack.skip", "es")
    ]


def test_languages_rule_catches_too_few_nudge_variants(tmp_path: Path) -> None:
    body = "Hi {{ first_name }}. Reply DONE or SKIP."
    es_body = "Hola, {{ first_name }}. Responda LISTO o NO."
    bad = make_template(
        "nudge.diet",
        kind="nudge",
        track="diet",
        en=variants("diet", 7, body),
        es=variants("diet", 8, es_body),
    )
    [problem] = lint_dir(tmp_path, bad)
    assert (problem.rule, problem.language) == ("languages", "en")
    assert "need 8" in problem.message


def test_languages_rule_catches_too_few_tips(tmp_path: Path) -> None:
    def tips(count: int) -> list[dict[str, Any]]:
        return [
            {"id": f"tip-{n:02}", "body": "Sleep well.", "source": "quality sleep"}
            for n in range(1, count + 1)
        ]

    bad = make_template(
        "tip.sleep", kind="tip", track="sleep", variables=(), en=tips(10), es=tips(9)
    )
    [problem] = lint_dir(tmp_path, bad)
    assert (problem.rule, problem.language) == ("languages", "es")


def test_variables_rule_catches_an_undeclared_variable(tmp_path: Path) -> None:
    bad = make_template(en=[{"id": "a-01", "body": "Hi {{ first_name }} {{ patient.phone }}"}])
    problems = lint_dir(tmp_path, bad)
    assert "variables" in rules(problems)
    assert any("patient" in p.message for p in problems if p.rule == "variables")


def test_variables_rule_catches_a_declared_variable_off_the_allowlist(tmp_path: Path) -> None:
    problems = lint_dir(tmp_path, make_template(variables=("first_name", "diagnosis")))
    assert {(p.rule, p.language) for p in problems} == {("variables", "en"), ("variables", "es")}
    assert all("diagnosis" in p.message for p in problems)


def test_reply_rule_catches_a_nudge_that_does_not_say_how_to_reply(tmp_path: Path) -> None:
    bad = make_template(
        "nudge.diet",
        kind="nudge",
        track="diet",
        en=variants("diet", 8, "Eat a carrot, {{ first_name }}."),
        es=variants("diet", 8, "Hola, {{ first_name }}. Responda LISTO o NO."),
    )
    problems = lint_dir(tmp_path, bad)
    assert rules(problems) == {"reply"}
    assert len(problems) == 8


def test_safety_rule_catches_red_flag_without_emergency_number_or_with_rotation(
    tmp_path: Path,
) -> None:
    bad = make_template(
        "red_flag",
        kind="safety",
        variables=("clinic_phone", "emergency_number"),
        en=[{"id": "rf-01", "body": "Call {{ clinic_phone }} now."}],
        es=[
            {"id": "rf-01", "body": "Llame al {{ clinic_phone }} o al {{ emergency_number }}."},
            {"id": "rf-02", "body": "Llame al {{ clinic_phone }} o al {{ emergency_number }} ya."},
        ],
    )
    problems = lint_dir(tmp_path, bad)
    assert {(p.rule, p.language, p.message) for p in problems} == {
        ("safety", "en", "missing emergency number"),
        ("safety", "es", "fixed text must have exactly 1 variant, found 2"),
    }


def test_safety_rule_catches_a_crisis_reply_without_its_crisis_line(tmp_path: Path) -> None:
    body = "Call {{ emergency_number }} if you are in danger."
    bad = make_template(
        "crisis",
        kind="safety",
        variables=("crisis_line", "emergency_number"),
        en=[{"id": "cr-01", "body": body}],
        es=[{"id": "cr-01", "body": "Llame al {{ crisis_line }} o al {{ emergency_number }}."}],
    )
    [problem] = lint_dir(tmp_path, bad)
    assert (problem.rule, problem.language, problem.message) == (
        "safety",
        "en",
        "missing crisis line",
    )


def test_safety_rule_refuses_first_name_in_a_reply_unknown_numbers_get(tmp_path: Path) -> None:
    body = "{{ first_name }}, call {{ clinic_phone }} or {{ emergency_number }}."
    bad = make_template(
        "red_flag",
        kind="safety",
        variables=("first_name", "clinic_phone", "emergency_number"),
        en=[{"id": "rf-01", "body": body}],
        es=[{"id": "rf-01", "body": "Llame al {{ clinic_phone }} o al {{ emergency_number }}."}],
    )
    [problem] = lint_dir(tmp_path, bad)
    assert (problem.rule, problem.language) == ("safety", "en")
    assert "first_name" in problem.message


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("{{ first_name }}, if it is severe, call 911.", "911"),
        ("{{ first_name }}, call 0800 123 456 today.", "0800 123 456"),
        ("{{ first_name }}, Samaritans: 116 123.", "116 123"),
        ("{{ first_name }}, call 555-010-0199.", "555-010-0199"),
        ("{{ first_name }}, call 9 1 1.", "9 1 1"),
        ("{% if first_name %}Call 999{% endif %}{{ first_name }}", "999"),
    ],
)
def test_number_rule_refuses_a_literal_phone_or_emergency_number(
    tmp_path: Path, body: str, found: str
) -> None:
    [problem] = lint_dir(tmp_path, make_template(en=[{"id": "a-01", "body": body}]))
    assert problem.rule == "number"
    assert found in problem.message


@pytest.mark.parametrize(
    "body",
    [
        "{{ first_name }}, in danger? Call {{ emergency_number }} or {{ clinic_phone }}.",
        "{{ first_name }}, reply 1-5 (5 = very stressed), e.g. 2 5, or 10 minutes.",
        "{% if streak == '100' %}Wow{% endif %}{{ first_name }}",
    ],
)
def test_number_rule_passes_variables_and_short_numbers(tmp_path: Path, body: str) -> None:
    variables = ("first_name", "clinic_phone", "emergency_number", "streak")
    ok = make_template(variables=variables, en=[{"id": "a-01", "body": body}])
    assert lint_dir(tmp_path, ok) == []


def test_source_rule_catches_a_tip_without_its_seed_quote(tmp_path: Path) -> None:
    en = [{"id": f"tip-{n:02}", "body": "Sleep well.", "source": "x"} for n in range(1, 11)]
    es = [{"id": f"tip-{n:02}", "body": "Duerma bien."} for n in range(1, 11)]
    bad = make_template("tip.sleep", kind="tip", track="sleep", variables=(), en=en, es=es)
    problems = lint_dir(tmp_path, bad)
    assert rules(problems) == {"source"}
    assert {p.language for p in problems} == {"es"}


def test_lint_problem_reads_as_one_line() -> None:
    problem = LintProblem("nudge.sleep", "es", "sleep-03", "ucs2", "characters: 'á'")
    assert str(problem) == "nudge.sleep [es] sleep-03 ucs2: characters: 'á'"


def test_cli_lint_passes_on_the_bundled_library() -> None:
    result = CliRunner().invoke(templates, ["lint"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"OK: \d+ templates, 2 languages \(en, es\), \d+ variants\n", result.output)


def test_cli_lint_prints_problems_and_exits_1(tmp_path: Path) -> None:
    write_templates(tmp_path, make_template(en=[{"id": "a-01", "body": "Chemo, {{ first_name }}"}]))
    result = CliRunner().invoke(templates, ["lint", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "ack.done [en] a-01 privacy: source contains Chemo" in result.output


def test_cli_lint_reports_a_broken_file_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("templates: 3\n", encoding="utf-8")
    result = CliRunner().invoke(templates, ["lint", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad.yaml: templates: expected a non-empty list" in result.output


def test_cli_preview_shows_variant_segments_and_encoding() -> None:
    result = CliRunner().invoke(templates, ["preview", "--track", "sleep", "--language", "es"])
    assert result.exit_code == 0, result.output
    assert "nudge.sleep [es] sleep-01: 1/1 segment(s), GSM-7" in result.output
    assert "tip.sleep [es] tip-sleep-10" in result.output
    assert "Alexandria" in result.output
    assert "[en]" not in result.output


def test_cli_preview_with_no_match_fails() -> None:
    result = CliRunner().invoke(templates, ["preview", "--track", "naps"])
    assert result.exit_code == 1
    assert "no templates match" in result.output
