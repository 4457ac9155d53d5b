"""Ninety days of a clinic, played through the real pipeline at frozen instants.

Nothing here writes a nudge, an adherence record, a message or an alert itself: patients are
enrolled by the enrolment service, every text they send (YES, answers, red flags, questions)
and every ACK the on-call sends goes through `handle_inbound` exactly as `coachbot reply`
sends it, and time moves only by `run_clock_tick` at the instants where something is due.
So the demo shows what the product really does with such a history, and any change to the
pipeline shows up in the demo too.

The clock steps from one instant that matters to the next: each scheduled nudge (from the
same calendar code the planner uses) and each planned send off the schedule (follow-ups,
deferrals); texts from personas come in between. Ticking every minute of 90 days would take
hours; ticking only where a nudge is due keeps it to some 600 ticks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain import schedule as sched
from coachbot.domain.states import AlertKind, AlertStatus, NudgeState
from coachbot.models import Alert, Nudge, Patient, StaffUser
from coachbot.services.alerts import AlertActionRefused, resolve_alert
from coachbot.services.demo_cast import CAST, Behaviour, Behaviourist, Persona, RedFlagText
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient
from coachbot.services.inbound import InboundSms, handle_inbound
from coachbot.services.paging import run_due as run_paging
from coachbot.services.schedules import domain_schedule
from coachbot.services.tick import run_clock_tick
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway

_BEGINNING = dt.datetime.min.replace(tzinfo=dt.UTC)

HISTORY = dt.timedelta(days=90)
_ENROL_AT = dt.time(10, 15)  # local: inside the send window, so the welcome goes at once
_YES_AFTER = dt.timedelta(minutes=25)
_ACK_AFTER = dt.timedelta(minutes=6)
_RESOLVE_AFTER = dt.timedelta(hours=3)
# Alerts older than this were dealt with at the next day's rounds; newer ones stay open, so
# the triage list and the alerts queue show what a clinic sees on a real morning.
_ROUNDS_AGE = dt.timedelta(days=4)
_ROUNDS_NOTE = "Reviewed at rounds; spoke with the patient, plan unchanged."


@dataclass(frozen=True)
class HistoryReport:
    patients: int
    ticks: int
    texts_in: int


@dataclass
class _Sim:
    session_factory: sessionmaker[Session]
    gateway: SmsGateway
    library: MessageLibrary
    settings: Settings
    clinician: StaffUser
    end: dt.datetime
    events: list[tuple[dt.datetime, int, Callable[[dt.datetime], None]]] = field(
        default_factory=list
    )
    behaviour: dict[int, Behaviourist] = field(default_factory=dict)  # by patient id
    tick_instants: list[dt.datetime] = field(default_factory=list)  # a heap
    next_planned: dt.datetime | None = None  # the earliest planned send, as of the last tick
    clock: dt.datetime = _BEGINNING  # the last instant played
    ticks: int = 0
    texts_in: int = 0
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def at(self, when: dt.datetime, action: Callable[[dt.datetime], None]) -> None:
        if when < self.clock:
            raise ValueError(f"a demo event at {when} is before {self.clock}, already played")
        if when <= self.end:
            heapq.heappush(self.events, (when, next(self._seq), action))

    # --- the pipeline's entry points ------------------------------------------------------

    def text(self, phone: str, body: str, when: dt.datetime) -> None:
        sms = InboundSms(
            provider_sid=f"SMdemo{self.texts_in:06d}{phone[-4:]}",
            from_number=phone,
            to_number=self.settings.twilio_from_number or self.settings.clinic_phone,
            body=body,
        )
        handle_inbound(self.session_factory, self.library, self.settings, sms, when)
        self.texts_in += 1

    def tick(self, when: dt.datetime) -> None:
        run_clock_tick(self.session_factory, self.gateway, self.library, self.settings, when)
        self.ticks += 1
        self._answer_what_was_sent(when)
        self._look_ahead(when)

    # --- the story ------------------------------------------------------------------------

    def enrol(self, persona: Persona, when: dt.datetime) -> None:
        request = EnrollmentRequest(
            first_name=persona.first_name,
            phone=persona.phone,
            timezone=persona.timezone,
            language=persona.language,
            tracks=persona.tracks,
            track_times=persona.times,
            clinician_email=self.clinician.email,
            consent="verbal consent in clinic (demo)",
            checkin=persona.checkin,
            homework=persona.homework,
        )
        patient = enroll_patient(
            self.session_factory,
            self.gateway,
            self.library,
            self.settings,
            request,
            now=when,
            actor="demo",
        )
        patient_id = patient.id
        self.behaviour[patient_id] = Behaviourist(persona)
        if persona.behaviour is Behaviour.PENDING:
            return  # the welcome went; they have not answered it
        yes = "SI" if persona.language == "es" else "YES"
        self.at(when + _YES_AFTER, partial(self._opt_in, persona.phone, yes))
        for flag in persona.red_flags:
            self.at(self.end - dt.timedelta(days=flag.days_ago), self._red_flag(persona, flag))
        for days_ago, body in persona.free_texts:
            self.at(
                self.end - dt.timedelta(days=days_ago),
                partial(self.text, persona.phone, body),
            )

    def _opt_in(self, phone: str, yes: str, when: dt.datetime) -> None:
        self.text(phone, yes, when)
        self.plan_ticks(phone)

    def _red_flag(self, persona: Persona, flag: RedFlagText) -> Callable[[dt.datetime], None]:
        def send(when: dt.datetime) -> None:
            self.text(persona.phone, flag.text, when)
            # As `coachbot reply` and the web process do: the pager runs right after.
            run_paging(self.session_factory, self.gateway, self.settings, when)
            alert_id = self._latest_red_flag(persona.phone)
            if flag.acknowledged_by_sms and self.clinician.phone_e164:
                phone = self.clinician.phone_e164
                self.at(when + _ACK_AFTER, partial(self.text, phone, f"ACK {alert_id}"))
            if flag.resolved_note:
                note = flag.resolved_note
                self.at(when + _RESOLVE_AFTER, partial(self._resolve, alert_id, note))

        return send

    def _latest_red_flag(self, phone: str) -> int:
        with self.session_factory() as session:
            alert_id = session.scalar(
                select(Alert.id)
                .join(Patient, Patient.id == Alert.patient_id)
                .where(Patient.phone_e164 == phone, Alert.kind == AlertKind.RED_FLAG)
                .order_by(Alert.id.desc())
                .limit(1)
            )
        if alert_id is None:
            raise RuntimeError(f"the demo's red flag from …{phone[-4:]} raised no alert")
        return alert_id

    def _resolve(self, alert_id: int, note: str, when: dt.datetime) -> None:
        # Already resolved (the story's rounds came first): nothing is left to do.
        with contextlib.suppress(AlertActionRefused):
            resolve_alert(
                self.session_factory, alert_id, actor_id=self.clinician.id, now=when, note=note
            )

    def _answer_what_was_sent(self, when: dt.datetime) -> None:
        with self.session_factory() as session:
            sent = session.execute(
                select(Nudge.patient_id, Nudge.track).where(
                    Nudge.sent_at == when, Nudge.state == NudgeState.SENT
                )
            ).all()
        for patient_id, track in sent:
            persona = self.behaviour.get(patient_id)
            if persona is None:
                continue
            answer = persona.answer(track, (self.end - when) / dt.timedelta(days=1))
            if answer is not None:
                phone, body = persona.persona.phone, answer.body
                self.at(when + answer.delay, partial(self.text, phone, body))

    def plan_ticks(self, phone: str) -> None:
        """Adds every instant the patient's schedules fire, from now to the end, computed by
        the same calendar code the planner uses: the clock must tick there."""
        with self.session_factory() as session:
            patient = session.scalars(select(Patient).where(Patient.phone_e164 == phone)).one()
            zone = ZoneInfo(patient.timezone)
            enrolled_on = _aware(patient.enrolled_at).astimezone(zone).date()
            for row in patient.schedules:
                for occurrence in sched.occurrences_between(
                    domain_schedule(row), zone, self.clock, self.end, enrolled_on=enrolled_on
                ):
                    heapq.heappush(self.tick_instants, occurrence.due_at)

    def next_tick(self, after: dt.datetime) -> dt.datetime:
        """The next instant the clock has work: a scheduled nudge, or a planned send that
        is not on a schedule (a follow-up, a nudge deferred out of quiet hours). A reply
        window that closes in between is closed by that tick, as after any pause."""
        while self.tick_instants and self.tick_instants[0] <= after:
            heapq.heappop(self.tick_instants)
        candidates = [self.end, *self.tick_instants[:1]]
        if self.next_planned is not None and self.next_planned > after:
            candidates.append(self.next_planned)
        return min(candidates)

    def _look_ahead(self, after: dt.datetime) -> None:
        # Only a tick plans nudges (texts never do in this story), so one look per tick.
        with self.session_factory() as session:
            planned = session.scalar(
                select(func.min(Nudge.send_at)).where(
                    Nudge.state == NudgeState.PLANNED, Nudge.send_at > after
                )
            )
        self.next_planned = _aware(planned) if planned is not None else None

    def run(self) -> None:
        """Plays events and ticks in time order; a persona's text at a tick's very instant
        comes first, as a reply posted before the tick would."""
        while True:
            tick_at = self.next_tick(self.clock)
            if self.events and self.events[0][0] <= tick_at:
                when, _, action = heapq.heappop(self.events)
                self.clock = when
                action(when)
                continue
            if tick_at >= self.end:
                break
            self.clock = tick_at
            self.tick(tick_at)
        self.clock = self.end
        self.tick(self.end)

    def rounds(self) -> None:
        """The clinician's rounds: every alert older than `_ROUNDS_AGE` was resolved the day
        after it was raised, through the same service as the alerts page."""
        with self.session_factory() as session:
            old = session.execute(
                select(Alert.id, Alert.created_at).where(
                    Alert.status != AlertStatus.RESOLVED,
                    Alert.created_at < self.end - _ROUNDS_AGE,
                )
            ).all()
        # One transaction per alert, as a clinician resolving them one by one on the page.
        for alert_id, created_at in old:
            resolve_alert(
                self.session_factory,
                alert_id,
                actor_id=self.clinician.id,
                now=_aware(created_at) + dt.timedelta(days=1),
                note=_ROUNDS_NOTE,
            )


def _aware(instant: dt.datetime) -> dt.datetime:
    # SQLite hands aggregates (MIN) back without the column's type, hence without a zone.
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def enrolment_instant(persona: Persona, end: dt.datetime) -> dt.datetime:
    zone = ZoneInfo(persona.timezone)
    day = end.astimezone(zone).date() - dt.timedelta(days=persona.enrolled_days_ago)
    local = dt.datetime.combine(day, _ENROL_AT, tzinfo=zone)
    return min(local.astimezone(dt.UTC), end)


def play_history(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    clinician: StaffUser,
    end: dt.datetime,
    cast: tuple[Persona, ...] = CAST,
) -> HistoryReport:
    """Enrols the cast at their enrolment days and plays their texts and the clock up to
    `end` (the real now), then the clinician's rounds."""
    sim = _Sim(session_factory, gateway, library, settings, clinician, end)
    for persona in cast:
        sim.at(enrolment_instant(persona, end), partial(sim.enrol, persona))
    sim.run()
    sim.rounds()
    return HistoryReport(patients=len(cast), ticks=sim.ticks, texts_in=sim.texts_in)
