"""The enrolment and patient edit forms' cases: a valid form as the page posts it with
the record it must leave, then one invalid change (`PATIENT_INVALID`, `ENROL_INVALID`) or
up to three random ones (`PATIENT_WILD`, also used by the schedule form)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from coachbot.domain.program import COACHING_TRACKS, LANGUAGES
from coachbot.services.enrollment import MAX_HOMEWORK, MAX_TIMES_PER_TRACK
from proof.fuzz_forms.cases import INVALID, VALID, WILD, Case, Fill, PatientRecord, Value
from proof.fuzz_forms.field_values import (
    BAD_PHONES,
    BAD_QUIET,
    BAD_TIMES,
    BAD_ZONES,
    HOMEWORK_LINE,
    JUNK,
    LETTERS,
    NAMES,
    ZONES,
    Mutation,
    drop_pair,
    pair_value,
    phone_fill,
    quiet_hours,
    set_pair,
    times_text,
)


@st.composite
def patient_fields(
    draw: st.DrawFn, *, phone: Fill, enrol: bool
) -> tuple[list[tuple[str, Value]], PatientRecord]:
    """A valid enrolment (or edit) form, as the page would post it, and its record."""
    name = draw(NAMES)
    pad = draw(st.sampled_from(["", " ", "  "]))
    zone = draw(ZONES)
    language = draw(st.sampled_from(LANGUAGES))
    chosen = draw(st.lists(st.sampled_from(COACHING_TRACKS), min_size=1, unique=True))
    pairs: list[tuple[str, Value]] = [
        ("first_name", f"{pad}{name}{pad}"),
        ("phone", phone),
        ("timezone", zone),
        ("language", language),
    ]
    tracks: dict[str, str | None] = {}
    for track in COACHING_TRACKS:
        text, canonical = draw(times_text())
        if track in chosen:
            pairs.append((f"track_{track}", "y"))
            tracks[track] = canonical
        else:
            # An unticked track's times box is never read, whatever it holds (but a NUL in
            # any field refuses the form).
            text = draw(st.just(text) | JUNK.filter(lambda t: "\x00" not in t))
        pairs.append((f"times_{track}", text))
    quiet = draw(quiet_hours())
    pairs.append(("quiet_hours", quiet[0] if quiet else ""))
    caregiver = draw(st.none() | st.builds(Fill, st.just("fresh"), st.just(1), st.integers(0, 4)))
    pairs.append(("caregiver_phone", caregiver or ""))
    # A caregiver's number needs their first name (services.caregivers.records).
    pairs.append(("caregiver_name", "Sam" if caregiver else ""))
    checkin = draw(st.booleans())
    if checkin:
        pairs.append(("checkin", "y"))
    homework = draw(st.lists(HOMEWORK_LINE, max_size=MAX_HOMEWORK, unique=True))
    pairs.append(("homework", draw(st.sampled_from(["\n", "\r\n"])).join(homework)))
    if enrol:
        pairs.append(("consent_how", draw(st.sampled_from(["signed form", "verbal, in clinic"]))))
        pairs.append(
            (
                "consent_when",
                draw(st.sampled_from(["2020-01-01T10:00", "2025-03-09T02:30", "2026-01-31T23:59"])),
            )
        )
    record = PatientRecord(
        first_name=name,
        phone=phone,
        timezone=zone,
        language=language,
        tracks=tuple(sorted(tracks.items())),
        checkin=checkin,
        homework=tuple(homework),
        quiet=quiet[1] if quiet else None,
        caregiver=caregiver,
    )
    return pairs, record


def _bad_times(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    ticked = [k.removeprefix("track_") for k, _ in pairs if k.startswith("track_")]
    return set_pair(pairs, f"times_{draw(st.sampled_from(ticked))}", draw(BAD_TIMES))


def _too_many_times(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    ticked = [k.removeprefix("track_") for k, _ in pairs if k.startswith("track_")]
    count = draw(st.integers(MAX_TIMES_PER_TRACK + 1, 90))
    times = ", ".join(f"{m // 60}:{m % 60:02d}" for m in range(0, count * 15, 15))
    return set_pair(pairs, f"times_{draw(st.sampled_from(ticked))}", times)


def _with_nul(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    """A NUL inside a text field that is otherwise fine."""
    key = draw(st.sampled_from([k for k in ("first_name", "homework", "consent_how")
                                if pair_value(pairs, k) is not None]))  # fmt: skip
    text = str(pair_value(pairs, key))
    at = draw(st.integers(0, len(text)))
    return set_pair(pairs, key, text[:at] + "\x00" + text[at:])


def _too_much_homework(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    lines = draw(
        st.lists(HOMEWORK_LINE, min_size=MAX_HOMEWORK + 1, max_size=MAX_HOMEWORK + 10, unique=True)
    )
    return set_pair(pairs, "homework", "\n".join(lines))


def _caregiver_is_patient(
    draw: st.DrawFn, pairs: list[tuple[str, Value]]
) -> list[tuple[str, Value]]:
    phone = pair_value(pairs, "phone")
    assert isinstance(phone, Fill)
    return set_pair(pairs, "caregiver_phone", replace(phone, style=draw(st.integers(0, 4))))


# Each of these alone makes a valid patient form invalid.
PATIENT_INVALID: dict[str, Mutation] = {
    "blank first name": lambda d, p: set_pair(
        p, "first_name", d(st.sampled_from(["", "   ", "\t"]))
    ),
    "first name over 40": lambda d, p: set_pair(
        p, "first_name", d(st.text(LETTERS, min_size=41, max_size=300))
    ),
    "bad phone": lambda d, p: set_pair(p, "phone", d(BAD_PHONES)),
    "another patient's phone": lambda d, p: set_pair(p, "phone", phone_fill(d, "taken")),
    "bad time zone": lambda d, p: set_pair(p, "timezone", d(BAD_ZONES)),
    "bad language": lambda d, p: set_pair(
        p, "language", d(st.sampled_from(["fr", "", "EN", "en ", "es\x00"]))
    ),
    "bad quiet hours": lambda d, p: set_pair(p, "quiet_hours", d(BAD_QUIET)),
    "bad caregiver": lambda d, p: set_pair(p, "caregiver_phone", d(BAD_PHONES.filter(bool))),
    "caregiver is the patient": _caregiver_is_patient,
    "bad times on a ticked track": _bad_times,
    "no track ticked": lambda d, p: [(k, v) for k, v in p if not k.startswith("track_")],
    "too many times on a ticked track": _too_many_times,
    "NUL in a text field": _with_nul,
    "too much homework": _too_much_homework,
}
ENROL_INVALID: dict[str, Mutation] = {
    **PATIENT_INVALID,
    "blank consent": lambda d, p: set_pair(p, "consent_how", d(st.sampled_from(["", "  "]))),
    "bad consent time": lambda d, p: set_pair(
        p,
        "consent_when",
        d(st.sampled_from(["", "yesterday", "2026-02-30T10:00", "2999-01-01T10:00", "T"])),
    ),
    "missing required field": lambda d, p: drop_pair(
        p, d(st.sampled_from(["first_name", "phone", "consent_when"]))
    ),
}


def _many_times(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    ticked = [k.removeprefix("track_") for k, _ in pairs if k.startswith("track_")] or ["sleep"]
    count = draw(st.integers(20, 80))
    times = ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, count * 15, 15))
    return set_pair(pairs, f"times_{draw(st.sampled_from(ticked))}", times)


def _long_homework(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    lines = draw(st.lists(st.text(min_size=150, max_size=400), min_size=1, max_size=5))
    return set_pair(pairs, "homework", "\n".join(lines))


# Each of these may or may not leave the form valid.
PATIENT_WILD: dict[str, Mutation] = {
    "random value": lambda d, p: set_pair(p, d(st.sampled_from([k for k, _ in p])), d(JUNK)),
    "repeated key": lambda d, p: [*p, (d(st.sampled_from([k for k, _ in p])), d(JUNK))],
    "repeated key first": lambda d, p: [(d(st.sampled_from([k for k, _ in p])), d(JUNK)), *p],
    "dropped field": lambda d, p: drop_pair(p, d(st.sampled_from([k for k, _ in p]))),
    "unknown field": lambda d, p: [*p, (d(st.text(min_size=1, max_size=30)), d(JUNK))],
    "many times": _many_times,
    "long homework lines": _long_homework,
    "odd consent time": lambda d, p: set_pair(
        p,
        "consent_when",
        d(st.sampled_from(["0001-01-01T00:00", "9999-12-31T23:59", "1900-01-01T00:00", "2026"])),
    ),
    "odd time zone": lambda d, p: set_pair(p, "timezone", d(st.sampled_from(["Factory", " UTC "]))),
}


def _mutated(
    draw: st.DrawFn,
    form: str,
    pairs: list[tuple[str, Value]],
    records: tuple[PatientRecord, ...],
    invalid: dict[str, Mutation],
    **extra: Any,
) -> Case:
    """VALID as built, INVALID with one invalid change, or WILD with up to three changes."""
    kind = draw(st.sampled_from([VALID, INVALID, INVALID, WILD, WILD]))
    csrf = draw(st.sampled_from(["ok"] * 12 + ["missing", "wrong"]))
    if csrf != "ok":
        return Case(form, INVALID, f"CSRF token {csrf}", tuple(pairs), csrf=csrf, **extra)
    if kind == VALID:
        return Case(form, VALID, "valid", tuple(pairs), records=records, **extra)
    if kind == INVALID:
        name = draw(st.sampled_from(sorted(invalid)))
        return Case(form, INVALID, name, tuple(invalid[name](draw, pairs)), **extra)
    names = draw(st.lists(st.sampled_from(sorted(PATIENT_WILD)), min_size=1, max_size=3))
    for name in names:
        pairs = PATIENT_WILD[name](draw, pairs)
    return Case(form, WILD, ", ".join(names), tuple(pairs), **extra)


@st.composite
def enrol_cases(draw: st.DrawFn) -> Case:
    pairs, record = draw(patient_fields(phone=phone_fill(draw), enrol=True))
    return _mutated(draw, "enrol", pairs, (record,), ENROL_INVALID)


@st.composite
def edit_cases(draw: st.DrawFn) -> Case:
    phone = phone_fill(draw, draw(st.sampled_from(["own", "own", "fresh"])))
    pairs, record = draw(patient_fields(phone=phone, enrol=False))
    target = draw(st.sampled_from(["own"] * 10 + ["stranger", "missing"]))
    if target != "own":
        # Someone else's patient, or no patient: refused whatever the form holds.
        return Case("edit", INVALID, f"{target} patient", tuple(pairs), target=target)
    return _mutated(draw, "edit", pairs, (record,), PATIENT_INVALID)
