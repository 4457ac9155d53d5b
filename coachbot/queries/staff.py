"""Staff accounts as pages and commands show them: one account by e-mail, the active
clinicians (who can own a patient or be on call), and the names or e-mails behind ids."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import Role
from coachbot.models import StaffUser


def staff_by_email(session: Session, email: str) -> StaffUser | None:
    """The account with this e-mail (stored lower case; the input is trimmed and folded)."""
    return session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def active_clinicians(session: Session) -> list[StaffUser]:
    """Active clinicians by e-mail: who can own a patient or be on call."""
    return list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.role == Role.CLINICIAN, StaffUser.is_active.is_(True))
            .order_by(StaffUser.email)
        )
    )


def staff_names(session: Session) -> dict[int, str]:
    """Every account's display name by id (for "acknowledged by" and the rota)."""
    return dict(session.execute(select(StaffUser.id, StaffUser.display_name)).all())


def staff_emails(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """The e-mails of these accounts by id."""
    query = select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(list(ids)))
    return dict(session.execute(query).all())
