"""Routing: a router that tries only the routes a path can match, and a shortcut for long-lived WebSockets.

The router indexes its routes by their leading literal segments.

Starlette's router tries every route's regex in turn, forty-odd per request here. This one keeps the same
routes, the same order and the same answers (including 405 for a path served with other methods), but walks
a tree of literal path segments first: `/v3/directline/conversations/{id}/activities` sits under
v3 → directline → conversations, and a request is tried against the routes on its own branch only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Router, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket


class _Node:
    __slots__ = ("candidates", "children", "routes")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.routes: list[tuple[int, BaseRoute]] = []  # the routes whose literal prefix ends here, with their index
        self.candidates: list[BaseRoute] = []  # those of this node and its ancestors, in the routes' order


def literal_prefix(path: str) -> list[str]:
    """The leading segments of a route path that hold no parameter: "/v3/x/{id}/y" → ["v3", "x"]."""
    segments = [] if path.strip("/") == "" else path.strip("/").split("/")
    prefix = []
    for segment in segments:
        if "{" in segment:
            break
        prefix.append(segment)
    return prefix


class IndexedRouter(Router):
    """`starlette.routing.Router` with its routes indexed by literal prefix; routes are fixed once created."""

    def __init__(self, routes: Sequence[BaseRoute], **kw: Any) -> None:
        super().__init__(routes=list(routes), **kw)
        self._root = _Node()
        for index, route in enumerate(self.routes):
            path = getattr(route, "path", None)
            node = self._root
            for segment in literal_prefix(path) if isinstance(path, str) else []:
                node = node.children.setdefault(segment, _Node())
            node.routes.append((index, route))
        self._fill(self._root, [])

    def _fill(self, node: _Node, inherited: list[tuple[int, BaseRoute]]) -> None:
        mine = sorted(inherited + node.routes, key=lambda pair: pair[0])
        node.candidates = [route for _, route in mine]
        for child in node.children.values():
            self._fill(child, mine)

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that can match `path`, in order: those on the branch of its leading segments."""
        node = self._root
        for segment in path.strip("/").split("/"):
            child = node.children.get(segment)
            if child is None:
                break
            node = child
        return node.candidates

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Router.app with the candidates in place of every route (redirect_slashes stays off: see app.py)
        if "router" not in scope:
            scope["router"] = self
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.candidates(get_route_path(scope)):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is not None:
            route, child_scope = partial
            scope["route"] = route
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)


class WebSocketShortcut:
    """ASGI middleware: WebSocket sessions on `route` go straight to its endpoint, past the layers below this one.

    A stream lives for hours, and every layer it passed through keeps a frame (and its closures) alive for as
    long: the shortcut keeps an idle stream small. What the layers do for a WebSocket (CORS: nothing; the
    router: match the path; exception handlers: none apply once the stream's own errors are handled) is done
    here or by the endpoint itself.
    """

    def __init__(self, app: ASGIApp, route: WebSocketRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            match, child_scope = self.route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                scope["route"] = self.route  # as the router would (metrics label sessions by route)
                await self.route.endpoint(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)
