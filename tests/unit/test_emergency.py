import pytest

from coachbot.domain.emergency import (
    FALLBACK,
    NUMBERS,
    EmergencyNumbers,
    EmergencyNumbersError,
    crisis_template,
    numbers_for,
    parse_overrides,
    region_of,
    template_variables,
)
from coachbot.settings import Settings, SettingsError

# The countries the issue names, by a real-looking mobile number from each.
US = "+16175550123"
CA = "+14165550123"
GB = "+447400123456"
GUERNSEY = "+447911123456"  # +44 but its own region, GG
ES = "+34612345678"
MX = "+525512345678"
AU = "+61412345678"
DE = "+4915123456789"
IT = "+393123456789"
JP = "+819012345678"


@pytest.mark.parametrize(
    ("phone", "emergency", "crisis_line"),
    [
        (US, "911", "988"),
        (CA, "911", "988"),
        (GB, "999", "116 123"),
        (GUERNSEY, "999", "116 123"),
        (ES, "112", "024"),
        (MX, "911", "800 911 2000"),
        (AU, "000", "13 11 14"),
        (DE, "112", "0800 111 0 111"),
        (IT, "112", None),
        (JP, "112", None),
    ],
)
def test_numbers_follow_the_country_of_the_phone(
    phone: str, emergency: str, crisis_line: str | None
) -> None:
    numbers = numbers_for(phone)
    assert (numbers.emergency, numbers.crisis_line) == (emergency, crisis_line)


def test_every_eu_country_gets_112() -> None:
    eu = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
    for region in eu.split():
        assert NUMBERS[region].emergency == "112", region


def test_a_country_not_in_the_table_gets_112_and_no_crisis_line() -> None:
    assert numbers_for(JP) == FALLBACK == EmergencyNumbers("112", None, None)


def test_a_number_outside_known_ranges_gets_its_country_codes_main_region() -> None:
    assert region_of("+447700900123", "US") == "GB"


@pytest.mark.parametrize("phone", [None, "", "not a number", "+8816123456"])
def test_a_sender_without_a_usable_country_gets_the_clinics_region(phone: str | None) -> None:
    assert region_of(phone, "gb") == "GB"
    assert numbers_for(phone, default_region="GB").emergency == "999"


def test_a_clinic_override_replaces_the_regions_whole_entry() -> None:
    overrides = {"GB": EmergencyNumbers("112"), "JP": EmergencyNumbers("119", "0570 064 556")}
    assert numbers_for(GB, overrides) == EmergencyNumbers("112")
    assert numbers_for(JP, overrides).crisis_line == "0570 064 556"
    assert numbers_for(US, overrides).emergency == "911"


def test_the_crisis_reply_without_a_line_is_chosen_when_the_country_has_none() -> None:
    assert crisis_template(numbers_for(GB)) == "crisis"
    assert crisis_template(numbers_for(JP)) == "crisis_no_line"
    assert template_variables(numbers_for(GB)) == {
        "emergency_number": "999",
        "crisis_line": "116 123",
    }
    assert template_variables(numbers_for(JP)) == {"emergency_number": "112"}


def test_overrides_read_regions_numbers_and_names() -> None:
    parsed = parse_overrides(" gb=999;116 123;Samaritans , US=911;988,PL=112,")
    assert parsed == {
        "GB": EmergencyNumbers("999", "116 123", "Samaritans"),
        "US": EmergencyNumbers("911", "988"),
        "PL": EmergencyNumbers("112"),
    }
    assert parse_overrides(None) == parse_overrides("  ") == {}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("GB", "expected REGION=EMERGENCY"),
        ("XX=112", "unknown region code 'XX'"),
        ("GB=999,GB=112", "given twice"),
        ("GB=nine-nine-nine", "emergency number 'nine-nine-nine'"),
        ("GB=999;call us", "crisis line 'call us'"),
        ("GB=999;;Samaritans", "a crisis name needs a crisis line"),
        ("GB=999;116 123;Samaritans;extra", "at most three fields"),
    ],
)
def test_a_bad_override_is_refused_naming_the_problem(text: str, named: str) -> None:
    with pytest.raises(EmergencyNumbersError, match=named):
        parse_overrides(text)


def test_settings_read_the_override_and_apply_it_by_the_senders_country() -> None:
    settings = Settings.from_env(
        {"EMERGENCY_NUMBERS": "GB=112;116 123;Samaritans", "DEFAULT_REGION": "GB"}
    )
    assert settings.emergency_numbers_for(GB) == EmergencyNumbers("112", "116 123", "Samaritans")
    assert settings.emergency_numbers_for(None).emergency == "112"
    assert settings.emergency_numbers_for(US).emergency == "911"


def test_settings_name_a_bad_override_with_the_expected_format() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"EMERGENCY_NUMBERS": "UK=999"})
    [problem] = caught.value.problems
    assert problem.startswith("EMERGENCY_NUMBERS: 'UK=999': unknown region code 'UK'")
    assert "GB=999;116 123;Samaritans" in problem
