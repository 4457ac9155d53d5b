"""The phone simulator reads without SQLite's write lock: it is the page a developer keeps
reloading while the webhook and the clock write."""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun import freeze_time
from sqlalchemy.orm import Session

from coachbot.runtime import Runtime
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import (
    NOW,
    give_history,
    make_staff,
    recorded_statements,
    sign_in,
    writes,
)


def test_the_phones_page_shows_each_thread_and_writes_nothing(
    client: Any, session: Session, runtime: Runtime
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    maya = make_patient(session, first_name="Maya")
    maya.clinician_id = clinician
    session.commit()
    give_history(session, maya, days=3)
    with freeze_time(NOW) as frozen:
        sign_in(client, "ana@clinic.test")
        frozen.tick(dt.timedelta(seconds=5))
        with recorded_statements(runtime.engine) as seen:
            page = client.get("/simulator")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Texts the clinic sent arrive on the phone; the patient's replies leave it.
    assert html.count('class="sms-in"') == 3
    assert html.count('class="sms-out"') == 2
    assert any("FROM outbound_messages" in s for s in seen)
    assert writes(seen) == []
