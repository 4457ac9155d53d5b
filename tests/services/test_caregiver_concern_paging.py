"""A caregiver's concern is paged like a red flag: the pipeline's wake-up, then the pager's
run pages the on-call once for it (the real twilio client against the loopback stand-in)."""

from __future__ import annotations

import datetime as dt

from freezegun import freeze_time
from sqlalchemy import select

from coachbot.domain.states import AlertKind
from coachbot.models import Alert, Patient
from coachbot.services.inbound import InboundSms, handle_inbound
from tests.services.test_paging import NOW, PRIMARY_PHONE, World, world
from tests.support.builders import make_caregiver, make_sent_caregiver_check
from tests.support.twilio_signing import new_message_sid

__all__ = ["world"]  # the paging tests' fixture: an on-call rota, Twilio and SMTP stand-ins

CAREGIVER = "+16175550777"


def test_a_count_below_the_baseline_pages_the_on_call_once(world: World) -> None:
    runtime = world.runtime
    with runtime.session_factory() as session:
        maya = session.get_one(Patient, world.patient)
        caregiver = make_caregiver(session, maya, phone=CAREGIVER, baseline=4)
        make_sent_caregiver_check(session, maya, caregiver, sent_at=NOW - dt.timedelta(hours=1))
    woken: list[str] = []
    sms = InboundSms(new_message_sid(), CAREGIVER, "+16175550100", "1 of 4 today")
    for _ in range(2):  # a retried webhook: one alert, one wake-up
        with freeze_time(NOW):
            handle_inbound(
                runtime.session_factory,
                runtime.library,
                runtime.settings,
                sms,
                NOW,
                after_commit=lambda: woken.append("pager"),
            )
    assert woken == ["pager"]
    summary = world.run(NOW + dt.timedelta(seconds=5))
    world.run(NOW + dt.timedelta(seconds=10))
    with runtime.session_factory() as session:
        (alert,) = session.scalars(select(Alert)).all()
    assert (alert.kind, alert.severity) == (AlertKind.CAREGIVER_CONCERN, "urgent")
    assert summary.paged == 2  # SMS and e-mail to the primary, once
    [page] = world.fake.sent_to(PRIMARY_PHONE)
    assert f"URGENT alert #{alert.id}" in page.body
    assert "Maya" not in page.body
