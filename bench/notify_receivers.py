"""Receivers for bench_notify.py, each in its own process so that they do not share a GIL with
the benchmark or with each other: a webhook receiver (uvicorn, an ASGI app that answers 200) and
an SMTP server (aiosmtpd). Each prints its port on the first line of stdout, then one line per
message received: ``<channel> <idempotency key> <unix time of receipt>``.

    python bench/notify_receivers.py webhook|smtp
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _report(channel: str, key: str, at: float) -> None:
    sys.stdout.write(f"{channel} {key} {at:.6f}\n")
    sys.stdout.flush()


async def _webhook_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    at = time.time()
    headers = dict(scope["headers"])
    _report("webhook", headers.get(b"idempotency-key", b"-").decode(), at)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


class _Smtp:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        key = "-"
        head = bytes(envelope.content).split(b"\r\n\r\n", 1)[0]
        for line in head.splitlines():
            if line.lower().startswith(b"x-vcisc-idempotency-key:"):
                key = line.split(b":", 1)[1].strip().decode()
        _report("email", key, at)
        return "250 OK"


def main() -> None:
    kind = sys.argv[1]
    port = _free_port()
    print(port, flush=True)
    if kind == "webhook":
        import uvicorn

        uvicorn.run(
            _webhook_app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            backlog=2048,
            access_log=False,
        )
    else:
        from aiosmtpd.controller import Controller

        controller = Controller(_Smtp(), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            controller.stop()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
