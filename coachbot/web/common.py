"""What every dashboard view shares: one database session per request, the signed-in staff
member, role checks, and the ownership rule for patient records (404 plus an audit row)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import abort, current_app, g
from flask.typing import ResponseReturnValue
from flask_login import UserMixin, current_user
from flask_login import login_required as _login_required
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from coachbot.domain.clock import utcnow
from coachbot.domain.states import Role
from coachbot.models import Patient, StaffUser
from coachbot.runtime import Runtime
from coachbot.services import audit
from coachbot.services.access import Viewer, open_patient_page

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


class Staff(UserMixin):  # type: ignore[misc]  # untyped base class
    """The signed-in person as Flask-Login sees them. The id Flask-Login keeps in the cookie is
    the server-side session token, so ending the session row ends the cookie."""

    def __init__(self, user: StaffUser, token: str) -> None:
        self.user_id = user.id
        self.email = user.email
        self.display_name = user.display_name
        self.role = user.role
        self.token = token

    def get_id(self) -> str:
        return self.token

    @property
    def actor(self) -> str:
        return f"staff:{self.user_id}"


def login_required(view: F) -> F:
    """Flask-Login's decorator, typed."""
    return cast(F, _login_required(view))


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["coachbot"]
    return rt


def db() -> Session:
    """The request's session for writing (and for reads that decide a write). On SQLite its
    transactions take the write lock from their first statement: commit promptly."""
    if "db" not in g:
        g.db = runtime().session_factory()
        # So `write_sessions()` can tell a transaction that wrote from one that only read.
        event.listen(g.db, "after_flush", _mark_flushed)
        event.listen(g.db, "after_transaction_end", _clear_flushed)
    session: Session = g.db
    return session


_FLUSHED = "coachbot_flushed"


def _mark_flushed(session: Session, _context: object) -> None:
    session.info[_FLUSHED] = True


def _clear_flushed(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_FLUSHED, None)


def read_db() -> Session:
    """The request's session for reading only: on SQLite a deferred transaction that takes
    no write lock, so a slow page never makes a webhook or the clock wait. Writes (audit
    rows) go through services that own their transactions; never write through this one."""
    if "read_db" not in g:
        g.read_db = runtime().read_session_factory()
    session: Session = g.read_db
    return session


def fresh_reads() -> None:
    """Ends the read session's snapshot, so the next read sees what committed since. Nothing
    is ever written through it, so ending it loses nothing (its objects reload on use)."""
    session: Session | None = g.get("read_db")
    if session is not None:
        session.rollback()


def close_db(_exc: BaseException | None = None) -> None:
    for name in ("read_db", "db"):
        session = g.pop(name, None)
        if session is not None:
            session.close()


def now() -> dt.datetime:
    return utcnow()


def staff() -> Staff:
    user: Staff = current_user._get_current_object()
    return user


def write_sessions() -> sessionmaker[Session]:
    """The write sessions a service opens its own transaction from.

    The request's write session (`db()`), if a view has read through it, holds a
    transaction; on SQLite that is the write lock (BEGIN IMMEDIATE from the first
    statement), and the service's transaction would wait on this very request. A
    transaction that has only read has nothing to keep, so it ends here first; its
    objects stay in the session and reload on their next use."""
    session: Session | None = g.get("db")
    if session is not None and session.in_transaction():
        if session.new or session.dirty or session.deleted or session.info.get(_FLUSHED):
            # Ending it would lose the change; committing it belongs to a service.
            raise RuntimeError("unsaved changes in the request session; save them in a service")
        session.rollback()
    return runtime().session_factory


def viewer() -> Viewer:
    return Viewer(user_id=staff().user_id, role=staff().role)


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Signed in, and one of `roles`; anyone else gets 404, not a hint that the page exists."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if staff().role not in roles:
                audit.deny(
                    write_sessions(),
                    actor=staff().actor,
                    action=f"page.{view.__name__}",
                    # The record the attempt was aimed at, so it shows in that record's trail.
                    patient_id=kwargs.get("patient_id"),
                    now=now(),
                    detail=f"role={staff().role}",
                )
                abort(404)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def owned_patient(
    patient_id: int, action: str, *, session: Session | None = None, on_call: bool = False
) -> Patient:
    """The patient if the signed-in staff member may open the record (see
    `access.open_patient_page`); otherwise an audited 404. Pages that only read pass
    `session=read_db()`: the record then lives in the read session. Without it the record
    is loaded into the write session `db()`, after the access decision is recorded."""
    patient = open_patient_page(
        session or read_db(),
        write_sessions(),
        viewer(),
        patient_id,
        action=action,
        now=now(),
        on_call=on_call,
    )
    if patient is None:
        abort(404)
    if session is None:
        patient = db().get(Patient, patient_id)
        assert patient is not None  # read a moment ago; patients are never deleted
    return patient


def audit_ok(action: str, patient_id: int | None, detail: str | None = None) -> None:
    """The signed-in staff member viewed `patient_id` (or a page about no one patient)."""
    audit.viewed(
        write_sessions(),
        actor=staff().actor,
        action=action,
        patient_id=patient_id,
        now=now(),
        detail=detail,
    )
