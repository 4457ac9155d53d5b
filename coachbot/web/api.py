"""JSON API /api/v1 with per-user bearer tokens, plus the page where people manage them.

The API is CSRF-exempt because it never reads the session cookie: a browser cannot attach
an Authorization header to a cross-site request on its own.

Every endpoint only reads, so it reads through the read session (on SQLite no write lock
while a page of patients is aggregated); the audit rows and the token's last-used stamp
are the only writes, each in a service's own short transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from coachbot.domain.states import Role
from coachbot.models import Patient, StaffUser
from coachbot.queries.adherence import adherence_by_track
from coachbot.queries.caregivers import answered_checks
from coachbot.queries.dashboard import ListFilter, alerts_queue, patients_page
from coachbot.services import audit
from coachbot.services.access import Viewer, open_patient_api
from coachbot.services.api_tokens import authenticate_token, create_token, revoke_token, tokens_of
from coachbot.services.errors import ValidationFailed
from coachbot.web.common import login_required, now, read_db, staff, write_sessions
from coachbot.web.forms import ActionForm, TokenForm

bp = Blueprint("api", __name__, url_prefix="/api/v1")
tokens_bp = Blueprint("tokens", __name__, url_prefix="/account/tokens")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def token_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        header = request.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        user = (
            authenticate_token(write_sessions(), secret.strip(), now(), read=read_db())
            if scheme.lower() == "bearer"
            else None
        )
        if user is None:
            response = jsonify(error="a valid API token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="coachbot"'
            return response, 401
        if user.role != Role.CLINICIAN:
            audit.deny(
                write_sessions(),
                actor=f"staff:{user.id}",
                action=f"api.{view.__name__}",
                patient_id=kwargs.get("patient_id"),
                now=now(),
                detail=f"api: role={user.role}",
            )
            return jsonify(error="not found"), 404
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper


def _user() -> StaffUser:
    user: StaffUser = g.api_user
    return user


def _owned(patient_id: int, action: str) -> Patient | None:
    user = _user()
    return open_patient_api(
        read_db(),
        write_sessions(),
        Viewer(user.id, user.role),
        patient_id,
        action=action,
        now=now(),
    )


def _not_found() -> ResponseReturnValue:
    return jsonify(error="not found"), 404


@bp.get("/patients")
@token_required
def patients() -> ResponseReturnValue:
    try:
        page_number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page_number = 1
    page = patients_page(
        read_db(),
        clinician_id=_user().id,
        now=now(),
        f=ListFilter(q=request.args.get("q", "")[:80], page=page_number),
    )
    return jsonify(
        page=page.page,
        pages=page.pages,
        total=page.total,
        patients=[
            {
                "id": r.id,
                "first_name": r.first_name,
                "status": r.status,
                "last_reply_at": _iso(r.last_reply_at),
                "open_alerts": r.open_alerts,
                "tracks": [
                    {
                        "track": t.track,
                        "sent_7d": t.sent_7,
                        "done_7d": t.done_7,
                        "sent_30d": t.sent_30,
                        "done_30d": t.done_30,
                        "partial_7d": t.partial_7,
                        "partial_30d": t.partial_30,
                        "streak_days": t.streak,
                    }
                    for t in r.tracks
                ],
            }
            for r in page.rows
        ],
    )


@bp.get("/patients/<int:patient_id>")
@token_required
def patient(patient_id: int) -> ResponseReturnValue:
    p = _owned(patient_id, "api.patient")
    if p is None:
        return _not_found()
    return jsonify(
        id=p.id,
        first_name=p.first_name,
        status=p.status,
        timezone=p.timezone,
        language=p.language,
        checkin_enabled=p.checkin_enabled,
        enrolled_at=_iso(p.enrolled_at),
        opted_in_at=_iso(p.opted_in_at),
        tracks=[{"track": s.track, "local_times": s.local_times.split(",")} for s in p.schedules],
    )


@bp.get("/patients/<int:patient_id>/adherence")
@token_required
def adherence(patient_id: int) -> ResponseReturnValue:
    p = _owned(patient_id, "api.adherence")
    if p is None:
        return _not_found()
    try:
        days = min(365, max(1, int(request.args.get("days", "30"))))
    except ValueError:
        days = 30
    rows = adherence_by_track(read_db(), now=now(), days=days, patient_ids=[p.id])
    return jsonify(patient_id=p.id, days=days, tracks=[r.as_json() for r in rows])


@bp.get("/patients/<int:patient_id>/caregiver-checks")
@token_required
def caregiver_checks(patient_id: int) -> ResponseReturnValue:
    """The patient's answered caregiver checks, oldest answer first (the same rows as the
    patient CSV and the FHIR export)."""
    p = _owned(patient_id, "api.caregiver_checks")
    if p is None:
        return _not_found()
    checks = answered_checks(read_db(), [p.id])
    return jsonify(patient_id=p.id, checks=[c.as_json() for c in checks])


@bp.get("/alerts")
@token_required
def alerts() -> ResponseReturnValue:
    view = request.args.get("status", "active")
    items = alerts_queue(
        read_db(),
        clinician_id=_user().id,
        status=view if view in ("active", "resolved") else "active",
    )
    return jsonify(
        alerts=[
            {
                "id": a.id,
                "patient_id": a.patient_id,
                "kind": a.kind,
                "severity": a.severity,
                "status": a.status,
                "detail": a.detail,
                "created_at": _iso(a.created_at),
                "acknowledged_at": _iso(a.acknowledged_at),
                "resolved_at": _iso(a.resolved_at),
            }
            for a, _name in items
        ]
    )


# --- token management pages ------------------------------------------------------------


@tokens_bp.route("", methods=["GET", "POST"])
@login_required
def manage() -> ResponseReturnValue:
    form = TokenForm()
    issued = None
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            issued = create_token(
                write_sessions(),
                staff().user_id,
                name=form.name.data or "",
                now=now(),
                actor=staff().actor,
            )
        except ValidationFailed as exc:
            errors = exc.errors
    return render_template(
        "tokens.html",
        form=form,
        issued=issued,
        errors=errors,
        tokens=tokens_of(read_db(), staff().user_id),
        action_form=ActionForm(),
    )


@tokens_bp.post("/<int:token_id>/revoke")
@login_required
def revoke(token_id: int) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        return ("bad request", 400)
    if not revoke_token(
        write_sessions(), token_id, now=now(), actor=staff().actor, user_id=staff().user_id
    ):
        return ("not found", 404)
    flash("Token revoked.", "info")
    return redirect(url_for("tokens.manage"))
