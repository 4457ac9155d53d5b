"""Where one inbound webhook request's time goes, in-process, without gunicorn or a socket.

Seeds a database as bench.webhook does (through bench.webhook_cohort), builds the real app,
pre-builds signed WSGI environs (so request construction is not measured), then calls the
WSGI app directly: prints CPU and wall microseconds per request, SQL statements per request,
and optionally a pyinstrument profile. A diagnostic, not a figure for performance.md.

    .venv/bin/pip install pyinstrument        # not a project dependency
    .venv/bin/python -m bench.webhook_profile [--count 2000] [--postgres URL] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import random
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import create_engine, event, insert, text
from werkzeug.test import EnvironBuilder

from bench.webhook_cohort import AUTH_TOKEN, PATH, PUBLIC_BASE_URL, database, seed, signed_request

# The loop guard counts bot replies per number; outbound_messages has no index on the number.
LOOP_GUARD_INDEX = "CREATE INDEX ix_outbound_to_created ON outbound_messages (to_e164, created_at)"


def prepare(url: str, outbound: int, index: bool) -> None:
    """History for the loop guard to read, and optionally the index it would use."""
    import datetime as dt

    from bench.webhook_cohort import PATIENTS, phone
    from coachbot.models import OutboundMessage

    engine = create_engine(url)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with engine.begin() as connection:
        if outbound:
            connection.execute(
                insert(OutboundMessage),
                [
                    {
                        "patient_id": None,
                        "to_e164": phone(i % PATIENTS),
                        "body": "",
                        "kind": "reply",
                        "backend": "twiml",
                        "segments": 1,
                        "created_at": earlier,
                    }
                    for i in range(outbound)
                ],
            )
        if index:
            connection.execute(text(LOOP_GUARD_INDEX))
    engine.dispose()


def environs(count: int, seed_value: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed_value)
    out = []
    for _ in range(count):
        body, signature = signed_request(rng)
        builder = EnvironBuilder(
            path=PATH,
            method="POST",
            data=body.encode(),
            content_type="application/x-www-form-urlencoded",
            headers=[("X-Twilio-Signature", signature)],
        )
        out.append(builder.get_environ())
    return out


def call(app: Any, environ: dict[str, Any]) -> str:
    status: list[str] = []

    def start_response(s: str, _headers: Iterable[Any], _exc: Any = None) -> None:
        status.append(s)

    body = b"".join(app(environ, start_response))
    if not status[0].startswith("200"):
        raise RuntimeError(f"{status[0]}: {body[:200]!r}")
    return body.decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the timed loop")
    parser.add_argument("--html", metavar="PATH", help="also write pyinstrument HTML here")
    parser.add_argument(
        "--outbound",
        type=int,
        default=0,
        metavar="N",
        help="first add N earlier bot replies (the loop guard reads them)",
    )
    parser.add_argument("--index", action="store_true", help=f"first run: {LOOP_GUARD_INDEX}")
    args = parser.parse_args(argv)

    import os

    os.environ.update(
        TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL, SMS_BACKEND="console"
    )
    with (
        tempfile.TemporaryDirectory(),
        database("postgresql" if args.postgres else "sqlite", args.postgres) as url,
    ):
        seed(url)
        prepare(url, args.outbound, args.index)
        os.environ["DATABASE_URL"] = url
        from coachbot.app import create_app

        app = create_app()
        engine = app.extensions["coachbot"].engine
        statements: collections.Counter[str] = collections.Counter()

        @event.listens_for(engine, "before_cursor_execute")
        def _count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            statements[" ".join(statement.split())[:90]] += 1

        warm = environs(200, seed_value=99)
        for environ in warm:
            call(app, environ)
        statements.clear()
        batch = environs(args.count)
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            profiler.start()
        cpu0, t0 = time.process_time(), time.perf_counter()
        for environ in batch:
            call(app, environ)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            if args.html:
                with open(args.html, "w") as fh:
                    fh.write(profiler.output_html())
        total = sum(statements.values())
        print(
            f"{args.count} requests: {cpu / args.count * 1e6:.0f} us CPU,"
            f" {wall / args.count * 1e6:.0f} us wall per request;"
            f" {total / args.count:.2f} SQL statements per request"
        )
        for statement, n in statements.most_common(25):
            print(f"  {n / args.count:6.2f}  {statement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
