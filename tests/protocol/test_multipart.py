"""Tests for openline.protocol.multipart: multipart/form-data parsing that keeps every part's headers."""

from __future__ import annotations

import pytest

from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.multipart import Part, boundary_of, disposition, parse_multipart

BOUNDARY = b"----openline-test-boundary"
MESSAGE_TYPE = "application/vnd.microsoft.bot.message"
BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\r\n--\r\n------openline-test-boundar\r\n\x00end\r\n"


def _part(headers: list[str], data: bytes) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers).encode()
    return b"--" + BOUNDARY + b"\r\n" + head + b"\r\n" + data + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


def _malformed(body: bytes, boundary: bytes = BOUNDARY, **kwargs: int) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        parse_multipart(body, boundary, **kwargs)
    assert info.value.kind is ErrorKind.MALFORMED
    return info.value


# parse_multipart


def test_parts_keep_name_filename_content_type_and_bytes() -> None:
    body = _body(
        _part(
            ['Content-Disposition: form-data; name="file"; filename="cat.png"', "Content-Type: image/png"],
            BINARY,
        ),
        _part(['Content-Disposition: form-data; name="notes"; filename="notes.txt"'], b"plain\r\ntext"),
    )
    assert parse_multipart(body, BOUNDARY) == [
        Part("file", "cat.png", "image/png", BINARY),
        Part("notes", "notes.txt", None, b"plain\r\ntext"),
    ]


def test_a_message_part_without_filename_keeps_its_content_type() -> None:
    message = b'{"type": "message", "text": "hi"}'
    body = _body(
        _part(['Content-Disposition: form-data; name="activity"', f"Content-Type: {MESSAGE_TYPE}"], message),
        _part(['Content-Disposition: form-data; name="file"; filename="a.bin"', "Content-Type: x/y"], b"\x00"),
    )
    parts = parse_multipart(body, BOUNDARY)
    assert parts[0] == Part("activity", None, MESSAGE_TYPE, message)
    assert parts[1] == Part("file", "a.bin", "x/y", b"\x00")


def test_header_names_are_case_insensitive_and_values_trimmed() -> None:
    body = _body(
        _part(['content-disposition: form-data; name="f"; filename="x"', "CONTENT-TYPE:   text/plain  "], b"x")
    )
    assert parse_multipart(body, BOUNDARY) == [Part("f", "x", "text/plain", b"x")]


def test_a_part_without_headers() -> None:
    assert parse_multipart(_body(_part([], b"data")), BOUNDARY) == [Part(None, None, None, b"data")]


def test_an_empty_part() -> None:
    body = _body(_part(['Content-Disposition: form-data; name="empty"; filename="e.txt"'], b""))
    assert parse_multipart(body, BOUNDARY) == [Part("empty", "e.txt", None, b"")]


def test_large_binary_part_is_kept_byte_for_byte() -> None:
    data = bytes(range(256)) * 4096 + b"\r\n--" + BOUNDARY[:-1]
    body = _body(_part(['Content-Disposition: form-data; name="f"; filename="big.bin"'], data))
    (part,) = parse_multipart(body, BOUNDARY)
    assert part.data == data


def test_parts_are_returned_in_order() -> None:
    body = _body(*(_part([f'Content-Disposition: form-data; name="p{i}"'], str(i).encode()) for i in range(5)))
    assert [(p.name, p.data) for p in parse_multipart(body, BOUNDARY)] == [(f"p{i}", str(i).encode()) for i in range(5)]


def test_ascii_filenames_with_spaces_and_quotes_in_the_body() -> None:
    body = _body(_part(['Content-Disposition: form-data; name="f"; filename="my holiday photo.jpg"'], b"x"))
    assert parse_multipart(body, BOUNDARY)[0].filename == "my holiday photo.jpg"


@pytest.mark.parametrize("filename", ["résumé.txt", "猫 photo.png"])
def test_utf8_filenames_are_kept(filename: str) -> None:
    header = f'Content-Disposition: form-data; name="file"; filename="{filename}"'.encode()
    body = b"--" + BOUNDARY + b"\r\n" + header + b"\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"
    assert parse_multipart(body, BOUNDARY) == [Part("file", filename, None, b"x")]


@pytest.mark.parametrize("filename", ["résumé.txt", "猫 photo.png"])
def test_disposition_keeps_non_ascii_filenames(filename: str) -> None:
    assert disposition(f'form-data; name="file"; filename="{filename}"') == ("file", filename)


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"not a multipart body at all\r\n",
        b"--wrong-boundary\r\n\r\nx\r\n--wrong-boundary--\r\n",
        b"",
    ],
)
def test_garbage_is_malformed(body: bytes) -> None:
    _malformed(body)


def test_a_truncated_body_is_malformed() -> None:
    complete = _body(_part(['Content-Disposition: form-data; name="f"; filename="a"'], b"hello world"))
    # everything up to, but not including, the closing boundary's final "--"
    for cut in (20, len(complete) // 2, complete.rindex(b"--" + BOUNDARY + b"--") + 2 + len(BOUNDARY)):
        _malformed(complete[:cut])


def test_a_body_without_closing_boundary_is_malformed() -> None:
    error = _malformed(_part(['Content-Disposition: form-data; name="f"'], b"hello"))
    assert "closing boundary" in error.message


def test_a_body_without_parts_is_malformed() -> None:
    _malformed(b"--" + BOUNDARY + b"--\r\n")


def _too_large(body: bytes, **kwargs: int) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        parse_multipart(body, BOUNDARY, **kwargs)
    assert info.value.kind is ErrorKind.TOO_LARGE  # 413: a limit (max_upload_parts), not a broken body
    return info.value


def test_too_many_parts_is_too_large() -> None:
    body = _body(*(_part([f'Content-Disposition: form-data; name="p{i}"'], b"x") for i in range(4)))
    assert len(parse_multipart(body, BOUNDARY, max_parts=4)) == 4
    error = _too_large(body, max_parts=3)
    assert "more than 3 parts" in error.message


def test_the_default_part_limit_is_64() -> None:
    parts = [_part([f'Content-Disposition: form-data; name="p{i}"'], b"x") for i in range(65)]
    assert len(parse_multipart(_body(*parts[:64]), BOUNDARY)) == 64
    _too_large(_body(*parts))


# boundary_of


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc123", b"abc123"),
        ('multipart/form-data; boundary="quoted boundary"', b"quoted boundary"),
        ("Multipart/Form-Data; Boundary=abc", b"abc"),
        (
            "multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxk",
            b"----WebKitFormBoundary7MA4YWxk",
        ),
    ],
)
def test_boundary_of_multipart(content_type: str, boundary: bytes) -> None:
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain; boundary=abc", "multipart/mixed; boundary=abc", "application/octet-stream", ""],
)
def test_boundary_of_non_multipart_is_none(content_type: str) -> None:
    assert boundary_of(content_type) is None


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; charset=utf-8"]
)
def test_boundary_of_multipart_without_boundary_is_malformed(content_type: str) -> None:
    with pytest.raises(ServiceError) as info:
        boundary_of(content_type)
    assert info.value.kind is ErrorKind.MALFORMED


def test_boundary_of_feeds_parse_multipart() -> None:
    boundary = boundary_of("multipart/form-data; boundary=" + BOUNDARY.decode())
    assert boundary is not None
    body = _body(_part(['Content-Disposition: form-data; name="f"; filename="a"'], b"x"))
    assert parse_multipart(body, boundary) == [Part("f", "a", None, b"x")]


# disposition


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (None, None)),
        ("", (None, None)),
        ("form-data", (None, None)),
        ('form-data; name="file"', ("file", None)),
        ("form-data; name=file", ("file", None)),
        ('form-data; name="file"; filename="cat.png"', ("file", "cat.png")),
        ('form-data; name="file"; filename="my holiday photo.png"', ("file", "my holiday photo.png")),
        ('form-data; filename="only name.txt"', (None, "only name.txt")),
        ('attachment; filename="report; final.pdf"', (None, "report; final.pdf")),
        ('form-data; name="f"; filename=""', ("f", "")),
    ],
)
def test_disposition(header: str | None, expected: tuple[str | None, str | None]) -> None:
    assert disposition(header) == expected


def test_a_content_type_no_header_can_hold_is_malformed() -> None:
    # parse_options_header raised UnicodeEncodeError (found by test_multipart_properties)
    with pytest.raises(ServiceError) as info:
        boundary_of("multipart/form-data; boundary=\u0101")
    assert info.value.kind is ErrorKind.MALFORMED
