"""The "To read" inbox: texts the bot did not act on, listed for a person to read and mark read.

Clinicians read their own patients' texts; admins read the texts from numbers we do not know
(no clinician owns them). Showing a page records one audit row per patient whose texts were on
it; marking a text read is audited by the service.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from coachbot.domain.need import time_ago
from coachbot.domain.phones import mask_phone
from coachbot.domain.states import Role
from coachbot.models import InboundMessage
from coachbot.queries.inbox import to_read_count, to_read_page
from coachbot.services import audit
from coachbot.services.inbox import AlreadyRead, mark_read
from coachbot.services.viewing import record_page_view
from coachbot.web.common import (
    now,
    owned_patient,
    read_db,
    roles_required,
    staff,
    write_sessions,
)
from coachbot.web.forms import ActionForm

bp = Blueprint("inbox", __name__, url_prefix="/to-read")
_READERS = (Role.CLINICIAN, Role.ADMIN)


def age_text(received_at: dt.datetime, at: dt.datetime) -> str:
    """How long a text has waited, as a person says it (`coachbot.domain.need.time_ago`)."""
    return time_ago(at - received_at)


@bp.app_context_processor
def _to_read_in_navigation() -> dict[str, object]:
    """The waiting count next to the navigation link, on every page a reader sees."""
    if not current_user.is_authenticated or staff().role not in _READERS:
        return {}
    return {"to_read_count": to_read_count(read_db(), viewer_id=staff().user_id, role=staff().role)}


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1


@bp.get("")
@roles_required(*_READERS)
def to_read() -> ResponseReturnValue:
    me, at = staff(), now()
    page = to_read_page(read_db(), viewer_id=me.user_id, role=me.role, page=_page_number())
    # Message text is patient data: each patient on the page gets a row in their trail.
    record_page_view(
        write_sessions(),
        actor=me.actor,
        action="inbox.view",
        now=at,
        patient_ids=[i.patient_id for i in page.items],
    )
    return render_template(
        "to_read.html",
        page=page,
        form=ActionForm(),
        now=at,
        age_text=age_text,
        mask_phone=mask_phone,
    )


def _readable(message_id: int) -> InboundMessage:
    """The text if the signed-in person may read it; otherwise an audited 404. Looked up in
    the read session: on SQLite the write session would hold the write lock the refusal's
    own transaction needs."""
    message = read_db().get(InboundMessage, message_id)
    if message is not None and message.patient_id is not None:
        owned_patient(message.patient_id, "inbox.mark_read", session=read_db())
    elif message is None or staff().role != Role.ADMIN:
        _deny(message_id)
        abort(404)
    return message


def _deny(message_id: int) -> None:
    # A text from an unknown number, or one that does not exist: only admins read those.
    audit.deny(
        write_sessions(),
        actor=staff().actor,
        action="inbox.mark_read",
        now=now(),
        detail=f"inbound={message_id}",
    )


@bp.post("/<int:message_id>/read")
@roles_required(*_READERS)
def read(message_id: int) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        abort(400)
    message = _readable(message_id)
    try:
        mark_read(write_sessions(), message.id, actor_id=staff().user_id, now=now())
    except AlreadyRead:
        flash("Someone already marked that text read.", "info")
    else:
        flash("Marked read.", "info")
    return redirect(url_for("inbox.to_read", page=request.form.get("page", 1, type=int)))
