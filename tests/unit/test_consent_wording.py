"""The STOP and revocation confirmations promise nothing that needs further contact: no more
texts, how to restart, whom to call (issue #14), in English and Spanish, in one SMS."""

from __future__ import annotations

import pytest

from coachbot.content import load_library

VALUES = {"clinic_name": "Riverside Recovery Clinic", "clinic_phone": "+1 617 555 0199"}
PROMISES = ("confirm", "contact you", "will call", "le llamar", "se lo va", "confirmar")


@pytest.mark.parametrize("template", ["stop_confirmation", "revocation_paused"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_the_confirmation_says_no_more_texts_how_to_restart_and_whom_to_call(
    template: str, language: str
) -> None:
    message = load_library().render(template, language, VALUES, seed="x")
    assert "START" in message.body
    assert "+1 617 555 0199" in message.body
    assert "Riverside Recovery Clinic" in message.body
    assert not any(p in message.body.lower() for p in PROMISES), message.body
    assert message.segments.segments == 1
