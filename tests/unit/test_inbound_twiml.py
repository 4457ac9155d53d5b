"""The webhook builds its TwiML answer and its streak without the heavier general tools; both
must match what those tools produce."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from twilio.twiml.messaging_response import MessagingResponse

from coachbot.queries.adherence import streak_from_instants
from coachbot.services.inbound import EMPTY_TWIML, twiml_message


def _sdk(body: str) -> str:
    response = MessagingResponse()
    response.message(body)
    return str(response)


def test_twiml_message_escapes_markup_like_the_sdk() -> None:
    body = "Tom & Jerry <b>\"done\"</b> 'ok' ]]> 👍 ñ\nline two"
    assert twiml_message(body) == _sdk(body)


def test_empty_twiml_is_the_sdks_empty_response() -> None:
    assert str(MessagingResponse()) == EMPTY_TWIML


# The body text never holds XML-invalid control characters: replies are rendered templates.
# (A list, not a tuple: mypy infers ("Cs",) as tuple[str], not the Literal category names.)
_XML_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"), max_size=200
).filter(lambda s: all(c in "\t\n" or ord(c) >= 0x20 for c in s))


@given(_XML_TEXT)
def test_twiml_message_is_byte_for_byte_the_sdks(body: str) -> None:
    assert twiml_message(body) == _sdk(body)


def test_streak_counts_local_days_ending_today() -> None:
    now = dt.datetime(2024, 3, 10, 3, 30, tzinfo=dt.UTC)  # still 9 March in New York
    instants = [
        dt.datetime(2024, 3, 9, 23, 0, tzinfo=dt.UTC),  # 9 March local
        dt.datetime(2024, 3, 8, 12, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 6, 12, 0, tzinfo=dt.UTC),  # a gap on 7 March ends it
    ]
    assert streak_from_instants(instants, "America/New_York", now) == 2
    assert streak_from_instants(instants, "UTC", now) == 0
