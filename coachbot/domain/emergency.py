"""Emergency and crisis numbers by country, keyed by the region of the sender's phone number.

A red-flag reply names the emergency number of the patient's country, and a crisis reply
(suicidal thoughts, self-harm) names the country's crisis line as well. Both come from this
table, keyed by the region of the E.164 number the text came from (``phonenumbers`` region
codes: "+44..." is GB), and the clinic can override any region with the EMERGENCY_NUMBERS
setting (see `parse_overrides`).

Choices, written down so a clinic can review them:

* A country is in the table only with numbers we know to be current and national: the
  emergency number, and a crisis line only where one national line answers everyone (a
  regional or language-split line, as in Belgium, is left out rather than guessed).
* Every EU country gets 112; where no national crisis line is listed, the crisis reply
  names 112 alone (the `crisis_no_line` template).
* The fallback for a region not in the table is 112 with no crisis line: 112 is the GSM
  standard emergency number, and a mobile routes it to the local emergency service in
  nearly every country, including ones whose own number is different. A wrong crisis line
  would be worse than none, so the fallback names none.
* An unknown sender with no usable number gets the numbers of the clinic's DEFAULT_REGION.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True)
class EmergencyNumbers:
    emergency: str
    crisis_line: str | None = None
    crisis_name: str | None = None


FALLBACK = EmergencyNumbers("112")

_US_988 = EmergencyNumbers("911", "988", "988 Suicide & Crisis Lifeline")
_EU_112 = EmergencyNumbers("112")
_UK = EmergencyNumbers("999", "116 123", "Samaritans")

NUMBERS: Mapping[str, EmergencyNumbers] = {
    # North America: 988 answers calls and texts in the US, its territories and Canada.
    "US": _US_988,
    "PR": _US_988,
    "VI": _US_988,
    "GU": _US_988,
    "AS": _US_988,
    "MP": _US_988,
    "CA": EmergencyNumbers("911", "988", "9-8-8 Suicide Crisis Helpline"),
    "MX": EmergencyNumbers("911", "800 911 2000", "Linea de la Vida"),
    "GB": _UK,
    # The Crown Dependencies have their own region codes (+44 7911... is Guernsey) and the
    # same numbers: 999, and Samaritans.
    "GG": _UK,
    "JE": _UK,
    "IM": _UK,
    "AU": EmergencyNumbers("000", "13 11 14", "Lifeline"),
    "NZ": EmergencyNumbers("111", "1737", "Need to talk? 1737"),
    # The European Union: 112 everywhere; a national crisis line where one is well established.
    "AT": EmergencyNumbers("112", "142", "Telefonseelsorge"),
    "BE": _EU_112,
    "BG": _EU_112,
    "HR": _EU_112,
    "CY": _EU_112,
    "CZ": _EU_112,
    "DK": EmergencyNumbers("112", "70 201 201", "Livslinien"),
    "EE": _EU_112,
    "FI": _EU_112,
    "FR": EmergencyNumbers("112", "3114", "3114"),
    "DE": EmergencyNumbers("112", "0800 111 0 111", "TelefonSeelsorge"),
    "GR": _EU_112,
    "HU": _EU_112,
    "IE": EmergencyNumbers("112", "116 123", "Samaritans"),
    "IT": _EU_112,
    "LV": _EU_112,
    "LT": _EU_112,
    "LU": _EU_112,
    "MT": _EU_112,
    "NL": EmergencyNumbers("112", "113", "113 Zelfmoordpreventie"),
    "PL": _EU_112,
    "PT": _EU_112,
    "RO": _EU_112,
    "SK": _EU_112,
    "SI": _EU_112,
    "ES": EmergencyNumbers("112", "024", "Linea 024"),
    "SE": EmergencyNumbers("112", "90101", "Mind Sjalvmordslinjen"),
}

# What an operator may type for a number: digits with single spaces or hyphens between them,
# an optional leading "+". Short codes ("112", "024") and long lines ("800 911 2000") both fit.
_NUMBER_RE = re.compile(r"^\+?\d+(?:[ -]\d+)*$")


class EmergencyNumbersError(ValueError):
    """An EMERGENCY_NUMBERS override that cannot be used; the message names the bad part."""


def region_of(phone_e164: str | None, default_region: str) -> str:
    """The region code of an E.164 number, or `default_region` when it has none we can tell."""
    if phone_e164:
        try:
            number = phonenumbers.parse(phone_e164, None)
        except phonenumbers.NumberParseException:
            return default_region.upper()
        # A number outside every known range still has a country code: its main region
        # ("+44" is GB) is a better guess than the clinic's.
        region = phonenumbers.region_code_for_number(number)
        if not region and number.country_code:
            region = phonenumbers.region_code_for_country_code(number.country_code)
        # "001" is a non-geographic number (satellite, global services), "ZZ" unknown.
        if region and region not in ("001", "ZZ"):
            return str(region)
    return default_region.upper()


def numbers_for(
    phone_e164: str | None,
    overrides: Mapping[str, EmergencyNumbers] | None = None,
    *,
    default_region: str = "US",
) -> EmergencyNumbers:
    """The emergency number and crisis line for the country of `phone_e164`.

    The clinic's override for that region wins over the table; a region in neither gets
    `FALLBACK` (112, no crisis line). With no number (an unknown sender whose number cannot
    be read) the region is `default_region`, the clinic's own.
    """
    region = region_of(phone_e164, default_region)
    if overrides and region in overrides:
        return overrides[region]
    return NUMBERS.get(region, FALLBACK)


def crisis_template(numbers: EmergencyNumbers) -> str:
    """The crisis reply's template id: one names the crisis line, one is for a country without."""
    return "crisis" if numbers.crisis_line else "crisis_no_line"


def template_variables(numbers: EmergencyNumbers) -> dict[str, object]:
    """The variables the safety templates (red_flag, crisis, crisis_no_line) take from `numbers`.

    The crisis line's name stays out of the SMS: names carry accents outside GSM-7 (which
    would halve the room in a two-segment reply), and the number is what the patient needs.
    """
    variables: dict[str, object] = {"emergency_number": numbers.emergency}
    if numbers.crisis_line:
        variables["crisis_line"] = numbers.crisis_line
    return variables


def parse_overrides(text: str | None) -> dict[str, EmergencyNumbers]:
    """Read the EMERGENCY_NUMBERS setting.

    Format, chosen to be typed into an environment file without quoting trouble: entries
    separated by commas, each ``REGION=EMERGENCY[;CRISIS_LINE[;CRISIS_NAME]]``, e.g.
    ``GB=999;116 123;Samaritans,US=911;988,PL=112``. An entry replaces the table's entry for
    that region whole: ``PL=112`` means "112 and no crisis line". Raises
    `EmergencyNumbersError` naming the entry and what is wrong with it.
    """
    overrides: dict[str, EmergencyNumbers] = {}
    if text is None or not text.strip():
        return overrides
    for raw_entry in text.split(","):
        entry = raw_entry.strip()
        if not entry:
            continue
        region_raw, sep, rest = entry.partition("=")
        region = region_raw.strip().upper()
        if not sep:
            raise EmergencyNumbersError(
                f"{entry!r}: expected REGION=EMERGENCY[;CRISIS_LINE[;CRISIS_NAME]]"
            )
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise EmergencyNumbersError(f"{entry!r}: unknown region code {region!r}")
        if region in overrides:
            raise EmergencyNumbersError(f"{entry!r}: region {region} is given twice")
        fields = [field.strip() for field in rest.split(";")]
        if len(fields) > 3:
            raise EmergencyNumbersError(
                f"{entry!r}: at most three fields after '=': emergency;crisis line;crisis name"
            )
        emergency = fields[0]
        crisis_line = fields[1] if len(fields) > 1 and fields[1] else None
        crisis_name = fields[2] if len(fields) > 2 and fields[2] else None
        if not _NUMBER_RE.match(emergency):
            raise EmergencyNumbersError(
                f"{entry!r}: emergency number {emergency!r} must be digits (spaces allowed)"
            )
        if crisis_line is not None and not _NUMBER_RE.match(crisis_line):
            raise EmergencyNumbersError(
                f"{entry!r}: crisis line {crisis_line!r} must be digits (spaces allowed)"
            )
        if crisis_name is not None and crisis_line is None:
            raise EmergencyNumbersError(f"{entry!r}: a crisis name needs a crisis line")
        overrides[region] = EmergencyNumbers(emergency, crisis_line, crisis_name)
    return overrides
