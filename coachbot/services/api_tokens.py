"""Per-user API tokens for /api/v1. The token is shown once; only its SHA-256 is stored,
which is enough for a 256-bit random secret (no slow hash needed: it cannot be guessed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from contextlib import ExitStack
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.models import ApiToken, StaffUser
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed

TOKEN_PREFIX = "cbt_"  # noqa: S105  (a recognisable prefix for secret scanners, not a secret)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to the person once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    sessions: sessionmaker[Session], user_id: int, *, name: str, now: dt.datetime, actor: str
) -> IssuedToken:
    name = name.strip()
    if not name or len(name) > 80:
        raise ValidationFailed({"name": "a name of 1 to 80 characters, e.g. 'research export'"})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with sessions.begin() as session:
        user = session.get(StaffUser, user_id)
        if user is None or not user.is_active:
            raise ValidationFailed({"user": "the account is deactivated"})
        row = ApiToken(
            user_id=user.id,
            name=name,
            token_hash=_hash(secret),
            prefix=secret[:12],
            created_at=now,
        )
        session.add(row)
        session.flush()
        audit.record(
            session, actor=actor, action="api_token.create", now=now, detail=f"token={row.id}"
        )
    return IssuedToken(row, secret)


def revoke_token(
    sessions: sessionmaker[Session],
    token_id: int,
    *,
    now: dt.datetime,
    actor: str,
    user_id: int | None = None,
) -> bool:
    """Revokes the token; with `user_id`, only if it belongs to that user. False if not found."""
    with sessions.begin() as session:
        row = session.get(ApiToken, token_id)
        if row is None or (user_id is not None and row.user_id != user_id):
            return False
        if row.revoked_at is None:
            row.revoked_at = now
            audit.record(
                session, actor=actor, action="api_token.revoke", now=now, detail=f"token={row.id}"
            )
    return True


def authenticate_token(
    sessions: sessionmaker[Session], secret: str, now: dt.datetime, *, read: Session | None = None
) -> StaffUser | None:
    """The active user a bearer secret belongs to, or None.

    Reads through `read` (the caller's read session; on SQLite no write lock; default: a
    session of `sessions`); only the at-most-once-a-minute last-used stamp opens a write
    transaction, so most API calls write nothing."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    with ExitStack() as stack:
        session = read or stack.enter_context(sessions())
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(secret)))
        if row is None or row.revoked_at is not None:
            return None
        user = session.get(StaffUser, row.user_id)
    if user is None or not user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):
        with sessions.begin() as writer:
            writer.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return user


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc())
        )
    )
