"""One frozen settings object, read from the environment (12-factor).

Every problem is collected before failing, so an operator fixing a deployment sees
all bad or missing variables at once instead of one per restart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from coachbot.domain.emergency import (
    EmergencyNumbers,
    EmergencyNumbersError,
    numbers_for,
    parse_overrides,
)

DEFAULT_DATABASE_URL = "sqlite:///instance/coachbot.db"
# A recognisable placeholder: development works out of the box, production refuses it.
DEFAULT_SECRET_KEY = "dev-insecure-secret-change-me"  # noqa: S105  (refused in production)

Environment = Literal["development", "production"]
SmsBackend = Literal["console", "twilio"]


class SettingsError(ValueError):
    """The environment does not describe a runnable coachbot; `problems` names each variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


# The demo clinic's name: texts read "Hi Maya, Riverside Recovery Clinic has signed you up",
# never a placeholder such as "Your care team" in the middle of a sentence ("Your Your care
# team coachbot messages"). Production must set CLINIC_NAME.
DEVELOPMENT_CLINIC_NAME = "Riverside Recovery Clinic"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = DEFAULT_SECRET_KEY
    env: Environment = "development"
    debug: bool = False
    sms_backend: SmsBackend = "console"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None
    twilio_timeout_seconds: float = 10.0
    public_base_url: str = "http://127.0.0.1:5000"
    clinic_name: str = DEVELOPMENT_CLINIC_NAME
    clinic_phone: str = "+16175550199"
    default_region: str = "US"
    tick_seconds: float = 5.0
    # The clinic's corrections to the emergency / crisis-line table, by phone region.
    emergency_numbers: Mapping[str, EmergencyNumbers] = field(default_factory=dict)
    # On-call paging (issue #13 item 6).
    smtp_url: str | None = None  # smtp://host:port or smtp+starttls://user:pass@host:port
    paging_from_email: str = "coachbot@localhost"
    paging_repage_minutes: float = 5.0
    paging_backup_minutes: float = 15.0
    # The zone the weekly on-call shifts are written in.
    clinic_timezone: str = "UTC"
    # Whether the web process runs its own pager thread; tests build apps without one.
    pager_enabled: bool = False
    # Where handwriting samples texted by MMS are kept (FileMediaStore), issue #16 item 4.
    media_dir: str = "instance/media"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def emergency_numbers_for(self, phone_e164: str | None) -> EmergencyNumbers:
        """The emergency number and crisis line for a sender, with this clinic's overrides."""
        return numbers_for(phone_e164, self.emergency_numbers, default_region=self.default_region)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every variable read, by concern; every problem collected before failing."""
        env = _Env(os.environ if environ is None else environ)
        database = _database(env)  # read first: the problems keep the order of the variables
        mode = _mode(env)
        fields: dict[str, Any] = {
            **database,
            **mode,
            **_twilio(env, mode["sms_backend"]),
            **_clinic(env),
            **_tick(env),
            **_emergency(env),
            **_paging(env),
        }
        _production_problems(env, fields)
        if env.problems:
            raise SettingsError(env.problems)
        return cls(**fields)


class _Env:
    """The environment being read, and the problems found in it so far."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def flag(self, *names: str, default: str) -> bool:
        raw = next((v for v in map(self.get, names) if v is not None), default)
        return raw.lower() in ("1", "true", "yes", "on")


def _database(env: _Env) -> dict[str, Any]:
    database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        url = make_url(database_url)
        if url.get_backend_name() not in ("sqlite", "postgresql") or url.drivername not in (
            "sqlite",
            "sqlite+pysqlite",
            "postgresql",
            "postgres",
            "postgresql+psycopg",
        ):
            env.problems.append(
                f"DATABASE_URL: unsupported database {url.get_backend_name()!r}"
                " (use sqlite:/// or postgresql+psycopg://)"
            )
        elif url.drivername in ("postgresql", "postgres"):
            # Normalise the common 'postgresql://' spelling to the psycopg 3 driver we ship.
            database_url = url.set(drivername="postgresql+psycopg").render_as_string(
                hide_password=False
            )
    except ArgumentError:
        env.problems.append(
            "DATABASE_URL: not a database URL"
            " (expected e.g. sqlite:///instance/coachbot.db or"
            " postgresql+psycopg://user@host:5432/db)"
        )
    return {"database_url": database_url}


def _mode(env: _Env) -> dict[str, Any]:
    coachbot_env = env.get("COACHBOT_ENV") or "development"
    if coachbot_env not in ("development", "production"):
        env.problems.append(
            f"COACHBOT_ENV: must be 'development' or 'production', not {coachbot_env!r}"
        )
        coachbot_env = "development"
    debug = env.flag("FLASK_DEBUG", "COACHBOT_DEBUG", default="0")
    sms_backend = (env.get("SMS_BACKEND") or "console").lower()
    if sms_backend not in ("console", "twilio"):
        env.problems.append(f"SMS_BACKEND: must be 'console' or 'twilio', not {sms_backend!r}")
        sms_backend = "console"
    return {
        "env": coachbot_env,
        "debug": debug,
        "sms_backend": sms_backend,
        "secret_key": env.get("SECRET_KEY") or DEFAULT_SECRET_KEY,
    }


def _twilio(env: _Env, sms_backend: str) -> dict[str, Any]:
    problems = env.problems
    account_sid = env.get("TWILIO_ACCOUNT_SID")
    auth_token = env.get("TWILIO_AUTH_TOKEN")
    from_number = env.get("TWILIO_FROM_NUMBER")
    service_sid = env.get("TWILIO_MESSAGING_SERVICE_SID")
    api_base_url = env.get("TWILIO_API_BASE_URL")
    if account_sid is not None and not (account_sid.startswith("AC") and len(account_sid) == 34):
        problems.append("TWILIO_ACCOUNT_SID: must look like AC followed by 32 characters")
    if service_sid is not None and not service_sid.startswith("MG"):
        problems.append("TWILIO_MESSAGING_SERVICE_SID: must start with MG")
    if from_number is not None and not _is_e164(from_number):
        problems.append("TWILIO_FROM_NUMBER: must be an E.164 number such as +16175550100")
    if api_base_url is not None and not _is_http_url(api_base_url):
        problems.append("TWILIO_API_BASE_URL: must be an http(s) URL")
    if sms_backend == "twilio":
        if account_sid is None:
            problems.append("TWILIO_ACCOUNT_SID: required when SMS_BACKEND=twilio")
        if from_number is None and service_sid is None:
            problems.append(
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID:"
                " one is required when SMS_BACKEND=twilio"
            )
        # The webhooks verify signatures with the auth token, so it is needed on any
        # backend once a real Twilio number points at us; without it every webhook is 403.
        if auth_token is None:
            problems.append("TWILIO_AUTH_TOKEN: required when SMS_BACKEND=twilio")
    timeout_raw = env.get("TWILIO_TIMEOUT_SECONDS") or "10"
    try:
        timeout = float(timeout_raw)
        if not 0 < timeout <= 120:
            raise ValueError
    except ValueError:
        problems.append("TWILIO_TIMEOUT_SECONDS: must be a number of seconds in (0, 120]")
        timeout = 10.0
    return {
        "twilio_account_sid": account_sid,
        "twilio_auth_token": auth_token,
        "twilio_from_number": from_number,
        "twilio_messaging_service_sid": service_sid,
        "twilio_api_base_url": api_base_url,
        "twilio_timeout_seconds": timeout,
    }


def _clinic(env: _Env) -> dict[str, Any]:
    public_base_url = (env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    if not _is_http_url(public_base_url):
        env.problems.append(
            "PUBLIC_BASE_URL: must be an http(s) URL such as https://coach.example.org"
        )
    clinic_phone = env.get("CLINIC_PHONE") or "+16175550199"
    if not _is_e164(clinic_phone):
        env.problems.append("CLINIC_PHONE: must be an E.164 number such as +16175550199")
    default_region = (env.get("DEFAULT_REGION") or "US").upper()
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        env.problems.append(f"DEFAULT_REGION: unknown region code {default_region!r}")
    return {
        "public_base_url": public_base_url,
        "clinic_name": env.get("CLINIC_NAME") or DEVELOPMENT_CLINIC_NAME,
        "clinic_phone": clinic_phone,
        "default_region": default_region,
    }


def _tick(env: _Env) -> dict[str, Any]:
    tick_raw = env.get("TICK_SECONDS") or "5"
    try:
        tick_seconds = float(tick_raw)
        if not 0.5 <= tick_seconds <= 300:
            raise ValueError
    except ValueError:
        env.problems.append("TICK_SECONDS: must be a number of seconds between 0.5 and 300")
        tick_seconds = 5.0
    # MEDIA_DIR is read here with the tick: the clock retries the samples the webhook left.
    return {"tick_seconds": tick_seconds, "media_dir": env.get("MEDIA_DIR") or "instance/media"}


def _emergency(env: _Env) -> dict[str, Any]:
    emergency_numbers: dict[str, EmergencyNumbers] = {}
    try:
        emergency_numbers = parse_overrides(env.get("EMERGENCY_NUMBERS"))
    except EmergencyNumbersError as exc:
        env.problems.append(
            f"EMERGENCY_NUMBERS: {exc} (format: REGION=EMERGENCY[;CRISIS_LINE[;NAME]],..."
            " e.g. GB=999;116 123;Samaritans,US=911;988)"
        )
    return {"emergency_numbers": emergency_numbers}


def _paging(env: _Env) -> dict[str, Any]:
    problems = env.problems
    smtp_url = env.get("SMTP_URL")
    if smtp_url is not None and urlsplit(smtp_url).scheme not in ("smtp", "smtp+starttls"):
        problems.append("SMTP_URL: must be smtp://host:port or smtp+starttls://host:port")
    paging_from_email = env.get("PAGING_FROM_EMAIL") or "coachbot@localhost"
    if "@" not in paging_from_email:
        problems.append("PAGING_FROM_EMAIL: must be an e-mail address")
    repage = _minutes(env.get("PAGING_REPAGE_MINUTES"), 5.0, "PAGING_REPAGE_MINUTES", problems)
    backup = _minutes(env.get("PAGING_BACKUP_MINUTES"), 15.0, "PAGING_BACKUP_MINUTES", problems)
    clinic_timezone = env.get("CLINIC_TIMEZONE") or "UTC"
    try:
        ZoneInfo(clinic_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"CLINIC_TIMEZONE: unknown IANA time zone {clinic_timezone!r}")
    return {
        "smtp_url": smtp_url,
        "paging_from_email": paging_from_email,
        "paging_repage_minutes": repage,
        "paging_backup_minutes": backup,
        "clinic_timezone": clinic_timezone,
        "pager_enabled": env.flag("PAGER_ENABLED", default="1"),
    }


def _production_problems(env: _Env, fields: dict[str, Any]) -> None:
    """What production refuses that development allows."""
    if fields["env"] != "production":
        return
    secret_key: str = fields["secret_key"]
    if secret_key == DEFAULT_SECRET_KEY or len(secret_key) < 32:
        env.problems.append(
            "SECRET_KEY: production needs a random secret of at least 32 characters"
        )
    if fields["debug"]:
        env.problems.append("FLASK_DEBUG: debug mode is refused in production")
    if fields["database_url"].startswith("sqlite"):
        env.problems.append("DATABASE_URL: production refuses SQLite; use PostgreSQL")
    if not fields["public_base_url"].startswith("https://"):
        env.problems.append("PUBLIC_BASE_URL: production needs an https:// URL")
    if fields["twilio_auth_token"] is None:
        env.problems.append("TWILIO_AUTH_TOKEN: required in production")
    if env.get("CLINIC_NAME") is None:
        # Every welcome, HELP and STOP text names the clinic: the development default is the
        # demo clinic's name, which must never reach a real patient.
        env.problems.append("CLINIC_NAME: required in production (the clinic's name in texts)")


def _minutes(raw: str | None, default: float, name: str, problems: list[str]) -> float:
    try:
        value = float(raw) if raw is not None else default
        if not 0.1 <= value <= 1440:
            raise ValueError
    except ValueError:
        problems.append(f"{name}: must be a number of minutes between 0.1 and 1440")
        return default
    return value


def _is_e164(value: str) -> bool:
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(parsed)) and value == phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.E164
    )


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
