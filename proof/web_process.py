"""The web app under gunicorn for the proofs that load it: a free loopback port, the
process, waiting until it listens, and a signed form POST that answers its status code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def web_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of the web process: the proof's database and the signing secret,
    plus `extra` settings."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SECRET_KEY": "proof-secret-key-that-is-long-enough-0",
        **extra,
    }


def start_gunicorn(port: int, env: dict[str, str], log_file: Any) -> subprocess.Popen[bytes]:
    """The web app as production runs it: gunicorn, two workers, on loopback `port`; back
    once it accepts connections (RuntimeError when it does not within 30 s)."""
    web = subprocess.Popen(  # noqa: S603 - our own app under gunicorn
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "coachbot.app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=log_file,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return web
        except OSError:
            if time.monotonic() > deadline or web.poll() is not None:
                web.kill()
                web.wait()
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.1)


def post_signed(port: int, path: str, body: str, signature: str) -> int:
    """POSTs a Twilio-signed form; its status code, or -1 when the connection failed."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body.encode(),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return -1
