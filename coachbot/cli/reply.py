"""`coachbot reply`: one text from a phone through the real inbound pipeline, from the shell.

It lets the README's loop and scripted checks run with the same clock as `coachbot tick --now`:
the text is handled as if Twilio had posted it at `--now`, the reply the patient would get is
printed, and the pager then runs at that instant so a red flag's page goes out as it would.
"""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from xml.etree import ElementTree

import click

from coachbot.cli.common import NOW_OPTION, fail, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow
from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.runtime import Runtime

NO_REPLY = "(no reply)"


@click.command("reply")
@click.option("--phone", required=True, help="The sender's number; E.164 or national format.")
@click.option("--body", required=True, help="The text, exactly as the phone would send it.")
@NOW_OPTION
@click.pass_context
@friendly_errors
def reply(ctx: click.Context, phone: str, body: str, now: dt.datetime | None) -> None:
    """Handle one inbound text as if Twilio had posted it; print the reply."""
    from coachbot.services.inbound import InboundSms, handle_inbound, is_kept

    runtime = runtime_of(ctx)
    settings = runtime.settings
    try:
        sender = parse_mobile(phone, settings.default_region)
    except InvalidPhoneNumber as exc:
        fail(f"--phone: {exc}")
    now = now or utcnow()
    sms = InboundSms(
        # Unique like Twilio's, and recognisable in the timeline as typed at the console.
        provider_sid=f"SMcli{uuid.uuid4().hex}",
        from_number=sender,
        to_number=settings.twilio_from_number or settings.clinic_phone,
        body=body,
    )
    twiml = handle_inbound(runtime.session_factory, runtime.library, settings, sms, now)
    # The webhook never fails (Twilio would retry into the same fault), so it answers empty
    # TwiML even when nothing could be stored: here that must not read as "(no reply)".
    if not is_kept(runtime.session_factory, sms.provider_sid):
        fail("the text could not be stored (see the log above); nothing was handled")
    click.echo(reply_text(twiml) or NO_REPLY)
    _run_pager(runtime, now)


def reply_text(twiml: str) -> str | None:
    """The message(s) in a TwiML answer, one per line; None for an empty answer."""
    root = ElementTree.fromstring(twiml)  # noqa: S314  (our own pipeline's output, not input)
    bodies = [message.text or "" for message in root.iter("Message")]
    return "\n".join(bodies) if any(bodies) else None


def _run_pager(runtime: Runtime, now: dt.datetime) -> None:
    # The pager lives in coachbot.services.paging, which deployments without on-call paging
    # do not have: the reply still works there, it just pages nobody.
    try:
        paging = importlib.import_module("coachbot.services.paging")
    except ModuleNotFoundError as exc:
        if exc.name != "coachbot.services.paging":
            raise  # the pager is there but broken: say so
        return
    run_due = getattr(paging, "run_due", None)
    if run_due is None:
        return
    summary = run_due(runtime.session_factory, runtime.gateway, runtime.settings, now)
    if getattr(summary, "eventful", False):
        click.echo(summary.as_text(), err=True)
