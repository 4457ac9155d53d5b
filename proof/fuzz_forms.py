"""Fuzzing the bulk CSV enrolment and the staff forms through the real app: the enrolment
form, the patient edit form, the alert acknowledge and resolve notes (as a clinician) and the
programme schedule edit (as an operator). Flask's test client posts them with CSRF on, each
token read from the form's own page.

Shared by the proof scenario "bad input (CSV import and forms)" and by
tests/web/test_forms_fuzz.py: the strategies build `Case`s and the `Bench` posts them and
checks the database.

Every case says what it is. VALID: must be accepted and leave exactly the record the case
describes. INVALID: must be refused and write nothing. WILD (random input): either refused
with nothing written, or accepted with a complete, consistent record. Whatever the case,
no response is a 5xx. "Nothing written" compares a snapshot of the tables taken before the
post with one taken after; the only rows a refusal may add are audit rows with the outcome
"denied" (the record of someone asking for a patient that is not theirs)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast
from zoneinfo import ZoneInfo

from flask import Flask
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from coachbot.content.lint import clinician_text_problem
from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.domain.program import COACHING_TRACKS, LANGUAGES, TRACK_POLICIES
from coachbot.domain.states import AlertKind, AlertSeverity, AlertStatus, PatientStatus
from coachbot.models import (
    Alert,
    AuditEntry,
    HomeworkItem,
    Nudge,
    OutboundMessage,
    Patient,
    Program,
    ProgramAssignment,
    ProgramDefault,
    ProgramVersion,
    TrackSchedule,
)
from coachbot.runtime import Runtime
from coachbot.services.alerts import raise_alert
from coachbot.services.bulk_enrollment import BULK_COLUMNS
from coachbot.services.caregivers.records import caregiver_of
from coachbot.services.enrollment import MAX_HOMEWORK, MAX_TIMES_PER_TRACK
from coachbot.services.programs import FOLLOWUP_POLICIES, QUIET_POLICIES, show_program
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import csrf_token, make_staff, sign_in

VALID, INVALID, WILD = "valid", "invalid", "wild"
FORMS = ("bulk", "enrol", "edit", "alert", "schedule")
# Fresh numbers come from these area codes' 555 blocks, which no other fixture uses.
_AREAS = ("415", "312", "206", "303", "512", "213", "646", "702")


@dataclass(frozen=True)
class Fill:
    """A value the bench fills in when it posts. `fresh`: a number new to the database (one
    slot is one number within a case, so two cells with the same slot are a duplicate);
    `taken`: another patient's number; `own`: the edited patient's current number, in one
    of several spellings (`style`). `base` / `stale`: the programme version the edit page
    shows, or the one before it."""

    kind: str
    slot: int = 0
    style: int = 0


Value = str | Fill


@dataclass(frozen=True)
class PatientRecord:
    """What an accepted VALID enrolment or edit must leave. `tracks` maps each coaching
    track to its canonical times; None means the programme default at that moment."""

    first_name: str
    phone: Fill
    timezone: str
    language: str
    tracks: tuple[tuple[str, str | None], ...]
    checkin: bool
    homework: tuple[str, ...]
    quiet: str | None = None
    caregiver: Fill | None = None


@dataclass(frozen=True)
class CsvFile:
    header: tuple[str, ...] = ()
    rows: tuple[tuple[Value, ...], ...] = ()
    bom: bool = False
    newline: str = "\n"
    quote_all: bool = False
    encoding: str = "utf-8"
    raw: bytes | None = None  # posted as they are, instead of header and rows


@dataclass(frozen=True)
class Case:
    form: str  # one of FORMS
    expect: str  # VALID, INVALID or WILD
    why: str  # what the strategy did, for reports
    pairs: tuple[tuple[str, Value], ...] = ()  # the form's fields, in order, repeats allowed
    csv: CsvFile | None = None
    records: tuple[PatientRecord, ...] = ()  # VALID enrolments and edits
    csrf: str = "ok"  # ok | missing | wrong
    target: str = "own"  # edit: own | stranger | missing; alert: open | acknowledged |
    # resolved | missing; schedule: the track edited
    action: str = ""  # alert: acknowledge | resolve
    times: str | None = None  # schedule: the canonical times a VALID save stores


# --------------------------------------------------------------------------- strategies

_LETTERS = st.characters(categories=["L"])
NAMES = st.one_of(
    st.sampled_from(
        ["Rosa", "Zoë", "Nguyễn", "李雷", "O'Brien", "Anne-Marie", "José Luis", "Ngũgĩ", "أحمد"]
    ),
    st.text(_LETTERS, min_size=1, max_size=40),
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
_HOMEWORK_LINE = (
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


def _phone(draw: st.DrawFn, kind: str = "fresh", slot: int = 0) -> Fill:
    return Fill(kind, slot, draw(st.integers(0, 4)))


@st.composite
def quiet_hours(draw: st.DrawFn) -> tuple[str, str] | None:
    picks = draw(st.none() | st.tuples(*(st.integers(0, 23), st.integers(0, 59)) * 2))
    if picks is None:
        return None
    h1, m1, h2, m2 = picks
    canonical = f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"
    return draw(st.sampled_from([canonical, f"{h1}:{m1:02d} - {h2}:{m2:02d}"])), canonical


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
    homework = draw(st.lists(_HOMEWORK_LINE, max_size=MAX_HOMEWORK, unique=True))
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


def _set(pairs: list[tuple[str, Value]], key: str, value: Value) -> list[tuple[str, Value]]:
    """Every `key` replaced by one `key=value` (added when absent)."""
    kept = [(k, v) for k, v in pairs if k != key]
    return [*kept, (key, value)]


def _drop(pairs: list[tuple[str, Value]], key: str) -> list[tuple[str, Value]]:
    return [(k, v) for k, v in pairs if k != key]


def _value(pairs: list[tuple[str, Value]], key: str) -> Value | None:
    return next((v for k, v in pairs if k == key), None)


Mutation = Callable[[st.DrawFn, list[tuple[str, Value]]], list[tuple[str, Value]]]


def _bad_times(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    ticked = [k.removeprefix("track_") for k, _ in pairs if k.startswith("track_")]
    return _set(pairs, f"times_{draw(st.sampled_from(ticked))}", draw(BAD_TIMES))


def _too_many_times(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    ticked = [k.removeprefix("track_") for k, _ in pairs if k.startswith("track_")]
    count = draw(st.integers(MAX_TIMES_PER_TRACK + 1, 90))
    times = ", ".join(f"{m // 60}:{m % 60:02d}" for m in range(0, count * 15, 15))
    return _set(pairs, f"times_{draw(st.sampled_from(ticked))}", times)


def _with_nul(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    """A NUL inside a text field that is otherwise fine."""
    key = draw(st.sampled_from([k for k in ("first_name", "homework", "consent_how")
                                if _value(pairs, k) is not None]))  # fmt: skip
    text = str(_value(pairs, key))
    at = draw(st.integers(0, len(text)))
    return _set(pairs, key, text[:at] + "\x00" + text[at:])


def _too_much_homework(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    lines = draw(
        st.lists(_HOMEWORK_LINE, min_size=MAX_HOMEWORK + 1, max_size=MAX_HOMEWORK + 10, unique=True)
    )
    return _set(pairs, "homework", "\n".join(lines))


def _caregiver_is_patient(
    draw: st.DrawFn, pairs: list[tuple[str, Value]]
) -> list[tuple[str, Value]]:
    phone = _value(pairs, "phone")
    assert isinstance(phone, Fill)
    return _set(pairs, "caregiver_phone", replace(phone, style=draw(st.integers(0, 4))))


# Each of these alone makes a valid patient form invalid.
PATIENT_INVALID: dict[str, Mutation] = {
    "blank first name": lambda d, p: _set(p, "first_name", d(st.sampled_from(["", "   ", "\t"]))),
    "first name over 40": lambda d, p: _set(
        p, "first_name", d(st.text(_LETTERS, min_size=41, max_size=300))
    ),
    "bad phone": lambda d, p: _set(p, "phone", d(BAD_PHONES)),
    "another patient's phone": lambda d, p: _set(p, "phone", _phone(d, "taken")),
    "bad time zone": lambda d, p: _set(p, "timezone", d(BAD_ZONES)),
    "bad language": lambda d, p: _set(
        p, "language", d(st.sampled_from(["fr", "", "EN", "en ", "es\x00"]))
    ),
    "bad quiet hours": lambda d, p: _set(p, "quiet_hours", d(BAD_QUIET)),
    "bad caregiver": lambda d, p: _set(p, "caregiver_phone", d(BAD_PHONES.filter(bool))),
    "caregiver is the patient": _caregiver_is_patient,
    "bad times on a ticked track": _bad_times,
    "no track ticked": lambda d, p: [(k, v) for k, v in p if not k.startswith("track_")],
    "too many times on a ticked track": _too_many_times,
    "NUL in a text field": _with_nul,
    "too much homework": _too_much_homework,
}
ENROL_INVALID: dict[str, Mutation] = {
    **PATIENT_INVALID,
    "blank consent": lambda d, p: _set(p, "consent_how", d(st.sampled_from(["", "  "]))),
    "bad consent time": lambda d, p: _set(
        p,
        "consent_when",
        d(st.sampled_from(["", "yesterday", "2026-02-30T10:00", "2999-01-01T10:00", "T"])),
    ),
    "missing required field": lambda d, p: _drop(
        p, d(st.sampled_from(["first_name", "phone", "consent_when"]))
    ),
}


def _many_times(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    ticked = [k.removeprefix("track_") for k, _ in pairs if k.startswith("track_")] or ["sleep"]
    count = draw(st.integers(20, 80))
    times = ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, count * 15, 15))
    return _set(pairs, f"times_{draw(st.sampled_from(ticked))}", times)


def _long_homework(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    lines = draw(st.lists(st.text(min_size=150, max_size=400), min_size=1, max_size=5))
    return _set(pairs, "homework", "\n".join(lines))


# Each of these may or may not leave the form valid.
PATIENT_WILD: dict[str, Mutation] = {
    "random value": lambda d, p: _set(p, d(st.sampled_from([k for k, _ in p])), d(JUNK)),
    "repeated key": lambda d, p: [*p, (d(st.sampled_from([k for k, _ in p])), d(JUNK))],
    "repeated key first": lambda d, p: [(d(st.sampled_from([k for k, _ in p])), d(JUNK)), *p],
    "dropped field": lambda d, p: _drop(p, d(st.sampled_from([k for k, _ in p]))),
    "unknown field": lambda d, p: [*p, (d(st.text(min_size=1, max_size=30)), d(JUNK))],
    "many times": _many_times,
    "long homework lines": _long_homework,
    "odd consent time": lambda d, p: _set(
        p,
        "consent_when",
        d(st.sampled_from(["0001-01-01T00:00", "9999-12-31T23:59", "1900-01-01T00:00", "2026"])),
    ),
    "odd time zone": lambda d, p: _set(p, "timezone", d(st.sampled_from(["Factory", " UTC "]))),
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
    pairs, record = draw(patient_fields(phone=_phone(draw), enrol=True))
    return _mutated(draw, "enrol", pairs, (record,), ENROL_INVALID)


@st.composite
def edit_cases(draw: st.DrawFn) -> Case:
    phone = _phone(draw, draw(st.sampled_from(["own", "own", "fresh"])))
    pairs, record = draw(patient_fields(phone=phone, enrol=False))
    target = draw(st.sampled_from(["own"] * 10 + ["stranger", "missing"]))
    if target != "own":
        # Someone else's patient, or no patient: refused whatever the form holds.
        return Case("edit", INVALID, f"{target} patient", tuple(pairs), target=target)
    return _mutated(draw, "edit", pairs, (record,), PATIENT_INVALID)


# --- bulk CSV

BULK_REQUIRED = ("first_name", "phone", "timezone")
BULK_OPTIONAL = tuple(c for c in BULK_COLUMNS if c not in BULK_REQUIRED)


@st.composite
def csv_row(
    draw: st.DrawFn, columns: tuple[str, ...], slot: int
) -> tuple[dict[str, Value], PatientRecord]:
    """A valid row for `columns` and its record."""
    name = draw(NAMES)
    row: dict[str, Value] = {
        "first_name": name,
        "phone": _phone(draw, "fresh", slot),
        "timezone": draw(ZONES),
    }
    language, tracks, checkin = "en", COACHING_TRACKS, False
    times: str | None = None
    quiet: str | None = None
    caregiver: Fill | None = None
    homework: tuple[str, ...] = ()
    if "language" in columns:
        language = draw(st.sampled_from([*LANGUAGES, ""]))
        row["language"] = draw(st.sampled_from([language, language.upper()]))
        language = language or "en"
    if "tracks" in columns:
        chosen = draw(st.lists(st.sampled_from(COACHING_TRACKS), max_size=5, unique=True))
        row["tracks"] = ", ".join(draw(st.sampled_from([t, t.upper(), t.title()])) for t in chosen)
        tracks = tuple(chosen) or COACHING_TRACKS
    if "times" in columns and draw(st.booleans()):
        row["times"], times = draw(times_text())
    if "quiet_hours" in columns:
        got = draw(quiet_hours())
        row["quiet_hours"], quiet = got if got else ("", None)
    if {"caregiver_phone", "caregiver_name"} <= set(columns) and draw(st.booleans()):
        caregiver = _phone(draw, "fresh", 100 + slot)
        row["caregiver_phone"] = caregiver
        row["caregiver_name"] = "Sam"
    if "checkin" in columns:
        row["checkin"] = draw(st.sampled_from(["", "yes", "no", "true", "false", "1", "0", "YES"]))
        checkin = str(row["checkin"]).lower() in ("yes", "true", "1")
    if "homework" in columns:
        homework = tuple(draw(st.lists(_HOMEWORK_LINE, max_size=MAX_HOMEWORK, unique=True)))
        row["homework"] = "|".join(homework)
    if "consent" in columns:
        row["consent"] = draw(st.sampled_from(["", "signed form", "verbal, in clinic"]))
    record = PatientRecord(
        first_name=name,
        phone=row["phone"],  # type: ignore[arg-type]
        timezone=str(row["timezone"]),
        language=language,
        tracks=tuple(sorted((t, times) for t in tracks)),
        checkin=checkin,
        homework=homework,
        quiet=quiet,
        caregiver=caregiver,
    )
    return row, record


Table = tuple[list[str], list[dict[str, Value]]]


def _cell(
    column: str, value: Value, index: int | None = None
) -> Callable[[st.DrawFn, Table], Table]:
    """Sets `column` on row `index` or a drawn one (adding the column to the header)."""

    def change(draw: st.DrawFn, table: Table) -> Table:
        header, rows = table
        at = draw(st.integers(0, len(rows) - 1)) if index is None else index
        rows = [dict(r) for r in rows]
        rows[at][column] = value
        return (header if column in header else [*header, column]), rows

    return change


def _bulk_invalid(draw: st.DrawFn, table: Table, name: str) -> Table:
    header, rows = table
    if name == "duplicate phone":
        twin = dict(draw(st.sampled_from(rows)))
        twin["first_name"] = "Twin"
        twin["phone"] = replace(cast(Fill, twin["phone"]), style=draw(st.integers(0, 4)))
        at = draw(st.integers(0, len(rows)))
        return header, [*rows[:at], twin, *rows[at:]]
    if name == "missing column":
        gone = draw(st.sampled_from(BULK_REQUIRED))
        return [c for c in header if c != gone], rows
    if name == "misspelt column":
        gone = draw(st.sampled_from(BULK_REQUIRED))
        spelt = draw(st.sampled_from([gone.upper(), f" {gone}", f"{gone}_", gone.title()]))
        return [spelt if c == gone else c for c in header], [
            {(spelt if k == gone else k): v for k, v in r.items()} for r in rows
        ]
    if name == "no rows":
        return header, []
    if name == "caregiver is the patient":
        index = draw(st.integers(0, len(rows) - 1))
        phone = rows[index]["phone"]
        assert isinstance(phone, Fill)
        return _cell("caregiver_phone", replace(phone, style=1), index)(draw, table)
    if name == "cell over the CSV field limit":
        big = "x" * draw(st.integers(131_073, 200_000))
        return _cell(draw(st.sampled_from(["first_name", "homework", "notes"])), big)(draw, table)
    if name == "file over 1 MB":
        # Valid rows, each with a large unknown column: together past the 1 MB read limit.
        rows = [{**r, "notes": "n" * 120_000} for r in rows] * (9 // len(rows) + 1)
        rows = [{**r, "phone": Fill("fresh", i, 0)} for i, r in enumerate(rows)]
        return [*header, "notes"], rows
    return BULK_CELL_INVALID[name](draw)(draw, table)


# One bad cell in an otherwise valid file, each value drawn when the mutation is chosen.
BULK_CELL_INVALID: dict[str, Callable[[st.DrawFn], Callable[[st.DrawFn, Table], Table]]] = {
    "bad phone": lambda d: _cell("phone", d(BAD_PHONES)),
    "another patient's phone": lambda d: _cell("phone", _phone(d, "taken")),
    "bad time zone": lambda d: _cell("timezone", d(BAD_ZONES)),
    "unknown track": lambda d: _cell(
        "tracks", d(st.sampled_from(["yoga", "sleep, yoga", "checkin"]))
    ),
    "bad times": lambda d: _cell("times", d(BAD_TIMES.filter(lambda t: t.strip(" ,") != ""))),
    "bad checkin": lambda d: _cell("checkin", d(st.sampled_from(["maybe", "y", "2", "oui"]))),
    "blank first name": lambda d: _cell("first_name", d(st.sampled_from(["", "  "]))),
    "first name over 40": lambda d: _cell("first_name", "N" * d(st.integers(41, 500))),
    "bad language": lambda d: _cell("language", d(st.sampled_from(["fr", "english", "e n"]))),
    "bad quiet hours": lambda d: _cell("quiet_hours", d(BAD_QUIET)),
    "bad caregiver": lambda d: _cell("caregiver_phone", d(BAD_PHONES.filter(str.strip))),
    "too much homework": lambda d: _cell(
        "homework", "|".join(f"task {i}" for i in range(d(st.integers(MAX_HOMEWORK + 1, 60))))
    ),
    "too many times": lambda d: _cell(
        "times", ",".join(f"{h:02d}:00" for h in range(d(st.integers(MAX_TIMES_PER_TRACK + 1, 24))))
    ),
    "NUL in a cell": lambda d: _cell(
        d(st.sampled_from(["first_name", "homework", "notes"])), d(NAMES).replace("", "\x00", 1)
    ),
}


_BULK_FILE_INVALID = (
    "duplicate phone",
    "missing column",
    "misspelt column",
    "no rows",
    "caregiver is the patient",
    "cell over the CSV field limit",
    "file over 1 MB",
)
_BULK_CELL_NAMES = tuple(BULK_CELL_INVALID)


def _junk_cell(draw: st.DrawFn, table: Table) -> Table:
    column = draw(st.sampled_from(table[0]))
    return _cell(column, draw(JUNK | st.text(alphabet=',"\n\r;| \x00', max_size=20)))(draw, table)


def _ragged_row(draw: st.DrawFn, table: Table) -> Table:
    header, rows = table
    index = draw(st.integers(0, len(rows) - 1))
    rows = [dict(r) for r in rows]
    if draw(st.booleans()):
        rows[index] = dict(list(rows[index].items())[: draw(st.integers(0, 2))])
        return header, rows
    return [*header, *draw(st.lists(st.text(max_size=8), min_size=1, max_size=3))], rows


BULK_WILD: dict[str, Callable[[st.DrawFn, Table], Table]] = {
    "junk cell": _junk_cell,
    "ragged row": _ragged_row,
    "repeated column": lambda d, t: ([*t[0], d(st.sampled_from(t[0]))], t[1]),
    "unknown column": lambda d, t: ([*t[0], d(st.text(max_size=12))], t[1]),
}


@st.composite
def bulk_cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from([VALID, VALID, INVALID, INVALID, WILD, WILD, "bytes"]))
    if kind == "bytes":
        raw = draw(
            st.binary(max_size=3000)
            | st.text(max_size=3000).map(lambda t: t.encode("utf-8"))
            | st.sampled_from(
                [b"", b"\xef\xbb\xbf", b"first_name,phone,timezone\r\n", b"\x00" * 99]
            )
        )
        return Case("bulk", WILD, "random bytes", csv=CsvFile(raw=raw))
    columns = (*BULK_REQUIRED, *draw(st.lists(st.sampled_from(BULK_OPTIONAL), unique=True)))
    header = list(draw(st.permutations(columns)))
    if draw(st.booleans()):
        header.append("notes")  # a column the import does not know is ignored
    made = [draw(csv_row(tuple(header), slot)) for slot in range(draw(st.integers(1, 6)))]
    rows = [dict(r) for r, _ in made]
    if "notes" in header:
        for row in rows:
            # Any text but NUL, which makes the file not a text file.
            row["notes"] = draw(st.text(st.characters(exclude_characters="\x00"), max_size=30))
    layout = {
        "bom": draw(st.booleans()),
        # A bare CR ends lines in files from Excel for Mac.
        "newline": draw(st.sampled_from(["\n", "\r\n", "\r"])),
        "quote_all": draw(st.booleans()),
    }
    table: Table = (header, rows)
    why = "valid"
    if kind == INVALID:
        why = draw(st.sampled_from([*_BULK_FILE_INVALID, *_BULK_CELL_NAMES, "not UTF-8"]))
        if why == "not UTF-8":
            layout["encoding"] = draw(st.sampled_from(["latin-1", "utf-16"]))
            table = _cell("first_name", "Zoë")(draw, table)
        else:
            table = _bulk_invalid(draw, table, why)
    elif kind == WILD:
        names = draw(st.lists(st.sampled_from(sorted(BULK_WILD)), min_size=1, max_size=3))
        for name in names:
            table = BULK_WILD[name](draw, table)
        why = ", ".join(names)
    header, rows = table
    file = CsvFile(
        header=tuple(header),
        rows=tuple(tuple(r.get(c, "") for c in header) for r in rows),
        **layout,  # type: ignore[arg-type]
    )
    records = tuple(record for _, record in made) if kind == VALID else ()
    csrf = draw(st.sampled_from(["ok"] * 12 + ["missing", "wrong"]))
    if csrf != "ok":
        return Case("bulk", INVALID, f"CSRF token {csrf}", csv=file, csrf=csrf)
    return Case("bulk", kind, why, csv=file, records=records)


# --- alerts

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


# --- the operator's schedule edit


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
    "times outside the send window": lambda d, p: _set(
        p, "times", d(st.sampled_from(["06:00", "20:30", "23:59", "09:00,21:00"]))
    ),
    "bad times": lambda d, p: _set(p, "times", d(BAD_TIMES)),
    "reply window not a number": lambda d, p: _set(
        p, "reply_window_minutes", d(st.sampled_from(["", "abc", "1e3", "١٠"]))
    ),
    "reply window out of range": lambda d, p: _set(
        p, "reply_window_minutes", d(st.sampled_from(["0", "14", "-60", "2881", "9" * 30]))
    ),
    "reply window longer than the gap": lambda d, p: _set(
        _set(p, "times", "09:00,10:00"), "reply_window_minutes", "61"
    ),
    "bad days": lambda d, p: _set(p, "days", d(st.sampled_from(["", "someday", "mon,,fri", "8"]))),
    "bad phases": lambda d, p: _set(
        p, "phases", d(st.sampled_from(["garbage", "0-28", "x-y:daily"]))
    ),
    "bad follow-up": lambda d, p: _set(p, "followup", d(st.sampled_from(["twice", "", "ONCE"]))),
    "bad quiet policy": lambda d, p: _set(p, "quiet_policy", d(st.sampled_from(["never", ""]))),
    "unknown track": lambda d, p: _set(p, "track", d(st.sampled_from(["yoga", "", "sleep2"]))),
    "stale version": lambda d, p: _set(p, "base_version", Fill("stale")),
    "bad version": lambda d, p: _set(p, "base_version", d(st.sampled_from(["", "abc", "-1"]))),
}


def _crowded_day(draw: st.DrawFn, pairs: list[tuple[str, Value]]) -> list[tuple[str, Value]]:
    """Every quarter hour of the send window: each time valid, the list as long as it gets."""
    step = draw(st.sampled_from([15, 20, 30]))
    times = ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in range(8 * 60, 20 * 60, step))
    return _set(_set(_set(pairs, "times", times), "reply_window_minutes", "15"), "action", "save")


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
        pairs = _set(TRACK_INVALID[name](draw, pairs), "action", "save")
        return Case("schedule", INVALID, name, tuple(pairs), target=track)
    names = draw(st.lists(st.sampled_from(sorted(TRACK_WILD)), min_size=1, max_size=3))
    for name in names:
        pairs = TRACK_WILD[name](draw, pairs)
    return Case("schedule", WILD, ", ".join(names), tuple(pairs), target=track)


STRATEGIES: dict[str, st.SearchStrategy[Case]] = {
    "bulk": bulk_cases(),
    "enrol": enrol_cases(),
    "edit": edit_cases(),
    "alert": alert_cases(),
    "schedule": schedule_cases(),
}
any_case = st.one_of(*STRATEGIES.values())


# --------------------------------------------------------------------------- the bench

_BASE_VERSION = re.compile(r'name="base_version" type="hidden" value="(\d*)"')
_TIMES = re.compile(r"[0-2][0-9]:[0-5][0-9](,[0-2][0-9]:[0-5][0-9])*")
_COUNTED = (
    Patient,
    TrackSchedule,
    HomeworkItem,
    Nudge,
    OutboundMessage,
    Alert,
    ProgramVersion,
    ProgramDefault,
    ProgramAssignment,
)


def _data_rows(csv_bytes: bytes) -> int | None:
    """Data rows in an uploaded CSV as the csv module reads them (None: not readable)."""
    try:
        text = csv_bytes.decode("utf-8-sig")
        return sum(1 for _ in csv.DictReader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        return None


def upload(fields: MultiDict[str, Any], csv_bytes: bytes) -> dict[str, Any]:
    """`client.post` arguments for a form with a CSV file, encoded in memory: the test
    client spools a body over 500 kB to a temporary file it never closes."""
    fields = fields.copy()
    fields.add(
        "csv_file", FileStorage(io.BytesIO(csv_bytes), "patients.csv", content_type="text/csv")
    )
    boundary, body = encode_multipart(fields)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def _rows(session: Session, table: Any, *where: Any) -> list[tuple[Any, ...]]:
    query = select(table.__table__).where(*where).order_by(*table.__table__.primary_key)
    return [tuple(row) for row in session.execute(query)]


# What can go wrong with one post, as Problem.kind.
SERVER_ERROR, WROTE, ACCEPTED_INVALID, REFUSED_VALID, RECORD = (
    "5xx",
    "refused but wrote",
    "invalid accepted",
    "valid refused",
    "incomplete record",
)


@dataclass(frozen=True)
class Problem:
    kind: str
    case: Case
    text: str

    def __str__(self) -> str:
        return f"{self.case.form} [{self.case.expect}: {self.case.why}] {self.kind}: {self.text}"


@dataclass
class Bench:
    """Posts cases to the app as a signed-in clinician (and operator) and checks the
    database. `run` returns the problems with one case; `problems` keeps them all.
    `outcomes` counts "form expect accepted|refused" (alerts: changed|unchanged)."""

    runtime: Runtime
    app: Flask
    tried: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    _next_number: int = 0

    def __post_init__(self) -> None:
        with self.runtime.session_factory() as session:
            self.clinician_id = make_staff(session, "fuzz.clinician@clinic.test")
            make_staff(session, "fuzz.operator@clinic.test", role="operator")
            own = make_patient(session, first_name="Own", phone=self._fresh_number())
            own.clinician_id = self.clinician_id
            stranger = make_patient(session, first_name="Stranger", phone=self._fresh_number())
            session.commit()
            self.own_id, self.stranger_id = own.id, stranger.id
            self.taken = stranger.phone_e164
        self.clinician = self.app.test_client()
        self.operator = self.app.test_client()
        for client, email in (
            (self.clinician, "fuzz.clinician@clinic.test"),
            (self.operator, "fuzz.operator@clinic.test"),
        ):
            answer = sign_in(client, email)
            assert answer.status_code == 302, f"could not sign in {email}"

    # --- filling in

    def _fresh_number(self) -> str:
        n = self._next_number
        self._next_number += 1
        return f"+1{_AREAS[n // 10_000 % len(_AREAS)]}555{n % 10_000:04d}"

    @staticmethod
    def _spell(e164: str, style: int) -> str:
        area, exchange, line = e164[2:5], e164[5:8], e164[8:]
        return [
            e164,
            f"({area}) {exchange}-{line}",
            f"{area}.{exchange}.{line}",
            f" 1 {area} {exchange} {line} ",
            e164.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        ][style % 5]

    def _number(self, fill: Fill, numbers: dict[int, str]) -> str:
        """The E.164 number a phone Fill stands for in this case."""
        if fill.kind == "fresh":
            if fill.slot not in numbers:
                numbers[fill.slot] = self._fresh_number()
            return numbers[fill.slot]
        if fill.kind == "taken":
            return self.taken
        with self.runtime.read_session_factory() as session:
            return session.get_one(Patient, self.own_id).phone_e164

    def _text(self, value: Value, numbers: dict[int, str], base: str) -> str:
        if isinstance(value, str):
            return value
        if value.kind == "base":
            return base
        if value.kind == "stale":
            return str(int(base) - 1)
        return self._spell(self._number(value, numbers), value.style)

    def _csv_bytes(self, file: CsvFile, numbers: dict[int, str]) -> bytes:
        if file.raw is not None:
            return file.raw
        rows = [[self._text(v, numbers, "") for v in row] for row in file.rows]
        # Python 3.11's writer quotes a cell holding a line end only if that is the file's
        # own line terminator; a "\n" in a CR-ended file must be quoted too to stay CSV.
        breaks = any("\n" in c or "\r" in c for row in rows for c in row)
        out = io.StringIO(newline="")
        writer = csv.writer(
            out,
            lineterminator=file.newline,
            quoting=csv.QUOTE_ALL if file.quote_all or breaks else csv.QUOTE_MINIMAL,
        )
        writer.writerow(file.header)
        writer.writerows(rows)
        text = ("\ufeff" if file.bom else "") + out.getvalue()
        # latin-1 cannot spell every name: those characters become "?" (Zoë stays invalid UTF-8).
        return text.encode(file.encoding, "replace")

    # --- the database

    def _snapshot(self, alert_id: int | None) -> dict[str, Any]:
        with self.runtime.read_session_factory() as s:
            snap: dict[str, Any] = {
                t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in _COUNTED
            }
            snap["audit"] = Counter(
                {
                    (action, outcome): n
                    for action, outcome, n in s.execute(
                        select(AuditEntry.action, AuditEntry.outcome, func.count()).group_by(
                            AuditEntry.action, AuditEntry.outcome
                        )
                    )
                }
            )
            ids = (self.own_id, self.stranger_id)
            snap["patient rows"] = _rows(s, Patient, Patient.id.in_(ids))
            snap["schedule rows"] = _rows(s, TrackSchedule, TrackSchedule.patient_id.in_(ids))
            snap["homework rows"] = _rows(s, HomeworkItem, HomeworkItem.patient_id.in_(ids))
            snap["programme rows"] = _rows(s, Program) + _rows(s, ProgramDefault)
            snap["alert rows"] = _rows(s, Alert, Alert.id == (alert_id or 0))
        return snap

    @staticmethod
    def _written(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        """What changed, apart from audit rows recording a denied request."""
        changed = [k for k in before if k != "audit" and before[k] != after[k]]
        added = after["audit"] - before["audit"]
        changed += [f"audit {a}/{o}" for (a, o) in added if o != "denied"]
        return changed

    def _new_alert(self, state: str) -> int:
        with self.runtime.session_factory() as session:
            alert = raise_alert(
                session,
                patient_id=self.own_id,
                kind=AlertKind.RED_FLAG,
                severity=AlertSeverity.URGENT,
                detail="red_flag:fuzz",
                now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
            )
            if state != AlertStatus.OPEN:
                alert.acknowledged_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
                alert.acknowledged_by_id = self.clinician_id
                alert.status = state
                if state == AlertStatus.RESOLVED:
                    alert.resolved_at, alert.resolved_by_id = (
                        alert.acknowledged_at,
                        self.clinician_id,
                    )
                    alert.resolution_note = "earlier"
            session.commit()
            return alert.id

    # --- posting

    def run(self, case: Case) -> list[Problem]:
        """Posts one case and returns what did not hold (also added to `problems`)."""
        self.tried[case.form] += 1
        numbers: dict[int, str] = {}
        client = self.operator if case.form == "schedule" else self.clinician
        alert_id = None
        page = {"enrol": "/patients/new", "bulk": "/patients/bulk", "alert": "/alerts"}.get(
            case.form, f"/patients/{self.own_id}/edit"
        )
        path = page
        if case.form == "alert":
            alert_id = 10**9 if case.target == "missing" else self._new_alert(case.target)
            path = f"/alerts/{alert_id}/{case.action}"
        elif case.form == "schedule":
            page = path = f"/operator/programs/standard/edit?track={case.target}"
        elif case.form == "edit":
            patient_id = {"own": self.own_id, "stranger": self.stranger_id}.get(case.target)
            path = f"/patients/{patient_id or 10**9}/edit"
        token = csrf_token(client, page)  # the token the form's own page carries
        base = ""
        if case.form == "schedule":
            version = _BASE_VERSION.search(client.get(page).get_data(as_text=True))
            base = version.group(1) if version else ""
        data: MultiDict[str, Any] = MultiDict(
            [(k, self._text(v, numbers, base)) for k, v in case.pairs]
        )
        if case.csrf != "missing":
            data.add("csrf_token", token if case.csrf == "ok" else token[:-4] + "AAAA")
        csv_bytes = b""
        post: dict[str, Any] = {"data": data}
        if case.csv is not None:
            csv_bytes = self._csv_bytes(case.csv, numbers)
            post = upload(data, csv_bytes)
        before = self._snapshot(alert_id)
        answer = client.post(path, **post)
        after = self._snapshot(alert_id)
        status = answer.status_code
        self.responses[status] += 1
        found: list[tuple[str, str]] = []
        if status >= 500:
            found.append((SERVER_ERROR, f"answered {status}"))
        elif case.form == "alert":
            found += self._check_alert(case, alert_id or 0, status, before, after)
        elif status not in (302, 303):
            self.outcomes[f"{case.form} {case.expect} refused"] += 1
            if case.expect == VALID and not self._rightly_not_saved(case, answer):
                found.append((REFUSED_VALID, f"answered {status}"))
            written = self._written(before, after)
            if written:
                found.append((WROTE, f"answered {status} and wrote {written}"))
        else:
            self.outcomes[f"{case.form} {case.expect} accepted"] += 1
            if case.expect == INVALID:
                found.append((ACCEPTED_INVALID, f"answered {status}"))
            location = answer.headers.get("Location", "")
            checked = self._check_accepted(case, location, csv_bytes, numbers, before, after)
            found += [(RECORD, text) for text in checked]
        problems = [Problem(kind, case, text) for kind, text in found]
        self.problems += problems
        return problems

    @staticmethod
    def _rightly_not_saved(case: Case, answer: Any) -> bool:
        """A valid schedule edit answers 200 to a preview, and a save identical to the
        programme's current track is refused ("nothing to save"), rightly."""
        if case.form != "schedule":
            return False
        action = next((v for k, v in case.pairs if k == "action"), "preview")
        if action != "save":
            return bool(answer.status_code == 200)
        return "nothing to save" in answer.get_data(as_text=True)

    # --- accepted submissions

    def _check_accepted(
        self,
        case: Case,
        location: str,
        csv_bytes: bytes,
        numbers: dict[int, str],
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> list[str]:
        if case.form == "schedule":
            return self._check_schedule(case, before, after)
        with self.runtime.read_session_factory() as s:
            if case.form == "edit":
                patient = s.get_one(Patient, self.own_id)
                problems = self._check_patient(s, patient, enrolled=False)
                if after["patients"] != before["patients"]:
                    problems.append("an edit added or removed patients")
                if case.records:
                    problems += self._compare(patient, case.records[0], numbers)
                return problems
            new = s.scalars(select(Patient).order_by(Patient.id).offset(before["patients"])).all()
            expected = 1 if case.form == "enrol" else _data_rows(csv_bytes)
            problems = []
            if len(new) != expected:
                problems.append(f"{len(new)} patients written for {expected} rows")
            if case.form == "enrol" and new and location != f"/patients/{new[0].id}":
                problems.append(f"redirected to {location!r}, not the new patient")
            for patient in new:
                problems += self._check_patient(s, patient, enrolled=True)
            by_phone = {p.phone_e164: p for p in new}
            for record in case.records:
                found = by_phone.get(self._number(record.phone, numbers))
                if found is None:
                    problems.append("a valid row was not enrolled")
                else:
                    problems += self._compare(found, record, numbers, session=s)
            return problems

    def _check_patient(self, s: Session, patient: Patient, *, enrolled: bool) -> list[str]:
        """A complete, consistent patient record, whatever was posted."""
        problems = []
        name = patient.first_name
        if not name or name != name.strip() or len(name) > 40:
            problems.append(f"first name {name!r}")
        for label, number in (
            ("phone", patient.phone_e164),
            ("caregiver", _caregiver_number(patient)),
        ):
            if number is None and label == "caregiver":
                continue
            try:
                if parse_mobile(number or "") != number:
                    problems.append(f"{label} not in E.164")
            except InvalidPhoneNumber:
                problems.append(f"{label} {number!r} is not a mobile number")
        try:
            ZoneInfo(patient.timezone)
        except Exception:
            problems.append(f"time zone {patient.timezone!r}")
        if patient.language not in LANGUAGES:
            problems.append(f"language {patient.language!r}")
        schedules = {sc.track: sc for sc in patient.schedules}
        if not set(schedules) & set(COACHING_TRACKS) or not set(schedules) <= set(TRACK_POLICIES):
            problems.append(f"tracks {sorted(schedules)}")
        if ("checkin" in schedules) != patient.checkin_enabled:
            problems.append("check-in schedule and setting disagree")
        for track, sc in schedules.items():
            times = sc.local_times.split(",")
            if not _TIMES.fullmatch(sc.local_times) or times != sorted(set(times)):
                problems.append(f"{track} times {sc.local_times!r}")
        active = [h.description for h in patient.homework if h.active]
        if len(active) > MAX_HOMEWORK or any(
            not h or h != h.strip() or len(h) > 200 for h in active
        ):
            problems.append(f"{len(active)} homework items, or a blank or long one")
        if enrolled:
            if patient.status != PatientStatus.PENDING_CONSENT or patient.opted_in_at is not None:
                problems.append(f"a new patient is {patient.status}")
            if patient.clinician_id != self.clinician_id:
                problems.append("a new patient is not the enrolling clinician's")
            if not patient.consent_method or patient.consent_at > patient.enrolled_at:
                problems.append("consent not recorded before enrolment")
            welcomes = s.scalar(
                select(func.count()).where(
                    OutboundMessage.patient_id == patient.id, OutboundMessage.kind == "welcome"
                )
            )
            enrolments = s.scalar(
                select(func.count()).where(
                    AuditEntry.patient_id == patient.id, AuditEntry.action == "patient.enroll"
                )
            )
            # Exactly one welcome: texted, or held for the patient's send window.
            welcomes = (welcomes or 0) + (patient.welcome_due_at is not None)
            if (welcomes, enrolments) != (1, 1):
                problems.append(f"{welcomes} welcome texts and {enrolments} enrolment audit rows")
        return problems

    def _compare(
        self,
        patient: Patient,
        record: PatientRecord,
        numbers: dict[int, str],
        session: Session | None = None,
    ) -> list[str]:
        """The patient holds exactly what the VALID case posted."""
        got = {
            "first_name": patient.first_name,
            "phone": patient.phone_e164,
            "timezone": patient.timezone,
            "language": patient.language,
            "checkin": patient.checkin_enabled,
            "quiet": (
                f"{patient.quiet_start:%H:%M}-{patient.quiet_end:%H:%M}"
                if patient.quiet_start and patient.quiet_end
                else None
            ),
            "caregiver": _caregiver_number(patient),
            "tracks": {s.track: s.local_times for s in patient.schedules if s.track != "checkin"},
            "homework": sorted(h.description for h in patient.homework if h.active),
        }
        defaults = {}
        if session is not None:
            defaults = {d.track: d.local_times for d in session.scalars(select(ProgramDefault))}
        want = {
            "first_name": record.first_name,
            "phone": self._number(record.phone, numbers),
            "timezone": record.timezone,
            "language": record.language,
            "checkin": record.checkin,
            "quiet": record.quiet,
            "caregiver": self._number(record.caregiver, numbers) if record.caregiver else None,
            "tracks": {
                t: times
                or defaults.get(t)
                or ",".join(x.strftime("%H:%M") for x in TRACK_POLICIES[t].default_times)
                for t, times in record.tracks
            },
            "homework": sorted(record.homework),
        }
        return [f"{k}: stored {got[k]!r}, posted {want[k]!r}" for k in want if got[k] != want[k]]

    def _check_schedule(
        self, case: Case, before: dict[str, Any], after: dict[str, Any]
    ) -> list[str]:
        problems = []
        if after["program_versions"] != before["program_versions"] + 1:
            problems.append("a save did not add exactly one programme version")
        added = after["audit"] - before["audit"]
        if added[("program.save", "ok")] != 1:
            problems.append("a save was not audited once")
        with self.runtime.read_session_factory() as s:
            program = show_program(s, "standard")
            for track, settings in program.tracks.items():
                default = s.get(ProgramDefault, track)
                if default is not None and default.local_times != settings.times:
                    problems.append(f"{track}: programme default and version disagree")
            if case.expect == VALID and program.tracks[case.target].times != case.times:
                problems.append(
                    f"saved {program.tracks[case.target].times!r}, posted {case.times!r}"
                )
        return problems

    def _check_alert(
        self, case: Case, alert_id: int, status: int, before: dict[str, Any], after: dict[str, Any]
    ) -> list[tuple[str, str]]:
        """The alert rules: acknowledge an open alert; resolve an unresolved one, with a
        note; a note over 2,000 characters, with a NUL or a bad CSRF token is refused."""
        note = next((str(v) for k, v in case.pairs if k == "note"), "")
        if case.csrf != "ok" or case.target == "missing" or len(note) > 2000 or "\x00" in note:
            changes = None
        elif case.action == "acknowledge":
            changes = "acknowledged" if case.target == AlertStatus.OPEN else None
        else:
            unresolved = case.target != AlertStatus.RESOLVED
            changes = "resolved" if unresolved and note.strip() else None
        self.outcomes[f"alert {'changed' if changes else 'unchanged'}"] += 1
        if changes is None:
            written = self._written(before, after)
            return [(WROTE, f"answered {status} and wrote {written}")] if written else []
        with self.runtime.read_session_factory() as s:
            alert = s.get_one(Alert, alert_id)
            problems = (
                [] if alert.status == changes else [f"alert is {alert.status}, not {changes}"]
            )
            if alert.acknowledged_at is None or alert.acknowledged_by_id != self.clinician_id:
                problems.append("acknowledgement not recorded")
            stored = alert.resolution_note
            if changes == "resolved" and (alert.resolved_at is None or stored != note.strip()):
                problems.append("resolution or its note not recorded")
            if changes == "acknowledged" and stored != (note or None):
                problems.append("acknowledgement note not recorded")
        added = after["audit"] - before["audit"]
        if added[(f"alert.{case.action}", "ok")] != 1:
            problems.append("not audited once")
        return [(RECORD, text) for text in problems]


def _caregiver_number(patient: Patient) -> str | None:
    """The number of the caregiver the forms show (the patient's first linked one)."""
    session = object_session(patient)
    caregiver = caregiver_of(session, patient.id) if session is not None else None
    return caregiver.phone_e164 if caregiver is not None else None
