"""Direct Line 3.0 uploads: the directlinejs form, the .NET client's lone file, a raw body, and bad uploads."""

from __future__ import annotations

import json

import httpx

from tests.api._v3 import V3, stream
from tests.api.conftest import MAX_UPLOAD, Service

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
TXT = b"plain text file\n"


def _upload(v3: V3, conv: str, query: str = "", credential: str | None = None, **kw: object) -> httpx.Response:
    return v3.post(f"/conversations/{conv}/upload{query}", credential, **kw)


def test_the_directlinejs_form_matches_files_to_attachments_by_name(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    activity = {
        "type": "message",
        "from": {"id": "u1", "role": "user"},
        "text": "two files",
        "channelData": {"clientActivityID": "up-1", "attachmentSizes": [len(PNG), len(TXT)]},
        "attachments": [
            {"contentType": "image/png", "name": "cat.png", "thumbnailUrl": "data:image/jpeg;base64,AAAA"},
            {"contentType": "text/plain", "name": "notes.txt"},
        ],
    }
    # the file parts come in download order, not attachment order
    files = [
        ("activity", ("blob", json.dumps(activity).encode(), "application/vnd.microsoft.activity")),
        ("file", ("notes.txt", TXT, "text/plain")),
        ("file", ("cat.png", PNG, "image/png")),
    ]
    with stream(start["streamUrl"]) as s:
        s.frame()  # the welcome
        r = _upload(v3, conv, "?userId=u1", files=files)
        assert r.status_code == 200, r.text
        activity_id = r.json()["id"]
        echo = s.frame()["activities"][0]
    assert echo["id"] == activity_id and echo["channelData"] == activity["channelData"]
    delivered = service.bot.of(conv, "message")[0]
    assert delivered["text"] == "two files" and delivered["channelData"] == activity["channelData"]
    cat, notes = delivered["attachments"]
    assert (cat["name"], cat["contentType"], cat["thumbnailUrl"]) == (
        "cat.png",
        "image/png",
        "data:image/jpeg;base64,AAAA",
    )
    assert (notes["name"], notes["contentType"]) == ("notes.txt", "text/plain")
    assert httpx.get(cat["contentUrl"]).content == PNG
    assert httpx.get(notes["contentUrl"]).content == TXT
    assert echo["attachments"] == delivered["attachments"]


def test_a_lone_file_part_is_a_message_from_user_id(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    r = _upload(
        v3, conv, "?userId=dotnet user", files=[("file", ("report.bin", b"\x00\x01", "application/octet-stream"))]
    )
    assert r.status_code == 200, r.text
    message = service.bot.of(conv, "message")[0]
    assert message["id"] == r.json()["id"] and message["from"]["id"] == "dotnet user"
    (attachment,) = message["attachments"]
    assert attachment["name"] == "report.bin" and httpx.get(attachment["contentUrl"]).content == b"\x00\x01"


def test_a_raw_body_is_one_file(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    headers = {"Content-Type": "image/png", "Content-Disposition": 'name="file"; filename="x.png"'}
    r = _upload(v3, conv, "?userId=raw", content=PNG, headers=headers)
    assert r.status_code == 200, r.text
    (attachment,) = service.bot.of(conv, "message")[0]["attachments"]
    assert (attachment["name"], attachment["contentType"]) == ("x.png", "image/png")


def test_a_user_bound_token_forces_the_uploader(service: Service) -> None:
    v3 = V3(service)
    token = v3.post("/tokens/generate", json={"user": {"id": "dl_up"}}).json()["token"]
    conv = v3.start(credential=token)["conversationId"]
    activity = {"type": "message", "from": {"id": "someone-else"}}
    files = [
        ("activity", ("blob", json.dumps(activity).encode(), "application/vnd.microsoft.activity")),
        ("file", ("a.txt", TXT, "text/plain")),
    ]
    assert _upload(v3, conv, "?userId=someone-else", token, files=files).status_code == 200
    assert service.bot.of(conv, "message")[0]["from"]["id"] == "dl_up"


def test_a_retried_upload_is_not_a_second_turn(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    activity = {"type": "message", "from": {"id": "u"}, "channelData": {"clientActivityID": "same"}}
    files = [
        ("activity", ("blob", json.dumps(activity).encode(), "application/vnd.microsoft.activity")),
        ("file", ("a.txt", TXT, "text/plain")),
    ]
    first = _upload(v3, conv, files=files).json()["id"]
    assert _upload(v3, conv, files=files).json()["id"] == first
    assert len(service.bot.of(conv, "message")) == 1


def test_bad_uploads_are_4xx(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"content": b""}, 400, "MissingProperty"),
        ({"files": [("file", ("a.txt", TXT, "text/plain"))]}, 400, "MissingProperty"),  # no userId, no from
        ({"files": [("activity", ("blob", b"{nope", "application/vnd.microsoft.activity"))]}, 400, "BadArgument"),
        (
            {
                "files": [
                    (
                        "activity",
                        ("blob", b'{"type":"message","from":{"id":"u"}}', "application/vnd.microsoft.activity"),
                    ),
                    (
                        "activity",
                        ("blob", b'{"type":"message","from":{"id":"u"}}', "application/vnd.microsoft.activity"),
                    ),
                ]
            },
            400,
            "BadArgument",
        ),
        ({"content": b"x" * (MAX_UPLOAD + 1), "headers": {"Content-Type": "text/plain"}}, 413, "BadArgument"),
        (
            {"content": b"--b\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
            400,
            "BadArgument",
        ),
    ]
    for kw, status, code in cases:
        r = _upload(v3, conv, **kw)
        assert r.status_code == status, (kw, r.text)
        assert r.json()["error"]["code"] == code, (kw, r.text)
    assert service.bot.of(conv, "message") == []
