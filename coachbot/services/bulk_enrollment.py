"""Enrolling a clinic's list from a CSV file: every row is checked first, and nothing is
written unless every row is good."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.models import Patient
from coachbot.services.enrollment import EnrollmentRequest, add_patient, validate_enrollment
from coachbot.services.errors import ValidationFailed
from coachbot.services.welcomes import send_welcome
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway

BULK_COLUMNS = (
    "first_name",
    "phone",
    "timezone",
    "language",
    "tracks",
    "times",
    "quiet_hours",
    "caregiver_phone",
    "caregiver_name",
    "caregiver_language",
    "close_watch_from",
    "close_watch_days",
    "checkin",
    "homework",
    "consent",
)
MAX_BULK_ROWS = 500


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str


def parse_bulk_csv(
    text: str, clinician_email: str
) -> tuple[list[EnrollmentRequest], list[RowError]]:
    """The rows as enrolment requests, and what is wrong with the file or a row. A file the
    csv module cannot read on (a cell past its field size limit, say) is a file error at
    the line where reading stopped, not an exception; any error means nothing is written."""
    # newline="": the csv module reads line ends itself, a bare CR included, and keeps a
    # line break inside a quoted cell.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    requests: list[EnrollmentRequest] = []
    errors: list[RowError] = []
    try:
        fieldnames = reader.fieldnames or []
        missing = [c for c in ("first_name", "phone", "timezone") if c not in fieldnames]
        if missing:
            return [], [RowError(1, "header", f"missing column(s): {', '.join(missing)}")]
        for index, row in enumerate(reader, start=2):
            if index - 1 > MAX_BULK_ROWS:
                errors.append(RowError(index, "file", f"at most {MAX_BULK_ROWS} rows per file"))
                break
            requests.append(_bulk_row(row, index, clinician_email, errors))
    except csv.Error as exc:
        # The reader cannot go on past a line it could not read; the rows before it are
        # still checked, so the report is as complete as it can be. The line is the csv
        # reader's own: DictReader counts only the lines it returned.
        line = max(reader.reader.line_num, 1)
        errors.append(RowError(line, "file", f"not a readable CSV ({exc})"))
    return requests, errors


def _bulk_row(
    row: dict[str, str | None], line: int, clinician_email: str, errors: list[RowError]
) -> EnrollmentRequest:
    def value(name: str) -> str:
        return (row.get(name) or "").strip()

    checkin = value("checkin").lower()
    if checkin not in ("", "yes", "no", "true", "false", "1", "0"):
        errors.append(RowError(line, "checkin", "use yes or no"))
    return EnrollmentRequest(
        first_name=value("first_name"),
        phone=value("phone"),
        timezone=value("timezone"),
        language=value("language") or "en",
        tracks=value("tracks") or "sleep,exercise,diet,mindfulness,rehab",
        times=value("times") or None,
        quiet_hours=value("quiet_hours") or None,
        clinician_email=clinician_email,
        consent=value("consent") or "verbal consent in clinic",
        caregiver_phone=value("caregiver_phone") or None,
        caregiver_name=value("caregiver_name") or None,
        caregiver_language=value("caregiver_language") or None,
        close_watch_from=value("close_watch_from") or None,
        close_watch_days=value("close_watch_days") or None,
        checkin=checkin in ("yes", "true", "1"),
        homework=tuple(h for h in value("homework").split("|") if h.strip()),
    )


def bulk_enroll(
    sessions: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    csv_text: str,
    *,
    clinician_email: str,
    now: dt.datetime,
    actor: str,
) -> tuple[list[Patient], list[RowError]]:
    """Every row is checked first (including duplicates within the file); one bad row means
    nothing is written and the whole error report comes back. Every row is then enrolled in
    one transaction: a failure part-way (a crash, a number enrolled by someone else
    meanwhile) leaves nothing enrolled. The welcomes go after that commit, each in
    transactions of its own (`send_welcome`), so no network call runs inside it."""
    requests, errors = parse_bulk_csv(csv_text, clinician_email)
    with sessions() as session:
        errors += _bulk_problems(session, settings, requests)
    if not requests and not errors:
        errors.append(RowError(1, "file", "no rows"))
    if errors:
        return [], sorted(errors, key=lambda e: (e.line, e.field))
    patients: list[Patient] = []
    try:
        with sessions.begin() as session:
            for line, req in enumerate(requests, start=2):
                try:
                    patients.append(add_patient(session, req, settings, now=now, actor=actor))
                except ValidationFailed as exc:
                    raise _RowFailed([RowError(line, f, m) for f, m in exc.errors.items()]) from exc
    except _RowFailed as failed:
        return [], failed.errors
    for patient in patients:
        patient.welcome_due_at = send_welcome(
            sessions, gateway, library, settings, patient.id, now=now
        )
    return patients, []


class _RowFailed(Exception):
    """A row that passed the checks and failed when added: the transaction rolls back."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors


def _bulk_problems(
    session: Session, settings: Settings, requests: list[EnrollmentRequest]
) -> list[RowError]:
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, req in enumerate(requests, start=2):
        try:
            validate_enrollment(session, req, settings)
        except ValidationFailed as exc:
            errors.extend(RowError(line, f, m) for f, m in exc.errors.items())
        phone = _number(req.phone, settings)
        if phone is None:
            continue
        if phone in seen:
            errors.append(RowError(line, "phone", f"same number as line {seen[phone]}"))
        else:
            seen[phone] = line
    errors += _caregivers_among_patients(settings, requests, seen)
    return errors


def _number(text: str | None, settings: Settings) -> str | None:
    try:
        return parse_mobile(text or "", settings.default_region)
    except InvalidPhoneNumber:
        return None


def _caregivers_among_patients(
    settings: Settings, requests: list[EnrollmentRequest], patients: dict[str, int]
) -> list[RowError]:
    """A caregiver's number may not be a patient's own, in the file as in the database (the
    same caregiver on several rows is one caregiver watching several patients)."""
    errors = []
    for line, req in enumerate(requests, start=2):
        caregiver = _number(req.caregiver_phone, settings) if req.caregiver_phone else None
        if caregiver is not None and patients.get(caregiver, line) != line:
            errors.append(
                RowError(
                    line,
                    "caregiver_phone",
                    f"the patient's own number on line {patients[caregiver]}",
                )
            )
    return errors
