"""Everything one clock tick does, in order; the clock process and `coachbot tick` both call
this, so what the CLI shows is exactly what production runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.services.dispatch import TickSummary, run_tick
from coachbot.services.followups import ReplyWindowSummary, process_reply_windows
from coachbot.services.inbound_recovery import recover_failed_inbound
from coachbot.services.paging import PagingSummary
from coachbot.services.paging import run_due as run_paging
from coachbot.services.welcomes import send_due_welcomes
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway


@dataclass(frozen=True)
class ClockTickSummary:
    reply_windows: ReplyWindowSummary
    dispatch: TickSummary
    paging: PagingSummary

    def as_text(self) -> str:
        text = f"{self.dispatch.as_text()} {self.reply_windows.as_text()}"
        return f"{text} {self.paging.as_text()}" if self.paging.eventful else text

    @property
    def eventful(self) -> bool:
        d = self.dispatch
        return bool(
            d.sent or d.failed or d.missed or self.reply_windows.followups or self.paging.eventful
        )


def run_clock_tick(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> ClockTickSummary:
    recover_failed_inbound(session_factory, gateway, library, settings, now)  # kept texts
    # Reply windows first: a follow-up planned now is sent by the dispatch step below,
    # through the same consent, quiet-hour and cap checks as any nudge.
    windows = process_reply_windows(session_factory, library, settings, now)
    # Pages before nudges: first pages no process sent (alerts raised above, or by a web
    # process that died before its pager ran), re-pages and retries never queue behind a
    # dispatch batch.
    pages = run_paging(session_factory, gateway, settings, now)
    send_due_welcomes(session_factory, gateway, library, settings, now)  # held welcomes
    return ClockTickSummary(
        reply_windows=windows,
        dispatch=run_tick(session_factory, gateway, library, settings, now),
        paging=pages,
    )
