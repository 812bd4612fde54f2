"""`GET /metrics`: the Prometheus text format of the service's metrics (openline.metrics), for a scraper.

Its credential (`Authorization: Bearer ...`, Prometheus' `authorization` or
`bearer_token`) is the admin secret, or the `metrics_token` setting when one is
set; `metrics_token = "off"` opens it to anyone who can reach it.
"""

from __future__ import annotations

import hashlib
import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.auth.admin import AdminAuth
from openline.auth.credentials import credential_of
from openline.metrics import Metrics
from openline.protocol.errors import ErrorKind, ServiceError

OFF = "off"


class MetricsApi:
    def __init__(self, metrics: Metrics, admin: AdminAuth, token: str | None) -> None:
        self.metrics = metrics
        self.admin = admin
        self.open = token == OFF
        self._token = hashlib.sha256(token.encode()).digest() if token and not self.open else None

    def routes(self) -> list[Route]:
        return [Route("/metrics", self.scrape, methods=["GET"])]

    def _allows(self, credential: str) -> bool:
        if self.admin.is_secret(credential):
            return True
        digest = hashlib.sha256(credential.encode()).digest()
        return self._token is not None and hmac.compare_digest(digest, self._token)

    async def scrape(self, request: Request) -> Response:
        """The metrics (200, text/plain in the Prometheus format); 401 without the credential, in the error shape."""
        if not self.open:
            credential = credential_of(request.headers.get("authorization"))  # raises UNAUTHORIZED
            if not self._allows(credential):
                raise ServiceError(
                    ErrorKind.UNAUTHORIZED, "/metrics needs Authorization: Bearer <the metrics token or admin secret>"
                )
        body = await self.metrics.exposition()
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
