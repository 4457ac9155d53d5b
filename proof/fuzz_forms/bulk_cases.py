"""The bulk CSV enrolment's cases: a valid file (columns in any order, optional ones,
BOM, line ends, quoting) with a record for each row, then one bad file or cell
(`BULK_CELL_INVALID` and the file-level changes), random changes (`BULK_WILD`), or random
bytes. A file with one bad row must write nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import cast

from hypothesis import strategies as st

from coachbot.domain.program import COACHING_TRACKS, LANGUAGES
from coachbot.services.bulk_enrollment import BULK_COLUMNS
from coachbot.services.enrollment import MAX_HOMEWORK, MAX_TIMES_PER_TRACK
from proof.fuzz_forms.cases import INVALID, VALID, WILD, Case, CsvFile, Fill, PatientRecord, Value
from proof.fuzz_forms.field_values import (
    BAD_PHONES,
    BAD_QUIET,
    BAD_TIMES,
    BAD_ZONES,
    HOMEWORK_LINE,
    JUNK,
    NAMES,
    ZONES,
    phone_fill,
    quiet_hours,
    times_text,
)

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
        "phone": phone_fill(draw, "fresh", slot),
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
        caregiver = phone_fill(draw, "fresh", 100 + slot)
        row["caregiver_phone"] = caregiver
        row["caregiver_name"] = "Sam"
    if "checkin" in columns:
        row["checkin"] = draw(st.sampled_from(["", "yes", "no", "true", "false", "1", "0", "YES"]))
        checkin = str(row["checkin"]).lower() in ("yes", "true", "1")
    if "homework" in columns:
        homework = tuple(draw(st.lists(HOMEWORK_LINE, max_size=MAX_HOMEWORK, unique=True)))
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
    "another patient's phone": lambda d: _cell("phone", phone_fill(d, "taken")),
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
