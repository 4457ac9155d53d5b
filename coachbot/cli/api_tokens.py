"""`coachbot api-token create|revoke|list`: the CLI side of per-user API tokens."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from coachbot.cli.common import fail, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow
from coachbot.models import StaffUser
from coachbot.queries.staff import staff_by_email
from coachbot.services.api_tokens import create_token, revoke_token, tokens_of


@click.group("api-token")
def api_token() -> None:
    """Per-user tokens for the JSON API /api/v1 (only a hash is stored)."""


def _user(session: Session, email: str) -> StaffUser:
    user = staff_by_email(session, email)
    if user is None:
        fail(f"no staff account {email!r}")
    return user


@api_token.command("create")
@click.option("--email", required=True, help="The staff member the token acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. 'research export'.")
@click.pass_context
@friendly_errors
def create(ctx: click.Context, email: str, name: str) -> None:
    """Create a token and print it once."""
    runtime = runtime_of(ctx)
    with runtime.read_session_factory() as session:
        user = _user(session, email)
    issued = create_token(runtime.session_factory, user.id, name=name, now=utcnow(), actor="cli")
    click.echo(f"token id {issued.token.id} for {user.email} (shown once):")
    click.echo(issued.secret)


@api_token.command("revoke")
@click.option("--id", "token_id", type=int, required=True)
@click.pass_context
@friendly_errors
def revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke a token by id."""
    if not revoke_token(runtime_of(ctx).session_factory, token_id, now=utcnow(), actor="cli"):
        fail(f"no token with id {token_id}")
    click.echo(f"token {token_id} revoked")


@api_token.command("list")
@click.option("--email", required=True)
@click.pass_context
@friendly_errors
def list_tokens(ctx: click.Context, email: str) -> None:
    """A staff member's tokens: id, name, prefix, status."""
    with runtime_of(ctx).read_session_factory() as session:
        user = _user(session, email)
        for token in tokens_of(session, user.id):
            state = "revoked" if token.revoked_at else "active"
            click.echo(f"{token.id}\t{token.name}\t{token.prefix}…\t{state}")
