"""Whatever form Twilio (or anyone) posts, the inbound webhook answers 200, 400 or 403."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from coachbot.models import InboundMessage
from tests.support.builders import make_patient
from tests.support.twilio_signing import sign

KNOWN_KEYS = [
    "MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
    "MediaContentType0", "NumSegments", "ApiVersion", "SmsStatus", "FromCountry",
]  # fmt: skip
PHONES = ["+16175550142", "+16175559999", "", " +16175550142 ", "not a number", "+1" + "9" * 40]

values = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=1700),
    st.sampled_from([*PHONES, "STOP", "done", "0", "-1", "99999999999999999999", "\x00", "🛑"]),
)
form = st.lists(
    st.tuples(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=20)), values),
    max_size=14,
)
HEADER_SAFE = st.characters(min_codepoint=32, max_codepoint=126)
queries = st.sampled_from(["", "?a=1", "?a=1&a=2", "?x=%20y", "?%FF=1"])


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)  # no BEGIN IMMEDIATE: reads never block the webhook
    with Session(engine, expire_on_commit=False) as s:
        make_patient(s, phone=PHONES[0])
        yield s
    engine.dispose()


def _post(client: Any, path: str, pairs: list[tuple[str, str]], signature: str | None) -> int:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    body = urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in pairs])
    response = client.post(
        path, data=body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    return int(response.status_code)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pairs=form, query=queries, with_sid=st.booleans())
def test_signed_forms_only_ever_get_200_or_400(
    client: Any, session: Session, pairs: list[tuple[str, str]], query: str, with_sid: bool
) -> None:
    pairs = [(k, v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")) for k, v in pairs]
    if with_sid:
        pairs += [("MessageSid", f"SM{uuid.uuid4().hex}"), ("From", PHONES[0])]
    path = "/sms/inbound" + query
    status = _post(client, path, pairs, sign(path, pairs))
    assert status in (200, 400)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pairs=form,
    query=queries,
    signature=st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126))),
)
def test_unsigned_or_badly_signed_forms_get_403_and_store_nothing(
    client: Any,
    session: Session,
    pairs: list[tuple[str, str]],
    query: str,
    signature: str | None,
) -> None:
    status = _post(client, "/sms/inbound" + query, pairs, signature)
    assert status in (400, 403)
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0
