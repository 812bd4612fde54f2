"""TLS for the service's own outbound calls: trust the system's CAs and, when serving https, its own certificate.

The built-in echo bot is reached over the service's own https port, and calls
back on it: with a certificate from a private CA (`openline dev-cert`) those
calls must trust that certificate without the operator touching the system
store; and the echo bot is called at the loopback address, which a real
certificate for the public host name does not name.
"""

from __future__ import annotations

import ssl
from pathlib import Path

_PEM_END = "-----END CERTIFICATE-----"


def outbound_context(own_cert: Path | None) -> ssl.SSLContext | None:
    """The client context for calls to bots (None: aiohttp's default); `own_cert` is trusted as an anchor."""
    if own_cert is None:
        return None
    context = ssl.create_default_context()  # the system store, or SSL_CERT_FILE
    context.load_verify_locations(cafile=str(own_cert))
    # the server certificate itself (first in the file) may serve as the anchor, without its CA
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def own_endpoint_context(own_cert: Path | None) -> ssl.SSLContext | None:
    """The client context for the service's own loopback URL (the echo bot): its certificate, pinned.

    Only the server certificate itself (the first in the file, not its CAs) is
    trusted, so the host name it names need not be the loopback address.
    """
    if own_cert is None:
        return None
    text = own_cert.read_text()
    leaf = text[: text.index(_PEM_END) + len(_PEM_END)] + "\n" if _PEM_END in text else text
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the pinned certificate is the identity
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=leaf)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context
