"""The Messages resource's rules, as the fake Twilio server answers them: a parsed
`Request` and the `Reply` it gets, Twilio's error bodies, the credentials check, the
create form's validation against Twilio's OpenAPI description (so a gateway that sends a
parameter Twilio does not know fails here rather than in production), the message's JSON
resource and the list's filtering and paging. Functions of their inputs; the server
(tests/support/fake_twilio.py) holds the state and the lock."""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tests.support.fake_twilio_media import MediaReply
from tests.support.fake_twilio_model import API_VERSION, MessagesSpec, RecordedMessage, num_segments

MESSAGES_PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$"
)
_E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
_CHANNEL_RE = re.compile(r"^(?:whatsapp|messenger|rcs):(?P<address>.+)$")
_ALPHA_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SHORT_CODE_RE = re.compile(r"^\d{3,6}$")
_MAX_BODY = 1600


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    kind: str
    account_sid: str | None
    sid: str | None
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorization: str | None

    def flat(self) -> dict[str, str]:
        source = self.form if self.method == "POST" else self.query
        return {k: v[0] for k, v in source.items() if v}


@dataclass(frozen=True)
class Reply:
    status: int
    payload: Mapping[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)
    # A file's bytes (a media download) instead of a JSON payload.
    raw: bytes | None = None
    content_type: str | None = None


class Drop(Exception):
    """Raised inside request handling to abort the connection with a RST."""


def twilio_error(
    status: int, code: int | None, message: str, headers: Mapping[str, str] | None = None
) -> Reply:
    payload: dict[str, Any] = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
        "status": status,
    }
    return Reply(status, payload, dict(headers or {}))


def from_media(reply: MediaReply) -> Reply:
    return Reply(reply.status, reply.payload, raw=reply.raw, content_type=reply.content_type)


def rfc2822(moment: datetime | None) -> str | None:
    return None if moment is None else email.utils.format_datetime(moment)


def unauthorized(request: Request, account_sid: str) -> Reply:
    """Twilio's 401 for missing or wrong credentials."""
    header = request.authorization or ""
    message = "Authentication Error - No credentials provided"
    if header.startswith("Basic "):
        try:
            user = base64.b64decode(header[6:], validate=True).decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        message = (
            "Authentication Error - invalid username" if user != account_sid else "Authenticate"
        )
    return twilio_error(401, 20003, message, {"WWW-Authenticate": 'Basic realm="Twilio API"'})


def validate_create(spec: MessagesSpec, form: Mapping[str, list[str]]) -> Reply | None:
    """Twilio's answer to a create form it refuses, or None when it would accept it."""
    params = spec.create_params
    for name, values in form.items():
        schema = params.get(name)
        if schema is None:
            return twilio_error(400, 20001, f"Unknown parameter: {name}")
        if len(values) > 1 and schema.get("type") != "array":
            return twilio_error(400, 20422, f"Parameter {name} given more than once")
        problem = _schema_problem(name, schema, values)
        if problem:
            return twilio_error(400, 20422, problem)

    def first(name: str) -> str:
        values = form.get(name)
        return values[0] if values else ""

    to = first("To")
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not is_recipient(to):
        return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    sender, service = first("From"), first("MessagingServiceSid")
    if not sender and not service:
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if sender and service:
        # Twilio itself lets the service win; coachbot must pick one, so the
        # fake is stricter to catch a gateway that sends both.
        return twilio_error(400, 20422, "Specify exactly one of 'From' and 'MessagingServiceSid'.")
    if sender and not is_sender(sender):
        return twilio_error(400, 21212, f"Invalid 'From' Phone Number: {sender}")
    if not first("Body") and not form.get("MediaUrl") and not first("ContentSid"):
        return twilio_error(400, 21602, "Message body is required.")
    if len(first("Body")) > _MAX_BODY:
        return twilio_error(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    callback = first("StatusCallback")
    if callback:
        parts = urlsplit(callback)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            return twilio_error(400, 21609, f"Invalid StatusCallback url: {callback}")
    return None


def _schema_problem(name: str, schema: Mapping[str, Any], values: list[str]) -> str | None:
    kind = schema.get("type")
    for value in values:
        if kind == "boolean" and value not in {"true", "false", "True", "False"}:
            return f"Invalid {name}: {value!r} is not a boolean"
        if kind == "integer" and not re.fullmatch(r"-?\d+", value):
            return f"Invalid {name}: {value!r} is not an integer"
        if kind == "number":
            try:
                float(value)
            except ValueError:
                return f"Invalid {name}: {value!r} is not a number"
        enum_values = schema.get("enum")
        if enum_values is not None and value not in enum_values:
            return f"Invalid {name}: {value!r} is not one of {sorted(enum_values)}"
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            return f"Invalid {name}: {value!r}"
    return None


def message_resource(m: RecordedMessage) -> dict[str, Any]:
    """The message's JSON resource as Twilio returns it (read under the fake's lock: a
    status change may be writing it)."""
    base = f"/2010-04-01/Accounts/{m.account_sid}/Messages/{m.sid}"
    return {
        "account_sid": m.account_sid,
        "api_version": API_VERSION,
        "body": m.body,
        "date_created": rfc2822(m.date_created),
        "date_sent": rfc2822(m.date_sent),
        "date_updated": rfc2822(m.date_updated),
        "direction": "outbound-api",
        "error_code": m.error_code,
        "error_message": None,
        "from": m.from_number,
        "messaging_service_sid": m.messaging_service_sid,
        "num_media": str(len(m.media_urls)),
        "num_segments": str(num_segments(m.body)),
        "price": None,
        "price_unit": "USD",
        "sid": m.sid,
        "status": m.status,
        "subresource_uris": {
            "media": f"{base}/Media.json",
            "feedback": f"{base}/Feedback.json",
        },
        "to": m.to,
        "uri": f"{base}.json",
    }


# ------------------------------------------------------------ fetch / list


def list_page(
    request: Request, list_params: frozenset[str], messages: Sequence[RecordedMessage]
) -> Reply:
    """One page of the message list, newest first, filtered as the query asks (called
    under the fake's lock, with every message it accepted, oldest first)."""
    query = request.query
    for name in query:
        if name not in list_params:
            return twilio_error(400, 20001, f"Unknown parameter: {name}")

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    try:
        page = int(first("Page") or 0)
        page_size = min(int(first("PageSize") or 50), 1000)
    except ValueError:
        return twilio_error(400, 20422, "Invalid Page or PageSize")
    if page < 0 or page_size < 1:
        return twilio_error(400, 20422, "Invalid Page or PageSize")
    to, sender = first("To"), first("From")
    on, before, after = (
        (first(name) or "")[:10] or None for name in ("DateSent", "DateSent<", "DateSent>")
    )

    def keep(m: RecordedMessage) -> bool:
        if to is not None and m.to != to:
            return False
        if sender is not None and m.from_number != sender:
            return False
        if on or before or after:
            if m.date_sent is None:
                return False
            day = m.date_sent.astimezone(UTC).date().isoformat()
            if (on and day != on) or (before and day > before) or (after and day < after):
                return False
        return True

    # Twilio lists newest first.
    matching = [m for m in reversed(messages) if keep(m)]
    start = page * page_size
    chunk = [message_resource(m) for m in matching[start : start + page_size]]
    filters = [(k, v[0]) for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}]
    path = request.path

    def page_uri(number: int, *, token: bool = False) -> str:
        params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if token:
            params.append(("PageToken", f"PA{number}"))
        return f"{path}?{urlencode(params, quote_via=quote)}"

    has_next = start + page_size < len(matching)
    payload = {
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": page_uri(0),
        "next_page_uri": page_uri(page + 1, token=True) if has_next else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": page_uri(page - 1, token=True) if page > 0 else None,
        "start": start,
        "uri": page_uri(page),
        "messages": chunk,
    }
    return Reply(200, payload)


# ------------------------------------------------------------ wire


def is_recipient(value: str) -> bool:
    channel = _CHANNEL_RE.match(value)
    return bool(_E164_RE.match(channel["address"] if channel else value))


def is_sender(value: str) -> bool:
    channel = _CHANNEL_RE.match(value)
    if channel:
        return bool(_E164_RE.match(channel["address"]))
    return bool(
        _E164_RE.match(value) or _SHORT_CODE_RE.match(value) or _ALPHA_SENDER_RE.match(value)
    )
