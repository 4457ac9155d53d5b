"""The patients list's SQL, built once per process: the need rank (`coachbot.domain.need`),
the weeks' adherence, the page's per-track counts and streak bits. The instants it compares
with are bound per call (`instants(now)`), so building the expressions, a third of a page's
Python time when it was done per request, happens once and SQLAlchemy's compiled-statement
cache hits at once. `dashboard.py` runs these and shapes the rows."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, case, func, select

from coachbot.domain.adherence import FALLING_DROP, PARTIAL_CREDIT, STREAK_LIMIT_DAYS
from coachbot.domain.coaching import FOLLOWUP_SUFFIX
from coachbot.domain.need import CAREGIVER_MISSED_DAYS, SILENCE_DAYS, Need
from coachbot.domain.states import (
    AdherenceOutcome,
    AlertSeverity,
    AlertStatus,
    NudgeState,
    PatientStatus,
)
from coachbot.models import AdherenceRecord, Alert, CaregiverCheck, InboundMessage, Nudge, Patient

SENT_STATES = (NudgeState.SENT, NudgeState.DELIVERED)
OPEN_ALERTS = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

# The instants the list's SQL compares with are bound per call, so its expressions (the need
# rank, the weeks' adherence) are built once per process and reused: building them is a
# third of a page's Python time, and SQLAlchemy's compiled-statement cache then hits at once.
NOW = bindparam("now", type_=Patient.enrolled_at.type)
WEEK_AGO = bindparam("week_ago", type_=Patient.enrolled_at.type)
TWO_WEEKS_AGO = bindparam("two_weeks_ago", type_=Patient.enrolled_at.type)
LAST_WEEK_END = bindparam("last_week_end", type_=Patient.enrolled_at.type)
SILENT_BEFORE = bindparam("silent_before", type_=Patient.enrolled_at.type)
MISSED_SINCE = bindparam("missed_since", type_=Patient.enrolled_at.type)


def instants(now: dt.datetime) -> dict[str, dt.datetime]:
    """The values of the bound instants above, for one request's `now`."""
    return {
        "now": now,
        "week_ago": now - dt.timedelta(days=7),
        "two_weeks_ago": now - dt.timedelta(days=14),
        # Strictly before this week's start, so no nudge counts in both weeks.
        "last_week_end": now - dt.timedelta(days=7, microseconds=1),
        "silent_before": now - dt.timedelta(days=SILENCE_DAYS),
        "missed_since": now - dt.timedelta(days=CAREGIVER_MISSED_DAYS),
    }


@functools.cache
def last_reply_sq() -> ColumnElement[Any]:
    return (
        select(func.max(InboundMessage.received_at))
        .where(InboundMessage.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )


@functools.cache
def open_alerts_sq() -> ColumnElement[Any]:
    return (
        select(func.count(Alert.id))
        .where(Alert.patient_id == Patient.id, Alert.status.in_(OPEN_ALERTS))
        .correlate(Patient)
        .scalar_subquery()
    )


def adherence_sq(since: ColumnElement[Any], until: ColumnElement[Any]) -> ColumnElement[Any]:
    """The patient's adherence rate over nudges due in [since, until]; NULL if none was sent.
    Answers are counted by `nudge_id` (never NULL on a joined row), so PostgreSQL reads
    them from the (nudge_id, outcome) index alone, without visiting the table."""
    done = func.count(AdherenceRecord.nudge_id).filter(
        AdherenceRecord.outcome == AdherenceOutcome.DONE
    )
    partial = func.count(AdherenceRecord.nudge_id).filter(
        AdherenceRecord.outcome == AdherenceOutcome.PARTIAL
    )
    sent = func.count(Nudge.id).filter(Nudge.state.in_(SENT_STATES))
    return (
        select(case((sent == 0, None), else_=(1.0 * done + PARTIAL_CREDIT * partial) / sent))
        .select_from(Nudge)
        .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
        .where(
            Nudge.patient_id == Patient.id,
            Nudge.due_at >= since,
            Nudge.due_at <= until,
        )
        .correlate(Patient)
        .scalar_subquery()
    )


@functools.cache
def this_week_sq() -> ColumnElement[Any]:
    return adherence_sq(WEEK_AGO, NOW)


@functools.cache
def last_week_sq() -> ColumnElement[Any]:
    return adherence_sq(TWO_WEEKS_AGO, LAST_WEEK_END)


@functools.cache
def missed_check_sq() -> ColumnElement[Any]:
    """The local day of the patient's newest caregiver check missed in the last
    CAREGIVER_MISSED_DAYS (by due time: the (state, due_at) index answers it), else NULL."""
    return (
        select(func.max(CaregiverCheck.local_date))
        .where(
            CaregiverCheck.patient_id == Patient.id,
            CaregiverCheck.state == "missed",
            CaregiverCheck.due_at >= MISSED_SINCE,
        )
        .correlate(Patient)
        .scalar_subquery()
    )


def top_severity_sq() -> ColumnElement[Any]:
    """0 for an open urgent alert, 1 for an open high one, 2 for others, NULL for none."""
    return (
        select(func.min(severity_rank()))
        .where(Alert.patient_id == Patient.id, Alert.status.in_(OPEN_ALERTS))
        .correlate(Patient)
        .scalar_subquery()
    )


def severity_rank() -> ColumnElement[int]:
    return case(
        (Alert.severity == AlertSeverity.URGENT, 0),
        (Alert.severity == AlertSeverity.HIGH, 1),
        else_=2,
    )


class RankFacts(NamedTuple):
    """What the need rank is computed from, as SQL expressions: per-row subqueries over the
    patients table (the need order) or the columns of a page's facts (`base_statement`)."""

    severity: ColumnElement[Any]
    missed_check: ColumnElement[Any]
    last_reply: ColumnElement[Any]
    enrolled_at: ColumnElement[Any]
    status: ColumnElement[Any]
    last_week: ColumnElement[Any]
    this_week: ColumnElement[Any]


def rank_of(f: RankFacts) -> ColumnElement[Any]:
    """The patient's `Need` as a number (see coachbot.domain.need): the one home of the rank
    in SQL. CASE stops at the first true branch, so in the need order the adherence
    subqueries run only for patients without a reason above."""
    silent_since = func.coalesce(f.last_reply, f.enrolled_at)
    return case(
        (f.severity == 0, int(Need.URGENT_ALERT)),
        (f.severity == 1, int(Need.HIGH_ALERT)),
        (f.missed_check.is_not(None), int(Need.CAREGIVER_MISSED)),
        (
            and_(f.status == PatientStatus.ACTIVE, silent_since < SILENT_BEFORE),
            int(Need.SILENT),
        ),
        (f.last_week - f.this_week >= FALLING_DROP, int(Need.FALLING)),
        else_=int(Need.NONE),
    )


@functools.cache
def need_rank() -> ColumnElement[Any]:
    """The rank as one expression per patients row, for ordering a whole list by need."""
    return rank_of(
        RankFacts(
            top_severity_sq(),
            missed_check_sq(),
            last_reply_sq(),
            Patient.enrolled_at.expression,
            Patient.status.expression,
            last_week_sq(),
            this_week_sq(),
        )
    )


@functools.cache
def base_statement() -> Select[Any]:
    """The page's patients with their facts and need rank (see `_base_rows`), built once:
    `ids` and the instants of `instants` are bound per call.

    The facts are computed once per row in a materialized CTE and the rank is read from its
    columns: with the rank's own subqueries beside the columns, both databases ran the two
    weeks' adherence twice per patient (half the statement's time on PostgreSQL)."""
    facts = (
        select(
            Patient.id,
            Patient.first_name,
            Patient.phone_e164,
            Patient.status,
            Patient.timezone,
            Patient.language,
            Patient.enrolled_at,
            last_reply_sq().label("last_reply"),
            open_alerts_sq().label("open_alerts"),
            top_severity_sq().label("severity"),
            last_week_sq().label("last_week"),
            this_week_sq().label("this_week"),
            missed_check_sq().label("missed_check"),
        )
        .where(Patient.id.in_(bindparam("ids", expanding=True)))
        .cte("page_facts")
        .prefix_with("MATERIALIZED")
    )
    c = facts.c
    rank = rank_of(
        RankFacts(
            c.severity,
            c.missed_check,
            c.last_reply,
            c.enrolled_at,
            c.status,
            c.last_week,
            c.this_week,
        )
    )
    return select(
        c.id,
        c.first_name,
        c.phone_e164,
        c.status,
        c.timezone,
        c.language,
        c.enrolled_at,
        c.last_reply,
        c.open_alerts,
        rank,
        c.last_week,
        c.this_week,
        c.missed_check,
    )


@functools.cache
def track_counts_statement() -> Select[int, str, int, int, int, int, int, int]:
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    week = Nudge.due_at >= WEEK_AGO
    sent = Nudge.state.in_(SENT_STATES)
    done = AdherenceRecord.outcome == AdherenceOutcome.DONE
    partial = AdherenceRecord.outcome == AdherenceOutcome.PARTIAL
    return (
        select(
            Nudge.patient_id,
            Nudge.track,
            func.count(Nudge.id).filter(sent, week),
            func.count(AdherenceRecord.id).filter(done, week),
            func.count(Nudge.id).filter(sent),
            func.count(AdherenceRecord.id).filter(done),
            func.count(AdherenceRecord.id).filter(partial, week),
            func.count(AdherenceRecord.id).filter(partial),
        )
        # The answers' patient filter is repeated in the join so PostgreSQL reads only
        # these patients' answers by index instead of hashing the whole table.
        .outerjoin(
            AdherenceRecord,
            and_(AdherenceRecord.nudge_id == Nudge.id, AdherenceRecord.patient_id.in_(ids)),
        )
        .where(
            Nudge.patient_id.in_(ids),
            Nudge.due_at >= bindparam("month_ago", type_=Patient.enrolled_at.type),
            Nudge.due_at <= NOW,
            Nudge.occurrence_key.not_like(f"%{FOLLOWUP_SUFFIX}"),
        )
        .group_by(Nudge.patient_id, Nudge.track)
    )


@functools.cache
def streaks_statement() -> Select[int, str, Any]:
    """Built once; the patients, `now` and each local midnight (`day_N`) are bound per zone."""
    midnight = [
        bindparam(f"day_{n}", type_=Patient.enrolled_at.type) for n in range(STREAK_LIMIT_DAYS)
    ]
    day_bit = case(
        *((AdherenceRecord.recorded_at >= b, 1 << n) for n, b in enumerate(midnight)),
        else_=0,
    )
    return (
        select(
            AdherenceRecord.patient_id,
            AdherenceRecord.track,
            func.sum(day_bit.distinct()),
        )
        .where(
            AdherenceRecord.patient_id.in_(bindparam("ids", expanding=True)),
            AdherenceRecord.outcome == AdherenceOutcome.DONE,
            AdherenceRecord.recorded_at >= midnight[-1],
            AdherenceRecord.recorded_at <= NOW,
        )
        .group_by(AdherenceRecord.patient_id, AdherenceRecord.track)
    )
