"""Properties of openline.protocol.v3's request parsing: any JSON body is read or refused with a ServiceError."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from openline.protocol import v3
from openline.protocol.errors import ErrorKind, ServiceError
from tests.protocol._strategies import PROPERTY, json_values, objects_with

token_parameters = objects_with(
    {
        "user": objects_with({"id": st.text(max_size=300), "name": st.text(max_size=300)}),
        "locale": st.text(max_size=70),
        "trustedOrigins": st.lists(st.text(max_size=20), max_size=3),
    }
)


@PROPERTY
@given(token_parameters | json_values)
def test_any_body_gives_start_parameters_or_is_refused(body: Any) -> None:
    try:
        parameters = v3.start_parameters(body)
    except ServiceError as e:
        assert e.kind is ErrorKind.MALFORMED
        return
    if parameters.user is not None:
        assert isinstance(parameters.user["id"], str) and 0 < len(parameters.user["id"]) <= 256
    assert parameters.locale is None or len(parameters.locale) <= 64
    assert all(isinstance(origin, str) for origin in parameters.trusted_origins)


@PROPERTY
@given(st.text(min_size=1, max_size=30), st.text(max_size=20), st.text(min_size=1, max_size=40))
def test_a_stream_url_carries_its_watermark_and_token(conversation_id: str, watermark: str, token: str) -> None:
    import urllib.parse

    url = urllib.parse.urlsplit(v3.stream_url("wss://host", conversation_id, watermark, token))
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    assert query == {"watermark": [watermark], "t": [token]}
    assert urllib.parse.unquote(url.path.split("/")[-2]) == conversation_id
