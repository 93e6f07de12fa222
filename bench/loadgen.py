"""A small, strict HTTP/1.1 load generator (stdlib only) used to prove zero-downtime deploys.

It runs N workers; each keeps ONE persistent keep-alive connection (raw asyncio streams, no HTTP
library) and sends `GET <path> HTTP/1.1` requests one after the other, reading every response
completely (Content-Length, chunked, or until close) before sending the next one.

Modes:
  --rate R (R > 0)  fixed rate: request i is scheduled at start + i/R on one schedule shared by all
                    workers (whichever worker is free takes the next ticket, so a slow worker does not
                    lower the rate). Latency is recorded from the send time and, like wrk2, from the
                    scheduled time too (no coordinated omission).
  --rate 0          unthrottled: each worker sends its next request as soon as the previous response
                    has been read.

Counting (strict):
  requests        requests written to a connection
  ok              2xx responses
  non_2xx         responses with any other status (total); `status_codes` is the full histogram
  failed          a request was sent but no complete response came back (reset or close mid-response,
                  timeout, parse error), plus every connect error (the request it wanted to send)
  connect_errors  a connection could not be opened; the worker retries after 10 ms
  reconnects      the server closed an idle keep-alive connection before we wrote the next request
                  (seen before writing); we reconnect and send: not a failure
  connection_close responses carrying `Connection: close`; honoured by reconnecting: not a failure
  errors          up to 20 distinct error messages with their counts

It stops after --duration seconds or on SIGTERM/SIGINT: no new request is started, requests in flight
get up to 2 s to finish (after that they count as failed), then the summary JSON is written to --out
(atomically) and printed. --records FILE.csv gets one line per request after a header line
`t_send_epoch,latency_ms,status` (status 0 = failed; written as the run goes, flushed every 0.1 s), so a
caller can follow progress and compute percentiles inside a time window (e.g. during a rollout). --ready-file PATH is touched once every connection has sent its first request.

    python bench/loadgen.py --url http://127.0.0.1:8000/ --connections 8 --rate 300 --duration 10 \\
        --out result.json [--records requests.csv] [--timeout 5] [--ready-file ready]

As a library: `run(url, connections, rate, duration, timeout, stop_event)` returns the summary dict
(`stop_event` is an optional threading.Event that stops the run early).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

DRAIN_CAP_S = 2.0
CONNECT_BACKOFF_S = 0.01
MAX_ERROR_KINDS = 20
MAX_HEADER_BYTES = 64 * 1024


class ProtocolError(Exception):
    """The server's response could not be parsed."""


class ConnectionClosed(Exception):
    """The connection ended before a complete response was read."""


if sys.version_info >= (3, 11):  # noqa: UP036 - stdlib-only script, runs on older interpreters too

    def _deadline(seconds: float) -> contextlib.AbstractAsyncContextManager[Any]:
        return asyncio.timeout(seconds)

else:  # pragma: no cover - older interpreters

    @contextlib.asynccontextmanager
    async def _deadline(seconds: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        fired: list[bool] = []

        def expire() -> None:
            fired.append(True)
            task.cancel()

        handle = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            yield
        except asyncio.CancelledError:
            if fired:
                raise TimeoutError from None
            raise
        finally:
            handle.cancel()


class Stats:
    """Everything counted during one run."""

    def __init__(self) -> None:
        self.requests = 0
        self.ok = 0
        self.status_codes: Counter[int] = Counter()
        self.failed = 0
        self.connect_errors = 0
        self.reconnects = 0
        self.connection_close = 0
        self.connections_opened = 0
        self.errors: Counter[str] = Counter()
        self.errors_not_sampled = 0
        self.latencies: list[float] = []
        self.sched_latencies: list[float] = []

    def error(self, message: str) -> None:
        message = message[:300]
        if message in self.errors or len(self.errors) < MAX_ERROR_KINDS:
            self.errors[message] += 1
        else:
            self.errors_not_sampled += 1


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return round(sorted_values[index], 3)


def _latency_summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "p50": _percentile(ordered, 50),
        "p90": _percentile(ordered, 90),
        "p99": _percentile(ordered, 99),
        "max": round(ordered[-1], 3) if ordered else None,
        "mean": round(sum(ordered) / len(ordered), 3) if ordered else None,
    }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one whole response; return (status, server wants the connection closed)."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ConnectionClosed(
                    f"connection closed inside the response head ({len(exc.partial)} bytes)"
                ) from None
            raise ConnectionClosed("connection closed before any response byte") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError("response head too large") from None
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        try:
            status = int(parts[1])
        except ValueError:
            raise ProtocolError(f"bad status line {lines[0][:80]!r}") from None
        if 100 <= status < 200 and status != 101:
            continue  # interim response (100 Continue, 103 Early Hints): the real one follows
        break
    length: int | None = None
    chunked = False
    close = parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise ProtocolError(f"bad Content-Length {value[:40]!r}") from None
        elif name == b"transfer-encoding":
            chunked = value.endswith(b"chunked")
        elif name == b"connection":
            tokens = {token.strip() for token in value.split(b",")}
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens:
                close = False
    try:
        if status in (204, 304):
            pass
        elif chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from None
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailer fields
                    break
                await reader.readexactly(size + 2)
        elif length is not None:
            if length:
                await reader.readexactly(length)
        else:
            await reader.read()  # body delimited by the end of the connection
            close = True
    except asyncio.IncompleteReadError:
        raise ConnectionClosed("connection closed inside the response body") from None
    return status, close


class LoadGen:
    def __init__(
        self,
        url: str,
        connections: int,
        rate: float,
        duration: float | None,
        timeout: float,
        records: str | None = None,
        ready_file: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported URL {url!r} (want http://host[:port]/path)")
        self.url = url
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host_header = parts.netloc.rpartition("@")[2]
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: symphony-loadgen\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n\r\n"
        ).encode("latin-1")
        self.connections = max(1, int(connections))
        self.rate = float(rate)
        self.duration = duration
        self.timeout = float(timeout)
        self.ready_file = ready_file
        self.stats = Stats()
        self.records_path = records
        self.records: TextIO | None = None
        self.stop = asyncio.Event()
        self.next_ticket = 0
        self.started = 0
        self.in_flight: set[asyncio.Task[None]] = set()
        self.t0 = 0.0
        self.epoch0 = 0.0
        self.deadline = float("inf")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with _deadline(self.timeout):
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=ssl.create_default_context() if self.tls else None
            )
        self.stats.connections_opened += 1
        return reader, writer

    def _record(self, m_send: float, latency_s: float, status: int) -> None:
        if self.records is not None:
            self.records.write(f"{self.epoch0 + m_send:.6f},{latency_s * 1000.0:.3f},{status}\n")

    def _mark_started(self) -> None:
        self.started += 1
        if self.started == self.connections and self.ready_file:
            Path(self.ready_file).touch()

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        first = True
        task = asyncio.current_task()
        assert task is not None
        try:
            while not self.stop.is_set():
                scheduled: float | None = None
                if self.rate > 0:
                    ticket = self.next_ticket
                    self.next_ticket += 1
                    scheduled = self.t0 + ticket / self.rate
                    if scheduled >= self.deadline:
                        return
                    delay = scheduled - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                        if self.stop.is_set():
                            return
                # The server may have closed the idle keep-alive connection: notice it before writing.
                if conn is not None:
                    reader, writer = conn
                    if reader.at_eof() or reader.exception() is not None or writer.is_closing():
                        writer.close()
                        conn = None
                        stats.reconnects += 1
                if conn is None:
                    m_connect = loop.time()
                    try:
                        conn = await self._connect()
                    except (OSError, TimeoutError, ssl.SSLError) as exc:
                        stats.connect_errors += 1
                        stats.failed += 1
                        stats.error(f"connect: {_describe(exc)}")
                        self._record(m_connect, loop.time() - m_connect, 0)
                        await asyncio.sleep(CONNECT_BACKOFF_S)
                        continue
                reader, writer = conn
                m_send = loop.time()
                self.in_flight.add(task)
                try:
                    stats.requests += 1
                    writer.write(self.request)
                    if first:
                        first = False
                        self._mark_started()
                    async with _deadline(self.timeout):
                        await writer.drain()
                        status, close = await _read_response(reader)
                except asyncio.CancelledError:
                    stats.failed += 1
                    stats.error(f"no response within the {DRAIN_CAP_S:g} s shutdown cap")
                    self._record(m_send, loop.time() - m_send, 0)
                    raise
                except (OSError, TimeoutError, ProtocolError, ConnectionClosed, ssl.SSLError) as exc:
                    stats.failed += 1
                    stats.error(
                        f"timeout after {self.timeout:g} s"
                        if isinstance(exc, TimeoutError)
                        else _describe(exc)
                    )
                    self._record(m_send, loop.time() - m_send, 0)
                    writer.close()
                    conn = None
                    continue
                finally:
                    self.in_flight.discard(task)
                done = loop.time()
                stats.latencies.append((done - m_send) * 1000.0)
                if scheduled is not None:
                    stats.sched_latencies.append((done - scheduled) * 1000.0)
                if 200 <= status < 300:
                    stats.ok += 1
                stats.status_codes[status] += 1
                self._record(m_send, done - m_send, status)
                if close:
                    stats.connection_close += 1
                    writer.close()
                    conn = None
        finally:
            if conn is not None:
                conn[1].close()

    async def run(self) -> dict[str, Any]:
        flusher: asyncio.Task[None] | None = None
        if self.records_path is not None:
            self.records = open(self.records_path, "w", buffering=1 << 16)  # noqa: SIM115 - closed below
            self.records.write("t_send_epoch,latency_ms,status\n")
            flusher = asyncio.ensure_future(self._flush_records())
        try:
            return await self._run()
        finally:
            if flusher is not None:
                flusher.cancel()
            if self.records is not None:
                self.records.close()
                self.records = None

    async def _flush_records(self) -> None:
        while self.records is not None:
            self.records.flush()
            await asyncio.sleep(0.1)

    async def _run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self.t0 = loop.time()
        self.epoch0 = time.time() - self.t0
        if self.duration is not None:
            self.deadline = self.t0 + self.duration
        workers = [asyncio.ensure_future(self._worker()) for _ in range(self.connections)]
        stopper = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait([stopper, *workers], timeout=self.duration, return_when=asyncio.FIRST_COMPLETED)
        if not self.stop.is_set() and self.duration is not None:
            # Fixed-rate workers return on their own once the schedule passes the deadline.
            remaining = self.deadline - loop.time()
            if remaining > 0:
                await asyncio.wait([stopper], timeout=remaining)
        self.stop.set()
        stopper.cancel()
        stopped_at = loop.time()
        for worker in workers:
            if worker not in self.in_flight:
                worker.cancel()  # waiting for its ticket or for a connection: nothing in flight
        _done, pending = await asyncio.wait(workers, timeout=DRAIN_CAP_S)
        for worker in pending:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        end = loop.time()
        return self.summary(stopped_at - self.t0, end - self.t0)

    def summary(self, run_s: float, total_s: float) -> dict[str, Any]:
        stats = self.stats
        responses = stats.ok + sum(n for code, n in stats.status_codes.items() if not 200 <= code < 300)
        return {
            "url": self.url,
            "connections": self.connections,
            "rate": self.rate,
            "duration_s": round(run_s, 3),
            "elapsed_s": round(total_s, 3),
            "requests": stats.requests,
            "ok": stats.ok,
            "non_2xx": responses - stats.ok,
            "status_codes": {str(code): n for code, n in sorted(stats.status_codes.items())},
            "failed": stats.failed,
            "connect_errors": stats.connect_errors,
            "reconnects": stats.reconnects,
            "connection_close": stats.connection_close,
            "connections_opened": stats.connections_opened,
            "rps": round(responses / total_s, 1) if total_s > 0 else 0.0,
            "latency_ms": _latency_summary(stats.latencies),
            "latency_from_schedule_ms": _latency_summary(stats.sched_latencies) if self.rate > 0 else None,
            "errors": dict(stats.errors.most_common()),
            "errors_not_sampled": stats.errors_not_sampled,
        }


def _atomic_write(path: str, text: str) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run(
    url: str,
    connections: int = 8,
    rate: float = 0.0,
    duration: float | None = 10.0,
    timeout: float = 5.0,
    stop_event: threading.Event | None = None,
    *,
    records: str | None = None,
    ready_file: str | None = None,
) -> dict[str, Any]:
    """Run one load test in this thread and return the summary (see the module docstring).

    `stop_event` (a threading.Event, set from another thread) ends the run early, like SIGTERM does.
    """

    async def main() -> dict[str, Any]:
        gen = LoadGen(url, connections, rate, duration, timeout, records=records, ready_file=ready_file)
        watcher: asyncio.Task[None] | None = None
        if stop_event is not None:

            async def watch() -> None:
                while not stop_event.is_set():
                    await asyncio.sleep(0.05)
                gen.stop.set()

            watcher = asyncio.ensure_future(watch())
        try:
            result = await gen.run()
        finally:
            if watcher is not None:
                watcher.cancel()
        return result

    return asyncio.run(main())


async def _cli_main(args: argparse.Namespace) -> dict[str, Any]:
    gen = LoadGen(
        args.url,
        args.connections,
        args.rate,
        args.duration,
        args.timeout,
        records=args.records,
        ready_file=args.ready_file,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, gen.stop.set)
    result = await gen.run()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Strict HTTP/1.1 keep-alive load generator (stdlib only).")
    parser.add_argument("--url", required=True, help="http://host:port/path")
    parser.add_argument("--connections", type=int, default=8, help="persistent connections (workers)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s over all connections; 0 = unthrottled"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds (default: until SIGTERM/SIGINT)"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request and per connect")
    parser.add_argument("--out", required=True, help="summary JSON file (written atomically)")
    parser.add_argument(
        "--records", default=None, help="CSV file: t_send_epoch,latency_ms,status per request"
    )
    parser.add_argument("--ready-file", default=None, help="touched once every connection sent a request")
    args = parser.parse_args(argv)
    result = asyncio.run(_cli_main(args))
    text = json.dumps(result, indent=2)
    _atomic_write(args.out, text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
