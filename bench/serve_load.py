#!/usr/bin/env python3
"""Load test of `mmer serve` (issue 18): N concurrent clients post 20-turn
conversations to /v1/emotions for a fixed time, against loopback only.

Starts the server itself (`mmer serve --model MODEL --addr 127.0.0.1:PORT`),
waits for /health, runs the clients (threads, keep-alive HTTP/1.1 with the
standard library), then reports requests, errors by status, throughput
(requests and turns per second), latency p50/p90/p99 and the server's
resident memory before, during (every --sample-seconds) and after
(/proc/<pid>/status VmRSS), and stops the server with SIGTERM. With
--requests N the run ends after N requests instead of after --seconds (the
memory-over-10,000-requests check). The server's log goes to --server-log
(a file, never an unread pipe: a server blocked on a full pipe looks hung). The conversations are the first 20-turn windows of
MELD's test transcripts when available, else generated sentences. Writes
JSON to --out.

    python3 bench/serve_load.py --model assets/models/text-meld-minilm \
        --clients 8 --seconds 60 --out bench/runs/serve-load.json
    python3 bench/serve_load.py --requests 10000 --out bench/runs/serve-10k.json
"""

import argparse
import csv
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def conversations(meld: Path, turns: int, count: int) -> list[bytes]:
    texts = []
    path = meld / "test_sent_emo.csv"
    if path.exists():
        with path.open(encoding="utf-8", errors="replace") as f:
            texts = [row["Utterance"] for row in csv.DictReader(f)]
    if len(texts) < turns:
        texts = [f"Sentence number {i}, said with some feeling." for i in range(turns * count)]
    bodies = []
    for c in range(count):
        start = (c * turns) % max(1, len(texts) - turns)
        window = texts[start : start + turns]
        records = [
            {"dialogue": f"d{c}", "turn": t, "speaker": "AB"[t % 2], "text": text.strip() or "..."}
            for t, text in enumerate(window)
        ]
        bodies.append(json.dumps({"turns": records}).encode())
    return bodies


def wait_healthy(port: int, server: subprocess.Popen, log_path: Path) -> http.client.HTTPConnection:
    """Waits (at most 120 s) for the server on `port` to answer /health 200
    and returns that connection; exits naming its log if it dies first."""
    deadline = time.time() + 120
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            health = conn.getresponse()
            health.read()
            if health.status == 200:
                return conn
        except OSError:
            pass
        if time.time() > deadline or server.poll() is not None:
            sys.exit(f"the server did not become healthy; its log: {log_path}")
        time.sleep(0.2)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM (the server's graceful shutdown), killed after 30 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def percentile(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmer", default="target/release/mmer")
    parser.add_argument("--model", default="assets/models/text-meld-minilm")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--requests", type=int, help="stop after this many requests (overrides --seconds)")
    parser.add_argument("--sample-seconds", type=float, default=10, help="RSS sampling period")
    parser.add_argument("--server-log", type=Path, help="server stderr (default: --out with .log, else /dev/null)")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--meld", type=Path, default=Path("../shared/data/meld"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("serve_args", nargs="*", help="extra `mmer serve` flags after --")
    args = parser.parse_args()

    log_path = args.server_log or (args.out.with_suffix(".log") if args.out else Path(os.devnull))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    server = subprocess.Popen(
        [args.mmer, "serve", "--model", args.model, "--addr", f"127.0.0.1:{args.port}", *args.serve_args],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        conn = wait_healthy(args.port, server, log_path)
        bodies = conversations(args.meld, args.turns, 64)
        # Warm-up: one request, not counted.
        conn.request("POST", "/v1/emotions", body=bodies[0], headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        rss_before = rss_mib(server.pid)

        lock = threading.Lock()
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        stop_at = time.time() + (1e9 if args.requests else args.seconds)
        sent = [0]
        finished = threading.Event()

        def take() -> bool:
            """Whether this client may send one more request."""
            if time.time() >= stop_at:
                return False
            with lock:
                if args.requests and sent[0] >= args.requests:
                    return False
                sent[0] += 1
                return True

        samples = []

        def sampler() -> None:
            begun = time.perf_counter()
            while not finished.wait(args.sample_seconds):
                with lock:
                    done = sum(statuses.values())
                samples.append({"seconds": round(time.perf_counter() - begun, 1), "requests": done, "rss_mib": round(rss_mib(server.pid), 1)})

        def client(k: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
            i = k
            while take():
                body = bodies[i % len(bodies)]
                i += args.clients
                started = time.perf_counter()
                try:
                    conn.request("POST", "/v1/emotions", body=body, headers={"Content-Type": "application/json"})
                    response = conn.getresponse()
                    payload = response.read()
                    status = response.status
                    if status == 200 and len(json.loads(payload)["predictions"]) != args.turns:
                        status = -1  # a 200 with the wrong number of predictions
                except (OSError, http.client.HTTPException):
                    status = 0
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 200:
                        latencies.append(elapsed)

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        watcher = threading.Thread(target=sampler)
        watcher.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        finished.set()
        watcher.join()
        rss_after = rss_mib(server.pid)
    finally:
        stop(server)
        log.close()

    ok = statuses.get(200, 0)
    report = {
        "model": args.model,
        "clients": args.clients,
        "seconds": round(wall, 2),
        "turns_per_request": args.turns,
        "serve_args": args.serve_args,
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(v for k, v in statuses.items() if k != 200),
        "requests_per_second": round(ok / wall, 2),
        "turns_per_second": round(ok * args.turns / wall, 1),
        "latency_ms": {
            **{f"p{round(100 * q)}": None if (v := percentile(latencies, q)) is None else round(1000 * v, 1) for q in (0.50, 0.90, 0.99)},
            "mean": round(1000 * statistics.mean(latencies), 1) if latencies else None,
        },
        "server_rss_mib": {"before": round(rss_before, 1), "after": round(rss_after, 1), "samples": samples},
        "server_log": str(log_path),
        "server_exit_code": server.returncode,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
