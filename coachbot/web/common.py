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
from sqlalchemy.orm import Session

from coachbot.domain.clock import utcnow
from coachbot.domain.states import Role
from coachbot.models import Patient, StaffUser
from coachbot.queries.pages import was_paged
from coachbot.runtime import Runtime
from coachbot.services import audit

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
    session: Session = g.db
    return session


def read_db() -> Session:
    """The request's session for reading only: on SQLite a deferred transaction that takes
    no write lock, so a slow page never makes a webhook or the clock wait. Writes (audit
    rows) go through `db()` and commit at once; never write through this one."""
    if "read_db" not in g:
        g.read_db = runtime().read_session_factory()
    session: Session = g.read_db
    return session


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


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Signed in, and one of `roles`; anyone else gets 404, not a hint that the page exists."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if staff().role not in roles:
                audit.record(
                    db(),
                    actor=staff().actor,
                    action=f"page.{view.__name__}",
                    # The record the attempt was aimed at, so it shows in that record's trail.
                    patient_id=kwargs.get("patient_id"),
                    outcome="denied",
                    now=now(),
                    detail=f"role={staff().role}",
                )
                db().commit()
                abort(404)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def owned_patient(
    patient_id: int, action: str, *, session: Session | None = None, on_call: bool = False
) -> Patient:
    """The patient if the signed-in clinician owns the record; otherwise an audited 404.
    Pages that only read pass `session=read_db()`: the record then lives in the read
    session, and only the audit row is written.

    Only the owning clinician sees a record: admins manage accounts and operators run
    delivery, neither needs patients' replies. The one exception, for views that pass
    `on_call=True`: a clinician paged for an alert of this patient that is not resolved
    covers the whole clinic, and opens the record; every such access is audited.
    """
    me = staff()
    patient = (session or db()).get(Patient, patient_id)
    if (
        on_call
        and patient is not None
        and me.role == Role.CLINICIAN
        and patient.clinician_id != me.user_id
        and was_paged(session or db(), me.user_id, patient_id=patient_id)
    ):
        audit_ok(action, patient_id, "on-call: paged for an unresolved alert")
        return patient
    if patient is None or me.role != Role.CLINICIAN or patient.clinician_id != me.user_id:
        audit.record(
            db(),
            actor=me.actor,
            action=action,
            patient_id=patient_id,
            outcome="denied",
            now=now(),
            detail="not found" if patient is None else "not the owning clinician",
        )
        db().commit()
        abort(404)
    return patient


def audit_ok(action: str, patient_id: int | None, detail: str | None = None) -> None:
    audit.record(
        db(), actor=staff().actor, action=action, patient_id=patient_id, now=now(), detail=detail
    )
    db().commit()
