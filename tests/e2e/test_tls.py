"""openline over https (`--tls-cert`/`--tls-key`, a certificate from `openline dev-cert`): the 3.0 API, the
stream over wss, and the built-in echo bot, which the service calls and is called back by over its own https port."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time

import httpx
from websockets.sync.client import connect

from openline.devcert import DevCert
from tests.e2e.harness import Processes

SECRET = "tls-secret-0123456789"


def test_the_echo_bot_answers_over_https_and_the_stream_is_wss(procs: Processes, dev_cert: DevCert) -> None:
    service = procs.openline("--secret", SECRET, "--data-dir", "data", tls=dev_cert)
    assert service.url.startswith("https://")
    headers = {"Authorization": f"Bearer {SECRET}"}
    with httpx.Client(base_url=service.url + "/v3/directline", verify=service.verify, timeout=20) as http:
        started = http.post("/conversations", headers=headers)
        assert started.status_code == 201, started.text
        conversation, stream_url = started.json()["conversationId"], started.json()["streamUrl"]
        assert stream_url.startswith("wss://127.0.0.1:")
        with connect(stream_url, ssl=service.verify, open_timeout=10) as ws:
            sent = http.post(
                f"/conversations/{conversation}/activities",
                headers=headers,
                json={"type": "message", "from": {"id": "u1"}, "text": "over tls"},
            )
            assert sent.status_code == 200, sent.text
            texts: list[str] = []
            while "echo: over tls" not in texts:
                frame = ws.recv(timeout=10)
                if frame:
                    texts += [a.get("text", "") for a in json.loads(frame)["activities"]]
    assert texts[0] == "over tls" and "Welcome to openline" in texts[1] and texts[-1] == "echo: over tls"
    assert "http://" not in service.stdout.split("generated")[0], "every URL it announces is https"


def test_an_idle_tls_connection_does_not_hold_up_a_graceful_stop(procs: Processes, dev_cert: DevCert) -> None:
    """An idle keep-alive client never answers the TLS close_notify; the server must not wait 30 s for it."""
    service = procs.openline("--secret", SECRET, "--data-dir", "data", tls=dev_cert)
    context = ssl.create_default_context(cafile=str(dev_cert.ca_cert))
    raw = socket.create_connection(("127.0.0.1", service.port), timeout=5)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        service.stop_gracefully()
        assert time.monotonic() - started < 5.0


def test_connections_in_their_handshake_count_and_are_closed_like_slow_senders(
    procs: Processes, dev_cert: DevCert
) -> None:
    """A client that connects and never says hello is held no longer than the header timeout, and a crowd of
    them does not keep a real client out: the limits hold from the moment a connection is accepted."""
    service = procs.openline(
        "--secret", SECRET, "--data-dir", "data", "--max-connections", "16", "--header-timeout", "1s", tls=dev_cert
    )
    silent = [socket.create_connection(("127.0.0.1", service.port), timeout=5) for _ in range(40)]
    try:
        time.sleep(0.6)  # long enough for them to be evictable (half the header timeout)
        with httpx.Client(verify=service.verify, timeout=5) as http:
            assert http.get(service.url + "/healthz").status_code == 200, "a real client still gets in"
        started = time.monotonic()
        for sock in silent:
            with contextlib.suppress(ConnectionResetError):  # closed, with nothing said: none can be read before TLS
                assert sock.recv(10) == b""
        assert time.monotonic() - started < 4.0
    finally:
        for sock in silent:
            sock.close()
