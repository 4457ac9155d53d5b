"""Signing in: argon2id verification with rehash, a login throttle every worker shares, and
server-side session records so logout and the idle timeout really end a session.

The throttle lives in the database, not Redis: every worker of every process already shares
the database, so the limit holds across gunicorn workers and hosts with no extra service to
run, configure or lose (a Redis outage would otherwise mean choosing between no throttle and
no sign-in). Failed attempts are rare rows; a successful sign-in writes nothing there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from contextlib import ExitStack
from dataclasses import dataclass

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.models import LoginAttempt, StaffSession, StaffUser
from coachbot.queries.dashboard import aware
from coachbot.services import audit
from coachbot.services.staff import password_hasher

IDLE_TIMEOUT = dt.timedelta(minutes=30)
THROTTLE_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 20
# last_seen_at is written only when it is at least this old, so a page view (and the
# requests it triggers) writes nothing and, on SQLite, takes no write lock. The stored
# value then trails the last request by under a minute: a session ends between 29 and 30
# minutes after its last request, never later than the 30 minutes promised.
TOUCH_EVERY = dt.timedelta(seconds=60)
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = password_hasher.hash("not-a-real-password-only-for-timing")


class LoginThrottled(Exception):
    def __init__(self, retry_after: dt.timedelta) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-ins; retry in {int(retry_after.total_seconds())}s")


@dataclass(frozen=True)
class SignedIn:
    user: StaffUser
    token: str  # goes into the cookie; only its hash is stored


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_throttle(session: Session, email: str, ip: str, now: dt.datetime) -> None:
    since = now - THROTTLE_WINDOW
    by_email = session.execute(
        select(func.count(LoginAttempt.id), func.min(LoginAttempt.at)).where(
            LoginAttempt.email == email, LoginAttempt.at > since
        )
    ).one()
    by_ip = session.execute(
        select(func.count(LoginAttempt.id), func.min(LoginAttempt.at)).where(
            LoginAttempt.ip == ip, LoginAttempt.at > since
        )
    ).one()
    for (count, oldest), limit in (
        (by_email, MAX_FAILURES_PER_EMAIL),
        (by_ip, MAX_FAILURES_PER_IP),
    ):
        if count >= limit:
            oldest_at = aware(oldest) or now
            raise LoginThrottled(max(oldest_at + THROTTLE_WINDOW - now, dt.timedelta(seconds=1)))


def sign_in(
    sessions: sessionmaker[Session], *, email: str, password: str, ip: str, now: dt.datetime
) -> SignedIn | None:
    """Returns the new session on success, None on bad credentials; raises LoginThrottled."""
    email = email.strip().lower()[:254]
    ip = ip[:64]
    with sessions.begin() as session:
        _check_throttle(session, email, ip, now)
        user = session.scalar(select(StaffUser).where(StaffUser.email == email))
        ok = False
        try:
            ok = password_hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if user is None or not ok or not user.is_active:
            session.add(LoginAttempt(email=email, ip=ip, at=now))
            audit.record(
                session,
                actor=f"staff:{user.id}" if user else "anonymous",
                action="auth.login",
                outcome="denied",
                now=now,
                detail="inactive account" if user and ok else "bad credentials",
            )
            return None
        if password_hasher.check_needs_rehash(user.password_hash):
            # The policy rose since this hash was made; the plain password is only here now.
            user.password_hash = password_hasher.hash(password)
        session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))
        token = secrets.token_urlsafe(32)
        session.add(
            StaffSession(
                token_hash=hash_token(token), user_id=user.id, created_at=now, last_seen_at=now
            )
        )
        audit.record(session, actor=f"staff:{user.id}", action="auth.login", now=now)
    return SignedIn(user, token)


def resume_session(
    sessions: sessionmaker[Session], token: str, now: dt.datetime, *, read: Session | None = None
) -> StaffUser | None:
    """The user behind a cookie token, or None when the session ended, idled out or the
    account was deactivated (the session is then ended for good).

    It runs on every signed-in request, so it reads through `read` (the caller's read
    session, which on SQLite takes no write lock; default: a session of `sessions`) and
    opens a write transaction only for the rare writes (ending the session, the
    once-a-minute last-seen stamp)."""
    with ExitStack() as stack:
        session = read or stack.enter_context(sessions())
        row = session.scalar(
            select(StaffSession).where(StaffSession.token_hash == hash_token(token))
        )
        if row is None or row.ended_at is not None:
            return None
        user = session.get(StaffUser, row.user_id)
    reason = None
    if user is None or not user.is_active:
        reason = "deactivated"
    elif now - row.last_seen_at > IDLE_TIMEOUT:
        reason = "idle"
    if reason is not None:
        with sessions.begin() as writer:
            writer.execute(
                update(StaffSession)
                .where(StaffSession.id == row.id, StaffSession.ended_at.is_(None))
                .values(ended_at=now, end_reason=reason)
            )
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        with sessions.begin() as writer:
            # Conditional, so two concurrent requests never move the stamp backwards.
            writer.execute(
                update(StaffSession)
                .where(StaffSession.id == row.id, StaffSession.last_seen_at < now)
                .values(last_seen_at=now)
            )
    return user


def end_session(
    sessions: sessionmaker[Session], token: str, now: dt.datetime, reason: str = "logout"
) -> None:
    with sessions.begin() as session:
        row = session.scalar(
            select(StaffSession).where(StaffSession.token_hash == hash_token(token))
        )
        if row is not None and row.ended_at is None:
            row.ended_at = now
            row.end_reason = reason
            audit.record(session, actor=f"staff:{row.user_id}", action="auth.logout", now=now)
