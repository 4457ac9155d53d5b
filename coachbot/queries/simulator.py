"""The phone simulator's page: each of a clinician's patients' phones with its latest texts.

One statement for the whole page, whatever the number of patients: the newest
`length` texts each way per phone are picked in SQL (ROW_NUMBER per phone), joined to the
clinician's patients (a patient with no texts still gets a phone), and merged per phone here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, func, literal, select, union_all
from sqlalchemy.orm import Session

from coachbot.models import InboundMessage, OutboundMessage, Patient

# From the phone's side: what the clinic sent arrives ("in"), the patient's replies leave ("out").
IN, OUT = "in", "out"


@dataclass
class Phone:
    patient: Patient
    # (direction, at, body), oldest first: the newest `length` of both directions together.
    texts: list[tuple[str, dt.datetime, str]] = field(default_factory=list)


def _conversation_order(text: tuple[str, dt.datetime, str]) -> tuple[dt.datetime, int]:
    """Oldest first; at the same instant the phone's own text before the clinic's: a bot
    reply is written at the instant of the text it answers, and reads under it."""
    direction, at, _body = text
    return (at, 0 if direction == OUT else 1)


def phones(session: Session, clinician_id: int, length: int) -> list[Phone]:
    """The clinician's patients by first name, each with its phone's latest `length` texts."""
    mine = select(Patient.phone_e164).where(Patient.clinician_id == clinician_id)
    received = select(
        literal(IN).label("direction"),
        OutboundMessage.to_e164.label("phone"),
        OutboundMessage.created_at.label("at"),
        OutboundMessage.id.label("id"),
        OutboundMessage.body.label("body"),
        func.row_number()
        .over(
            partition_by=OutboundMessage.to_e164,
            order_by=(OutboundMessage.created_at.desc(), OutboundMessage.id.desc()),
        )
        .label("rank"),
    ).where(
        OutboundMessage.to_e164.in_(mine),
        # A muted reply is a marker row, never sent: no bubble on the phone.
        OutboundMessage.backend != "muted",
    )
    sent = select(
        literal(OUT).label("direction"),
        InboundMessage.from_e164.label("phone"),
        InboundMessage.received_at.label("at"),
        InboundMessage.id.label("id"),
        InboundMessage.body.label("body"),
        func.row_number()
        .over(
            partition_by=InboundMessage.from_e164,
            order_by=(InboundMessage.received_at.desc(), InboundMessage.id.desc()),
        )
        .label("rank"),
    ).where(InboundMessage.from_e164.in_(mine))
    texts = union_all(received, sent).subquery("texts")
    rows = session.execute(
        select(Patient, texts.c.direction, texts.c.at, texts.c.body)
        .outerjoin(texts, and_(texts.c.phone == Patient.phone_e164, texts.c.rank <= length))
        .where(Patient.clinician_id == clinician_id)
        .order_by(
            Patient.first_name, Patient.id, texts.c.direction, texts.c.at.desc(), texts.c.id.desc()
        )
    )
    found: dict[int, Phone] = {}
    sides: dict[int, dict[str, list[tuple[str, dt.datetime, str]]]] = {}
    for patient, direction, at, body in rows:
        if patient.id not in found:
            found[patient.id] = Phone(patient)
            sides[patient.id] = {IN: [], OUT: []}
        if direction is not None:
            sides[patient.id][direction].append((direction, at, body))
    for patient_id, phone in found.items():
        merged = sides[patient_id][IN] + sides[patient_id][OUT]
        merged.sort(key=_conversation_order)
        phone.texts = merged[-length:]
    return list(found.values())
