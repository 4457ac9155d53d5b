"""On-call paging: an urgent or high alert reaches a person by SMS and e-mail at once, again
every PAGING_REPAGE_MINUTES until someone acknowledges, and the backup too from
PAGING_BACKUP_MINUTES on (the schedule and the rota are pure, in coachbot.domain.oncall).

`run_due` is the one entry point. The web process's `Pager` thread runs it right after an
inbound text raised a pageable alert; the clock tick and `coachbot reply` run it too, which
sends the first page of an alert whose process died before paging, the re-pages, and the
retries. Several of them may run at once, on several machines:

- Every page is a row keyed (alert, attempt, recipient, channel), INSERTed in state
  `sending` and committed before the network call. A second runner's INSERT of the same key
  does nothing, so a page is never sent twice for the same alert and attempt.
- A failed send is retried (at most MAX_TRIES, backing off) by claiming the row with a
  conditional UPDATE on its state and try count. A send whose outcome is unknown (a 500 or
  a timeout at the provider, a runner that died mid-send) is `ambiguous`: before sending it
  again the provider's own records are searched for its text (each attempt's text is
  unique), and only a page proven absent is resent.
- E-mail goes with every attempt, so a page whose SMS fails for good still reaches the
  on-call by e-mail.

Nothing here logs a message body or a full phone number.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.oncall import (
    MAX_PAGE_ATTEMPTS,
    NEVER_PAGED_KINDS,
    PAGED_SEVERITIES,
    OnCall,
    is_pageable,
    page_step_due,
    page_subject,
    page_text,
    parse_ack,
)
from coachbot.domain.phones import mask_phone
from coachbot.domain.provider_errors import Outcome
from coachbot.domain.states import AlertStatus
from coachbot.models import Alert, Page, StaffUser
from coachbot.queries.pages import was_paged
from coachbot.services import audit
from coachbot.services.alerts import acknowledge
from coachbot.services.oncall import current_on_call
from coachbot.services.tick import TickSummary
from coachbot.settings import Settings
from coachbot.sms.email import Mailer, MailFailure, build_mailer
from coachbot.sms.gateway import OutgoingSms, SendFailure, SmsGateway
from coachbot.store.dialect import insert_ignoring_duplicates

log = logging.getLogger(__name__)

# Per page row: the first send and four retries, 5, 10, 15 and 15 s apart, all within the
# minute a page is promised in; past that the next re-page (a new attempt) takes over.
MAX_TRIES = 5
RETRY_BACKOFF = dt.timedelta(seconds=5)  # times the tries so far, at most 3
SENDING_LEASE = dt.timedelta(minutes=2)  # longer than any provider timeout
LOOKUP_SLACK = dt.timedelta(minutes=1)  # the provider's clock may differ from ours


class PageState(StrEnum):
    SENDING = "sending"  # claimed; the network call may be in flight
    SENT = "sent"
    FAILED = "failed"  # not sent; retried
    AMBIGUOUS = "ambiguous"  # may have been sent; looked up before any resend
    GAVE_UP = "gave_up"  # refused for good, or out of tries


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


@dataclass(frozen=True)
class _Job:
    page_id: int
    channel: str
    to: str
    subject: str
    text: str
    tries: int
    created_at: dt.datetime
    look_up_first: bool = False


def run_due(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    settings: Settings,
    now: dt.datetime,
    *,
    mailer: Mailer | None = None,
) -> TickSummary:
    """Sends every page due at `now`: first pages, re-pages, backup pages and retries.
    E-mail goes through SMTP_URL unless a `mailer` is given.

    More than one transaction, by design: the claims (lost sends made ambiguous, new page
    rows, retries) each commit before any network call, so a second runner sees them and
    no transaction (nor SQLite's write lock) is held across a send; then each page's
    outcome is recorded in its own transaction, so one slow provider call never holds up
    the record of another page."""
    summary = TickSummary()
    mailer = mailer or build_mailer(settings.smtp_url, settings.paging_from_email)
    with session_factory.begin() as session:
        _expire_lost_sends(session, now)
    with session_factory.begin() as session:
        jobs = _claim_new(session, mailer, settings, now, summary)
    with session_factory.begin() as session:
        retries = _claim_retries(session, mailer, settings, now)
    summary.page_retries = len(retries)
    for job in [*jobs, *retries]:
        state = _deliver(session_factory, gateway, mailer, job, now)
        if state == PageState.SENT:
            summary.paged += 1
        else:
            summary.page_failures += 1
    return summary


def _expire_lost_sends(session: Session, now: dt.datetime) -> None:
    """A `sending` row older than any provider timeout belongs to a runner that died: its
    page may or may not have gone out. Read first: on SQLite an UPDATE takes the write lock
    even when it changes nothing, and the pager runs after every kick."""
    stale = Page.state == PageState.SENDING, Page.updated_at < now - SENDING_LEASE
    if session.scalar(select(Page.id).where(*stale).limit(1)) is None:
        return
    session.execute(
        update(Page)
        .where(*stale)
        .values(state=PageState.AMBIGUOUS, error="lost_mid_send", updated_at=now)
    )


def _addresses(user: StaffUser, mailer: Mailer | None) -> list[tuple[Channel, str]]:
    out: list[tuple[Channel, str]] = []
    if user.phone_e164:
        out.append((Channel.SMS, user.phone_e164))
    if mailer is not None:
        out.append((Channel.EMAIL, user.email))
    return out


def _texts(alert: Alert, attempt: int, settings: Settings) -> tuple[str, str]:
    text = page_text(
        alert.id, alert.severity, settings.clinic_name, settings.public_base_url, attempt
    )
    return page_subject(alert.id, alert.severity, settings.clinic_name), text


def _pageable_alerts(session: Session, repage: dt.timedelta, now: dt.datetime) -> list[Alert]:
    """Open alerts young enough to be paged still, oldest first."""
    # The SQL narrows with the domain's own constants; `is_pageable` stays the rule.
    return [
        a
        for a in session.scalars(
            select(Alert)
            .where(
                Alert.status == AlertStatus.OPEN,
                Alert.severity.in_(PAGED_SEVERITIES),
                Alert.kind.not_in(NEVER_PAGED_KINDS),
                Alert.created_at > now - repage * MAX_PAGE_ATTEMPTS,
                Alert.created_at <= now,
            )
            .order_by(Alert.created_at, Alert.id)
        )
        if is_pageable(a.kind, a.severity)
    ]


def _claim_new(
    session: Session,
    mailer: Mailer | None,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary,
) -> list[_Job]:
    repage = dt.timedelta(minutes=settings.paging_repage_minutes)
    alerts = _pageable_alerts(session, repage, now)
    if not alerts:
        return []
    who = current_on_call(session, settings, now)
    if who is None:
        summary.unstaffed = len(alerts)
        log.warning("nobody is on call: %d pageable alert(s) not paged", len(alerts))
        return []
    addresses: dict[tuple[int, int, int, str], str] = {}
    rows = _new_page_rows(session, alerts, who, mailer, settings, now, addresses)
    if not rows:
        return []
    claimed = insert_ignoring_duplicates(
        session,
        Page,
        rows,
        ["alert_id", "attempt", "recipient_id", "channel"],
        [Page.id, Page.alert_id, Page.attempt, Page.recipient_id, Page.channel],
    )
    # Committed by the caller's transaction before any network call: the claim.
    by_id = {a.id: a for a in alerts}
    jobs = []
    for page_id, alert_id, attempt, recipient_id, claimed_channel in claimed:
        subject, text = _texts(by_id[alert_id], attempt, settings)
        to = addresses[(alert_id, attempt, recipient_id, claimed_channel)]
        jobs.append(_Job(page_id, claimed_channel, to, subject, text, 1, now))
    return jobs


def _new_page_rows(
    session: Session,
    alerts: Sequence[Alert],
    who: OnCall,
    mailer: Mailer | None,
    settings: Settings,
    now: dt.datetime,
    addresses: dict[tuple[int, int, int, str], str],
) -> list[dict[str, object]]:
    """The page rows due now and not written yet, one per (alert, attempt, recipient,
    channel); fills `addresses` with where each goes."""
    repage = dt.timedelta(minutes=settings.paging_repage_minutes)
    backup_after = dt.timedelta(minutes=settings.paging_backup_minutes)
    people = {
        u.id: u
        for u in session.scalars(
            select(StaffUser).where(
                StaffUser.id.in_([i for i in (who.primary_id, who.backup_id) if i is not None]),
                StaffUser.is_active.is_(True),
            )
        )
    }
    existing = {
        tuple(row)
        for row in session.execute(
            select(Page.alert_id, Page.attempt, Page.recipient_id, Page.channel).where(
                Page.alert_id.in_([a.id for a in alerts])
            )
        )
    }
    rows: list[dict[str, object]] = []
    for alert in alerts:
        step = page_step_due(alert.created_at, now, repage=repage, backup_after=backup_after)
        if step is None:
            continue
        recipients = [(who.primary_id, "primary")]
        if step.include_backup and who.backup_id is not None:
            recipients.append((who.backup_id, "backup"))
        for recipient_id, role in recipients:
            user = people.get(recipient_id)
            if user is None:
                continue
            for channel, address in _addresses(user, mailer):
                key = (alert.id, step.attempt, recipient_id, str(channel))
                if key in existing:
                    continue
                addresses[key] = address
                rows.append(
                    {
                        "alert_id": alert.id,
                        "attempt": step.attempt,
                        "recipient_id": recipient_id,
                        "role": role,
                        "channel": str(channel),
                        "state": PageState.SENDING,
                        "tries": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
    return rows


def _claim_retries(
    session: Session, mailer: Mailer | None, settings: Settings, now: dt.datetime
) -> list[_Job]:
    candidates = session.execute(
        select(Page, Alert, StaffUser)
        .join(Alert, Alert.id == Page.alert_id)
        .join(StaffUser, StaffUser.id == Page.recipient_id)
        .where(
            Page.state.in_([PageState.FAILED, PageState.AMBIGUOUS]),
            Page.tries < MAX_TRIES,
            Alert.status == AlertStatus.OPEN,
        )
        .order_by(Page.id)
    ).all()
    jobs: list[_Job] = []
    for page, alert, user in candidates:
        if page.updated_at + RETRY_BACKOFF * min(page.tries, 3) > now:
            continue
        to = user.phone_e164 if page.channel == Channel.SMS else user.email
        if not to or (page.channel == Channel.EMAIL and mailer is None):
            continue
        # Conditional on what was read: of two runners, only one moves the row on. (The
        # values are read first: the ORM update refreshes `page` in this session.)
        state, tries = page.state, page.tries
        moved = session.execute(
            update(Page)
            .where(Page.id == page.id, Page.state == state, Page.tries == tries)
            .values(state=PageState.SENDING, tries=tries + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) != 1:
            continue
        subject, text = _texts(alert, page.attempt, settings)
        jobs.append(
            _Job(
                page.id,
                page.channel,
                to,
                subject,
                text,
                tries + 1,
                page.created_at,
                look_up_first=state == PageState.AMBIGUOUS,
            )
        )
    return jobs


def _found_at_provider(gateway: SmsGateway, job: _Job) -> str | bool | None:
    """The provider's id of this page if its records show it went out; None if proven
    absent (or the gateway keeps no records); False if the provider could not answer."""
    lookup = getattr(gateway, "recent_messages", None)
    if lookup is None:
        return None
    try:
        for message in lookup(job.to, job.created_at - LOOKUP_SLACK):
            if message.body == job.text and message.status not in ("failed", "undelivered"):
                return str(message.provider_sid)
    except SendFailure:
        return False
    return None


def _deliver(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    mailer: Mailer | None,
    job: _Job,
    now: dt.datetime,
) -> PageState:
    sid: str | None = None
    error: str | None = None
    state = PageState.SENT
    try:
        if job.channel == Channel.SMS:
            found = _found_at_provider(gateway, job) if job.look_up_first else None
            if found is False:
                state, error = PageState.AMBIGUOUS, "lookup_failed"
            elif isinstance(found, str):
                sid = found
            else:
                sid = gateway.send(OutgoingSms(to=job.to, body=job.text)).provider_sid
        else:
            assert mailer is not None
            mailer.send(job.to, job.subject, job.text)
    except SendFailure as failure:
        error = f"{failure.outcome}:{failure.code or failure.http_status or ''}"
        if failure.outcome is Outcome.AMBIGUOUS:
            state = PageState.AMBIGUOUS
        elif failure.outcome in (Outcome.RETRY, Outcome.RETRY_LATER):
            state = PageState.FAILED
        else:
            state = PageState.GAVE_UP
    except MailFailure as failure:
        state, error = PageState.FAILED, f"smtp:{failure}"
    except Exception as exc:  # a page must never take the pager down with it
        log.exception("page %d by %s raised", job.page_id, job.channel)
        state, error = PageState.FAILED, type(exc).__name__
    if state in (PageState.FAILED, PageState.AMBIGUOUS) and job.tries >= MAX_TRIES:
        state = PageState.GAVE_UP
    if state != PageState.SENT:
        log.warning(
            "page %d by %s to %s not sent (%s): %s",
            job.page_id,
            job.channel,
            mask_phone(job.to) if job.channel == Channel.SMS else "e-mail",
            state,
            error,
        )
    with session_factory.begin() as session:
        session.execute(
            update(Page)
            .where(Page.id == job.page_id)
            .values(
                state=state,
                provider_sid=sid,
                error=error[:200] if error else None,
                updated_at=now,
                sent_at=now if state == PageState.SENT else None,
            )
        )
    return state


# --- ACK by SMS ------------------------------------------------------------------------


def handle_staff_sms(session: Session, from_e164: str, body: str, now: dt.datetime) -> str | None:
    """An `ACK <id>` (or `ACK`: the sender's latest open page) from a registered staff phone:
    acknowledges the alert in their name, with an audit row, in the caller's transaction,
    and returns the reply. None (nothing changed) for anything else, and for any number
    that is not an active staff member's."""
    ack = parse_ack(body)
    if ack is None:
        return None
    user = session.scalar(
        select(StaffUser).where(StaffUser.phone_e164 == from_e164, StaffUser.is_active.is_(True))
    )
    if user is None:
        return None
    if ack.alert_id is None:
        alert_id = session.scalar(
            select(Page.alert_id)
            .join(Alert, Alert.id == Page.alert_id)
            .where(Page.recipient_id == user.id, Alert.status == AlertStatus.OPEN)
            .order_by(Page.created_at.desc(), Page.id.desc())
            .limit(1)
        )
        if alert_id is None:
            return "No open alert was paged to you. Nothing acknowledged."
    else:
        alert_id = ack.alert_id
    alert = session.get(Alert, alert_id, with_for_update=True, populate_existing=True)
    if alert is None or not was_paged(session, user.id, alert_id=alert_id):
        audit.record(
            session,
            actor=f"staff:{user.id}",
            action="alert.acknowledge",
            patient_id=alert.patient_id if alert else None,
            outcome="denied",
            now=now,
            detail=f"alert={alert_id} via=sms not paged",
        )
        return f"Alert #{alert_id} was not paged to you. Nothing acknowledged."
    if alert.status != AlertStatus.OPEN:
        return f"Alert #{alert_id} was already {alert.status}."
    acknowledge(session, alert, actor_id=user.id, now=now, via="sms")
    return f"Alert #{alert_id} acknowledged by {user.display_name}. Thank you."


# --- the web process's sender ----------------------------------------------------------


@dataclass
class Pager:
    """One daemon thread that runs `run_due` whenever it is kicked. Kicks coalesce: any
    number of kicks during a run cause one more run, so a burst of red flags never queues
    a burst of runs; and runs start at most every `min_interval` seconds, so a stream of
    kicks costs the web worker a bounded share of its time. The tick still runs `run_due`
    for anything a kick missed."""

    run: Callable[[], object]
    min_interval: float = 0.2
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Pager:
        self._thread = threading.Thread(target=self._loop, name="coachbot-pager", daemon=True)
        self._thread.start()
        return self

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            started = time.monotonic()
            try:
                self.run()
            except Exception:
                # The tick pages anything missed here; the thread must outlive one failure.
                log.exception("pager run failed")
            # Kicks during the pause are kept (the event stays set) and run next.
            self._stop.wait(max(0.0, started + self.min_interval - time.monotonic()))
