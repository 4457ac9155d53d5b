"""Audit rows for pages that show patients' words (the alerts queue, the "To read" inbox):
one row per patient on the page, written in one transaction of their own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session, sessionmaker

from coachbot.services import audit


def record_page_view(
    session_factory: sessionmaker[Session],
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    patient_ids: Iterable[int | None],
) -> None:
    """One audit row per patient whose words were on the page, and one for texts from
    numbers no record holds (None), if any were shown."""
    ids = list(patient_ids)
    known = sorted({pid for pid in ids if pid is not None})
    with session_factory.begin() as session:
        audit.record_reads(session, actor=actor, action=action, now=now, patient_ids=known)
        if None in ids:
            audit.record(session, actor=actor, action=action, now=now, detail="unknown senders")
