"""My settings: a staff member's own time zone, checked with zoneinfo, audited, and used for
every time the clinical pages show."""

from __future__ import annotations

from typing import Any

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import AuditEntry, StaffUser
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, make_staff, post_form, sign_in


@freeze_time(NOW)
def test_a_user_sets_their_zone_and_sees_times_in_it_and_a_bad_zone_is_refused(
    client: Any, session: Session
) -> None:
    ana = make_staff(session, "ana@clinic.test")
    maya = make_patient(session)
    maya.clinician_id = ana
    session.commit()
    sign_in(client, "ana@clinic.test")
    # The clinic's zone by default (UTC in the tests): NOW is 18:00 there.
    assert f"{NOW:%Y-%m-%d} 18:00 UTC" in client.get(f"/patients/{maya.id}").get_data(True)

    refused = post_form(client, "/me/settings", {"timezone": "Mars/Olympus"})
    assert refused.status_code == 422
    assert "is not a time zone" in refused.get_data(as_text=True)
    assert session.scalars(select(StaffUser.timezone)).one() is None

    assert post_form(client, "/me/settings", {"timezone": "America/Chicago"}).status_code == 302
    session.rollback()  # a fresh snapshot
    assert session.get_one(StaffUser, ana).timezone == "America/Chicago"
    page = client.get(f"/patients/{maya.id}").get_data(as_text=True)
    assert f"{NOW:%Y-%m-%d} 12:00 CST" in page  # the audit row of this very view, local
    assert "18:00 UTC" not in page
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.timezone")).one()
    assert (entry.actor, entry.detail) == (f"staff:{ana}", "zone=America/Chicago")

    # Empty goes back to the clinic's zone.
    assert post_form(client, "/me/settings", {"timezone": ""}).status_code == 302
    session.rollback()  # a fresh snapshot
    assert session.get_one(StaffUser, ana).timezone is None
