"""`openline dev-cert`: a local certificate authority and a server certificate, for trying openline over https.

MSAL (which every bot SDK gets its tokens with) insists on an https authority,
so bot authentication needs TLS. The CA is made once and reused, so bots keep
trusting it when the server certificate is made again for other names. The
trust bundle is the system's CA certificates plus this CA: Python's
`SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE` replace the system store rather than
add to it (agents-sdk.md §3.1), so they need the whole set.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openline.datadir import write_file

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 3650
CERT_DAYS = 397  # the longest browsers accept for a server certificate


@dataclass(frozen=True)
class DevCert:
    ca_cert: Path
    cert: Path  # the server certificate followed by the CA's
    key: Path
    bundle: Path  # the system's CA certificates and this CA
    names: tuple[str, ...]
    system_bundle: Path | None  # where the system's CA certificates came from (None: not found)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openline"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca(directory: Path, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The directory's CA, made on first use."""
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc > now + datetime.timedelta(days=30):
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"openline development CA ({os.uname().nodename})")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_file(key_path, _pem_key(key))
    write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _alt_name(name: str) -> x509.GeneralName:
    """The subjectAltName of a host name or address; ValueError for anything else (a URL, a port, a space)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{name!r} is not a host name or an IP address") from None
    labels = ascii_name.removeprefix("*.").split(".")
    if len(ascii_name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{name!r} is not a host name or an IP address")
    return x509.DNSName(ascii_name)


def system_bundle(not_this: Path | None = None) -> Path | None:
    """The file of the system's trusted CA certificates, if there is one.

    OpenSSL's own default, not `SSL_CERT_FILE`: that may be the bundle `openline dev-cert` made (as it tells
    users to set it), which would then be read back into itself.
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        path = Path(candidate) if candidate else None
        if path is not None and path.is_file() and (not_this is None or path.resolve() != not_this.resolve()):
            return path
    return None


def make_dev_cert(directory: Path, extra_names: list[str]) -> DevCert:
    """Write ca.pem/ca.key (kept if present), cert.pem/key.pem for the names, and trust-bundle.pem."""
    names = tuple(dict.fromkeys([*DEFAULT_NAMES, *extra_names]))
    alt_names = [_alt_name(n) for n in names]  # checked before anything is written
    # readable by bots running as other users: the private keys in it are owner-only files
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_cert, ca_key = _ca(directory, now)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("openline development certificate"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )  # digitalSignature, keyEncipherment
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    write_file(directory / "key.pem", _pem_key(key))
    write_file(directory / "cert.pem", cert.public_bytes(serialization.Encoding.PEM) + ca_pem, 0o644)
    system = system_bundle(not_this=directory / "trust-bundle.pem")
    bundle = (system.read_bytes().rstrip(b"\n") + b"\n" if system else b"") + ca_pem
    write_file(directory / "trust-bundle.pem", bundle, 0o644)
    return DevCert(
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
        directory / "trust-bundle.pem",
        names,
        system,
    )
