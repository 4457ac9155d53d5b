"""Posting to our webhooks exactly as Twilio does: form-encoded and signed with the auth token,
so every web test runs the real signature check."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE_URL = "https://coach.example.test"
CLINIC_NUMBER = "+16175550100"

_sid_counter = itertools.count(1)


def new_message_sid() -> str:
    return f"SM{next(_sid_counter):032x}"


def sign(path_and_query: str, params: dict[str, str] | list[tuple[str, str]]) -> str:
    validator = RequestValidator(AUTH_TOKEN)
    if isinstance(params, list):
        grouped: dict[str, list[str]] = {}
        for key, value in params:
            grouped.setdefault(key, []).append(value)
        return str(validator.compute_signature(PUBLIC_BASE_URL + path_and_query, _Multi(grouped)))
    return str(validator.compute_signature(PUBLIC_BASE_URL + path_and_query, params))


class _Multi(dict[str, list[str]]):
    def getlist(self, key: str) -> list[str]:
        return self[key]


def post_signed(client: Any, path: str, params: dict[str, str], **kwargs: Any) -> Any:
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(path, params)},
        **kwargs,
    )


def inbound_params(from_number: str, body: str, sid: str | None = None) -> dict[str, str]:
    sid = sid or new_message_sid()
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": from_number,
        "To": CLINIC_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
    }
