"""Staff accounts: creation with argon2id password hashes, deactivation and role changes
(both end the account's sessions at once)."""

from __future__ import annotations

import datetime as dt
import re

from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import Role
from coachbot.models import StaffSession, StaffUser
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed
from coachbot.services.oncall import staff_phone

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 12
password_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def create_staff_user(
    sessions: sessionmaker[Session],
    *,
    email: str,
    role: str,
    password: str,
    now: dt.datetime,
    actor: str,
    display_name: str | None = None,
    phone: str | None = None,
    default_region: str = "US",
) -> StaffUser:
    """`phone`: the mobile on-call pages go to (optional; E.164 or national format)."""
    with sessions.begin() as session:
        errors: dict[str, str] = {}
        phone_e164 = None
        try:
            phone_e164 = staff_phone(session, phone, default_region=default_region)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        email = email.strip().lower()
        if not _EMAIL.match(email):
            errors["email"] = f"{email!r} is not an email address"
        elif session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
            errors["email"] = f"{email} already has an account"
        if role not in {r.value for r in Role}:
            errors["role"] = f"{role!r} is not a role; choose {', '.join(r.value for r in Role)}"
        if len(password) < MIN_PASSWORD_LENGTH:
            errors["password"] = f"at least {MIN_PASSWORD_LENGTH} characters"
        if errors:
            raise ValidationFailed(errors)
        user = StaffUser(
            email=email,
            display_name=(display_name or email.split("@")[0]).strip()[:120],
            role=role,
            password_hash=password_hasher.hash(password),
            is_active=True,
            created_at=now,
            phone_e164=phone_e164,
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="staff.create",
            now=now,
            detail=f"user={user.id} role={role}",
        )
    return user


class SelfChangeRefused(ValueError):
    """An admin may not lock themselves out: another admin makes that change."""


def _end_sessions(session: Session, user_id: int, now: dt.datetime, reason: str) -> None:
    session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )


def _other_account(session: Session, user_id: int, admin_id: int, refusal: str) -> StaffUser | None:
    """The account an admin acts on, None when there is none; never the admin's own, so no
    admin can lock the clinic out by themselves (SelfChangeRefused with `refusal`)."""
    user = session.get(StaffUser, user_id)
    if user is not None and user.id == admin_id:
        raise SelfChangeRefused(refusal)
    return user


def toggle_active(
    sessions: sessionmaker[Session], user_id: int, *, admin_id: int, now: dt.datetime, actor: str
) -> StaffUser | None:
    """Deactivates an active account (ending its sessions at once) or reactivates it. None
    when there is no such account; SelfChangeRefused for the admin's own account."""
    with sessions.begin() as session:
        user = _other_account(session, user_id, admin_id, "You cannot deactivate your own account.")
        if user is None:
            return None
        user.is_active = not user.is_active
        if not user.is_active:
            _end_sessions(session, user.id, now, "deactivated")
        audit.record(
            session,
            actor=actor,
            action="staff.activate" if user.is_active else "staff.deactivate",
            now=now,
            detail=f"user={user.id}",
        )
    return user


def change_role(
    sessions: sessionmaker[Session],
    user_id: int,
    role: str,
    *,
    admin_id: int,
    now: dt.datetime,
    actor: str,
) -> StaffUser | None:
    """A new role, in force at once: the account's sessions carry the old one and end. None
    when there is no such account; SelfChangeRefused for the admin's own account."""
    with sessions.begin() as session:
        user = _other_account(
            session, user_id, admin_id, "Ask another admin to change your own role."
        )
        if user is None:
            return None
        old, user.role = user.role, role or user.role
        _end_sessions(session, user.id, now, "role_changed")
        audit.record(
            session,
            actor=actor,
            action="staff.role",
            now=now,
            detail=f"user={user.id} {old}->{user.role}",
        )
    return user


def staff_accounts(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))
