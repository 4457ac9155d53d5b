"""Handwriting samples by MMS (coachbot/sms/media.py) against the Twilio stand-in: the real
SDK and a real HTTP download from the loopback server, whose media slice follows Twilio's
OpenAPI description (tests/support/fake_twilio_media.py)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from coachbot.sms.media import (
    MAX_MEDIA_BYTES,
    FileMediaStore,
    MediaFetchFailed,
    MediaRefused,
    fetch_media,
    take_media,
)
from coachbot.sms.twilio_client import build_twilio_client, close_twilio_client
from tests.support.fake_twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_SPEC_PATH,
    FakeTwilio,
    Fault,
)
from tests.support.fake_twilio_media import MEDIA_RESOURCE_PATH, load_media_spec

# The first bytes of real files of each kind, then padding: what the checks look at.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 2000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.7\n" + b"\x00" * 100


def _url(fake: FakeTwilio, content: bytes, content_type: str = "image/jpeg") -> str:
    return fake.base_url + fake.media.add(content, content_type)


def test_the_stand_ins_media_resource_is_twilios_as_the_openapi_description_has_it(
    fake: FakeTwilio, client: Client
) -> None:
    with open(DEFAULT_SPEC_PATH, encoding="utf-8") as fh:
        operations = json.load(fh)["paths"][MEDIA_RESOURCE_PATH]
    assert {"get", "delete"} <= set(operations)
    spec = load_media_spec(str(DEFAULT_SPEC_PATH))
    assert (spec.fetch_status, spec.delete_status) == (200, 204)
    url = _url(fake, JPEG)
    message_sid, media_sid = url.rsplit("/", 3)[1], url.rsplit("/", 1)[1]
    # The real SDK reads the stand-in's resource (its fields come from the spec's schema).
    media = client.api.v2010.account.messages(message_sid).media(media_sid).fetch()
    assert (media.sid, media.parent_sid, media.content_type) == (
        media_sid,
        message_sid,
        "image/jpeg",
    )
    assert media.uri.endswith(f"/Media/{media_sid}.json")
    # ...and deletes it: the stand-in answers 204, the SDK True, and it is gone.
    assert client.api.v2010.account.messages(message_sid).media(media_sid).delete() is True
    assert fake.media.deleted == [media_sid]
    with pytest.raises(TwilioRestException) as gone:
        client.api.v2010.account.messages(message_sid).media(media_sid).fetch()
    assert gone.value.status == 404


def test_a_picture_is_fetched_with_the_accounts_credentials(
    fake: FakeTwilio, client: Client
) -> None:
    url = _url(fake, PNG, "image/png")
    sample = fetch_media(client, url)
    assert (sample.content_type, sample.content) == ("image/png", PNG)
    assert url.endswith(f"/Messages/{sample.message_sid}/Media/{sample.media_sid}")
    assert fake.media.downloads == [sample.media_sid]


def test_without_the_right_credentials_the_fetch_is_refused(fake: FakeTwilio) -> None:
    url = _url(fake, JPEG)
    wrong = build_twilio_client(DEFAULT_ACCOUNT_SID, "not-the-token", api_base_url=fake.base_url)
    try:
        with pytest.raises(MediaRefused) as refused:
            fetch_media(wrong, url)
    finally:
        close_twilio_client(wrong)
    assert refused.value.reason == "http_401"
    assert fake.media.downloads == []


@pytest.mark.parametrize(
    "url",
    [
        "https://example.test/2010-04-01/Accounts/{account}/Messages/{message}/Media/{media}",
        "{base}/2010-04-01/Accounts/AC{other}/Messages/{message}/Media/{media}",
        "{base}/2010-04-01/Accounts/{account}/Messages/{message}.json",
        "{base}/2010-04-01/Accounts/{account}/Messages/{message}/Media/{media}/../../x",
    ],
)
def test_only_a_media_url_of_this_account_is_fetched(
    fake: FakeTwilio, client: Client, url: str
) -> None:
    real = _url(fake, JPEG).rsplit("/", 3)
    target = url.format(
        base=fake.base_url,
        account=DEFAULT_ACCOUNT_SID,
        other="0" * 32,
        message=real[1],
        media=real[3],
    )
    with pytest.raises(MediaRefused) as refused:
        fetch_media(client, target)
    assert refused.value.reason == "not_twilio_url"
    assert fake.media.downloads == []


@pytest.mark.parametrize(
    ("content", "declared"),
    [
        (PDF, "image/jpeg"),  # a type header that lies: the bytes decide
        (PDF, "application/pdf"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"", "image/jpeg"),
    ],
)
def test_anything_but_a_picture_is_refused_nothing_is_stored_and_twilios_copy_goes(
    fake: FakeTwilio, client: Client, tmp_path: Path, content: bytes, declared: str
) -> None:
    url = _url(fake, content, declared)
    store = FileMediaStore(tmp_path / "media")
    with pytest.raises(MediaRefused) as refused:
        take_media(client, store, url)
    assert refused.value.reason == "not_image"
    assert not (tmp_path / "media").exists()
    assert fake.media.held() == []


def test_a_picture_over_five_megabytes_is_refused_and_one_at_the_limit_kept(
    fake: FakeTwilio, client: Client, tmp_path: Path
) -> None:
    store = FileMediaStore(tmp_path)
    at_limit = JPEG + b"\x00" * (MAX_MEDIA_BYTES - len(JPEG))
    assert take_media(client, store, _url(fake, at_limit))
    too_big = _url(fake, at_limit + b"\x00")
    with pytest.raises(MediaRefused) as refused:
        take_media(client, store, too_big)
    assert refused.value.reason == "too_large"
    assert len(list(tmp_path.iterdir())) == 1
    assert fake.media.held() == []


def test_a_picture_is_stored_privately_then_twilios_copy_is_deleted(
    fake: FakeTwilio, client: Client, tmp_path: Path
) -> None:
    url = _url(fake, JPEG)
    store = FileMediaStore(tmp_path / "media")
    key = take_media(client, store, url)
    assert key.endswith(".jpg")
    stored = tmp_path / "media" / key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "media").stat().st_mode) == 0o700
    sample = store.load(key)
    assert sample is not None
    assert (sample.content, sample.content_type) == (JPEG, "image/jpeg")
    assert fake.media.deleted == [sample.media_sid]
    assert fake.media.held() == []
    assert store.load("../" + key) is None


def test_a_fetch_that_hangs_fails_within_its_bound_and_leaves_twilios_copy_for_a_retry(
    fake: FakeTwilio, client: Client, tmp_path: Path
) -> None:
    url = _url(fake, JPEG)
    fake.inject(Fault.hang(max_seconds=10), kinds=("media",))
    store = FileMediaStore(tmp_path)
    started = time.monotonic()
    with pytest.raises(MediaFetchFailed):
        take_media(client, store, url, timeout=0.5)
    assert time.monotonic() - started < 5
    fake.release_hangs()
    assert list(tmp_path.iterdir()) == []
    assert len(fake.media.held()) == 1
    # The retry (the tick's, later) finds it there and takes it.
    assert take_media(client, store, url)
    assert fake.media.held() == []


def test_a_server_error_is_a_failed_fetch_not_a_refusal(
    fake: FakeTwilio, client: Client, tmp_path: Path
) -> None:
    url = _url(fake, JPEG)
    fake.inject(Fault.server_error(), kinds=("media",))
    with pytest.raises(MediaFetchFailed):
        take_media(client, FileMediaStore(tmp_path), url)
    assert len(fake.media.held()) == 1
