"""Coaching replies: a short acknowledgement, the streak, and every third DONE a tip for the
track when it still fits in one SMS segment."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from coachbot.content import load_library
from coachbot.domain import coaching
from coachbot.domain.segments import count_segments
from coachbot.models import OutboundMessage, Patient
from tests.support.builders import MONDAY_0830_NEW_YORK, make_patient, make_sent_nudge
from tests.support.twilio_signing import inbound_params, post_signed

T0 = MONDAY_0830_NEW_YORK
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("kind", "streak", "done_total", "expected"),
    [
        ("done", 0, 1, coaching.ReplyPlan("ack.done")),
        ("value", 1, 1, coaching.ReplyPlan("ack.value")),
        ("done", 2, 2, coaching.ReplyPlan("streak", streak=2)),
        ("done", 3, 3, coaching.ReplyPlan("streak", streak=3, with_tip=True)),
        ("value", 1, 6, coaching.ReplyPlan("ack.value", with_tip=True)),
        ("typo_done", 5, 6, coaching.ReplyPlan("ack.typo_done")),
        ("skip", 4, 6, coaching.ReplyPlan("ack.skip")),
    ],
)
def test_plan_reply(
    kind: coaching.AnswerKind, streak: int, done_total: int, expected: coaching.ReplyPlan
) -> None:
    assert coaching.plan_reply(kind, streak=streak, done_total=done_total) == expected


def test_tip_order_is_stable_and_puts_recent_tips_last() -> None:
    ids = [f"tip-{i}" for i in range(10)]
    first = coaching.tip_order(ids, "SM1")
    assert coaching.tip_order(ids, "SM1") == first
    assert sorted(first) == sorted(ids)
    # `recent` is newest first; the one just sent comes last of all.
    assert coaching.tip_order(ids, "SM1", recent=first[:3])[-3:] == first[2::-1]


def test_recent_tips_are_tried_least_recently_sent_first() -> None:
    """When only recently sent tips fit beside the acknowledgement, the oldest of them goes
    first, whatever the seed: the tip just sent is never chosen again while another fits."""
    ids = [f"tip-{i}" for i in range(10)]
    recent = ["tip-4", "tip-7", "tip-4", "tip-1"]  # newest first: tip-4 was sent last
    for n in range(50):
        order = coaching.tip_order(ids, f"SM{n:032x}", recent)
        assert order[-3:] == ["tip-1", "tip-7", "tip-4"], n


def test_followup_keys_round_trip() -> None:
    key = coaching.followup_key("diet:2026-11-23T08:30")
    assert coaching.is_followup_key(key)
    assert coaching.original_key(key) == "diet:2026-11-23T08:30"
    assert coaching.original_key("diet:2026-11-23T08:30") == "diet:2026-11-23T08:30"


def test_every_track_has_tips_short_enough_to_join_an_acknowledgement() -> None:
    library = load_library()
    ack = library.render("ack.done", "en", {"first_name": "Maya"}, seed="x").body
    for track in coaching.FOLLOWUP_TRACKS:
        tips = [
            library.render_variant(f"tip.{track}", "en", v, {}).body
            for v in library.variant_ids(f"tip.{track}", "en")
        ]
        assert any(coaching.fits_one_segment(coaching.join_with_tip(ack, t)) for t in tips)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)  # no BEGIN IMMEDIATE: reads never block the webhook
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


def nudge_and_answer(
    client: Any,
    session: Session,
    patient: Patient,
    at: dt.datetime,
    body: str,
    track: str,
    sid: str | None = None,
) -> OutboundMessage:
    make_sent_nudge(session, patient, sent_at=at, window=dt.timedelta(hours=4), track=track)
    session.commit()
    with freeze_time(at + dt.timedelta(minutes=10)):
        response = post_signed(
            client, "/sms/inbound", inbound_params(patient.phone_e164, body, sid)
        )
    assert response.status_code == 200
    session.expire_all()
    reply = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id.desc())).first()
    assert reply is not None
    return reply


def test_three_days_in_a_row_get_a_streak_and_a_tip_in_one_segment(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, first_name="Maya")
    replies = [
        nudge_and_answer(client, session, patient, T0 + day * DAY, "done", "exercise")
        for day in range(3)
    ]
    assert [r.template_id for r in replies] == ["ack.done", "streak", "streak+tip.exercise"]
    assert "2 days in a row" in replies[1].body
    third = replies[2]
    assert "3 days in a row" in third.body
    assert third.variant_id is not None
    assert third.variant_id.startswith("streak-")
    assert "+tip-exercise-" in third.variant_id
    assert count_segments(third.body).segments == third.segments == 1


def test_a_gap_resets_the_streak(client: Any, session: Session) -> None:
    patient = make_patient(session)
    nudge_and_answer(client, session, patient, T0, "done", "diet")
    nudge_and_answer(client, session, patient, T0 + DAY, "done", "diet")
    after_gap = nudge_and_answer(client, session, patient, T0 + 3 * DAY, "done", "diet")
    assert after_gap.template_id is not None
    assert after_gap.template_id.startswith("ack.done")


@pytest.mark.parametrize(
    ("first_sid", "different_tips"),
    [
        (1, 4),
        # From this SID on, the twelfth day's streak text leaves room for only three tips
        # (one segment in all), and all three went out in the last nine days: one must repeat.
        (98, 3),
    ],
    ids=["unsent-tips-fit", "only-recent-tips-fit"],
)
def test_tips_are_not_repeated_back_to_back(
    client: Any, session: Session, first_sid: int, different_tips: int
) -> None:
    # The message SID seeds the choice of acknowledgement and tip, so the test sets its own:
    # drawn from the shared counter, they depended on how many tests ran before this one.
    patient = make_patient(session)
    tips = []
    for day in range(12):
        reply = nudge_and_answer(
            client,
            session,
            patient,
            T0 + day * DAY,
            "25 min",
            "exercise",
            sid=f"SM{first_sid + day:032x}",
        )
        if reply.variant_id and "+" in reply.variant_id:
            tips.append(reply.variant_id.split("+")[1])
    assert len(tips) == 4
    assert all(a != b for a, b in itertools.pairwise(tips)), tips
    assert len(set(tips)) == different_tips, tips


def test_a_typo_echo_never_carries_a_tip(client: Any, session: Session) -> None:
    patient = make_patient(session)
    for day in range(2):
        nudge_and_answer(client, session, patient, T0 + day * DAY, "done", "diet")
    reply = nudge_and_answer(client, session, patient, T0 + 2 * DAY, "dnoe", "diet")
    assert reply.template_id == "ack.typo_done"


def test_a_spanish_acknowledgement_stays_one_segment_rather_than_take_a_tip(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, language="es")
    replies = [
        nudge_and_answer(client, session, patient, T0 + day * DAY, "listo", "diet")
        for day in range(3)
    ]
    assert all(r.segments == 1 for r in replies)
