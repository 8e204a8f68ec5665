"""Bounded load test of `s3rec serve` on loopback: a fixed number of requests at a fixed concurrency.

Starts `python -m s3rec serve` on a free 127.0.0.1 port (a run given by --run, else a SASRec trained for one
epoch on synthetic data with the paper's encoder: d=64, 2 blocks, max_len 50), sends --warmup requests, then
--requests POST /recommend calls (k=10, histories of 1..50 raw item ids drawn from the data) from
--concurrency threads, each with its own keep-alive connection, and reports requests/s and latency
percentiles; then the same through POST /recommend/batch with --batch histories per call. Only loopback is
ever contacted; every loop is bounded by its count and a per-request timeout.

    python benchmarks/bench_serve.py --requests 2000 --concurrency 8
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"


def build_run(folder: Path, n_users: int, n_items: int) -> Path:
    """A SASRec run (one epoch) on synthetic data: the weights' quality does not matter for latency."""
    import torch

    from s3rec import RunConfig, run
    from s3rec.data.synthetic import make_synthetic

    torch.set_num_threads(1)
    data = make_synthetic(n_users=n_users, n_items=n_items, avg_len=20, n_attributes=40, n_topics=20, seed=0)
    cfg = RunConfig(model="sasrec", seed=0)
    cfg.finetune.epochs = 1
    out = folder / "run"
    run(cfg, out=out, data=data, progress=False, log=lambda *a, **k: None, echo=lambda *a, **k: None)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(run_dir: Path, port: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "s3rec", "serve", "--run", str(run_dir), "--host", HOST,
                             "--port", str(port), "--quiet"], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"s3rec serve exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("s3rec serve did not start within 120 s")


def histories(run_dir: Path, n: int, seed: int = 0) -> list[list[str]]:
    """`n` histories of 1..50 raw item ids, random windows of the run's user sequences."""
    from s3rec.recommend import Recommender

    rec = Recommender.load(run_dir)
    offsets, items = rec.histories()
    rng = np.random.default_rng(seed)
    out = []
    for u in rng.integers(0, len(offsets) - 1, size=n):
        seq = items[offsets[u]: offsets[u + 1]]
        length = int(rng.integers(1, min(len(seq), 50) + 1))
        out.append(rec.item_ids[seq[:length]].tolist())
    return out


def load(port: int, path: str, bodies: list, concurrency: int) -> tuple[float, np.ndarray, int]:
    """Send every body once from `concurrency` threads; (seconds, latencies in ms, failures)."""
    latencies = np.zeros(len(bodies))
    failures = [0]
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            payload = json.dumps(bodies[i]).encode()
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, payload, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
            latencies[i] = (time.perf_counter() - t0) * 1000
            if not ok:
                with lock:
                    failures[0] += 1
        conn.close()

    workers = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0, latencies, failures[0]


def report(name: str, seconds: float, latencies: np.ndarray, failures: int, per_call: int) -> None:
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    print(f"{name}: {len(latencies)} calls in {seconds:.2f} s = {len(latencies) / seconds:.1f} calls/s "
          f"({len(latencies) * per_call / seconds:.1f} histories/s); latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, "
          f"p99 {p99:.1f} ms, max {latencies.max():.1f} ms; failures {failures}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="run directory to serve (default: a synthetic SASRec run in a temporary folder)")
    p.add_argument("--users", type=int, default=2000, help="synthetic users (without --run)")
    p.add_argument("--items", type=int, default=5000, help="synthetic items (without --run)")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--batch", type=int, default=32, help="histories per /recommend/batch call")
    p.add_argument("--batch-requests", type=int, default=100, help="number of /recommend/batch calls")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--server-threads", type=int, default=1, help="OMP_NUM_THREADS of the server")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run) if args.run else build_run(Path(tmp), args.users, args.items)
        port = free_port()
        server = start_server(run_dir, port, args.server_threads)
        try:
            singles = [{"history": h, "k": 10} for h in histories(run_dir, args.warmup + args.requests)]
            load(port, "/recommend", singles[: args.warmup], args.concurrency)
            print(f"s3rec serve on {HOST}:{port}, run {run_dir}, server OMP_NUM_THREADS={args.server_threads}, "
                  f"{os.cpu_count()} CPUs, concurrency {args.concurrency}")
            report("POST /recommend", *load(port, "/recommend", singles[args.warmup:], args.concurrency), per_call=1)
            hs = histories(run_dir, args.batch * args.batch_requests, seed=1)
            batches = [[{"history": h, "k": 10} for h in hs[i: i + args.batch]] for i in range(0, len(hs), args.batch)]
            report(f"POST /recommend/batch ({args.batch} per call)",
                   *load(port, "/recommend/batch", batches, args.concurrency), per_call=args.batch)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
