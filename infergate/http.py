"""What both servers do the same way at the HTTP edge."""

from __future__ import annotations

import asyncio

from aiohttp import web

# A client that has not sent its whole body by then is cut off (408): slow senders cannot pile up.
BODY_TIMEOUT_SECONDS = 10.0


async def read_body(request: web.Request, timeout: float = BODY_TIMEOUT_SECONDS) -> bytes:
    """The whole request body, or 408 after `timeout`, or 413 above the app's client_max_size."""
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text=f"the request body did not arrive within {timeout:.0f}s") from None
