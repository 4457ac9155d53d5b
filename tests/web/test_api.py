"""The JSON API: bearer tokens made in the UI or the CLI, the same ownership and audit."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.cli.api_tokens import api_token
from coachbot.models import ApiToken, AuditEntry
from coachbot.runtime import Runtime
from coachbot.settings import Settings
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import (
    NOW,
    give_history,
    make_staff,
    post_form,
    recorded_statements,
    sign_in,
    writes,
)


def _token_via_ui(client: Any, email: str) -> str:
    sign_in(client, email)
    page = post_form(client, "/account/tokens", {"name": "research"}).get_data(as_text=True)
    match = re.search(r'<code class="token">([^<]+)</code>', page)
    assert match
    return match.group(1)


def _anas_patient_with_history(session: Session) -> int:
    owner = make_staff(session, "ana@clinic.test")
    patient = make_patient(session, first_name="Maya")
    patient.clinician_id = owner
    session.commit()
    give_history(session, patient)
    return patient.id


def test_a_token_made_in_the_ui_reads_own_patients_and_only_its_hash_is_stored(
    app: Any, session: Session
) -> None:
    pid = _anas_patient_with_history(session)
    secret = _token_via_ui(app.test_client(), "ana@clinic.test")
    api = app.test_client()
    auth = {"Authorization": f"Bearer {secret}"}

    listed = api.get("/api/v1/patients", headers=auth).get_json()
    assert [p["first_name"] for p in listed["patients"]] == ["Maya"]
    assert api.get(f"/api/v1/patients/{pid}", headers=auth).get_json()["first_name"] == "Maya"
    tracks = api.get(f"/api/v1/patients/{pid}/adherence?days=30", headers=auth).get_json()
    assert tracks["tracks"][0]["track"] == "sleep"
    assert api.get("/api/v1/alerts", headers=auth).get_json()["alerts"][0]["kind"] == "red_flag"

    stored = session.scalars(select(ApiToken)).one()
    assert stored.token_hash != secret
    assert secret not in stored.prefix + stored.token_hash
    views = session.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == pid)).all()
    assert {"api.patient", "api.adherence"} <= set(views)


def test_another_clinicians_patient_is_404_and_audited_and_no_token_is_401(
    app: Any, session: Session
) -> None:
    owner = make_staff(session, "ana@clinic.test")
    other = make_staff(session, "bo@clinic.test")
    patient = make_patient(session)
    patient.clinician_id = owner
    session.commit()
    pid = patient.id
    secret = _token_via_ui(app.test_client(), "bo@clinic.test")
    api = app.test_client()
    assert api.get("/api/v1/patients").status_code == 401
    assert (
        api.get("/api/v1/patients", headers={"Authorization": "Bearer cbt_nope"}).status_code == 401
    )
    for path in (f"/api/v1/patients/{pid}", f"/api/v1/patients/{pid}/adherence"):
        assert api.get(path, headers={"Authorization": f"Bearer {secret}"}).status_code == 404
    denied = session.scalars(
        select(AuditEntry).where(AuditEntry.outcome == "denied", AuditEntry.patient_id == pid)
    ).all()
    assert [d.actor for d in denied] == [f"staff:{other}"] * 2


def test_api_reads_take_no_write_lock_and_write_only_audit_rows_and_the_use_stamp(
    app: Any, session: Session, runtime: Runtime
) -> None:
    pid = _anas_patient_with_history(session)
    with freeze_time(NOW) as frozen:
        secret = _token_via_ui(app.test_client(), "ana@clinic.test")
        api = app.test_client()
        auth = {"Authorization": f"Bearer {secret}"}

        def changes_made_by(path: str) -> list[str]:
            with recorded_statements(runtime.engine) as seen:
                assert api.get(path, headers=auth).status_code == 200
            assert any(s.startswith("SELECT") for s in seen)
            if any(s.startswith("BEGIN IMMEDIATE") for s in seen):
                assert any(s.startswith(("INSERT", "UPDATE")) for s in seen), "a lock for nothing"
            return [s.split(" SET ")[0].split(" (")[0] for s in writes(seen) if s[:5] != "BEGIN"]

        # The first use stamps the token; within the next minute a call writes nothing but
        # the audit row of each view of a record, and takes the write lock only for that.
        assert changes_made_by("/api/v1/patients") == ["UPDATE api_tokens"]
        frozen.tick(dt.timedelta(seconds=30))
        assert changes_made_by("/api/v1/patients") == []
        assert changes_made_by("/api/v1/alerts") == []
        assert changes_made_by(f"/api/v1/patients/{pid}") == ["INSERT INTO audit_log"]
        assert changes_made_by(f"/api/v1/patients/{pid}/adherence") == ["INSERT INTO audit_log"]
    assert session.scalars(select(ApiToken.last_used_at)).one() == NOW


def test_a_revoked_token_is_refused(app: Any, session: Session) -> None:
    make_staff(session, "ana@clinic.test")
    client = app.test_client()
    secret = _token_via_ui(client, "ana@clinic.test")
    token_id = session.scalars(select(ApiToken.id)).one()
    session.rollback()
    auth = {"Authorization": f"Bearer {secret}"}
    assert app.test_client().get("/api/v1/patients", headers=auth).status_code == 200
    assert post_form(client, f"/account/tokens/{token_id}/revoke").status_code == 302
    assert app.test_client().get("/api/v1/patients", headers=auth).status_code == 401


def test_the_cli_creates_lists_and_revokes_tokens(
    app: Any, session: Session, settings: Settings
) -> None:
    make_staff(session, "ana@clinic.test")
    env = {"DATABASE_URL": settings.database_url}
    runner = CliRunner()
    made = runner.invoke(
        api_token, ["create", "--email", "ana@clinic.test", "--name", "etl"], env=env
    )
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    assert secret.startswith("cbt_")
    auth = {"Authorization": f"Bearer {secret}"}
    assert app.test_client().get("/api/v1/patients", headers=auth).status_code == 200
    listed = runner.invoke(api_token, ["list", "--email", "ana@clinic.test"], env=env)
    token_id = int(listed.output.split("\t")[0])
    assert "active" in listed.output
    revoked = runner.invoke(api_token, ["revoke", "--id", str(token_id)], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert app.test_client().get("/api/v1/patients", headers=auth).status_code == 401
    missing = runner.invoke(
        api_token, ["create", "--email", "nobody@x.test", "--name", "x"], env=env
    )
    assert missing.exit_code == 2
