"""The on-call rota: the explicit override, the weekly shifts, staff mobile numbers, and who
is on call at an instant (the rule itself is pure, in coachbot.domain.oncall)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.oncall import OnCall, Shift, on_call_at
from coachbot.domain.phones import InvalidPhoneNumber, mask_phone, parse_mobile
from coachbot.domain.states import Role
from coachbot.models import OnCallOverride, OnCallShift, StaffUser
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed
from coachbot.settings import Settings

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_OVERRIDE_ID = 1


def current_on_call(session: Session, settings: Settings, now: dt.datetime) -> OnCall | None:
    row = session.get(OnCallOverride, _OVERRIDE_ID)
    override = OnCall(row.primary_id, row.backup_id, "override") if row is not None else None
    shifts = [
        Shift(s.weekday, s.start_time, s.end_time, s.primary_id, s.backup_id)
        for s in session.scalars(select(OnCallShift).order_by(OnCallShift.id))
    ]
    who = on_call_at(now, override=override, shifts=shifts, zone=ZoneInfo(settings.clinic_timezone))
    if who is None:
        return None
    # A deactivated account pages no one: then nobody is on call, and the pages say so.
    active = set(
        session.scalars(
            select(StaffUser.id).where(
                StaffUser.id.in_([i for i in (who.primary_id, who.backup_id) if i is not None]),
                StaffUser.is_active.is_(True),
            )
        )
    )
    if who.primary_id not in active:
        return None
    return OnCall(who.primary_id, who.backup_id if who.backup_id in active else None, who.source)


def _on_call_user(session: Session, email: str, field: str) -> StaffUser:
    """An active clinician: pages link to patient records, which only clinicians open."""
    email = email.strip().lower()
    user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email))
    if user is None:
        raise ValidationFailed({field: f"no staff account {email}"})
    if not user.is_active:
        raise ValidationFailed({field: f"{email} is deactivated"})
    if user.role != Role.CLINICIAN:
        raise ValidationFailed({field: f"{email} is {user.role}; only a clinician can be on call"})
    return user


def _pair(session: Session, primary_email: str, backup_email: str | None) -> tuple[int, int | None]:
    primary = _on_call_user(session, primary_email, "email")
    backup = _on_call_user(session, backup_email, "backup_email") if backup_email else None
    if backup is not None and backup.id == primary.id:
        raise ValidationFailed({"backup_email": "the backup must be someone else"})
    return primary.id, backup.id if backup else None


def set_override(
    sessions: sessionmaker[Session],
    *,
    primary_email: str,
    backup_email: str | None,
    now: dt.datetime,
    actor: str,
) -> OnCallOverride:
    """Who is on call from now until changed or cleared; beats the weekly shifts."""
    with sessions.begin() as session:
        primary_id, backup_id = _pair(session, primary_email, backup_email)
        row = session.get(OnCallOverride, _OVERRIDE_ID)
        if row is None:
            row = OnCallOverride(id=_OVERRIDE_ID, primary_id=primary_id, set_at=now, set_by=actor)
            session.add(row)
        row.primary_id, row.backup_id, row.set_at, row.set_by = primary_id, backup_id, now, actor
        audit.record(
            session,
            actor=actor,
            action="oncall.set",
            now=now,
            detail=f"primary={primary_id} backup={backup_id}",
        )
    return row


def clear_override(sessions: sessionmaker[Session], *, now: dt.datetime, actor: str) -> bool:
    """Back to the weekly shifts; False when there was no override."""
    with sessions.begin() as session:
        cleared = session.execute(delete(OnCallOverride).where(OnCallOverride.id == _OVERRIDE_ID))
        audit.record(session, actor=actor, action="oncall.clear", now=now)
    return bool(getattr(cleared, "rowcount", 0))


def _parse_time(raw: str, field: str) -> dt.time:
    try:
        value = dt.time.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed({field: f"{raw!r} is not a time such as 08:00"}) from None
    if value.second or value.microsecond or value.tzinfo is not None:
        raise ValidationFailed({field: "a local time in whole minutes, such as 08:00"})
    return value


def add_shift(
    sessions: sessionmaker[Session],
    *,
    weekday: int,
    start: str,
    end: str,
    primary_email: str,
    backup_email: str | None,
    now: dt.datetime,
    actor: str,
) -> OnCallShift:
    """A weekly shift in CLINIC_TIMEZONE; an end at or before the start runs overnight."""
    if not 0 <= weekday <= 6:
        raise ValidationFailed({"weekday": "a weekday from 0 (Monday) to 6 (Sunday)"})
    start_time, end_time = _parse_time(start, "start"), _parse_time(end, "end")
    with sessions.begin() as session:
        primary_id, backup_id = _pair(session, primary_email, backup_email)
        shift = OnCallShift(
            weekday=weekday,
            start_time=start_time,
            end_time=end_time,
            primary_id=primary_id,
            backup_id=backup_id,
            updated_at=now,
            updated_by=actor,
        )
        session.add(shift)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="oncall.shift_add",
            now=now,
            detail=f"shift={shift.id} day={weekday} {start_time:%H:%M}-{end_time:%H:%M}"
            f" primary={primary_id} backup={backup_id}",
        )
    return shift


def delete_shift(
    sessions: sessionmaker[Session], shift_id: int, *, now: dt.datetime, actor: str
) -> bool:
    with sessions.begin() as session:
        deleted = session.execute(delete(OnCallShift).where(OnCallShift.id == shift_id))
        if not getattr(deleted, "rowcount", 0):
            return False  # nothing deleted, nothing audited: the transaction ends empty
        audit.record(
            session, actor=actor, action="oncall.shift_delete", now=now, detail=f"shift={shift_id}"
        )
    return True


def staff_phone(
    session: Session, raw_phone: str | None, *, default_region: str, user_id: int | None = None
) -> str | None:
    """The E.164 form of a staff mobile (None when empty), or ValidationFailed on `phone`:
    not a mobile, or another account's (an ACK must name one person)."""
    if not raw_phone or not raw_phone.strip():
        return None
    try:
        phone = parse_mobile(raw_phone, default_region)
    except InvalidPhoneNumber as exc:
        raise ValidationFailed({"phone": str(exc)}) from None
    query = select(StaffUser.id).where(StaffUser.phone_e164 == phone)
    if user_id is not None:
        query = query.where(StaffUser.id != user_id)
    if session.scalar(query) is not None:
        raise ValidationFailed({"phone": "another staff account has this number"})
    return phone


def set_staff_phone(
    sessions: sessionmaker[Session],
    user_id: int,
    raw_phone: str | None,
    *,
    default_region: str,
    now: dt.datetime,
    actor: str,
) -> StaffUser | None:
    """The mobile a page goes to and an ACK is accepted from; empty removes it. The account,
    or None when there is no such account."""
    with sessions.begin() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            return None
        phone = staff_phone(session, raw_phone, default_region=default_region, user_id=user.id)
        if phone == user.phone_e164:
            return user
        user.phone_e164 = phone
        audit.record(
            session,
            actor=actor,
            action="staff.phone",
            now=now,
            detail=f"user={user.id} phone={mask_phone(phone)}",
        )
    return user


@dataclass(frozen=True)
class OnCallPerson:
    id: int
    email: str
    display_name: str
    has_phone: bool


@dataclass(frozen=True)
class RotaView:
    now_on_call: OnCall | None
    primary: OnCallPerson | None
    backup: OnCallPerson | None
    override: OnCallOverride | None
    shifts: list[OnCallShift]
    timezone: str

    def as_json(self) -> dict[str, object]:
        def person(p: OnCallPerson | None) -> dict[str, object] | None:
            if p is None:
                return None
            return {"id": p.id, "email": p.email, "name": p.display_name, "sms": p.has_phone}

        return {
            "on_call_now": self.now_on_call is not None,
            "source": self.now_on_call.source if self.now_on_call else None,
            "primary": person(self.primary),
            "backup": person(self.backup),
            "timezone": self.timezone,
            "shifts": [
                {
                    "id": s.id,
                    "weekday": WEEKDAYS[s.weekday],
                    "start": f"{s.start_time:%H:%M}",
                    "end": f"{s.end_time:%H:%M}",
                    "primary_id": s.primary_id,
                    "backup_id": s.backup_id,
                }
                for s in self.shifts
            ],
        }


def _person(session: Session, user_id: int | None) -> OnCallPerson | None:
    user = session.get(StaffUser, user_id) if user_id is not None else None
    if user is None:
        return None
    return OnCallPerson(user.id, user.email, user.display_name, user.phone_e164 is not None)


def rota(session: Session, settings: Settings, now: dt.datetime) -> RotaView:
    who = current_on_call(session, settings, now)
    return RotaView(
        now_on_call=who,
        primary=_person(session, who.primary_id if who else None),
        backup=_person(session, who.backup_id if who else None),
        override=session.get(OnCallOverride, _OVERRIDE_ID),
        shifts=list(
            session.scalars(
                select(OnCallShift).order_by(
                    OnCallShift.weekday, OnCallShift.start_time, OnCallShift.id
                )
            )
        ),
        timezone=settings.clinic_timezone,
    )


def nobody_on_call(session: Session, settings: Settings, now: dt.datetime) -> bool:
    """For the loud warnings on the dashboard, the console and delivery health."""
    return current_on_call(session, settings, now) is None
