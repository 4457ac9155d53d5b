"""Compliance keywords and plain-language revocations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachbot.domain.keywords import ComplianceKeyword, classify_compliance, fold, is_revocation

C = ComplianceKeyword

KEYWORDS: list[tuple[str, ComplianceKeyword | None]] = [
    ("STOP", C.OPT_OUT),
    ("stop", C.OPT_OUT),
    ("Stop.", C.OPT_OUT),
    ("  stop!! ", C.OPT_OUT),
    ("STOP 🛑", C.OPT_OUT),
    ('"Stop"', C.OPT_OUT),
    ("ＳＴＯＰ", C.OPT_OUT),
    ("s\u200btop", C.OPT_OUT),
    ("\u202bstop\u202c", C.OPT_OUT),
    ("StopAll", C.OPT_OUT),
    ("unsubscribe", C.OPT_OUT),
    ("Cancel", C.OPT_OUT),
    ("end", C.OPT_OUT),
    ("QUIT", C.OPT_OUT),
    ("revoke", C.OPT_OUT),
    ("optout", C.OPT_OUT),
    ("start", C.OPT_IN),
    ("START!", C.OPT_IN),
    ("unstop", C.OPT_IN),
    ("yes", C.YES),
    ("Yes.", C.YES),
    ("yes!", C.YES),
    ("SI", C.YES),
    ("SÍ", C.YES),
    ("sí", C.YES),
    ("HELP", C.HELP),
    ("help?", C.HELP),
    ("info", C.HELP),
    ("AYUDA", C.HELP),
    ("stop texting me", None),
    ("stop please", None),
    ("stop 2", None),
    # Spaced, dotted, run together or misspelled: still the keyword (issue #14).
    ("stopp", C.OPT_OUT),
    ("s top", C.OPT_OUT),
    ("opt out", C.OPT_OUT),
    ("S T O P", C.OPT_OUT),
    ("s.t.o.p", C.OPT_OUT),
    ("S-T-O-P!", C.OPT_OUT),
    ("stop all", C.OPT_OUT),
    ("Stop All", C.OPT_OUT),
    ("opt-out", C.OPT_OUT),
    ("un subscribe", C.OPT_OUT),
    ("UN-SUBSCRIBE", C.OPT_OUT),
    ("ST0P", C.OPT_OUT),
    ("stop stop", C.OPT_OUT),
    ("🛑🛑 S T O P 🛑🛑", C.OPT_OUT),
    ("\u0405\u0422\u041e\u0420", C.OPT_OUT),  # Cyrillic look-alikes
    ("unsubscibe", C.OPT_OUT),
    ("unsubscrbe", C.OPT_OUT),
    ("cancle", C.OPT_OUT),
    ("revok", C.OPT_OUT),
    ("stpo", C.OPT_OUT),
    ("sotp", C.OPT_OUT),
    ("quti", C.OPT_OUT),
    ("ＳＴＯＰ ＡＬＬ", C.OPT_OUT),
    # The Spanish one-word stops are full opt-outs.
    ("PARAR", C.OPT_OUT),
    ("parar", C.OPT_OUT),
    ("Para", C.OPT_OUT),
    ("¡Para!", C.OPT_OUT),
    ("BAJA", C.OPT_OUT),
    ("baja.", C.OPT_OUT),
    ("CANCELAR", C.OPT_OUT),
    ("cancelár", C.OPT_OUT),
    ("alto", C.OPT_OUT),
    ("DETENER", C.OPT_OUT),
    ("basta", C.OPT_OUT),
    ("stoooop", C.OPT_OUT),
    ("STOPPPP!!!", C.OPT_OUT),
    ("REVOCAR", C.OPT_OUT),
    ("helppp", C.HELP),
    # One edit from a keyword but a word of its own, or too short to guess.
    ("cancer", None),
    ("step", None),
    ("shop", None),
    ("spot", None),
    ("and", None),
    ("alot", None),
    ("yes done", None),
    ("helpful", None),
    ("ending", None),
    ("done", None),
    ("", None),
    ("🛑", None),
]


@pytest.mark.parametrize(("body", "expected"), KEYWORDS)
def test_compliance_keywords(body: str, expected: ComplianceKeyword | None) -> None:
    assert classify_compliance(body) == expected


REVOCATIONS = [
    "please stop texting me",
    "Please stop texting me.",
    "stop texting me",
    "no more messages",
    "No more texts please",
    "stop sending me texts",
    "stop the reminders",
    "leave me alone",
    "unsubscribe me",
    "don't text me anymore",
    "dont text me",
    "do not contact me",
    "stop please",
    "please stop",
    "stop it",
    "I don't want these messages",
    "i dont want to get texts anymore",
    "take me off the list",
    "remove me from this",
    "opt me out",
    "wrong number",
    "stop texting me so early",
    "paren ya",
    "para ya",
    "ya para",
    "no más",
    "no mas",
    "no mas mensajes",
    "no más mensajes por favor",
    "ya no quiero mensajes",
    "no quiero recibir mas mensajes",
    "dejen de escribirme",
    "deje de mandarme mensajes",
    "no me manden más",
    "déjenme en paz",
    "dame de baja",
    "número equivocado",
    "cancel my subscription",
    "Please cancel my subscription.",
    "I'm done with these texts",
    "stpo texting me",
    "unsubscibe me please",
    "quiero darme de baja",
    "sáquenme de la lista",
    "ya no quiero participar",
    "cancel all",
    "end all",
    "cancel subscription",
    "remove me",
    "parar todo",
    "salir",
]
NOT_REVOCATIONS = [
    "STOP",  # a keyword: classify_compliance owns it
    "stop.",
    "I need to stop for today",
    "no more pain",
    "no more headaches this week",
    "para mañana lo hago",
    "lo hago para mañana",
    "no más dolor",
    "please don't stop the messages",
    "don't stop texting me, it helps",
    "I stopped texting my sister",
    "done",
    "stop by the pharmacy later",
    "the end of my walk was hard",
    "I quit smoking last year",
    "my cancer nurse said hi",
    "para",  # a keyword now: classify_compliance owns it
    "",
]


@pytest.mark.parametrize("body", REVOCATIONS)
def test_revocations(body: str) -> None:
    assert is_revocation(body)


@pytest.mark.parametrize("body", NOT_REVOCATIONS)
def test_not_revocations(body: str) -> None:
    assert not is_revocation(body)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("ＳＴＯＰ", "stop"),
        ("Mañana", "manana"),
        ("don’t", "dont"),
        ("don´t", "dont"),
        ("si\u0301", "si"),
        ("a\u200db", "ab"),
        ("a\x00b", "a b"),
        ("👍🏽", "👍"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=1600))
def test_keyword_functions_are_total(body: str) -> None:
    result = classify_compliance(body)
    assert result is None or isinstance(result, ComplianceKeyword)
    revoked = is_revocation(body)
    assert isinstance(revoked, bool)
    assert not (revoked and result is not None)
