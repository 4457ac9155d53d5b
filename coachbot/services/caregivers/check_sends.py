"""Texting the close-watch checks: claimed once, checked, sent, recorded.

A due check is claimed in one transaction (PostgreSQL skips rows another dispatcher holds;
the conditional UPDATE due -> sending decides on both dialects, so a check is texted once
however many dispatchers run), after the one sendability check for the caregiver
(`sendability.caregiver_rules`: said YES, not suppressed, outside their quiet hours and
inside the send window, not stale). A check that may not go is "skipped", its reason in a
log line, and no text. The send happens with no transaction open; the outbound row
(`messaging.send_text`, through the one outbound writer) and the state "sent" are written
in one transaction after it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain import schedule as sched
from coachbot.domain import sendability
from coachbot.domain.program import CLAIM_LEASE
from coachbot.models import Caregiver, CaregiverCheck, Patient, SuppressedNumber
from coachbot.services.messaging import send_text, status_callback_url
from coachbot.services.programs import CloseWatchBook, load_close_watch_book
from coachbot.services.schedules import dispatch_settings
from coachbot.services.track_settings import check_variables
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from coachbot.store.dialect import skip_locked

if TYPE_CHECKING:
    from coachbot.services.tick import TickSummary

log = logging.getLogger(__name__)

OBSERVATION = "observation"
SEEN_TODAY = "seen_today"
DUE, SENDING, SENT, MISSED, SKIPPED = "due", "sending", "sent", "missed", "skipped"
CLAIM_BATCH = 200
# The outbound row's kind for each text (the thread and exports tell them apart).
OUTBOUND_KIND = {OBSERVATION: "caregiver_check", SEEN_TODAY: "caregiver_seen"}
FOLLOWUP_KIND = "caregiver_followup"


@dataclass(frozen=True)
class _Ready:
    check_id: int
    patient_id: int
    to: str
    message: RenderedMessage
    kind: str


@dataclass(frozen=True)
class _Context:
    """What a claim reads once for its batch."""

    window: sched.LocalWindow
    book: CloseWatchBook
    caregivers: dict[int, Caregiver]
    first_names: dict[int, str]
    suppressed: set[str]


def _context(session: Session, checks: Iterable[CaregiverCheck]) -> _Context:
    checks = list(checks)
    caregivers = {
        c.id: c
        for c in session.scalars(
            select(Caregiver).where(Caregiver.id.in_({k.caregiver_id for k in checks}))
        )
    }
    names = {
        row.id: row.first_name
        for row in session.execute(
            select(Patient.id, Patient.first_name).where(
                Patient.id.in_({k.patient_id for k in checks})
            )
        )
    }
    phones = [c.phone_e164 for c in caregivers.values()]
    suppressed = set(
        session.scalars(
            select(SuppressedNumber.number_e164).where(SuppressedNumber.number_e164.in_(phones))
        )
    )
    return _Context(
        dispatch_settings(session).window,
        load_close_watch_book(session),
        caregivers,
        names,
        suppressed,
    )


def _verdict(
    context: _Context, caregiver: Caregiver, now: dt.datetime, fresh_until: dt.datetime
) -> sendability.Verdict:
    return sendability.check(
        sendability.Recipient(
            status=caregiver.status,
            zone=ZoneInfo(caregiver.timezone),
            quiet_start=caregiver.quiet_start,
            quiet_end=caregiver.quiet_end,
            suppressed=caregiver.phone_e164 in context.suppressed,
        ),
        now,
        sendability.caregiver_rules(context.window, fresh_until),
    )


def _language(library: MessageLibrary, template_id: str, language: str) -> str:
    return language if library.has_template(template_id, language) else "en"


def _render(
    library: MessageLibrary, check: CaregiverCheck, caregiver: Caregiver, context: _Context
) -> tuple[RenderedMessage, int]:
    """The text for a check and how many items it asks."""
    first_name = context.first_names[check.patient_id]
    seed = f"caregiver:{caregiver.id}:{check.local_date}"
    if check.kind == SEEN_TODAY:
        language = _language(library, "caregiver.seen_today", caregiver.language)
        message = library.render(
            "caregiver.seen_today", language, {"first_name": first_name}, seed=seed
        )
        return message, 0
    _, rules = context.book.for_patient(check.patient_id)
    language = _language(library, "caregiver.check", caregiver.language)
    items = rules.items_for(language)
    variables = check_variables(first_name, items)
    return library.render("caregiver.check", language, variables, seed=seed), len(items)


def send_due_checks(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary,
) -> None:
    while True:
        ready, claimed = _claim(session_factory, library, now, summary)
        for item in ready:
            if _send(session_factory, gateway, settings, item, now):
                if item.kind == OUTBOUND_KIND[SEEN_TODAY]:
                    summary.caregiver_seen_today += 1
                else:
                    summary.caregiver_checks += 1
            else:
                summary.caregiver_skipped += 1
        if claimed < CLAIM_BATCH:
            return


def _claim(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    now: dt.datetime,
    summary: TickSummary,
) -> tuple[list[_Ready], int]:
    """The next batch's checks that may go, moved to "sending" and committed; and how many
    rows the batch looked at."""
    with session_factory.begin() as session:
        query = (
            select(CaregiverCheck)
            .where(CaregiverCheck.state == DUE, CaregiverCheck.due_at <= now)
            .order_by(CaregiverCheck.due_at, CaregiverCheck.id)
            .limit(CLAIM_BATCH)
        )
        checks = list(session.scalars(skip_locked(session, query)))
        if not checks:
            return [], 0
        context = _context(session, checks)
        ready: list[_Ready] = []
        for check in checks:
            caregiver = context.caregivers[check.caregiver_id]
            _, rules = context.book.for_patient(check.patient_id)
            verdict = _verdict(context, caregiver, now, check.due_at + rules.followup_after)
            claim = update(CaregiverCheck).where(
                CaregiverCheck.id == check.id, CaregiverCheck.state == DUE
            )
            if not verdict.may_send_now:
                if session.execute(claim.values(state=SKIPPED)).rowcount:  # type: ignore[attr-defined]
                    log.info("caregiver check %d skipped: %s", check.id, verdict.reason)
                    summary.caregiver_skipped += 1
                continue
            message, items = _render(library, check, caregiver, context)
            # sent_at is the claim's instant while "sending": what `recover_stuck` measures.
            won = session.scalar(
                claim.values(state=SENDING, items=items, sent_at=now).returning(CaregiverCheck.id)
            )
            if won is not None:
                kind = OUTBOUND_KIND[check.kind]
                ready.append(
                    _Ready(check.id, check.patient_id, caregiver.phone_e164, message, kind)
                )
        return ready, len(checks)


def _send(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    settings: Settings,
    item: _Ready,
    now: dt.datetime,
) -> bool:
    """Texts one claimed check and records it: "sent", or "skipped" when the gateway refused
    it (the suppression guard, a carrier error; the outbound row says which)."""
    callback = status_callback_url(settings.public_base_url) if gateway.name == "twilio" else None
    with session_factory.begin() as session:
        row = send_text(
            session,
            gateway,
            patient_id=item.patient_id,
            to_e164=item.to,
            message=item.message,
            kind=item.kind,
            now=now,
            status_callback=callback,
        )
        failed = row.delivery_status == "failed"
        if item.kind == FOLLOWUP_KIND:
            return not failed
        session.execute(
            update(CaregiverCheck)
            .where(CaregiverCheck.id == item.check_id, CaregiverCheck.state == SENDING)
            .values(state=SKIPPED if failed else SENT, sent_at=None if failed else now)
        )
    if failed:
        log.info("caregiver check %d skipped: the gateway refused it", item.check_id)
    return not failed


def recover_stuck(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Checks a dispatcher claimed and then died with, still "sending" a lease after the
    claim: they may have reached the phone, so they are never sent again (at most once);
    they become "sent" as of the claim, so the follow-up and the no-answer alert still
    come. Returns how many."""
    with session_factory.begin() as session:
        recovered = session.scalars(
            update(CaregiverCheck)
            .where(CaregiverCheck.state == SENDING, CaregiverCheck.sent_at <= now - CLAIM_LEASE)
            .values(state=SENT)
            .returning(CaregiverCheck.id)
        ).all()
    for check_id in recovered:
        log.warning("caregiver check %d was left sending: counted as sent, not resent", check_id)
    return len(recovered)


def send_followups(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary,
) -> None:
    """One follow-up for each observation check unanswered `followup_after_hours` after it
    was sent. `followup_sent_at` is set by a conditional UPDATE (the claim) even when the
    caregiver may not be texted now (quiet hours, a STOP since): it starts the last window,
    after which the no-answer alert is raised all the same."""
    for item in _claim_followups(session_factory, library, now, summary):
        if _send(session_factory, gateway, settings, item, now):
            summary.caregiver_followups += 1


def _claim_followups(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    now: dt.datetime,
    summary: TickSummary,
) -> list[_Ready]:
    with session_factory.begin() as session:
        query = (
            select(CaregiverCheck)
            .where(
                CaregiverCheck.kind == OBSERVATION,
                CaregiverCheck.state == SENT,
                CaregiverCheck.followup_sent_at.is_(None),
                CaregiverCheck.answered_at.is_(None),
                CaregiverCheck.sent_at <= now - dt.timedelta(hours=1),
            )
            .order_by(CaregiverCheck.sent_at, CaregiverCheck.id)
            .limit(CLAIM_BATCH)
        )
        checks = list(session.scalars(skip_locked(session, query)))
        if not checks:
            return []
        context = _context(session, checks)
        ready: list[_Ready] = []
        for check in checks:
            _, rules = context.book.for_patient(check.patient_id)
            if check.sent_at is None or now - check.sent_at < rules.followup_after:
                continue
            won = session.scalar(
                update(CaregiverCheck)
                .where(CaregiverCheck.id == check.id, CaregiverCheck.followup_sent_at.is_(None))
                .values(followup_sent_at=now)
                .returning(CaregiverCheck.id)
            )
            if won is None:
                continue
            caregiver = context.caregivers[check.caregiver_id]
            verdict = _verdict(context, caregiver, now, now + rules.followup_after)
            if not verdict.may_send_now:
                log.info("caregiver follow-up %d not texted: %s", check.id, verdict.reason)
                summary.caregiver_skipped += 1
                continue
            language = _language(library, "caregiver.check_followup", caregiver.language)
            message = library.render(
                "caregiver.check_followup",
                language,
                {"first_name": context.first_names[check.patient_id], "item_count": check.items},
                seed=f"caregiver:{caregiver.id}:{check.local_date}",
            )
            ready.append(
                _Ready(check.id, check.patient_id, caregiver.phone_e164, message, FOLLOWUP_KIND)
            )
        return ready
