"""Real-world replies and what they mean for the open nudge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachbot.domain.red_flags import RedFlag
from coachbot.domain.replies import Expectation, ParsedReply, ReplyKind, parse_reply

E = Expectation
K = ReplyKind

# (body, expectation, kind, value, unit)
REPLIES: list[tuple[str, Expectation, ReplyKind, float | None, str | None]] = [
    # done words, any case and punctuation
    ("done", E.DONE_SKIP, K.DONE, None, None),
    ("Done", E.DONE_SKIP, K.DONE, None, None),
    ("DONE", E.DONE_SKIP, K.DONE, None, None),
    ("done!", E.DONE_SKIP, K.DONE, None, None),
    ("Done.", E.DONE_SKIP, K.DONE, None, None),
    ("  done  ", E.DONE_SKIP, K.DONE, None, None),
    ("DONE ✅", E.DONE_SKIP, K.DONE, None, None),
    ("yes", E.DONE_SKIP, K.DONE, None, None),
    ("Yes!", E.DONE_SKIP, K.DONE, None, None),
    ("yes.", E.DONE_SKIP, K.DONE, None, None),
    ("y", E.DONE_SKIP, K.DONE, None, None),
    ("Y", E.DONE_SKIP, K.DONE, None, None),
    ("yep", E.DONE_SKIP, K.DONE, None, None),
    ("yeah", E.DONE_SKIP, K.DONE, None, None),
    ("did it", E.DONE_SKIP, K.DONE, None, None),
    ("I did it!", E.DONE_SKIP, K.DONE, None, None),
    ("ok", E.DONE_SKIP, K.DONE, None, None),
    ("OK", E.DONE_SKIP, K.DONE, None, None),
    ("okay", E.DONE_SKIP, K.DONE, None, None),
    ("k", E.DONE_SKIP, K.DONE, None, None),
    ("1", E.DONE_SKIP, K.DONE, None, None),
    ("finished", E.DONE_SKIP, K.DONE, None, None),
    ("completed", E.DONE_SKIP, K.DONE, None, None),
    ("all done", E.DONE_SKIP, K.DONE, None, None),
    ("All done!!", E.DONE_SKIP, K.DONE, None, None),
    ("yes done", E.DONE_SKIP, K.DONE, None, None),
    ("done thanks", E.DONE_SKIP, K.DONE, None, None),
    ("Done, thank you!", E.DONE_SKIP, K.DONE, None, None),
    ("did my walk", E.DONE_SKIP, K.DONE, None, None),
    ("did the breathing", E.DONE_SKIP, K.DONE, None, None),
    ("done with exercises", E.DONE_SKIP, K.DONE, None, None),
    ("already did it", E.DONE_SKIP, K.DONE, None, None),
    ("did it after all", E.DONE_SKIP, K.DONE, None, None),
    ("Actually I did it", E.DONE_SKIP, K.DONE, None, None),
    ("did it anyway 💪", E.DONE_SKIP, K.DONE, None, None),
    # emoji
    ("👍", E.DONE_SKIP, K.DONE, None, None),
    ("👍🏽", E.DONE_SKIP, K.DONE, None, None),
    ("👍🏿", E.DONE_SKIP, K.DONE, None, None),
    ("✅", E.DONE_SKIP, K.DONE, None, None),
    ("✔️", E.DONE_SKIP, K.DONE, None, None),
    ("☑️", E.DONE_SKIP, K.DONE, None, None),
    ("💪", E.DONE_SKIP, K.DONE, None, None),
    ("👍👍", E.DONE_SKIP, K.DONE, None, None),
    ("👎", E.DONE_SKIP, K.SKIP, None, None),
    ("❌", E.DONE_SKIP, K.SKIP, None, None),
    ("👍👎", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("🙂", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("❤️", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("🌞🌞", E.NONE, K.FREE_TEXT, None, None),
    # Spanish done
    ("sí", E.DONE_SKIP, K.DONE, None, None),
    ("si", E.DONE_SKIP, K.DONE, None, None),
    ("Sí!", E.DONE_SKIP, K.DONE, None, None),
    ("listo", E.DONE_SKIP, K.DONE, None, None),
    ("Lista", E.DONE_SKIP, K.DONE, None, None),
    ("hecho", E.DONE_SKIP, K.DONE, None, None),
    ("ya", E.DONE_SKIP, K.DONE, None, None),
    ("ya lo hice", E.DONE_SKIP, K.DONE, None, None),
    ("lo hice", E.DONE_SKIP, K.DONE, None, None),
    ("terminé", E.DONE_SKIP, K.DONE, None, None),
    ("termine", E.DONE_SKIP, K.DONE, None, None),
    ("completado", E.DONE_SKIP, K.DONE, None, None),
    ("sí, ya lo hice", E.DONE_SKIP, K.DONE, None, None),
    ("Listo ✅", E.DONE_SKIP, K.DONE, None, None),
    ("todo listo", E.DONE_SKIP, K.DONE, None, None),
    # caregivers
    ("she did it", E.DONE_SKIP, K.DONE, None, None),
    ("he did it", E.DONE_SKIP, K.DONE, None, None),
    ("mom did it", E.DONE_SKIP, K.DONE, None, None),
    ("she's done", E.DONE_SKIP, K.DONE, None, None),
    ("my husband finished", E.DONE_SKIP, K.DONE, None, None),
    ("ella lo hizo", E.DONE_SKIP, K.DONE, None, None),
    ("mi mamá ya lo hizo", E.DONE_SKIP, K.DONE, None, None),
    ("he walked 20 min", E.MINUTES, K.NUMBER, 20, "minutes"),
    ("he walked 20 min", E.DONE_SKIP, K.DONE, 20, "minutes"),
    ("mom slept 6 hrs", E.SLEEP_HOURS, K.NUMBER, 6, "hours"),
    ("she didn't", E.DONE_SKIP, K.SKIP, None, None),
    ("he couldn't today", E.DONE_SKIP, K.SKIP, None, None),
    ("ella no pudo", E.DONE_SKIP, K.SKIP, None, None),
    # skip words
    ("no", E.DONE_SKIP, K.SKIP, None, None),
    ("No.", E.DONE_SKIP, K.SKIP, None, None),
    ("n", E.DONE_SKIP, K.SKIP, None, None),
    ("nope", E.DONE_SKIP, K.SKIP, None, None),
    ("skip", E.DONE_SKIP, K.SKIP, None, None),
    ("SKIP", E.DONE_SKIP, K.SKIP, None, None),
    ("skipped", E.DONE_SKIP, K.SKIP, None, None),
    ("not today", E.DONE_SKIP, K.SKIP, None, None),
    ("Not today 😔", E.DONE_SKIP, K.SKIP, None, None),
    ("can't", E.DONE_SKIP, K.SKIP, None, None),
    ("cant", E.DONE_SKIP, K.SKIP, None, None),
    ("couldn't", E.DONE_SKIP, K.SKIP, None, None),
    ("no thanks", E.DONE_SKIP, K.SKIP, None, None),
    ("forgot", E.DONE_SKIP, K.SKIP, None, None),
    ("tomorrow", E.DONE_SKIP, K.SKIP, None, None),
    ("0", E.DONE_SKIP, K.SKIP, None, None),
    ("hoy no", E.DONE_SKIP, K.SKIP, None, None),
    ("omitir", E.DONE_SKIP, K.SKIP, None, None),
    ("saltar", E.DONE_SKIP, K.SKIP, None, None),
    ("no pude", E.DONE_SKIP, K.SKIP, None, None),
    ("mañana", E.DONE_SKIP, K.SKIP, None, None),
    ("Mañana!", E.DONE_SKIP, K.SKIP, None, None),
    ("no lo hice", E.DONE_SKIP, K.SKIP, None, None),
    ("skip today", E.MINUTES, K.SKIP, None, None),
    ("no", E.SLEEP_HOURS, K.SKIP, None, None),
    # deferrals are not skips
    ("later", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("not yet", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("más tarde", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("todavía no", E.DONE_SKIP, K.FREE_TEXT, None, None),
    # ambiguous or unrelated
    ("no, I did it", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("done but my knee hurts", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("no idea what this is", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("what?", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("who is this", E.NONE, K.FREE_TEXT, None, None),
    ("hope so", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("nice", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("gone", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("?", E.DONE_SKIP, K.FREE_TEXT, None, None),
    ("thanks", E.DONE_SKIP, K.FREE_TEXT, None, None),
    # sleep hours
    ("7", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("7.5", E.SLEEP_HOURS, K.NUMBER, 7.5, "hours"),
    ("7.5h", E.SLEEP_HOURS, K.NUMBER, 7.5, "hours"),
    ("7 hrs", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("7 hours", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("7hrs.", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("7,5 horas", E.SLEEP_HOURS, K.NUMBER, 7.5, "hours"),
    ("dormí 7 horas", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("slept 7h", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("about 6", E.SLEEP_HOURS, K.NUMBER, 6, "hours"),
    ("~8", E.SLEEP_HOURS, K.NUMBER, 8, "hours"),
    ("seven hours", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("siete horas", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("6-7 hours", E.SLEEP_HOURS, K.NUMBER, 6.5, "hours"),
    ("7 or 8", E.SLEEP_HOURS, K.NUMBER, 7.5, "hours"),
    ("7h30", E.SLEEP_HOURS, K.NUMBER, 7.5, "hours"),
    ("7 hours 30 min", E.SLEEP_HOURS, K.NUMBER, 7.5, "hours"),
    ("6 and a half hours", E.SLEEP_HOURS, K.NUMBER, 6.5, "hours"),
    ("7 horas y media", E.SLEEP_HOURS, K.NUMBER, 7.5, "hours"),
    ("0", E.SLEEP_HOURS, K.NUMBER, 0, "hours"),
    ("24", E.SLEEP_HOURS, K.NUMBER, 24, "hours"),
    ("25", E.SLEEP_HOURS, K.FREE_TEXT, None, None),
    ("30", E.SLEEP_HOURS, K.FREE_TEXT, None, None),
    ("-3", E.SLEEP_HOURS, K.FREE_TEXT, None, None),
    ("30 min", E.SLEEP_HOURS, K.NUMBER, 30, "minutes"),
    ("went to bed at 11, up at 6", E.SLEEP_HOURS, K.FREE_TEXT, None, None),
    ("slept 7 hours, bed at 11pm", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("7 👍", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("done, 7 hours", E.SLEEP_HOURS, K.NUMBER, 7, "hours"),
    ("done", E.SLEEP_HOURS, K.DONE, None, None),
    ("3 then 4", E.SLEEP_HOURS, K.FREE_TEXT, None, None),
    # minutes
    ("30", E.MINUTES, K.NUMBER, 30, "minutes"),
    ("30 min", E.MINUTES, K.NUMBER, 30, "minutes"),
    ("30m", E.MINUTES, K.NUMBER, 30, "minutes"),
    ("30 mins", E.MINUTES, K.NUMBER, 30, "minutes"),
    ("20 minutos", E.MINUTES, K.NUMBER, 20, "minutes"),
    ("about 20 minutes", E.MINUTES, K.NUMBER, 20, "minutes"),
    ("~20", E.MINUTES, K.NUMBER, 20, "minutes"),
    ("walked 20 min", E.MINUTES, K.NUMBER, 20, "minutes"),
    ("caminé 25 minutos", E.MINUTES, K.NUMBER, 25, "minutes"),
    ("1h30", E.MINUTES, K.NUMBER, 90, "minutes"),
    ("1:30", E.MINUTES, K.NUMBER, 90, "minutes"),
    ("1.5 hours", E.MINUTES, K.NUMBER, 90, "minutes"),
    ("1 hour", E.MINUTES, K.NUMBER, 60, "minutes"),
    ("an hour", E.MINUTES, K.NUMBER, 60, "minutes"),
    ("half an hour", E.MINUTES, K.NUMBER, 30, "minutes"),
    ("media hora", E.MINUTES, K.NUMBER, 30, "minutes"),
    ("una hora y media", E.MINUTES, K.NUMBER, 90, "minutes"),
    ("twenty minutes", E.MINUTES, K.NUMBER, 20, "minutes"),
    ("twenty five min", E.MINUTES, K.NUMBER, 25, "minutes"),
    ("treinta y cinco minutos", E.MINUTES, K.NUMBER, 35, "minutes"),
    ("20 min walk and 15 min bike", E.MINUTES, K.NUMBER, 35, "minutes"),
    ("0", E.MINUTES, K.NUMBER, 0, "minutes"),
    ("600", E.MINUTES, K.NUMBER, 600, "minutes"),
    ("601", E.MINUTES, K.FREE_TEXT, None, None),
    ("12 hours", E.MINUTES, K.FREE_TEXT, None, None),
    ("done", E.MINUTES, K.DONE, None, None),
    ("walked", E.MINUTES, K.DONE, None, None),
    # ratings
    ("3", E.RATING, K.NUMBER, 3, "rating"),
    ("1", E.RATING, K.NUMBER, 1, "rating"),
    ("5!", E.RATING, K.NUMBER, 5, "rating"),
    ("3/5", E.RATING, K.NUMBER, 3, "rating"),
    ("4 out of 5", E.RATING, K.NUMBER, 4, "rating"),
    ("stress is 2", E.RATING, K.NUMBER, 2, "rating"),
    ("three", E.RATING, K.NUMBER, 3, "rating"),
    ("tres", E.RATING, K.NUMBER, 3, "rating"),
    ("0", E.RATING, K.FREE_TEXT, None, None),
    ("6", E.RATING, K.FREE_TEXT, None, None),
    ("4.5", E.RATING, K.FREE_TEXT, None, None),
    ("8/10", E.RATING, K.FREE_TEXT, None, None),
    ("meditated", E.RATING, K.DONE, None, None),
    ("medité 10 min", E.RATING, K.NUMBER, 10, "minutes"),
    ("skip", E.RATING, K.SKIP, None, None),
    # bare numbers elsewhere
    ("2", E.DONE_SKIP, K.NUMBER, 2, None),
    ("3 servings", E.DONE_SKIP, K.NUMBER, 3, None),
    ("0 min", E.DONE_SKIP, K.SKIP, 0, "minutes"),
    ("7", E.NONE, K.NUMBER, 7, None),
    ("7 hours", E.NONE, K.NUMBER, 7, "hours"),
    ("done", E.NONE, K.DONE, None, None),
    ("no", E.NONE, K.SKIP, None, None),
    # red flags win
    ("done but I fell", E.DONE_SKIP, K.RED_FLAG, None, None),
    ("yes, had a seizure last night", E.DONE_SKIP, K.RED_FLAG, None, None),
    ("7 hours but worst headache ever", E.SLEEP_HOURS, K.RED_FLAG, None, None),
    ("mom is confused today", E.NONE, K.RED_FLAG, None, None),
    ("she can't find her words", E.MINUTES, K.RED_FLAG, None, None),
    ("me caí en el baño", E.DONE_SKIP, K.RED_FLAG, None, None),
    ("listo pero tengo dolor de cabeza muy fuerte", E.DONE_SKIP, K.RED_FLAG, None, None),
    ("I fell asleep at 10", E.SLEEP_HOURS, K.FREE_TEXT, None, None),
    ("fell asleep at 10, slept 8 hours", E.SLEEP_HOURS, K.NUMBER, 8, "hours"),
    # check-in
    ("0", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("zero", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("none", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("ninguno", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("nada", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("0 👍", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("no", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("all good", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("no seizures", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("sin convulsiones", E.CHECKIN, K.CHECKIN_CLEAR, None, None),
    ("2", E.CHECKIN, K.RED_FLAG, None, None),
    ("1,4", E.CHECKIN, K.RED_FLAG, None, None),
    ("yes", E.CHECKIN, K.RED_FLAG, None, None),
    ("headache", E.CHECKIN, K.RED_FLAG, None, None),
    ("9", E.CHECKIN, K.FREE_TEXT, None, None),
    ("ok", E.CHECKIN, K.FREE_TEXT, None, None),
    ("not good", E.CHECKIN, K.FREE_TEXT, None, None),
    # empty and odd input
    ("", E.DONE_SKIP, K.EMPTY, None, None),
    ("   ", E.DONE_SKIP, K.EMPTY, None, None),
    ("\n\t", E.NONE, K.EMPTY, None, None),
    ("\u200b\u200d", E.DONE_SKIP, K.EMPTY, None, None),
    ("\x00", E.DONE_SKIP, K.EMPTY, None, None),
    ("\u200fdone\u200e", E.DONE_SKIP, K.DONE, None, None),
    ("d\u200bone", E.DONE_SKIP, K.DONE, None, None),
    ("ＤＯＮＥ", E.DONE_SKIP, K.DONE, None, None),
    ("listo\x00", E.DONE_SKIP, K.DONE, None, None),
    ("si\u0301", E.DONE_SKIP, K.DONE, None, None),
    ("ter\u200dminé", E.DONE_SKIP, K.DONE, None, None),
]


@pytest.mark.parametrize(("body", "expects", "kind", "value", "unit"), REPLIES)
def test_reply_table(
    body: str, expects: Expectation, kind: ReplyKind, value: float | None, unit: str | None
) -> None:
    parsed = parse_reply(body, expects)
    assert (parsed.kind, parsed.value, parsed.unit) == (kind, value, unit)


def test_table_is_big_enough() -> None:
    assert len(REPLIES) >= 150


TYPOS = [
    ("dnoe", K.DONE),
    ("doen", K.DONE),
    ("donr", K.DONE),
    ("Dnoe!", K.DONE),
    ("okya", K.DONE),
    ("finsihed", K.DONE),
    ("compelted", K.DONE),
    ("all dnoe", K.DONE),
    ("skipp", K.SKIP),
    ("sikp", K.SKIP),
    ("skiped", K.SKIP),
    ("lsito", K.DONE),
    ("litso", K.DONE),
    ("hecoh", K.DONE),
    ("terimné", K.DONE),
    ("omitr", K.SKIP),
]


@pytest.mark.parametrize(("body", "kind"), TYPOS)
def test_one_letter_typos_are_accepted_and_flagged(body: str, kind: ReplyKind) -> None:
    parsed = parse_reply(body, E.DONE_SKIP)
    assert parsed.kind is kind
    assert parsed.typo_corrected


@pytest.mark.parametrize(
    "body",
    [
        "done",  # exact words are not corrections
        "yes",
        "some",  # real words one edit from "done"
        "gone",
        "bone",
        "hope",
        "ship",
        "slip",
        "pecho",
        "visto",
        "dn",  # short words never go through typo matching
        "dne",
        "yse",
        "nto",
        "stpo",  # one edit from STOP: compliance's business, never a done/skip word
        "quti",
        "strat",
    ],
)
def test_typo_matching_leaves_these_alone(body: str) -> None:
    parsed = parse_reply(body, E.DONE_SKIP)
    assert not parsed.typo_corrected
    if body == "some":
        assert parsed.kind is K.PARTIAL  # "some" (of it) is a partial answer now (#13 item 9)
    elif body not in ("done", "yes"):
        assert parsed.kind is K.FREE_TEXT


TRACKS = [
    ("walked 20 min", "exercise"),
    ("he walked 20 min", "exercise"),
    ("worked out", "exercise"),
    ("caminé 30 minutos", "exercise"),
    ("slept 7h", "sleep"),
    ("mom slept 6 hrs", "sleep"),
    ("dormí 7 horas", "sleep"),
    ("meditated", "mindfulness"),
    ("did the breathing", "mindfulness"),
    ("medité", "mindfulness"),
    ("ate salmon", "diet"),
    ("comí fruta", "diet"),
    ("did my puzzles", "rehab"),
    ("hice la terapia", "rehab"),
    ("walked and meditated", None),
    ("done", None),
    ("did my exercises", None),
]


@pytest.mark.parametrize(("body", "track"), TRACKS)
def test_named_track(body: str, track: str | None) -> None:
    assert parse_reply(body, E.NONE).named_track == track


def test_red_flags_are_reported_with_the_reply() -> None:
    parsed = parse_reply("done ✅ but she fell and seems confused", E.DONE_SKIP)
    assert parsed.kind is K.RED_FLAG
    assert parsed.red_flags == (RedFlag.CONFUSION, RedFlag.FALL)


def test_checkin_numbers_become_red_flags() -> None:
    parsed = parse_reply("1 and 4", E.CHECKIN)
    assert parsed.red_flags == (RedFlag.CONFUSION, RedFlag.SEIZURE)


def test_checkin_yes_is_an_unspecified_red_flag() -> None:
    assert parse_reply("sí", E.CHECKIN) == ParsedReply(K.RED_FLAG)


def test_parsed_reply_is_frozen() -> None:
    parsed = parse_reply("done", E.DONE_SKIP)
    with pytest.raises(AttributeError):
        parsed.kind = K.SKIP  # type: ignore[misc]


@pytest.mark.parametrize("expects", list(Expectation))
def test_long_and_odd_bodies_never_raise(expects: Expectation) -> None:
    odd = "\u200d\u202e\u0301\x00\ufeff👍🏽" * 100 + "done " * 200
    for body in (odd, odd[:1600], "9" * 1600, "1" + ".5" * 800, "a" * 1600, "🛑" * 1600):
        assert isinstance(parse_reply(body, expects).kind, ReplyKind)


@pytest.mark.parametrize("expects", list(Expectation))
@pytest.mark.parametrize("body", ["፩", "፩ hours", "7-፩", "1:፩፩", "٣", "²", "Ⅻ min"])
def test_digits_that_are_not_ascii_never_crash_the_parser(body: str, expects: Expectation) -> None:
    # "፩".isdigit() is True but float("፩") raises: hypothesis found it.
    assert isinstance(parse_reply(body, expects).kind, ReplyKind)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=1600), st.sampled_from(list(Expectation)))
def test_parse_reply_is_total(body: str, expects: Expectation) -> None:
    parsed = parse_reply(body, expects)
    assert isinstance(parsed.kind, ReplyKind)
    assert parsed.unit in (None, "hours", "minutes", "rating", "fraction")
    assert all(isinstance(f, RedFlag) for f in parsed.red_flags)
    if parsed.kind is K.NUMBER:
        assert parsed.value is not None
        assert parsed.value >= 0
    if parsed.kind is not K.RED_FLAG:
        assert parsed.red_flags == ()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["done", "7", "h", "min", "no", "fell", "asleep", "🙂", ",", "1:30", "~"])
        | st.text(max_size=5),
        max_size=40,
    ),
    st.sampled_from(list(Expectation)),
)
def test_parse_reply_is_total_on_reply_like_text(words: list[str], expects: Expectation) -> None:
    assert isinstance(parse_reply(" ".join(words), expects).kind, ReplyKind)


# Issue #13: a number is an answer only when the message is essentially a number answer.
PROSE_WITH_NUMBERS: list[tuple[str, Expectation]] = [
    ("pain 6/10", E.DONE_SKIP),
    ("pain 8/10", E.NONE),
    ("my pain is a 7", E.RATING),
    ("threw up 3 times", E.DONE_SKIP),
    ("threw up twice", E.MINUTES),
    ("temp 37.1", E.DONE_SKIP),
    ("temperature 36.9", E.SLEEP_HOURS),
    ("numbness on one side of my face", E.DONE_SKIP),
    ("one of my pills made me sick", E.DONE_SKIP),
    ("appointment at 3 tomorrow?", E.NONE),
    ("bp 120/80", E.DONE_SKIP),
    ("lost 2 kg this week", E.DONE_SKIP),
    ("vomité 2 veces", E.DONE_SKIP),
    ("tengo dolor 5", E.RATING),
    ("room 12", E.MINUTES),
]


@pytest.mark.parametrize(("body", "expects"), PROSE_WITH_NUMBERS)
def test_numbers_inside_prose_are_never_answers(body: str, expects: Expectation) -> None:
    # Free text for a person, or a red flag when it names one (one-sided numbness).
    assert parse_reply(body, expects).kind in (K.FREE_TEXT, K.RED_FLAG)


PARTIALS: list[tuple[str, Expectation, float]] = [
    ("2 of 3", E.DONE_SKIP, 0.67),
    ("2 out of 3", E.DONE_SKIP, 0.67),
    ("2/3", E.DONE_SKIP, 0.67),
    ("did 2 of the 3 exercises", E.DONE_SKIP, 0.67),
    ("half", E.DONE_SKIP, 0.5),
    ("did half", E.MINUTES, 0.5),
    ("some of it", E.DONE_SKIP, 0.5),
    ("most of it", E.DONE_SKIP, 0.75),
    ("hice la mitad", E.DONE_SKIP, 0.5),
    ("2 de 3", E.DONE_SKIP, 0.67),
    ("dos de tres", E.DONE_SKIP, 0.67),
    ("casi todo", E.DONE_SKIP, 0.75),
    ("4 out of 5", E.DONE_SKIP, 0.8),
]


@pytest.mark.parametrize(("body", "expects", "value"), PARTIALS)
def test_partial_answers_carry_the_fraction_done(
    body: str, expects: Expectation, value: float
) -> None:
    assert parse_reply(body, expects) == ParsedReply(K.PARTIAL, value, "fraction")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("3 of 3", K.DONE),
        ("0 of 3", K.SKIP),
        ("4 of 3", K.FREE_TEXT),
        ("no, only half", K.FREE_TEXT),
    ],
)
def test_whole_empty_and_impossible_fractions(body: str, kind: ReplyKind) -> None:
    assert parse_reply(body, E.DONE_SKIP).kind is kind


def test_a_rating_prompt_still_reads_out_of_five_as_a_rating() -> None:
    assert parse_reply("4 out of 5", E.RATING) == ParsedReply(K.NUMBER, 4, "rating")


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "S T O P",
        "stpo",
        "stopp",
        "unsubscibe",
        "baja",
        "PARAR",
        "cancel my subscription",
        "please stop texting me",
        "no me manden más mensajes",
        "help",
        "start",
        "stop all",
    ],
)
@pytest.mark.parametrize("expects", [E.DONE_SKIP, E.MINUTES, E.SLEEP_HOURS, E.NONE])
def test_nothing_that_means_stop_is_an_answer(body: str, expects: Expectation) -> None:
    assert parse_reply(body, expects).kind is K.FREE_TEXT


@pytest.mark.parametrize(
    ("body", "expects", "kind"),
    [
        ("skip 2day", E.DONE_SKIP, K.SKIP),
        ("done 2day", E.DONE_SKIP, K.DONE),
        ("38.9", E.DONE_SKIP, K.RED_FLAG),
        ("38.9", E.MINUTES, K.RED_FLAG),
        ("102", E.MINUTES, K.NUMBER),
        ("fell asleep at 11, slept 7h", E.SLEEP_HOURS, K.NUMBER),
        ("can't breathe", E.DONE_SKIP, K.RED_FLAG),
        ("cant", E.DONE_SKIP, K.SKIP),
    ],
)
def test_shorthand_temperatures_and_danger(
    body: str, expects: Expectation, kind: ReplyKind
) -> None:
    assert parse_reply(body, expects).kind is kind


@pytest.mark.parametrize(
    "body", ["please stop texting me, I can't breathe", "dejen de escribirme, tengo fiebre"]
)
def test_a_stop_that_reports_danger_is_still_a_red_flag(body: str) -> None:
    assert parse_reply(body, E.DONE_SKIP).kind is K.RED_FLAG


@pytest.mark.parametrize(
    ("body", "expects"),
    [
        ("is it ok to walk in the rain?", E.MINUTES),
        ("done?", E.DONE_SKIP),
        ("¿7 horas?", E.SLEEP_HOURS),
    ],
)
def test_a_question_is_never_an_answer(body: str, expects: Expectation) -> None:
    assert parse_reply(body, expects).kind is K.FREE_TEXT


def test_a_checkin_answer_with_a_question_mark_still_reports_its_symptoms() -> None:
    assert parse_reply("1,4?", E.CHECKIN).red_flags == (RedFlag.CONFUSION, RedFlag.SEIZURE)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("doneee", K.DONE),
        ("noooo", K.SKIP),
        ("siii", K.DONE),
        ("allll done", K.DONE),
        ("okkk", K.DONE),
    ],
)
def test_stretched_words_read_as_the_word_they_stretch(body: str, kind: ReplyKind) -> None:
    parsed = parse_reply(body, E.DONE_SKIP)
    assert (parsed.kind, parsed.typo_corrected) == (kind, False)


@pytest.mark.parametrize(
    ("body", "expects", "kind"),
    [
        ("slept 7h, no headache", E.SLEEP_HOURS, K.NUMBER),
        ("did my walk, no falls", E.MINUTES, K.DONE),
        ("listo, sin dolor", E.DONE_SKIP, K.DONE),
        ("no pain", E.DONE_SKIP, K.FREE_TEXT),
        ("done, no fever but 38.5", E.DONE_SKIP, K.RED_FLAG),
    ],
)
def test_a_symptom_said_not_to_be_there_does_not_hide_the_answer(
    body: str, expects: Expectation, kind: ReplyKind
) -> None:
    assert parse_reply(body, expects).kind is kind
