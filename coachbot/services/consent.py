"""Consent that belongs to a phone number: the suppression list and the consent ledger.

A STOP keyword (from a patient, a caregiver or a number we do not know) or the carrier's
21610 puts the number on the suppression list; nothing is sent to it, whichever record it
belongs to, until that number texts START, UNSTOP or YES (`lift`). The SMS gateway guard
(`coachbot.sms.suppression`) enforces it for every send path.

Every function here works inside the caller's transaction: it takes a Session and never
commits, so the consent change commits or rolls back with what caused it (the inbound
text, the delivery callback, the clinician's action).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterator

import phonenumbers
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.patient_status import PausedBy
from coachbot.domain.phones import mask_phone
from coachbot.models import ConsentEvent, SuppressedNumber
from coachbot.services import audit
from coachbot.settings import Settings
from coachbot.sms.suppression import SuppressedAmong, SuppressionListUnreadable
from coachbot.store.dialect import insert_ignoring_duplicates

log = logging.getLogger(__name__)

# Ledger event names. The lead's inbound pipeline and the services below use these; a new
# kind of event gets a name here, so the patient page and the export show one vocabulary.
ENROLLED = "enrolled"  # the consent a clinician attested at enrolment (their words)
OPT_IN = "opt_in"  # the patient's YES to the welcome
OPT_OUT = "opt_out"  # a STOP keyword (any language)
REVOCATION = "revocation"  # "please stop texting me" in the patient's own words
RESUME = "resume"  # START / UNSTOP / YES after an opt-out or a pause
KEYWORD = "keyword"  # any other consent keyword (HELP after STOP, START while not stopped)
CARRIER_21610 = "carrier_21610"  # Twilio: the recipient unsubscribed at the carrier
SUPPRESSION_ADDED = "suppression_added"
SUPPRESSION_REPEATED = "suppression_repeated"  # a STOP from a number already suppressed
SUPPRESSION_LIFTED = "suppression_lifted"
CLINICIAN_PAUSE = "clinician_pause"
CLINICIAN_RESUME = "clinician_resume"
RESUME_REFUSED = "resume_refused"  # a clinician tried to restart a patient's own pause
SYSTEM_PAUSE = "system_pause"  # the number cannot receive texts
DISCHARGE = "discharge"
ENROLLED_SUPPRESSED = "enrolled_suppressed"  # enrolled on a suppressed number: no welcome
NUMBER_CHANGED = "number_changed"

# Who paused a patient (Patient.paused_by); the status rules are in domain.patient_status.
PAUSED_BY_PATIENT = PausedBy.PATIENT
PAUSED_BY_CLINICIAN = PausedBy.CLINICIAN
PAUSED_BY_SYSTEM = PausedBy.SYSTEM

# The ledger keeps what the person wrote, up to an inbound text's useful length.
MAX_TEXT = 1600


def record_event(
    session: Session,
    *,
    number: str | None,
    patient_id: int | None,
    event: str,
    text: str | None,
    now: dt.datetime,
    source: str | None = None,
    actor: str | None = None,
) -> ConsentEvent:
    """Appends one ledger row to the caller's transaction (never updated, never deleted)."""
    row = ConsentEvent(
        at=now,
        number_e164=number,
        patient_id=patient_id,
        event=event,
        source=source,
        actor=actor,
        text=text[:MAX_TEXT] if text is not None else None,
    )
    session.add(row)
    return row


def record_audited(
    session: Session,
    *,
    patient_id: int,
    number: str,
    event: str,
    action: str,
    detail: str,
    now: dt.datetime,
    actor: str,
    text: str | None = None,
    source: str | None = None,
    outcome: str = "ok",
) -> ConsentEvent:
    """A consent change someone made about a patient (a clinician, or the system for them):
    the audit row (`action`, `detail`) and the ledger row (`event`), always the two together,
    in the caller's transaction. The patient's own words go through `record_event` alone."""
    audit.record(
        session,
        actor=actor,
        action=action,
        patient_id=patient_id,
        now=now,
        outcome=outcome,
        detail=detail,
    )
    return record_event(
        session,
        number=number,
        patient_id=patient_id,
        event=event,
        text=text,
        now=now,
        source=source,
        actor=actor,
    )


def suppress(
    session: Session,
    number: str,
    *,
    source: str,
    text: str | None,
    now: dt.datetime,
    patient_id: int | None = None,
) -> bool:
    """Puts `number` on the suppression list; True when it was not on it yet. Either way
    the ledger keeps this request with its words. Safe against a concurrent STOP from the
    same number (the insert ignores a row already there)."""
    added = bool(
        insert_ignoring_duplicates(
            session,
            SuppressedNumber,
            {
                "number_e164": number,
                "source": source,
                "patient_id": patient_id,
                "suppressed_at": now,
            },
            ["number_e164"],
            [SuppressedNumber.number_e164],
        )
    )
    record_event(
        session,
        number=number,
        patient_id=patient_id,
        event=SUPPRESSION_ADDED if added else SUPPRESSION_REPEATED,
        text=text,
        now=now,
        source=source,
    )
    log.info("number %s suppressed (%s, new=%s)", mask_phone(number), source, added)
    return added


def lift(
    session: Session,
    number: str,
    *,
    source: str,
    text: str | None,
    now: dt.datetime,
    patient_id: int | None = None,
) -> bool:
    """Takes `number` off the suppression list; True when it was on it (then the ledger
    records the lift). Call it only for START, UNSTOP or YES from that number itself."""
    lifted = (
        session.scalar(
            delete(SuppressedNumber)
            .where(SuppressedNumber.number_e164 == number)
            .returning(SuppressedNumber.number_e164)
            .execution_options(synchronize_session=False)
        )
        is not None
    )
    if lifted:
        record_event(
            session,
            number=number,
            patient_id=patient_id,
            event=SUPPRESSION_LIFTED,
            text=text,
            now=now,
            source=source,
        )
        log.info("number %s suppression lifted (%s)", mask_phone(number), source)
    return lifted


def carrier_opt_out(
    session: Session, number: str, patient_id: int | None, code: str | None, now: dt.datetime
) -> None:
    """Twilio's 21610 (the recipient unsubscribed at the carrier) suppresses the number,
    whichever message met it (nudge, welcome, caregiver text), as a STOP would."""
    record_event(
        session,
        number=number,
        patient_id=patient_id,
        event=CARRIER_21610,
        text=None,
        now=now,
        source=f"twilio_{code}",
        actor="system",
    )
    suppress(session, number, source=CARRIER_21610, text=None, now=now, patient_id=patient_id)


def is_suppressed(session: Session, number: str) -> bool:
    return (
        session.scalar(
            select(SuppressedNumber.number_e164).where(SuppressedNumber.number_e164 == number)
        )
        is not None
    )


def suppressed_among(session: Session, numbers: Collection[str]) -> set[str]:
    """The suppressed ones of `numbers`, in one query (the gateway guard's batch check)."""
    if not numbers:
        return set()
    return set(
        session.scalars(
            select(SuppressedNumber.number_e164).where(
                SuppressedNumber.number_e164.in_(list(set(numbers)))
            )
        )
    )


def suppression_reader(session_factory: sessionmaker[Session]) -> SuppressedAmong:
    """The gateway guard's look-up (`coachbot.sms.suppression`): each call reads in a
    session of its own (a read session: a caller may hold SQLite's write lock around its
    send); a database error becomes SuppressionListUnreadable, so the guard holds the batch."""

    def read(numbers: Collection[str]) -> set[str]:
        try:
            with session_factory() as session:
                return suppressed_among(session, numbers)
        except SQLAlchemyError as exc:
            # The error's class only: its text could quote the numbers looked up.
            raise SuppressionListUnreadable(type(exc).__name__) from exc

    return read


def suppression_list(session: Session) -> list[SuppressedNumber]:
    """Every number nothing may be sent to, newest first (the admins' list names no patient)."""
    return list(
        session.scalars(
            select(SuppressedNumber).order_by(
                SuppressedNumber.suppressed_at.desc(), SuppressedNumber.number_e164
            )
        )
    )


def ledger(
    session: Session, patient_id: int, number: str, *, limit: int | None = None
) -> list[ConsentEvent]:
    """The consent events of a patient, and those of their current number that belong to no
    patient (a STOP from it before it was theirs still holds), newest first. Another
    patient's events on the same number stay theirs: a clinician sees only their own
    patients. Only reads."""
    query = (
        select(ConsentEvent)
        .where(
            or_(
                ConsentEvent.patient_id == patient_id,
                and_(ConsentEvent.patient_id.is_(None), ConsentEvent.number_e164 == number),
            )
        )
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


LEDGER_COLUMNS = ("at", "event", "number", "patient_id", "source", "actor", "text")


def ledger_csv(events: list[ConsentEvent]) -> Iterator[str]:
    """The ledger as CSV for audits and disputes: full number, exact words (a cell that a
    spreadsheet would run as a formula is shown as text)."""
    from coachbot.queries.exports import csv_text, spreadsheet_safe

    rows: list[list[object]] = [list(LEDGER_COLUMNS)]
    rows.extend(
        [
            e.at.isoformat(),
            e.event,
            e.number_e164,
            e.patient_id,
            e.source,
            e.actor,
            spreadsheet_safe(e.text) if e.text else None,
        ]
        for e in reversed(events)  # oldest first, as a ledger reads
    )
    return csv_text(rows)


def start_number(settings: Settings) -> str:
    """The number a person texts START to: the clinic's Twilio number, shown readably.
    A Messaging Service (or the console backend) has no one number to name, so the clinic
    is told the honest thing instead."""
    raw = settings.twilio_from_number
    if not raw:
        return "the number coachbot texts them from"
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return raw
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def opted_out_notice(settings: Settings) -> str:
    """What the enrol form, the bulk upload and the CLI say about a suppressed number."""
    return f"this number has opted out; ask them to text START to {start_number(settings)}"
