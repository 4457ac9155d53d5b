"""The inbound row and the sender look-up: the statements every inbound text runs.

Statements are built once, parameters bound by name at execution: building the open-nudge
condition alone was 3% of a request in bench/webhook_profile.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    exists,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import aliased

from coachbot.domain.states import NudgeState
from coachbot.models import (
    AdherenceRecord,
    Caregiver,
    CaregiverLink,
    InboundMessage,
    Nudge,
    Patient,
    SuppressedNumber,
)

# A nudge may still be answered in these states (an ambiguous one may have reached the phone).
OPEN_STATES = (NudgeState.SENT, NudgeState.DELIVERED, NudgeState.AMBIGUOUS)

_INSERT_ROW = insert(InboundMessage).returning(InboundMessage.id)
_UPDATE_ROW = update(InboundMessage).where(InboundMessage.id == bindparam("row_id"))


def insert_row(connection: Connection, values: dict[str, object]) -> int:
    """Stores a text (its provider_sid is unique: a duplicate raises IntegrityError) and
    returns the row's id."""
    return int(connection.execute(_INSERT_ROW, values).scalar_one())


def is_stored(connection: Connection, provider_sid: str) -> bool:
    """Whether a text with this provider id is already kept (handled or not)."""
    found = connection.execute(
        select(InboundMessage.id).where(InboundMessage.provider_sid == provider_sid)
    ).first()
    return found is not None


def update_row(connection: Connection, row_id: int, values: dict[str, object]) -> None:
    """Writes what handling the text found (sender, outcome, answer) to its row."""
    connection.execute(_UPDATE_ROW, {"row_id": row_id, **values})


def claim_failed(connection: Connection, row_id: int, failed: str, claimed: str) -> Any:
    """Moves a row kept as `failed` to `claimed` and returns its text, or None when it is not
    failed any more (another clock process has it)."""
    return connection.execute(
        update(InboundMessage)
        .where(InboundMessage.id == row_id, InboundMessage.outcome == failed)
        .values(outcome=claimed)
        .returning(
            InboundMessage.provider_sid,
            InboundMessage.from_e164,
            InboundMessage.body,
            InboundMessage.num_media,
            InboundMessage.received_at,
        )
    ).first()


def _open_condition() -> Any:
    return and_(
        Nudge.patient_id == Patient.id,
        Nudge.state.in_(OPEN_STATES),
        Nudge.sent_at <= bindparam("now"),
        or_(
            Nudge.reply_window_ends_at > bindparam("now"),
            and_(
                Nudge.reply_window_ends_at.is_(None),
                Nudge.sent_at > bindparam("window_start"),
            ),
        ),
    )


# The caregiver whose number texted, if any (the number is unique among caregivers).
_CAREGIVER_ID = (
    select(Caregiver.id).where(Caregiver.phone_e164 == bindparam("number")).scalar_subquery()
)

# The patients table again, for the candidates' look-up by own phone (a separate FROM, not
# correlated with the outer query's patients).
_OWN = aliased(Patient)

# The sender (by own phone, or as caregiver through caregiver_links), each candidate's open
# nudges, the answer each nudge already has, and the caregiver's own record and baseline for
# that patient, in one round trip; most recent nudge first within a patient.
_SENDER = (
    select(
        Patient.id,
        Patient.phone_e164,
        Patient.status,
        Patient.language,
        Patient.first_name,
        Patient.timezone,
        Patient.opted_in_at,
        Patient.paused_by,
        # Whether the texting number opted out, in the same round trip.
        exists()
        .where(SuppressedNumber.number_e164 == bindparam("number"))
        .label("number_suppressed"),
        Caregiver.id.label("caregiver_id"),
        Caregiver.status.label("caregiver_status"),
        Caregiver.language.label("caregiver_language"),
        Caregiver.first_name.label("caregiver_first_name"),
        CaregiverLink.baseline_score,
        Nudge.id.label("nudge_id"),
        Nudge.track,
        Nudge.occurrence_key,
        Nudge.sent_at,
        Nudge.reply_window_ends_at,
        AdherenceRecord.id.label("record_id"),
    )
    .select_from(Patient)
    .outerjoin(
        CaregiverLink,
        and_(CaregiverLink.patient_id == Patient.id, CaregiverLink.caregiver_id == _CAREGIVER_ID),
    )
    .outerjoin(Caregiver, Caregiver.id == CaregiverLink.caregiver_id)
    # The candidates as a union of two index look-ups: written as `phone = :number OR id IN
    # (...)`, PostgreSQL guessed half the patients matched and hashed every nudge in the
    # table for them (20 ms a text at 1,000 patients, and growing with the history).
    .where(
        Patient.id.in_(
            union_all(
                select(_OWN.id).where(_OWN.phone_e164 == bindparam("number")),
                select(CaregiverLink.patient_id).where(CaregiverLink.caregiver_id == _CAREGIVER_ID),
            )
        )
    )
    .outerjoin(Nudge, _open_condition())
    .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
    .order_by(Patient.id, Nudge.sent_at.desc(), Nudge.id.desc())
)


def sender_rows(
    connection: Connection, number: str, now: dt.datetime, windowless_since: dt.datetime
) -> Sequence[Any]:
    """One row per (patient with this number as own or as their caregiver's, open nudge), or
    one row with no nudge; the caregiver columns are set on the rows of the patients the
    number is caregiver of. A nudge without a reply window yet (ambiguous) counts as open when
    sent after `windowless_since`."""
    return connection.execute(
        _SENDER, {"number": number, "now": now, "window_start": windowless_since}
    ).all()
