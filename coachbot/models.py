"""SQLAlchemy 2.0 typed models: the store behind every layer.

Instants are aware UTC (`UTCDateTime` refuses naive values). Local wall times for
schedules live beside an IANA zone and are converted per occurrence in the domain layer.
Defaults that carry time are set by the services from an explicit `now`, never by the
database, so frozen-time tests see what they froze.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from coachbot.db import UTCDateTime
from coachbot.domain.states import (
    AlertStatus,
    NudgeState,
    PatientStatus,
)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]
    # Paging (migration 0010): the mobile a page goes to and an ACK is accepted from.
    phone_e164: Mapped[str | None] = mapped_column(String(16), unique=True, index=True)
    # Migration 0012: the zone the dashboard shows this person's times in; NULL is the
    # clinic's (CLINIC_TIMEZONE).
    timezone: Mapped[str | None] = mapped_column(String(64))


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    phone_e164: Mapped[str] = mapped_column(String(16), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    quiet_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_end: Mapped[dt.time | None] = mapped_column(Time)
    status: Mapped[str] = mapped_column(String(20), default=PatientStatus.PENDING_CONSENT)
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    checkin_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consent record: what the clinician attested at enrolment, and the patient's own YES.
    consent_at: Mapped[dt.datetime]
    consent_method: Mapped[str] = mapped_column(String(200))
    consent_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    opted_in_at: Mapped[dt.datetime | None]
    opted_out_at: Mapped[dt.datetime | None]
    enrolled_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    # Set while the welcome (the opt-in request) waits for the patient's first permitted
    # instant (quiet hours, the send window); the clock tick sends it and clears the mark.
    welcome_due_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    # Who paused the patient: "patient" (a revocation in their own words), "clinician" or
    # "system" (a number that cannot receive texts). Only the patient restarts their own pause.
    paused_by: Mapped[str | None] = mapped_column(String(20))
    # The close-watch weeks (issue #16): from this local date, for this many days (NULL: the
    # programme's default length). Outside them the caregiver gets no daily check.
    close_watch_from: Mapped[dt.date | None] = mapped_column(Date)
    close_watch_days: Mapped[int | None] = mapped_column(Integer)

    schedules: Mapped[list[TrackSchedule]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="TrackSchedule.track"
    )
    homework: Mapped[list[HomeworkItem]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="HomeworkItem.id"
    )


class TrackSchedule(Base):
    __tablename__ = "track_schedules"
    __table_args__ = (UniqueConstraint("patient_id", "track"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    track: Mapped[str] = mapped_column(String(20))
    # Local wall times as "HH:MM" separated by commas, and days as digits Monday=0..Sunday=6:
    # small, readable in SQL, and identical on SQLite and PostgreSQL.
    local_times: Mapped[str] = mapped_column(String(200))
    days_of_week: Mapped[str] = mapped_column(String(7), default="0123456")
    start_date: Mapped[dt.date | None]
    end_date: Mapped[dt.date | None]
    # Phases relative to enrolment, e.g. "0-28:0123456;28-:024" (days since enrolment, end
    # exclusive, then the days of week); empty means days_of_week applies throughout.
    phases: Mapped[str | None] = mapped_column(String(200))
    # Set when an operator gave this patient their own schedule: program default changes
    # then leave it alone.
    is_custom: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Occurrences before this instant already have rows; planning resumes from here, so a
    # tick does not recompute every patient's calendar. Cleared when the schedule changes.
    planned_through: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]

    patient: Mapped[Patient] = relationship(back_populates="schedules")


class HomeworkItem(Base):
    __tablename__ = "homework_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[dt.datetime]

    patient: Mapped[Patient] = relationship(back_populates="homework")


class OutboundMessage(Base):
    """Every SMS we send, whatever the backend: the timeline and the console backend's record."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        Index("ix_outbound_patient_created", "patient_id", "created_at"),
        # The reply-loop guard counts recent replies to one number on every inbound text.
        Index("ix_outbound_to_created", "to_e164", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    to_e164: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # welcome | nudge | reply | system
    template_id: Mapped[str | None] = mapped_column(String(60))
    variant_id: Mapped[str | None] = mapped_column(String(60))
    nudge_id: Mapped[int | None] = mapped_column(ForeignKey("nudges.id"), index=True)
    backend: Mapped[str] = mapped_column(String(20))  # console | twilio | twiml
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    delivery_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(10))
    segments: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime]


class Nudge(Base):
    """One planned occurrence of a track's message, with its delivery state machine."""

    __tablename__ = "nudges"
    __table_args__ = (
        # The uniqueness key per occurrence: replays and concurrent planners add nothing.
        UniqueConstraint("patient_id", "occurrence_key", name="uq_nudges_occurrence"),
        Index("ix_nudges_state_send_at", "state", "send_at"),
        Index("ix_nudges_patient_sent", "patient_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    track: Mapped[str] = mapped_column(String(20))
    occurrence_key: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[dt.datetime]
    send_at: Mapped[dt.datetime]
    state: Mapped[str] = mapped_column(String(20), default=NudgeState.PLANNED)
    state_reason: Mapped[str | None] = mapped_column(String(60))
    lease_expires_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    template_id: Mapped[str | None] = mapped_column(String(60))
    variant_id: Mapped[str | None] = mapped_column(String(60))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    sent_at: Mapped[dt.datetime | None]
    reply_window_ends_at: Mapped[dt.datetime | None]
    # What went on the wire, kept from the moment the row enters `sending` so an ambiguous
    # send can be matched against the provider's records by body, and paced by segments.
    rendered_body: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None] = mapped_column(Integer)
    # Reconciliation resends a nudge proven absent at the provider at most once.
    resent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    patient: Mapped[Patient] = relationship()


class ProgramDefault(Base):
    """The programme's schedule per track, changed by operators; new and non-custom
    schedules follow it."""

    __tablename__ = "program_defaults"

    track: Mapped[str] = mapped_column(String(20), primary_key=True)
    local_times: Mapped[str] = mapped_column(String(200))
    days_of_week: Mapped[str] = mapped_column(String(7))
    phases: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str] = mapped_column(String(120))


class DispatchConfig(Base):
    """The one row of dispatch settings operators may change without a restart."""

    __tablename__ = "dispatch_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    window_start: Mapped[dt.time] = mapped_column(Time)
    window_end: Mapped[dt.time] = mapped_column(Time)
    daily_cap: Mapped[int] = mapped_column(Integer)
    max_concurrency: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str] = mapped_column(String(120))


class SenderPace(Base):
    """Segments per second a sender (a From number or a Messaging Service) may use."""

    __tablename__ = "sender_paces"

    sender: Mapped[str] = mapped_column(String(40), primary_key=True)
    segments_per_second: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str] = mapped_column(String(120))


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_patient_received", "patient_id", "received_at"),
        Index("ix_inbound_to_read", "needs_reading", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_e164: Mapped[str] = mapped_column(String(32))
    to_e164: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    num_media: Mapped[int] = mapped_column(Integer, default=0)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    is_proxy: Mapped[bool] = mapped_column(Boolean, default=False)  # sent by the caregiver
    nudge_id: Mapped[int | None] = mapped_column(ForeignKey("nudges.id"))
    outcome: Mapped[str | None] = mapped_column(String(40))  # how the pipeline handled it
    # The TwiML answer, kept so a retried webhook gets exactly the same reply.
    response_twiml: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime]
    # A text the bot did not act on (free text, an unclear answer): a person must read it, and
    # the "To read" inbox lists it until someone marks it read.
    needs_reading: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    read_at: Mapped[dt.datetime | None]
    read_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # The caregiver who wrote it (issue #16), so the thread can mark caregiver answers. No FK:
    # SQLite adds a column with a constraint only by copying the table (see 0013).
    caregiver_id: Mapped[int | None] = mapped_column(Integer)


class DeliveryEvent(Base):
    __tablename__ = "delivery_events"
    __table_args__ = (UniqueConstraint("provider_sid", "status", name="uq_delivery_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(10))
    received_at: Mapped[dt.datetime]


class AdherenceRecord(Base):
    __tablename__ = "adherence_records"
    __table_args__ = (
        UniqueConstraint("nudge_id", name="uq_adherence_nudge"),
        Index("ix_adherence_patient_track", "patient_id", "track", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    nudge_id: Mapped[int | None] = mapped_column(ForeignKey("nudges.id"))
    track: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(20))
    is_proxy: Mapped[bool] = mapped_column(Boolean, default=False)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    recorded_at: Mapped[dt.datetime]


class ReportedValue(Base):
    """A number a reply reported that a later number for the same nudge replaced ("7 hours",
    then "actually 8"): the adherence record holds the latest, these rows every earlier one,
    so no reported value is ever lost. A later answer without a number ("done") keeps the
    record's number in place."""

    __tablename__ = "reported_values"
    __table_args__ = (
        Index("ix_reported_values_patient_track", "patient_id", "track", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    nudge_id: Mapped[int | None] = mapped_column(ForeignKey("nudges.id"), index=True)
    track: Mapped[str] = mapped_column(String(20))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(20))
    is_proxy: Mapped[bool] = mapped_column(Boolean, default=False)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    recorded_at: Mapped[dt.datetime]


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=AlertStatus.OPEN)
    # Codes, not message text: the clinician opens the timeline for the words.
    detail: Mapped[str | None] = mapped_column(String(200))
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    created_at: Mapped[dt.datetime]
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[dt.datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Append-only: updates and deletes are refused here and by database triggers."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_patient_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(120))  # "staff:3", "cli", "patient", "system"
    action: Mapped[str] = mapped_column(String(60))
    patient_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the log outlives records
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    detail: Mapped[str | None] = mapped_column(String(500))


# The one clock that ticks today (its heartbeat row's name).
DISPATCH_CLOCK = "dispatch"


class ClockHeartbeat(Base):
    """When each clock last ticked: delivery health alarms on a silent clock."""

    __tablename__ = "clock_heartbeats"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_tick_at: Mapped[dt.datetime]
    last_summary: Mapped[str | None] = mapped_column(String(500))


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_audit_change(_mapper: Mapper[AuditEntry], _connection: object, _target: object) -> None:
    raise AppendOnlyError("audit_log is append-only")


# --- Dashboard and sign-in (issue: clinician dashboard) ---------------------------------


class StaffSession(Base):
    """A signed-in browser. The cookie carries only a random token; the row decides whether it
    is still good, so logout and the idle timeout end it for every copy of the cookie."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the cookie token: a database read does not hand out live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(20))  # logout | idle | deactivated


class LoginAttempt(Base):
    """Failed sign-ins, counted per email and per client address across every worker."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]


class ApiToken(Base):
    """A per-user bearer token for /api/v1; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown so a person can tell tokens apart
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


# The dashboard reads each patient's nudges by due date (adherence over 7/30/90 days). The
# indexes carry every column those reads touch, so SQLite answers from the index alone
# instead of visiting a table row per nudge (migration 0006).
Index(
    "ix_nudges_patient_due",
    Nudge.patient_id,
    Nudge.due_at,
    Nudge.track,
    Nudge.state,
    Nudge.reply_window_ends_at,
    Nudge.occurrence_key,
)
Index(
    "ix_adherence_nudge_outcome",
    AdherenceRecord.nudge_id,
    AdherenceRecord.outcome,
    AdherenceRecord.recorded_at,
)
Index(
    "ix_adherence_patient_outcome",
    AdherenceRecord.patient_id,
    AdherenceRecord.outcome,
    AdherenceRecord.recorded_at,
    AdherenceRecord.track,
)


# --- Operator console (issue: operator console) -----------------------------------------


class Program(Base):
    """A named set of per-track defaults patients are assigned to. Its settings live in
    versions; `current_version` is bumped with a conditional UPDATE, so two operators saving
    the same programme from the same version cannot both win."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class ProgramVersion(Base):
    """Every saved state of a programme, never changed: the history restores come from."""

    __tablename__ = "program_versions"
    __table_args__ = (UniqueConstraint("program_id", "version", name="uq_program_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # JSON: {"tracks": {track: {times, days, phases, reply_window_minutes, followup,
    # quiet_policy}}}; one document per version keeps a restore a single copy.
    settings_json: Mapped[str] = mapped_column(Text)
    change_summary: Mapped[str] = mapped_column(String(500))
    restored_from: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(120))


class ProgramAssignment(Base):
    """Which programme a patient follows; a patient without a row follows "standard"."""

    __tablename__ = "program_assignments"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    assigned_at: Mapped[dt.datetime]
    assigned_by: Mapped[str] = mapped_column(String(120))


class GlobalSetting(Base):
    """Operator settings with no other home, one row per key (e.g. the staleness limit)."""

    __tablename__ = "global_settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str] = mapped_column(String(120))


# --- On-call paging (issue #13 item 6, migration 0010) ----------------------------------


class OnCallOverride(Base):
    """Who is on call now, set explicitly (`coachbot oncall set`); while the one row exists
    it beats the weekly shifts. `--clear` deletes it."""

    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1: one override at a time
    primary_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    set_at: Mapped[dt.datetime]
    set_by: Mapped[str] = mapped_column(String(120))


class OnCallShift(Base):
    """A weekly shift in the clinic's time zone: weekday (Monday=0) and local wall times.
    An end at or before the start runs past midnight into the next day."""

    __tablename__ = "oncall_shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[dt.time] = mapped_column(Time)
    end_time: Mapped[dt.time] = mapped_column(Time)
    primary_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str] = mapped_column(String(120))


class Page(Base):
    """One page of one alert to one person by one channel. The row is INSERTed and committed
    before the network call; its unique key makes a second sender's INSERT fail, so a page
    is never sent twice for the same alert and attempt."""

    __tablename__ = "pages"
    __table_args__ = (
        UniqueConstraint("alert_id", "attempt", "recipient_id", "channel", name="uq_pages_key"),
        Index("ix_pages_state", "state"),
        Index("ix_pages_recipient_created", "recipient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)  # 0 at once, then one per re-page
    recipient_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    role: Mapped[str] = mapped_column(String(10))  # primary | backup
    channel: Mapped[str] = mapped_column(String(10))  # sms | email
    state: Mapped[str] = mapped_column(String(20))  # sending | sent | failed | gave_up
    tries: Mapped[int] = mapped_column(Integer, default=1)
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    # A provider code or exception class, never a body or a number.
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]


# --- Consent by phone number (issue #14) ------------------------------------------------


class SuppressedNumber(Base):
    """A number nothing may be sent to (a STOP keyword, the carrier's 21610), whichever
    record it belongs to; only a START / UNSTOP / YES from it removes the row. The history
    of additions and removals is in `ConsentEvent`."""

    __tablename__ = "suppressed_numbers"

    number_e164: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))  # keyword | carrier_21610 | migrated ...
    patient_id: Mapped[int | None] = mapped_column(Integer)  # no FK: outlives the record
    suppressed_at: Mapped[dt.datetime]


class ConsentEvent(Base):
    """The consent ledger, append-only (here and by database triggers, as the audit log):
    every opt-in, opt-out, revocation, resume, keyword, 21610 and suppression change, with
    the exact words that caused it."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_patient_at", "patient_id", "at"),
        Index("ix_consent_events_number_at", "number_e164", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    number_e164: Mapped[str | None] = mapped_column(String(32))
    patient_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the ledger outlives records
    event: Mapped[str] = mapped_column(String(40))
    source: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(120))
    text: Mapped[str | None] = mapped_column(Text)


@event.listens_for(ConsentEvent, "before_update")
@event.listens_for(ConsentEvent, "before_delete")
def _refuse_consent_change(
    _mapper: Mapper[ConsentEvent], _connection: object, _target: object
) -> None:
    raise AppendOnlyError("consent_events is append-only")


# --- end consent -------------------------------------------------------------------------


# --- Caregivers and the close-watch weeks (issue #16, migration 0013) -------------------


class Caregiver(Base):
    """A caregiver is a participant with their own consent: their own double opt-in (an
    invitation, then their YES), their own STOP, language, zone and quiet hours. One caregiver
    may watch several patients (`CaregiverLink`)."""

    __tablename__ = "caregivers"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    phone_e164: Mapped[str] = mapped_column(String(16), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64))
    quiet_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_end: Mapped[dt.time | None] = mapped_column(Time)
    # pending_consent (invited, no YES yet) | active | opted-out; the values of PatientStatus.
    status: Mapped[str] = mapped_column(String(20), default=PatientStatus.PENDING_CONSENT)
    # Set while the invitation waits for a permitted instant; the tick sends it and clears it.
    invite_due_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    invited_at: Mapped[dt.datetime | None]
    opted_in_at: Mapped[dt.datetime | None]
    opted_out_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    links: Mapped[list[CaregiverLink]] = relationship(
        back_populates="caregiver",
        cascade="all, delete-orphan",
        order_by="CaregiverLink.patient_id",
    )


class CaregiverLink(Base):
    """Which patients a caregiver watches, and the caregiver's own first count for each
    (their baseline: a later count below it is a concern)."""

    __tablename__ = "caregiver_links"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    caregiver_id: Mapped[int] = mapped_column(
        ForeignKey("caregivers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    baseline_score: Mapped[int | None] = mapped_column(Integer)
    linked_at: Mapped[dt.datetime]
    linked_by: Mapped[str] = mapped_column(String(120))

    caregiver: Mapped[Caregiver] = relationship(back_populates="links")


class CaregiverCheck(Base):
    """One question to one caregiver about one patient on one local day: the daily
    observation check, or "Have you seen <name> today?" when the patient is silent. The
    unique key is what makes a check go out once, however many dispatchers run."""

    __tablename__ = "caregiver_checks"
    __table_args__ = (
        UniqueConstraint(
            "patient_id", "caregiver_id", "kind", "local_date", name="uq_caregiver_checks_day"
        ),
        Index("ix_caregiver_checks_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    caregiver_id: Mapped[int] = mapped_column(ForeignKey("caregivers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # observation | seen_today
    local_date: Mapped[dt.date] = mapped_column(Date)
    program_version: Mapped[int | None] = mapped_column(Integer)  # whose items were asked
    items: Mapped[int] = mapped_column(Integer, default=0)  # how many items were asked
    due_at: Mapped[dt.datetime]
    # due | sending | sent | answered | missed | skipped
    state: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[dt.datetime | None]
    followup_sent_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None]
    score: Mapped[int | None] = mapped_column(Integer)  # items that went as usual
    concern: Mapped[str | None] = mapped_column(String(10))  # ok | worse | worried
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    created_at: Mapped[dt.datetime]


class MediaSample(Base):
    """A picture texted by a patient or caregiver (a handwriting sample). The row is written
    with the webhook's media URL before anything is fetched, so a failed fetch is retried by
    the tick and nothing is lost; the URL is cleared once Twilio's copy is deleted."""

    __tablename__ = "media_samples"
    __table_args__ = (
        UniqueConstraint("inbound_message_id", "media_index", name="uq_media_samples_media"),
        Index("ix_media_samples_state", "state", "received_at"),
        Index("ix_media_samples_patient", "patient_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"))
    media_index: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    caregiver_id: Mapped[int | None] = mapped_column(ForeignKey("caregivers.id"))
    media_url: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20))  # pending | stored | refused | gave_up
    content_type: Mapped[str | None] = mapped_column(String(60))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))  # a code, never a body
    received_at: Mapped[dt.datetime]
    local_date: Mapped[dt.date | None] = mapped_column(Date)  # the patient's day it was sent
    stored_at: Mapped[dt.datetime | None]
