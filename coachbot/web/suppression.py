"""The suppression list for admins: every number nothing may be sent to, and a CSV export.
Both audited. Admins see numbers, not patients: the list names no patient."""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask.typing import ResponseReturnValue

from coachbot.domain.states import Role
from coachbot.models import SuppressedNumber
from coachbot.services.consent import suppression_list
from coachbot.services.exports import csv_text
from coachbot.web.common import audit_ok, roles_required, runtime

bp = Blueprint("suppression", __name__, url_prefix="/admin")


def _rows() -> list[SuppressedNumber]:
    # A read session of its own, closed before the page renders: the list holds no lazy parts.
    with runtime().read_session_factory() as session:
        return suppression_list(session)


@bp.get("/suppressions")
@roles_required(Role.ADMIN)
def listing() -> ResponseReturnValue:
    audit_ok("suppression.view", None)
    rows = _rows()
    return render_template("suppressions.html", rows=rows)


@bp.get("/suppressions.csv")
@roles_required(Role.ADMIN)
def export_csv() -> ResponseReturnValue:
    audit_ok("export.suppression_csv", None)
    rows = _rows()
    body = "".join(
        csv_text(
            [("number", "source", "suppressed_at")]
            + [(r.number_e164, r.source, r.suppressed_at.isoformat()) for r in rows]
        )
    )
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="suppression-list.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
