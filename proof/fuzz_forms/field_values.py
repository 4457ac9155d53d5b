"""The field values every form's strategies draw from (names, time zones, phone numbers,
times, quiet hours, junk) and the helpers that change one field of a form's (key, value)
pairs; a `Mutation` is one such change. Shared by the patient, bulk CSV and schedule
strategies, so a bad phone or a bad time means the same thing on every form."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from coachbot.content.lint import clinician_text_problem
from proof.fuzz_forms.cases import Fill, Value

LETTERS = st.characters(categories=["L"])
NAMES = st.one_of(
    st.sampled_from(
        ["Rosa", "Zoë", "Nguyễn", "李雷", "O'Brien", "Anne-Marie", "José Luis", "Ngũgĩ", "أحمد"]
    ),
    st.text(LETTERS, min_size=1, max_size=40),
)
ZONES = st.sampled_from(
    [
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
        "America/St_Johns",
        "Europe/London",
        "Asia/Kolkata",
        "Asia/Tokyo",
        "Pacific/Chatham",
        "Etc/GMT+12",
        "UTC",
    ]
)
BAD_ZONES = st.sampled_from(
    [
        "Mars/Olympus",
        "America",  # a directory in the zone database, not a zone
        "a" * 300,  # longer than a file name may be
        "",
        "   ",
        "America/New_York/",
        "America/./New_York",
        "../etc/passwd",
        "/etc/localtime",
        "UTC\x00",
        "Etc/GMT+99",
    ]
)
BAD_PHONES = st.sampled_from(
    [
        "555",
        "+1617555",
        "not a number",
        "+44 20 7946 0958",  # a landline
        "+1 800 555 0199",  # toll-free
        "+1" + "9" * 40,
        "☎",
        "\x00",
    ]
)
BAD_TIMES = st.sampled_from(
    ["25:99", "24:00", "12:60", "8", "08:30;09:00", "８:３０", "noon", "-1:00", ",", ""]
)
BAD_QUIET = st.sampled_from(["21:00", "25:00-07:00", "21:00-", "-", "9pm-7am", "21:00-7:30-8"])
_ODD = [
    "\x00",
    "🛑",
    "\u202eevil",
    "Robert'); DROP TABLE patients;--",
    "<script>alert(1)</script>",
    "%s%s%n",
    "     ",
    "0" * 5000,
    "+16175550100",
]
JUNK = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=3000),
    st.sampled_from(_ODD),
)
HOMEWORK_LINE = (
    st.text(st.characters(categories=["L", "N"], include_characters=" .,'!?()-"), max_size=80)
    .map(str.strip)
    .filter(bool)
    # Valid homework passes the privacy lint: random letters can spell a drug's name.
    .filter(lambda line: clinician_text_problem(line) is None)
)


@st.composite
def times_text(draw: st.DrawFn, hours: tuple[int, int] = (0, 23)) -> tuple[str, str]:
    """A valid times entry as someone might type it, and its canonical form."""
    picks = draw(
        st.lists(st.tuples(st.integers(*hours), st.integers(0, 59)), min_size=1, max_size=4)
    )
    spell = draw(st.sampled_from(["{h}:{m:02d}", "{h:02d}:{m:02d}", " {h:02d}:{m:02d} "]))
    sep = draw(st.sampled_from([",", ", ", " ,"]))
    text = sep.join(spell.format(h=h, m=m) for h, m in picks)
    return text, ",".join(sorted({f"{h:02d}:{m:02d}" for h, m in picks}))


def phone_fill(draw: st.DrawFn, kind: str = "fresh", slot: int = 0) -> Fill:
    return Fill(kind, slot, draw(st.integers(0, 4)))


@st.composite
def quiet_hours(draw: st.DrawFn) -> tuple[str, str] | None:
    picks = draw(st.none() | st.tuples(*(st.integers(0, 23), st.integers(0, 59)) * 2))
    if picks is None:
        return None
    h1, m1, h2, m2 = picks
    canonical = f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"
    return draw(st.sampled_from([canonical, f"{h1}:{m1:02d} - {h2}:{m2:02d}"])), canonical


def set_pair(pairs: list[tuple[str, Value]], key: str, value: Value) -> list[tuple[str, Value]]:
    """Every `key` replaced by one `key=value` (added when absent)."""
    kept = [(k, v) for k, v in pairs if k != key]
    return [*kept, (key, value)]


def drop_pair(pairs: list[tuple[str, Value]], key: str) -> list[tuple[str, Value]]:
    return [(k, v) for k, v in pairs if k != key]


def pair_value(pairs: list[tuple[str, Value]], key: str) -> Value | None:
    return next((v for k, v in pairs if k == key), None)


Mutation = Callable[[st.DrawFn, list[tuple[str, Value]]], list[tuple[str, Value]]]
