"""Handwriting samples on the patient page (issue #16 item 4): the strip's data for the
partial `_media_strip.html`, and the route serving one picture.

The picture goes only to the patient's own clinician (anyone else: the audited 404 every
record page gives), each view audited, never cached (`no-store`), with the stored picture's
own content type (sniffed from its bytes when it was stored, not taken from the sender)."""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask.typing import ResponseReturnValue

from coachbot.domain.states import Role
from coachbot.models import Patient
from coachbot.queries.media_samples import Strip, sample_strip
from coachbot.services.media_samples import sample_picture
from coachbot.web.common import (
    audit_ok,
    now,
    owned_patient,
    read_db,
    roles_required,
    runtime,
    staff,
)

bp = Blueprint("media_samples", __name__, url_prefix="/patients")


@bp.app_context_processor
def _strip_helpers() -> dict[str, object]:
    return {"media_strip": media_strip, "may_see_samples": may_see_samples}


def media_strip(patient: Patient) -> Strip:
    """The strip for the patient page (read through the page's read session)."""
    return sample_strip(read_db(), patient, now())


def may_see_samples(patient: Patient) -> bool:
    """Only the owning clinician is served the pictures (a clinician covering on call sees
    the strip's days and senders, not the handwriting)."""
    return staff().role == Role.CLINICIAN and patient.clinician_id == staff().user_id


@bp.get("/<int:patient_id>/samples/<int:sample_id>")
@roles_required(Role.CLINICIAN)
def picture(patient_id: int, sample_id: int) -> ResponseReturnValue:
    patient = owned_patient(patient_id, "media_sample.view", session=read_db())
    sample = sample_picture(read_db(), runtime().settings, patient.id, sample_id)
    if sample is None:
        abort(404)
    audit_ok("media_sample.view", patient.id, detail=f"sample {sample_id}")
    response = Response(sample.content, mimetype=sample.content_type)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = "inline"
    return response
