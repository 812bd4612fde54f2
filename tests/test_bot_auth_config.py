"""Bot authentication and TLS settings: flags, environment, [[bots]] keys, and the combinations refused at start;
and the `openline keys` and `openline dev-cert` commands."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from openline.auth.bot_keys import KeyFile
from openline.cli import main
from openline.config import BotConfig, load_config
from openline.devcert import make_dev_cert
from tests.test_config import _cli, _error

PW = "app-password-0123456789"
SIDECAR = "s" * 40


def test_the_bot_of_the_command_line_takes_an_app_id_and_passwords() -> None:
    config = load_config(
        _cli(bot="http://127.0.0.1:3978/api/messages", bot_app_id="my-app", bot_app_password=[PW, PW + "x"]), env={}
    )
    assert config.bots == (BotConfig("bot", "Bot", "http://127.0.0.1:3978/api/messages", (), "my-app", (PW, PW + "x")),)
    assert config.require_bot_auth is False


def test_the_environment_sets_them_too() -> None:
    env = {
        "OPENLINE_BOT": "http://127.0.0.1:3978/api/messages",
        "OPENLINE_BOT_APP_ID": "my-app",
        "OPENLINE_BOT_APP_PASSWORD": f"{PW}, {PW}-next",
        "OPENLINE_BOT_SIDECAR_SECRET": SIDECAR,
    }
    bot = load_config(_cli(), env=env).bots[0]
    assert (bot.app_id, bot.app_passwords, bot.sidecar_secret) == ("my-app", (PW, f"{PW}-next"), SIDECAR)


def test_toml_bots_take_app_id_password_and_sidecar_secret(tmp_path: Path) -> None:
    path = tmp_path / "openline.toml"
    path.write_text(
        f"""require_bot_auth = true
[[bots]]
id = "a"
endpoint = "http://127.0.0.1:3978/api/messages"
app_id = "app-a"
app_password = ["{PW}", "{PW}-new"]
[[bots]]
id = "b"
endpoint = "http://127.0.0.1:3979/api/messages"
app_id = "app-b"
sidecar_secret = "{SIDECAR}"
"""
    )
    config = load_config(_cli(config=str(path)), env={})
    assert config.require_bot_auth is True
    assert [(b.app_id, b.app_passwords, b.sidecar_secret) for b in config.bots] == [
        ("app-a", (PW, f"{PW}-new"), None),
        ("app-b", (), SIDECAR),
    ]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"bot_app_id": "x"}, "echo bot does not authenticate"),
        ({"bot": "http://h/api/messages", "bot_app_id": "x"}, "needs an app password"),
        ({"bot": "http://h/api/messages", "bot_app_password": [PW]}, "needs the bot's app id"),
        ({"bot": "http://h/api/messages", "bot_app_id": "x", "bot_app_password": ["short"]}, "at least 16"),
        ({"bot": "http://h/api/messages", "bot_app_id": "has space", "bot_app_password": [PW]}, "not an app id"),
        ({"bot": "http://h/api/messages", "bot_app_id": "x", "bot_sidecar_secret": "short"}, "sidecar secret"),
        ({"bot": "http://h/api/messages", "require_bot_auth": True}, "has no app id"),
        ({"require_bot_auth": True}, "echo bot has no app id"),
        ({"tls_cert": "/nonexistent.pem", "tls_key": "/nonexistent.key"}, "not a readable file"),
    ],
)
def test_settings_that_cannot_work_are_refused_saying_why(given: dict[str, Any], message: str) -> None:
    assert message in _error(_cli(**given))


def test_app_ids_and_sidecar_secrets_belong_to_one_bot(tmp_path: Path) -> None:
    path = tmp_path / "openline.toml"
    bot = 'endpoint = "http://h/api/messages"\napp_id = "{}"\napp_password = "' + PW + '"\n'
    path.write_text("[[bots]]\nid = 'a'\n" + bot.format("App") + "[[bots]]\nid = 'b'\n" + bot.format("app"))
    assert "one bot only" in _error(_cli(config=str(path)))


def test_tls_takes_a_matching_certificate_and_key_and_makes_the_urls_https(tmp_path: Path) -> None:
    made = make_dev_cert(tmp_path / "certs", [])
    config = load_config(_cli(tls_cert=str(made.cert), tls_key=str(made.key), port="3443"), env={})
    assert config.public_url == "https://127.0.0.1:3443" and config.local_url == config.public_url
    assert "go together" in _error(_cli(tls_cert=str(made.cert)))
    other = make_dev_cert(tmp_path / "other", [])
    assert "cannot be used together" in _error(_cli(tls_cert=str(made.cert), tls_key=str(other.key)))


def test_dev_cert_makes_a_ca_a_server_certificate_and_a_bundle_that_trusts_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dev-cert", "--dir", str(tmp_path), "--name", "bots.internal"]) == 0
    out = capsys.readouterr().out
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "--tls-cert"):
        assert variable in out
    context = ssl.create_default_context(cafile=str(tmp_path / "trust-bundle.pem"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert len(context.get_ca_certs()) > 1, "the system's CAs and ours"
    ca = (tmp_path / "ca.pem").read_bytes()
    assert main(["dev-cert", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "ca.pem").read_bytes() == ca, "the CA is kept: bots keep trusting it"


def test_keys_rotate_publishes_a_key_that_signs_later(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    KeyFile(tmp_path).load_or_create()  # as the service does on its first start
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("signing") == 1
    assert main(["keys", "rotate", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "published now" in out and "waiting to sign" in out and out.count("  signing") == 1
    assert main(["keys", "rotate", "--data-dir", str(tmp_path), "--activate-in", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].endswith("  signing"), "the last rotation signs at once"
    assert lines[-2].endswith("superseded") and lines[-3].endswith("superseded"), "the waiting key never signs"
    assert main(["keys", "rotate", "--data-dir", str(tmp_path), "--activate-in", "soon"]) == 2
    assert main(["keys", "rotate", "--data-dir", str(tmp_path), "--activate-in", "400d"]) == 2


def test_keys_commands_find_the_services_data_dir_and_never_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENLINE_DATA_DIR", raising=False)
    assert main(["keys", "rotate", "--data-dir", "typo"]) == 1
    assert "no bot-authentication keys in typo" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists() and not (tmp_path / "openline-data").exists()
    (tmp_path / "data").mkdir()
    KeyFile(tmp_path / "data").load_or_create()
    (tmp_path / "openline.toml").write_text('data_dir = "data"\n')
    assert main(["keys", "rotate", "--config", "openline.toml", "--activate-in", "0"]) == 0
    assert len(KeyFile(tmp_path / "data").load_or_create().keys) == 2


def test_concurrent_rotations_lose_no_key(tmp_path: Path) -> None:
    import threading

    file = KeyFile(tmp_path)
    file.load_or_create()
    threads = [threading.Thread(target=file.rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(file.load_or_create().keys) == 5


@pytest.mark.parametrize(
    "name", ["", " ", "bad name", "http://x", "localhost:3000", "1.2.3.4/24", "a..b", "a\nb", "x-"]
)
def test_dev_cert_refuses_what_is_not_a_host_name_or_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert main(["dev-cert", "--dir", str(tmp_path / "certs"), "--name", name]) == 1
    assert "not a host name or an IP address" in capsys.readouterr().err
    assert not (tmp_path / "certs").exists(), "nothing written"


def test_dev_cert_takes_long_and_international_names(tmp_path: Path) -> None:
    made = make_dev_cert(tmp_path, ["a" * 63 + ".example", "bücher.example", "*.bots.internal", "::1"])
    cert = x509.load_pem_x509_certificate(made.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {"a" * 63 + ".example", "xn--bcher-kva.example", "*.bots.internal", "localhost"} <= set(names)
