"""A peer: aiohttp's WebSocket server, written as its documentation writes an echo handler.

python -m bench.peers.aiohttp_echo PORT
"""

from __future__ import annotations

import sys

from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.WebSocketResponse:
    websocket = web.WebSocketResponse(protocols=("echo",), max_msg_size=1024 * 1024)
    await websocket.prepare(request)
    async for message in websocket:
        if message.type == WSMsgType.TEXT:
            await websocket.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await websocket.send_bytes(message.data)
    return websocket


def main(port: int) -> None:
    application = web.Application()
    application.router.add_get("/echo", echo)
    web.run_app(application, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
