"""The reference: the websockets library's own echo server, as its documentation writes it.

Compression is websockets' default: permessage-deflate with a 12-bit window and zlib memory
level 5, negotiated with clients that offer it (W4c and W5 do; the other workloads do not).

python -m bench.peers.websockets_echo PORT
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, serve


async def echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(port: int) -> None:
    async with serve(
        echo, "127.0.0.1", port, subprotocols=["echo"], max_size=1024 * 1024
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
