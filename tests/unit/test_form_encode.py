"""The fast form encoder must produce exactly what urllib would: it is the body of every
request the Twilio SDK sends, and Twilio signs and parses it."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from coachbot.sms.twilio_client import form_encode

_values = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.lists(st.text(max_size=10), max_size=3),
)


@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=6))
def test_form_encode_matches_urlencode_for_any_form(data: dict[str, object]) -> None:
    assert form_encode(data) == urlencode(data, doseq=True)


def test_a_typical_message_create_is_encoded_like_urllib() -> None:
    data = {
        "To": "+16175550142",
        "From": "+16175550100",
        "Body": "Maya, a 10-minute walk counts! Reply DONE or minutes. ¿Listo?",
        "StatusCallback": "https://coach.example.test/sms/status?nudge=42&x=a b",
    }
    assert form_encode(data) == urlencode(data)
