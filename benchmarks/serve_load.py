"""Bounded load on `aigi serve` over loopback: C concurrent clients, each posting one image at a time for
a fixed duration; requests/s, latency percentiles, status codes, and the server's resident memory
sampled every second (flat = no leak).

    .venv/bin/python benchmarks/serve_load.py [--clients 8 32 8] [--seconds 60] [--detector NAME]

Images: 32 drawn (seed 0) from aigi-dev when it is beside the project, else the bundled sample.
Writes benchmarks/results/serve-load.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared/data/aigi-dev/manifest.csv"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pick_images(n: int = 32) -> list[tuple[str, bytes]]:
    if DATA.exists():
        from aigi.data import load_data

        m = load_data(str(DATA))
        idx = np.random.default_rng(0).choice(len(m), n, replace=False)
        paths = [m.samples[i].path for i in sorted(idx)]
    else:
        from aigi.paths import cache_dir
        from aigi.samples import build_sample

        paths = [s.path for s in build_sample(cache_dir() / "demo-sample")]
    return [(Path(p).name, Path(p).read_bytes()) for p in paths]


def run_level(url: str, pid: int, clients: int, seconds: float, images) -> dict:
    stop = time.time() + seconds
    lat: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    rss: list[tuple[float, float]] = []

    def client(k: int):
        with httpx.Client(timeout=120) as c:
            i = k
            while time.time() < stop:
                name, data = images[i % len(images)]
                i += clients
                t = time.perf_counter()
                try:
                    code = c.post(
                        url + "/v1/detect", files=[("files", (name, data, "application/octet-stream"))]
                    ).status_code
                except httpx.HTTPError:
                    code = -1
                dt = time.perf_counter() - t
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                    if code == 200:
                        lat.append(dt)
                if code == 503:
                    time.sleep(1.0)  # as Retry-After asks

    def sampler():
        t0 = time.time()
        while time.time() < stop:
            rss.append((round(time.time() - t0, 1), rss_mb(pid)))
            time.sleep(1.0)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)] + [threading.Thread(target=sampler)]
    t0 = time.time()
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.time() - t0
    mem = np.array([m for _, m in rss])
    half = len(mem) // 2
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "ok": codes.get(200, 0),
        "requests_per_second": codes.get(200, 0) / wall,
        "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "errors_5xx_other_than_503": sum(v for k, v in codes.items() if k >= 500 and k != 503),
        "connection_errors": codes.get(-1, 0),
        "latency_p50_s": float(np.percentile(lat, 50)) if lat else None,
        "latency_p99_s": float(np.percentile(lat, 99)) if lat else None,
        "rss_mb_first": float(mem[0]),
        "rss_mb_max": float(mem.max()),
        "rss_mb_last": float(mem[-1]),
        "rss_mb_mean_first_half": float(mem[:half].mean()),
        "rss_mb_mean_second_half": float(mem[half:].mean()),
        "rss_trace": rss,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, nargs="+", default=[8, 32, 8])  # the second 8: memory after the peak
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--detector", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/serve-load"))
    a = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cmd = [str(Path(sys.executable).with_name("aigi")), "serve", "--port", str(port)]
    if a.detector:
        cmd += ["--detector", a.detector]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        health = httpx.get(url + "/healthz").json()
        images = pick_images()
        httpx.post(url + "/v1/detect", files=[("files", images[0])], timeout=120)  # warm-up
        levels = []
        for c in a.clients:
            r = run_level(url, proc.pid, c, a.seconds, images)
            print(json.dumps({k: v for k, v in r.items() if k != "rss_trace"}), flush=True)
            levels.append(r)
        settings = httpx.get(url + "/v1/detectors").json()["limits"]
    finally:
        proc.terminate()
        proc.wait(10)
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "detector": health,
        "images": len(images),
        "limits": settings,
        "levels": levels,
    }
    Path(a.out + ".json").write_text(json.dumps(report, indent=1))
    rows = "\n".join(
        f"| {r['clients']} | {r['seconds']} | {r['ok']} | {r['requests_per_second']:.2f} | {r['latency_p50_s']:.2f} | "
        f"{r['latency_p99_s']:.2f} | {r['status_codes']} | {r['errors_5xx_other_than_503']} | "
        f"{r['rss_mb_first']:.0f} / {r['rss_mb_mean_first_half']:.0f} / {r['rss_mb_mean_second_half']:.0f} / {r['rss_mb_last']:.0f} |"
        for r in levels
    )
    md = f"""# `aigi serve` under bounded load (loopback)

Machine: {os.cpu_count()} CPU cores (server and clients share them), {platform.platform()}. Detector
{health["detector_version"]}; default settings (micro-batches of up to 16 images gathered for 10 ms, queue of 256
images). Each client posts one image at a time ({len(images)} aigi-dev images of 256x256 to ~500x375, in turn) and
waits for the answer; a 503 makes it wait 1 s (Retry-After).

| clients | s | answered 200 | requests/s | p50 latency (s) | p99 latency (s) | status codes | 5xx other than 503 | server RSS MB: start / mean 1st half / mean 2nd half / end |
|---|---|---|---|---|---|---|---|---|
{rows}

Re-run: `.venv/bin/python benchmarks/serve_load.py`.
"""
    Path(a.out + ".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
