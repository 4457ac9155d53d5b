"""Read side for caregivers (issue #16): the patient page's caregiver panel (consent, last
answer, the close-watch period, the daily counts against the baseline), the names behind
caregiver texts in the thread, and the answered checks every export shows (FHIR, CSV, API:
one read model, so the three cannot disagree)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, case, or_, select
from sqlalchemy.orm import Session

from coachbot.domain import close_watch
from coachbot.domain.program import STANDARD
from coachbot.domain.states import PatientStatus
from coachbot.models import (
    Caregiver,
    CaregiverCheck,
    CaregiverLink,
    InboundMessage,
    OutboundMessage,
    Patient,
    Program,
    ProgramAssignment,
    ProgramVersion,
)

CHART_DAYS = 90  # the panel's chart reaches back as far as the page's heatmap
OBSERVATION = "observation"
SEEN_TODAY = "seen_today"


@dataclass(frozen=True)
class CloseWatch:
    start: dt.date
    days: int
    today: dt.date

    @property
    def last_day(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def day(self) -> int | None:
        """Today's day of the period (1-based), None when today is outside it."""
        if not close_watch.in_close_watch(self.start, self.days, self.today):
            return None
        return (self.today - self.start).days + 1

    @property
    def words(self) -> str:
        if self.day is not None:
            return f"Day {self.day} of {self.days}"
        if self.today < self.start:
            return "Not started yet"
        return "Ended"


@dataclass(frozen=True)
class CheckLine:
    """One caregiver check, as the panel and the exports show it."""

    id: int
    patient_id: int
    caregiver_id: int
    kind: str  # observation | seen_today
    local_date: dt.date
    due_at: dt.datetime
    state: str
    items: int
    score: int | None
    concern: str | None
    answered_at: dt.datetime | None

    @property
    def answer(self) -> str:
        """The answer in a clinician's words: "3 of 4 as usual", "WORSE", "Worried"."""
        return answer_words(self.kind, self.items, self.score, self.concern)


def answer_words(kind: str, items: int, score: int | None, concern: str | None) -> str:
    """What a caregiver answered, in words (the caregiver's own OK/WORSE/WORRIED in capitals,
    as they texted it)."""
    if kind == SEEN_TODAY:
        worried = concern in ("worse", "worried") or score == 2
        return "Seen today: worried" if worried else "Seen today: all fine"
    parts = []
    if score is not None:
        parts.append(f"{score} of {items} as usual")
    if concern:
        parts.append(concern.upper())
    return ", ".join(parts) or "No answer"


@dataclass
class CaregiverLine:
    id: int
    first_name: str
    phone_last4: str
    language: str
    status: str
    created_at: dt.datetime
    invited_at: dt.datetime | None
    opted_in_at: dt.datetime | None
    opted_out_at: dt.datetime | None
    baseline: int | None
    checks: list[CheckLine] = field(default_factory=list)  # oldest first

    @property
    def last_answer(self) -> CheckLine | None:
        answered = [c for c in self.checks if c.answered_at is not None]
        return max(answered, key=lambda c: c.answered_at or c.local_date) if answered else None

    @property
    def observations(self) -> list[CheckLine]:
        return [c for c in self.checks if c.kind == OBSERVATION]

    @property
    def missed(self) -> int:
        return sum(1 for c in self.checks if c.state == "missed")


@dataclass
class CaregiverPanel:
    caregivers: list[CaregiverLine]
    close_watch: CloseWatch | None


def close_watch_of(session: Session, patient: Patient, today: dt.date) -> CloseWatch | None:
    """The patient's close-watch period: their own length, else their programme's."""
    if patient.close_watch_from is None:
        return None
    days = patient.close_watch_days
    if days is None:
        days = close_watch.effective_days(None, _programme_rules(session, patient.id))
    return CloseWatch(patient.close_watch_from, days, today)


def _programme_rules(session: Session, patient_id: int) -> close_watch.CloseWatchSettings:
    """The close-watch rules of the current version of the patient's programme (the one
    assigned, else "standard"; the built-in rules when neither is found), as the tick
    reads them for its checks (services/programs.py load_close_watch_book)."""
    assigned = ProgramAssignment.patient_id.is_not(None)
    settings = session.scalar(
        select(ProgramVersion.settings_json)
        .join(
            Program,
            and_(
                Program.id == ProgramVersion.program_id,
                Program.current_version == ProgramVersion.version,
            ),
        )
        .outerjoin(
            ProgramAssignment,
            and_(
                ProgramAssignment.program_id == Program.id,
                ProgramAssignment.patient_id == patient_id,
            ),
        )
        .where(or_(assigned, Program.name == STANDARD))
        .order_by(case((assigned, 0), else_=1))
        .limit(1)
    )
    raw = json.loads(settings).get("close_watch") if settings else None
    return close_watch.parse(raw)


def _line(check: CaregiverCheck) -> CheckLine:
    return CheckLine(
        id=check.id,
        patient_id=check.patient_id,
        caregiver_id=check.caregiver_id,
        kind=check.kind,
        local_date=check.local_date,
        due_at=check.due_at,
        state=check.state,
        items=check.items,
        score=check.score,
        concern=check.concern,
        answered_at=check.answered_at,
    )


def caregiver_panel(session: Session, patient: Patient, now: dt.datetime) -> CaregiverPanel:
    """The patient's linked caregivers with their checks of the last CHART_DAYS local days
    (one statement: caregivers left-joined to their checks about this patient)."""
    today = now.astimezone(ZoneInfo(patient.timezone)).date()
    since = today - dt.timedelta(days=CHART_DAYS - 1)
    rows = session.execute(
        select(Caregiver, CaregiverLink.baseline_score, CaregiverCheck)
        .join(CaregiverLink, CaregiverLink.caregiver_id == Caregiver.id)
        .outerjoin(
            CaregiverCheck,
            and_(
                CaregiverCheck.caregiver_id == Caregiver.id,
                CaregiverCheck.patient_id == CaregiverLink.patient_id,
                CaregiverCheck.local_date >= since,
            ),
        )
        .where(CaregiverLink.patient_id == patient.id)
        .order_by(Caregiver.first_name, Caregiver.id, CaregiverCheck.local_date, CaregiverCheck.id)
    ).all()
    lines: dict[int, CaregiverLine] = {}
    for caregiver, baseline, check in rows:
        line = lines.get(caregiver.id)
        if line is None:
            line = lines[caregiver.id] = CaregiverLine(
                id=caregiver.id,
                first_name=caregiver.first_name,
                phone_last4=caregiver.phone_e164[-4:],
                language=caregiver.language,
                status=caregiver.status,
                created_at=caregiver.created_at,
                invited_at=caregiver.invited_at,
                opted_in_at=caregiver.opted_in_at,
                opted_out_at=caregiver.opted_out_at,
                baseline=baseline,
            )
        if check is not None:
            line.checks.append(_line(check))
    return CaregiverPanel(list(lines.values()), close_watch_of(session, patient, today))


def consent_words(line: CaregiverLine) -> tuple[str, dt.datetime | None]:
    """The caregiver's consent in words and the instant it dates from."""
    if line.status == PatientStatus.ACTIVE:
        return "Active since", line.opted_in_at
    if line.status == PatientStatus.OPTED_OUT:
        return "Opted out", line.opted_out_at
    if line.invited_at is None:
        return "Pending: invitation not sent yet; added", line.created_at
    return "Pending their YES since", line.invited_at


@dataclass(frozen=True)
class ChartData:
    x: list[str]
    series: list[dict[str, object]]


def score_chart(line: CaregiverLine) -> ChartData:
    """The daily counts of the observation checks against the caregiver's baseline: one x
    per check day (a day without an answer is a gap), the baseline as its own series."""
    days = line.observations
    return ChartData(
        x=[f"{c.local_date:%d %b}" for c in days],
        series=[
            {"label": "Items as usual", "values": [c.score for c in days]},
            {"label": "Baseline", "values": [line.baseline for _ in days]},
        ],
    )


class Author(NamedTuple):
    first_name: str
    language: str


def caregiver_names(session: Session, inbound_ids: Iterable[int]) -> dict[int, Author]:
    """Who of the caregivers wrote each of these inbound texts (those with a caregiver_id):
    the thread's "Caregiver Sam" mark, and the language their words are in."""
    return _people(
        session, InboundMessage.id, InboundMessage.caregiver_id == Caregiver.id, inbound_ids
    )


def caregiver_recipients(
    session: Session, patient: Patient, outbound_ids: Iterable[int]
) -> dict[int, Author]:
    """Which of these texts we sent went to a caregiver's number (their checks, invitation,
    and the answers to their texts), and to whom. A text to the patient's own number is the
    patient's, even when they are someone else's caregiver too."""
    to_caregiver = and_(
        OutboundMessage.to_e164 == Caregiver.phone_e164,
        OutboundMessage.to_e164 != patient.phone_e164,
    )
    return _people(session, OutboundMessage.id, to_caregiver, outbound_ids)


def _people(
    session: Session, message_id: Any, joined: ColumnElement[bool], ids: Iterable[int]
) -> dict[int, Author]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(message_id, Caregiver.first_name, Caregiver.language)
        .join(Caregiver, joined)
        .where(message_id.in_(wanted))
    )
    return {found: Author(name, language) for found, name, language in rows.all()}


@dataclass(frozen=True)
class ExportedCheck:
    """An answered caregiver check as the exports carry it: the check, and who answered."""

    check: CheckLine
    caregiver_first_name: str
    caregiver_language: str

    def as_json(self) -> dict[str, object]:
        """The API's shape of the check (the CSV and FHIR exports carry the same fields)."""
        c = self.check
        return {
            "id": c.id,
            "kind": c.kind,
            "local_date": c.local_date.isoformat(),
            "due_at": c.due_at.isoformat(),
            "answered_at": c.answered_at.isoformat() if c.answered_at else None,
            "items_asked": c.items,
            "items_as_usual": c.score,
            "concern": c.concern,
            "answer": c.answer,
            "caregiver": {"id": c.caregiver_id, "first_name": self.caregiver_first_name},
        }


# Built once: every export (the patient CSV, FHIR, the API) reads it with other patients.
_ANSWERED_CHECKS = (
    select(CaregiverCheck, Caregiver.first_name, Caregiver.language)
    .join(Caregiver, Caregiver.id == CaregiverCheck.caregiver_id)
    .where(
        CaregiverCheck.patient_id.in_(bindparam("patient_ids", expanding=True)),
        CaregiverCheck.state == "answered",
        CaregiverCheck.answered_at.is_not(None),
    )
    .order_by(CaregiverCheck.answered_at, CaregiverCheck.id)
)


def answered_checks(session: Session, patient_ids: Sequence[int]) -> list[ExportedCheck]:
    """Every answered check about these patients, oldest answer first (one statement)."""
    if not patient_ids:
        return []
    rows = session.execute(_ANSWERED_CHECKS, {"patient_ids": list(patient_ids)}).all()
    return [ExportedCheck(_line(check), name, language) for check, name, language in rows]
