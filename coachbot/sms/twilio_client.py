"""Building the Twilio REST client coachbot uses to send SMS.

The SDK is kept whole (request building, auth, form encoding, response parsing,
TwilioRestException); only where it connects to and how its HTTP layer behaves
is decided here:

* an explicit timeout on every request, because the SDK default is none at all;
* no retries inside the SDK, because a retried POST /Messages.json can text a
  patient twice; the gateway retries with its own idempotency rules;
* one pooled session per process (see ``shared_twilio_client``), so keep-alive
  connections to Twilio are reused instead of paying a TLS handshake per SMS;
* ``api_base_url`` to aim the client at a loopback fake speaking Twilio's API.

How failures surface (the gateway should catch these):

* HTTP 4xx/5xx from Twilio: ``twilio.base.exceptions.TwilioRestException`` with
  ``.status`` (HTTP status) and ``.code`` (Twilio error code, e.g. 21610).
  It carries no headers; read ``Retry-After`` with ``last_retry_after(client)``
  (or ``client.http_client.last_response.headers``) in the same thread/task.
* Read timeout (Twilio may or may not have accepted the message):
  ``requests.exceptions.ReadTimeout``.
* Connect timeout / refused (nothing was sent): ``requests.exceptions.ConnectTimeout``,
  or ``requests.exceptions.ConnectionError`` wrapping a urllib3 NewConnectionError.
* Connection reset or closed mid-request (ambiguous: the message may have been
  accepted): ``requests.exceptions.ConnectionError`` wrapping a ProtocolError.

``requests.exceptions.RequestException`` is the common base of the transport
errors; ``may_have_reached_twilio(exc)`` tells the ambiguous ones (retry only
with a duplicate check) from the ones where nothing left this process.
"""

from __future__ import annotations

import base64
import contextvars
import email.utils
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote_plus

import aiohttp
import requests
from requests.adapters import HTTPAdapter
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

__all__ = [
    "RecordingAsyncHttpClient",
    "RecordingHttpClient",
    "build_async_twilio_client",
    "build_twilio_client",
    "close_twilio_client",
    "last_retry_after",
    "may_have_reached_twilio",
    "may_have_reached_twilio_async",
    "shared_twilio_client",
]

DEFAULT_TIMEOUT = 10.0
DEFAULT_POOL_SIZE = 32


def _no_retries() -> Retry:
    # total=0 with read=False is what requests does by default, spelled out so a
    # future SDK default (TwilioHttpClient(max_retries=...)) cannot sneak in
    # retries of non-idempotent POSTs.
    return Retry(total=0, read=False, redirect=False, respect_retry_after_header=False)


class RecordingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """TwilioHttpClient that remembers the last response of the calling thread.

    TwilioRestException drops the response headers, yet a 429 tells us how long
    to back off only in ``Retry-After``. The last response is kept in a
    ContextVar so that one client shared by many threads never hands one
    thread's response to another.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
        trust_env: bool = True,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        super().__init__(pool_connections=True, timeout=timeout)
        # The SDK mounts its adapter only for https://; the loopback fake is
        # plain http, and both need the same pool size and retry policy.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=_no_retries())
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # With trust_env a stray HTTP_PROXY would route loopback traffic through
        # a proxy and ~/.netrc could override our Basic auth.
        self.session.trust_env = trust_env
        self._last: contextvars.ContextVar[Response | None] = contextvars.ContextVar(
            f"twilio_last_response_{id(self)}", default=None
        )

    @property
    def last_response(self) -> Response | None:
        """The last response received by this thread/task, or None after a
        transport error (timeout, reset), so stale headers are never reused."""
        return self._last.get()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self._last.set(None)
        response: Response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        self._last.set(response)
        return response

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class RecordingAsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Async counterpart of RecordingHttpClient (aiohttp).

    AsyncTwilioHttpClient forwards a per-request ``timeout=None`` to aiohttp as
    "no timeout" instead of falling back to the client's timeout; this fixes
    that. Must be constructed inside a running event loop (aiohttp's session
    binds to it) and closed with ``await client.http_client.close()``.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, pool_size: int = 0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        # max_retries=None keeps aiohttp_retry's RetryClient out of the way.
        super().__init__(pool_connections=pool_size <= 0, timeout=timeout, max_retries=None)
        if pool_size > 0:
            # The SDK's session allows 100 connections; a dispatcher caps its in-flight
            # calls itself and wants as many kept-alive sockets as that cap, no more.
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=pool_size, limit_per_host=pool_size)
            )
        self._last: contextvars.ContextVar[Response | None] = contextvars.ContextVar(
            f"twilio_last_async_response_{id(self)}", default=None
        )
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._auth_headers: dict[tuple[str, str], str] = {}

    @property
    def last_response(self) -> Response | None:
        return self._last.get()

    def _client_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        found = self._timeouts.get(seconds)
        if found is None:
            # A separate connect bound makes "never connected" (safe to retry)
            # distinguishable from "connected, then no answer" (ambiguous): see
            # may_have_reached_twilio_async.
            found = aiohttp.ClientTimeout(total=seconds, sock_connect=seconds)
            self._timeouts[seconds] = found
        return found

    def _basic_auth(self, auth: tuple[str, str]) -> str:
        found = self._auth_headers.get(auth)
        if found is None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            found = self._auth_headers[auth] = f"Basic {token}"
        return found

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self._last.set(None)
        headers = dict(headers or {})
        if auth is not None:
            # The SDK would wrap auth in aiohttp.BasicAuth, which aiohttp 3.14
            # deprecates (a DeprecationWarning per request); send the header
            # ourselves instead.
            headers["Authorization"] = self._basic_auth(auth)
        body: bytes | None = None
        if data:
            # Encoded as the SDK's synchronous client (requests) encodes it: aiohttp's
            # FormData path costs about a third of a request's CPU for the same bytes.
            body = form_encode(data).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        seconds = self.timeout if timeout is None else timeout
        raw = await self.session.request(
            method=method.upper(),
            url=url,
            params=cast(Any, params),
            data=body,
            headers=headers,
            timeout=self._client_timeout(seconds),
            allow_redirects=allow_redirects,
        )
        # Twilio answers JSON in UTF-8; aiohttp's text() would sniff a charset per call.
        response = Response(raw.status, (await raw.read()).decode("utf-8", "replace"), raw.headers)
        self._last.set(response)
        return response


# application/x-www-form-urlencoded as urllib's quote_plus writes it: unreserved ASCII kept,
# space as "+", everything else %XX of its UTF-8 bytes.
_FORM_ASCII = {
    code: ("+" if code == 0x20 else f"%{code:02X}")
    for code in range(128)
    if chr(code) not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
}


def _form_quote(value: str) -> str:
    # str.translate runs in C; quote_plus loops over the bytes in Python, which made it a
    # tenth of a send's CPU. Non-ASCII text (Spanish bodies) takes the library path.
    if value.isascii():
        return value.translate(_FORM_ASCII)
    return quote_plus(value)


def form_encode(data: Mapping[str, object]) -> str:
    """``urlencode(data, doseq=True)`` with the same output, faster for ASCII values:
    the body of every API call the SDK makes."""
    parts = []
    for key, value in data.items():
        name = _form_quote(str(key))
        values = value if isinstance(value, list | tuple) else (value,)
        for item in values:
            text = item.decode() if isinstance(item, bytes) else str(item)
            parts.append(f"{name}={_form_quote(text)}")
    return "&".join(parts)


def _aim(client: Client, api_base_url: str | None) -> Client:
    if api_base_url is None:
        return client
    if not api_base_url.startswith(("http://", "https://")):
        raise ValueError(f"api_base_url must be an http(s) URL, got {api_base_url!r}")
    # Client.request rewrites hostnames when an edge or region is configured
    # (also via TWILIO_EDGE / TWILIO_REGION in the environment); that rewrite
    # would mangle a loopback host, so it is switched off for this client.
    client.edge = None
    client.region = None
    client.api.base_url = api_base_url.rstrip("/")
    return client


def build_twilio_client(
    account_sid: str,
    auth_token: str,
    *,
    api_base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Client:
    """A Twilio client with an explicit timeout, no SDK retries and a pooled session.

    ``client.http_client`` is a RecordingHttpClient. Close with
    ``close_twilio_client`` when done (tests), or hold it for the life of the
    process via ``shared_twilio_client``.
    """
    http_client = RecordingHttpClient(timeout=timeout, trust_env=api_base_url is None)
    client = Client(account_sid, auth_token, http_client=http_client)
    return _aim(client, api_base_url)


def build_async_twilio_client(
    account_sid: str,
    auth_token: str,
    *,
    api_base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    pool_size: int = 0,
) -> Client:
    """Like build_twilio_client but for ``*_async`` SDK methods; call it from
    inside the event loop that will use it. ``pool_size`` bounds its kept-alive
    connections (0: the SDK's default session)."""
    http_client = RecordingAsyncHttpClient(timeout=timeout, pool_size=pool_size)
    client = Client(account_sid, auth_token, http_client=http_client)
    return _aim(client, api_base_url)


def close_twilio_client(client: Client) -> None:
    """Release the pooled connections of a synchronous client."""
    http_client = client.http_client
    if isinstance(http_client, RecordingHttpClient):
        http_client.close()
    elif getattr(http_client, "session", None) is not None:
        http_client.session.close()


_shared_lock = threading.Lock()
_shared: dict[tuple[int, str, str, str | None, float], Client] = {}


def shared_twilio_client(
    account_sid: str,
    auth_token: str,
    *,
    api_base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Client:
    """The process-wide client for these settings, built on first use.

    Keyed by pid as well: a gunicorn worker forked from a master that already
    built a client must not share the master's sockets.
    """
    key = (os.getpid(), account_sid, auth_token, api_base_url, timeout)
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            client = build_twilio_client(
                account_sid, auth_token, api_base_url=api_base_url, timeout=timeout
            )
            _shared[key] = client
        return client


def last_retry_after(client: Client, *, now: datetime | None = None) -> float | None:
    """Seconds the last response (of this thread/task) asked us to wait, if any.

    Call it right after catching a TwilioRestException with status 429/503.
    Accepts both forms of Retry-After: delta-seconds and an HTTP date.
    """
    response = getattr(client.http_client, "last_response", None)
    if response is None or response.headers is None:
        return None
    headers: Any = response.headers
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    value = str(raw).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def may_have_reached_twilio_async(exc: BaseException) -> bool:
    """The aiohttp counterpart of may_have_reached_twilio: False only when no connection
    was ever made (refused, DNS, connect timeout)."""
    return not isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError)


def may_have_reached_twilio(exc: requests.exceptions.RequestException) -> bool:
    """Whether Twilio might have received (and acted on) the request that failed.

    False only when the connection was never established (refused, DNS,
    connect timeout): resending cannot double-text anyone. Everything else,
    read timeouts and resets included, is ambiguous.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        cause = exc.args[0] if exc.args else None
        if isinstance(cause, MaxRetryError):
            cause = cause.reason
        if isinstance(cause, NewConnectionError | ConnectTimeoutError):
            return False
    return True
