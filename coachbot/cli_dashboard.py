"""`coachbot api-token create|revoke|list`: the CLI side of per-user API tokens."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.clock import utcnow
from coachbot.models import StaffUser
from coachbot.runtime import build_runtime
from coachbot.services.api_tokens import create_token, revoke_token, tokens_of
from coachbot.services.errors import ValidationFailed
from coachbot.settings import Settings, SettingsError


@click.group("api-token")
def api_token() -> None:
    """Per-user tokens for the JSON API /api/v1 (only a hash is stored)."""


def _user(session: Session, email: str) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user is None:
        click.echo(f"error: no staff account {email!r}", err=True)
        sys.exit(2)
    return user


@api_token.command("create")
@click.option("--email", required=True, help="The staff member the token acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. 'research export'.")
def create(email: str, name: str) -> None:
    """Create a token and print it once."""
    runtime = build_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            user = _user(session, email)
            try:
                issued = create_token(session, user, name=name, now=utcnow(), actor="cli")
            except ValidationFailed as exc:
                for field, message in exc.errors.items():
                    click.echo(f"error: {field}: {message}", err=True)
                sys.exit(2)
            click.echo(f"token id {issued.token.id} for {user.email} (shown once):")
            click.echo(issued.secret)
    finally:
        runtime.close()


@api_token.command("revoke")
@click.option("--id", "token_id", type=int, required=True)
def revoke(token_id: int) -> None:
    """Revoke a token by id."""
    runtime = build_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            if not revoke_token(session, token_id, now=utcnow(), actor="cli"):
                click.echo(f"error: no token with id {token_id}", err=True)
                sys.exit(2)
        click.echo(f"token {token_id} revoked")
    finally:
        runtime.close()


@api_token.command("list")
@click.option("--email", required=True)
def list_tokens(email: str) -> None:
    """A staff member's tokens: id, name, prefix, status."""
    runtime = build_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            user = _user(session, email)
            for token in tokens_of(session, user.id):
                state = "revoked" if token.revoked_at else "active"
                click.echo(f"{token.id}\t{token.name}\t{token.prefix}…\t{state}")
    finally:
        runtime.close()


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
