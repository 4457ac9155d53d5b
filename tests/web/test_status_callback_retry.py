"""/sms/status answers 503 while the database is down, so Twilio retries the callback, and the
retry, once the database is back, records the status and answers 204."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from coachbot.models import DeliveryEvent
from coachbot.runtime import Runtime
from tests.support.twilio_signing import post_signed

SID = "SM" + "7" * 32


def _events(runtime: Runtime) -> int:
    # A fresh session each time: on SQLite a read transaction keeps its first snapshot.
    with runtime.read_session_factory() as session:
        count = session.scalar(
            select(func.count(DeliveryEvent.id)).where(DeliveryEvent.provider_sid == SID)
        )
    return count or 0


def test_a_status_callback_gets_503_while_the_database_is_down_and_204_on_the_retry(
    client: Any, runtime: Runtime
) -> None:
    def down(*_args: object) -> None:
        # What the driver raises when the server went away mid-request (any dialect).
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    params = {"MessageSid": SID, "MessageStatus": "delivered"}
    event.listen(runtime.engine, "before_cursor_execute", down)
    try:
        first = post_signed(client, "/sms/status", params)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", down)
    assert first.status_code == 503
    assert _events(runtime) == 0

    retry = post_signed(client, "/sms/status", params)
    assert retry.status_code == 204
    assert _events(runtime) == 1
