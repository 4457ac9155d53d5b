"""The per-nudge job both baselines run: one APScheduler job per nudge (bench.dispatch's
naive design) and one Celery task per nudge (bench.celery_baseline). Only how the jobs
are scheduled differs between them, so both send exactly this.

Load the nudge and its patient, render the message, send it with the twilio SDK's sync
client (coachbot's TwilioGateway, `client.messages.create`), record the result; one
transaction to read and one to write, as a job per reminder does.
"""

from __future__ import annotations

import datetime as dt

from coachbot.models import Nudge
from coachbot.runtime import Runtime
from coachbot.services.messaging import status_callback_url
from coachbot.sms.gateway import OutgoingSms


def send_one(runtime: Runtime, nudge_id: int) -> None:
    """Raises coachbot.sms.gateway.SendFailure when the provider refuses or times out."""
    with runtime.session_factory() as session, session.begin():
        nudge = session.get(Nudge, nudge_id)
        if nudge is None:
            return
        patient = nudge.patient
        message = runtime.library.render(
            f"nudge.{nudge.track}",
            patient.language,
            {
                "first_name": patient.first_name,
                "clinic_name": "Clinic",
                "clinic_phone": "+16175550199",
                "local_time": "09:00",
            },
            seed=f"{patient.id}:{nudge.occurrence_key}",
        )
        to = patient.phone_e164
    receipt = runtime.gateway.send(
        OutgoingSms(
            to=to,
            body=message.body,
            status_callback=status_callback_url(runtime.settings.public_base_url, nudge_id),
        )
    )
    with runtime.session_factory() as session, session.begin():
        sent = session.get(Nudge, nudge_id)
        assert sent is not None  # it was read above and nothing deletes nudges meanwhile
        sent.state, sent.provider_sid = "sent", receipt.provider_sid
        sent.sent_at = dt.datetime.now(dt.UTC)
