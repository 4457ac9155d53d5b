"""Explicit builders for test data: every value a test depends on is visible at the call."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import (
    AdherenceRecord,
    Caregiver,
    CaregiverCheck,
    CaregiverLink,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
    TrackSchedule,
)

# Named instants for frozen time (all aware UTC).
MONDAY_0800_NEW_YORK = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
MONDAY_0830_NEW_YORK = dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC)
MONDAY_0900_NEW_YORK = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)
MONDAY_1300_NEW_YORK = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)

_phones = itertools.count(2001)
_sids = itertools.count(1)


def next_mobile() -> str:
    """A fresh valid US number in the 617-555 block."""
    return f"+1617555{next(_phones) % 10000:04d}"


def make_patient(
    session: Session,
    *,
    first_name: str = "Maya",
    phone: str | None = None,
    tz: str = "America/New_York",
    language: str = "en",
    status: PatientStatus = PatientStatus.ACTIVE,
    tracks: dict[str, str] | None = None,
    quiet: tuple[dt.time, dt.time] | None = None,
    caregiver: str | None = None,
    enrolled_at: dt.datetime = dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
) -> Patient:
    """An opted-in patient with the given track -> "HH:MM,HH:MM" schedules."""
    patient = Patient(
        first_name=first_name,
        phone_e164=phone or next_mobile(),
        timezone=tz,
        language=language,
        quiet_start=quiet[0] if quiet else None,
        quiet_end=quiet[1] if quiet else None,
        status=status,
        caregiver_phone_e164=caregiver,
        consent_at=enrolled_at,
        consent_method="test",
        opted_in_at=enrolled_at if status == PatientStatus.ACTIVE else None,
        enrolled_at=enrolled_at,
        updated_at=enrolled_at,
    )
    for track, times in (tracks or {"sleep": "08:30"}).items():
        patient.schedules.append(
            TrackSchedule(
                track=track, local_times=times, days_of_week="0123456", updated_at=enrolled_at
            )
        )
    session.add(patient)
    session.commit()
    return patient


def make_inbound(
    session: Session,
    *,
    body: str,
    received_at: dt.datetime,
    patient: Patient | None = None,
    from_e164: str | None = None,
    needs_reading: bool = True,
    is_proxy: bool = False,
) -> InboundMessage:
    """A stored inbound text; by default one the bot did not act on (the "To read" inbox)."""
    sender = from_e164 or (patient.phone_e164 if patient is not None else next_mobile())
    message = InboundMessage(
        provider_sid=f"SMtest{next(_sids):08d}",
        from_e164=sender,
        to_e164="+16175550100",
        body=body,
        patient_id=patient.id if patient is not None else None,
        is_proxy=is_proxy,
        outcome="free_text",
        received_at=received_at,
        needs_reading=needs_reading,
    )
    session.add(message)
    session.commit()
    return message


def make_nudge(
    session: Session,
    patient: Patient,
    *,
    due: dt.datetime,
    track: str = "sleep",
    state: NudgeState = NudgeState.PLANNED,
    sent_at: dt.datetime | None = None,
    reply_window_ends_at: dt.datetime | None = None,
    key: str | None = None,
    body: str | None = None,
    template_id: str | None = None,
    state_reason: str | None = None,
) -> Nudge:
    """A nudge due (and to be sent) at `due`, created then, in `state`; flushed so it has an
    id, committed with the caller's other rows."""
    nudge = Nudge(
        patient_id=patient.id,
        track=track,
        occurrence_key=key or f"{track}:{due.isoformat()}",
        due_at=due,
        send_at=due,
        state=state,
        state_reason=state_reason,
        sent_at=sent_at,
        reply_window_ends_at=reply_window_ends_at,
        rendered_body=body,
        template_id=template_id,
        created_at=due,
        updated_at=due,
    )
    session.add(nudge)
    session.flush()
    return nudge


def make_sent_nudge(
    session: Session,
    patient: Patient,
    *,
    sent_at: dt.datetime,
    window: dt.timedelta,
    track: str = "sleep",
    state: NudgeState = NudgeState.SENT,
    key: str | None = None,
    body: str | None = None,
) -> Nudge:
    """A nudge due and sent at `sent_at`, open for replies for `window` after it."""
    return make_nudge(
        session,
        patient,
        due=sent_at,
        track=track,
        state=state,
        sent_at=sent_at,
        reply_window_ends_at=sent_at + window,
        key=key,
        body=body,
    )


def make_outbound(
    session: Session,
    patient: Patient,
    *,
    created_at: dt.datetime,
    body: str = "Time for your sleep log",
    kind: str = "nudge",
    nudge: Nudge | None = None,
    backend: str = "console",
    provider_sid: str | None = None,
    delivery_status: str | None = None,
    error_code: str | None = None,
    segments: int = 1,
) -> OutboundMessage:
    """A text to the patient's phone, as the backend named recorded it; flushed."""
    message = OutboundMessage(
        patient_id=patient.id,
        to_e164=patient.phone_e164,
        body=body,
        kind=kind,
        nudge_id=nudge.id if nudge is not None else None,
        backend=backend,
        provider_sid=provider_sid,
        delivery_status=delivery_status,
        error_code=error_code,
        segments=segments,
        created_at=created_at,
    )
    session.add(message)
    session.flush()
    return message


def make_answer(
    session: Session,
    nudge: Nudge,
    *,
    recorded_at: dt.datetime,
    outcome: str = "done",
    value: float | None = None,
    unit: str | None = None,
    inbound: InboundMessage | None = None,
    is_proxy: bool = False,
) -> AdherenceRecord:
    """The adherence record of an answered nudge, on the nudge's track; flushed."""
    record = AdherenceRecord(
        patient_id=nudge.patient_id,
        nudge_id=nudge.id,
        track=nudge.track,
        outcome=outcome,
        value=value,
        unit=unit,
        inbound_message_id=inbound.id if inbound is not None else None,
        is_proxy=is_proxy,
        recorded_at=recorded_at,
    )
    session.add(record)
    session.flush()
    return record


def make_caregiver(
    session: Session,
    patient: Patient,
    *,
    phone: str | None = None,
    first_name: str = "Sam",
    language: str = "en",
    status: PatientStatus = PatientStatus.ACTIVE,
    tz: str | None = None,
    baseline: int | None = None,
    now: dt.datetime = dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
) -> Caregiver:
    """A caregiver linked to `patient` (opted in by default); an existing caregiver on the
    same number is linked to `patient` too, so one caregiver can watch several patients."""
    number = phone or next_mobile()
    caregiver = session.query(Caregiver).filter_by(phone_e164=number).one_or_none()
    if caregiver is None:
        caregiver = Caregiver(
            first_name=first_name,
            phone_e164=number,
            language=language,
            timezone=tz or patient.timezone,
            status=status,
            opted_in_at=now if status == PatientStatus.ACTIVE else None,
            invited_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(caregiver)
        session.flush()
    session.add(
        CaregiverLink(
            patient_id=patient.id,
            caregiver_id=caregiver.id,
            baseline_score=baseline,
            linked_at=now,
            linked_by="test",
        )
    )
    session.commit()
    return caregiver


def make_caregiver_check(
    session: Session,
    patient: Patient,
    caregiver: Caregiver,
    *,
    day: dt.date,
    score: int | None = None,
    concern: str | None = None,
    state: str | None = None,
    kind: str = "observation",
    items: int = 4,
    answered_at: dt.datetime | None = None,
) -> int:
    """A caregiver check about `patient` on local `day`, due at 18:00 UTC that day; answered
    (at 20:00 UTC unless `answered_at`) when a score or concern is given, else `state`
    ("sent" by default). Returns its id."""
    # Imported here so the builders' shared import block stays as the lead left it.
    from coachbot.models import CaregiverCheck

    due = dt.datetime.combine(day, dt.time(18), dt.UTC)
    answered = score is not None or concern is not None
    check = CaregiverCheck(
        patient_id=patient.id,
        caregiver_id=caregiver.id,
        kind=kind,
        local_date=day,
        items=items,
        due_at=due,
        state=state or ("answered" if answered else "sent"),
        sent_at=due,
        answered_at=(answered_at or due + dt.timedelta(hours=2)) if answered else None,
        score=score,
        concern=concern,
        created_at=due,
    )
    session.add(check)
    session.commit()
    return check.id


def make_sent_caregiver_check(
    session: Session,
    patient: Patient,
    caregiver: Caregiver,
    *,
    sent_at: dt.datetime,
    kind: str = "observation",
    items: int = 4,
) -> CaregiverCheck:
    """A check the tick sent to `caregiver` about `patient` at `sent_at`, not answered yet."""
    check = CaregiverCheck(
        patient_id=patient.id,
        caregiver_id=caregiver.id,
        kind=kind,
        local_date=sent_at.date(),
        items=items,
        due_at=sent_at,
        state="sent",
        sent_at=sent_at,
        created_at=sent_at,
    )
    session.add(check)
    session.commit()
    return check


def make_media_sample(
    session: Session,
    patient: Patient,
    *,
    root: Path,
    received_at: dt.datetime,
    caregiver: Caregiver | None = None,
    content: bytes | None = None,
) -> int:
    """A stored handwriting sample (a scribble PNG unless `content`), its file under `root`
    and the inbound MMS it came in; returns the sample's id. Committed."""
    from coachbot.services.demo_samples import scribble
    from coachbot.services.media_samples import keep_picture
    from coachbot.sms.media import FileMediaStore

    sender = caregiver.phone_e164 if caregiver is not None else patient.phone_e164
    text = make_inbound(
        session, body="", received_at=received_at, from_e164=sender, needs_reading=False
    )
    n = next(_sids)
    sample_id = keep_picture(
        session,
        FileMediaStore(root),
        inbound_message_id=text.id,
        patient_id=patient.id,
        caregiver_id=caregiver.id if caregiver is not None else None,
        content=content if content is not None else scribble(n, 0.1),
        received_at=received_at,
        local_date=received_at.astimezone(ZoneInfo(patient.timezone)).date(),
        sids=(f"MM{n:032x}", f"ME{n:032x}"),
    )
    session.commit()
    return sample_id


def make_delivered_day(
    session: Session,
    patient: Patient,
    *,
    due: dt.datetime,
    window: dt.timedelta,
    done: bool,
    answered_after: dt.timedelta,
    value: float | None = None,
    unit: str | None = None,
) -> Nudge:
    """One day of adherence history: a sleep nudge delivered at `due`, open for `window`,
    and, when `done`, answered "done" `answered_after` it (with `value` and `unit`)."""
    nudge = make_sent_nudge(
        session, patient, sent_at=due, window=window, state=NudgeState.DELIVERED
    )
    if done:
        make_answer(session, nudge, recorded_at=due + answered_after, value=value, unit=unit)
    return nudge
