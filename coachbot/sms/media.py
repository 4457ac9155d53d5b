"""Handwriting samples by MMS: fetch a picture a patient or caregiver texted from Twilio,
keep it only if it is a picture of at most 5 MB, store it, and delete Twilio's copy.

Groundwork for the close-watch weeks (not wired into the inbound pipeline yet):

- `fetch_media` downloads one media URL from the webhook's `MediaUrl{N}` with the account's
  credentials. Only a URL of this account's Messages API is fetched (the webhook is signed,
  but a URL is never followed blindly), with a connect/read timeout and a total deadline, and
  the body is read in chunks and abandoned past the size limit: a slow or huge download can
  neither hang a worker nor fill its memory.
- A picture is recognised by its first bytes, not only by the Content-Type header; anything
  else is refused with `MediaRefused` and nothing is stored.
- `MediaStore` is the storage port; `FileMediaStore` keeps each sample as a file, written
  atomically and readable by the service's user only.
- `delete_twilio_copy` removes Twilio's copy through the Media API, so the only copy left is
  ours. `take_media` does the whole step; it deletes Twilio's copy of a refused file too (it
  is kept nowhere), but not after a failed fetch: that one stays for the tick to retry.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Protocol

import requests
from twilio.rest import Client

__all__ = [
    "ALLOWED_IMAGE_TYPES",
    "MAX_MEDIA_BYTES",
    "FileMediaStore",
    "MediaFetchFailed",
    "MediaRefused",
    "MediaSample",
    "MediaStore",
    "delete_twilio_copy",
    "fetch_media",
    "media_ids",
    "picture_type",
    "take_media",
]

MAX_MEDIA_BYTES = 5 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
# Picture formats phones send, by their first bytes; the extension is the stored file's.
ALLOWED_IMAGE_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
}
_MEDIA_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})"
    r"/Messages/(?P<message>[A-Z]{2}[0-9a-fA-F]{32})/Media/(?P<media>ME[0-9a-fA-F]{32})$"
)
_STORED_KEY = re.compile(r"(?P<message>[A-Z]{2}[0-9a-fA-F]{32})-(?P<media>ME[0-9a-fA-F]{32})\.\w+")
# Refusals of a file Twilio does hold: its copy goes too, since we keep it nowhere.
_DELETED_WHEN_REFUSED = frozenset(("not_image", "too_large"))


class MediaRefused(Exception):
    """The media is not something we keep (not a picture, too large, not Twilio's URL).
    `reason` is a short code for logs and the polite reply; it never holds the content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaFetchFailed(Exception):
    """The download failed (timeout, connection, 5xx): worth retrying later."""


@dataclasses.dataclass(frozen=True, slots=True)
class MediaSample:
    message_sid: str
    media_sid: str
    content_type: str
    content: bytes


class MediaStore(Protocol):
    """Where samples live; the key it returns is what the record keeps."""

    def save(self, sample: MediaSample) -> str: ...

    def load(self, key: str) -> MediaSample | None: ...


def _sniffed_type(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim"):
        return "image/heic" if head[8:12].startswith(b"hei") else "image/heif"
    return None


def picture_type(content: bytes) -> str | None:
    """The picture format of `content` by its first bytes, or None if it is not a picture."""
    return _sniffed_type(content[:16])


def _media_ids(client: Client, media_url: str) -> tuple[str, str]:
    """(message sid, media sid) of a media URL of this account's API; refused otherwise."""
    base = str(client.api.base_url).rstrip("/")
    if not media_url.startswith(base + "/"):
        raise MediaRefused("not_twilio_url")
    match = _MEDIA_PATH.match(media_url[len(base) :])
    if match is None or match["account"] != client.username:
        raise MediaRefused("not_twilio_url")
    return match["message"], match["media"]


def media_ids(client: Client, media_url: str) -> tuple[str, str]:
    """(message sid, media sid) of a media URL of this account; `MediaRefused` otherwise."""
    return _media_ids(client, media_url)


def _read_bounded(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise MediaRefused("too_large")
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body.extend(chunk)
        if len(body) > max_bytes:
            raise MediaRefused("too_large")
        if time.monotonic() > deadline:
            raise MediaFetchFailed("media download took too long")
    return bytes(body)


def fetch_media(
    client: Client,
    media_url: str,
    *,
    max_bytes: int = MAX_MEDIA_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    session: requests.Session | None = None,
) -> MediaSample:
    """The picture at `media_url`, checked; `MediaRefused` or `MediaFetchFailed` otherwise."""
    message_sid, media_sid = _media_ids(client, media_url)
    deadline = time.monotonic() + timeout
    http = session or requests.Session()
    http.max_redirects = _MAX_REDIRECTS
    try:
        # requests drops the Authorization header on a redirect to another host (Twilio
        # hands media out from a CDN), so the credentials only ever go to Twilio.
        with http.get(
            media_url,
            auth=(client.username, client.password),
            stream=True,
            timeout=(timeout, timeout),
        ) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise MediaFetchFailed(f"media fetch answered {response.status_code}")
            if response.status_code != 200:
                raise MediaRefused(f"http_{response.status_code}")
            content = _read_bounded(response, max_bytes, deadline)
    except requests.RequestException as exc:
        raise MediaFetchFailed(type(exc).__name__) from exc
    finally:
        if session is None:
            http.close()
    content_type = _sniffed_type(content[:16])
    if content_type is None:
        raise MediaRefused("not_image")
    return MediaSample(message_sid, media_sid, content_type, content)


def delete_twilio_copy(client: Client, message_sid: str, media_sid: str) -> None:
    """Deletes Twilio's copy of one media file (the Media API answers 204)."""
    client.api.v2010.account.messages(message_sid).media(media_sid).delete()


def take_media(
    client: Client,
    store: MediaStore,
    media_url: str,
    *,
    max_bytes: int = MAX_MEDIA_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Fetch, check, store and delete Twilio's copy; returns the store's key. A refused file
    is deleted at Twilio as well and `MediaRefused` raised; a failed fetch leaves it there."""
    try:
        sample = fetch_media(client, media_url, max_bytes=max_bytes, timeout=timeout)
    except MediaRefused as refused:
        if refused.reason in _DELETED_WHEN_REFUSED:
            delete_twilio_copy(client, *_media_ids(client, media_url))
        raise
    key = store.save(sample)
    delete_twilio_copy(client, sample.message_sid, sample.media_sid)
    return key


class FileMediaStore:
    """Samples as files under `root`, one per media sid, readable by this user only."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def configured(cls, media_dir: str) -> FileMediaStore:
        """The store under the settings' MEDIA_DIR: every process reads and writes there."""
        return cls(Path(media_dir))

    def save(self, sample: MediaSample) -> str:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = f"{sample.message_sid}-{sample.media_sid}{ALLOWED_IMAGE_TYPES[sample.content_type]}"
        # Written under a temporary name and renamed: a reader never sees half a picture.
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(sample.content)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.root / key)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def load(self, key: str) -> MediaSample | None:
        match = _STORED_KEY.fullmatch(key)
        path = self.root / key
        if match is None or not path.is_file():
            return None
        content = path.read_bytes()
        content_type = _sniffed_type(content[:16])
        if content_type is None:
            return None
        return MediaSample(match["message"], match["media"], content_type, content)
