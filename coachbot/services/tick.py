"""Everything one clock tick does, in order, and the one summary it reports.

The clock process and `coachbot tick` both call `run_clock_tick`, so what the CLI shows is
exactly what production runs. Its steps, each in its own module:

1. `inbound.recovery.recover_failed_inbound`: texts the webhook could not handle;
2. `followups.process_reply_windows`: closed reply windows (misses, follow-ups, alerts);
3. `paging.run_due`: first pages, re-pages and retries;
4. `welcomes.send_due_welcomes` and `caregivers.invitations.send_due_invitations`: held
   welcomes and caregiver invitations;
   then `media_fetch.retry_in_tick`: handwriting samples not fetched yet, or whose copy
   at Twilio is not deleted yet;
5. `run_tick`, the dispatcher's part: expired leases, the caregivers' close-watch checks
   (`caregivers.checks.run_caregiver_checks`: checks, follow-ups, no-answer alerts),
   planning, claim/send/record (`services.dispatch`), then reconciliation of ambiguous
   sends.

Every step counts into one `TickSummary`, whose line names each count once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.models import DISPATCH_CLOCK
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from coachbot.store.heartbeat import upsert_heartbeat


@dataclass
class TickSummary:
    # The dispatcher.
    planned: int = 0
    sent: int = 0
    skipped: int = 0
    too_late: int = 0  # claimed nudges past their stale limit (state "missed")
    failed: int = 0
    ambiguous: int = 0
    deferred: int = 0
    recovered: int = 0
    reconciled: int = 0
    # Reply windows.
    missed: int = 0  # sent nudges whose reply window closed unanswered
    followups: int = 0
    silence_alerts: int = 0
    checkin_alerts: int = 0
    # Pages to staff.
    paged: int = 0
    page_failures: int = 0
    page_retries: int = 0
    unstaffed: int = 0  # pageable alerts nobody could be paged for: nobody is on call
    # Caregivers in the close-watch weeks (services.caregivers).
    caregiver_invites: int = 0
    caregiver_checks: int = 0  # daily observation checks texted
    caregiver_seen_today: int = 0  # "Have you seen ... today?" texted
    caregiver_followups: int = 0
    caregiver_skipped: int = 0  # checks not texted: caregiver not active, suppressed, quiet
    caregiver_no_answer: int = 0  # HIGH alerts: a check or seen-today went unanswered
    # Handwriting samples the tick fetched, refused, retried or gave up on (issue #16).
    samples: int = 0

    @property
    def caregiver_eventful(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__ if "caregiver" in name)

    @property
    def paging_eventful(self) -> bool:
        return bool(self.paged or self.page_failures or self.page_retries or self.unstaffed)

    @property
    def eventful(self) -> bool:
        return bool(
            self.sent
            or self.failed
            or self.too_late
            or self.followups
            or self.paging_eventful
            or self.caregiver_eventful
        )

    def paging_text(self) -> str:
        text = (
            f"paged={self.paged} page_failures={self.page_failures}"
            f" page_retries={self.page_retries}"
        )
        return text + (f" NOBODY ON CALL for {self.unstaffed} alert(s)" if self.unstaffed else "")

    def as_text(self) -> str:
        text = (
            f"planned={self.planned} sent={self.sent} skipped={self.skipped}"
            f" too_late={self.too_late} failed={self.failed} ambiguous={self.ambiguous}"
            f" deferred={self.deferred} recovered={self.recovered}"
            f" reconciled={self.reconciled}"
            f" missed={self.missed} followups={self.followups}"
            f" silence_alerts={self.silence_alerts} checkin_alerts={self.checkin_alerts}"
        )
        text += f" samples={self.samples}" if self.samples else ""
        text = f"{text} {self.paging_text()}" if self.paging_eventful else text
        return f"{text} {self.caregiver_text()}" if self.caregiver_eventful else text

    def caregiver_text(self) -> str:
        return " ".join(
            f"{name}={getattr(self, name)}"
            for name in self.__dataclass_fields__
            if name.startswith("caregiver_")
        )

    def add(self, other: TickSummary) -> None:
        """Adds another step's counts to these."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def run_tick(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary | None = None,
) -> TickSummary:
    """The dispatcher's part of a tick: leases, planning, sending, reconciliation."""
    # Imported here, as are the other steps below: they count into TickSummary, so they
    # import this module, and importing them at the top would make the import graph a cycle.
    from coachbot.services.caregivers.checks import run_caregiver_checks
    from coachbot.services.dispatch import dispatch_due, plan_nudges, recover_expired_leases
    from coachbot.services.reconcile import reconcile_ambiguous

    summary = summary if summary is not None else TickSummary()
    summary.recovered = recover_expired_leases(session_factory, now)
    # The caregivers' close-watch checks go with the dispatcher's sends (every dispatcher
    # process runs them, each check claimed once); after the clock's reply windows, so a
    # check-in missed now asks "Have you seen ...?" in this tick. Their no-answer alerts are
    # paged by the next tick's paging step.
    summary.add(run_caregiver_checks(session_factory, gateway, library, settings, now))
    summary.planned = plan_nudges(session_factory, now)
    dispatch_due(session_factory, gateway, library, settings, now, summary)
    summary.reconciled = reconcile_ambiguous(session_factory, gateway, now).found
    return summary


def run_clock_tick(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> TickSummary:
    from coachbot.services.caregivers.invitations import send_due_invitations
    from coachbot.services.followups import process_reply_windows
    from coachbot.services.inbound.recovery import recover_failed_inbound
    from coachbot.services.media_fetch import retry_in_tick
    from coachbot.services.paging import run_due as run_paging
    from coachbot.services.welcomes import send_due_welcomes

    recover_failed_inbound(session_factory, gateway, library, settings, now)  # kept texts
    # Reply windows first: a follow-up planned now is sent by the dispatch step below,
    # through the same consent, quiet-hour and cap checks as any nudge.
    summary = process_reply_windows(session_factory, library, settings, now)
    # Pages before nudges: first pages no process sent (alerts raised above, or by a web
    # process that died before its pager ran), re-pages and retries never queue behind a
    # dispatch batch.
    summary.add(run_paging(session_factory, gateway, settings, now))
    send_due_welcomes(session_factory, gateway, library, settings, now)  # held welcomes
    summary.caregiver_invites += send_due_invitations(
        session_factory, gateway, library, settings, now
    )
    # Pictures the webhook could not fetch (or a crash interrupted): fetched again.
    summary.samples = retry_in_tick(session_factory, gateway, library, settings, now)
    return run_tick(session_factory, gateway, library, settings, now, summary)


def record_heartbeat(
    session_factory: sessionmaker[Session], now: dt.datetime, summary: TickSummary
) -> None:
    """Marks the clock alive after a tick, with what the tick did, in its own transaction."""
    with session_factory() as session, session.begin():
        upsert_heartbeat(session, DISPATCH_CLOCK, now, summary.as_text())
