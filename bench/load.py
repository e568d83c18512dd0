"""A small HTTP/1.1 load generator: N keep-alive connections for a fixed time, one JSON line out.

It runs as its own process (``python -m bench.load``), so it never shares an interpreter with
the server it measures. It speaks just enough HTTP/1.1 (``Content-Length`` bodies, keep-alive)
on asyncio streams under uvloop: a general client (httpx) would cost more CPU per request than
the hello-world server it is compared with, and on two cores measure itself.

    python -m bench.load URL [--method POST --body JSON [--body JSON ...]] \
        [--header 'Name: value'] [--connections 16] [--duration 5] [--warmup 1]

Several ``--body`` values are sent in turn (each connection starts at its own), so that a
cache in the server does not see one request over and over.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

from bench.common import percentile


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.statuses: dict[int, int] = {}
        self.recording = False


def _request(method: str, url: str, headers: list[str], body: bytes) -> bytes:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path or '/'} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            raise RuntimeError("chunked responses are not supported by bench.load")
    await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, requests: list[bytes], first: int, stats: Stats, stop: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sent = first
    try:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(requests[sent % len(requests)])
            sent += 1
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                stats.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            if stats.recording:
                stats.latencies.append(time.perf_counter() - started)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run(
    url: str,
    method: str,
    headers: list[str],
    bodies: list[bytes],
    connections: int,
    duration: float,
    warmup: float,
) -> dict[str, object]:
    parts = urlsplit(url)
    requests = [_request(method, url, headers, body) for body in bodies or [b""]]
    stats = Stats()
    began = time.perf_counter()
    stop = began + warmup + duration
    tasks = [
        asyncio.create_task(
            _connection(parts.hostname or "127.0.0.1", parts.port or 80, requests, n, stats, stop)
        )
        for n in range(connections)
    ]
    await asyncio.sleep(warmup)
    stats.recording = True
    measured_from = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - measured_from
    ms = [x * 1000 for x in stats.latencies]
    ok = sum(n for status, n in stats.statuses.items() if 200 <= status < 300)
    return {
        "requests": len(ms),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors": stats.errors,
        "seconds": round(elapsed, 3),
        "rps": round(ok / elapsed, 1),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body", action="append", default=[])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    args = parser.parse_args(argv)
    try:
        from uvloop import run as run_loop  # uvicorn[standard] installs it
    except ImportError:
        run_loop = asyncio.run
    result = run_loop(
        run(
            args.url,
            args.method,
            args.header,
            [body.encode() for body in args.body],
            args.connections,
            args.duration,
            args.warmup,
        )
    )
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
