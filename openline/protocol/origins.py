"""Web origins (`scheme://host[:port]`) as browsers send them in `Origin`: parsing configured and requested ones.

A trusted origin is compared with the `Origin` header as a string, so both are
brought to the form browsers send (RFC 6454 §6.1): scheme and host in lower
case, the scheme's default port left out, no path, query or fragment.
"""

from __future__ import annotations

import re
import urllib.parse

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def parse_origin(text: str) -> str:
    """`text` as a browser would send it in `Origin`: "HTTPS://Example.com:443/" → "https://example.com".

    A single trailing "/" is accepted (a pasted site address); a path, query,
    fragment, user info, wildcard or missing host is not. Raises ValueError
    saying why.
    """
    value = text.strip()
    if value.endswith("/") and not value.endswith("//"):
        value = value[:-1]
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{text!r} is not an origin: {e}") from None
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme) or not value.lower().startswith(scheme + "://"):
        raise ValueError(f"{text!r} is not an origin: it must be scheme://host[:port], e.g. https://www.example.com")
    if parts.path or parts.query or parts.fragment or "#" in value or "?" in value:
        raise ValueError(f"{text!r} is not an origin: it has a path, a query or a fragment (scheme://host[:port] only)")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r} is not an origin: it has user information")
    host = parts.hostname or ""
    if not host or "*" in host or any(c.isspace() for c in host):
        raise ValueError(f"{text!r} is not an origin: it needs a host name or address (wildcards are not supported)")
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_of(header: str) -> str | None:
    """The origin an `Origin` header names, in the form of `parse_origin`; None for `null` or anything unreadable."""
    try:
        return parse_origin(header)
    except ValueError:
        return None
