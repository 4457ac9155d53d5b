"""The 500 handler: an unhandled exception after a write leaves nothing written, the answer is
a plain page (JSON under /api/ and /sms/), and the log names the failure without its message."""

from __future__ import annotations

import logging

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.app import create_app
from coachbot.domain.clock import utcnow
from coachbot.models import StaffUser
from coachbot.runtime import Runtime
from coachbot.web.common import db

# A database error's message carries the statement's parameters; the exception below carries
# the same kind of data, and none of it may reach the log.
SECRET_NUMBER = "+16175550142"
SECRET_BODY = "I fell and hit my head"


def _failing_blueprint(name: str, prefix: str) -> Blueprint:
    """Test-only routes that write through the request's session, then raise."""
    bp = Blueprint(name, __name__, url_prefix=prefix)

    @bp.get("/write-then-fail")
    def write_then_fail() -> str:
        db().add(
            StaffUser(
                email=f"half-made-{name}@example.org",
                display_name="Half made",
                role="admin",
                password_hash="x",
                created_at=utcnow(),
            )
        )
        db().flush()  # the row is in the transaction, as far as the view knows it is saved
        raise RuntimeError(f"text from {SECRET_NUMBER}: {SECRET_BODY}")

    return bp


@pytest.fixture
def failing_client(runtime: Runtime) -> FlaskClient:
    app: Flask = create_app(runtime=runtime)
    # TESTING re-raises into the test; production (the default) goes through the handler.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.register_blueprint(_failing_blueprint("failing_page", "/failing"))
    app.register_blueprint(_failing_blueprint("failing_api", "/api/failing"))
    return app.test_client()


def _staff_count(session: Session) -> int:
    return session.scalar(select(func.count(StaffUser.id))) or 0


def test_a_page_that_raises_after_a_write_keeps_nothing_and_answers_the_500_page(
    failing_client: FlaskClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = failing_client.get("/failing/write-then-fail")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<h1>Something went wrong</h1>" in page
    assert "Nothing from this request was saved" in page
    assert _staff_count(session) == 0
    assert "unhandled RuntimeError on GET /failing/write-then-fail" in caplog.text
    assert "write_then_fail" in caplog.text  # where it failed
    assert SECRET_NUMBER not in caplog.text
    assert SECRET_BODY not in caplog.text


def test_an_api_route_that_raises_after_a_write_keeps_nothing_and_answers_json(
    failing_client: FlaskClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = failing_client.get("/api/failing/write-then-fail")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error"}
    assert _staff_count(session) == 0
    assert SECRET_NUMBER not in caplog.text
    assert SECRET_BODY not in caplog.text


def test_the_app_answers_normally_after_a_500(
    failing_client: FlaskClient, session: Session
) -> None:
    assert failing_client.get("/failing/write-then-fail").status_code == 500
    assert failing_client.get("/healthz").status_code == 200
    assert _staff_count(session) == 0
