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

The parts: fake_twilio_model.py (defaults, the OpenAPI slice, recorded messages),
fake_twilio_messages.py (what each request is answered), fake_twilio_wire.py (the HTTP
server), fake_twilio_faults.py (the fault script), fake_twilio_callbacks.py (status
callbacks), fake_twilio_media.py (MMS files) and fake_twilio_cli.py (the command below).
This module is the fake itself: its state, lifecycle, the test-facing API and the path a
request takes; tests import from it.

Run standalone for benchmarks and demos::

    python -m tests.support.fake_twilio --port 4010 --account-sid AC... --auth-token ...
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import queue
import socket
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from twilio.request_validator import RequestValidator

from tests.support.fake_twilio_callbacks import StatusCallbacks
from tests.support.fake_twilio_faults import Fault, FaultKind, FaultRule, ScriptedFaults
from tests.support.fake_twilio_media import FakeMedia, load_media_spec
from tests.support.fake_twilio_messages import (
    Drop,
    Reply,
    Request,
    from_media,
    list_page,
    message_resource,
    twilio_error,
    unauthorized,
    validate_create,
)
from tests.support.fake_twilio_model import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_SERVICE_NUMBER,
    DEFAULT_SPEC_PATH,
    CallbackAttempt,
    RecordedMessage,
    load_spec,
    num_segments,
)
from tests.support.fake_twilio_wire import (
    TwilioHTTPServer,
    TwilioRequestHandler,
    read_request,
    reset_connection,
    write_reply,
)

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
    "num_segments",
]


# --------------------------------------------------------------------------- fake


class FakeTwilio(StatusCallbacks, ScriptedFaults):
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
        self._spec = load_spec(str(spec_path))
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

        self._server: TwilioHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._callback_queue: queue.Queue[str | None] = queue.Queue()
        self._callback_thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeTwilio:
        if self._server is not None:
            raise RuntimeError("FakeTwilio already started")
        self._stopping.clear()
        self._server = TwilioHTTPServer((self._host, self._port), self)
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

    def _serve(self, handler: TwilioRequestHandler) -> None:
        try:
            request = read_request(handler)
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
        except Drop:
            self._reset(handler)
            return
        except Exception as exc:
            # A bug in the fake should read as one, not as a mysterious
            # connection reset in the test that hit it.
            traceback.print_exc()
            reply = twilio_error(500, 20500, f"FakeTwilio internal error: {exc!r}")
        self._send(handler, reply)

    def _process(self, request: Request) -> Reply:
        if not hmac.compare_digest(
            (request.authorization or "").encode(), self._expected_auth.encode()
        ):
            return unauthorized(request, self.account_sid)
        if request.account_sid is None:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if request.kind == "other":
            return twilio_error(405, 20004, "Method not allowed")
        if request.account_sid != self.account_sid:
            # Real Twilio answers 404 for an account the credentials cannot see.
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if request.kind == "media":
            return from_media(self.media.answer(request.method, request.path))
        if request.kind == "create":
            return self._create(request)
        if request.kind == "fetch":
            return self._fetch(request)
        return self._list(request)

    def _create(self, request: Request) -> Reply:
        form = request.form
        problem = validate_create(self._spec, form)
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
            payload = message_resource(message)
        if self.auto_status and self._callback_thread is not None:
            self._callback_queue.put(message.sid)
        return Reply(201, payload)

    def _fetch(self, request: Request) -> Reply:
        with self._lock:
            message = self._by_sid.get(request.sid or "")
            if message is not None:
                return Reply(200, message_resource(message))
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")

    def _list(self, request: Request) -> Reply:
        with self._lock:
            return list_page(request, self._spec.list_params, self._messages)

    def _send(self, handler: TwilioRequestHandler, reply: Reply) -> None:
        with self._lock:
            self._outcomes[str(reply.status)] += 1
        write_reply(handler, reply)

    def _reset(self, handler: TwilioRequestHandler) -> None:
        with self._lock:
            self._outcomes["reset"] += 1
        reset_connection(handler)


if __name__ == "__main__":
    # `python -m tests.support.fake_twilio` stays the command (benchmarks, demos, the
    # contract test); what it runs is in fake_twilio_cli.py.
    from tests.support.fake_twilio_cli import main

    raise SystemExit(main())
