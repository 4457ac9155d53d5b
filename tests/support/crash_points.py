"""The dispatcher's crash points, found from outside: production code has no hook to leave on.

`hook(point, nudge_id)` is called at three points of `dispatch.send.dispatch_due`:

- "claimed": a batch's claim committed, nothing gated or sent yet (nudge_id: the batch's first);
- "accepted": the provider returned a receipt, nothing recorded yet (nudge_id: from the
  status callback URL, None when the backend sends none);
- "recorded": a batch's outcomes committed (nudge_id: the batch's first sent nudge).

"accepted" comes from a gateway wrapper that watches each send's result; the two commit points
from a Session "after_commit" event on the dispatcher's sessionmaker, which looks at the
function whose transaction just committed (dispatch.claim.claim_batch or
dispatch.record.record_batch). If those
are renamed or split, no point fires and the kill tests fail (the worker is not killed).

Users: the kill -9 tests (tests/e2e/test_dispatch_processes.py), the proof's crash worker
(proof/_worker.py) and the proof's consent scenario (a STOP arriving between claim and send).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from coachbot.services.dispatch import claim, record
from coachbot.sms.gateway import (
    BatchSender,
    OutgoingSms,
    Pacing,
    ResultHook,
    SendFailure,
    SendReceipt,
    SendResult,
    SmsGateway,
)

CrashHook = Callable[[str, "int | None"], None]
POINTS = ("claimed", "accepted", "recorded")


def kill_at(point: str, after: int = 1) -> CrashHook:
    """A hook that SIGKILLs this process the `after`-th time the dispatcher reaches `point`."""
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}; expected one of {POINTS}")
    seen = 0

    def crash(reached: str, _nudge_id: int | None) -> None:
        nonlocal seen
        if reached == point:
            seen += 1
            if seen >= after:
                os.kill(os.getpid(), signal.SIGKILL)

    return crash


def _nudge_of(sms: OutgoingSms) -> int | None:
    """The nudge id the dispatcher put in the status callback URL (`?nudge=`), if any."""
    if not sms.status_callback:
        return None
    values = parse_qs(urlsplit(sms.status_callback).query).get("nudge")
    return int(values[0]) if values else None


class CrashingGateway:
    """Sends through `inner` unchanged and calls the hook at "accepted" for every receipt,
    before the dispatcher sees the result. Anything else is the inner gateway's."""

    def __init__(self, inner: SmsGateway, hook: CrashHook) -> None:
        self._inner = inner
        self._hook = hook
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:
        # `sender`, `recent_messages` (reconciliation) and the rest, as the inner has them.
        value = getattr(self._inner, attribute)
        if attribute == "send_many":
            return self._send_many
        if attribute == "batch_sender":
            return self._batch_sender
        return value

    def _watch(self, batch: Sequence[OutgoingSms], on_result: ResultHook | None) -> ResultHook:
        def watched(index: int, result: SendReceipt | SendFailure) -> None:
            if isinstance(result, SendReceipt):
                self._hook("accepted", _nudge_of(batch[index]))
            if on_result is not None:
                on_result(index, result)

        return watched

    def send(self, sms: OutgoingSms) -> SendReceipt:
        receipt = self._inner.send(sms)
        self._hook("accepted", _nudge_of(sms))
        return receipt

    def _send_many(
        self, batch: Sequence[OutgoingSms], pacing: Pacing, on_result: ResultHook | None = None
    ) -> list[SendResult]:
        results: list[SendResult] = self._inner.send_many(  # type: ignore[attr-defined]
            batch, pacing, self._watch(batch, on_result)
        )
        return results

    @contextmanager
    def _batch_sender(self, pacing: Pacing) -> Iterator[BatchSender]:
        opener: Callable[[Pacing], AbstractContextManager[BatchSender]]
        opener = self._inner.batch_sender  # type: ignore[attr-defined]
        with opener(pacing) as send:

            def watched(
                batch: Sequence[OutgoingSms], on_result: ResultHook | None
            ) -> list[SendResult]:
                return send(batch, self._watch(batch, on_result))

            yield watched


def _committing_frame() -> FrameType | None:
    """The innermost caller outside SQLAlchemy and this module: whoever ended the transaction."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        ("sqlalchemy.", __name__)
    ):
        frame = frame.f_back
    return frame


@contextmanager
def commit_points(session_factory: sessionmaker[Session], hook: CrashHook) -> Iterator[None]:
    """Calls the hook at "claimed" and "recorded" while the block runs, for transactions of
    `session_factory`. A hook that itself commits (the proof posts STOPs) does not re-enter."""
    firing = False

    def after_commit(_session: Session) -> None:
        nonlocal firing
        frame = _committing_frame()
        if firing or frame is None:
            return
        if frame.f_code is claim.claim_batch.__code__:
            ids: list[int] = frame.f_locals["ids"]
            if not ids:  # nothing was due: the dispatcher stops without a claim
                return
            point, nudge_id = "claimed", ids[0]
        elif frame.f_code is record.record_batch.__code__:
            point, nudge_id = "recorded", frame.f_locals["ready"][0].nudge_id
        else:
            return
        firing = True
        try:
            hook(point, nudge_id)
        finally:
            firing = False

    event.listen(session_factory, "after_commit", after_commit)
    try:
        yield
    finally:
        event.remove(session_factory, "after_commit", after_commit)


@contextmanager
def crash_points(
    session_factory: sessionmaker[Session], gateway: SmsGateway, hook: CrashHook
) -> Iterator[SmsGateway]:
    """All three points: run the dispatcher with this factory and the gateway yielded."""
    with commit_points(session_factory, hook):
        yield CrashingGateway(gateway, hook)
