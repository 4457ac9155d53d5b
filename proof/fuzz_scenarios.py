"""The bad-input scenarios: hypothesis posts random and malformed input through the real
app and the proof counts what came back and what was stored. `fuzz` sends Twilio's webhooks
(/sms/inbound, /sms/status) forms with fuzzed values, signed or not; `forms` sends the CSV
import and the staff forms, with the cases and checks of proof/fuzz_forms/. Neither needs
the loopback Twilio server, so they live apart from the delivery scenarios in
proof/scenarios.py, whose harness (Result, base_settings) they share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from coachbot.domain.states import PatientStatus
from coachbot.models import InboundMessage, Patient
from coachbot.runtime import Runtime, build_runtime
from proof.scenarios import NOW, Result, base_settings
from tests.support.twilio_signing import inbound_params, sign


def examples_of(examples: int, seed: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The hypothesis settings both scenarios run under: `examples` cases from `seed`, no
    example database (each run starts from the seed alone), no deadline (a post's time is
    the database's, not the case's) and no health check (slow generation is expected)."""
    from hypothesis import HealthCheck
    from hypothesis import seed as hseed
    from hypothesis import settings as hsettings

    def apply(test: Callable[..., None]) -> Callable[..., None]:
        return hseed(seed)(
            hsettings(
                max_examples=examples,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )(test)
        )

    return apply


def fuzz(database_url: str, *, examples: int, seed: int) -> Result:
    from hypothesis import given
    from hypothesis import strategies as st

    from coachbot.app import create_app

    result = Result(
        "bad input (webhooks)",
        f"hypothesis: {examples} random posts to /sms/inbound and /sms/status: well-formed"
        " Twilio forms with fuzzed values and random forms; signed or not; some repeated",
    )
    runtime = build_runtime(base_settings(database_url, None))
    app = create_app(runtime=runtime)
    client = app.test_client()
    _fuzz_patient(runtime)
    codes: dict[int, int] = {}
    sids: set[str] = set()
    text, field_value, keys = _fuzz_values()

    @examples_of(examples, seed)
    @given(
        path=st.sampled_from(["/sms/inbound", "/sms/status", "/sms/status?nudge=1"]),
        params=st.one_of(
            st.builds(
                lambda sender, body, sid: inbound_params(sender, body, sid),
                st.one_of(st.just("+16175559999"), field_value),
                st.one_of(text, st.sampled_from(["STOP", "stop ", "YES", "HELP", "START", "2"])),
                st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True),
            ),
            st.dictionaries(st.one_of(keys, text), field_value, max_size=8),
        ),
        signed=st.sampled_from([True, True, True, False]),
        repeat=st.booleans(),
    )
    def post(path: str, params: dict[str, str], signed: bool, repeat: bool) -> None:
        headers = {"X-Twilio-Signature": sign(path, params) if signed else "bogus"}
        for _ in range(2 if repeat else 1):
            response = client.post(path, data=params, headers=headers)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
        if signed and path == "/sms/inbound" and response.status_code == 200:
            sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
            if sid and (params.get("From") or "").strip():
                sids.add(sid[:64])

    try:
        post()
        with runtime.session_factory() as session:
            stored = list(session.scalars(select(InboundMessage.provider_sid)))
    finally:
        runtime.close()
    result.numbers.update(responses=dict(sorted(codes.items())), inbound_stored=len(stored))
    result.checks["no 500"] = not any(code >= 500 for code in codes)
    # Every accepted signed message is stored exactly once, repeats included.
    once = len(stored) == len(set(stored))
    result.checks["each accepted sid stored once"] = once and sids <= set(stored)
    return result


def _fuzz_patient(runtime: Runtime) -> None:
    """The one active patient whose number the fuzzed forms sometimes name."""
    with runtime.session_factory() as session, session.begin():
        session.add(
            Patient(
                first_name="Fuzz",
                phone_e164="+16175559999",
                timezone="America/New_York",
                language="en",
                status=PatientStatus.ACTIVE,
                consent_at=NOW,
                consent_method="proof",
                opted_in_at=NOW,
                enrolled_at=NOW,
                updated_at=NOW,
            )
        )


def _fuzz_values() -> tuple[Any, Any, Any]:
    """(any text, a field's value: text, a keyword, a number or a sid, a Twilio field name)."""
    from hypothesis import strategies as st

    text = st.text(max_size=200)
    field_value = st.one_of(
        text,
        st.sampled_from(
            ["+16175559999", "+16175550100", "STOP", "YES", "HELP", "START", "1", "0", "-1", ""]
        ),
        st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True),
    )
    keys = st.sampled_from(
        [
            "MessageSid",
            "SmsSid",
            "From",
            "To",
            "Body",
            "NumMedia",
            "MessageStatus",
            "SmsStatus",
            "ErrorCode",
            "AccountSid",
        ]
    )
    return text, field_value, keys


def forms(database_url: str, *, examples: int, seed: int) -> Result:
    """Bulk CSV enrolment, enrolment, patient edit and alert notes as a clinician, and the
    programme schedule edit as an operator, through the real app with CSRF on (see
    proof/fuzz_forms/ for the cases and what is checked after each post)."""
    from hypothesis import given

    from coachbot.app import create_app
    from proof import fuzz_forms as ff

    per_form = max(1, examples // len(ff.FORMS))
    result = Result(
        "bad input (CSV import and forms)",
        f"hypothesis: {per_form} posts to each of {', '.join(ff.FORMS)}: valid, invalid (one"
        " bad field, row, header, size, encoding or CSRF token) and random (bytes, junk"
        " values, repeated, missing or unknown keys)",
    )
    runtime = build_runtime(base_settings(database_url, None))
    try:
        bench = ff.Bench(runtime, create_app(runtime=runtime))
        for form in ff.FORMS:

            @examples_of(per_form, seed)
            @given(case=ff.STRATEGIES[form])
            def post(case: ff.Case) -> None:
                bench.run(case)  # problems are collected, not raised: the table counts them

            post()
    finally:
        runtime.close()
    kinds = Counter(p.kind for p in bench.problems)
    bulk = Counter(p.case.expect for p in bench.problems if p.case.form == "bulk")
    outcome = bench.outcomes
    result.numbers.update(
        tried=dict(bench.tried),
        responses=dict(sorted(bench.responses.items())),
        accepted={
            f: sum(n for k, n in outcome.items() if k.startswith(f"{f} ") and "accepted" in k)
            for f in ff.FORMS
            if f != "alert"
        },
        bad_csvs_refused=outcome["bulk invalid refused"],
        valid_csvs_written=outcome["bulk valid accepted"],
        alerts_changed=outcome["alert changed"],
        problems=len(bench.problems),
    )
    if bench.problems:
        result.numbers["first problems"] = "; ".join(str(p)[:200] for p in bench.problems[:3])
    result.checks["no 5xx"] = not any(code >= 500 for code in bench.responses)
    result.checks["refused submissions wrote nothing"] = not kinds[ff.WROTE]
    result.checks["invalid submissions refused"] = not kinds[ff.ACCEPTED_INVALID]
    result.checks["valid submissions accepted"] = not kinds[ff.REFUSED_VALID]
    result.checks["accepted forms left complete records"] = not kinds[ff.RECORD]
    # Guards against a run that never produced the cases the claims are about.
    result.checks["a CSV with a bad row wrote nothing"] = (
        outcome["bulk invalid refused"] > 0 and not bulk[ff.INVALID]
    )
    result.checks["an all-valid CSV wrote every row"] = (
        outcome["bulk valid accepted"] > 0 and not bulk[ff.VALID]
    )
    return result
