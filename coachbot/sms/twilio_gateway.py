"""Twilio backend: the real `twilio` SDK, an explicit timeout, and one error mapping table."""

from __future__ import annotations

import logging
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException

from coachbot.domain.phones import mask_phone
from coachbot.domain.provider_errors import Outcome, ProviderError, classify
from coachbot.settings import Settings
from coachbot.sms.gateway import OutgoingSms, SendFailure, SendReceipt
from coachbot.sms.twilio_client import (
    build_twilio_client,
    last_retry_after,
    may_have_reached_twilio,
)

log = logging.getLogger(__name__)


class TwilioGateway:
    name = "twilio"

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
            raise ValueError("the twilio backend needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self._from = settings.twilio_from_number
        self._service_sid = settings.twilio_messaging_service_sid
        # One client per process so its HTTP connection pool is reused between sends.
        self._client = client or build_twilio_client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
            timeout=settings.twilio_timeout_seconds,
        )

    def send(self, sms: OutgoingSms) -> SendReceipt:
        params: dict[str, Any] = {"to": sms.to, "body": sms.body}
        if self._service_sid:
            params["messaging_service_sid"] = self._service_sid
        else:
            params["from_"] = self._from
        if sms.status_callback:
            params["status_callback"] = sms.status_callback
        try:
            message = self._client.messages.create(**params)
        except TwilioRestException as exc:
            outcome = classify(ProviderError(http_status=exc.status, code=exc.code))
            log.warning(
                "twilio refused sms to %s: http=%s code=%s -> %s",
                mask_phone(sms.to),
                exc.status,
                exc.code,
                outcome,
            )
            raise SendFailure(
                outcome,
                code=exc.code,
                http_status=exc.status,
                retry_after=last_retry_after(self._client),
            ) from exc
        except requests.exceptions.RequestException as exc:
            # Once the request may have been written, Twilio may have accepted it: the
            # nudge becomes ambiguous instead of being resent blindly.
            outcome = Outcome.AMBIGUOUS if may_have_reached_twilio(exc) else Outcome.RETRY
            log.warning(
                "twilio send to %s: %s -> %s", mask_phone(sms.to), type(exc).__name__, outcome
            )
            raise SendFailure(outcome, detail=type(exc).__name__) from exc
        return SendReceipt(provider_sid=str(message.sid), status=str(message.status))
