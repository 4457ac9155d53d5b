"""Staff accounts and signing in, the one way for every test: through the real login form
with its CSRF token, from Flask's test client (`sign_in`) or a real browser
(`sign_in_browser`)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from coachbot.services.staff import create_staff_user
from tests.support.builders import MONDAY_1300_NEW_YORK

PASSWORD = "correct-horse-battery-staple"
_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def writer_of(session: Session) -> sessionmaker[Session]:
    """Sessions on the database `session` reads, for services that open their own
    transaction (test set-up runs nothing concurrently, so the read-only flag is moot)."""
    return sessionmaker(session.get_bind(), expire_on_commit=False)


def make_staff(
    session: Session,
    email: str,
    role: str = "clinician",
    *,
    created_at: dt.datetime = MONDAY_1300_NEW_YORK,
) -> int:
    """A staff account whose password is PASSWORD; returns its id."""
    # The set-up so far is kept (as when the service committed the caller's session), and
    # a write session's transaction ends: on SQLite it holds the lock the service needs.
    session.commit()
    user = create_staff_user(
        writer_of(session),
        email=email,
        role=role,
        password=PASSWORD,
        now=created_at,
        actor="test",
    )
    return user.id


def csrf_token(client: Any, page: str = "/login") -> str:
    html = client.get(page).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {page}"
    return match.group(1) or match.group(2)


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    """Signs Flask's test client in through the login form; returns the form's answer."""
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def post_form(client: Any, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Posts with the session's CSRF token, as the page's own form would."""
    token = csrf_token(client, "/account/tokens")
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


def sign_in_browser(page: Any, live_server: str, email: str, password: str = PASSWORD) -> None:
    """Signs a Playwright page in through the login form, as a person would, and waits
    until the app has moved on from /login (each role lands on its own home page)."""
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))
