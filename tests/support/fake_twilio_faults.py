"""The faults a test scripts on the fake Twilio server (tests/support/fake_twilio.py):
Twilio errors (invalid To, unsubscribed, not mobile, 429 + Retry-After, 500, 503), hangs,
connection resets before processing and *after* the message was accepted (the ambiguous
case), and per-request latency; the rules that match them to requests, and how the
server plays one."""

from __future__ import annotations

import enum
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from tests.support.fake_twilio_messages import Drop, Reply, Request, twilio_error


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


class ScriptedFaults:
    """FakeTwilio's fault script: `inject` queues a fault for the next matching requests,
    `_apply` plays it on one (an error, a hang, a reset before or after the message was
    accepted, latency), `release_hangs` lets hung requests go. A base class of FakeTwilio;
    the attributes below are FakeTwilio's, and `_process` is its normal answer."""

    hang_limit: float
    _lock: threading.RLock
    _rules: list[FaultRule]
    _latency: float
    _release: threading.Event
    _stopping: threading.Event
    _hanging: int
    _outcomes: Counter[str]

    def _process(self, request: Request) -> Reply:
        raise NotImplementedError

    @property
    def hanging(self) -> int:
        """Requests currently held by a hang fault."""
        with self._lock:
            return self._hanging

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

    def _apply(self, request: Request, fault: Fault | None) -> Reply:
        if fault is None:
            return self._process(request)
        kind = fault.kind
        if kind is FaultKind.LATENCY:
            self._stopping.wait(fault.seconds)
            return self._process(request)
        if kind is FaultKind.RESET_BEFORE:
            raise Drop
        if kind is FaultKind.ERROR:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return twilio_error(fault.status, fault.code, fault.message, headers)
        if kind is FaultKind.HANG and not fault.accept:
            self._hang(fault.seconds or self.hang_limit)
            raise Drop
        # RESET_AFTER, or HANG(accept=True): the message is accepted and recorded
        # but the client never learns it.
        self._process(request)
        if kind is FaultKind.HANG:
            self._hang(fault.seconds or self.hang_limit)
        raise Drop

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
