"""The caregiver's texts: both languages, at most two segments, first names only, no
diagnosis, and every answer they suggest is one the check's reader understands."""

from __future__ import annotations

import re

import pytest

from coachbot.content import MessageLibrary, load_library
from coachbot.content.lint import SAMPLE_VARIABLES, lint_library, privacy_terms_in
from coachbot.domain.caregiver_check import Concern, patient_choices, read_answer
from tests.unit.test_message_library import CAREGIVER_IDS

LANGUAGES = ("en", "es")
# The patient's first name, and nothing else that names a person.
NAME_VARIABLES = {"first_name", "patient_choices"}


@pytest.fixture(scope="module")
def library() -> MessageLibrary:
    return load_library()


def _rendered(library: MessageLibrary, template_id: str, language: str) -> list[str]:
    template = library.templates[(template_id, language)]
    return [
        library.render_variant(template_id, language, variant.id, SAMPLE_VARIABLES).body
        for variant in template.variants
    ]


def test_the_caregiver_templates_lint_clean(library: MessageLibrary) -> None:
    problems = [p for p in lint_library(library) if p.template_id in CAREGIVER_IDS]
    assert problems == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template_id", sorted(CAREGIVER_IDS))
def test_each_caregiver_text_fits_two_segments_and_names_no_diagnosis(
    library: MessageLibrary, template_id: str, language: str
) -> None:
    template = library.templates[(template_id, language)]
    assert template.max_segments <= 2
    assert template.variables & {"homework", "streak"} == set()
    assert (
        template.variables
        - NAME_VARIABLES
        - {"clinic_name", "clinic_phone", "check_items", "item_count"}
        == set()
    )
    for variant in template.variants:
        rendered = library.render_variant(template_id, language, variant.id, SAMPLE_VARIABLES)
        assert rendered.segments.segments <= 2, rendered.body
        assert privacy_terms_in(rendered.body) == []


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        ("en", "Reply YES to get short texts helping Alexandria's recovery"),
        ("es", "Responda SI para recibir mensajes breves para ayudar a Alexandria"),
    ],
)
def test_the_opt_in_asks_for_yes_in_the_caregivers_own_name(
    library: MessageLibrary, language: str, phrase: str
) -> None:
    (body,) = _rendered(library, "caregiver.welcome", language)
    assert phrase in body
    assert "STOP" in body


def test_the_seen_today_and_which_person_questions_read_as_asked(
    library: MessageLibrary,
) -> None:
    assert _rendered(library, "caregiver.seen_today", "en") == [
        "Have you seen Alexandria today? Reply 1 if all is fine, 2 if you are worried."
    ]
    variables = {**SAMPLE_VARIABLES, "patient_choices": patient_choices(["Ana", "Bo"], "en")}
    template = library.templates[("caregiver.which_person", "en")]
    body = library.render_variant(
        "caregiver.which_person", "en", template.variants[0].id, variables
    ).body
    assert body == "Which person? Reply 1 for Ana, 2 for Bo."
    assert patient_choices(["Ana", "Bo"], "es") == "1 para Ana, 2 para Bo"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_daily_check_asks_four_numbered_lay_items(
    library: MessageLibrary, language: str
) -> None:
    (body,) = _rendered(library, "caregiver.check", language)
    assert [int(n) for n in re.findall(r"(\d)\) ", body)] == [1, 2, 3, 4]
    assert "(0-4)" in body


# The words each text suggests, in capitals, and what the reader must make of them.
_SUGGESTED = {
    "OK": Concern.OK,
    "WORSE": Concern.WORSE,
    "WORRIED": Concern.WORRIED,
    "BIEN": Concern.OK,
    "PEOR": Concern.WORSE,
    "PREOCUPADO": Concern.WORRIED,
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "template_id", ["caregiver.check", "caregiver.check_followup", "caregiver.not_understood"]
)
def test_every_answer_a_check_text_suggests_is_understood(
    library: MessageLibrary, template_id: str, language: str
) -> None:
    for body in _rendered(library, template_id, language):
        suggested = [w for w in re.findall(r"\b[A-Z]{2,}\b", body) if w in _SUGGESTED]
        assert len(suggested) == 3, body
        for word in suggested:
            assert read_answer(word).concern is _SUGGESTED[word]
        for count in range(5):
            assert read_answer(str(count)).items_as_usual == count
