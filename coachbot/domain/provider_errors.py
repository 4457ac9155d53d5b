"""One table from a provider failure to what we do about it.

The gateway raises `SendFailure` with an `Outcome`; dispatch acts on the outcome only,
so adding a provider code never means touching dispatch logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    RETRY = "retry"  # not sent; safe to try again later (429, refused connection)
    AMBIGUOUS = "ambiguous"  # may have reached the provider: never resend blindly
    OPTED_OUT = "opted_out"  # the carrier says the recipient unsubscribed
    INVALID_NUMBER = "invalid_number"  # the number cannot receive SMS; tell the clinician
    RETRY_LATER = "retry_later"  # unreachable handset: bounded retries
    FAILED = "failed"  # a permanent refusal of this one message


# Twilio error codes -> outcome (https://www.twilio.com/docs/api/errors).
TWILIO_CODE_OUTCOMES: dict[int, Outcome] = {
    20429: Outcome.RETRY,  # too many requests
    21610: Outcome.OPTED_OUT,  # recipient replied STOP at the carrier
    21211: Outcome.INVALID_NUMBER,  # invalid 'To' number
    21614: Outcome.INVALID_NUMBER,  # 'To' is not a mobile number
    30005: Outcome.INVALID_NUMBER,  # unknown destination handset
    30006: Outcome.INVALID_NUMBER,  # landline or unreachable carrier
    30003: Outcome.RETRY_LATER,  # unreachable destination handset
}


@dataclass(frozen=True)
class ProviderError:
    http_status: int | None
    code: int | None


def classify(error: ProviderError) -> Outcome:
    if error.code is not None and error.code in TWILIO_CODE_OUTCOMES:
        return TWILIO_CODE_OUTCOMES[error.code]
    if error.http_status == 429:
        return Outcome.RETRY
    if error.http_status is not None and error.http_status >= 500:
        # The request reached the provider, which may have queued the message before failing.
        return Outcome.AMBIGUOUS
    return Outcome.FAILED
