"""Exports of a patient's record: CSV rows and a FHIR R4 Bundle (validated in tests against
fhir.resources' R4B models, the 4.x line that package ships; Observation, Communication and
Bundle are the same shape in R4 and R4B)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from coachbot.db import UTCDateTime
from coachbot.models import AdherenceRecord, InboundMessage, OutboundMessage, Patient
from coachbot.queries.adherence import FRACTION_UNIT
from coachbot.queries.dashboard import ListFilter, PatientRow, patients_page

PATIENT_CSV_COLUMNS = (
    "patient_id",
    "track",
    "due_at",
    "nudge_state",
    "delivery_status",
    "outcome",
    "value",
    "unit",
    "replied_at",
    "by_caregiver",
)


def csv_text(rows: Iterable[Sequence[Any]], batch: int = 500) -> Iterator[str]:
    """CSV text for `rows` (None is an empty field), up to `batch` lines per chunk: one
    writer for the whole download rather than one per line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    remaining = iter(rows)
    while chunk := list(itertools.islice(remaining, batch)):
        writer.writerows(chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


# The answer is joined on; the delivery status is that of the last text sent for the
# nudge (a resend is a second text). Plain SQL, typed where it needs it, so a download
# builds no statement and no ORM row per nudge. The last text is found the way each
# database does fastest (measured at 90 days of history, raw fetch of the 270 rows):
# SQLite probes the outbound nudge_id index once per nudge in process (0.48 ms; a
# grouped join is slower); PostgreSQL hashes the patient's texts once, DISTINCT ON the
# newest per nudge, instead of sorting a one-row subplan per nudge (0.67 ms against 0.95).
_LAST_TEXT_SQLITE = """
SELECT n.track, n.due_at, n.state,
  (SELECT o.delivery_status FROM outbound_messages o
   WHERE o.nudge_id = n.id AND o.patient_id = n.patient_id
   ORDER BY o.id DESC LIMIT 1) AS delivery,
  a.outcome, a.value, a.unit, a.recorded_at, a.is_proxy
FROM nudges n LEFT JOIN adherence_records a ON a.nudge_id = n.id
WHERE n.patient_id = :pid
ORDER BY n.due_at, n.id
"""
_LAST_TEXT_POSTGRESQL = """
SELECT n.track, n.due_at, n.state, o.delivery_status AS delivery,
  a.outcome, a.value, a.unit, a.recorded_at, a.is_proxy
FROM nudges n
LEFT JOIN adherence_records a ON a.nudge_id = n.id AND a.patient_id = :pid
LEFT JOIN (
  SELECT DISTINCT ON (nudge_id) nudge_id, delivery_status FROM outbound_messages
  WHERE patient_id = :pid AND nudge_id IS NOT NULL ORDER BY nudge_id, id DESC
) o ON o.nudge_id = n.id
WHERE n.patient_id = :pid
ORDER BY n.due_at, n.id
"""
_PATIENT_CSV = {
    dialect: text(sql).columns(due_at=UTCDateTime(), recorded_at=UTCDateTime())
    for dialect, sql in (("sqlite", _LAST_TEXT_SQLITE), ("postgresql", _LAST_TEXT_POSTGRESQL))
}


def patient_csv(session: Session, patient: Patient) -> Iterator[str]:
    """One row per nudge, oldest first, with the patient's answer if any, in chunks."""
    pid = patient.id
    rows = (
        [
            pid,
            track,
            due_at.isoformat(),
            state,
            delivery,
            outcome,
            value,
            unit,
            recorded_at.isoformat() if recorded_at else None,
            "yes" if by_proxy else ("no" if outcome else None),
        ]
        for track, due_at, state, delivery, outcome, value, unit, recorded_at, by_proxy in (
            # Rows fetched a batch at a time rather than one by one (a third of the cost).
            session.connection()
            .execute(_PATIENT_CSV[session.get_bind().dialect.name], {"pid": pid})
            .yield_per(500)
        )
    )
    yield from csv_text(itertools.chain([PATIENT_CSV_COLUMNS], rows))


COHORT_CSV_COLUMNS = (
    "patient_id",
    "first_name",
    "status",
    "track",
    "sent_7d",
    "done_7d",
    "sent_30d",
    "done_30d",
    "streak_days",
    "last_reply_at",
    "open_alerts",
    # Partial answers ("2 of 3"): not in done; the screen's rates count each as half a done.
    # Last, so a spreadsheet that reads the earlier columns by position still works.
    "partial_7d",
    "partial_30d",
)


def cohort_csv(session: Session, *, clinician_id: int | None, now: dt.datetime) -> Iterator[str]:
    """The patients list as CSV, page by page with the same SQL aggregates as the screen."""

    def rows() -> Iterator[Sequence[Any]]:
        yield COHORT_CSV_COLUMNS
        page_number = 1
        while True:
            page = patients_page(
                session, clinician_id=clinician_id, now=now, f=ListFilter(page=page_number)
            )
            for row in page.rows:
                yield from _cohort_rows(row)
            if page.page >= page.pages:
                return
            page_number += 1

    yield from csv_text(rows())


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): shown as text instead.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """Free text typed by staff (a first name) as a CSV cell that Excel or Sheets shows as
    text: a leading formula character gets a quote before it."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _cohort_rows(row: PatientRow) -> Iterator[list[Any]]:
    last = row.last_reply_at.isoformat() if row.last_reply_at else None
    for t in row.tracks or []:
        yield [
            row.id,
            spreadsheet_safe(row.first_name),
            row.status,
            t.track,
            t.sent_7,
            t.done_7,
            t.sent_30,
            t.done_30,
            t.streak,
            last,
            row.open_alerts,
            t.partial_7,
            t.partial_30,
        ]


# --- FHIR -----------------------------------------------------------------------------

_LOINC_SLEEP = ("93832-4", "Sleep duration")
_TRACK_CODES = {
    "sleep": "sleep",
    "exercise": "exercise",
    "diet": "diet",
    "mindfulness": "mindfulness",
    "rehab": "rehab",
    "checkin": "symptom-checkin",
}
CODE_SYSTEM = "https://coachbot.example/fhir/CodeSystem/track"


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def patient_fhir_bundle(session: Session, patient: Patient, now: dt.datetime) -> dict[str, Any]:
    """A `collection` Bundle: the Patient, one Observation per answered nudge (adherence, and
    the reported value when there is one), one Communication per message either way."""
    patient_ref = f"Patient/{patient.id}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:coachbot:patient:{patient.id}",
            "resource": {
                "resourceType": "Patient",
                "id": str(patient.id),
                "active": patient.status in ("active", "pending-consent", "paused"),
                "name": [{"given": [patient.first_name]}],
                "telecom": [{"system": "sms", "value": patient.phone_e164, "use": "mobile"}],
                "communication": [{"language": {"coding": [{"code": patient.language}]}}],
            },
        }
    ]
    for record in session.scalars(
        select(AdherenceRecord)
        .where(AdherenceRecord.patient_id == patient.id)
        .order_by(AdherenceRecord.recorded_at, AdherenceRecord.id)
    ):
        code = _TRACK_CODES.get(record.track, record.track)
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"adherence-{record.id}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "activity",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": CODE_SYSTEM, "code": code, "display": f"{code} adherence"}],
                "text": f"{record.track} adherence",
            },
            "subject": {"reference": patient_ref},
            "effectiveDateTime": _instant(record.recorded_at),
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "https://coachbot.example/fhir/CodeSystem/adherence-outcome",
                        "code": record.outcome,
                    }
                ],
                "text": record.outcome,
            },
        }
        if record.is_proxy:
            resource["performer"] = [{"display": "caregiver"}]
        fraction = record.value is not None and record.unit == FRACTION_UNIT
        if fraction:
            # How much of a partial answer was done ("2 of 3"): part of the answer itself,
            # not a measurement, so never a reported value (a sleep one would read as hours).
            resource["component"] = [
                {
                    "code": {
                        "coding": [{"system": CODE_SYSTEM, "code": "fraction-done"}],
                        "text": "fraction done",
                    },
                    "valueQuantity": {
                        "value": record.value,
                        "unit": FRACTION_UNIT,
                        "system": "http://unitsofmeasure.org",
                        "code": "1",
                    },
                }
            ]
        entries.append(
            {"fullUrl": f"urn:coachbot:observation:adherence-{record.id}", "resource": resource}
        )
        if record.value is not None and not fraction:
            coding = [{"system": CODE_SYSTEM, "code": f"{code}-value"}]
            if record.track == "sleep":
                coding.insert(
                    0,
                    {
                        "system": "http://loinc.org",
                        "code": _LOINC_SLEEP[0],
                        "display": _LOINC_SLEEP[1],
                    },
                )
            value: dict[str, Any] = {"value": record.value}
            if record.unit:
                value["unit"] = record.unit
            entries.append(
                {
                    "fullUrl": f"urn:coachbot:observation:value-{record.id}",
                    "resource": {
                        "resourceType": "Observation",
                        "id": f"value-{record.id}",
                        "status": "final",
                        "code": {"coding": coding, "text": f"{record.track} reported value"},
                        "subject": {"reference": patient_ref},
                        "effectiveDateTime": _instant(record.recorded_at),
                        "valueQuantity": value,
                    },
                }
            )
    for out in session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.patient_id == patient.id)
        .order_by(OutboundMessage.created_at, OutboundMessage.id)
    ):
        entries.append(
            {
                "fullUrl": f"urn:coachbot:communication:out-{out.id}",
                "resource": {
                    "resourceType": "Communication",
                    "id": f"out-{out.id}",
                    "status": "completed" if out.delivery_status != "failed" else "stopped",
                    "category": [{"text": out.kind}],
                    "medium": [{"text": "SMS"}],
                    "subject": {"reference": patient_ref},
                    "recipient": [{"reference": patient_ref}],
                    "sent": _instant(out.created_at),
                    "payload": [{"contentString": out.body}],
                },
            }
        )
    for inbound in session.scalars(
        select(InboundMessage)
        .where(InboundMessage.patient_id == patient.id)
        .order_by(InboundMessage.received_at, InboundMessage.id)
    ):
        resource = {
            "resourceType": "Communication",
            "id": f"in-{inbound.id}",
            "status": "completed",
            "category": [{"text": "reply"}],
            "medium": [{"text": "SMS"}],
            "subject": {"reference": patient_ref},
            "received": _instant(inbound.received_at),
            "payload": [{"contentString": inbound.body}],
        }
        resource["sender"] = (
            {"display": "caregiver"} if inbound.is_proxy else {"reference": patient_ref}
        )
        entries.append(
            {"fullUrl": f"urn:coachbot:communication:in-{inbound.id}", "resource": resource}
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(now),
        "entry": entries,
    }
