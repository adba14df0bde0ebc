"""GET /ui (the page) and GET /api/v1/cluster (its data), served read-only by the extender on its own port and
TLS. The handlers read the extender's state on the event loop, like every verb, so what they show is always
one consistent moment."""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Protocol

from aiohttp import web

from extender.gangs import GangBook
from extender.gpumap.model import DEFAULT_PAGE, FilterReasons, GroupIndex, History, group_detail, summary
from extender.view import ClusterView

# No external assets may load (air-gapped clusters, and nothing else should run with the page's access).
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
MAX_LIMIT = 500
# Several open pages share one summary this fresh (it takes tens of milliseconds of the event loop at thousands
# of nodes, see bench/gpumap.py); a page refreshes every 10 s.
SUMMARY_SECONDS = 2.0


class MapSource(Protocol):
    """What the map reads from the server that holds it."""

    view: ClusterView
    gangs: GangBook
    filter_reasons: FilterReasons
    gpu_history: History


def routes(source: MapSource) -> list[web.RouteDef]:
    page = resources.files(__package__).joinpath("page.html").read_bytes()
    index = GroupIndex()
    cached: list[tuple[float, bytes]] = []

    async def ui(_request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=HEADERS)

    async def cluster(request: web.Request) -> web.Response:
        keys, now = source.gangs.topology_keys, time.monotonic()
        group = request.query.get("group")
        if group is None:
            if not cached or now - cached[0][0] > SUMMARY_SECONDS:
                data = summary(source.view, source.gangs, keys, now=now, reasons=source.filter_reasons,
                               history=source.gpu_history, index=index)
                cached[:] = [(now, _encode(data))]
            return _json(cached[0][1])
        try:
            offset = max(0, int(request.query.get("offset", "0")))
            limit = min(MAX_LIMIT, max(1, int(request.query.get("limit", str(DEFAULT_PAGE)))))
        except ValueError:
            return _json({"error": "offset and limit must be integers"}, 400)
        found = group_detail(source.view, keys, group, now=now, offset=offset, limit=limit, index=index)
        if found is None:
            return _json({"error": f"no group {group!r} (the cluster changed? reload the page)"}, 404)
        return _json(found)

    return [web.get("/ui", ui), web.get("/api/v1/cluster", cluster)]


def _encode(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=data if isinstance(data, bytes) else _encode(data), status=status,
                        content_type="application/json", headers={k: v for k, v in HEADERS.items()
                                                                 if k != "Content-Security-Policy"})
