"""Fuzzing the bulk CSV enrolment and the staff forms through the real app: the enrolment
form, the patient edit form, the alert acknowledge and resolve notes (as a clinician) and the
programme schedule edit (as an operator). Flask's test client posts them with CSRF on, each
token read from the form's own page.

Shared by the proof scenario "bad input (CSV import and forms)" and by
tests/web/test_forms_fuzz.py: the strategies build `Case`s and the `Bench` posts them and
checks the database. One module a part: cases.py (what a case is), field_values.py (the
values and field changes every form draws from), patient_cases.py, bulk_cases.py and
alert_schedule_cases.py (each form's strategies), posting.py (the `Bench`) and checks.py
(its verdicts). This module names each form's strategy and is what callers import.

Every case says what it is. VALID: must be accepted and leave exactly the record the case
describes. INVALID: must be refused and write nothing. WILD (random input): either refused
with nothing written, or accepted with a complete, consistent record. Whatever the case,
no response is a 5xx. "Nothing written" compares a snapshot of the tables taken before the
post with one taken after; the only rows a refusal may add are audit rows with the outcome
"denied" (the record of someone asking for a patient that is not theirs)."""

from __future__ import annotations

from hypothesis import strategies as st

from proof.fuzz_forms.alert_schedule_cases import alert_cases, schedule_cases
from proof.fuzz_forms.bulk_cases import bulk_cases
from proof.fuzz_forms.cases import FORMS, INVALID, VALID, WILD, Case, CsvFile, Fill, PatientRecord
from proof.fuzz_forms.checks import (
    ACCEPTED_INVALID,
    RECORD,
    REFUSED_VALID,
    SERVER_ERROR,
    WROTE,
    Problem,
)
from proof.fuzz_forms.patient_cases import edit_cases, enrol_cases
from proof.fuzz_forms.posting import Bench, upload

STRATEGIES: dict[str, st.SearchStrategy[Case]] = {
    "bulk": bulk_cases(),
    "enrol": enrol_cases(),
    "edit": edit_cases(),
    "alert": alert_cases(),
    "schedule": schedule_cases(),
}
any_case = st.one_of(*STRATEGIES.values())

__all__ = [
    "ACCEPTED_INVALID",
    "FORMS",
    "INVALID",
    "RECORD",
    "REFUSED_VALID",
    "SERVER_ERROR",
    "STRATEGIES",
    "VALID",
    "WILD",
    "WROTE",
    "Bench",
    "Case",
    "CsvFile",
    "Fill",
    "PatientRecord",
    "Problem",
    "any_case",
    "upload",
]
