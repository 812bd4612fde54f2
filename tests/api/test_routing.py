"""The indexed router (api/_routing.py) picks the same route as trying every route in order would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import BaseRoute, Match, Route, WebSocketRoute

from openline.api._routing import IndexedRouter, literal_prefix
from openline.app import build_services, create_app
from openline.config import BotConfig, Config


def _app_routes(tmp_path: Path) -> list[BaseRoute]:
    config = Config(
        bots=(BotConfig("echobot", "Echo Bot", None, ("s" * 32,)),),
        data_dir=tmp_path,
        store="memory://",
        web_page=True,
        public_url="http://127.0.0.1:3000",
    )
    router = create_app(config, build_services(config)).router
    assert isinstance(router, IndexedRouter)
    return list(router.routes)


def _first_match(routes: list[BaseRoute], scope: dict[str, object]) -> tuple[BaseRoute | None, Match]:
    """What Starlette's own router picks: the first full match, else the first partial one (405)."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route, match
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial, Match.PARTIAL if partial is not None else Match.NONE


def _scope(path: str, method: str, kind: str = "http") -> dict[str, object]:
    return {"type": kind, "path": path, "root_path": "", "method": method, "path_params": {}}


def _sample_paths(routes: list[BaseRoute]) -> list[str]:
    paths = ["/", "/nope", "/v3", "/v3/directline", "/api/conversations/x/y/z", "/v3/conversations/a/b/c/d/e"]
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            for value in ("c1", "a|b", "x y", "directline"):
                paths.append(re.sub(r"\{[^}]+\}", value, path))
            paths.append(path + "/extra")
            paths.append(path.rsplit("/", 1)[0] or "/")
    return paths


def test_every_path_reaches_the_route_a_full_scan_would(tmp_path: Path) -> None:
    routes = _app_routes(tmp_path)
    indexed = IndexedRouter(routes)
    checked = 0
    for path in _sample_paths(routes):
        for method in ("GET", "POST", "PUT", "DELETE", "OPTIONS"):
            scope = _scope(path, method)
            expected = _first_match(routes, scope)
            assert _first_match(indexed.candidates(path), scope) == expected, (method, path)
            checked += expected[1] is not Match.NONE
        scope = _scope(path, "GET", "websocket")
        assert _first_match(indexed.candidates(path), scope) == _first_match(routes, scope), ("websocket", path)
    assert checked > 100  # the samples do reach routes


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/", []),
        ("/healthz", ["healthz"]),
        ("/v3/directline/conversations/{id}/stream", ["v3", "directline", "conversations"]),
    ],
)
def test_literal_prefix(path: str, prefix: list[str]) -> None:
    assert literal_prefix(path) == prefix


def test_routes_keep_their_order_within_a_branch() -> None:
    async def endpoint(request: object) -> None: ...

    first = Route("/a/{x}", endpoint, methods=["GET"])
    second = Route("/a/b", endpoint, methods=["GET"])
    stream = WebSocketRoute("/a/b", endpoint)
    router = IndexedRouter([first, second, stream])
    assert router.candidates("/a/b") == [first, second, stream]
    assert router.candidates("/a/c") == [first]
    assert router.candidates("/z") == []
