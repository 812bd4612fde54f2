"""Properties of openline.protocol.multipart: any bytes parse or are refused with a ServiceError, and a body built
from parts parses back to those parts."""

from __future__ import annotations

import re

from hypothesis import assume, example, given
from hypothesis import strategies as st

from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.multipart import (
    Part,
    boundary_of,
    clean_filename,
    clean_media_type,
    disposition,
    parse_multipart,
)
from tests.protocol._strategies import PROPERTY

BOUNDARY = b"----openline-property-boundary"
boundaries = st.from_regex(rb"[0-9A-Za-z'()+_,./:=?-]{1,70}", fullmatch=True)
# text safe inside a quoted header parameter (no quote, backslash or line break)
names = st.text(alphabet=st.characters(codec="utf-8", exclude_characters='"\\\r\n', exclude_categories=["Cs"]),
                min_size=1, max_size=20)  # fmt: skip
media_types = st.from_regex(r"[a-z]{1,10}/[a-z0-9.+-]{1,15}", fullmatch=True)


@PROPERTY
@given(st.binary(max_size=300), boundaries)
@example(b"--" + BOUNDARY + b"\r\n\r\n\r\n--" + BOUNDARY + b"--", BOUNDARY)
@example(b"--" + BOUNDARY + b"--\r\n", BOUNDARY)
def test_any_bytes_parse_or_are_refused_as_malformed(body: bytes, boundary: bytes) -> None:
    try:
        parts = parse_multipart(body, boundary)
    except ServiceError as e:
        assert e.kind is ErrorKind.MALFORMED
        return
    assert parts and all(isinstance(p.data, bytes) for p in parts)


@PROPERTY
@given(st.lists(st.sampled_from([b"--", b"\r\n", BOUNDARY, b"Content-Disposition: form-data; name=a", b":", b"x"]),
                max_size=20))  # fmt: skip
def test_near_miss_bodies_parse_or_are_refused_as_malformed(pieces: list[bytes]) -> None:
    try:
        parse_multipart(b"".join(pieces), BOUNDARY)
    except ServiceError as e:
        assert e.kind is ErrorKind.MALFORMED


parts = st.builds(
    Part,
    name=names | st.none(),
    filename=names | st.none(),
    content_type=media_types | st.none(),
    data=st.binary(max_size=200),
)


def _encode(part: Part) -> bytes:
    params = "".join(f'; {key}="{value}"' for key, value in (("name", part.name), ("filename", part.filename)) if value)
    head = f"Content-Disposition: form-data{params}\r\n"
    if part.content_type is not None:
        head += f"Content-Type: {part.content_type}\r\n"
    return b"--" + BOUNDARY + b"\r\n" + head.encode() + b"\r\n" + part.data + b"\r\n"


@PROPERTY
@given(st.lists(parts, min_size=1, max_size=5))
def test_a_built_body_parses_back_to_its_parts(built: list[Part]) -> None:
    assume(all(b"\r\n--" + BOUNDARY not in b"\r\n" + p.data for p in built))
    body = b"".join(_encode(p) for p in built) + b"--" + BOUNDARY + b"--\r\n"
    assert parse_multipart(body, BOUNDARY) == built


@PROPERTY
@given(st.text(max_size=80))
@example('multipart/form-data; boundary=""')
@example("multipart/form-data; boundary")
@example("\u0101")  # parse_options_header raised UnicodeEncodeError (a header is Latin-1 on the wire, though)
def test_any_content_type_has_a_boundary_or_none_or_is_refused(content_type: str) -> None:
    try:
        boundary = boundary_of(content_type)
    except ServiceError as e:
        assert e.kind is ErrorKind.MALFORMED
        return
    assert boundary is None or (isinstance(boundary, bytes) and boundary)


@PROPERTY
@given(st.text(max_size=80) | st.binary(max_size=80) | st.none())
def test_any_disposition_gives_optional_texts(header: str | bytes | None) -> None:
    name, filename = disposition(header)
    assert name is None or isinstance(name, str)
    assert filename is None or isinstance(filename, str)


@PROPERTY
@given(st.text(max_size=300) | st.none())
def test_any_filename_is_cleaned_to_a_safe_one(value: str | None) -> None:
    cleaned = clean_filename(value)
    assert cleaned and len(cleaned) <= 200
    assert not re.search(r"[\x00-\x1f\x7f/\\]", cleaned)


@PROPERTY
@given(st.text(max_size=60) | st.none())
def test_any_media_type_is_cleaned_to_a_safe_one(value: str | None) -> None:
    cleaned = clean_media_type(value)
    assert re.fullmatch(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+", cleaned)
