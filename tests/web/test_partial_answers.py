"""Partial answers ("2 of 3", "half": outcome partial) are shown as partial everywhere a
clinician reads adherence (the heatmap, the patients list, the exports, `coachbot adherence`)
and count as half a done in every adherence rate."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from freezegun import freeze_time
from sqlalchemy.orm import Session

from coachbot.cli import main
from coachbot.domain import labels
from coachbot.domain.states import NudgeState
from coachbot.models import AdherenceRecord, Nudge, Patient
from coachbot.queries.adherence import adherence_by_track, adherence_pct
from coachbot.queries.dashboard import TrackSummary
from coachbot.queries.patient_page import HEAT_STATES, heat_tally, patient_detail
from coachbot.services.exports import cohort_csv, patient_csv, patient_fhir_bundle
from coachbot.settings import Settings
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, make_staff, sign_in

DAY = dt.timedelta(days=1)
CSS = Path(__file__).resolve().parents[2] / "coachbot" / "web" / "static" / "app.css"


def _answered(
    session: Session,
    patient: Patient,
    outcome: str,
    due: dt.datetime,
    *,
    value: float | None = None,
    unit: str | None = None,
    track: str = "sleep",
) -> None:
    nudge = Nudge(
        patient_id=patient.id,
        track=track,
        occurrence_key=f"{track}:{due.isoformat()}",
        due_at=due,
        send_at=due,
        state=NudgeState.DELIVERED,
        sent_at=due,
        reply_window_ends_at=due + dt.timedelta(hours=2),
        created_at=due,
        updated_at=due,
    )
    session.add(nudge)
    session.flush()
    session.add(
        AdherenceRecord(
            patient_id=patient.id,
            nudge_id=nudge.id,
            track=track,
            outcome=outcome,
            value=value,
            unit=unit,
            recorded_at=due + dt.timedelta(minutes=10),
        )
    )
    session.commit()


def _week(session: Session, patient: Patient) -> None:
    """Four sleep nudges this week: done, partial (2 of 3), partial (half), skipped."""
    _answered(session, patient, "done", NOW - 4 * DAY)
    _answered(session, patient, "partial", NOW - 3 * DAY, value=0.67, unit="fraction")
    _answered(session, patient, "partial", NOW - 2 * DAY, value=0.5, unit="fraction")
    _answered(session, patient, "skipped", NOW - 1 * DAY)


def test_a_rate_counts_a_partial_as_half_a_done() -> None:
    assert adherence_pct(done=1, partial=2, sent=4) == 50
    assert adherence_pct(done=0, partial=1, sent=1) == 50
    assert adherence_pct(done=0, partial=0, sent=0) is None
    summary = TrackSummary("sleep", 4, 1, 8, 3, 0, partial_7=2, partial_30=2)
    assert (summary.pct_7, summary.pct_30) == (50, 50)


def test_the_patient_page_shows_partial_days_and_counts_them_half(session: Session) -> None:
    maya = make_patient(session, tracks={"sleep": "08:30"})
    _week(session, maya)
    # The same day done and partial shows done: a day shows the best of its nudges.
    _answered(session, maya, "partial", NOW - 4 * DAY + dt.timedelta(hours=1))
    detail = patient_detail(session, maya, NOW)

    states = [cell.state for cell in detail.heatmap["sleep"] if cell.state != "none"]
    assert states == ["done", "partial", "partial", "skipped"]
    (sleep,) = detail.summaries
    assert (sleep.sent_7, sleep.done_7, sleep.partial_7, sleep.partial_30) == (5, 1, 3, 3)
    assert sleep.pct_7 == 50  # (1 + 3/2) / 5
    # A partial's fraction is part of the answer, not a trend of the track's numbers.
    assert detail.trends == {}


def test_partial_ranks_between_skipped_and_done() -> None:
    assert HEAT_STATES.index("skipped") < HEAT_STATES.index("partial") < HEAT_STATES.index("done")
    assert len(HEAT_STATES) <= 8  # a nudge's cell is packed as "days ago * 8 + rank"


def test_the_heatmap_names_partial_days_in_its_text_alternative(session: Session) -> None:
    maya = make_patient(session, tracks={"sleep": "08:30"})
    _week(session, maya)
    cells = patient_detail(session, maya, NOW).heatmap["sleep"]
    assert heat_tally(cells, labels.HEAT_STATES).startswith(
        "1 done, 2 partly done, 1 skipped, 86 nothing"
    )
    assert [c.state for c in cells].count("partial") == 2


def _hex_luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _lightness(luminance: float) -> float:
    """CIE L*, the lightness a person sees, 0-100."""
    return 116 * luminance ** (1 / 3) - 16 if luminance > 0.008856 else 903.3 * luminance


def test_the_partial_colour_has_3_to_1_contrast_and_its_own_lightness() -> None:
    colours = dict(re.findall(r"--hm-([a-z]+): (#[0-9a-f]{6})", CSS.read_text(encoding="utf-8")))
    assert set(colours) == set(HEAT_STATES)
    partial = _hex_luminance(colours["partial"])
    assert (1.05 / (partial + 0.05)) >= 3.0
    for state in ("done", "skipped", "missed", "waiting"):
        other = _lightness(_hex_luminance(colours[state]))
        assert abs(_lightness(partial) - other) >= 8, state


@freeze_time(NOW)
def test_the_patients_list_shows_partial_answers_and_the_half_counted_rate(
    client: Any, session: Session
) -> None:
    ana = make_staff(session, "ana@clinic.test")
    maya = make_patient(session, tracks={"sleep": "08:30"})
    maya.clinician_id = ana
    session.commit()
    _week(session, maya)
    assert sign_in(client, "ana@clinic.test").status_code == 302

    listing = client.get("/patients").get_data(as_text=True)
    # A partial counts half: (1 + 0.5 * 2) / 4 = 50%, said in words with the counts.
    assert (
        "<strong>sleep</strong>: 1 of 4 done and 2 in part this week (50%); 50% over 30 days"
        in listing
    )
    page = client.get(f"/patients/{maya.id}").get_data(as_text=True)
    assert "1 of 4 done and 2 in part this week (50%)" in page
    assert 'class="key hm-partial"' in page
    assert 'class="hm-partial"' in page  # the day's cell in the calendar


def test_the_exports_say_partial_and_carry_the_fraction_done(session: Session) -> None:
    maya = make_patient(session, tracks={"sleep": "08:30"})
    _week(session, maya)

    rows = list(csv.DictReader(io.StringIO("".join(patient_csv(session, maya)))))
    assert [(r["outcome"], r["value"], r["unit"]) for r in rows] == [
        ("done", "", ""),
        ("partial", "0.67", "fraction"),
        ("partial", "0.5", "fraction"),
        ("skipped", "", ""),
    ]
    (cohort,) = csv.DictReader(
        io.StringIO("".join(cohort_csv(session, clinician_id=None, now=NOW)))
    )
    assert (cohort["done_7d"], cohort["partial_7d"], cohort["partial_30d"]) == ("1", "2", "2")

    bundle = patient_fhir_bundle(session, maya, NOW)
    Bundle.model_validate(bundle)  # valid FHIR R4(B), the component included
    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    outcomes = [o["valueCodeableConcept"]["coding"][0]["code"] for o in observations]
    assert outcomes == ["done", "partial", "partial", "skipped"]  # no reported-value observations
    fraction = observations[1]["component"][0]
    assert (fraction["code"]["text"], fraction["valueQuantity"]["value"]) == ("fraction done", 0.67)


def test_adherence_by_track_and_the_cli_json_count_partial_and_rate(
    session: Session, settings: Settings
) -> None:
    maya = make_patient(session, tracks={"sleep": "08:30"})
    _week(session, maya)
    (sleep,) = adherence_by_track(session, now=NOW, days=30)
    assert (sleep.sent, sleep.done, sleep.partial, sleep.skipped, sleep.rate) == (4, 1, 2, 1, 0.5)

    result = CliRunner().invoke(
        main,
        ["adherence", "--json", "--now", NOW.isoformat()],
        env={"DATABASE_URL": settings.database_url, "SMS_BACKEND": "console"},
    )
    assert result.exit_code == 0, result.output
    (track,) = json.loads(result.stdout)["patients"][0]["tracks"]
    assert (track["done"], track["partial"], track["rate"]) == (1, 2, 0.5)


@pytest.mark.parametrize("outcome", ["done", "skipped"])
def test_a_track_without_partials_keeps_its_rate(session: Session, outcome: str) -> None:
    maya = make_patient(session, tracks={"sleep": "08:30"})
    _answered(session, maya, outcome, NOW - DAY)
    (sleep,) = adherence_by_track(session, now=NOW, days=7)
    assert (sleep.partial, sleep.rate) == (0, 1.0 if outcome == "done" else 0.0)
