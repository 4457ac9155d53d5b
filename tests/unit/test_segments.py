import math

from hypothesis import given
from hypothesis import strategies as st

from coachbot.domain.segments import GSM7_BASIC, GSM7_EXTENSION, count_segments

GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=800)


def test_empty_text_is_one_gsm7_segment_of_zero_units() -> None:
    result = count_segments("")
    assert (result.encoding, result.units, result.segments) == ("GSM-7", 0, 1)


def test_160_gsm7_characters_fit_one_segment_and_161_need_two() -> None:
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2


def test_gsm7_concatenated_parts_hold_153_septets() -> None:
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3
    assert count_segments("a" * 459).segments == 3


def test_70_ucs2_units_fit_one_segment_and_71_need_two() -> None:
    assert count_segments("á" * 70).segments == 1
    assert count_segments("á" * 71).segments == 2


def test_ucs2_concatenated_parts_hold_67_units() -> None:
    assert count_segments("á" * 134).segments == 2
    assert count_segments("á" * 135).segments == 3


def test_extension_characters_cost_two_septets_each() -> None:
    for char in "€[]{}^~|\\":
        result = count_segments(char)
        assert (result.encoding, result.units) == ("GSM-7", 2), char
    assert count_segments("€" * 80).segments == 1
    assert count_segments("€" * 80 + "a").segments == 2


def test_escape_pair_is_never_split_across_segments() -> None:
    """152 septets then a euro sign: the pair moves whole to part two, which then overflows."""
    assert count_segments("a" * 152 + "€" + "a" * 151).segments == 2
    text = "a" * 152 + "€" + "a" * 152
    result = count_segments(text)
    assert result.units == 306
    assert math.ceil(result.units / 153) == 2
    assert result.segments == 3


def test_spanish_letters_in_gsm7_stay_gsm7() -> None:
    result = count_segments("¿Qué tal? ¡Mañana! Ñandú")
    assert result.encoding == "UCS-2"
    assert result.non_gsm_chars == ("ú",)
    assert count_segments("¿Qué tal? ¡Mañana! ü É Ñ").encoding == "GSM-7"


def test_acute_a_i_o_u_force_ucs2_and_are_reported_in_order() -> None:
    result = count_segments("días, está, sesión, aún, más")
    assert result.encoding == "UCS-2"
    assert result.non_gsm_chars == ("í", "á", "ó", "ú")


def test_curly_quotes_and_em_dash_force_ucs2() -> None:
    result = count_segments("It’s “done” — ok")
    assert result.encoding == "UCS-2"
    assert result.non_gsm_chars == ("’", "“", "”", "—")


def test_emoji_counts_two_utf16_units() -> None:
    result = count_segments("ok 👍")
    assert (result.encoding, result.units) == ("UCS-2", 5)
    assert count_segments("👍" * 35).segments == 1
    assert count_segments("👍" * 35 + "a").segments == 2


def test_surrogate_pair_is_never_split_across_segments() -> None:
    text = "a" * 66 + "👍" + "a" * 66
    result = count_segments(text)
    assert result.units == 134
    assert result.segments == 3


@given(GSM_TEXT, GSM_TEXT)
def test_appending_text_never_reduces_segments(prefix: str, suffix: str) -> None:
    assert count_segments(prefix + suffix).segments >= count_segments(prefix).segments


@given(GSM_TEXT)
def test_gsm7_segments_bound_units(text: str) -> None:
    """Each part carries at most 153 septets, and never wastes more than one on a split pair."""
    result = count_segments(text)
    assert result.encoding == "GSM-7"
    if result.units > 160:
        assert math.ceil(result.units / 153) <= result.segments
        assert result.segments <= math.ceil(result.units / 152)


@given(st.text(max_size=400))
def test_any_text_counts_units_consistently(text: str) -> None:
    result = count_segments(text)
    if result.encoding == "UCS-2":
        assert result.units == len(text.encode("utf-16-le")) // 2
        assert result.non_gsm_chars
    else:
        assert result.non_gsm_chars == ()
