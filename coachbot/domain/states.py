"""The vocabularies the rest of the code shares: roles, patient status, nudge and delivery states.

Kept as StrEnums so the database stores readable strings and the type checker still
catches a misspelt state.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CLINICIAN = "clinician"
    OPERATOR = "operator"
    ADMIN = "admin"


class PatientStatus(StrEnum):
    PENDING_CONSENT = "pending-consent"
    ACTIVE = "active"
    PAUSED = "paused"
    OPTED_OUT = "opted-out"
    DISCHARGED = "discharged"


class NudgeState(StrEnum):
    PLANNED = "planned"  # a row for a future occurrence; may still be replaced
    CLAIMED = "claimed"  # a dispatcher holds a lease; not yet on the wire
    SENDING = "sending"  # the API call may be in flight: never re-claimed blindly
    SENT = "sent"  # the provider accepted it and gave us an id
    DELIVERED = "delivered"
    FAILED = "failed"  # with a reason (provider error code or our refusal)
    SKIPPED = "skipped"  # with a reason (quiet hours, opted out, cap, ...)
    MISSED = "missed"  # with a reason: too late to send after downtime
    AMBIGUOUS = "ambiguous"  # the call may or may not have reached the provider
    CANCELLED = "cancelled"  # replaced by a schedule change before it was sent


#: States after which nothing more will be attempted for a nudge.
FINAL_NUDGE_STATES = frozenset(
    {
        NudgeState.SENT,
        NudgeState.DELIVERED,
        NudgeState.FAILED,
        NudgeState.SKIPPED,
        NudgeState.MISSED,
        NudgeState.CANCELLED,
    }
)


class AdherenceOutcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    PARTIAL = "partial"  # "2 of 3", "half": some of it done
    MISSED = "missed"  # no reply by the end of the reply window


class AlertKind(StrEnum):
    RED_FLAG = "red_flag"
    CRISIS = "crisis"  # suicidal thoughts or self-harm: the crisis line and a person at once
    SILENCE = "silence"
    INVALID_NUMBER = "invalid_number"
    OPT_OUT = "opt_out"
    REVOCATION = "revocation"
    REPLY_LOOP = "reply_loop"
    # A caregiver's answer says come and look: WORSE, WORRIED, a count below their baseline,
    # or a 2 to "Have you seen ... today?" (urgent, paged).
    CAREGIVER_CONCERN = "caregiver_concern"
    # A caregiver's close-watch check or "Have you seen ...?" went unanswered (HIGH).
    CAREGIVER_NO_ANSWER = "caregiver_no_answer"


class AlertSeverity(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# Twilio's message statuses in the order they can happen. A callback may only move a
# message forward; the first final status wins (a late "sent" never undoes "delivered").
DELIVERY_STATUS_RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
FINAL_DELIVERY_STATUSES = frozenset({"delivered", "undelivered", "failed", "read"})


def delivery_status_advances(current: str | None, incoming: str) -> bool:
    """True when `incoming` may replace `current` (forward only; first final status wins)."""
    if incoming not in DELIVERY_STATUS_RANK:
        return False
    if current is None or current not in DELIVERY_STATUS_RANK:
        return True
    if current in FINAL_DELIVERY_STATUSES:
        # "read" is the one status that legitimately follows "delivered".
        return current == "delivered" and incoming == "read"
    return DELIVERY_STATUS_RANK[incoming] > DELIVERY_STATUS_RANK[current]
