"""Tests for openline.protocol.origins: origins in the form browsers send them."""

from __future__ import annotations

import pytest

from openline.protocol.origins import origin_of, parse_origin


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://example.com", "https://example.com"),
        ("HTTPS://Example.COM/", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:443", "http://example.com:443"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("chrome-extension://abcdef", "chrome-extension://abcdef"),
        ("  https://example.com  ", "https://example.com"),
    ],
)
def test_parse_origin(text: str, origin: str) -> None:
    assert parse_origin(text) == origin
    assert origin_of(text) == origin


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "example.com",
        "//example.com",
        "https://",
        "https:///path",
        "https://example.com/path",
        "https://example.com//",
        "https://example.com?q",
        "https://example.com#f",
        "https://user:pw@example.com",
        "https://*.example.com",
        "https://example.com:99999",
        "https://example.com:port",
        "1https://example.com",
    ],
)
def test_parse_origin_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        parse_origin(text)
    assert origin_of(text) is None
