"""The phone simulator's page: each of a clinician's patients' phones with its latest texts.

One statement for the whole page, whatever the number of patients: the newest
`length` texts each way per phone are picked in SQL (ROW_NUMBER per phone), joined to the
clinician's patients (a patient with no texts still gets a phone), and merged per phone here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, literal, select, union_all
from sqlalchemy.orm import Session

from coachbot.models import InboundMessage, OutboundMessage, Patient

# From the phone's side: what the clinic sent arrives ("in"), the patient's replies leave ("out").
IN, OUT = "in", "out"


@dataclass
class Phone:
    patient: Patient
    # (direction, at, body), oldest first: the newest `length` of both directions together.
    texts: list[tuple[str, dt.datetime, str]] = field(default_factory=list)


def _ranked(direction: str, phone: Any, at: Any, row_id: Any) -> Select[Any]:
    """One direction's texts, each ranked per phone from the newest (1) back."""
    body = OutboundMessage.body if direction == IN else InboundMessage.body
    rank = func.row_number().over(partition_by=phone, order_by=(at.desc(), row_id.desc()))
    return select(
        literal(direction).label("direction"),
        phone.label("phone"),
        at.label("at"),
        row_id.label("id"),
        body.label("body"),
        rank.label("rank"),
    )


def _conversation_order(text: tuple[str, dt.datetime, str]) -> tuple[dt.datetime, int]:
    """Oldest first; at the same instant the phone's own text before the clinic's: a bot
    reply is written at the instant of the text it answers, and reads under it."""
    direction, at, _body = text
    return (at, 0 if direction == OUT else 1)


def phones(session: Session, clinician_id: int, length: int) -> list[Phone]:
    """The clinician's patients by first name, each with its phone's latest `length` texts."""
    mine = select(Patient.phone_e164).where(Patient.clinician_id == clinician_id)
    received = _ranked(
        IN, OutboundMessage.to_e164, OutboundMessage.created_at, OutboundMessage.id
    ).where(
        OutboundMessage.to_e164.in_(mine),
        # A muted reply is a marker row, never sent: no bubble on the phone.
        OutboundMessage.backend != "muted",
    )
    sent = _ranked(
        OUT, InboundMessage.from_e164, InboundMessage.received_at, InboundMessage.id
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
