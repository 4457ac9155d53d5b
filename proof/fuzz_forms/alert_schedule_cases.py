"""The two forms that change something other than a patient: an alert's acknowledge and
resolve notes (a clinician's; the bench knows which state changes the rules allow), and
the operator's edit of one track of the standard programme (`TRACK_INVALID`, and
`TRACK_WILD` borrowed from the patient forms' random changes)."""

from __future__ import annotations

from hypothesis import strategies as st

from coachbot.domain.program import TRACK_POLICIES
from coachbot.services.programs import FOLLOWUP_POLICIES, QUIET_POLICIES
from proof.fuzz_forms.cases import INVALID, VALID, WILD, Case, Fill, Value
from proof.fuzz_forms.field_values import (
    BAD_TIMES,
    JUNK,
    Mutation,
    set_pair,
)
from proof.fuzz_forms.patient_cases import PATIENT_WILD

NOTES = st.one_of(
    st.sampled_from(["", "   ", "called, ED advised", "llamé; 🚑", "\x00 note"]),
    st.text(max_size=100),
    st.integers(1990, 2010).map(lambda n: "n" * n),
    JUNK,
)


@st.composite
def alert_cases(draw: st.DrawFn) -> Case:
    """Acknowledge or resolve an alert in a drawn state: the bench knows the rules' outcome."""
    pairs: list[tuple[str, Value]] = []
    if draw(st.integers(0, 9)):
        pairs.append(("note", draw(NOTES)))
    if draw(st.booleans()):
        pairs.append(("note", draw(NOTES)))  # a repeated key: the first one counts
    if draw(st.booleans()):
        pairs.append(("next", draw(st.sampled_from(["patient", "", "//evil.example"]) | JUNK)))
    return Case(
        "alert",
        WILD,
        "note",
        tuple(pairs),
        csrf=draw(st.sampled_from(["ok"] * 12 + ["missing", "wrong"])),
        target=draw(st.sampled_from(["open"] * 4 + ["acknowledged"] * 2 + ["resolved", "missing"])),
        action=draw(st.sampled_from(["acknowledge", "resolve"])),
    )


@st.composite
def track_fields(draw: st.DrawFn) -> tuple[list[tuple[str, Value]], str, str]:
    """A valid edit of one track of the standard programme, and its canonical times: inside
    the default send window (08:00-20:00) with a reply window no longer than the gap."""
    track = draw(st.sampled_from(list(TRACK_POLICIES)))
    first = draw(st.tuples(st.integers(8, 12), st.integers(0, 59)))
    minutes = [first[0] * 60 + first[1]]
    if draw(st.booleans()):
        minutes.append(draw(st.integers(minutes[0] + 60, 19 * 60 + 59)))
    gap = (
        1440 if len(minutes) == 1 else min(minutes[1] - minutes[0], 1440 - minutes[1] + minutes[0])
    )
    times = [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]
    pairs: list[tuple[str, Value]] = [
        ("track", track),
        ("times", ", ".join(times)),
        ("days", draw(st.sampled_from(["daily", "mon-fri", "mon,wed,fri", "weekends"]))),
        ("phases", draw(st.sampled_from(["", "0-28:daily;28-:mon,wed,fri"]))),
        ("reply_window_minutes", str(draw(st.integers(15, min(gap, 600))))),
        ("followup", draw(st.sampled_from(FOLLOWUP_POLICIES))),
        ("quiet_policy", draw(st.sampled_from(QUIET_POLICIES))),
        ("base_version", Fill("base")),
        ("action", draw(st.sampled_from(["preview", "save", "save"]))),
    ]
    return pairs, track, ",".join(times)


TRACK_INVALID: dict[str, Mutation] = {
    "times outside the send window": lambda d, p: set_pair(
        p, "times", d(st.sampled_from(["06:00", "20:30", "23:59", "09:00,21:00"]))
    ),
    "bad times": lambda d, p: set_pair(p, "times", d(BAD_TIMES)),
    "reply window not a number": lambda d, p: set_pair(
        p, "reply_window_minutes", d(st.sampled_from(["", "abc", "1e3", "١٠"]))
    ),
    "reply window out of range": lambda d, p: set_pair(
        p, "reply_window_minutes", d(st.sampled_from(["0", "14", "-60", "2881", "9" * 30]))
    ),
    "reply window longer than the gap": lambda d, p: set_pair(
        set_pair(p, "times", "09:00,10:00"), "reply_window_minutes", "61"
    ),
    "bad days": lambda d, p: set_pair(
        p, "days", d(st.sampled_from(["", "someday", "mon,,fri", "8"]))
    ),
    "bad phases": lambda d, p: set_pair(
        p, "phases", d(st.sampled_from(["garbage", "0-28", "x-y:daily"]))
    ),
    "bad follow-up": lambda d, p: set_pair(
        p, "followup", d(st.sampled_from(["twice", "", "ONCE"]))
    ),
    "bad quiet policy": lambda d, p: set_pair(p, "quiet_policy", d(st.sampled_from(["never", ""]))),
    "unknown track": lambda d, p: set_pair(p, "track", d(st.sampled_from(["yoga", "", "sleep2"]))),
    "stale version": lambda d, p: set_pair(p, "base_version", Fill("stale")),
    "bad version": lambda d, p: set_pair(p, "base_version", d(st.sampled_from(["", "abc", "-1"]))),
}


def _crowded_day(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    """Every quarter hour of the send window: each time valid, the list as long as it gets."""
    step = draw(st.sampled_from([15, 20, 30]))
    times = ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in range(8 * 60, 20 * 60, step))
    return set_pair(
        set_pair(set_pair(pairs, "times", times), "reply_window_minutes", "15"), "action", "save"
    )


TRACK_WILD: dict[str, Mutation] = {
    k: PATIENT_WILD[k]
    for k in (
        "random value",
        "repeated key",
        "repeated key first",
        "dropped field",
        "unknown field",
    )
}
TRACK_INVALID["more times than a day allows"] = _crowded_day


@st.composite
def schedule_cases(draw: st.DrawFn) -> Case:
    pairs, track, times = draw(track_fields())
    kind = draw(st.sampled_from([VALID, INVALID, WILD]))
    csrf = draw(st.sampled_from(["ok"] * 12 + ["missing", "wrong"]))
    if csrf != "ok":
        return Case(
            "schedule", INVALID, f"CSRF token {csrf}", tuple(pairs), csrf=csrf, target=track
        )
    if kind == VALID:
        return Case("schedule", VALID, "valid", tuple(pairs), target=track, times=times)
    if kind == INVALID:
        name = draw(st.sampled_from(sorted(TRACK_INVALID)))
        pairs = set_pair(TRACK_INVALID[name](draw, pairs), "action", "save")
        return Case("schedule", INVALID, name, tuple(pairs), target=track)
    names = draw(st.lists(st.sampled_from(sorted(TRACK_WILD)), min_size=1, max_size=3))
    for name in names:
        pairs = TRACK_WILD[name](draw, pairs)
    return Case("schedule", WILD, ", ".join(names), tuple(pairs), target=track)
