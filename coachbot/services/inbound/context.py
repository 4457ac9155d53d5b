"""What every stage of an inbound text shares: the text, its row, the sender as read once,
their open nudges, and the domain's decision about what the text means.

`find_sender` reads the sender (by own phone, or as a caregiver with every patient they are
linked to) and their open nudges in one round trip (`store.inbound.sender_rows`);
`decide_text` asks the pure `coachbot.domain.triage.decide`; `raise_alerts` raises what it decided.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from coachbot.content import MessageLibrary
from coachbot.domain.program import MAX_REPLY_WINDOW, TRACK_POLICIES
from coachbot.domain.states import (
    AlertKind,
    AlertSeverity,
    PatientStatus,
)
from coachbot.domain.triage import (
    Decision,
    OpenPrompt,
    SenderContext,
    SenderRole,
    decide,
)
from coachbot.models import (
    Alert,
)
from coachbot.services import consent
from coachbot.services.alerts import raise_alert
from coachbot.services.programs import rules_for
from coachbot.settings import Settings
from coachbot.store import inbound as inbound_store

log = logging.getLogger(__name__)

EMPTY_TWIML = str(MessagingResponse())
FAILED = "error"  # the outcome of a row kept unprocessed; the clock tick's recovery re-runs it
RECOVERING = "recovering"  # a row claimed by one clock process's recovery (transaction-local)


@dataclass(frozen=True)
class InboundSms:
    provider_sid: str
    from_number: str
    to_number: str
    body: str
    num_media: int = 0
    media_urls: tuple[str, ...] = ()  # MediaUrl0..N: rows in media_samples (cgmms)


@dataclass
class InboundRow:
    """The inbound row being handled. Inserted first (its id keys alerts and answers), the
    rest is written by one UPDATE at the end instead of one per changed field."""

    id: int
    provider_sid: str
    from_e164: str
    body: str
    num_media: int
    patient_id: int | None = None
    caregiver_id: int | None = None
    is_proxy: bool = False
    nudge_id: int | None = None
    outcome: str | None = None
    needs_reading: bool = False

    def found(self, outcome: str | None) -> dict[str, object]:
        """The columns handling the text sets, for the row's one final UPDATE."""
        return {
            "patient_id": self.patient_id,
            "caregiver_id": self.caregiver_id,
            "is_proxy": self.is_proxy,
            "nudge_id": self.nudge_id,
            "outcome": outcome,
            "needs_reading": self.needs_reading,
        }


@dataclass
class SenderRecord:
    """The sender's record as read once; changes go to the database as Core UPDATEs."""

    id: int
    phone_e164: str
    status: str
    language: str
    first_name: str
    timezone: str
    opted_in_at: dt.datetime | None
    paused_by: str | None = None
    number_suppressed: bool = False  # the number that texted is on the suppression list


@dataclass
class CaregiverSender:
    """A caregiver's number texted: their own consent and language, and every patient they
    are linked to (by patient id), each with the caregiver's baseline for them."""

    id: int
    status: str
    language: str
    first_name: str
    number_suppressed: bool
    patients: tuple[SenderRecord, ...]
    baselines: dict[int, int | None]


@dataclass(frozen=True)
class OpenNudge:
    id: int
    patient_id: int
    track: str
    occurrence_key: str
    sent_at: dt.datetime | None
    record_id: int | None  # the adherence record already answering it, if any


@dataclass
class Context:
    session: Session
    connection: Connection
    library: MessageLibrary
    settings: Settings
    row: InboundRow
    now: dt.datetime
    patient: SenderRecord | None = None
    caregiver: CaregiverSender | None = None  # set when a caregiver's number texted
    # Re-running a row kept as failed: effects the fallback already applied are not repeated.
    recovering: bool = False
    open_nudges: tuple[OpenNudge, ...] = ()  # the sender's, most recent first
    recent_replies: int | None = None  # bot replies to this number in the last hour
    decision: Decision | None = None
    pageable: bool = False  # raised an alert a person must be paged for
    done_facts: DoneFacts | None = None  # read before an answer is written, for its coaching

    def require_decision(self) -> Decision:
        assert self.decision is not None, "decided before it is carried out"
        return self.decision


@dataclass(frozen=True)
class DoneFacts:
    recent_replies: int
    earlier_done: int  # DONE answers on the track before this one
    earlier_instants: list[dt.datetime]  # and when, over the streak window


def insert_row(connection: Connection, sms: InboundSms, now: dt.datetime, **kept: str) -> int:
    """Stores the text (its provider_sid is unique) and returns the row's id."""
    values: dict[str, object] = {
        "provider_sid": sms.provider_sid,
        "from_e164": sms.from_number,
        "to_e164": sms.to_number,
        "body": sms.body,
        "num_media": sms.num_media,
        "is_proxy": False,
        "received_at": now,
        **kept,
    }
    return inbound_store.insert_row(connection, values)


def raised_for_row(ctx: Context, kind: AlertKind) -> bool:
    """True when this row already raised an alert of `kind` (only asked while recovering:
    the fallback that kept the row may have applied its STOP or red flag)."""
    if not ctx.recovering:
        return False
    found = ctx.connection.execute(
        select(Alert.id).where(Alert.inbound_message_id == ctx.row.id, Alert.kind == kind).limit(1)
    ).first()
    return found is not None


def decide_text(ctx: Context, patient: SenderRecord | None) -> Decision:
    prompts = tuple(
        OpenPrompt(n.id, n.track, TRACK_POLICIES[n.track].expectation) for n in ctx.open_nudges
    )
    return decide(ctx.row.body, _sender_context(ctx, patient), prompts, num_media=ctx.row.num_media)


def _sender_context(ctx: Context, patient: SenderRecord | None) -> SenderContext:
    caregiver = ctx.caregiver
    if caregiver is not None:
        # The caregiver's own consent, not the patient's: their YES, their STOP.
        return SenderContext(
            SenderRole.CAREGIVER,
            PatientStatus(caregiver.status),
            number_suppressed=caregiver.number_suppressed,
        )
    if patient is None:
        suppressed = consent.is_suppressed(ctx.session, ctx.row.from_e164)
        return SenderContext(SenderRole.UNKNOWN, number_suppressed=suppressed)
    return SenderContext(
        SenderRole.PATIENT,
        PatientStatus(patient.status),
        paused_by_patient=patient.paused_by == consent.PAUSED_BY_PATIENT,
        number_suppressed=patient.number_suppressed,
    )


def raise_alerts(ctx: Context, decision: Decision) -> None:
    """The decision's alerts; a caregiver's text is about every patient they watch, so each
    of them gets its own (a red flag pages for all at once)."""
    patient_ids: list[int | None] = [ctx.patient.id if ctx.patient is not None else None]
    if ctx.caregiver is not None:
        patient_ids = [p.id for p in ctx.caregiver.patients]
    for spec in decision.alerts:
        if raised_for_row(ctx, spec.kind):
            continue  # raised by the fallback that kept this row
        for patient_id in patient_ids:
            raise_alert(
                ctx.session,
                patient_id=patient_id,
                kind=spec.kind,
                severity=spec.severity,
                detail=spec.detail,
                now=ctx.now,
                inbound_message_id=ctx.row.id,
            )
        if spec.severity in (AlertSeverity.URGENT, AlertSeverity.HIGH) and decision.is_danger:
            ctx.pageable = True


def find_sender(ctx: Context) -> SenderRecord | None:
    """The patient who texted, with their open nudges. A caregiver's number (that is no
    patient's own) sets `ctx.caregiver` with every patient they watch, and returns the
    patient the text is about when they watch only one (else None: the caregiver service
    works out whom it is about)."""
    number = ctx.row.from_e164
    # Bounded by the longest reply window any programme may set; a windowless nudge is then
    # held to its own programme's window (`_still_open`).
    rows = inbound_store.sender_rows(ctx.connection, number, ctx.now, ctx.now - MAX_REPLY_WINDOW)
    if not rows:
        return None
    patients: dict[int, SenderRecord] = {}
    nudges: dict[int, list[OpenNudge]] = {}
    for r in rows:
        if r.id not in patients:
            patients[r.id] = SenderRecord(
                r.id,
                r.phone_e164,
                r.status,
                r.language,
                r.first_name,
                r.timezone,
                r.opted_in_at,
                r.paused_by,
                bool(r.number_suppressed),
            )
            nudges[r.id] = []
        if r.nudge_id is not None and r.caregiver_id is None and _still_open(ctx, r):
            nudges[r.id].append(
                OpenNudge(r.nudge_id, r.id, r.track, r.occurrence_key, r.sent_at, r.record_id)
            )
    own = next((p for p in patients.values() if p.phone_e164 == number), None)
    if own is None:
        return _as_caregiver(ctx, rows, patients)
    ctx.open_nudges = tuple(nudges[own.id])
    return own


def _as_caregiver(
    ctx: Context, rows: Sequence[Any], patients: dict[int, SenderRecord]
) -> SenderRecord | None:
    first = next(r for r in rows if r.caregiver_id is not None)
    watched = tuple(sorted(patients.values(), key=lambda p: p.id))
    ctx.caregiver = CaregiverSender(
        first.caregiver_id,
        first.caregiver_status,
        first.caregiver_language,
        first.caregiver_first_name,
        bool(first.number_suppressed),
        watched,
        {r.id: r.baseline_score for r in rows},
    )
    ctx.row.is_proxy = True
    ctx.row.caregiver_id = first.caregiver_id
    # A caregiver answers their own checks, never the patient's nudges.
    ctx.open_nudges = ()
    return watched[0] if len(watched) == 1 else None


def _still_open(ctx: Context, row: Any) -> bool:
    """An open nudge with a reply window was checked by the query. One without a window yet
    (an ambiguous send) stays open for the reply window its patient's programme sets for the
    track now, not for the built-in windows: programmes may set longer ones."""
    if row.reply_window_ends_at is not None:
        return True
    window = rules_for(ctx.session, row.id, row.track).reply_window
    return bool(row.sent_at > ctx.now - window)
