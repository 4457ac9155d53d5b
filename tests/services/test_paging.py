"""On-call paging end to end below the web layer: the real twilio SDK against the loopback
Twilio stand-in, real SMTP (aiosmtpd) on loopback, the real database, frozen instants."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import AlertKind, AlertSeverity, AlertStatus
from coachbot.models import Alert, AuditEntry, Page, StaffUser
from coachbot.runtime import Runtime, build_runtime
from coachbot.services import oncall, paging
from coachbot.services.alerts import raise_alert
from coachbot.services.errors import ValidationFailed
from coachbot.services.staff import create_staff_user
from coachbot.services.tick import TickSummary
from coachbot.settings import Settings
from tests.support.builders import make_patient
from tests.support.fake_twilio import FakeTwilio, Fault
from tests.support.smtp_sink import SmtpSink
from tests.support.twilio_signing import AUTH_TOKEN

ACCOUNT_SID = "AC" + "d4" * 16
FROM_NUMBER = "+16175550100"
NOW = dt.datetime(2026, 12, 3, 7, 0, tzinfo=dt.UTC)  # 02:00 in New York
PRIMARY_PHONE = "+16175550142"
BACKUP_PHONE = "+16175550143"


@dataclass
class World:
    runtime: Runtime
    fake: FakeTwilio
    smtp: SmtpSink
    primary: int
    backup: int
    patient: int

    def run(self, now: dt.datetime = NOW) -> TickSummary:
        rt = self.runtime
        return paging.run_due(rt.session_factory, rt.gateway, rt.settings, now)

    def raise_red_flag(
        self, now: dt.datetime = NOW, kind: str = AlertKind.RED_FLAG, severity: str = "urgent"
    ) -> int:
        with self.runtime.session_factory() as session:
            alert = raise_alert(
                session,
                patient_id=self.patient,
                kind=kind,  # type: ignore[arg-type]  # a kind the lead may add (crisis)
                severity=severity,  # type: ignore[arg-type]
                detail="seizure",
                now=now,
            )
            session.commit()
            return alert.id

    def pages(self) -> list[Page]:
        with self.runtime.session_factory() as session:
            return list(session.scalars(select(Page).order_by(Page.id)))


def _staff(
    sessions: sessionmaker[Session], email: str, phone: str | None, now: dt.datetime = NOW
) -> int:
    user = create_staff_user(
        sessions, email=email, role="clinician", password="x" * 12, now=now, actor="test"
    )
    oncall.set_staff_phone(sessions, user.id, phone, default_region="US", now=now, actor="test")
    return user.id


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with (
        FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, hang_limit=5) as fake,
        SmtpSink() as smtp,
    ):
        rt = build_runtime(
            dataclasses.replace(
                settings,
                sms_backend="twilio",
                twilio_account_sid=ACCOUNT_SID,
                twilio_from_number=FROM_NUMBER,
                twilio_api_base_url=fake.base_url,
                twilio_timeout_seconds=2.0,
                smtp_url=smtp.url,
                paging_from_email="pager@clinic.example",
            )
        )
        primary = _staff(rt.session_factory, "dr.night@clinic.example", PRIMARY_PHONE)
        backup = _staff(rt.session_factory, "dr.backup@clinic.example", BACKUP_PHONE)
        with rt.session_factory() as session:
            patient = make_patient(session, first_name="Maya").id
        oncall.set_override(
            rt.session_factory,
            primary_email="dr.night@clinic.example",
            backup_email="dr.backup@clinic.example",
            now=NOW,
            actor="test",
        )
        yield World(rt, fake, smtp, primary, backup, patient)
        rt.close()


def test_an_urgent_red_flag_pages_the_primary_by_sms_and_email_at_once(world: World) -> None:
    alert_id = world.raise_red_flag()
    summary = world.run()
    assert (summary.paged, summary.page_failures) == (2, 0)
    [sms] = world.fake.sent_to(PRIMARY_PHONE)
    assert sms.body == (
        f"Riverside Recovery Clinic: URGENT alert #{alert_id}."
        f" Open https://coach.example.test/alerts/{alert_id} . Reply ACK {alert_id} to acknowledge."
    )
    assert "Maya" not in sms.body
    assert "seizure" not in sms.body
    [mail] = world.smtp.to("dr.night@clinic.example")
    assert mail.subject == f"[Riverside Recovery Clinic] URGENT alert #{alert_id}"
    assert mail.body.strip() == sms.body
    assert world.fake.sent_to(BACKUP_PHONE) == []
    rows = world.pages()
    assert {(p.channel, p.state, p.attempt, p.role) for p in rows} == {
        ("sms", "sent", 0, "primary"),
        ("email", "sent", 0, "primary"),
    }
    assert next(p for p in rows if p.channel == "sms").provider_sid == sms.sid


def test_running_again_or_concurrently_never_pages_twice_for_one_attempt(world: World) -> None:
    for _ in range(5):
        world.raise_red_flag()
    barrier = threading.Barrier(4)

    def runner() -> None:
        barrier.wait()
        world.run()

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    world.run(NOW + dt.timedelta(minutes=4))
    assert len(world.fake.sent_to(PRIMARY_PHONE)) == 5
    assert len(world.smtp.to("dr.night@clinic.example")) == 5
    assert world.fake.duplicates() == {}


def test_nobody_acknowledging_repages_at_five_minutes_and_adds_the_backup_at_fifteen(
    world: World,
) -> None:
    alert_id = world.raise_red_flag()
    for minute in (0, 3, 5, 9, 10, 15, 16):
        world.run(NOW + dt.timedelta(minutes=minute))
    primary = [m.body for m in world.fake.sent_to(PRIMARY_PHONE)]
    assert len(primary) == 4  # attempts 0, 1 (5 min), 2 (10 min), 3 (15 min)
    assert f"alert #{alert_id} (page 4)." in primary[-1]
    [backup] = world.fake.sent_to(BACKUP_PHONE)
    assert f"alert #{alert_id} (page 4)." in backup.body
    assert len(world.smtp.to("dr.backup@clinic.example")) == 1


def test_an_ack_by_sms_acknowledges_in_the_pagees_name_and_stops_the_repaging(
    world: World,
) -> None:
    alert_id = world.raise_red_flag()
    world.run()
    with world.runtime.session_factory() as session:
        reply = paging.handle_staff_sms(
            session, PRIMARY_PHONE, f"ack {alert_id}", NOW + dt.timedelta(minutes=2)
        )
        session.commit()
    assert reply == f"Alert #{alert_id} acknowledged by dr.night. Thank you."
    with world.runtime.session_factory() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        assert (alert.status, alert.acknowledged_by_id) == (AlertStatus.ACKNOWLEDGED, world.primary)
        assert alert.acknowledged_at == NOW + dt.timedelta(minutes=2)
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "alert.acknowledge")
        ).one()
        assert (entry.actor, entry.outcome, entry.patient_id) == (
            f"staff:{world.primary}",
            "ok",
            world.patient,
        )
        assert entry.detail is not None
        assert "via=sms" in entry.detail
    world.run(NOW + dt.timedelta(minutes=20))
    assert len(world.fake.sent_to(PRIMARY_PHONE)) == 1


def test_a_bare_ack_acknowledges_the_latest_open_page(world: World) -> None:
    first = world.raise_red_flag()
    world.run()
    second = world.raise_red_flag(NOW + dt.timedelta(minutes=1))
    world.run(NOW + dt.timedelta(minutes=1))
    with world.runtime.session_factory() as session:
        assert paging.handle_staff_sms(session, PRIMARY_PHONE, "ACK", NOW) == (
            f"Alert #{second} acknowledged by dr.night. Thank you."
        )
        session.commit()
        assert paging.handle_staff_sms(session, PRIMARY_PHONE, f"ACK {second}", NOW) == (
            f"Alert #{second} was already acknowledged."
        )
        first_alert = session.get(Alert, first)
        assert first_alert is not None
        assert first_alert.status == AlertStatus.OPEN


def test_an_ack_from_an_unregistered_phone_or_for_someone_elses_page_changes_nothing(
    world: World,
) -> None:
    alert_id = world.raise_red_flag()
    world.run()
    with world.runtime.session_factory() as session:
        assert paging.handle_staff_sms(session, "+16175550999", f"ACK {alert_id}", NOW) is None
        assert paging.handle_staff_sms(session, PRIMARY_PHONE, "I had a seizure", NOW) is None
        # The backup was not paged yet (15 minutes): their ACK is refused, and audited.
        assert paging.handle_staff_sms(session, BACKUP_PHONE, f"ACK {alert_id}", NOW) == (
            f"Alert #{alert_id} was not paged to you. Nothing acknowledged."
        )
        session.commit()
        alert = session.get(Alert, alert_id)
        assert alert is not None
        assert alert.status == AlertStatus.OPEN
        denied = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied")).one()
        assert denied.actor == f"staff:{world.backup}"


@pytest.mark.parametrize(
    ("kind", "severity"),
    [
        (AlertKind.OPT_OUT, AlertSeverity.URGENT),
        (AlertKind.REVOCATION, AlertSeverity.HIGH),
        (AlertKind.RED_FLAG, AlertSeverity.NORMAL),
    ],
)
def test_consent_delivery_and_normal_alerts_page_nobody(
    world: World, kind: str, severity: str
) -> None:
    world.raise_red_flag(kind=kind, severity=severity)
    assert world.run() == TickSummary()
    assert world.pages() == []


def test_a_new_urgent_kind_such_as_crisis_pages(world: World) -> None:
    world.raise_red_flag(kind="crisis")
    assert world.run().paged == 2


def test_with_nobody_on_call_nothing_is_paged_and_the_summary_says_so(world: World) -> None:
    oncall.clear_override(world.runtime.session_factory, now=NOW, actor="test")
    world.raise_red_flag()
    summary = world.run()
    assert summary.unstaffed == 1
    assert "NOBODY ON CALL" in summary.as_text()
    assert world.pages() == []


def test_a_500_is_retried_once_proven_absent_and_the_email_goes_at_once(world: World) -> None:
    alert_id = world.raise_red_flag()
    world.fake.inject(Fault.server_error(), to=PRIMARY_PHONE)
    world.run()
    assert world.fake.sent_to(PRIMARY_PHONE) == []
    assert len(world.smtp.to("dr.night@clinic.example")) == 1
    sms = next(p for p in world.pages() if p.channel == "sms")
    assert (sms.state, sms.tries) == ("ambiguous", 1)
    world.run(NOW + dt.timedelta(seconds=4))  # backing off
    assert world.fake.sent_to(PRIMARY_PHONE) == []
    world.run(NOW + dt.timedelta(seconds=5))
    [text] = world.fake.sent_to(PRIMARY_PHONE)
    assert f"#{alert_id}" in text.body
    sms = next(p for p in world.pages() if p.channel == "sms")
    assert (sms.state, sms.tries, sms.provider_sid) == ("sent", 2, text.sid)


def test_an_ambiguous_page_the_provider_did_record_is_not_sent_again(world: World) -> None:
    world.raise_red_flag()
    world.fake.inject(Fault.reset_after(), to=PRIMARY_PHONE)  # accepted, then no answer
    world.run()
    [text] = world.fake.sent_to(PRIMARY_PHONE)
    world.run(NOW + dt.timedelta(seconds=10))
    assert len(world.fake.sent_to(PRIMARY_PHONE)) == 1
    sms = next(p for p in world.pages() if p.channel == "sms")
    assert (sms.state, sms.provider_sid) == ("sent", text.sid)


def test_a_refused_number_gives_up_on_sms_while_email_still_reaches_the_on_call(
    world: World,
) -> None:
    world.raise_red_flag()
    world.fake.inject(Fault.invalid_to(), to=PRIMARY_PHONE)
    world.run()
    world.run(NOW + dt.timedelta(minutes=1))
    states = {p.channel: p.state for p in world.pages()}
    assert states == {"sms": "gave_up", "email": "sent"}
    assert len(world.smtp.to("dr.night@clinic.example")) == 1


def test_failed_email_is_retried_a_bounded_number_of_times(world: World) -> None:
    world.raise_red_flag()
    world.smtp.refuse = True
    # Retries back off 5, 10, 15, 15 s: tries at 0, 5, 15, 30 and 45 s, then no more.
    for seconds in (0, 4, 5, 14, 15, 29, 30, 44, 45, 100):
        world.run(NOW + dt.timedelta(seconds=seconds))
        email = next(p for p in world.pages() if p.channel == "email")
        expected = sum(1 for t in (0, 5, 15, 30, 45) if t <= seconds)
        assert email.tries == expected, seconds
    assert (email.state, email.error) == ("gave_up", "smtp:SMTPDataError")
    world.smtp.refuse = False
    world.run(NOW + dt.timedelta(seconds=200))
    assert world.smtp.mails == []


def test_a_send_lost_mid_flight_becomes_ambiguous_and_is_looked_up(world: World) -> None:
    alert_id = world.raise_red_flag()
    with world.runtime.session_factory() as session:
        # A runner claimed the page and died before the network call.
        session.add(
            Page(
                alert_id=alert_id,
                attempt=0,
                recipient_id=world.primary,
                role="primary",
                channel="sms",
                state="sending",
                tries=1,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        session.commit()
    world.run(NOW + dt.timedelta(minutes=1))
    assert world.fake.sent_to(PRIMARY_PHONE) == []  # the claim holds within the lease
    world.run(NOW + dt.timedelta(minutes=3))  # now ambiguous, looked up after the backoff
    world.run(NOW + dt.timedelta(minutes=3, seconds=5))
    assert len(world.fake.sent_to(PRIMARY_PHONE)) == 1
    with world.runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Page)) == 2  # sms + email


def test_the_rota_refuses_unknown_inactive_or_non_clinician_staff(world: World) -> None:
    sessions = world.runtime.session_factory
    create_staff_user(
        sessions,
        email="ops@clinic.example",
        role="operator",
        password="x" * 12,
        now=NOW,
        actor="test",
    )
    with pytest.raises(ValidationFailed, match="only a clinician"):
        oncall.set_override(
            sessions, primary_email="ops@clinic.example", backup_email=None, now=NOW, actor="t"
        )
    with pytest.raises(ValidationFailed) as missing:
        oncall.set_override(
            sessions, primary_email="who@x.example", backup_email=None, now=NOW, actor="t"
        )
    assert missing.value.errors == {"email": "no staff account who@x.example"}
    with pytest.raises(ValidationFailed) as same:
        oncall.set_override(
            sessions,
            primary_email="dr.night@clinic.example",
            backup_email="DR.NIGHT@clinic.example",
            now=NOW,
            actor="t",
        )
    assert same.value.errors == {"backup_email": "the backup must be someone else"}


def test_staff_phones_are_validated_and_unique(world: World) -> None:
    sessions = world.runtime.session_factory
    with pytest.raises(ValidationFailed) as bad:
        oncall.set_staff_phone(
            sessions, world.backup, "12", default_region="US", now=NOW, actor="t"
        )
    assert list(bad.value.errors) == ["phone"]
    with pytest.raises(ValidationFailed) as taken:
        oncall.set_staff_phone(
            sessions, world.backup, "(617) 555-0142", default_region="US", now=NOW, actor="t"
        )
    assert taken.value.errors == {"phone": "another staff account has this number"}


def test_weekly_shifts_decide_when_no_override_is_set(world: World) -> None:
    oncall.clear_override(world.runtime.session_factory, now=NOW, actor="test")
    # 2026-12-03 is a Thursday; NOW is 07:00 UTC, inside a 00:00-08:00 UTC shift.
    oncall.add_shift(
        world.runtime.session_factory,
        weekday=3,
        start="00:00",
        end="08:00",
        primary_email="dr.backup@clinic.example",
        backup_email=None,
        now=NOW,
        actor="test",
    )
    with world.runtime.session_factory() as session:
        who = oncall.current_on_call(session, world.runtime.settings, NOW)
        assert who is not None
        assert (who.primary_id, who.source) == (world.backup, "shift")
        assert oncall.nobody_on_call(session, world.runtime.settings, NOW + dt.timedelta(hours=1))
    world.raise_red_flag()
    world.run()
    assert len(world.fake.sent_to(BACKUP_PHONE)) == 1


def test_a_deactivated_on_call_counts_as_nobody_on_call(world: World) -> None:
    with world.runtime.session_factory() as session:
        user = session.get(StaffUser, world.primary)
        assert user is not None
        user.is_active = False
        session.commit()
        assert oncall.nobody_on_call(session, world.runtime.settings, NOW)
    world.raise_red_flag()
    assert world.run().unstaffed == 1
    assert world.fake.sent_to(BACKUP_PHONE) == []
