"""The load generator of bench/bench_service.py: lean HTTP/1.1 clients in a process of their own.

50 asyncio clients, each on one keep-alive connection, writing plain GET requests (httpx spends
~1.5 ms of CPU a request, as much as the service, and on 2 shared cores it would measure
itself); `load_in_own_process` runs them in a spawned process so that their CPU is counted apart
from the service's (`process_cpu_seconds`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import random
import statistics
import time
from pathlib import Path

import httpx


def process_cpu_seconds(root_pid: int) -> float:
    """CPU seconds used so far by a process and its children (the uvicorn workers); Linux."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == root_pid or int(fields[1]) == root_pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


class LeanConnection:
    """One keep-alive HTTP/1.1 connection sending fixed GET requests (the service answers
    every read with a Content-Length, which is all this client needs to parse)."""

    def __init__(self, host: str, port: int, *, headers: str) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            try:
                return await self._get(path)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        request = f"GET {path} HTTP/1.1\r\nhost: {self.host}\r\n{self.headers}\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lowered = head.lower()
        at = lowered.index(b"content-length:") + len(b"content-length:")
        await self.reader.readexactly(int(lowered[at : lowered.index(b"\r\n", at)]))
        return int(head[9:12])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def client_loop(
    base_url: str,
    *,
    headers: str,
    paths: list[str],
    requests: int,
    deadline: float,
    think: float,
    latencies: list[float],
    errors: list[int],
    seed: int,
) -> None:
    chooser = random.Random(seed)
    address = httpx.URL(base_url)
    connection = LeanConnection(address.host, address.port, headers=headers)
    # Staggered starts, so that paced clients do not arrive in step.
    await asyncio.sleep(chooser.uniform(0, think))
    try:
        for _ in range(requests):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            status = await connection.get(chooser.choice(paths))
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            if think:
                await asyncio.sleep(chooser.expovariate(1 / think))
    finally:
        await connection.close()


async def load(
    base_url: str, clients: list[dict], *, requests: int, seconds: float, think: float
) -> dict:
    latencies, errors = [], []
    deadline = time.monotonic() + seconds
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(
        *(
            client_loop(
                base_url,
                headers=client["headers"],
                paths=client["paths"],
                requests=requests,
                deadline=deadline,
                think=think,
                latencies=latencies,
                errors=errors,
                seed=number,
            )
            for number, client in enumerate(clients)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "client_cpu_s": time.process_time() - cpu_started,
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
        "max_ms": 1000 * ordered[-1],
    }


def load_in_own_process(base_url: str, clients: list[dict], **options) -> dict:
    """Run `load` in a separate process, so its CPU is its own and measured apart."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_run_load, base_url, clients, options).result()


def _run_load(base_url: str, clients: list[dict], options: dict) -> dict:
    return asyncio.run(load(base_url, clients, **options))


def report(name: str, figures: dict, *, server_cpu_s: float) -> None:
    verdict = "ok" if figures["p95_ms"] < 50 and figures["errors"] == 0 else "MISSED"
    print(
        f"{name}: {figures['requests']} requests, {figures['errors']} errors, "
        f"{figures['per_second']:.0f}/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"max {figures['max_ms']:.0f} ms  [{verdict}: p95 < 50 ms, no errors]\n"
        f"    CPU over {figures['seconds']:.1f} s: service {server_cpu_s:.1f} s "
        f"({1000 * server_cpu_s / figures['requests']:.2f} ms a request), "
        f"load generator {figures['client_cpu_s']:.1f} s "
        f"({1000 * figures['client_cpu_s'] / figures['requests']:.2f} ms a request)",
        flush=True,
    )
