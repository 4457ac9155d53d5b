"""Twilio's webhooks. Without a valid signature both answer 403; after the check:

- /sms/inbound answers 200 with TwiML, even when the database fails: the pipeline keeps
  every message it was given (or logs why it could not), and an error status would only
  make Twilio retry a message we hold.
- /sms/status answers 204, or 503 when the callback could not be recorded (the database is
  down). 503 on purpose, not 204: the event was not stored, so the answer says so. Twilio
  retries a failed callback only under a retry policy that covers 5xx (the `rp` connection
  override); without one, the 503 shows in Twilio's debugger, the nudge keeps the state its
  send gave it (`sent`), and an ambiguous send is still settled by reconciliation.

Neither answers 500 (tests/web/test_status_callback_retry.py and
tests/web/test_inbound_resilience.py hold both)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from coachbot.domain.clock import utcnow
from coachbot.runtime import Runtime
from coachbot.services.delivery import StatusCallback, handle_status
from coachbot.services.inbound import EMPTY_TWIML, InboundSms, handle_inbound
from coachbot.services.media_fetch import fetch_after_answer
from coachbot.services.paging import Pager
from coachbot.web.signature import is_valid_twilio_request

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/sms")


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["coachbot"]
    return runtime


def _forbidden() -> Response:
    log.warning("webhook %s refused: missing or invalid signature", request.path)
    return Response("forbidden", status=403, mimetype="text/plain")


def _twiml(body: str) -> Response:
    return Response(body, status=200, mimetype="application/xml")


@bp.post("/inbound")
def inbound() -> Response:
    runtime = _runtime()
    settings = runtime.settings
    if not is_valid_twilio_request(settings.twilio_auth_token, settings.public_base_url, request):
        return _forbidden()
    sid = (request.form.get("MessageSid") or request.form.get("SmsSid") or "").strip()
    sender = (request.form.get("From") or "").strip()
    if not sid or not sender:
        # Signed but not a message: nothing to keep, nothing to retry.
        log.warning("signed inbound without MessageSid or From ignored")
        return _twiml(EMPTY_TWIML)
    try:
        num_media = int(request.form.get("NumMedia", "0") or 0)
    except ValueError:
        num_media = 0
    sms = InboundSms(
        provider_sid=sid[:64],
        from_number=sender,
        to_number=(request.form.get("To") or "").strip(),
        body=request.form.get("Body", ""),
        num_media=num_media,
        media_urls=_media_urls(num_media),
    )
    pager: Pager | None = current_app.extensions.get("coachbot_pager")
    # The pipeline wakes the pager once it has committed a message that raised an alert a
    # person must be paged for; the clock tick pages whatever a lost wake-up left.
    answer = handle_inbound(
        runtime.session_factory,
        runtime.library,
        settings,
        sms,
        utcnow(),
        after_commit=pager.kick if pager is not None else None,
    )
    response = _twiml(answer)
    if sms.media_urls:
        # Fetched once the answer is sent (the WSGI server closes the response then), so
        # Twilio never waits on a download; the tick retries what this does not finish.
        response.call_on_close(
            fetch_after_answer(
                runtime.session_factory,
                runtime.gateway,
                runtime.library,
                settings,
                sms.provider_sid,
            )
        )
    return response


def _media_urls(num_media: int) -> tuple[str, ...]:
    """The MMS's MediaUrl0..N (Twilio sends at most 10)."""
    urls = (request.form.get(f"MediaUrl{i}", "").strip() for i in range(min(num_media, 10)))
    return tuple(url for url in urls if url)


def _nudge_id(param: str) -> int | None:
    """The nudge a status callback URL names, or None: only plain ASCII digits that fit the
    integer column ("²".isdigit() is true, and int() refuses it)."""
    if param.isascii() and param.isdigit() and len(param) <= 10 and int(param) < 2**31:
        return int(param)
    return None


@bp.post("/status")
def status() -> Response:
    runtime = _runtime()
    settings = runtime.settings
    if not is_valid_twilio_request(settings.twilio_auth_token, settings.public_base_url, request):
        return _forbidden()
    sid = (request.form.get("MessageSid") or request.form.get("SmsSid") or "").strip()
    state = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").strip()
    nudge_param = request.args.get("nudge", "")
    callback = StatusCallback(
        provider_sid=sid[:64],
        status=state,
        error_code=(request.form.get("ErrorCode") or "").strip()[:10] or None,
        nudge_id=_nudge_id(nudge_param),
    )
    if sid:
        try:
            handle_status(runtime.session_factory, callback, utcnow())
        except Exception:
            # 503, not 204: the event was not stored (see the module's notes on retries);
            # the log tells operators why.
            log.exception("status callback for %s failed", sid)
            return Response("", status=503)
    return Response("", status=204)
