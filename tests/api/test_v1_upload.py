"""1.1 uploads over HTTP: raw and multipart forms, what the bot gets, the signed file URLs, and bad uploads."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest

from tests.api.conftest import MAX_UPLOAD, REC_SECRET, RETENTION, Service

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\r\n--boundary-like\r\n" + b"\x00\xff" * 100


def _upload(service: Service, conv: str, params: dict[str, str] | None = None, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    headers = {**service.auth(REC_SECRET), **kwargs.pop("headers", {})}
    return service.http.post(f"/api/conversations/{conv}/upload", headers=headers, params=params or {}, **kwargs)


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["statusCode"] == status


def test_raw_single_image(service: Service) -> None:
    conv = service.start()["conversationId"]
    r = _upload(
        service,
        conv,
        {"userId": "uploader"},
        content=PNG,
        headers={"Content-Type": "image/png", "Content-Disposition": 'name="file"; filename="cat picture.png"'},
    )
    assert r.status_code == 204 and r.content == b""
    message = service.bot.of(conv, "message")[0]
    assert message["from"]["id"] == "uploader"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "image/png" and attachment["name"] == "cat picture.png"
    # the bot can fetch the file at the URL it was given
    file = httpx.get(attachment["contentUrl"])
    assert file.status_code == 200 and file.content == PNG
    assert file.headers["content-type"] == "image/png"
    assert file.headers["x-content-type-options"] == "nosniff"
    # 1.1 clients see it as an image of the message
    first = service.messages(conv)["messages"][0]
    assert first["from"] == "uploader" and first["images"] == [attachment["contentUrl"]] and first["attachments"] == []


def test_multipart_files_with_a_message_part(service: Service) -> None:
    conv = service.start()["conversationId"]
    files = [
        ("file", ("a.png", PNG, "image/png")),
        ("file", ("report.pdf", PDF, "application/pdf")),
        (
            "message",
            (
                "",
                b'{"text": "see these", "from": "partuser", "channelData": {"k": 1}}',
                "application/vnd.microsoft.bot.message",
            ),
        ),
    ]
    r = _upload(service, conv, {"userId": "queryuser"}, files=files)
    assert r.status_code == 204, r.text
    (message,) = service.bot.of(conv, "message")
    assert message["text"] == "see these" and message["from"]["id"] == "partuser"
    assert message["channelData"] == {"k": 1}
    assert [(a["name"], a["contentType"]) for a in message["attachments"]] == [
        ("a.png", "image/png"),
        ("report.pdf", "application/pdf"),
    ]
    assert [httpx.get(a["contentUrl"]).content for a in message["attachments"]] == [PNG, PDF]
    pdf = httpx.get(message["attachments"][1]["contentUrl"])
    assert pdf.headers["content-disposition"].startswith("attachment")
    shown = service.messages(conv)["messages"][0]
    assert shown["text"] == "see these"
    assert shown["images"] == [message["attachments"][0]["contentUrl"]]
    assert shown["attachments"] == [{"url": message["attachments"][1]["contentUrl"], "contentType": "application/pdf"}]


def test_multipart_without_a_message_uses_the_user_id(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert (
        _upload(service, conv, {"userId": "only-query"}, files=[("file", ("n.txt", b"note", "text/plain"))]).status_code
        == 204
    )
    assert _upload(service, conv, files=[("file", ("m.txt", b"anon", "text/plain"))]).status_code == 204
    first, second = service.bot.of(conv, "message")
    assert first["from"]["id"] == "only-query"
    assert second["from"]["id"] and second["from"]["id"] != "only-query"


def test_file_links_are_signed_and_expire(service: Service) -> None:
    conv = service.start()["conversationId"]
    _upload(service, conv, {"userId": "u"}, content=b"secret", headers={"Content-Type": "text/plain"})
    url = service.bot.of(conv, "message")[0]["attachments"][0]["contentUrl"]
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    tampered = [
        # another first character (a signature may start with "x" itself)
        parts._replace(
            query=urllib.parse.urlencode({**query, "s": ("y" if query["s"][0] == "x" else "x") + query["s"][1:]})
        ),
        parts._replace(query=urllib.parse.urlencode({**query, "e": str(int(query["e"]) + 1)})),
        parts._replace(query=""),
        parts._replace(path=parts.path.replace(conv, "otherconversation")),
    ]
    for bad in tampered:
        _error(httpx.get(urllib.parse.urlunsplit(bad)), 403, "NotAllowed")
    assert httpx.get(url).content == b"secret"
    service.clock.offset = RETENTION + 1
    _error(httpx.get(url), 403, "NotAllowed")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"", "headers": {"Content-Type": "image/png"}}, 400, "MissingProperty"),
        (
            {"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
            400,
            "MalformedData",
        ),
        ({"content": b"abc", "headers": {"Content-Type": "multipart/form-data"}}, 400, "MalformedData"),
        (
            {
                "files": [
                    ("message", ("", b"{not json", "application/vnd.microsoft.bot.message")),
                    ("file", ("a.txt", b"a", "text/plain")),
                ]
            },
            400,
            "MalformedData",
        ),
        (
            {"files": [("message", ("", b'{"text": "no files"}', "application/vnd.microsoft.bot.message"))]},
            400,
            "MissingProperty",
        ),
        (
            {
                "files": [
                    ("message", ("", b'{"channelData": "str"}', "application/vnd.microsoft.bot.message")),
                    ("file", ("a.txt", b"a", "text/plain")),
                ]
            },
            400,
            "MalformedData",
        ),
        (
            {"content": b"x" * (MAX_UPLOAD + 1), "headers": {"Content-Type": "application/octet-stream"}},
            413,
            "MalformedData",
        ),
    ],
)
def test_bad_uploads_are_4xx_and_store_nothing(service: Service, kwargs: dict, status: int, code: str) -> None:  # type: ignore[type-arg]
    conv = service.start()["conversationId"]
    _error(_upload(service, conv, **kwargs), status, code)
    assert service.messages(conv)["messages"] == []


def test_a_signed_link_to_a_missing_file_is_404(service: Service) -> None:
    conv = service.start()["conversationId"]
    url = service.services.signer.file_url(service.url, conv, "nosuchfile", "x.txt", int(service.clock()) + 60)
    _error(httpx.get(url), 404, "NotFound")


def test_hostile_file_names_and_types_are_stored_safely(service: Service) -> None:
    conv = service.start()["conversationId"]
    files = [
        ("file", ("../../etc/passwd", b"one", "text/plain\r\nX-Evil: 1")),
        ("file", ("..", b"two", "image/png\u20ac")),
        ("file", ("dir\\name.txt", b"three", "text/plain; charset=utf-8")),
    ]
    assert _upload(service, conv, {"userId": "u"}, files=files).status_code == 204
    attachments = service.bot.of(conv, "message")[0]["attachments"]
    assert [(a["name"], a["contentType"]) for a in attachments] == [
        ("passwd", "text/plain"),  # the injected line is a header of the part, not of the file's type
        ("file", "application/octet-stream"),
        ("name.txt", "text/plain"),
    ]
    for attachment, data in zip(attachments, [b"one", b"two", b"three"], strict=True):
        r = httpx.get(attachment["contentUrl"])
        assert r.status_code == 200 and r.content == data
        assert "x-evil" not in r.headers
