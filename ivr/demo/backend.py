"""The demo's self-service backend (and `benchmarks/agi_load.py`'s): the lookups of the
example flow answered over plain HTTP/1.1, one request a connection, deterministically."""

from __future__ import annotations

import asyncio
import json
import zlib


async def answer_lookup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The self-service backend: a balance for account 1..., an order's status by its number."""
    request = (await reader.readline()).decode(errors="replace")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    target = request.split()[1] if len(request.split()) > 1 else "/"
    if target.startswith("/billing/balance"):
        body: dict[str, object] = {"found": "account=1" in target, "balance": 128}
    elif target.startswith("/orders/"):
        statuses = ("shipped", "pending", "delivered")
        body = {"found": True, "status": statuses[zlib.crc32(target.encode()) % 3], "tracking": "7731"}
    else:
        body = {"found": False}
    data = json.dumps(body).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                 + str(len(data)).encode() + b"\r\n\r\n" + data)
    await writer.drain()
    writer.close()
