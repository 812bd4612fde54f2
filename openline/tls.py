"""TLS for the service's own outbound calls: trust the system's CAs and, when serving https, its own certificate.

The built-in echo bot is reached over the service's own https port, and calls
back on it: with a certificate from a private CA (`openline dev-cert`) those
calls must trust that certificate without the operator touching the system store.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def outbound_context(own_cert: Path | None) -> ssl.SSLContext | None:
    """The client context for calls to bots (None: aiohttp's default); `own_cert` is trusted as an anchor."""
    if own_cert is None:
        return None
    context = ssl.create_default_context()  # the system store, or SSL_CERT_FILE
    context.load_verify_locations(cafile=str(own_cert))
    # the server certificate itself (first in the file) may serve as the anchor, without its CA
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context
