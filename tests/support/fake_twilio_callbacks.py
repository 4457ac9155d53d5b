"""Status callbacks of the fake Twilio server: a message's status changed as Twilio's
would change it, and the signed form POSTed to its StatusCallback URL (what coachbot's
/sms/status receives). A base class of FakeTwilio (tests/support/fake_twilio.py)."""

from __future__ import annotations

import http.client
import queue
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

from tests.support.fake_twilio_model import (
    API_VERSION,
    CallbackAttempt,
    MessagesSpec,
    RecordedMessage,
)


class StatusCallbacks:
    """FakeTwilio's status changes and the signed status callbacks it posts, as Twilio
    would after a send (`auto_status`) or when a test asks (`send_status_callback`). A
    part of FakeTwilio (its base class), kept apart because it is the one part that
    speaks to coachbot rather than answering it; the attributes below are FakeTwilio's."""

    account_sid: str
    service_number: str
    callback_timeout: float
    auto_status: tuple[str, ...]
    _spec: MessagesSpec
    _lock: threading.RLock
    _by_sid: dict[str, RecordedMessage]
    _callbacks: list[CallbackAttempt]
    _clock: Callable[[], datetime]
    _validator: RequestValidator
    _callback_queue: queue.Queue[str | None]
    _stopping: threading.Event

    # ------------------------------------------------------------ status callbacks

    def set_status(self, sid: str, status: str, *, error_code: int | None = None) -> None:
        """Change a message's status as Twilio would, without a callback."""
        if status not in self._spec.statuses:
            raise ValueError(f"not a Twilio message status: {status!r}")
        with self._lock:
            self._set_status_locked(self._by_sid[sid], status, error_code)

    def _set_status_locked(
        self, message: RecordedMessage, status: str, error_code: int | None
    ) -> None:
        now = self._clock()
        message.status = status
        message.error_code = error_code
        message.date_updated = now
        if status in {"sending", "sent", "delivered", "undelivered", "failed", "read"}:
            if message.date_sent is None:
                message.date_sent = now
            if message.from_number is None:
                message.from_number = self.service_number

    def status_callback_params(self, sid: str, status: str) -> dict[str, str]:
        with self._lock:
            message = self._by_sid[sid]
            params = {
                "AccountSid": message.account_sid,
                "ApiVersion": API_VERSION,
                "From": message.from_number or self.service_number,
                "MessageSid": message.sid,
                "MessageStatus": status,
                "SmsSid": message.sid,
                "SmsStatus": status,
                "To": message.to,
            }
            if message.messaging_service_sid:
                params["MessagingServiceSid"] = message.messaging_service_sid
            return params

    def send_status_callback(self, sid: str, status: str, *, error_code: int | None = None) -> int:
        """POST Twilio's signed status callback for ``sid`` to its StatusCallback URL.

        Updates the stored message first (so a fetch in the callback handler
        sees the new status) and returns the HTTP status of the callback.
        Raises KeyError for an unknown sid, ValueError when the message has no
        StatusCallback, OSError when the receiver cannot be reached.
        """
        if status not in self._spec.statuses:
            raise ValueError(f"not a Twilio message status: {status!r}")
        with self._lock:
            message = self._by_sid[sid]
            url = message.status_callback
            if not url:
                raise ValueError(f"message {sid} has no StatusCallback")
            self._set_status_locked(message, status, error_code)
        params = self.status_callback_params(sid, status)
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        try:
            http_status = self._post_form(url, params)
        except OSError as exc:
            with self._lock:
                self._callbacks.append(CallbackAttempt(sid, status, url, None, repr(exc)))
            raise
        with self._lock:
            self._callbacks.append(CallbackAttempt(sid, status, url, http_status))
        return http_status

    def _post_form(self, url: str, params: Mapping[str, str]) -> int:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"unsupported StatusCallback URL: {url!r}")
        conn_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_class(parts.hostname, parts.port, timeout=self.callback_timeout)
        body = urlencode(params).encode("ascii")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        try:
            conn.request(
                "POST",
                target,
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": self._validator.compute_signature(url, params),
                    "User-Agent": "TwilioProxy/1.1",
                    "Connection": "close",
                },
            )
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def _callback_worker(self) -> None:
        while True:
            sid = self._callback_queue.get()
            if sid is None or self._stopping.is_set():
                return
            for status in self.auto_status:
                try:
                    self.send_status_callback(sid, status)
                except ValueError:
                    self.set_status(sid, status)
                except OSError:
                    # Recorded in callback_attempts; Twilio does not retry either.
                    break
