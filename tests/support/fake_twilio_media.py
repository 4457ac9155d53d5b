"""The Media slice of the fake Twilio API (see fake_twilio.py): the files a sender attached
to an MMS, served at their media URL, their JSON resource, and its DELETE.

Checked against Twilio's OpenAPI description at load: the JSON resource's fields are those of
`api.v2010.account.message.media`, and the paths, methods and status codes of FetchMedia
and DeleteMedia are the spec's. The file itself is served at the resource's URI without
`.json`, as Twilio does (that path is not in the OpenAPI description, which covers the JSON
API only).
"""

from __future__ import annotations

import email.utils
import functools
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MEDIA_RESOURCE_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json"
MEDIA_PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<message>[^/]+)"
    r"/Media/(?P<media>[^/.]+)(?P<json>\.json)?$"
)


@dataclass(frozen=True)
class MediaSpec:
    """What the OpenAPI description says about a media resource."""

    fields: frozenset[str]
    fetch_status: int
    delete_status: int


@functools.lru_cache(maxsize=4)
def load_media_spec(path: str) -> MediaSpec:
    with open(path, encoding="utf-8") as fh:
        spec = json.load(fh)
    operations = spec["paths"][MEDIA_RESOURCE_PATH]
    fetch, delete = operations["get"], operations["delete"]
    if (fetch["operationId"], delete["operationId"]) != ("FetchMedia", "DeleteMedia"):
        raise ValueError("the OpenAPI description's media operations moved")
    schema = spec["components"]["schemas"]["api.v2010.account.message.media"]
    return MediaSpec(
        fields=frozenset(schema["properties"]),
        fetch_status=int(next(iter(fetch["responses"]))),
        delete_status=int(next(iter(delete["responses"]))),
    )


@dataclass
class StoredMedia:
    sid: str
    message_sid: str
    content_type: str
    content: bytes
    date_created: datetime


@dataclass(frozen=True)
class MediaReply:
    """An answer for the fake's HTTP layer: JSON (`payload`) or the file (`raw`)."""

    status: int
    payload: Mapping[str, Any] | None = None
    raw: bytes | None = None
    content_type: str | None = None


class FakeMedia:
    """Media files per account, thread-safe; `deleted` lists the sids deleted, in order."""

    def __init__(self, spec: MediaSpec, account_sid: str, clock: Callable[[], datetime]) -> None:
        self.spec = spec
        self.account_sid = account_sid
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, StoredMedia] = {}
        self.deleted: list[str] = []
        self.downloads: list[str] = []

    def add(self, content: bytes, content_type: str, message_sid: str | None = None) -> str:
        """Attaches a file to a received message (a new MM sid unless given); returns the
        path of its media URL, as the inbound webhook's MediaUrl0 carries it."""
        message_sid = message_sid or "MM" + uuid.uuid4().hex
        media = StoredMedia(
            "ME" + uuid.uuid4().hex, message_sid, content_type, content, self._clock()
        )
        with self._lock:
            self._files[media.sid] = media
        return self._uri(media).removesuffix(".json")

    def held(self) -> list[str]:
        """The sids of the files still held."""
        with self._lock:
            return list(self._files)

    def _uri(self, media: StoredMedia) -> str:
        return MEDIA_RESOURCE_PATH.format(
            AccountSid=self.account_sid, MessageSid=media.message_sid, Sid=media.sid
        )

    def _resource(self, media: StoredMedia) -> dict[str, Any]:
        resource = {
            "account_sid": self.account_sid,
            "content_type": media.content_type,
            "date_created": email.utils.format_datetime(media.date_created),
            "date_updated": email.utils.format_datetime(media.date_created),
            "parent_sid": media.message_sid,
            "sid": media.sid,
            "uri": self._uri(media),
        }
        unknown = set(resource) - self.spec.fields
        if unknown:
            raise AssertionError(f"not fields of Twilio's media resource: {sorted(unknown)}")
        return resource

    def answer(self, method: str, path: str) -> MediaReply:
        """The reply to an authenticated request for a media path of this account."""
        match = MEDIA_PATH_RE.match(path)
        assert match is not None
        with self._lock:
            media = self._files.get(match["media"])
            if media is None or media.message_sid != match["message"]:
                return MediaReply(404, _not_found(path))
            if method == "GET" and not match["json"]:
                self.downloads.append(media.sid)
                return MediaReply(200, raw=media.content, content_type=media.content_type)
            if method == "GET":
                return MediaReply(self.spec.fetch_status, self._resource(media))
            if method == "DELETE" and match["json"]:
                del self._files[media.sid]
                self.deleted.append(media.sid)
                return MediaReply(self.spec.delete_status)
        return MediaReply(405, {"code": 20004, "message": "Method not allowed", "status": 405})


def _not_found(path: str) -> dict[str, Any]:
    return {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }
