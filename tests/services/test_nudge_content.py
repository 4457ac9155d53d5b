"""What dispatch sends comes from the message library: rotated, personalised, private."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from coachbot.models import Nudge, OutboundMessage
from coachbot.runtime import Runtime
from coachbot.services.tick import run_tick
from tests.support.builders import make_patient

PRIVACY_WORDS = ("chemo", "neurotox", "car-t", "icans", "cancer", "lead", "mercury")


def _tick_daily(runtime: Runtime, first_local_0830_utc: dt.datetime, days: int) -> None:
    for day in range(days):
        run_tick(
            runtime.session_factory,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            first_local_0830_utc + dt.timedelta(days=day),
        )


def test_a_nudge_variant_never_repeats_to_a_patient_within_seven_days(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        make_patient(s, tz="Asia/Kolkata", tracks={"exercise": "09:00"})
    # 09:00 in Kolkata is 03:30 UTC (no daylight saving there).
    _tick_daily(runtime, dt.datetime(2026, 11, 2, 3, 30, tzinfo=dt.UTC), days=21)
    with runtime.session_factory() as s:
        variants = s.scalars(
            select(Nudge.variant_id).where(Nudge.state == "sent").order_by(Nudge.due_at)
        ).all()
    assert len(variants) == 21
    for start in range(len(variants) - 6):
        window = variants[start : start + 7]
        assert len(set(window)) == 7, f"repeat within 7 days: {window}"


def test_nudges_carry_the_first_name_the_homework_and_no_health_details(
    runtime: Runtime,
) -> None:
    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Rosa", language="es", tracks={"rehab": "10:00"})
        from coachbot.models import HomeworkItem

        s.add(
            HomeworkItem(
                patient_id=patient.id,
                description="las tarjetas de palabras",
                created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            )
        )
        s.commit()
    # 10:00 in New York on 2026-11-23 is 15:00 UTC.
    _tick_daily(runtime, dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC), days=3)
    with runtime.session_factory() as s:
        bodies = s.scalars(
            select(OutboundMessage.body).where(OutboundMessage.kind == "nudge")
        ).all()
    assert len(bodies) == 3
    for body in bodies:
        assert "Rosa" in body
        assert "las tarjetas de palabras" in body
        assert not any(word in body.lower() for word in PRIVACY_WORDS)


def test_stored_homework_naming_a_drug_or_diagnosis_is_withheld_from_the_nudge(
    runtime: Runtime,
) -> None:
    """Homework saved before the privacy lint (or any other way around it) never reaches the
    phone word for word: dispatch checks it again; the clean item still goes."""
    from coachbot.models import HomeworkItem

    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Ana", tracks={"rehab": "10:00"})
        for description in ("word cards for chemo brain", "the memory puzzle"):
            s.add(
                HomeworkItem(
                    patient_id=patient.id,
                    description=description,
                    created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                )
            )
        s.commit()
    _tick_daily(runtime, dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC), days=1)
    with runtime.session_factory() as s:
        (body,) = s.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "nudge"))
    assert "the memory puzzle" in body
    assert "chemo" not in body.lower()
    assert "word cards" not in body
