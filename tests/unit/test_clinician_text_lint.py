"""Clinician-typed text that goes into an SMS passes the same privacy lint as the templates."""

from __future__ import annotations

import pytest

from coachbot.content.lint import PRIVACY_TERMS, clinician_text_problem


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Take your dexamethasone, it helps the chemo brain", ['"dexamethasone"', '"chemo brain"']),
        ("Word cards after the CAR-T infusion", ['"CAR-T"']),
        ("ICANS recovery cards", ['"ICANS"']),
        ("Walk 10 min (cancer rehab plan)", ['"cancer"']),
        ("Ejercicios de quimio", ['"quimio"']),
        ("Log how the Yescarta week went", ['"Yescarta"']),
    ],
)
def test_a_homework_item_naming_a_diagnosis_or_drug_is_refused_naming_the_words(
    text: str, named: list[str]
) -> None:
    problem = clinician_text_problem(text)
    assert problem is not None
    assert problem.startswith("texts must not name a diagnosis, cause or drug (privacy)")
    for word in named:
        assert word in problem


@pytest.mark.parametrize(
    "text",
    ["10 minutes of the word-finding cards", "Walk to the corner and back", "Leer 15 minutos"],
)
def test_ordinary_homework_passes(text: str) -> None:
    assert clinician_text_problem(text) is None


def test_the_term_list_is_the_one_the_template_linter_uses() -> None:
    # One list: a word added for templates is refused in clinician text too.
    assert "chemo brain" in PRIVACY_TERMS
    assert all(clinician_text_problem(term) is not None for term in PRIVACY_TERMS)
