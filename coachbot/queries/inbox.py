"""The "To read" inbox: texts the bot did not act on, waiting for a person.

A row is waiting while ``inbound_messages.needs_reading`` is true and ``read_at`` is null (the
partial state the index ``ix_inbound_to_read`` covers). Who sees what:

* a clinician sees the texts of their own patients (and caregivers writing about them);
* an admin sees the texts that belong to no patient (a number we do not know), which no
  clinician owns;
* anyone else sees nothing.

Oldest first: the text that has waited longest is read first. Every count and page is one SQL
statement; nothing loops over the waiting rows in Python.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import Role
from coachbot.models import InboundMessage, Patient

PER_PAGE = 50


@dataclass(frozen=True)
class InboxItem:
    id: int
    received_at: dt.datetime
    body: str
    patient_id: int | None
    first_name: str | None  # None: a number we do not know
    from_e164: str
    is_proxy: bool  # sent by the patient's caregiver


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxItem]
    total: int
    page: int
    pages: int


def _waiting() -> ColumnElement[bool]:
    return InboundMessage.needs_reading.is_(True) & InboundMessage.read_at.is_(None)


def _in_scope(role: str, viewer_id: int) -> ColumnElement[bool] | None:
    """The condition on (inbound_messages joined to patients) for what `role` may read."""
    if role == Role.CLINICIAN:
        return Patient.clinician_id == viewer_id
    if role == Role.ADMIN:
        return InboundMessage.patient_id.is_(None)
    return None


def to_read_count(session: Session, *, viewer_id: int, role: str) -> int:
    """How many texts wait for this viewer: the number in the navigation."""
    scope = _in_scope(role, viewer_id)
    if scope is None:
        return 0
    query = (
        select(func.count(InboundMessage.id))
        .select_from(InboundMessage)
        .outerjoin(Patient, Patient.id == InboundMessage.patient_id)
        .where(_waiting(), scope)
    )
    return session.scalar(query) or 0


def to_read_page(session: Session, *, viewer_id: int, role: str, page: int = 1) -> InboxPage:
    """One page of the waiting texts this viewer may read, oldest first."""
    total = to_read_count(session, viewer_id=viewer_id, role=role)
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(1, page), pages)
    scope = _in_scope(role, viewer_id)
    if scope is None or total == 0:
        return InboxPage([], total, page, pages)
    query = (
        select(
            InboundMessage.id,
            InboundMessage.received_at,
            InboundMessage.body,
            InboundMessage.patient_id,
            Patient.first_name,
            InboundMessage.from_e164,
            InboundMessage.is_proxy,
        )
        .select_from(InboundMessage)
        .outerjoin(Patient, Patient.id == InboundMessage.patient_id)
        .where(_waiting(), scope)
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    )
    items = [InboxItem(*row) for row in session.execute(query)]
    return InboxPage(items, total, page, pages)
