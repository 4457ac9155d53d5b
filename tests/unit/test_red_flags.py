"""Red-flag symptoms, their severity, and check-in answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachbot.domain.red_flags import (
    CRISIS_FLAGS,
    LABELS,
    CheckinAnswer,
    RedFlag,
    Severity,
    find_red_flags,
    is_crisis,
    parse_checkin,
    severity,
)

R = RedFlag


def test_numbering_matches_the_checkin_question() -> None:
    # The check-in's "Reply 1,4" numbering is RedFlag(1..7); later categories come after.
    assert [f.name for f in RedFlag][:7] == [
        "CONFUSION",
        "WORD_FINDING",
        "HANDWRITING",
        "SEIZURE",
        "SEVERE_HEADACHE",
        "WEAKNESS",
        "FALL",
    ]
    assert [int(f) for f in RedFlag] == list(range(1, len(RedFlag) + 1))


def test_every_flag_has_a_label_and_a_severity() -> None:
    assert set(LABELS) == set(RedFlag)
    assert LABELS[R.FEVER] == "fever"
    assert all(severity((f,)) in (Severity.HIGH, Severity.URGENT) for f in RedFlag)


def test_crisis_flags_are_suicidal_thoughts_and_self_harm() -> None:
    assert frozenset({R.SUICIDAL, R.SELF_HARM}) == CRISIS_FLAGS
    assert is_crisis((R.FEVER, R.SELF_HARM))
    assert not is_crisis((R.FEVER, R.FALL))
    assert not is_crisis(())


FLAGS: list[tuple[str, tuple[RedFlag, ...]]] = [
    ("she is confused", (R.CONFUSION,)),
    ("very confused today", (R.CONFUSION,)),
    ("confusion this morning", (R.CONFUSION,)),
    ("he doesn't know where he is", (R.CONFUSION,)),
    ("she didn't recognize me", (R.CONFUSION,)),
    ("hard to wake him up", (R.DROWSINESS,)),
    ("estoy confundida", (R.CONFUSION,)),
    ("está desorientado", (R.CONFUSION,)),
    ("no me reconoce", (R.CONFUSION,)),
    ("confussed", (R.CONFUSION,)),
    ("can't find words", (R.WORD_FINDING,)),
    ("trouble finding words", (R.WORD_FINDING,)),
    ("she can't talk", (R.WORD_FINDING,)),
    ("his speech is slurred", (R.WORD_FINDING,)),
    ("words come out wrong", (R.WORD_FINDING,)),
    ("no encuentro las palabras", (R.WORD_FINDING,)),
    ("no puede hablar", (R.WORD_FINDING,)),
    ("my handwriting looks different", (R.HANDWRITING,)),
    ("can't write my name", (R.HANDWRITING,)),
    ("su letra está rara", (R.HANDWRITING,)),
    ("had a seizure", (R.SEIZURE,)),
    ("Seizure last night", (R.SEIZURE,)),
    ("siezure", (R.SEIZURE,)),
    ("convulsion", (R.SEIZURE,)),
    ("she had a fit", (R.SEIZURE,)),
    ("hands shaking a lot", (R.SEIZURE,)),
    ("tuvo una convulsión", (R.SEIZURE,)),
    ("temblores", (R.SEIZURE,)),
    ("severe headache", (R.SEVERE_HEADACHE,)),
    ("worst headache of my life", (R.SEVERE_HEADACHE,)),
    ("really bad headache", (R.SEVERE_HEADACHE,)),
    ("my head is killing me", (R.SEVERE_HEADACHE,)),
    ("migraine", (R.SEVERE_HEADACHE,)),
    ("dolor de cabeza fuerte", (R.SEVERE_HEADACHE,)),
    ("dolor de cabeza muy fuerte", (R.SEVERE_HEADACHE,)),
    ("feeling weak", (R.WEAKNESS,)),
    ("weakness in my left arm", (R.WEAKNESS,)),
    ("numbness spreading up my leg", (R.NEUROPATHY,)),
    ("numbness on one side of my face", (R.WEAKNESS,)),
    ("her face is drooping", (R.WEAKNESS,)),
    ("can't walk", (R.WEAKNESS,)),
    ("mucha debilidad", (R.WEAKNESS,)),
    ("me siento débil", (R.WEAKNESS,)),
    ("I fell", (R.FALL,)),
    ("she fell in the bathroom", (R.FALL,)),
    ("he has fallen twice", (R.FALL,)),
    ("had a fall", (R.FALL,)),
    ("passed out", (R.FAINTING,)),
    ("me caí", (R.FALL,)),
    ("se cayó", (R.FALL,)),
    ("una caída", (R.FALL,)),
    ("No, she fell", (R.FALL,)),
    ("no seizures but fell", (R.FALL,)),
    ("no seizures. fell yesterday", (R.FALL,)),
    ("no seizures\nfell yesterday", (R.FALL,)),
    ("I don't know, she fell", (R.FALL,)),
    ("she fell and seems confused", (R.CONFUSION, R.FALL)),
    ("weak and shaky", (R.SEIZURE, R.WEAKNESS)),
    ("FELL", (R.FALL,)),
    ("ＦＥＬＬ", (R.FALL,)),
    # negations
    ("no seizures", ()),
    ("no confusion", ()),
    ("no new confusion", ()),
    ("not confused", ()),
    ("no seizures or falls", ()),
    ("no seizures, falls or confusion", ()),
    ("didn't fall", ()),
    ("haven't had any falls", ()),
    ("never fell", ()),
    ("without a headache", ()),
    ("sin convulsiones", ()),
    ("no me caí", ()),
    ("ni confusión ni caídas", ()),
    ("no trouble finding words", ()),
    # idioms that are not symptoms
    ("I fell asleep at 10", ()),
    ("fell asleep on the couch", ()),
    ("trouble falling asleep", ()),
    ("fell behind on my exercises", ()),
    ("my hair is falling out", ()),
    ("caída del cabello", ()),
    ("weak coffee", ()),
    ("the wifi signal is weak", ()),
    ("see you this weak", ()),
    ("had a protein shake", ()),
    ("can't talk right now", ()),
    ("sorry can't talk now, at work", ()),
    ("keep fit", ()),
    ("mild headache", ()),
    ("headache", ()),
    ("the message was confusing", ()),
    ("my feet are numb as usual", ()),
    ("done", ()),
    ("slept 7 hours", ()),
    ("", ()),
]


@pytest.mark.parametrize(("body", "flags"), FLAGS)
def test_find_red_flags(body: str, flags: tuple[RedFlag, ...]) -> None:
    assert find_red_flags(body) == flags


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), Severity.NONE),
        ((R.HANDWRITING,), Severity.HIGH),
        ((R.WEAKNESS,), Severity.URGENT),
        ((R.FEVER,), Severity.URGENT),
        ((R.SUICIDAL,), Severity.URGENT),
        ((R.INFECTION,), Severity.HIGH),
        ((R.NEUROPATHY, R.VOMITING_DIARRHOEA), Severity.HIGH),
        ((R.CONFUSION,), Severity.URGENT),
        ((R.WORD_FINDING,), Severity.URGENT),
        ((R.SEIZURE,), Severity.URGENT),
        ((R.SEVERE_HEADACHE,), Severity.URGENT),
        ((R.FALL,), Severity.URGENT),
        ((R.WEAKNESS, R.FALL), Severity.URGENT),
        ((R.HANDWRITING, R.INFECTION), Severity.HIGH),
    ],
)
def test_severity(flags: tuple[RedFlag, ...], expected: Severity) -> None:
    assert severity(flags) is expected


CLEAR = CheckinAnswer(understood=True)
NOT_UNDERSTOOD = CheckinAnswer(understood=False)


def flagged(*flags: RedFlag) -> CheckinAnswer:
    return CheckinAnswer(understood=True, flags=flags)


CHECKINS: list[tuple[str, CheckinAnswer]] = [
    ("0", CLEAR),
    ("zero", CLEAR),
    ("Zero.", CLEAR),
    ("none", CLEAR),
    ("None!", CLEAR),
    ("ninguno", CLEAR),
    ("nada", CLEAR),
    ("0 👍", CLEAR),
    ("no", CLEAR),
    ("nope", CLEAR),
    ("nothing", CLEAR),
    ("all good", CLEAR),
    ("todo bien", CLEAR),
    ("no symptoms", CLEAR),
    ("no new symptoms today", CLEAR),
    ("no seizures", CLEAR),
    ("no confusion no falls", CLEAR),
    ("sin convulsiones", CLEAR),
    ("2", flagged(R.WORD_FINDING)),
    ("1,4", flagged(R.CONFUSION, R.SEIZURE)),
    ("1, 4", flagged(R.CONFUSION, R.SEIZURE)),
    ("1 and 4", flagged(R.CONFUSION, R.SEIZURE)),
    ("1 y 4", flagged(R.CONFUSION, R.SEIZURE)),
    ("2 5 7", flagged(R.WORD_FINDING, R.SEVERE_HEADACHE, R.FALL)),
    ("4!", flagged(R.SEIZURE)),
    ("#7", flagged(R.FALL)),
    ("7 4 4", flagged(R.SEIZURE, R.FALL)),
    ("0, 3", flagged(R.HANDWRITING)),
    ("headache", flagged(R.SEVERE_HEADACHE)),
    ("falls", flagged(R.FALL)),
    ("shaking", flagged(R.SEIZURE)),
    ("she fell", flagged(R.FALL)),
    ("confused and weak", flagged(R.CONFUSION, R.WEAKNESS)),
    ("dolor de cabeza", flagged(R.SEVERE_HEADACHE)),
    ("yes", CheckinAnswer(understood=True, unspecified=True)),
    ("sí", CheckinAnswer(understood=True, unspecified=True)),
    ("8", NOT_UNDERSTOOD),
    ("12", NOT_UNDERSTOOD),
    ("1, 9", NOT_UNDERSTOOD),
    ("slept 7 hours", NOT_UNDERSTOOD),
    ("ok", NOT_UNDERSTOOD),
    ("not good", NOT_UNDERSTOOD),
    ("no estoy bien", NOT_UNDERSTOOD),
    ("mild headache", NOT_UNDERSTOOD),
    ("tired", NOT_UNDERSTOOD),
    ("", NOT_UNDERSTOOD),
    ("👍", NOT_UNDERSTOOD),
]


@pytest.mark.parametrize(("body", "expected"), CHECKINS)
def test_parse_checkin(body: str, expected: CheckinAnswer) -> None:
    assert parse_checkin(body) == expected


def test_clear_property() -> None:
    assert CLEAR.clear
    assert not flagged(R.FALL).clear
    assert not CheckinAnswer(understood=True, unspecified=True).clear
    assert not NOT_UNDERSTOOD.clear


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=1600))
def test_red_flag_functions_are_total(body: str) -> None:
    flags = find_red_flags(body)
    assert flags == tuple(sorted(set(flags)))
    assert isinstance(severity(flags), Severity)
    answer = parse_checkin(body)
    assert all(isinstance(f, RedFlag) for f in answer.flags)
    assert not (answer.flags and not answer.understood)
