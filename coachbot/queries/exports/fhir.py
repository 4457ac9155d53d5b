"""A patient's record as a FHIR R4 `collection` Bundle: the Patient, one Observation per
answered nudge (adherence, and the reported value when there is one), one Communication per
text either way, and one Observation per answered caregiver check, performed by the
caregiver as a RelatedPerson entry of the Bundle. A check is relayed as the caregiver
answered it (a count of items as usual, or their word); it is never graded.

Checked two ways in tests: with fhir.resources' R4B models (the 4.x line that package ships;
these resources have the same shape in R4 and R4B), and, independently, against HL7's
official R4 JSON schema (tests/contract/test_fhir_schema.py).

Two rules the schema and the Bundle's resolution rules impose:

- Every entry's fullUrl is a `urn:uuid:`, and every reference inside the Bundle is that same
  urn. A `collection` Bundle has no server base, so a relative `Patient/3` resolves to
  nothing; the uuid is derived (uuid5) from the resource type and id, so the same record gets
  the same fullUrl in every export.
- FHIR strings may not be empty. A text with no words (the marker row of a muted reply, an
  MMS with a picture and no caption) carries no `payload`; a muted reply, which was never
  sent, is a Communication with status `not-done` and a statusReason saying why.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import AdherenceRecord, InboundMessage, OutboundMessage, Patient
from coachbot.queries.adherence import FRACTION_UNIT
from coachbot.queries.caregivers import SEEN_TODAY, ExportedCheck, answered_checks

_LOINC_SLEEP = ("93832-4", "Sleep duration")
_TRACK_CODES = {
    "sleep": "sleep",
    "exercise": "exercise",
    "diet": "diet",
    "mindfulness": "mindfulness",
    "rehab": "rehab",
    "checkin": "symptom-checkin",
}
CODE_SYSTEM = "https://coachbot.example/fhir/CodeSystem/track"
_OUTCOME_SYSTEM = "https://coachbot.example/fhir/CodeSystem/adherence-outcome"
_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
# The namespace of the derived fullUrls: one fixed value, so that a record's urn never changes.
_URN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://coachbot.example/fhir")
# The backend of the marker row written when the reply-loop guard muted a reply.
_MUTED_BACKEND = "muted"
Resource = dict[str, Any]


def full_url(resource_type: str, resource_id: str) -> str:
    """The entry's fullUrl, the same for the same record in every export."""
    return f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, f'{resource_type}/{resource_id}')}"


def _entry(resource: Resource) -> dict[str, Any]:
    return {"fullUrl": full_url(resource["resourceType"], resource["id"]), "resource": resource}


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _text_payload(body: str) -> list[dict[str, str]]:
    """The words of a text as a payload, or none when there are no words (see module doc)."""
    return [{"contentString": body}] if body.strip() else []


def _patient(patient: Patient) -> Resource:
    return {
        "resourceType": "Patient",
        "id": str(patient.id),
        "active": patient.status in ("active", "pending-consent", "paused"),
        "name": [{"given": [patient.first_name]}],
        "telecom": [{"system": "sms", "value": patient.phone_e164, "use": "mobile"}],
        "communication": [{"language": {"coding": [{"code": patient.language}]}}],
    }


def _fraction_component(value: float) -> dict[str, Any]:
    # How much of a partial answer was done ("2 of 3"): part of the answer itself, not a
    # measurement, so never a reported value (a sleep one would read as hours).
    return {
        "code": {
            "coding": [{"system": CODE_SYSTEM, "code": "fraction-done"}],
            "text": "fraction done",
        },
        "valueQuantity": {
            "value": value,
            "unit": FRACTION_UNIT,
            "system": "http://unitsofmeasure.org",
            "code": "1",
        },
    }


def _is_fraction(record: AdherenceRecord) -> bool:
    return record.value is not None and record.unit == FRACTION_UNIT


def _adherence_observation(record: AdherenceRecord, subject: dict[str, str]) -> Resource:
    code = _TRACK_CODES.get(record.track, record.track)
    resource: Resource = {
        "resourceType": "Observation",
        "id": f"adherence-{record.id}",
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY_SYSTEM, "code": "activity"}]}],
        "code": {
            "coding": [{"system": CODE_SYSTEM, "code": code, "display": f"{code} adherence"}],
            "text": f"{record.track} adherence",
        },
        "subject": subject,
        "effectiveDateTime": _instant(record.recorded_at),
        "valueCodeableConcept": {
            "coding": [{"system": _OUTCOME_SYSTEM, "code": record.outcome}],
            "text": record.outcome,
        },
    }
    if record.is_proxy:
        resource["performer"] = [{"display": "caregiver"}]
    if _is_fraction(record) and record.value is not None:
        resource["component"] = [_fraction_component(record.value)]
    return resource


def _value_observation(record: AdherenceRecord, subject: dict[str, str]) -> Resource:
    code = _TRACK_CODES.get(record.track, record.track)
    coding = [{"system": CODE_SYSTEM, "code": f"{code}-value"}]
    if record.track == "sleep":
        coding.insert(
            0, {"system": "http://loinc.org", "code": _LOINC_SLEEP[0], "display": _LOINC_SLEEP[1]}
        )
    value: dict[str, Any] = {"value": record.value}
    if record.unit:
        value["unit"] = record.unit
    return {
        "resourceType": "Observation",
        "id": f"value-{record.id}",
        "status": "final",
        "code": {"coding": coding, "text": f"{record.track} reported value"},
        "subject": subject,
        "effectiveDateTime": _instant(record.recorded_at),
        "valueQuantity": value,
    }


def _outbound_communication(out: OutboundMessage, subject: dict[str, str]) -> Resource:
    resource: Resource = {
        "resourceType": "Communication",
        "id": f"out-{out.id}",
        "status": "completed" if out.delivery_status != "failed" else "stopped",
        "category": [{"text": out.kind}],
        "medium": [{"text": "SMS"}],
        "subject": subject,
        "recipient": [subject],
    }
    if out.backend == _MUTED_BACKEND:
        # Recorded when the reply was held back: nothing went out, so no `sent` either.
        resource["status"] = "not-done"
        resource["statusReason"] = {"text": "reply muted: too many automatic replies this hour"}
    else:
        resource["sent"] = _instant(out.created_at)
    if payload := _text_payload(out.body):
        resource["payload"] = payload
    return resource


def _inbound_communication(inbound: InboundMessage, subject: dict[str, str]) -> Resource:
    resource: Resource = {
        "resourceType": "Communication",
        "id": f"in-{inbound.id}",
        "status": "completed",
        "category": [{"text": "reply"}],
        "medium": [{"text": "SMS"}],
        "subject": subject,
        "received": _instant(inbound.received_at),
        "sender": {"display": "caregiver"} if inbound.is_proxy else subject,
    }
    if payload := _text_payload(inbound.body):
        resource["payload"] = payload
    return resource


def _observations(session: Session, patient_id: int, subject: dict[str, str]) -> list[Resource]:
    resources: list[Resource] = []
    for record in session.scalars(
        select(AdherenceRecord)
        .where(AdherenceRecord.patient_id == patient_id)
        .order_by(AdherenceRecord.recorded_at, AdherenceRecord.id)
    ):
        resources.append(_adherence_observation(record, subject))
        if record.value is not None and not _is_fraction(record):
            resources.append(_value_observation(record, subject))
    return resources


def _communications(session: Session, patient_id: int, subject: dict[str, str]) -> list[Resource]:
    sent = session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.patient_id == patient_id)
        .order_by(OutboundMessage.created_at, OutboundMessage.id)
    )
    received = session.scalars(
        select(InboundMessage)
        .where(InboundMessage.patient_id == patient_id)
        .order_by(InboundMessage.received_at, InboundMessage.id)
    )
    return [_outbound_communication(out, subject) for out in sent] + [
        _inbound_communication(inbound, subject) for inbound in received
    ]


_CAREGIVER_SYSTEM = "https://coachbot.example/fhir/CodeSystem/caregiver-check"
_CHECK_TEXT = {
    "observation": "Caregiver daily observation check",
    SEEN_TODAY: "Caregiver seen-today check",
}


def _related_person(exported: ExportedCheck, subject: dict[str, str]) -> Resource:
    """The caregiver as a RelatedPerson of this patient (one per caregiver and patient)."""
    check = exported.check
    return {
        "resourceType": "RelatedPerson",
        "id": f"caregiver-{check.caregiver_id}-of-{check.patient_id}",
        "patient": subject,
        "relationship": [{"text": "caregiver"}],
        "name": [{"given": [exported.caregiver_first_name]}],
        "communication": [{"language": {"coding": [{"code": exported.caregiver_language}]}}],
    }


def _coded(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": _CAREGIVER_SYSTEM, "code": code}], "text": text}


def _check_observation(
    exported: ExportedCheck, subject: dict[str, str], performer: str
) -> Resource:
    """An answered check: valueInteger for a count (with the items asked as a component),
    else the caregiver's word as a valueCodeableConcept; a word said with a count is a
    component too."""
    check = exported.check
    kind = "seen-today" if check.kind == SEEN_TODAY else "daily-observation"
    resource: Resource = {
        "resourceType": "Observation",
        "id": f"caregiver-check-{check.id}",
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY_SYSTEM, "code": "survey"}]}],
        "code": _coded(kind, _CHECK_TEXT.get(check.kind, _CHECK_TEXT["observation"])),
        "subject": subject,
        "effectiveDateTime": _instant(check.answered_at or check.due_at),
        "performer": [{"reference": performer}],
    }
    word = _coded(check.concern, check.concern.upper()) if check.concern else None
    components: list[dict[str, Any]] = []
    if check.kind != SEEN_TODAY and check.score is not None:
        resource["valueInteger"] = check.score
        components.append(
            {"code": _coded("items-asked", "items asked"), "valueInteger": check.items}
        )
        if word:
            components.append(
                {"code": _coded("word", "caregiver's word"), "valueCodeableConcept": word}
            )
    else:
        # A word alone ("WORRIED"), or the seen-today answer (stored as OK or WORRIED), in
        # the panel's words ("Seen today: worried").
        resource["valueCodeableConcept"] = {**(word or {}), "text": check.answer}
    if components:
        resource["component"] = components
    return resource


def _caregiver_checks(session: Session, patient_id: int, subject: dict[str, str]) -> list[Resource]:
    """The RelatedPersons who answered, each once, then their checks' Observations."""
    people: dict[str, Resource] = {}
    observations = []
    for exported in answered_checks(session, [patient_id]):
        person = _related_person(exported, subject)
        people.setdefault(person["id"], person)
        performer = full_url("RelatedPerson", person["id"])
        observations.append(_check_observation(exported, subject, performer))
    return [*people.values(), *observations]


def patient_fhir_bundle(session: Session, patient: Patient, now: dt.datetime) -> dict[str, Any]:
    """A `collection` Bundle of the patient's record (see the module doc for its rules)."""
    patient_resource = _patient(patient)
    subject = {"reference": full_url("Patient", patient_resource["id"])}
    resources = [
        patient_resource,
        *_observations(session, patient.id, subject),
        *_communications(session, patient.id, subject),
        *_caregiver_checks(session, patient.id, subject),
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(now),
        "entry": [_entry(resource) for resource in resources],
    }
