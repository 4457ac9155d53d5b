"""The signature check: the URL is PUBLIC_BASE_URL plus the raw path and query, the form is
taken exactly as posted (repeated keys, surrounding whitespace), and a refusal stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from coachbot.models import InboundMessage, OutboundMessage
from tests.support.builders import MONDAY_0830_NEW_YORK, make_patient
from tests.support.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, inbound_params, sign

PATH = "/sms/inbound"


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)  # no BEGIN IMMEDIATE: reads never block the webhook
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


def raw_post(client: Any, path: str, pairs: list[tuple[str, str]], signature: str | None) -> Any:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    with freeze_time(MONDAY_0830_NEW_YORK):
        return client.post(
            path,
            data=urlencode(pairs),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )


def stored(session: Session) -> tuple[int, int]:
    inbound = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
    outbound = session.scalar(select(func.count()).select_from(OutboundMessage)) or 0
    return int(inbound), int(outbound)


@pytest.fixture
def pairs(session: Session) -> list[tuple[str, str]]:
    patient = make_patient(session)
    return list(inbound_params(patient.phone_e164, "done").items())


def test_a_correct_signature_is_accepted(client: Any, session: Session, pairs: Any) -> None:
    response = raw_post(client, PATH, pairs, sign(PATH, pairs))
    assert response.status_code == 200
    assert stored(session)[0] == 1


@pytest.mark.parametrize(
    "signature",
    [None, "", "   ", "bm90IGEgc2lnbmF0dXJl", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="],
    ids=["missing", "empty", "blank", "forged", "zeros"],
)
def test_missing_empty_or_forged_signatures_get_403_and_nothing_is_stored(
    client: Any, session: Session, pairs: Any, signature: str | None
) -> None:
    response = raw_post(client, PATH, pairs, signature)
    assert response.status_code == 403
    assert stored(session) == (0, 0)


def test_a_signature_for_other_parameters_is_refused(
    client: Any, session: Session, pairs: Any
) -> None:
    signature = sign(PATH, pairs)
    tampered = [(k, "STOP" if k == "Body" else v) for k, v in pairs]
    assert raw_post(client, PATH, tampered, signature).status_code == 403
    assert stored(session) == (0, 0)


def test_a_signature_made_with_another_token_is_refused(
    client: Any, session: Session, pairs: Any
) -> None:
    other = RequestValidator("another-account-token").compute_signature(
        PUBLIC_BASE_URL + PATH, dict(pairs)
    )
    assert raw_post(client, PATH, pairs, other).status_code == 403
    assert stored(session) == (0, 0)


def test_a_signature_over_flasks_own_url_is_refused(
    client: Any, session: Session, pairs: Any
) -> None:
    """Behind a proxy Twilio signs the public URL; request.url (http://localhost/...) is not it."""
    local = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost" + PATH, dict(pairs))
    assert raw_post(client, PATH, pairs, local).status_code == 403
    assert stored(session) == (0, 0)


def test_repeated_keys_and_surrounding_whitespace_are_signed_as_sent(
    client: Any, session: Session, pairs: Any
) -> None:
    sent = [(k, "  done \n" if k == "Body" else v) for k, v in pairs]
    sent += [("MediaUrl0", "https://a.test/1"), ("Tag", "b"), ("Tag", "a"), ("Tag", " a ")]
    response = raw_post(client, PATH, sent, sign(PATH, sent))
    assert response.status_code == 200
    assert session.scalars(select(InboundMessage.body)).one() == "  done \n"


def test_a_signature_over_trimmed_or_deduplicated_values_is_refused(
    client: Any, session: Session, pairs: Any
) -> None:
    sent = [(k, "  done " if k == "Body" else v) for k, v in pairs] + [("Tag", "x"), ("Tag", "y")]
    trimmed = [(k, v.strip()) for k, v in sent]
    deduplicated = [p for p in sent if p != ("Tag", "y")]
    assert raw_post(client, PATH, sent, sign(PATH, trimmed)).status_code == 403
    assert raw_post(client, PATH, sent, sign(PATH, deduplicated)).status_code == 403
    assert stored(session) == (0, 0)


def test_the_query_string_is_part_of_the_signed_url(
    client: Any, session: Session, pairs: Any
) -> None:
    path = PATH + "?source=twilio&note=a%20b&empty="
    assert raw_post(client, path, pairs, sign(PATH, pairs)).status_code == 403
    assert stored(session) == (0, 0)
    response = raw_post(client, path, pairs, sign(path, pairs))
    assert response.status_code == 200
    assert stored(session)[0] == 1
