"""The `coachbot` console script: thin calls into services, clear errors, non-zero exits.

One module per command group; this one holds the root group and registers them all."""

from __future__ import annotations

import logging

import click

from coachbot.cli.api_tokens import api_token
from coachbot.cli.db import db
from coachbot.cli.enroll import demo_seed, enroll
from coachbot.cli.oncall import alerts, oncall
from coachbot.cli.patient import patient
from coachbot.cli.processes import clock, serve, tick
from coachbot.cli.program import program
from coachbot.cli.program import settings as settings_group
from coachbot.cli.reply import reply
from coachbot.cli.reports import adherence
from coachbot.cli.schedule import reconcile, schedule
from coachbot.cli.staff import create_user
from coachbot.content.cli import templates


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """coachbot: SMS coaching for recovery from neurotoxicity."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per successful tick every few seconds drowns everything else out.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


# `coachbot --help` lists the commands alphabetically, whatever the order here.
for _command in (
    templates,
    schedule,
    reconcile,
    api_token,
    program,
    settings_group,
    reply,
    oncall,
    alerts,
    patient,
    db,
    create_user,
    enroll,
    tick,
    adherence,
    demo_seed,
    serve,
    clock,
):
    main.add_command(_command)
