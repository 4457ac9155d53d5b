"""Twilio backend: the real `twilio` SDK, an explicit timeout, and one error mapping table.

Single sends (welcome, confirmations) use the pooled synchronous client. Dispatch sends a
batch through `send_many`: the SDK's async client on an event loop per batch, at most
`max_concurrency` calls in flight, paced by a token bucket charged in segments per sender.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests
from twilio.base.exceptions import TwilioRestException

from coachbot.domain.pacing import TokenBucket, bucket_for
from coachbot.domain.phones import mask_phone
from coachbot.domain.provider_errors import Outcome, ProviderError, classify
from coachbot.settings import Settings
from coachbot.sms.gateway import (
    BatchSender,
    OutgoingSms,
    Pacing,
    ProviderMessage,
    ResultHook,
    SendFailure,
    SendReceipt,
    SendResult,
)
from coachbot.sms.twilio_client import (
    build_async_twilio_client,
    build_twilio_client,
    last_retry_after,
    may_have_reached_twilio,
    may_have_reached_twilio_async,
)

log = logging.getLogger(__name__)

# With no Retry-After, a throttled sender waits this long before the batch goes on.
DEFAULT_THROTTLE_PAUSE = 1.0


@dataclass(frozen=True)
class ProviderQuery:
    to: str


class TwilioGateway:
    name = "twilio"

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
            raise ValueError("the twilio backend needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self._settings = settings
        self._from = settings.twilio_from_number
        self._service_sid = settings.twilio_messaging_service_sid
        # One client per process so its HTTP connection pool is reused between sends.
        self._client = client or build_twilio_client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
            timeout=settings.twilio_timeout_seconds,
        )
        self._buckets: dict[str, TokenBucket] = {}
        # The SDK imports its Messages API modules on first use (tens of ms): pay that when
        # the process starts, not inside the first tick's first send.
        _ = self._client.messages

    @property
    def sender(self) -> str:
        """The pacing key: Twilio meters each sender (number or service) separately."""
        return self._service_sid or self._from or "default"

    def _params(self, sms: OutgoingSms) -> dict[str, Any]:
        params: dict[str, Any] = {"to": sms.to, "body": sms.body}
        if self._service_sid:
            params["messaging_service_sid"] = self._service_sid
        else:
            params["from_"] = self._from
        if sms.status_callback:
            params["status_callback"] = sms.status_callback
        return params

    def _refused(
        self, sms: OutgoingSms | ProviderQuery, exc: TwilioRestException, client: Any
    ) -> SendFailure:
        outcome = classify(ProviderError(http_status=exc.status, code=exc.code))
        log.warning(
            "twilio refused sms to %s: http=%s code=%s -> %s",
            mask_phone(sms.to),
            exc.status,
            exc.code,
            outcome,
        )
        return SendFailure(
            outcome,
            code=exc.code,
            http_status=exc.status,
            retry_after=last_retry_after(client),
        )

    def send(self, sms: OutgoingSms) -> SendReceipt:
        try:
            message = self._client.messages.create(**self._params(sms))
        except TwilioRestException as exc:
            raise self._refused(sms, exc, self._client) from exc
        except requests.exceptions.RequestException as exc:
            # Once the request may have been written, Twilio may have accepted it: the
            # nudge becomes ambiguous instead of being resent blindly.
            outcome = Outcome.AMBIGUOUS if may_have_reached_twilio(exc) else Outcome.RETRY
            log.warning(
                "twilio send to %s: %s -> %s", mask_phone(sms.to), type(exc).__name__, outcome
            )
            raise SendFailure(outcome, detail=type(exc).__name__) from exc
        return SendReceipt(provider_sid=str(message.sid), status=str(message.status))

    def recent_messages(self, to: str, since: dt.datetime) -> list[ProviderMessage]:
        """Twilio's own record of what went to `to` since `since`, newest first.

        Filtered on DateCreated here rather than with the API's DateSent filter: DateSent
        stays empty until the carrier hand-off, so a message still queued at Twilio would be
        filtered out and wrongly "proven" absent.
        """
        found: list[ProviderMessage] = []
        try:
            for record in self._client.messages.stream(to=to, page_size=50):
                created = record.date_created
                if created is not None and created < since:
                    break  # Twilio lists newest first: the rest are older still
                found.append(
                    ProviderMessage(
                        provider_sid=str(record.sid),
                        status=str(record.status),
                        body=str(record.body or ""),
                        created_at=created or since,
                    )
                )
        except TwilioRestException as exc:
            raise self._refused(ProviderQuery(to), exc, self._client) from exc
        except requests.exceptions.RequestException as exc:
            raise SendFailure(Outcome.RETRY, detail=type(exc).__name__) from exc
        return found

    # --- concurrent batches ---------------------------------------------------------

    def _async_client(self, pool_size: int = 0) -> Any:
        settings = self._settings
        assert settings.twilio_account_sid is not None
        assert settings.twilio_auth_token is not None
        return build_async_twilio_client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
            timeout=settings.twilio_timeout_seconds,
            pool_size=pool_size,
        )

    def _bucket(self, segments_per_second: float | None) -> TokenBucket | None:
        if segments_per_second is None:
            self._buckets.pop(self.sender, None)
            return None
        bucket = self._buckets.get(self.sender)
        if bucket is None or bucket.rate != segments_per_second:
            bucket = bucket_for(segments_per_second)
            self._buckets[self.sender] = bucket
        return bucket

    def send_many(
        self, batch: Sequence[OutgoingSms], pacing: Pacing, on_result: ResultHook | None = None
    ) -> list[SendResult]:
        if not batch:
            return []
        with self.batch_sender(pacing) as send:
            return send(batch, on_result)

    @contextmanager
    def batch_sender(self, pacing: Pacing) -> Iterator[BatchSender]:
        """An event loop and one pool of kept-alive connections for a whole dispatch run.

        Reconnecting for every batch cost a TCP (in production, TLS) handshake per
        connection per batch. The loop runs only inside `send`, so nothing outlives the
        context: no thread, and the pool is closed on exit.
        """
        loop = asyncio.new_event_loop()
        try:
            client = loop.run_until_complete(self._open_client(max(1, pacing.max_concurrency)))
            try:

                def send(
                    batch: Sequence[OutgoingSms], on_result: ResultHook | None
                ) -> list[SendResult]:
                    if not batch:
                        return []
                    return loop.run_until_complete(
                        self._send_with(client, batch, pacing, on_result)
                    )

                yield send
            finally:
                loop.run_until_complete(client.http_client.close())
        finally:
            loop.close()

    async def _open_client(self, pool_size: int) -> Any:
        # aiohttp binds its session to the loop running when it is created.
        return self._async_client(pool_size)

    async def _send_with(
        self,
        client: Any,
        batch: Sequence[OutgoingSms],
        pacing: Pacing,
        on_result: ResultHook | None,
    ) -> list[SendResult]:
        loop = asyncio.get_running_loop()
        # Between batches the loop was idle: let it notice connections the server closed
        # meanwhile, so a stale one is dropped instead of failing a send as ambiguous.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        bucket = self._bucket(pacing.segments_per_second)
        slots = asyncio.Semaphore(max(1, pacing.max_concurrency))
        throttled = asyncio.Event()

        async def one(index: int, sms: OutgoingSms) -> SendResult:
            async with slots:
                if bucket is not None:
                    wait = bucket.reserve(sms.segments, loop.time())
                    if wait > 0:
                        await asyncio.sleep(wait)
                # Once the provider has said "slow down", nothing more starts in this batch.
                if throttled.is_set():
                    return None
                result = await self._send_async(client, sms)
            if isinstance(result, SendFailure) and result.outcome is Outcome.RETRY:
                throttled.set()
                if bucket is not None:
                    pause = result.retry_after or DEFAULT_THROTTLE_PAUSE
                    bucket.pause_until(loop.time() + pause)
            if on_result is not None:
                on_result(index, result)
            return result

        return list(await asyncio.gather(*(one(i, sms) for i, sms in enumerate(batch))))

    async def _send_async(self, client: Any, sms: OutgoingSms) -> SendReceipt | SendFailure:
        try:
            message = await client.messages.create_async(**self._params(sms))
        except TwilioRestException as exc:
            return self._refused(sms, exc, client)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = Outcome.AMBIGUOUS if may_have_reached_twilio_async(exc) else Outcome.RETRY
            log.warning(
                "twilio send to %s: %s -> %s", mask_phone(sms.to), type(exc).__name__, outcome
            )
            return SendFailure(outcome, detail=type(exc).__name__)
        return SendReceipt(provider_sid=str(message.sid), status=str(message.status))
