"""The suppression list and the consent ledger: inside the caller's transaction, keyed by the
number, concurrent-safe, and the ledger append-only in the ORM and the database."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from coachbot.models import AppendOnlyError, ConsentEvent, SuppressedNumber
from coachbot.runtime import Runtime
from coachbot.services import consent
from coachbot.settings import Settings
from tests.support.builders import MONDAY_0830_NEW_YORK, MONDAY_0900_NEW_YORK, next_mobile

NOW = MONDAY_0830_NEW_YORK


def _events(runtime: Runtime, number: str) -> list[tuple[str, str | None, str | None]]:
    with runtime.session_factory() as s:
        rows = s.scalars(
            select(ConsentEvent).where(ConsentEvent.number_e164 == number).order_by(ConsentEvent.id)
        ).all()
        return [(r.event, r.source, r.text) for r in rows]


def test_suppress_adds_the_number_and_keeps_the_exact_words_in_the_ledger(
    runtime: Runtime,
) -> None:
    number = next_mobile()
    with runtime.session_factory() as s:
        assert consent.suppress(s, number, source="keyword", text=" S T O P ", now=NOW) is True
        s.commit()
    with runtime.session_factory() as s:
        assert consent.is_suppressed(s, number) is True
        assert consent.is_suppressed(s, next_mobile()) is False
    assert _events(runtime, number) == [("suppression_added", "keyword", " S T O P ")]


def test_a_second_stop_keeps_one_row_and_is_still_recorded(runtime: Runtime) -> None:
    number = next_mobile()
    with runtime.session_factory() as s:
        consent.suppress(s, number, source="keyword", text="STOP", now=NOW)
        s.commit()
    with runtime.session_factory() as s:
        assert consent.suppress(s, number, source="carrier_21610", text=None, now=NOW) is False
        s.commit()
        assert s.scalars(select(SuppressedNumber)).one().source == "keyword"
    assert [e[0] for e in _events(runtime, number)] == [
        "suppression_added",
        "suppression_repeated",
    ]


def test_nothing_is_written_when_the_caller_rolls_back(runtime: Runtime) -> None:
    number = next_mobile()
    with runtime.session_factory() as s:
        consent.suppress(s, number, source="keyword", text="STOP", now=NOW)
        s.rollback()
    with runtime.session_factory() as s:
        assert consent.is_suppressed(s, number) is False
    assert _events(runtime, number) == []


def test_lift_removes_the_number_and_records_it_only_when_it_was_suppressed(
    runtime: Runtime,
) -> None:
    number = next_mobile()
    with runtime.session_factory() as s:
        assert consent.lift(s, number, source="keyword", text="START", now=NOW) is False
        consent.suppress(s, number, source="keyword", text="STOP", now=NOW, patient_id=7)
        s.commit()
    with runtime.session_factory() as s:
        lifted = consent.lift(
            s, number, source="keyword", text="unstop", now=MONDAY_0900_NEW_YORK, patient_id=7
        )
        assert lifted is True
        s.commit()
    with runtime.session_factory() as s:
        assert consent.is_suppressed(s, number) is False
        patients = set(s.scalars(select(ConsentEvent.patient_id)))
    assert patients == {7}
    assert _events(runtime, number) == [
        ("suppression_added", "keyword", "STOP"),
        ("suppression_lifted", "keyword", "unstop"),
    ]


def test_suppressed_among_answers_for_a_whole_batch_in_one_call(runtime: Runtime) -> None:
    stopped, other = next_mobile(), next_mobile()
    with runtime.session_factory() as s:
        consent.suppress(s, stopped, source="keyword", text="STOP", now=NOW)
        s.commit()
        assert consent.suppressed_among(s, [stopped, other, stopped]) == {stopped}
        assert consent.suppressed_among(s, []) == set()


def test_record_event_keeps_who_what_and_when(runtime: Runtime) -> None:
    number = next_mobile()
    with runtime.session_factory() as s:
        consent.record_event(
            s,
            number=number,
            patient_id=3,
            event=consent.CLINICIAN_PAUSE,
            text=None,
            now=NOW,
            actor="staff:2",
        )
        s.commit()
        row = s.scalars(select(ConsentEvent)).one()
        assert (row.event, row.patient_id, row.actor, row.at) == (
            "clinician_pause",
            3,
            "staff:2",
            NOW,
        )


def test_the_ledger_refuses_changes_through_the_orm(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        row = consent.record_event(
            s, number=next_mobile(), patient_id=None, event="opt_out", text="STOP", now=NOW
        )
        s.commit()
        row.text = "something else"
        with pytest.raises(AppendOnlyError):
            s.commit()
        s.rollback()
        s.delete(row)
        with pytest.raises(AppendOnlyError):
            s.commit()


def test_the_ledger_refuses_changes_even_from_raw_sql(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        consent.record_event(
            s, number=next_mobile(), patient_id=None, event="opt_out", text="STOP", now=NOW
        )
        s.commit()
    with pytest.raises(DatabaseError, match="append-only"), runtime.engine.begin() as c:
        c.execute(text("UPDATE consent_events SET text = 'edited'"))
    with pytest.raises(DatabaseError, match="append-only"), runtime.engine.begin() as c:
        c.execute(text("DELETE FROM consent_events"))


def test_the_opted_out_notice_names_the_clinic_number_or_says_where_to_text(
    settings: Settings,
) -> None:
    with_number = dataclasses.replace(settings, twilio_from_number="+16175550100")
    assert consent.opted_out_notice(with_number) == (
        "this number has opted out; ask them to text START to +1 617-555-0100"
    )
    assert consent.opted_out_notice(settings).endswith(
        "text START to the number coachbot texts them from"
    )


def test_session_is_left_open_for_the_caller(session: Session, runtime: Runtime) -> None:
    # The functions never commit: a caller that does not commit leaves no trace.
    number = next_mobile()
    with runtime.session_factory() as s:
        consent.suppress(s, number, source="keyword", text="STOP", now=NOW)
        consent.lift(s, number, source="keyword", text="START", now=NOW)
        assert s.in_transaction()
    assert _events(runtime, number) == []
