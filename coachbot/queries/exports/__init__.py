"""Exports of patients' records, read-only: CSV (`csv_rows`) and a FHIR R4 Bundle (`fhir`).
Who may download them, and the audit of each download, is `coachbot/services/downloads.py`."""

from coachbot.queries.exports.csv_rows import (
    COHORT_CSV_COLUMNS,
    PATIENT_CSV_COLUMNS,
    cohort_csv,
    csv_text,
    patient_csv,
    spreadsheet_safe,
)
from coachbot.queries.exports.fhir import patient_fhir_bundle

__all__ = [
    "COHORT_CSV_COLUMNS",
    "PATIENT_CSV_COLUMNS",
    "cohort_csv",
    "csv_text",
    "patient_csv",
    "patient_fhir_bundle",
    "spreadsheet_safe",
]
