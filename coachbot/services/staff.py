"""Staff accounts: creation with argon2id password hashes."""

from __future__ import annotations

import datetime as dt
import re

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import Role
from coachbot.models import StaffUser
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed
from coachbot.services.oncall import staff_phone

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 12
password_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def create_staff_user(
    session: Session,
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
        session, actor=actor, action="staff.create", now=now, detail=f"user={user.id} role={role}"
    )
    session.commit()
    return user
