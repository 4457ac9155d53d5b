"""Downloads: a patient's CSV and FHIR Bundle, and the clinician's cohort CSV. Each is
audited (`audit.viewed`, or `services/downloads.py` for the cohort) before it is built, and
read from a read session."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from coachbot.domain.states import Role
from coachbot.models import Patient
from coachbot.queries.exports import cohort_csv, patient_csv, patient_fhir_bundle
from coachbot.services import audit, downloads
from coachbot.web.common import (
    now,
    owned_patient,
    read_db,
    roles_required,
    runtime,
    staff,
    write_sessions,
)

bp = Blueprint("exports", __name__, url_prefix="/exports")


def _streamed(produce: Callable[[Session], Iterator[str]]) -> Iterator[str]:
    """Streams from a session of its own, closed when the download ends: the request's
    session is gone by then, and a transaction left open would hold locks."""
    factory = runtime().read_session_factory

    def generate() -> Iterator[str]:
        with factory() as session:
            yield from produce(session)

    return generate()


def _download(body: Iterable[str] | str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _audited_patient(patient_id: int, action: str) -> Patient:
    """The owned patient, read from the read session, with the download in its trail
    before the first byte goes out (a download cut short still happened)."""
    patient = owned_patient(patient_id, action, session=read_db())
    audit.viewed(
        write_sessions(), actor=staff().actor, action=action, now=now(), patient_id=patient.id
    )
    return patient


@bp.get("/patients/<int:patient_id>.csv")
@roles_required(Role.CLINICIAN)
def patient_export_csv(patient_id: int) -> ResponseReturnValue:
    patient_id = _audited_patient(patient_id, "export.patient_csv").id

    def rows(session: Session) -> Iterator[str]:
        yield from patient_csv(session, session.get_one(Patient, patient_id))

    return _download(_streamed(rows), "text/csv", f"patient-{patient_id}.csv")


@bp.get("/patients/<int:patient_id>.fhir.json")
@roles_required(Role.CLINICIAN)
def patient_export_fhir(patient_id: int) -> ResponseReturnValue:
    patient = _audited_patient(patient_id, "export.patient_fhir")
    bundle = patient_fhir_bundle(read_db(), patient, now())
    return _download(
        json.dumps(bundle, ensure_ascii=False),
        "application/fhir+json",
        f"patient-{patient.id}.json",
    )


@bp.get("/cohort.csv")
@roles_required(Role.CLINICIAN)
def cohort_export_csv() -> ResponseReturnValue:
    clinician_id, as_of = staff().user_id, now()
    downloads.record_cohort_export(
        write_sessions(), actor=staff().actor, clinician_id=clinician_id, now=as_of
    )
    return _download(
        _streamed(lambda session: cohort_csv(session, clinician_id=clinician_id, now=as_of)),
        "text/csv",
        "cohort.csv",
    )
