"""The one place a request finds its handler: 404 and 405 are decided here and nowhere else.

A route is a path template (``/orders/{order_id}`` matches one path segment)
with a handler per method. ``Router.find`` answers a request with its route
and handler, or with the 404/405 it earns; the exchange asks it before it
reads a body (``screen``), before it counts an attempt and before it
handles a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Pattern, Tuple, Union

from .._boundary import Request, Response
from .answers import Context, error

__all__ = ["Handler", "Route", "Router"]

Handler = Callable[[Context], Response]


@dataclass(frozen=True)
class Route:
    """A path template, its handlers by method, and whether it is the one call without a bearer token."""

    template: str
    methods: Dict[str, Handler]
    public: bool = False


_PARAMETER = re.compile(r"\{[a-z_]+\}")


def _pattern(template: str) -> Pattern[str]:
    parts = _PARAMETER.split(template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


class Router:
    """Routes by exact path first, then by template."""

    def __init__(self, table: Iterable[Tuple[str, str, Handler]], public: Iterable[str] = ()) -> None:
        open_paths = set(public)
        methods: Dict[str, Dict[str, Handler]] = {}
        for method, template, handler in table:
            methods.setdefault(template, {})[method] = handler
        self._exact: Dict[str, Route] = {}
        self._templated: List[Tuple[Pattern[str], Route]] = []
        # What ``find`` gave each (method, exact path) it routed: asked up to three times a request.
        self._found: Dict[Tuple[str, str], Tuple[Route, Handler]] = {}
        for template, handlers in methods.items():
            route = Route(template, handlers, template in open_paths)
            if _PARAMETER.search(template):
                self._templated.append((_pattern(template), route))
            else:
                self._exact[template] = route

    def routes(self, path: str) -> List[Route]:
        """Every route whose template matches ``path``: the exact one first, then templated ones.

        ``/orders/create-bulk`` is both a path of its own (POST) and an
        ``/orders/{order_id}`` (DELETE): a path's methods are those of all its routes.
        """
        found = [self._exact[path]] if path in self._exact else []
        found.extend(route for pattern, route in self._templated if pattern.fullmatch(path))
        return found

    def find(self, request: Request) -> Union[Tuple[Route, Handler], Response]:
        """The route and handler of a request, or its 404 (no such path) or 405 (no such method there)."""
        found = self._found.get((request.method, request.path))
        if found is not None:
            return found
        routed = self._find(request)
        # Only the table's own paths and methods are kept, so that what is kept stays as small as the table.
        if not isinstance(routed, Response) and request.path in self._exact:
            self._found[(request.method, request.path)] = routed
        return routed

    def _find(self, request: Request) -> Union[Tuple[Route, Handler], Response]:
        routes = self.routes(request.path)
        if not routes:
            return error(404, "Not Found")
        for route in routes:
            handler = route.methods.get(request.method)
            if handler is not None:
                return route, handler
        allowed = sorted({method for route in routes for method in route.methods})
        return error(405, "Method Not Allowed", {"Allow": ", ".join(allowed)})
