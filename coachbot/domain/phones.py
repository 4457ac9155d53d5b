"""Phone numbers: parse what people type into E.164, and mask numbers for logs."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

# US and Canadian numbering cannot tell a mobile from a landline, so "fixed line or
# mobile" is accepted there; anything that is clearly not a mobile (a landline where
# the plan says so, toll-free, premium, pager, VoIP) cannot receive our texts.
_TEXTABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


class InvalidPhoneNumber(ValueError):
    pass


def parse_mobile(raw: str, default_region: str = "US") -> str:
    """Return the E.164 form of a textable mobile number, or raise with a clear reason."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("a mobile number is required")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number")
    if phonenumbers.number_type(number) not in _TEXTABLE_TYPES:
        raise InvalidPhoneNumber(f"{text!r} is not a mobile number that can receive texts")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def mask_phone(number: str | None) -> str:
    """Only the last 4 digits ever reach a log line."""
    if not number:
        return "<none>"
    digits = [c for c in number if c.isdigit()]
    return "***" + "".join(digits[-4:])
