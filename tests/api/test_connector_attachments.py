"""The connector API's attachments: a bot uploads base64 data, then the attachment is described and served."""

from __future__ import annotations

import base64
import string
from typing import Any

import pytest

from tests.api._connector import error, quoted
from tests.api.conftest import MAX_UPLOAD, RETENTION, Service

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _upload(service: Service, conv: str, **data: Any) -> str:
    r = service.http.post(f"/v3/conversations/{conv}/attachments", json=data)
    assert r.status_code == 200, r.text
    attachment_id: str = r.json()["id"]
    assert set(r.json()) == {"id"}
    return attachment_id


def test_upload_describe_and_download(service: Service) -> None:
    conv = service.start()["conversationId"]
    attachment_id = _upload(
        service, conv, type="image/png", name="cat.png", originalBase64=_b64(PNG), thumbnailBase64=_b64(PNG[:20])
    )
    conversation_part, separator, key = attachment_id.rpartition("~")
    assert (conversation_part, separator) == (conv, "~")
    assert len(key) >= 22 and set(key) <= set(string.ascii_letters + string.digits)
    assert quoted(attachment_id) == attachment_id, "URL-safe as it is"
    r = service.http.get(f"/v3/attachments/{attachment_id}")
    assert r.status_code == 200 and r.json() == {
        "name": "cat.png",
        "type": "image/png",
        "views": [{"viewId": "original", "size": len(PNG)}, {"viewId": "thumbnail", "size": 20}],
    }
    original = service.http.get(f"/v3/attachments/{attachment_id}/views/original")
    assert original.status_code == 200 and original.content == PNG
    assert original.headers["content-type"] == "image/png"
    assert original.headers["content-disposition"] == "inline; filename*=UTF-8''cat.png"
    assert original.headers["x-content-type-options"] == "nosniff"
    assert original.headers["content-security-policy"] == "sandbox; default-src 'none'"
    thumbnail = service.http.get(f"/v3/attachments/{attachment_id}/views/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.content == PNG[:20]
    # the upload is not a message: the conversation shows nothing
    assert service.all_messages(conv) == []


def test_a_bot_can_link_its_attachment_in_an_activity(service: Service) -> None:
    conv = service.start()["conversationId"]
    attachment_id = _upload(service, conv, type="image/png", name="cat.png", originalBase64=_b64(PNG))
    url = f"{service.url}/v3/attachments/{attachment_id}/views/original"
    activity = {"type": "message", "attachments": [{"contentType": "image/png", "contentUrl": url}]}
    assert service.http.post(f"/v3/conversations/{conv}/activities", json=activity).status_code == 200
    (message,) = service.all_messages(conv)
    assert message["images"] == [url]
    assert service.http.get(message["images"][0]).content == PNG


def test_other_files_are_downloads(service: Service) -> None:
    conv = service.start()["conversationId"]
    page = b"<script>alert(1)</script>"
    attachment_id = _upload(service, conv, type="text/html", name="../x/pa ge.html", originalBase64=_b64(page))
    info = service.http.get(f"/v3/attachments/{attachment_id}").json()
    assert info == {"name": "pa ge.html", "type": "text/html", "views": [{"viewId": "original", "size": len(page)}]}
    r = service.http.get(f"/v3/attachments/{attachment_id}/views/original")
    assert r.content == page and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''pa%20ge.html"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox; default-src 'none'"
    error(service.http.get(f"/v3/attachments/{attachment_id}/views/thumbnail"), 404, "NotFound")


def test_defaults_and_lenient_base64(service: Service) -> None:
    conv = service.start()["conversationId"]
    data = b"\xff\xef\xfe\x00\x01"
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    attachment_id = _upload(service, conv, originalBase64=urlsafe)
    assert service.http.get(f"/v3/attachments/{attachment_id}").json() == {
        "name": "file",
        "type": "application/octet-stream",
        "views": [{"viewId": "original", "size": len(data)}],
    }
    assert service.http.get(f"/v3/attachments/{attachment_id}/views/original").content == data
    empty = _upload(service, conv, originalBase64="", name="empty.txt", type="text/plain")
    assert service.http.get(f"/v3/attachments/{empty}").json()["views"] == [{"viewId": "original", "size": 0}]


def test_unknown_attachments_and_views(service: Service) -> None:
    conv = service.start()["conversationId"]
    other = service.start()["conversationId"]
    attachment_id = _upload(service, conv, originalBase64=_b64(b"x"))
    key = attachment_id.rpartition("~")[2]
    for unknown in (f"{other}~{key}", f"{conv}~{key}x", f"nosuch~{key}", "garbage", f"{conv}~", f"~{key}"):
        error(service.http.get(f"/v3/attachments/{quoted(unknown)}"), 404, "NotFound")
        error(service.http.get(f"/v3/attachments/{quoted(unknown)}/views/original"), 404, "NotFound")
    for view in ("other", "Original", "original.x"):
        error(service.http.get(f"/v3/attachments/{attachment_id}/views/{view}"), 404, "NotFound")


def test_attachments_expire_with_the_retention(service: Service) -> None:
    conv = service.start()["conversationId"]
    attachment_id = _upload(service, conv, originalBase64=_b64(b"x"))
    service.clock.offset = RETENTION + 1
    error(service.http.get(f"/v3/attachments/{attachment_id}"), 404, "NotFound")
    error(service.http.get(f"/v3/attachments/{attachment_id}/views/original"), 404, "NotFound")


def test_size_limit(service: Service) -> None:
    conv = service.start()["conversationId"]
    at_limit = _upload(service, conv, originalBase64=_b64(b"x" * (MAX_UPLOAD - 10)), thumbnailBase64=_b64(b"t" * 10))
    assert service.http.get(f"/v3/attachments/{at_limit}").json()["views"][0]["size"] == MAX_UPLOAD - 10
    path = f"/v3/conversations/{conv}/attachments"
    over = {"originalBase64": _b64(b"x" * (MAX_UPLOAD - 10)), "thumbnailBase64": _b64(b"t" * 11)}
    error(service.http.post(path, json=over), 413, "BadArgument")
    error(service.http.post(path, json={"originalBase64": _b64(b"x" * (MAX_UPLOAD + 1))}), 413, "BadArgument")
    error(service.http.post(path, json={"originalBase64": "A" * (MAX_UPLOAD * 3)}), 413, "BadArgument")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "MissingProperty"),
        ({"type": "image/png", "name": "x.png"}, "MissingProperty"),
        ({"originalBase64": None}, "MissingProperty"),
        ({"originalBase64": "@@@not base64"}, "BadArgument"),
        ({"originalBase64": "abcde"}, "BadArgument"),
        ({"originalBase64": 12}, "BadArgument"),
        ({"originalBase64": [1, 2]}, "BadArgument"),
        ({"originalBase64": "eA==", "thumbnailBase64": "%%"}, "BadArgument"),
        ({"originalBase64": "eA==", "name": 3}, "BadArgument"),
        ({"originalBase64": "eA==", "type": {}}, "BadArgument"),
        (["eA=="], "BadArgument"),
    ],
)
def test_bad_attachment_data(service: Service, body: Any, code: str) -> None:
    conv = service.start()["conversationId"]
    error(service.http.post(f"/v3/conversations/{conv}/attachments", json=body), 400, code)


def test_upload_errors(service: Service) -> None:
    error(service.http.post("/v3/conversations/nosuch/attachments", json={"originalBase64": "eA=="}), 404, "NotFound")
    conv = service.start()["conversationId"]
    error(service.http.post(f"/v3/conversations/{conv}/attachments", content=b"{"), 400, "BadArgument")
    error(service.http.post(f"/v3/conversations/{conv}/attachments", content=b""), 400, "BadArgument")
    error(service.http.get(f"/v3/conversations/{conv}/attachments"), 405, "BadArgument")
