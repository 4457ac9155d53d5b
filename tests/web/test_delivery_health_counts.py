"""What delivery health counts as sent and as tracked, with the replies made by the real
webhook pipeline: the reply-loop guard's muted marker and a text refused before it left are
not "Texts sent"; delivery is "not tracked" unless the backend, or a text in the span, is one
whose provider reports delivery."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import OutboundMessage
from coachbot.queries.delivery_health import MUTED_BACKEND, delivery_health
from tests.support import inbound_webhook
from tests.support.builders import make_outbound, make_patient
from tests.support.inbound_webhook import EMPTY, MINUTE, T0, make_nudge, post, text_of

session = inbound_webhook.session
LATER = T0 + 10 * MINUTE


def _outbound(db: Session) -> list[OutboundMessage]:
    db.expire_all()
    return list(db.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def _report(db: Session, backend: str = "console") -> Any:
    return delivery_health(db, now=LATER, span="24h", tick_seconds=5, backend=backend)


def test_texts_sent_leaves_out_muted_replies_and_texts_refused_before_sending(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    answers = [text_of(post(client, patient.phone_e164, "done", T0 + i * MINUTE)) for i in range(5)]
    # Three coaching acks go out, the fourth and fifth are muted: one marker row records them.
    assert [a != EMPTY for a in answers] == [True, True, True, False, False]
    rows = _outbound(session)
    assert [r.backend for r in rows] == ["twiml", "twiml", "twiml", MUTED_BACKEND]
    # A welcome the suppression list refused: recorded, never sent (no provider id).
    make_outbound(
        session,
        patient,
        created_at=T0 + 6 * MINUTE,
        backend="twilio",
        kind="welcome",
        body="Welcome",
        delivery_status="failed",
        error_code="suppressed",
    )

    report = _report(session)
    assert len(_outbound(session)) == 5
    assert report.sent == 3
    assert sum(b.sent for b in report.buckets) == 3
    # TwiML replies get no delivery report and the backend is the console: not tracked.
    assert report.delivery_tracked is False
    assert report.buckets[-1].tracked == 0


def test_delivery_is_tracked_with_twilio_or_once_a_tracked_text_is_in_the_span(
    session: Session,
) -> None:
    patient = make_patient(session)
    assert _report(session, backend="console").delivery_tracked is False
    assert _report(session, backend="twilio").delivery_tracked is True
    make_outbound(
        session,
        patient,
        created_at=T0,
        backend="twilio",
        provider_sid="SM" + "a1" * 16,
        delivery_status="delivered",
    )
    # Sent through Twilio earlier in the span, then the process moved to the console backend.
    report = _report(session, backend="console")
    assert (report.delivery_tracked, report.sent, report.delivered) == (True, 1, 1)
    assert report.delivery_rate == 1.0
