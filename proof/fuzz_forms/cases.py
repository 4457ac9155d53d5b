"""What a fuzzed form post is, as data: a `Case` (the form, what it must do, the fields it
posts, the CSV it uploads, the records a VALID one must leave) and the `Fill` placeholders
the bench replaces with numbers and versions only known when it posts. The strategies
build these; the bench posts them and its checks compare the database with them."""

from __future__ import annotations

from dataclasses import dataclass

VALID, INVALID, WILD = "valid", "invalid", "wild"
FORMS = ("bulk", "enrol", "edit", "alert", "schedule")


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
