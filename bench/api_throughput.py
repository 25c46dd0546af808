"""API throughput: `GET /api/v1/weights/current` under concurrent load, from a second process on loopback.

The bench makes a database of its own on the configured server (ROUTERLOOP_DATABASE_URL, else the
embedded one), migrates it, grants the roles (`routerloop db grant`), stores one published weights
version of `--teams` teams (3 strategies x 4 tiers each: 144 rows for 12 teams) and a router token,
then starts `python -m routerloop serve` on a free loopback port in a subprocess. A second process
opens `--concurrency` keep-alive connections (one thread each, stdlib http.client) and requests the
current weights for `--warmup` + `--duration` seconds; only responses after the warm-up count. Every
request is the whole path: token lookup, a read-only transaction as the router role, and the audit row.

It prints requests per second, latency percentiles (p50, p99) and the status codes; any non-200 is
an error. The server and the database are removed at the end.

    .venv/bin/python bench/api_throughput.py                          # 8 connections, 10 s
    .venv/bin/python bench/api_throughput.py --concurrency 16 --duration 20 --workers 2
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

PATH = "/api/v1/weights/current"
STRATEGIES = ("static", "sla", "sla_csat")
TIERS = ("T1", "T2", "T3", "T4")


def _prepare(url: str, teams: int) -> str:
    """Migrate, grant, publish one synthetic version (straight into the router tables); return a router token."""
    from routerloop import db
    from routerloop.api import auth
    from routerloop.warehouse.roles import grant

    version, now = f"{date(2026, 11, 7):%Y%m%d}-{secrets.token_hex(6)}", datetime.now(UTC)
    rows = [(version, s, f"team_{t:02d}", tier, 1.0 + t / 100, 1.0, now)
            for s in STRATEGIES for t in range(teams) for tier in TIERS]
    with db.connect(url, autocommit=True) as conn:
        grant(conn)
        conn.execute("insert into router.weight_versions values (%s, '2026-11-07', %s, %s, %s, null, 0)",
                     (version, now, len(rows), "0" * 64))
        with conn.cursor().copy("copy router.routing_weights (weights_version, strategy, team_id, tier, weight,"
                                " previous_weight, generated_at) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("insert into router.publish_log (weights_version, action) values (%s, 'publish')", (version,))
        _, token = auth.create(conn, "router", note="bench/api_throughput.py")
    return token


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"routerloop serve exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("routerloop serve did not become healthy")


def load(port: int, token: str, concurrency: int, warmup: float, duration: float) -> dict:
    """The load generator (run in its own process): latencies of the requests after the warm-up."""
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: list[Counter] = [Counter() for _ in range(concurrency)]
    headers = {"Authorization": f"Bearer {token}"}

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (now := time.monotonic()) < stop_at:
            conn.request("GET", PATH, headers=headers)
            response = conn.getresponse()
            response.read()
            done = time.monotonic()
            if now >= measure_from:
                latencies[i].append(done - now)
                statuses[i][response.status] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = sorted(x for per in latencies for x in per)
    status = sum(statuses, Counter())

    def pct(q: float) -> float:
        return every[min(len(every) - 1, int(q * len(every)))] * 1000 if every else float("nan")

    return {"requests": len(every), "seconds": duration, "requests_per_second": len(every) / duration,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": every[-1] * 1000 if every else None,
            "statuses": {str(k): v for k, v in sorted(status.items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8, help="connections, one thread each (default 8)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (default 2)")
    parser.add_argument("--teams", type=int, default=12, help="teams of the synthetic version (default 12)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--load", nargs=2, metavar=("PORT", "TOKEN"), help=argparse.SUPPRESS)  # the second process
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(int(args.load[0]), args.load[1], args.concurrency, args.warmup, args.duration)))
        return 0

    from routerloop import db

    server_url = db.database_url(start=True)
    name = f"routerloop_bench_api_{os.getpid()}"
    url = db.create_database(server_url, name)
    server = None
    try:
        token = _prepare(url, args.teams)
        port = db._free_port()
        env = {**os.environ, "ROUTERLOOP_DATABASE_URL": url,
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "plugins"),
                                              os.environ.get("PYTHONPATH", "")])}
        server = subprocess.Popen([sys.executable, "-m", "routerloop", "serve", "--port", str(port),
                                   "--workers", str(args.workers)], env=env)
        _wait_healthy(port, server)
        loader = subprocess.run(
            [sys.executable, __file__, "--load", str(port), token, "--concurrency", str(args.concurrency),
             "--duration", str(args.duration), "--warmup", str(args.warmup)],
            capture_output=True, text=True, check=True, env=env)
        result = json.loads(loader.stdout)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        db.drop_database(server_url, name)
    print(f"GET {PATH}: {args.concurrency} connections, {args.workers} uvicorn worker(s), "
          f"{args.teams * len(STRATEGIES) * len(TIERS)} weight rows, {args.duration:g} s after {args.warmup:g} s warm-up")
    print(f"  {result['requests_per_second']:.0f} requests/s ({result['requests']} requests), "
          f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms; "
          f"statuses {result['statuses']}")
    return 0 if set(result["statuses"]) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
