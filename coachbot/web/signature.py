"""Twilio request signatures, checked against the URL Twilio was given.

Behind a proxy Flask's `request.url` is not what Twilio signed, so the URL is rebuilt as
PUBLIC_BASE_URL plus the raw path and query exactly as they arrived on the wire.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Request
from twilio.request_validator import RequestValidator


def signed_url(public_base_url: str, request: Request) -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        path = quote(request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", ""))
        query = request.environ.get("QUERY_STRING", "")
        raw = f"{path}?{query}" if query else path
    return public_base_url.rstrip("/") + raw


def is_valid_twilio_request(auth_token: str | None, public_base_url: str, request: Request) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not auth_token or not signature.strip():
        return False
    validator = RequestValidator(auth_token)
    # The MultiDict keeps repeated keys and values exactly as posted.
    return bool(validator.validate(signed_url(public_base_url, request), request.form, signature))
