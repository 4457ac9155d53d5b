"""Sign-in, sessions, throttling, CSRF and security headers, through the real app."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from argon2 import PasswordHasher
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.app import create_app
from coachbot.models import AuditEntry, LoginAttempt, StaffSession, StaffUser
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.auth import MAX_FAILURES_PER_EMAIL, TOUCH_EVERY, hash_token
from coachbot.settings import Settings
from tests.web.test_dashboard_support import (
    NOW,
    PASSWORD,
    csrf_token,
    make_staff,
    post_form,
    recorded_statements,
    sign_in,
    writes,
)


def test_signing_in_opens_the_patients_list_with_a_hardened_cookie(
    client: Any, session: Session
) -> None:
    make_staff(session, "ana@clinic.test")
    answer = sign_in(client, "ana@clinic.test")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert client.get("/patients").status_code == 200
    rows = session.scalars(select(StaffSession)).all()
    assert len(rows) == 1
    assert rows[0].ended_at is None


def test_a_wrong_password_is_refused_and_audited(client: Any, session: Session) -> None:
    user_id = make_staff(session, "ana@clinic.test")
    answer = sign_in(client, "ana@clinic.test", "not-the-password")
    assert answer.status_code == 401
    assert client.get("/patients").status_code == 302
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login")).one()
    assert (entry.actor, entry.outcome) == (f"staff:{user_id}", "denied")


def test_every_sign_in_gets_a_new_session_token_and_the_old_cookie_is_not_reused(
    client: Any, session: Session
) -> None:
    make_staff(session, "ana@clinic.test")
    sign_in(client, "ana@clinic.test")
    first = client.get_cookie("coachbot_session").value
    post_form(client, "/logout")
    sign_in(client, "ana@clinic.test")
    second = client.get_cookie("coachbot_session").value
    assert first != second
    hashes = set(session.scalars(select(StaffSession.token_hash)))
    assert len(hashes) == 2


def test_a_cookie_replayed_after_logout_is_refused(app: Any, session: Session) -> None:
    make_staff(session, "ana@clinic.test")
    client = app.test_client()
    sign_in(client, "ana@clinic.test")
    stolen = client.get_cookie("coachbot_session").value
    assert post_form(client, "/logout").status_code == 302

    attacker = app.test_client()
    attacker.set_cookie("coachbot_session", stolen)
    answer = attacker.get("/patients")
    assert answer.status_code == 302
    assert "/login" in answer.headers["Location"]
    ended = session.scalars(select(StaffSession)).one()
    assert ended.end_reason == "logout"


def test_a_session_idle_for_thirty_minutes_is_over(client: Any, session: Session) -> None:
    make_staff(session, "ana@clinic.test")
    with freeze_time(NOW) as frozen:
        sign_in(client, "ana@clinic.test")
        frozen.tick(dt.timedelta(minutes=29))
        assert client.get("/patients").status_code == 200
        # Activity keeps it alive: 29 more minutes after the last request is still fine.
        frozen.tick(dt.timedelta(minutes=29))
        assert client.get("/patients").status_code == 200
        frozen.tick(dt.timedelta(minutes=31))
        assert client.get("/patients").status_code == 302
    session.expire_all()
    assert session.scalars(select(StaffSession.end_reason)).one() == "idle"


def test_a_request_soon_after_the_last_writes_nothing_and_takes_no_write_lock(
    client: Any, session: Session, runtime: Runtime
) -> None:
    make_staff(session, "ana@clinic.test")
    with freeze_time(NOW) as frozen:
        sign_in(client, "ana@clinic.test")
        frozen.tick(TOUCH_EVERY - dt.timedelta(seconds=1))
        with recorded_statements(runtime.engine) as soon:
            assert client.get("/patients").status_code == 200
        frozen.tick(dt.timedelta(seconds=2))
        with recorded_statements(runtime.engine) as later:
            assert client.get("/patients").status_code == 200
    # The session was checked (read), but nothing was written or locked.
    assert any("FROM staff_sessions" in s for s in soon)
    assert writes(soon) == []
    # Once the stamp is a minute old, it is moved: one UPDATE, and only that.
    touched = [s for s in writes(later) if not s.startswith("BEGIN")]
    assert len(touched) == 1
    assert touched[0].startswith("UPDATE staff_sessions SET last_seen_at")
    assert session.scalars(select(StaffSession.last_seen_at)).one() == NOW + TOUCH_EVERY + (
        dt.timedelta(seconds=1)
    )


def test_throttling_holds_across_two_workers_sharing_the_database(
    settings: Settings, session: Session
) -> None:
    make_staff(session, "ana@clinic.test")
    # Two app instances with their own engines: what two gunicorn workers are.
    workers: list[Runtime] = [build_runtime(settings), build_runtime(settings)]
    clients = [create_app(runtime=rt).test_client() for rt in workers]
    try:
        with freeze_time(NOW):
            for attempt in range(MAX_FAILURES_PER_EMAIL):
                answer = sign_in(clients[attempt % 2], "ana@clinic.test", "wrong-password")
                assert answer.status_code == 401
            # Even the right password is refused on either worker until the window passes.
            for client in clients:
                assert sign_in(client, "ana@clinic.test").status_code == 429
        with freeze_time(NOW + dt.timedelta(minutes=16)):
            assert sign_in(clients[1], "ana@clinic.test").status_code == 302
        assert session.scalars(select(LoginAttempt)).all() == []
    finally:
        for rt in workers:
            rt.close()


def test_posts_without_a_csrf_token_are_refused(client: Any, session: Session) -> None:
    make_staff(session, "ana@clinic.test")
    assert (
        client.post("/login", data={"email": "ana@clinic.test", "password": PASSWORD}).status_code
        == 400
    )
    sign_in(client, "ana@clinic.test")
    for path in ("/logout", "/patients/new", "/account/tokens", "/patients/1/pause"):
        assert client.post(path, data={}).status_code == 400, path
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    # Still signed in: the refused logout ended nothing.
    assert client.get("/patients").status_code == 200


def test_a_hash_made_under_a_weaker_policy_is_upgraded_at_sign_in(
    client: Any, session: Session
) -> None:
    user_id = make_staff(session, "ana@clinic.test")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    session.get_one(StaffUser, user_id).password_hash = weak
    session.commit()
    assert sign_in(client, "ana@clinic.test").status_code == 302
    session.expire_all()
    upgraded = session.get_one(StaffUser, user_id).password_hash
    assert upgraded != weak
    assert upgraded.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(upgraded)


def test_a_deactivated_account_loses_its_open_session(app: Any, session: Session) -> None:
    make_staff(session, "boss@clinic.test", role="admin")
    target = make_staff(session, "ana@clinic.test")
    ana = app.test_client()
    sign_in(ana, "ana@clinic.test")
    boss = app.test_client()
    sign_in(boss, "boss@clinic.test")
    assert post_form(boss, f"/staff/{target}/active").status_code == 302
    assert ana.get("/patients").status_code == 302
    assert sign_in(app.test_client(), "ana@clinic.test").status_code == 401


def test_pages_carry_security_headers_and_production_adds_hsts(
    client: Any, settings: Settings, runtime: Runtime
) -> None:
    page = client.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in page.headers

    production = dataclasses.replace(settings, env="production")
    runtime.settings = production
    prod_client = create_app(runtime=runtime).test_client()
    answer = prod_client.get("/login")
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    token = csrf_token(prod_client)
    assert token


def test_the_session_cookie_holds_no_user_id_only_a_token_whose_hash_is_stored(
    client: Any, session: Session
) -> None:
    make_staff(session, "ana@clinic.test")
    sign_in(client, "ana@clinic.test")
    with client.session_transaction() as cookie_session:
        token = cookie_session["_user_id"]
    row = session.scalars(select(StaffSession)).one()
    assert row.token_hash == hash_token(token)
    assert token != str(row.user_id)
