"""What every `coachbot` command shares: the lazily built runtime, typed options, and one way
of turning bad input into a clear message and exit status 2."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.exc import OperationalError

from coachbot.domain.clock import parse_instant
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.errors import ValidationFailed
from coachbot.settings import Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def runtime_of(ctx: click.Context) -> Runtime:
    """Settings and the database are only touched by commands that need them."""
    root = ctx.find_root()
    if root.obj is None:
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        root.obj = build_runtime(settings)
        root.call_on_close(root.obj.close)
    runtime: Runtime = root.obj
    return runtime


def friendly_errors(func: F) -> F:
    """Field errors from services and an unreachable database become messages, not tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationFailed as exc:
            for field, message in exc.errors.items():
                click.echo(f"error: {field}: {message}", err=True)
            sys.exit(2)
        except OperationalError as exc:
            fail(f"database unavailable or not migrated ({exc.orig}); run `coachbot db upgrade`")

    return wrapper  # type: ignore[return-value]


class _InstantParam(click.ParamType[dt.datetime]):
    """An ISO-8601 instant with an offset; without one it is refused rather than guessed."""

    name = "instant"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return value
        try:
            return parse_instant(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


INSTANT = _InstantParam()
NOW_OPTION = click.option(
    "--now", "now", type=INSTANT, default=None, help="ISO-8601 instant with offset (default: now)."
)


# The service's field names for the caregiver and the close watch, as the options are spelled.
CAREGIVER_OPTIONS = {
    "caregiver_phone": "--caregiver",
    "caregiver_name": "--caregiver-name",
    "caregiver_language": "--caregiver-language",
    "close_watch_from": "--close-watch-from",
    "close_watch_days": "--close-watch-days",
}


@contextmanager
def named_options(options: Mapping[str, str]) -> Iterator[None]:
    """Field errors raised inside are named by the option that was typed (`friendly_errors`
    prints them), so "--caregiver-name: ... required" says which flag to add."""
    try:
        yield
    except ValidationFailed as exc:
        raise ValidationFailed({options.get(k, k): m for k, m in exc.errors.items()}) from exc
