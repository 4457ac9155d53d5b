"""The webhook benchmark's data: a database per run (a temporary SQLite file, or a
throwaway PostgreSQL schema), 3,000 patients each with open nudges to answer, and the
pre-signed inbound replies that answer them; plus the counts the run checks afterwards
(stored rows) and the reset between the ceilings and the real webhook. Shared with
bench.webhook_profile, which seeds and signs the same way."""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import urlencode

from sqlalchemy import Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105  (a local throwaway token)
PUBLIC_BASE_URL = "https://coach.bench.test"
PATH = "/sms/inbound"
PATIENTS = 3000
BODIES = ["done", "skip", "7", "7.5h", "25 min", "about 20 minutes", "👍", "listo", "Done!", "3"]


@contextlib.contextmanager
def database(kind: str, pg_url: str | None) -> Iterator[str]:
    if kind == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
        try:
            yield f"sqlite:///{directory}/coachbot.db"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    assert pg_url is not None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = (
        make_url(pg_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def phone(i: int) -> str:
    return f"+1617{5550000 + i:07d}"


def seed(url: str) -> None:
    import datetime as dt

    from coachbot.migrate import upgrade
    from coachbot.models import Nudge, Patient

    upgrade(url)
    engine = create_engine(url)
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session:
        for i in range(PATIENTS):
            patient = Patient(
                first_name="Bench",
                phone_e164=phone(i),
                timezone="America/New_York",
                language="en",
                status="active",
                consent_at=now,
                consent_method="bench",
                opted_in_at=now,
                enrolled_at=now,
                updated_at=now,
            )
            session.add(patient)
            session.flush()
            for track in ("sleep", "exercise", "diet"):
                session.add(
                    Nudge(
                        patient_id=patient.id,
                        track=track,
                        occurrence_key=f"{track}:bench",
                        due_at=now,
                        send_at=now,
                        state="sent",
                        sent_at=now - dt.timedelta(minutes=1),
                        reply_window_ends_at=now + dt.timedelta(hours=6),
                        created_at=now,
                        updated_at=now,
                    )
                )
        session.commit()
    engine.dispose()


def forget_inbound(url: str) -> None:
    """The ceiling runs posted the same MessageSids the webhook will: start it afresh."""
    from coachbot.models import InboundMessage

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(cast(Table, InboundMessage.__table__).delete())
    engine.dispose()


def stored_rows(url: str) -> int:
    from coachbot.models import InboundMessage

    engine = create_engine(url)
    with Session(engine) as session:
        count = int(session.scalar(select(func.count()).select_from(InboundMessage)) or 0)
    engine.dispose()
    return count


# --- requests -------------------------------------------------------------------------------


def signed_request(rng: random.Random) -> tuple[str, str]:
    """(form body, signature) for one inbound reply with a fresh MessageSid."""
    sid = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": phone(rng.randrange(PATIENTS)),
        "To": "+16175550100",
        "Body": rng.choice(BODIES),
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + PATH, params)
    return urlencode(params), str(signature)
