"""A loopback HTTP server that speaks the slice of Twilio's REST API coachbot uses.

Only Twilio's servers and the carrier are fake: the real ``twilio`` SDK talks
HTTP to this server (see ``coachbot.sms.twilio_client.build_twilio_client``).
Requests are checked against Twilio's own OpenAPI description
(``CreateMessageRequest``), so a gateway that sends a parameter Twilio does not
know fails here rather than in production.

Endpoints (all under ``/2010-04-01/Accounts/{AccountSid}``):

* ``POST /Messages.json``: create (201 + message resource, or a Twilio error)
* ``GET  /Messages/{Sid}.json``: fetch (404 / 20404 when unknown)
* ``GET  /Messages.json``: list, filtered by To, From, DateSent[<>], paged
* ``GET  /Messages/{Sid}/Media/{Sid}``, ``GET|DELETE .../Media/{Sid}.json``: a received
  MMS's files (``add_media``), see fake_twilio_media.py

Faults (``inject``) script failures for the next N matching requests: Twilio
errors (invalid To, unsubscribed, not mobile, 429 + Retry-After, 500, 503),
hangs, connection resets before processing and *after* the message was
accepted (the ambiguous case), and per-request latency.

Run standalone for benchmarks and demos::

    python -m tests.support.fake_twilio --port 4010 --account-sid AC... --auth-token ...
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import email.utils
import enum
import functools
import hmac
import http.client
import json
import math
import os
import queue
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from tests.support.fake_twilio_media import MEDIA_PATH_RE, FakeMedia, MediaReply, load_media_spec

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_SPEC_PATH",
    "CallbackAttempt",
    "FakeTwilio",
    "Fault",
    "FaultKind",
    "FaultRule",
    "RecordedMessage",
    "main",
]

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "c0ac4b07" * 4
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
DEFAULT_SPEC_PATH = Path(
    os.environ.get("COACHBOT_TWILIO_SPEC", "/work/shared/twilio/twilio_api_v2010.json")
)
# Twilio picks the sender from the service's pool; the fake's pool has one number.
DEFAULT_SERVICE_NUMBER = "+15005550006"
_MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
_PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$"
)
_E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
_CHANNEL_RE = re.compile(r"^(?:whatsapp|messenger|rcs):(?P<address>.+)$")
_ALPHA_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SHORT_CODE_RE = re.compile(r"^\d{3,6}$")
_MAX_BODY = 1600

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def num_segments(body: str) -> int:
    """SMS segments Twilio bills for ``body``.

    Spanish text is a trap: é/ñ/ü are GSM-7 but á/í/ó/ú are not, and a single
    one switches the whole message to UCS-2 (70 characters per segment).
    """
    if not body:
        return 1
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in body):
        septets = sum(2 if c in _GSM7_EXTENDED else 1 for c in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class _MessagesSpec:
    create_params: Mapping[str, Mapping[str, Any]]
    list_params: frozenset[str]
    statuses: frozenset[str]


@functools.lru_cache(maxsize=4)
def _load_spec(path: str) -> _MessagesSpec:
    with open(path, encoding="utf-8") as fh:
        spec = json.load(fh)
    schemas = spec["components"]["schemas"]
    operations = spec["paths"][_MESSAGES_PATH]
    form_schema = operations["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"][
        "schema"
    ]

    def resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return dict(schemas[ref.rsplit("/", 1)[-1]])
        return schema

    create = {name: resolve(schema) for name, schema in form_schema["properties"].items()}
    listing = frozenset(p["name"] for p in operations["get"]["parameters"] if p["in"] == "query")
    statuses = frozenset(schemas["message_enum_status"]["enum"])
    return _MessagesSpec(create, listing, statuses)


# --------------------------------------------------------------------------- model


@dataclass
class RecordedMessage:
    """A message the fake accepted, with the form exactly as the client sent it."""

    sid: str
    account_sid: str
    form: dict[str, list[str]]
    date_created: datetime
    status: str
    from_number: str | None
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None

    @property
    def to(self) -> str:
        return self.form["To"][0]

    @property
    def body(self) -> str:
        return self.field("Body") or ""

    @property
    def messaging_service_sid(self) -> str | None:
        return self.field("MessagingServiceSid")

    @property
    def status_callback(self) -> str | None:
        return self.field("StatusCallback")

    @property
    def media_urls(self) -> list[str]:
        return list(self.form.get("MediaUrl", []))

    def callback_param(self, name: str) -> str | None:
        """A query parameter of the StatusCallback URL (e.g. the nudge id)."""
        if not self.status_callback:
            return None
        values = parse_qs(urlsplit(self.status_callback).query).get(name)
        return values[0] if values else None


class FaultKind(enum.StrEnum):
    ERROR = "error"
    HANG = "hang"
    RESET_BEFORE = "reset_before"
    RESET_AFTER = "reset_after"
    LATENCY = "latency"


@dataclass(frozen=True)
class Fault:
    """What to do to a request instead of (or on top of) serving it normally."""

    kind: FaultKind
    status: int = 0
    code: int | None = None
    message: str = ""
    retry_after: str | None = None
    seconds: float = 0.0
    accept: bool = False

    @classmethod
    def error(
        cls, status: int, code: int | None, message: str = "", *, retry_after: str | None = None
    ) -> Fault:
        return cls(FaultKind.ERROR, status, code, message or f"Fake error {code}", retry_after)

    @classmethod
    def invalid_to(cls) -> Fault:
        return cls.error(400, 21211, "Invalid 'To' Phone Number")

    @classmethod
    def unsubscribed(cls) -> Fault:
        return cls.error(400, 21610, "Attempt to send to unsubscribed recipient")

    @classmethod
    def not_mobile(cls) -> Fault:
        return cls.error(400, 21614, "'To' number is not a valid mobile number")

    @classmethod
    def rate_limited(cls, retry_after: float | str = 1) -> Fault:
        value = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        return cls.error(429, 20429, "Too Many Requests", retry_after=value)

    @classmethod
    def server_error(cls) -> Fault:
        return cls.error(500, 20500, "Internal Server Error")

    @classmethod
    def unavailable(cls, retry_after: float | str | None = None) -> Fault:
        value = None
        if retry_after is not None:
            value = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        return cls.error(503, 20503, "Service Unavailable", retry_after=value)

    @classmethod
    def hang(cls, *, accept: bool = False, max_seconds: float | None = None) -> Fault:
        """Hold the request unanswered until released, stopped or ``max_seconds``
        (default: the server's ``hang_limit``), then drop the connection.
        With ``accept=True`` the message is recorded first (ambiguous outcome)."""
        return cls(FaultKind.HANG, seconds=max_seconds or 0.0, accept=accept)

    @classmethod
    def reset_before(cls) -> Fault:
        """TCP RST after reading the request, before anything is recorded."""
        return cls(FaultKind.RESET_BEFORE)

    @classmethod
    def reset_after(cls) -> Fault:
        """Accept and record the message, then RST instead of answering."""
        return cls(FaultKind.RESET_AFTER)

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Delay, then serve normally."""
        return cls(FaultKind.LATENCY, seconds=seconds)


FormPredicate = Callable[[Mapping[str, str]], bool]


@dataclass
class FaultRule:
    """An injected fault; returned by ``FakeTwilio.inject`` so tests can inspect it."""

    fault: Fault
    remaining: int | None
    kinds: frozenset[str]
    predicate: FormPredicate | None
    hits: int = 0
    hit: threading.Event = field(default_factory=threading.Event)

    def matches(self, kind: str, params: Mapping[str, str]) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if kind not in self.kinds:
            return False
        return self.predicate is None or self.predicate(params)


@dataclass(frozen=True)
class CallbackAttempt:
    sid: str
    status: str
    url: str
    http_status: int | None
    error: str | None = None


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    kind: str
    account_sid: str | None
    sid: str | None
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorization: str | None

    def flat(self) -> dict[str, str]:
        source = self.form if self.method == "POST" else self.query
        return {k: v[0] for k, v in source.items() if v}


@dataclass(frozen=True)
class _Reply:
    status: int
    payload: Mapping[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)
    # A file's bytes (a media download) instead of a JSON payload.
    raw: bytes | None = None
    content_type: str | None = None


class _Drop(Exception):
    """Raised inside request handling to abort the connection with a RST."""


def _twilio_error(
    status: int, code: int | None, message: str, headers: Mapping[str, str] | None = None
) -> _Reply:
    payload: dict[str, Any] = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
        "status": status,
    }
    return _Reply(status, payload, dict(headers or {}))


def _from_media(reply: MediaReply) -> _Reply:
    return _Reply(reply.status, reply.payload, raw=reply.raw, content_type=reply.content_type)


def _rfc2822(moment: datetime | None) -> str | None:
    return None if moment is None else email.utils.format_datetime(moment)


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in one write, but the client's next request on a
    # kept-alive connection must not wait for a delayed ACK either.
    disable_nagle_algorithm = True
    server_version = "FakeTwilio/1.0"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, threading.current_thread(), add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, threading.current_thread(), add=False)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET
    do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request to stderr would dominate benchmark timings.
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connects when a benchmark opens many at once.
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeTwilio) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup of the host, which can
        # stall for seconds on a box without a resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


# --------------------------------------------------------------------------- fake


class FakeTwilio:
    """Loopback Twilio Messages API. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        spec_path: str | Path = DEFAULT_SPEC_PATH,
        latency: float = 0.0,
        hang_limit: float = 60.0,
        auto_status: Sequence[str] = (),
        service_number: str = DEFAULT_SERVICE_NUMBER,
        callback_timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.service_number = service_number
        self.hang_limit = hang_limit
        self.callback_timeout = callback_timeout
        self._spec = _load_spec(str(spec_path))
        unknown = [s for s in auto_status if s not in self._spec.statuses]
        if unknown:
            raise ValueError(f"not Twilio message statuses: {unknown}")
        self.auto_status = tuple(auto_status)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.media = FakeMedia(load_media_spec(str(spec_path)), account_sid, self._clock)
        self._host = host
        self._port = port
        self._latency = latency
        self._validator = RequestValidator(auth_token)
        self._expected_auth = "Basic " + base64.b64encode(
            f"{account_sid}:{auth_token}".encode()
        ).decode("ascii")

        # Reentrant so a fault predicate may call back into the fake.
        self._lock = threading.RLock()
        self._requests_changed = threading.Condition(self._lock)
        self._messages: list[RecordedMessage] = []
        self._by_sid: dict[str, RecordedMessage] = {}
        self._rules: list[FaultRule] = []
        self._requests = Counter[str]()
        self._outcomes = Counter[str]()
        self._callbacks: list[CallbackAttempt] = []
        self._hanging = 0
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_accepted = 0
        self._handler_threads: set[threading.Thread] = set()

        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._callback_queue: queue.Queue[str | None] = queue.Queue()
        self._callback_thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeTwilio:
        if self._server is not None:
            raise RuntimeError("FakeTwilio already started")
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-twilio-serve",
            daemon=True,
        )
        self._serve_thread.start()
        if self.auto_status:
            self._callback_thread = threading.Thread(
                target=self._callback_worker, name="fake-twilio-callbacks", daemon=True
            )
            self._callback_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; releases hangs and latency waits, closes kept-alive
        connections and joins the server's threads."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        self.release_hangs()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._handler_threads)
        for conn in connections:
            # Wakes handler threads blocked reading the next keep-alive request.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
        if self._callback_thread is not None:
            self._callback_queue.put(None)
            self._callback_thread.join(timeout=self.callback_timeout + 5)
        self._server = None
        self._serve_thread = None
        self._callback_thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeTwilio not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    # ------------------------------------------------------------ recording

    @property
    def messages(self) -> list[RecordedMessage]:
        """Accepted messages, oldest first (a snapshot)."""
        with self._lock:
            return list(self._messages)

    def message(self, sid: str) -> RecordedMessage:
        with self._lock:
            return self._by_sid[sid]

    def sent_to(self, number: str) -> list[RecordedMessage]:
        with self._lock:
            return [m for m in self._messages if m.to == number]

    def count_by_to(self) -> Counter[str]:
        with self._lock:
            return Counter(m.to for m in self._messages)

    def count_by_status_callback(self) -> Counter[str]:
        """Accepted messages per StatusCallback URL; a URL carrying a nudge id
        that counts 2 means the nudge was texted twice."""
        with self._lock:
            return Counter(m.status_callback or "" for m in self._messages)

    def count_by_callback_param(self, name: str) -> Counter[str]:
        """Accepted messages per value of one StatusCallback query parameter."""
        with self._lock:
            return Counter(
                value for m in self._messages if (value := m.callback_param(name)) is not None
            )

    def duplicates(
        self, key: Callable[[RecordedMessage], Hashable] | None = None
    ) -> dict[Hashable, int]:
        """Keys seen more than once; default key is (To, Body, StatusCallback)."""
        key_of = key or (lambda m: (m.to, m.body, m.status_callback))
        with self._lock:
            counts = Counter(key_of(m) for m in self._messages)
        return {k: n for k, n in counts.items() if n > 1}

    def requests_by_kind(self) -> Counter[str]:
        """Requests received per kind: create, fetch, list, other."""
        with self._lock:
            return Counter(self._requests)

    def outcomes(self) -> Counter[str]:
        """How requests ended: HTTP status as a string, "reset" or "hang"."""
        with self._lock:
            return Counter(self._outcomes)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far; stays at 1 for a client that pools."""
        with self._lock:
            return self._connections_accepted

    @property
    def callback_attempts(self) -> list[CallbackAttempt]:
        with self._lock:
            return list(self._callbacks)

    @property
    def hanging(self) -> int:
        """Requests currently held by a hang fault."""
        with self._lock:
            return self._hanging

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests have arrived (since reset)."""
        with self._requests_changed:
            return self._requests_changed.wait_for(
                lambda: sum(self._requests.values()) >= count, timeout
            )

    def reset(self) -> None:
        """Forget messages, counters, callbacks and faults; keep serving."""
        with self._lock:
            self._messages.clear()
            self._by_sid.clear()
            self._rules.clear()
            self._requests.clear()
            self._outcomes.clear()
            self._callbacks.clear()
            self._connections_accepted = 0

    # ------------------------------------------------------------ faults

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        to: str | None = None,
        when: FormPredicate | None = None,
        kinds: Collection[str] = ("create",),
    ) -> FaultRule:
        """Apply ``fault`` to the next ``times`` matching requests (None: forever).

        A request matches when its kind is in ``kinds`` ("create", "fetch",
        "list", "media", "other"), its To equals ``to`` (if given) and ``when`` returns
        true for its form (POST) or query (GET) fields. Rules are tried in
        injection order; the first match is consumed.
        """
        predicate = when
        if to is not None:
            inner = when

            def predicate(params: Mapping[str, str]) -> bool:
                return params.get("To") == to and (inner is None or inner(params))

        rule = FaultRule(fault, times, frozenset(kinds), predicate)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        """Delay applied to every request before it is handled."""
        self._latency = seconds

    def release_hangs(self) -> None:
        """Let every currently hanging request go (their connections are dropped)."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()

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

    # ------------------------------------------------------------ request handling

    def _track(self, conn: socket.socket, thread: threading.Thread, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections_accepted += 1
                self._connections.add(conn)
                self._handler_threads.add(thread)
            else:
                self._connections.discard(conn)
                self._handler_threads.discard(thread)

    def _serve(self, handler: _Handler) -> None:
        try:
            request = self._read(handler)
            with self._lock:
                self._requests[request.kind] += 1
                self._requests_changed.notify_all()
                rule = next(
                    (r for r in self._rules if r.matches(request.kind, request.flat())), None
                )
                if rule is not None:
                    rule.hits += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
            if rule is not None:
                rule.hit.set()
            if self._latency > 0:
                self._stopping.wait(self._latency)
            reply = self._apply(request, rule.fault if rule else None)
        except _Drop:
            self._reset(handler)
            return
        except Exception as exc:
            # A bug in the fake should read as one, not as a mysterious
            # connection reset in the test that hit it.
            traceback.print_exc()
            reply = _twilio_error(500, 20500, f"FakeTwilio internal error: {exc!r}")
        self._send(handler, reply)

    def _apply(self, request: _Request, fault: Fault | None) -> _Reply:
        if fault is None:
            return self._process(request)
        kind = fault.kind
        if kind is FaultKind.LATENCY:
            self._stopping.wait(fault.seconds)
            return self._process(request)
        if kind is FaultKind.RESET_BEFORE:
            raise _Drop
        if kind is FaultKind.ERROR:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _twilio_error(fault.status, fault.code, fault.message, headers)
        if kind is FaultKind.HANG and not fault.accept:
            self._hang(fault.seconds or self.hang_limit)
            raise _Drop
        # RESET_AFTER, or HANG(accept=True): the message is accepted and recorded
        # but the client never learns it.
        self._process(request)
        if kind is FaultKind.HANG:
            self._hang(fault.seconds or self.hang_limit)
        raise _Drop

    def _hang(self, bound: float) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            release = self._release
            self._hanging += 1
            self._outcomes["hang"] += 1
        try:
            release.wait(bound)
        finally:
            with self._lock:
                self._hanging -= 1

    def _read(self, handler: _Handler) -> _Request:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        form: dict[str, list[str]] = {}
        content_type = handler.headers.get("Content-Type", "")
        if raw and content_type.startswith("application/x-www-form-urlencoded"):
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        method = handler.command
        match = _PATH_RE.match(split.path)
        kind = "other"
        account_sid = sid = None
        if match:
            account_sid, sid = match["account"], match["sid"]
            if method == "POST" and sid is None:
                kind = "create"
            elif method == "GET":
                kind = "list" if sid is None else "fetch"
        elif media := MEDIA_PATH_RE.match(split.path):
            account_sid, sid, kind = media["account"], media["media"], "media"
        return _Request(
            method,
            split.path,
            kind,
            account_sid,
            sid,
            query,
            form,
            handler.headers.get("Authorization"),
        )

    def _process(self, request: _Request) -> _Reply:
        if not hmac.compare_digest(
            (request.authorization or "").encode(), self._expected_auth.encode()
        ):
            return self._unauthorized(request)
        if request.account_sid is None:
            return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if request.kind == "other":
            return _twilio_error(405, 20004, "Method not allowed")
        if request.account_sid != self.account_sid:
            # Real Twilio answers 404 for an account the credentials cannot see.
            return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if request.kind == "media":
            return _from_media(self.media.answer(request.method, request.path))
        if request.kind == "create":
            return self._create(request)
        if request.kind == "fetch":
            return self._fetch(request)
        return self._list(request)

    def _unauthorized(self, request: _Request) -> _Reply:
        header = request.authorization or ""
        message = "Authentication Error - No credentials provided"
        if header.startswith("Basic "):
            try:
                user = base64.b64decode(header[6:], validate=True).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                user = ""
            message = (
                "Authentication Error - invalid username"
                if user != self.account_sid
                else "Authenticate"
            )
        return _twilio_error(401, 20003, message, {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    # ------------------------------------------------------------ create

    def _validate_create(self, form: Mapping[str, list[str]]) -> _Reply | None:
        params = self._spec.create_params
        for name, values in form.items():
            schema = params.get(name)
            if schema is None:
                return _twilio_error(400, 20001, f"Unknown parameter: {name}")
            if len(values) > 1 and schema.get("type") != "array":
                return _twilio_error(400, 20422, f"Parameter {name} given more than once")
            problem = self._schema_problem(name, schema, values)
            if problem:
                return _twilio_error(400, 20422, problem)

        def first(name: str) -> str:
            values = form.get(name)
            return values[0] if values else ""

        to = first("To")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not _is_recipient(to):
            return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        sender, service = first("From"), first("MessagingServiceSid")
        if not sender and not service:
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if sender and service:
            # Twilio itself lets the service win; coachbot must pick one, so the
            # fake is stricter to catch a gateway that sends both.
            return _twilio_error(
                400, 20422, "Specify exactly one of 'From' and 'MessagingServiceSid'."
            )
        if sender and not _is_sender(sender):
            return _twilio_error(400, 21212, f"Invalid 'From' Phone Number: {sender}")
        if not first("Body") and not form.get("MediaUrl") and not first("ContentSid"):
            return _twilio_error(400, 21602, "Message body is required.")
        if len(first("Body")) > _MAX_BODY:
            return _twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        callback = first("StatusCallback")
        if callback:
            parts = urlsplit(callback)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                return _twilio_error(400, 21609, f"Invalid StatusCallback url: {callback}")
        return None

    @staticmethod
    def _schema_problem(name: str, schema: Mapping[str, Any], values: list[str]) -> str | None:
        kind = schema.get("type")
        for value in values:
            if kind == "boolean" and value not in {"true", "false", "True", "False"}:
                return f"Invalid {name}: {value!r} is not a boolean"
            if kind == "integer" and not re.fullmatch(r"-?\d+", value):
                return f"Invalid {name}: {value!r} is not an integer"
            if kind == "number":
                try:
                    float(value)
                except ValueError:
                    return f"Invalid {name}: {value!r} is not a number"
            enum_values = schema.get("enum")
            if enum_values is not None and value not in enum_values:
                return f"Invalid {name}: {value!r} is not one of {sorted(enum_values)}"
            pattern = schema.get("pattern")
            if pattern is not None and not re.search(pattern, value):
                return f"Invalid {name}: {value!r}"
        return None

    def _create(self, request: _Request) -> _Reply:
        form = request.form
        problem = self._validate_create(form)
        if problem is not None:
            return problem
        now = self._clock()
        prefix = "MM" if form.get("MediaUrl") else "SM"
        service = form.get("MessagingServiceSid")
        if form.get("ScheduleType"):
            status = "scheduled"
        elif service:
            status = "accepted"
        else:
            status = "queued"
        message = RecordedMessage(
            sid=prefix + uuid.uuid4().hex,
            account_sid=self.account_sid,
            form={k: list(v) for k, v in form.items()},
            date_created=now,
            date_updated=now,
            status=status,
            from_number=form["From"][0] if form.get("From") else None,
        )
        with self._lock:
            self._messages.append(message)
            self._by_sid[message.sid] = message
            payload = self._resource_locked(message)
        if self.auto_status and self._callback_thread is not None:
            self._callback_queue.put(message.sid)
        return _Reply(201, payload)

    def _resource_locked(self, m: RecordedMessage) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{m.account_sid}/Messages/{m.sid}"
        return {
            "account_sid": m.account_sid,
            "api_version": API_VERSION,
            "body": m.body,
            "date_created": _rfc2822(m.date_created),
            "date_sent": _rfc2822(m.date_sent),
            "date_updated": _rfc2822(m.date_updated),
            "direction": "outbound-api",
            "error_code": m.error_code,
            "error_message": None,
            "from": m.from_number,
            "messaging_service_sid": m.messaging_service_sid,
            "num_media": str(len(m.media_urls)),
            "num_segments": str(num_segments(m.body)),
            "price": None,
            "price_unit": "USD",
            "sid": m.sid,
            "status": m.status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": m.to,
            "uri": f"{base}.json",
        }

    # ------------------------------------------------------------ fetch / list

    def _fetch(self, request: _Request) -> _Reply:
        with self._lock:
            message = self._by_sid.get(request.sid or "")
            if message is not None:
                return _Reply(200, self._resource_locked(message))
        return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")

    def _list(self, request: _Request) -> _Reply:
        query = request.query
        for name in query:
            if name not in self._spec.list_params:
                return _twilio_error(400, 20001, f"Unknown parameter: {name}")

        def first(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        try:
            page = int(first("Page") or 0)
            page_size = min(int(first("PageSize") or 50), 1000)
        except ValueError:
            return _twilio_error(400, 20422, "Invalid Page or PageSize")
        if page < 0 or page_size < 1:
            return _twilio_error(400, 20422, "Invalid Page or PageSize")
        to, sender = first("To"), first("From")
        on, before, after = (
            (first(name) or "")[:10] or None for name in ("DateSent", "DateSent<", "DateSent>")
        )

        def keep(m: RecordedMessage) -> bool:
            if to is not None and m.to != to:
                return False
            if sender is not None and m.from_number != sender:
                return False
            if on or before or after:
                if m.date_sent is None:
                    return False
                day = m.date_sent.astimezone(UTC).date().isoformat()
                if (on and day != on) or (before and day > before) or (after and day < after):
                    return False
            return True

        with self._lock:
            # Twilio lists newest first.
            matching = [m for m in reversed(self._messages) if keep(m)]
            start = page * page_size
            chunk = [self._resource_locked(m) for m in matching[start : start + page_size]]
        filters = [
            (k, v[0]) for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}
        ]
        path = request.path

        def page_uri(number: int, *, token: bool = False) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
            if token:
                params.append(("PageToken", f"PA{number}"))
            return f"{path}?{urlencode(params, quote_via=quote)}"

        has_next = start + page_size < len(matching)
        payload = {
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, token=True) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1, token=True) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
            "messages": chunk,
        }
        return _Reply(200, payload)

    # ------------------------------------------------------------ wire

    def _send(self, handler: _Handler, reply: _Reply) -> None:
        content_type: str | None = "application/json; charset=utf-8"
        if reply.raw is not None:
            body, content_type = reply.raw, reply.content_type
        elif reply.payload is None:  # 204 No Content
            body, content_type = b"", None
        else:
            body = json.dumps(reply.payload, separators=(",", ":")).encode("utf-8")
        reason = handler.responses.get(reply.status, ("",))[0]
        lines = [
            f"HTTP/1.1 {reply.status} {reason}",
            f"Date: {handler.date_time_string()}",
            "Server: FakeTwilio/1.0",
            *([f"Content-Type: {content_type}"] if content_type else []),
            f"Content-Length: {len(body)}",
            f"Twilio-Request-Id: RQ{uuid.uuid4().hex}",
        ]
        lines.extend(f"{k}: {v}" for k, v in reply.headers.items())
        if handler.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        with self._lock:
            self._outcomes[str(reply.status)] += 1
        try:
            handler.wfile.write(head + body)
        except OSError:
            # The client gave up (timed out) before we answered.
            handler.close_connection = True

    def _reset(self, handler: _Handler) -> None:
        with self._lock:
            self._outcomes["reset"] += 1
        handler.close_connection = True
        try:
            # Linger 0 makes close() send RST instead of FIN: the client sees
            # "connection reset by peer", as when a proxy or NAT drops it.
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()
        except OSError:
            pass


def _is_recipient(value: str) -> bool:
    channel = _CHANNEL_RE.match(value)
    return bool(_E164_RE.match(channel["address"] if channel else value))


def _is_sender(value: str) -> bool:
    channel = _CHANNEL_RE.match(value)
    if channel:
        return bool(_E164_RE.match(channel["address"]))
    return bool(
        _E164_RE.match(value) or _SHORT_CODE_RE.match(value) or _ALPHA_SENDER_RE.match(value)
    )


# --------------------------------------------------------------------------- CLI


def _iter_statuses(raw: str) -> Iterator[str]:
    return (s.strip() for s in raw.split(",") if s.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback fake of Twilio's Messages API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4010)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument("--spec", default=str(DEFAULT_SPEC_PATH))
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind with SO_REUSEPORT so several server processes share one port (benchmarks)",
    )
    parser.add_argument(
        "--record",
        default=None,
        help="on exit, write one JSON object per accepted message (nudge, at, segments) here",
    )
    parser.add_argument(
        "--auto-status",
        default="",
        help="comma-separated statuses to call back after each message, e.g. sent,delivered",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake = FakeTwilio(
        args.account_sid,
        args.auth_token,
        host=args.host,
        port=args.port,
        spec_path=args.spec,
        latency=args.latency,
        auto_status=tuple(_iter_statuses(args.auto_status)),
    )
    if args.reuse_port:
        _Server.allow_reuse_port = True
    with fake:
        sys.stdout.write(f"{fake.base_url}\n")
        sys.stdout.flush()
        while not stop.wait(3600):
            pass
        if args.record:
            with open(args.record, "w", encoding="utf-8") as out:
                for m in fake.messages:
                    record = {
                        "nudge": m.callback_param("nudge"),
                        "to": m.to,
                        "at": m.date_created.timestamp(),
                        "segments": num_segments(m.body),
                    }
                    out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
