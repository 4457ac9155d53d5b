"""The `Bench`: signs a clinician and an operator in to the real app, fills in a `Case`'s
placeholders (fresh and taken numbers in several spellings, the programme version the
edit page shows), posts it with the page's own CSRF token, snapshots the tables before and
after, and hands the answer to proof/fuzz_forms/checks.py. `upload` encodes a CSV upload
in memory (tests/web/test_forms_fuzz.py posts its own files with it)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from coachbot.domain.states import AlertKind, AlertSeverity, AlertStatus
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
from proof.fuzz_forms.cases import INVALID, VALID, Case, CsvFile, Fill, Value
from proof.fuzz_forms.checks import (
    ACCEPTED_INVALID,
    RECORD,
    REFUSED_VALID,
    SERVER_ERROR,
    WROTE,
    Problem,
    RecordChecks,
    what_changed,
)
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import csrf_token, make_staff, sign_in

# Fresh numbers come from these area codes' 555 blocks, which no other fixture uses.
_AREAS = ("415", "312", "206", "303", "512", "213", "646", "702")
_BASE_VERSION = re.compile(r'name="base_version" type="hidden" value="(\d*)"')
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
        # The checks read numbers as this bench filled them in and count into its outcomes.
        self.checks = RecordChecks(
            self.runtime, self.clinician_id, self.own_id, self._number, self.outcomes
        )
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
            found += self.checks.check_alert(case, alert_id or 0, status, before, after)
        elif status not in (302, 303):
            self.outcomes[f"{case.form} {case.expect} refused"] += 1
            if case.expect == VALID and not self._rightly_not_saved(case, answer):
                found.append((REFUSED_VALID, f"answered {status}"))
            written = what_changed(before, after)
            if written:
                found.append((WROTE, f"answered {status} and wrote {written}"))
        else:
            self.outcomes[f"{case.form} {case.expect} accepted"] += 1
            if case.expect == INVALID:
                found.append((ACCEPTED_INVALID, f"answered {status}"))
            location = answer.headers.get("Location", "")
            checked = self.checks.check_accepted(case, location, csv_bytes, numbers, before, after)
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
