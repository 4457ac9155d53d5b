"""With CLINIC_NAME unset (a fresh clone, `make run`), every text names a real clinic: the old
default "Your care team" read "Your Your care team coachbot messages" and "care team at Your
care team". Production has no default at all."""

from __future__ import annotations

import pytest

from coachbot.content import load_library
from coachbot.content.lint import SAMPLE_VARIABLES
from coachbot.settings import DEVELOPMENT_CLINIC_NAME, Settings, SettingsError


def test_the_development_default_is_the_demo_clinics_name() -> None:
    assert Settings.from_env({}).clinic_name == DEVELOPMENT_CLINIC_NAME
    assert Settings().clinic_name == DEVELOPMENT_CLINIC_NAME
    assert DEVELOPMENT_CLINIC_NAME == "Riverside Recovery Clinic"


def test_every_text_naming_the_clinic_reads_as_a_sentence_with_the_default() -> None:
    library = load_library()
    name = Settings.from_env({}).clinic_name
    values = {**SAMPLE_VARIABLES, "clinic_name": name, "first_name": "Maya"}
    rendered: list[str] = []
    for template_id in library.template_ids():
        for language in library.languages():
            if not library.has_template(template_id, language):
                continue
            template = library.template(template_id, language)
            if "clinic_name" not in template.variables:
                continue
            for variant_id in template.variant_ids():
                body = library.render_variant(template_id, language, variant_id, values).body
                rendered.append(body)
    assert len(rendered) >= 10  # welcome, opt-in, HELP, STOP, START, pause, in two languages
    assert all(name in body for body in rendered)
    for body in rendered:
        folded = body.lower()
        assert "at your care team" not in folded, body
        assert "your care team has" not in folded, body
        assert "your your" not in folded, body
    welcome = library.render_variant("welcome", "en", "welcome-01", values).body
    assert welcome.startswith("Hi Maya, Riverside Recovery Clinic has signed you up for coachbot")


def test_production_must_name_its_clinic() -> None:
    with pytest.raises(SettingsError, match="CLINIC_NAME: required in production"):
        Settings.from_env({"COACHBOT_ENV": "production"})
