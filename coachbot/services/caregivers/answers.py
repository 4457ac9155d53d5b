"""What a caregiver's text does once the inbound pipeline has read it (`pipeline.process`
calls `reply_to_caregiver` with the triage's decision, after its consent effect and alerts).

* Consent keywords and red flags were carried out already (`inbound.effects`,
  `inbound.context.raise_alerts`: a red flag alerts on every patient they watch); here only
  their reply is rendered, in the caregiver's language.
* A pending caregiver's other text gets the YES request once more (only once: the row's
  outcome "caregiver_reminded" remembers it); an opted-out one gets nothing, a person reads it.
* An active caregiver's text is an answer (`coachbot.domain.caregiver_reply`): it goes to the
  open check, sets the baseline with the first count, raises an urgent, paged
  "caregiver_concern" alert for a concern, and is acknowledged.
* "Which person?": the held answer lives on its own inbound row, outcome "awaiting_choice"
  (kept "to read" meanwhile, so it is never lost if no choice comes); the choice applies
  that row's words and marks it "choice_applied" with the patient chosen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, select, update

from coachbot.content import RenderedMessage
from coachbot.domain.caregiver_check import CHECK_ITEMS, patient_choices
from coachbot.domain.caregiver_reply import (
    SEEN_TODAY,
    Assessment,
    HeldAnswer,
    OpenCheck,
    Route,
    Step,
    assess,
    route,
)
from coachbot.domain.states import AlertKind, AlertSeverity, PatientStatus
from coachbot.domain.triage import Decision, MessageClass
from coachbot.models import CaregiverCheck, CaregiverLink, InboundMessage
from coachbot.services.alerts import raise_alert
from coachbot.services.inbound.context import (
    CaregiverSender,
    Context,
    owed_stop_confirmation,
    raised_for_row,
)
from coachbot.services.inbound.replies import reply_with, safety_reply

AWAITING_CHOICE = "awaiting_choice"
CHOICE_APPLIED = "choice_applied"
REMINDED = "caregiver_reminded"
# A check counts as today's for this long after it went out.
OPEN_FOR = dt.timedelta(hours=24)
_ANSWERABLE = ("sent", "answered")
_AND = {"en": " and ", "es": " y "}

_OPEN_CHECKS = (
    select(
        CaregiverCheck.id,
        CaregiverCheck.patient_id,
        CaregiverCheck.kind,
        CaregiverCheck.items,
        CaregiverCheck.state,
        CaregiverCheck.sent_at,
    )
    .where(
        CaregiverCheck.caregiver_id == bindparam("caregiver_id"),
        CaregiverCheck.state.in_(_ANSWERABLE),
        CaregiverCheck.sent_at > bindparam("since"),
    )
    .order_by(CaregiverCheck.sent_at.desc(), CaregiverCheck.id.desc())
)
_LATEST_OUTCOME = (
    select(InboundMessage.id, InboundMessage.body, InboundMessage.received_at)
    .where(
        InboundMessage.caregiver_id == bindparam("caregiver_id"),
        InboundMessage.outcome == bindparam("outcome"),
        InboundMessage.received_at > bindparam("since"),
        InboundMessage.id != bindparam("row_id"),
    )
    .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
    .limit(1)
)


def reply_to_caregiver(
    ctx: Context, decision: Decision, keep_reply: bool
) -> RenderedMessage | None:
    caregiver = ctx.caregiver
    assert caregiver is not None, "only for a caregiver's text"
    language = caregiver.language
    if decision.is_danger:
        assert decision.reply is not None
        return safety_reply(ctx, decision.reply, language)
    if decision.message_class in (MessageClass.FREE_TEXT, MessageClass.EMPTY):
        return _free_text(ctx, caregiver, decision)
    template = decision.reply if keep_reply else None
    owed = owed_stop_confirmation(ctx, decision) if template is None else None
    if owed is not None:
        template, ctx.row.outcome = "stop_confirmation", owed
    if template is None:
        return None
    return reply_with(ctx, template, language, {"first_name": _names(caregiver)})


def _free_text(
    ctx: Context, caregiver: CaregiverSender, decision: Decision
) -> RenderedMessage | None:
    if caregiver.status == PatientStatus.PENDING_CONSENT and not caregiver.number_suppressed:
        return _remind_consent(ctx, caregiver)
    if caregiver.status != PatientStatus.ACTIVE or caregiver.number_suppressed:
        return None  # triage kept it "to read"; nothing goes to a number without consent
    if decision.message_class is MessageClass.EMPTY or decision.outcome.startswith("media_only"):
        # A picture (a handwriting sample) with no words: stored by the media hook, no answer.
        ctx.row.outcome, ctx.row.needs_reading = "caregiver_media", False
        return None
    ctx.row.needs_reading = False
    return answer(ctx, caregiver)


def _remind_consent(ctx: Context, caregiver: CaregiverSender) -> RenderedMessage | None:
    """Texting us before saying YES: the YES request once more, then silence (a person
    reads the rest)."""
    reminded = _latest_with_outcome(ctx, caregiver, REMINDED, since=None)
    if reminded is not None:
        return None
    ctx.row.outcome = REMINDED
    names: dict[str, object] = {"first_name": _names(caregiver)}
    return reply_with(ctx, "caregiver.welcome", caregiver.language, names)


def answer(ctx: Context, caregiver: CaregiverSender) -> RenderedMessage | None:
    """An active caregiver's answer: to the open check, or to "Which person?"."""
    checks = _open_checks(ctx, caregiver)
    held = None
    if len(caregiver.patients) > 1:
        found = _latest_with_outcome(ctx, caregiver, AWAITING_CHOICE, since=ctx.now - OPEN_FOR)
        held = HeldAnswer(found.id, found.body, found.received_at) if found else None
    names = [p.first_name for p in caregiver.patients]
    ids = [p.id for p in caregiver.patients]
    decided = route(ctx.row.body, ids, names, checks, held)
    if decided.step is Step.WHICH_PERSON:
        ctx.row.outcome, ctx.row.needs_reading = AWAITING_CHOICE, True
        choices = patient_choices(names, caregiver.language)
        return reply_with(
            ctx, "caregiver.which_person", caregiver.language, {"patient_choices": choices}
        )
    if decided.step is Step.NOT_UNDERSTOOD:
        return _not_understood(ctx, caregiver, checks)
    return _apply(ctx, caregiver, decided, held if decided.step is Step.CHOICE else None)


def _apply(
    ctx: Context, caregiver: CaregiverSender, decided: Route, held: HeldAnswer | None
) -> RenderedMessage | None:
    assert decided.patient_id is not None
    patient = next(p for p in caregiver.patients if p.id == decided.patient_id)
    ctx.patient, ctx.row.patient_id = patient, patient.id
    body, source_id = (held.body, held.inbound_id) if held else (ctx.row.body, ctx.row.id)
    baseline = caregiver.baselines.get(patient.id)
    result = assess(body, decided.check, baseline)
    if held is not None:
        _settle_held(ctx, held, patient.id)
    if not result.understood:
        if decided.check is not None and decided.check.kind == SEEN_TODAY:
            # Their question was "Have you seen ...? 1 or 2": asked again, not the check's help.
            ctx.row.outcome, ctx.row.needs_reading = "caregiver_not_understood", True
            return reply_with(ctx, "caregiver.seen_today", caregiver.language)
        return _not_understood(ctx, caregiver, [decided.check] if decided.check else [])
    if result.baseline is not None and baseline is None:
        _set_baseline(ctx, caregiver, patient.id, result.baseline)
    alert_id = _raise_concern(ctx, patient.id, result, source_id) if result.urgent else None
    if decided.check is not None:
        _answer_check(ctx, decided.check, result, source_id, alert_id)
    concern = "caregiver_concern" if result.urgent else "caregiver_answer"
    ctx.row.outcome = f"{concern}_choice" if held else concern
    if result.urgent:
        return reply_with(ctx, "caregiver.ack_concern", caregiver.language)
    return reply_with(ctx, "caregiver.ack_ok", caregiver.language)


def _not_understood(
    ctx: Context, caregiver: CaregiverSender, checks: list[OpenCheck]
) -> RenderedMessage | None:
    """The help names the range the programme's check asked for (its latest observation
    check's item count; the built-in number of items when none is open)."""
    ctx.row.outcome, ctx.row.needs_reading = "caregiver_not_understood", True
    asked = [c for c in checks if c.kind != SEEN_TODAY]
    items = max(asked, key=lambda c: c.sent_at).items if asked else CHECK_ITEMS
    variables = {"first_name": _names(caregiver), "item_count": items}
    return reply_with(ctx, "caregiver.not_understood", caregiver.language, variables)


def _raise_concern(ctx: Context, patient_id: int, result: Assessment, source_id: int) -> int | None:
    if raised_for_row(ctx, AlertKind.CAREGIVER_CONCERN):
        return None  # the recovery re-runs a row whose concern was raised already
    alert = raise_alert(
        ctx.session,
        patient_id=patient_id,
        kind=AlertKind.CAREGIVER_CONCERN,
        severity=AlertSeverity.URGENT,
        detail=",".join(result.reasons),
        now=ctx.now,
        inbound_message_id=source_id,
    )
    ctx.session.flush()  # the check keeps the alert's id
    ctx.pageable = True
    return alert.id


def _answer_check(
    ctx: Context, check: OpenCheck, result: Assessment, source_id: int, alert_id: int | None
) -> None:
    values: dict[str, object] = {
        "state": "answered",
        "answered_at": ctx.now,
        "score": result.score,
        "concern": result.concern,
        "inbound_message_id": source_id,
    }
    if alert_id is not None:
        values["alert_id"] = alert_id  # a later OK does not take away the concern's alert
    ctx.connection.execute(
        update(CaregiverCheck).where(CaregiverCheck.id == check.id).values(**values)
    )


def _set_baseline(ctx: Context, caregiver: CaregiverSender, patient_id: int, score: int) -> None:
    """The caregiver's first count for this patient is their baseline; it is set once."""
    ctx.connection.execute(
        update(CaregiverLink)
        .where(
            CaregiverLink.caregiver_id == caregiver.id,
            CaregiverLink.patient_id == patient_id,
            CaregiverLink.baseline_score.is_(None),
        )
        .values(baseline_score=score)
    )
    caregiver.baselines[patient_id] = score


def _settle_held(ctx: Context, held: HeldAnswer, patient_id: int) -> None:
    ctx.connection.execute(
        update(InboundMessage)
        .where(InboundMessage.id == held.inbound_id)
        .values(outcome=CHOICE_APPLIED, patient_id=patient_id, needs_reading=False)
    )


def _open_checks(ctx: Context, caregiver: CaregiverSender) -> list[OpenCheck]:
    rows = ctx.connection.execute(
        _OPEN_CHECKS, {"caregiver_id": caregiver.id, "since": ctx.now - OPEN_FOR}
    ).all()
    return [
        OpenCheck(r.id, r.patient_id, r.kind, r.items, r.state == "answered", r.sent_at)
        for r in rows
    ]


def _latest_with_outcome(
    ctx: Context, caregiver: CaregiverSender, outcome: str, *, since: dt.datetime | None
) -> Any:
    floor = since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return ctx.connection.execute(
        _LATEST_OUTCOME,
        {"caregiver_id": caregiver.id, "outcome": outcome, "since": floor, "row_id": ctx.row.id},
    ).first()


def _names(caregiver: CaregiverSender) -> str:
    """The first names of the patients they watch: "Ana", or "Ana and Bo"."""
    names = [p.first_name for p in caregiver.patients]
    joiner = _AND.get(caregiver.language, _AND["en"])
    return ", ".join(names[:-1]) + joiner + names[-1] if len(names) > 1 else names[0]
