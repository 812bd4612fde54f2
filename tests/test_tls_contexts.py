"""The TLS contexts of the service's own calls: its own certificate pinned for its loopback URL (the echo bot),
whatever names the certificate holds; and trusted as an anchor, names checked, for everything else."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openline.tls import outbound_context, own_endpoint_context


def certificate_for(tmp_path: Path, host: str) -> tuple[Path, Path]:
    """A self-signed server certificate naming only `host` (as a real one for a public name would)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8, pem = serialization.PrivateFormat.PKCS8, serialization.Encoding.PEM
    key_path.write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    return cert_path, key_path


async def handshake(cert: Path, key: Path, client: ssl.SSLContext) -> str:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        data = await reader.read(2)
        writer.close()
        return data.decode()
    finally:
        server.close()


def test_the_own_certificate_is_pinned_for_the_loopback_url_whatever_it_names(tmp_path: Path) -> None:
    cert, key = certificate_for(tmp_path, "chat.example.test")
    own = own_endpoint_context(cert)
    assert own is not None
    assert asyncio.run(handshake(cert, key, own)) == "ok"
    outbound = outbound_context(cert)
    assert outbound is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        asyncio.run(handshake(cert, key, outbound))


def test_another_certificate_is_not_taken_for_the_own_one(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    own_cert, _ = certificate_for(tmp_path / "a", "chat.example.test")
    other_cert, other_key = certificate_for(tmp_path / "b", "chat.example.test")
    own = own_endpoint_context(own_cert)
    assert own is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(handshake(other_cert, other_key, own))
