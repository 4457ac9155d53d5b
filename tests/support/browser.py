"""Browser-test steps several files share: signing in through the real login form."""

from __future__ import annotations

from typing import Any

from tests.web.test_dashboard_support import PASSWORD


def sign_in(page: Any, live_server: str, email: str, password: str = PASSWORD) -> None:
    """Signs in as a person does and waits until the app has moved off the login page."""
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))
