"""Which requests come from this service's own pages: the check of the token endpoint, sign-in and the admin feed.

Browsers send `Origin` on POSTs and WebSocket handshakes. It must name this
service: the `--public-url` (behind a proxy that rewrites `Host`), or the host
the request was sent to, when that host is one a rebinding attack cannot take
over (an IP address, `localhost`, the public URL's host or the listening host).
A name that merely matches `Host` is not enough: a site that rebinds its own
name to 127.0.0.1 sends a matching `Host`.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

from starlette.requests import HTTPConnection


def _netloc(url: str) -> str:
    """The `host[:port]` of a URL, lower case; "" for one that cannot be parsed (`http://[x`)."""
    try:
        return urllib.parse.urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _hostname(netloc: str) -> str:
    try:
        return (urllib.parse.urlsplit("//" + netloc).hostname or "").lower()
    except ValueError:
        return ""


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


class OriginCheck:
    def __init__(self, public_url: str, listen_host: str) -> None:
        self.public = urllib.parse.urlsplit(public_url).netloc.lower()
        self.trusted_names = {"localhost", _hostname(self.public), listen_host.strip("[]").lower()}

    def _trusted(self, netloc: str) -> bool:
        hostname = _hostname(netloc)
        return bool(hostname) and (hostname in self.trusted_names or _is_ip(hostname))

    def own(self, connection: HTTPConnection) -> bool:
        """Whether the request comes from a page of this service, or from no page at all (curl, scripts)."""
        origin = connection.headers.get("origin")
        if origin is None:
            return connection.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        netloc = _netloc(origin)
        if not netloc:
            return False  # `Origin: null`, one that cannot be parsed, and the like
        if netloc == self.public:
            return True
        hosts = {connection.headers.get("host", ""), connection.headers.get("x-forwarded-host", "")}
        return netloc in {h.strip().lower() for h in hosts if h} and self._trusted(netloc)
