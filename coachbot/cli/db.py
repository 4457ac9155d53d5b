"""`coachbot db upgrade`: apply the Alembic migrations."""

from __future__ import annotations

import click
from sqlalchemy.exc import OperationalError

from coachbot.cli.common import fail, runtime_of


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply the Alembic migrations."""
    from coachbot.migrate import upgrade

    runtime = runtime_of(ctx)
    try:
        upgrade(runtime.settings.database_url, revision)
    except OperationalError as exc:
        fail(f"cannot migrate: {exc.orig}")
    click.echo(f"database at {revision}")
