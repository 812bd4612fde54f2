"""Tests for openline.auth.signing: signed, expiring file URLs."""

from __future__ import annotations

import urllib.parse

import pytest

from openline.auth.signing import UrlSigner

KEY = b"f" * 32
BASE = "http://localhost:3000"
NOW = 1_700_000_000.0
EXPIRES = int(NOW) + 3600


def _signer() -> UrlSigner:
    return UrlSigner(KEY)


def _query(url: str) -> tuple[str, str]:
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, strict_parsing=True)
    assert set(params) == {"e", "s"}
    return params["e"][0], params["s"][0]


def test_file_url_shape() -> None:
    url = _signer().file_url(BASE, "conv1", "file1", "cat.png", EXPIRES)
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "localhost:3000", "/attachments/conv1/file1/cat.png")
    expires, signature = _query(url)
    assert expires == str(EXPIRES)
    assert signature
    assert url.startswith(f"{BASE}/attachments/conv1/file1/cat.png?e={EXPIRES}&s=")


def test_file_url_ignores_a_trailing_slash_on_the_base() -> None:
    signer = _signer()
    assert signer.file_url(BASE + "/", "c", "f", "a", EXPIRES) == signer.file_url(BASE, "c", "f", "a", EXPIRES)


def test_file_url_keeps_a_base_path() -> None:
    url = _signer().file_url("https://example.com/directline/", "c", "f", "a.txt", EXPIRES)
    assert url.startswith("https://example.com/directline/attachments/c/f/a.txt?")


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("my photo.png", "my%20photo.png"),
        ("a/b?c#d&e.txt", "a%2Fb%3Fc%23d%26e.txt"),
        ("résumé.pdf", "r%C3%A9sum%C3%A9.pdf"),
        ("..", ".."),
        ("", "file"),
    ],
)
def test_file_url_quotes_the_name_into_one_path_segment(name: str, quoted: str) -> None:
    url = _signer().file_url(BASE, "c", "f", name, EXPIRES)
    path = urllib.parse.urlsplit(url).path
    assert path == f"/attachments/c/f/{quoted}"


def test_the_signature_is_url_safe() -> None:
    for i in range(50):
        _, signature = _query(_signer().file_url(BASE, "c", f"file{i}", "n", EXPIRES))
        assert urllib.parse.quote(signature, safe="") == signature
        assert "=" not in signature


def test_valid_for_the_right_values() -> None:
    signer = _signer()
    expires, signature = _query(signer.file_url(BASE, "conv1", "file1", "cat.png", EXPIRES))
    assert signer.valid("conv1", "file1", expires, signature, NOW)
    assert signer.valid("conv1", "file1", expires, signature, EXPIRES)  # the last valid second


def test_the_name_is_not_part_of_the_signature() -> None:
    signer = _signer()
    a = _query(signer.file_url(BASE, "c", "f", "a.png", EXPIRES))
    b = _query(signer.file_url(BASE, "c", "f", "b.png", EXPIRES))
    assert a == b


def test_another_signer_with_the_same_key_accepts_the_url() -> None:
    expires, signature = _query(_signer().file_url(BASE, "c", "f", "n", EXPIRES))
    assert UrlSigner(KEY).valid("c", "f", expires, signature, NOW)


def test_invalid_once_expired() -> None:
    signer = _signer()
    expires, signature = _query(signer.file_url(BASE, "c", "f", "n", EXPIRES))
    assert not signer.valid("c", "f", expires, signature, EXPIRES + 0.001)
    assert not signer.valid("c", "f", expires, signature, EXPIRES + 86400)


@pytest.mark.parametrize(("conversation", "file_id"), [("c", "other"), ("other", "f"), ("f", "c"), ("c\nf", "")])
def test_invalid_for_another_file_or_conversation(conversation: str, file_id: str) -> None:
    signer = _signer()
    expires, signature = _query(signer.file_url(BASE, "c", "f", "n", EXPIRES))
    assert not signer.valid(conversation, file_id, expires, signature, NOW)


@pytest.mark.parametrize("changed", [str(EXPIRES + 1), str(EXPIRES - 1), str(EXPIRES + 10**9)])
def test_invalid_with_a_changed_expiry(changed: str) -> None:
    signer = _signer()
    _, signature = _query(signer.file_url(BASE, "c", "f", "n", EXPIRES))
    assert not signer.valid("c", "f", changed, signature, NOW)


@pytest.mark.parametrize(
    "mutate", [lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"), lambda s: s[:-1], lambda s: "", str.upper]
)
def test_invalid_with_a_bad_signature(mutate) -> None:  # type: ignore[no-untyped-def]
    signer = _signer()
    expires, signature = _query(signer.file_url(BASE, "c", "f", "n", EXPIRES))
    bad = mutate(signature)
    assert bad != signature
    assert not signer.valid("c", "f", expires, bad, NOW)


def test_invalid_with_another_key() -> None:
    expires, signature = _query(UrlSigner(b"g" * 32).file_url(BASE, "c", "f", "n", EXPIRES))
    assert not _signer().valid("c", "f", expires, signature, NOW)


@pytest.mark.parametrize("expires", ["", "abc", "-1", "1.5", f"{EXPIRES}.0", f" {EXPIRES}", "1e12"])
def test_invalid_with_a_non_numeric_expiry(expires: str) -> None:
    signer = _signer()
    _, signature = _query(signer.file_url(BASE, "c", "f", "n", EXPIRES))
    assert not signer.valid("c", "f", expires, signature, NOW)


def test_invalid_with_a_superscript_digit_expiry() -> None:
    _, signature = _query(_signer().file_url(BASE, "c", "f", "n", EXPIRES))
    assert not _signer().valid("c", "f", "²", signature, NOW)


def test_invalid_with_a_non_ascii_signature() -> None:
    expires, _ = _query(_signer().file_url(BASE, "c", "f", "n", EXPIRES))
    assert not _signer().valid("c", "f", expires, "é", NOW)
