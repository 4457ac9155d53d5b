"""The fake Twilio server's HTTP: a threading server with a large backlog and no reverse
DNS lookup, a handler that hands every request to the fake (`FakeTwilio._serve`), and the
three things done on the wire: read a request, write a reply, reset the connection. Apart
from the fake so that what it answers (tests/support/fake_twilio_messages.py) reads
without the socket details."""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_twilio_media import MEDIA_PATH_RE
from tests.support.fake_twilio_messages import MESSAGES_PATH_RE, Reply, Request

if TYPE_CHECKING:  # the fake imports this module to serve
    from tests.support.fake_twilio import FakeTwilio


class TwilioRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in one write, but the client's next request on a
    # kept-alive connection must not wait for a delayed ACK either.
    disable_nagle_algorithm = True
    server_version = "FakeTwilio/1.0"
    sys_version = ""
    server: TwilioHTTPServer

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


class TwilioHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connects when a benchmark opens many at once.
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeTwilio) -> None:
        self.fake = fake
        super().__init__(address, TwilioRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup of the host, which can
        # stall for seconds on a box without a resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


def read_request(handler: TwilioRequestHandler) -> Request:
    """The request as the fake answers it: its kind (create, fetch, list, media, other),
    account, sid, query, form and credentials."""
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length > 0 else b""
    split = urlsplit(handler.path)
    query = parse_qs(split.query, keep_blank_values=True)
    form: dict[str, list[str]] = {}
    content_type = handler.headers.get("Content-Type", "")
    if raw and content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    method = handler.command
    match = MESSAGES_PATH_RE.match(split.path)
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
    return Request(
        method,
        split.path,
        kind,
        account_sid,
        sid,
        query,
        form,
        handler.headers.get("Authorization"),
    )


def write_reply(handler: TwilioRequestHandler, reply: Reply) -> None:
    """Headers and body in one write (see TCP_NODELAY above)."""
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
    try:
        handler.wfile.write(head + body)
    except OSError:
        # The client gave up (timed out) before we answered.
        handler.close_connection = True


def reset_connection(handler: TwilioRequestHandler) -> None:
    """Drops the connection with a RST, as a proxy or NAT that gave up would."""
    handler.close_connection = True
    try:
        # Linger 0 makes close() send RST instead of FIN: the client sees
        # "connection reset by peer", as when a proxy or NAT drops it.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
    except OSError:
        pass
