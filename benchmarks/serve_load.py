"""Load test of `facespot serve` on loopback: latency, throughput, errors, server memory.

Starts ``facespot serve`` (a subprocess, as a user would, on a free port), warms it up, then
sends ``--requests`` requests from ``--concurrency`` client threads, each on its own keep-alive
connection, cycling through the fixture photos (``tests/fixtures/photos``). A ``--blur-share``
of the requests go to ``/v1/blur``, the rest to ``/v1/detect``. Meanwhile one more thread asks
``/healthz`` every 50 ms: its latency shows whether the event loop stays free while inference
runs. The server's resident memory is read from ``/proc`` before and after the load.

    python benchmarks/serve_load.py                        # 2,000 requests, 8 concurrent
    python benchmarks/serve_load.py --requests 500 --concurrency 4 --workers 1
    python benchmarks/serve_load.py --rounds 4                # memory after each of 4 x 2,000

The client runs on the same machine: on a small box it competes with the server for CPU, so
the throughput is a floor for what a separate client would see.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "fixtures" / "photos"


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args) -> tuple[subprocess.Popen, str, int]:
    cmd = [sys.executable, "-m", "facespot", "serve", "--port", "0", "--log-level", "warning", "--no-access-log",
           "--model", args.model, "--max-queue", str(max(64, args.concurrency * 2))]  # fmt: skip
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, text=True)
    for line in proc.stdout:  # the first line names the address
        m = re.search(r"facespot serve: http://([^/]+)/ -- .*?(\d+) worker", line)
        if m:
            host, port = m.group(1).rsplit(":", 1)
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep draining
            return proc, host, int(port)
    raise SystemExit(f"facespot serve did not start (exit code {proc.wait()})")


def request(conn: http.client.HTTPConnection, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    if body is None:
        conn.request("GET", path)
    else:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    return r.status, r.read()


def percentiles(values: list[float]) -> tuple[float, float, float]:
    a = np.asarray(values) * 1000
    return (float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())) if len(a) else (np.nan,) * 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, help="server detector sessions (default: the server's: physical cores)")
    ap.add_argument("--blur-share", type=float, default=0.25, help="fraction of requests to /v1/blur (default: 0.25)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the load this many times (memory after each)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()

    photos = [(p.name, p.read_bytes()) for p in sorted(PHOTOS.glob("*.jpg"))]
    proc, host, port = start_server(args)
    try:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        health = json.loads(request(conn, "/healthz")[1])
        rss_start = rss_mb(proc.pid)
        for k in range(20):  # warm-up: every detector session sees every photo size
            request(conn, "/v1/detect", photos[k % len(photos)][1])
        conn.close()
        rss_before = rss_mb(proc.pid)

        rng = np.random.default_rng(0)  # the same mix of routes and photos on every run
        plan = [("/v1/blur" if rng.random() < args.blur_share else "/v1/detect", photos[rng.integers(len(photos))])
                for _ in range(args.requests)]  # fmt: skip
        jobs: list[int] = []
        lock = threading.Lock()
        results: list[tuple[str, float, int]] = []
        failures: list[str] = []
        health_lat: list[float] = []
        done = threading.Event()

        def client() -> None:
            c = http.client.HTTPConnection(host, port, timeout=120)
            while True:
                with lock:
                    if not jobs:
                        break
                    k = jobs.pop()
                route, (name, body) = plan[k]
                t0 = time.perf_counter()
                try:
                    status, payload = request(c, route, body)
                except (OSError, http.client.HTTPException) as exc:
                    status, payload = -1, str(exc).encode()
                    c.close()
                    c = http.client.HTTPConnection(host, port, timeout=120)
                dt = time.perf_counter() - t0
                with lock:
                    results.append((route, dt, status))
                    if status != 200:
                        failures.append(f"{route} {name}: {status} {payload[:200]!r}")
            c.close()

        def watch_health() -> None:
            c = http.client.HTTPConnection(host, port, timeout=60)
            while not done.is_set():
                t0 = time.perf_counter()
                status, _ = request(c, "/healthz")
                if status == 200:
                    health_lat.append(time.perf_counter() - t0)
                time.sleep(0.05)
            c.close()

        watcher = threading.Thread(target=watch_health, daemon=True)
        watcher.start()
        rss_rounds = []
        t_start = time.perf_counter()
        for _ in range(args.rounds):
            jobs[:] = range(args.requests)
            threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rss_rounds.append(rss_mb(proc.pid))
        wall = time.perf_counter() - t_start
        done.set()
        watcher.join(5)
        rss_after = rss_rounds[-1]
        rss_peak = rss_mb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    lat = [dt for _, dt, _ in results]
    rows = [("all", lat)] + [(r, [dt for route, dt, _ in results if route == r]) for r in ("/v1/detect", "/v1/blur")]
    print(
        f"facespot serve load test: {args.rounds} x {args.requests} requests, {args.concurrency} concurrent, server "
        f"{health['workers']} worker(s) ({health['architecture']}), {len(photos)} photos "
        f"({', '.join(n for n, _ in photos)}), {os.cpu_count()} CPUs shared by client and server\n"
    )
    print("| route | requests | p50 ms | p99 ms | max ms | errors |")
    print("|---|---|---|---|---|---|")
    for name, values in rows:
        p50, p99, mx = percentiles(values)
        errs = sum(1 for route, _, s in results if s != 200 and (name == "all" or route == name))
        print(f"| {name} | {len(values)} | {p50:.1f} | {p99:.1f} | {mx:.1f} | {errs} |")
    h50, h99, hmx = percentiles(health_lat)
    print(f"| /healthz during the load | {len(health_lat)} | {h50:.1f} | {h99:.1f} | {hmx:.1f} | - |")
    print()
    print(f"throughput: {len(results) / wall:.1f} requests/s over {wall:.1f} s; errors: {len(failures)}")
    print(
        f"server memory (RSS): {rss_start:.0f} MB at start, {rss_before:.0f} MB after warm-up (before the load), "
        f"{rss_after:.0f} MB after the load; peak {rss_peak:.0f} MB"
        + (f"; after each round: {', '.join(f'{r:.0f}' for r in rss_rounds)} MB" if len(rss_rounds) > 1 else "")
    )
    for f in failures[:10]:
        print("  " + f)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "requests": len(results), "concurrency": args.concurrency, "workers": health["workers"], "wall_s": wall,
            "throughput_rps": len(results) / wall, "errors": len(failures),
            "latency_ms": {name: dict(zip(("p50", "p99", "max"), percentiles(v))) for name, v in rows},
            "healthz_ms": dict(zip(("p50", "p99", "max"), (h50, h99, hmx))),
            "rss_mb": {"start": rss_start, "before": rss_before, "after": rss_after, "peak": rss_peak, "rounds": rss_rounds},
        }, indent=2))  # fmt: skip
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
