"""The bench's verdicts on one post: the kinds of `Problem` (a 5xx, a refusal that wrote,
an invalid form accepted, a valid one refused, an incomplete record), `what_changed` (what a
refused post changed, from the snapshots the bench takes around it) and `RecordChecks`
(whether what an accepted post wrote is complete, consistent and, for a VALID case,
exactly what was posted). Apart from the posting so that each reads on its own."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.domain.program import COACHING_TRACKS, LANGUAGES, TRACK_POLICIES
from coachbot.domain.states import AlertStatus, PatientStatus
from coachbot.models import (
    Alert,
    AuditEntry,
    OutboundMessage,
    Patient,
    ProgramDefault,
)
from coachbot.runtime import Runtime
from coachbot.services.caregivers.records import caregiver_of
from coachbot.services.enrollment import MAX_HOMEWORK
from coachbot.services.programs import show_program
from proof.fuzz_forms.cases import VALID, Case, Fill, PatientRecord

_TIMES = re.compile(r"[0-2][0-9]:[0-5][0-9](,[0-2][0-9]:[0-5][0-9])*")


def _data_rows(csv_bytes: bytes) -> int | None:
    """Data rows in an uploaded CSV as the csv module reads them (None: not readable)."""
    try:
        text = csv_bytes.decode("utf-8-sig")
        return sum(1 for _ in csv.DictReader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        return None


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


def what_changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed, apart from audit rows recording a denied request."""
    changed = [k for k in before if k != "audit" and before[k] != after[k]]
    added = after["audit"] - before["audit"]
    changed += [f"audit {a}/{o}" for (a, o) in added if o != "denied"]
    return changed


@dataclass
class RecordChecks:
    """What an answered post must have left, read from the database after it: the
    patients an accepted form wrote, a saved programme version, an alert's change. Each
    check returns what did not hold. `number` is the bench's (the E.164 number a phone
    Fill stood for in the case posted) and `outcomes` its counter, where the alert check
    counts changed and unchanged alerts."""

    runtime: Runtime
    clinician_id: int
    own_id: int
    number: Callable[[Fill, dict[int, str]], str]
    outcomes: Counter[str]

    def check_accepted(
        self,
        case: Case,
        location: str,
        csv_bytes: bytes,
        numbers: dict[int, str],
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> list[str]:
        if case.form == "schedule":
            return self.check_schedule(case, before, after)
        with self.runtime.read_session_factory() as s:
            if case.form == "edit":
                patient = s.get_one(Patient, self.own_id)
                problems = self.check_patient(s, patient, enrolled=False)
                if after["patients"] != before["patients"]:
                    problems.append("an edit added or removed patients")
                if case.records:
                    problems += self.compare(patient, case.records[0], numbers)
                return problems
            new = s.scalars(select(Patient).order_by(Patient.id).offset(before["patients"])).all()
            expected = 1 if case.form == "enrol" else _data_rows(csv_bytes)
            problems = []
            if len(new) != expected:
                problems.append(f"{len(new)} patients written for {expected} rows")
            if case.form == "enrol" and new and location != f"/patients/{new[0].id}":
                problems.append(f"redirected to {location!r}, not the new patient")
            for patient in new:
                problems += self.check_patient(s, patient, enrolled=True)
            by_phone = {p.phone_e164: p for p in new}
            for record in case.records:
                found = by_phone.get(self.number(record.phone, numbers))
                if found is None:
                    problems.append("a valid row was not enrolled")
                else:
                    problems += self.compare(found, record, numbers, session=s)
            return problems

    def check_patient(self, s: Session, patient: Patient, *, enrolled: bool) -> list[str]:
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

    def compare(
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
            "phone": self.number(record.phone, numbers),
            "timezone": record.timezone,
            "language": record.language,
            "checkin": record.checkin,
            "quiet": record.quiet,
            "caregiver": self.number(record.caregiver, numbers) if record.caregiver else None,
            "tracks": {
                t: times
                or defaults.get(t)
                or ",".join(x.strftime("%H:%M") for x in TRACK_POLICIES[t].default_times)
                for t, times in record.tracks
            },
            "homework": sorted(record.homework),
        }
        return [f"{k}: stored {got[k]!r}, posted {want[k]!r}" for k in want if got[k] != want[k]]

    def check_schedule(
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

    def check_alert(
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
            written = what_changed(before, after)
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
