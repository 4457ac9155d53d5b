"""`python -m tests.support.fake_twilio`: the fake Twilio server as a process of its own,
for the benchmarks (bench.dispatch's `--server python`), demos and the contract test that
starts it; prints its URL once it listens and, with --record, writes what it accepted on
exit."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from tests.support.fake_twilio import FakeTwilio
from tests.support.fake_twilio_model import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_SPEC_PATH,
    num_segments,
)
from tests.support.fake_twilio_wire import TwilioHTTPServer


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
        TwilioHTTPServer.allow_reuse_port = True
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
