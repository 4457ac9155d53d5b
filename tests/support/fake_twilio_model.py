"""What the fake Twilio server (tests/support/fake_twilio.py) knows and keeps: its defaults,
the slice of Twilio's OpenAPI description it checks requests against (`load_spec`), the
messages it accepted (`RecordedMessage`), the faults a test scripts (`Fault`, `FaultRule`),
the status callbacks it made (`CallbackAttempt`) and how many SMS segments a body costs
(`num_segments`). Data only, so the server's modules and the tests share one vocabulary."""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "c0ac4b07" * 4
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
DEFAULT_SPEC_PATH = Path(
    os.environ.get("COACHBOT_TWILIO_SPEC", "/work/shared/twilio/twilio_api_v2010.json")
)
# Twilio picks the sender from the service's pool; the fake's pool has one number.
DEFAULT_SERVICE_NUMBER = "+15005550006"
_MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def num_segments(body: str) -> int:
    """SMS segments Twilio bills for ``body``.

    Spanish text is a trap: é/ñ/ü are GSM-7 but á/í/ó/ú are not, and a single
    one switches the whole message to UCS-2 (70 characters per segment).
    """
    if not body:
        return 1
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in body):
        septets = sum(2 if c in _GSM7_EXTENDED else 1 for c in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


@dataclass(frozen=True)
class MessagesSpec:
    create_params: Mapping[str, Mapping[str, Any]]
    list_params: frozenset[str]
    statuses: frozenset[str]


@functools.lru_cache(maxsize=4)
def load_spec(path: str) -> MessagesSpec:
    with open(path, encoding="utf-8") as fh:
        spec = json.load(fh)
    schemas = spec["components"]["schemas"]
    operations = spec["paths"][_MESSAGES_PATH]
    form_schema = operations["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"][
        "schema"
    ]

    def resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return dict(schemas[ref.rsplit("/", 1)[-1]])
        return schema

    create = {name: resolve(schema) for name, schema in form_schema["properties"].items()}
    listing = frozenset(p["name"] for p in operations["get"]["parameters"] if p["in"] == "query")
    statuses = frozenset(schemas["message_enum_status"]["enum"])
    return MessagesSpec(create, listing, statuses)


@dataclass
class RecordedMessage:
    """A message the fake accepted, with the form exactly as the client sent it."""

    sid: str
    account_sid: str
    form: dict[str, list[str]]
    date_created: datetime
    status: str
    from_number: str | None
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None

    @property
    def to(self) -> str:
        return self.form["To"][0]

    @property
    def body(self) -> str:
        return self.field("Body") or ""

    @property
    def messaging_service_sid(self) -> str | None:
        return self.field("MessagingServiceSid")

    @property
    def status_callback(self) -> str | None:
        return self.field("StatusCallback")

    @property
    def media_urls(self) -> list[str]:
        return list(self.form.get("MediaUrl", []))

    def callback_param(self, name: str) -> str | None:
        """A query parameter of the StatusCallback URL (e.g. the nudge id)."""
        if not self.status_callback:
            return None
        values = parse_qs(urlsplit(self.status_callback).query).get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class CallbackAttempt:
    sid: str
    status: str
    url: str
    http_status: int | None
    error: str | None = None
