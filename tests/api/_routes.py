"""The operations an app serves, as (METHOD, path template) pairs in the OpenAPI document's spelling."""

from __future__ import annotations

import re

from starlette.routing import Route, WebSocketRoute

from tests.api.conftest import Service

UNDOCUMENTED = {"HEAD"}  # Starlette answers HEAD wherever it answers GET


def served_operations(service: Service) -> set[tuple[str, str]]:
    """What the running service routes: every method of every route, a WebSocket route as the GET of its upgrade."""
    app = service.loop.servers[-1][0].config.app  # openline (the recording bot is served first)
    found: set[tuple[str, str]] = set()
    for route in app.router.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {member_id:path} is {member_id} in the document
        if isinstance(route, WebSocketRoute):
            found.add(("GET", path))
        elif isinstance(route, Route):
            found.update((method, path) for method in route.methods or () if method not in UNDOCUMENTED)
    return found
