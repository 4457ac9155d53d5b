"""Downloads: a patient's CSV and FHIR Bundle, and the clinician's cohort CSV. Audited."""

from __future__ import annotations

import json
from collections.abc import Iterable

from flask import Blueprint, Response, stream_with_context
from flask.typing import ResponseReturnValue

from coachbot.domain.states import Role
from coachbot.services.exports import cohort_csv, patient_csv, patient_fhir_bundle
from coachbot.web.common import audit_ok, db, now, owned_patient, roles_required, staff

bp = Blueprint("exports", __name__, url_prefix="/exports")


def _download(body: Iterable[str] | str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/patients/<int:patient_id>.csv")
@roles_required(Role.CLINICIAN)
def patient_export_csv(patient_id: int) -> ResponseReturnValue:
    patient = owned_patient(patient_id, "export.patient_csv")
    audit_ok("export.patient_csv", patient.id)
    return _download(
        stream_with_context(patient_csv(db(), patient)), "text/csv", f"patient-{patient.id}.csv"
    )


@bp.get("/patients/<int:patient_id>.fhir.json")
@roles_required(Role.CLINICIAN)
def patient_export_fhir(patient_id: int) -> ResponseReturnValue:
    patient = owned_patient(patient_id, "export.patient_fhir")
    audit_ok("export.patient_fhir", patient.id)
    bundle = patient_fhir_bundle(db(), patient, now())
    return _download(
        json.dumps(bundle, ensure_ascii=False),
        "application/fhir+json",
        f"patient-{patient.id}.json",
    )


@bp.get("/cohort.csv")
@roles_required(Role.CLINICIAN)
def cohort_export_csv() -> ResponseReturnValue:
    audit_ok("export.cohort_csv", None, detail="own patients")
    return _download(
        stream_with_context(cohort_csv(db(), clinician_id=staff().user_id, now=now())),
        "text/csv",
        "cohort.csv",
    )
