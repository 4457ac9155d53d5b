"""The inbound SMS pipeline, in order: idempotency, sender, compliance keywords, revocations,
red flags, reply parsing, adherence, coaching reply.

Modules: `pipeline` (the webhook's entry, `handle_inbound`, and the stages in order),
`context` (the sender and their open nudges, read once, and the domain's decision),
`effects` (consent and status changes), `answers` (adherence and coaching), `replies`
(rendering, the loop guard), `failure` (retries, the row kept as failed) and `recovery`
(the clock tick's re-run of kept rows).

One transaction per message. A failure anywhere still answers Twilio with empty TwiML and
keeps the inbound row, so no reply is ever lost and Twilio never sees a 500.

What a text means, and so what happens (its class, alerts, answer, reply), is decided by the
pure `coachbot.domain.triage.decide`; its docstring holds the rules (danger before adherence,
consent, unknown senders). This module reads the sender and their open nudges, calls it, and
carries the decision out.

Failures
--------
* A transient database error (a lock, a deadlock or serialization failure, a dropped
  connection) is retried a few times after a short pause.
* When every attempt fails the row is kept with outcome "error" and linked to the sender,
  and, in that same fallback transaction, what protects the patient without a reply is
  applied: a patient's STOP opts them out (unsent nudges skipped), a red flag raises the
  clinician's alert; a caregiver's STOP opts that caregiver out (the tick texts them their
  checks, so it cannot wait); a caregiver's red flag alerts on every patient they watch.
* The clock tick runs the pipeline again for rows kept as "error"
  (`coachbot.services.inbound.recovery`); effects the fallback already applied for that row
  (its opt-out, its red-flag alert) are recognised by the alert the row raised and are not
  applied twice, while the reply they owe (the STOP confirmation, the safety text) is sent.
"""

from __future__ import annotations

from coachbot.services.inbound.context import EMPTY_TWIML, FAILED, InboundSms
from coachbot.services.inbound.failure import is_kept, is_transient_db_error
from coachbot.services.inbound.pipeline import ATTEMPTS, handle_inbound, twiml_message
from coachbot.services.inbound.recovery import Recovered, recover_failed, recover_failed_inbound

__all__ = [
    "ATTEMPTS",
    "EMPTY_TWIML",
    "FAILED",
    "InboundSms",
    "Recovered",
    "handle_inbound",
    "is_kept",
    "is_transient_db_error",
    "recover_failed",
    "recover_failed_inbound",
    "twiml_message",
]
