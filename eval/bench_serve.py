"""Load on ``parsner serve``: N concurrent clients for a fixed time, with micro-batching on and off.

    python eval/bench_serve.py --model models/peyma-onnx --clients 16 --duration 20 --json eval/bench_serve.json

For each mode the script starts ``python -m parsner serve`` on 127.0.0.1 (a free port), waits for
``/health``, then runs ``--clients`` threads that each keep one HTTP/1.1 connection open and POST
``{"text": ...}`` back to back (PEYMA test sentences, joined into raw text; the embedded sample when PEYMA
is absent) until ``--duration`` seconds have passed. Every request is counted as sent, answered (any HTTP
response) and ok (200); ``lost`` = sent - answered must be 0. Modes:

* ``batched``: ``--max-batch-texts 64 --batch-window-ms 5`` (a request waits up to 5 ms for company);
* ``batched-no-wait``: the server's defaults (``--max-batch-texts 64 --batch-window-ms 0``): no waiting; a
  batch is whatever queued while the previous model call ran;
* ``one-at-a-time``: ``--max-batch-texts 1 --batch-window-ms 0`` (each request is its own model call).

The clients run on the same machine as the server (and share its cores), as a reverse proxy would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODES = {"batched": ["--max-batch-texts", "64", "--batch-window-ms", "5"],
         "batched-no-wait": ["--max-batch-texts", "64", "--batch-window-ms", "0"],
         "one-at-a-time": ["--max-batch-texts", "1", "--batch-window-ms", "0"]}


def load_texts() -> tuple[list[str], str]:
    from parsner.data.readers import read_file
    from parsner.paths import SAMPLE_DIR, shared_data_dir

    peyma = shared_data_dir() / "peyma" / "hooshvare_split" / "test.txt"
    path = peyma if peyma.is_file() else SAMPLE_DIR / "sample.jsonl"
    return [" ".join(s.tokens) for s in read_file(path).sentences], str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port: int, path: str) -> Any:
    conn = HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=HEADERS)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


#: The server's token for this benchmark (the clients send it as a bearer token, as any API caller must).
TOKEN = secrets.token_urlsafe(24)
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}


def start_server(model: str, mode: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "parsner", "serve", "--model", model, "--port", str(port), *MODES[mode], *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PARSNER_TOKEN": TOKEN})
    for _ in range(600):  # bounded: 60 s for the model to load
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
        try:
            if get_json(port, "/health")["status"] == "ok":
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start within 60 s")


def client(port: int, texts: list[str], seed: int, deadline: float, out: dict[str, Any]) -> None:
    rng = random.Random(seed)
    conn = HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < deadline:
        body = json.dumps({"text": rng.choice(texts)}, ensure_ascii=False).encode("utf-8")
        out["sent"] += 1
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/v1/ner", body, HEADERS)
            resp = conn.getresponse()
            data = json.loads(resp.read())
        except (OSError, ValueError) as exc:
            out["failures"].append(repr(exc))
            conn.close()
            conn = HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        out["answered"] += 1
        if resp.status == 200 and "entities" in data:
            out["ok"] += 1
            out["latencies"].append(time.perf_counter() - t0)
        else:
            out["failures"].append(f"HTTP {resp.status}")
    conn.close()


def run_mode(model: str, mode: str, texts: list[str], clients: int, duration: float,
             extra: list[str]) -> dict[str, Any]:
    proc, port = start_server(model, mode, extra)
    try:
        before = get_json(port, "/health")
        stats = [{"sent": 0, "answered": 0, "ok": 0, "latencies": [], "failures": []} for _ in range(clients)]
        deadline = time.monotonic() + duration
        threads = [threading.Thread(target=client, args=(port, texts, i, deadline, stats[i])) for i in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        after = get_json(port, "/health")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat = sorted(x for s in stats for x in s["latencies"])
    sent, answered, ok = (sum(s[k] for s in stats) for k in ("sent", "answered", "ok"))
    batches = after["batches"] - before["batches"]
    return {
        "mode": mode, "clients": clients, "seconds": round(wall, 2), "sent": sent, "answered": answered,
        "ok": ok, "errors": sent - ok, "lost": sent - answered, "requests_per_s": round(ok / wall, 1),
        "p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1) if lat else None,
        "texts_per_model_call": round((after["texts"] - before["texts"]) / batches, 2) if batches else None,
        "failure_examples": sorted({f for s in stats for f in s["failures"]})[:5],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (a training run or a parsner export)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per mode (default 20)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("--serve-args", default="", help="extra options for parsner serve (e.g. '--backend torch')")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    texts, source = load_texts()
    rows = []
    for mode in args.modes.split(","):
        rows.append(run_mode(args.model, mode, texts, args.clients, args.duration, args.serve_args.split()))
        r = rows[-1]
        print(f"  {mode}: {r['requests_per_s']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
              f"errors {r['errors']}, lost {r['lost']}", file=sys.stderr, flush=True)
    from parsner.envinfo import bench_record, bench_summary

    machine = bench_record()  # the server runs with its defaults on this machine; the clients share it
    result = {"model": args.model, "texts": source, "cpu_count": os.cpu_count(),
              "python": platform.python_version(), "rows": rows, "machine": machine}
    lines = [f"parsner serve under load: {args.clients} clients × {args.duration:.0f} s, model {args.model}, "
             f"{os.cpu_count()} CPUs; texts: {source}", bench_summary(machine), "",
             "| mode | requests/s | p50 ms | p99 ms | sent | answered | errors | lost | texts per model call |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['sent']} | "
                     f"{r['answered']} | {r['errors']} | {r['lost']} | {r['texts_per_model_call']} |")
    single = next((r for r in rows if r["mode"] == "one-at-a-time" and r["requests_per_s"]), None)
    for r in rows:
        if single is not None and r is not single:
            lines.append(f"\n{r['mode']}: {r['requests_per_s'] / single['requests_per_s']:.2f}× the throughput "
                         "of one request at a time.")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["lost"] == 0 and r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
