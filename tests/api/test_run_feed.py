"""run_feed (api/_ws.py): the client's leaving ends a feed quietly; the server's cancellation always propagates."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from openline.api._ws import TRY_AGAIN_LATER, run_feed
from openline.storage.base import StoreUnavailable


class _Socket:
    """What run_feed uses of a Starlette WebSocket: receive() until the client leaves, close()."""

    def __init__(self) -> None:
        self.gone: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.code = 0
        self.url = SimpleNamespace(path="/v3/directline/conversations/c/stream")

    async def receive(self) -> dict[str, Any]:
        return await self.gone

    async def close(self, code: int = 1000) -> None:
        self.closed = True
        self.code = code


async def _forever() -> None:
    await asyncio.Event().wait()


def test_the_client_leaving_ends_the_feed_and_closes_the_socket() -> None:
    async def main() -> None:
        ws = _Socket()
        session = asyncio.create_task(run_feed(ws, _forever()))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        ws.gone.set_result({"type": "websocket.disconnect"})
        await asyncio.wait_for(session, 2)  # returns, not cancelled
        assert ws.closed and ws.code == 1000 and session.cancelling() == 0

    asyncio.run(main())


def test_a_store_that_cannot_be_reached_closes_the_socket_with_try_again_later() -> None:
    async def feed() -> None:
        raise StoreUnavailable("Redis cannot be reached")

    async def main() -> None:
        ws = _Socket()
        await asyncio.wait_for(run_feed(ws, feed()), 2)  # type: ignore[arg-type]
        assert ws.closed and ws.code == TRY_AGAIN_LATER == 1013

    asyncio.run(main())


@pytest.mark.parametrize("client_first", [True, False])
def test_a_server_cancellation_in_the_same_turn_as_the_client_leaving_propagates(client_first: bool) -> None:
    async def main() -> None:
        ws = _Socket()
        session = asyncio.create_task(run_feed(ws, _forever()))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)

        def both() -> None:
            if client_first:
                ws.gone.set_result({"type": "websocket.disconnect"})
            session.cancel("server stopping")
            if not client_first:
                ws.gone.set_result({"type": "websocket.disconnect"})

        asyncio.get_running_loop().call_soon(both)
        with pytest.raises(asyncio.CancelledError):
            await session
        assert ws.closed

    asyncio.run(main())


def test_an_unexpected_error_closes_the_socket_with_internal_error_and_goes_on() -> None:
    async def feed() -> None:
        raise RuntimeError("a bug")

    async def main() -> None:
        ws = _Socket()
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(run_feed(ws, feed()), 2)  # type: ignore[arg-type]
        assert ws.closed and ws.code == 1011

    asyncio.run(main())
