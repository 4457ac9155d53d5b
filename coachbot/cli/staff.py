"""`coachbot create-user`: a staff account from the command line."""

from __future__ import annotations

import os

import click

from coachbot.cli.common import friendly_errors, runtime_of
from coachbot.domain.clock import utcnow


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["clinician", "operator", "admin"]))
@click.option("--name", "display_name", default=None, help="Display name (default: from email).")
@click.option("--phone", default=None, help="Mobile for on-call pages (E.164, e.g. +16175550142).")
@click.pass_context
@friendly_errors
def create_user(
    ctx: click.Context, email: str, role: str, display_name: str | None, phone: str | None
) -> None:
    """Create a staff account; the password comes from COACHBOT_PASSWORD or a prompt."""
    from coachbot.services.staff import create_staff_user

    password = os.environ.get("COACHBOT_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    runtime = runtime_of(ctx)
    user = create_staff_user(
        runtime.session_factory,
        email=email,
        role=role,
        password=password,
        now=utcnow(),
        actor="cli",
        display_name=display_name,
        phone=phone,
        default_region=runtime.settings.default_region,
    )
    click.echo(f"created {user.role} {user.email} (id {user.id})")
