"""Load test of `restorekit serve`: a bounded burst of valid requests against a real server on loopback.

Starts ``restorekit serve`` as a subprocess on 127.0.0.1 (a free port), sends
``--requests`` multipart POST /v1/restore requests with at most ``--concurrency``
in flight (httpx, async), and reports throughput, p50/p95/max latency, the error
count (must be 0: every request is valid), the server's peak resident memory
(VmHWM from /proc) and, measured in the same run, the in-process core time for
the same image, so the HTTP + queueing overhead is a ratio, not a guess.

Without ``--model`` it uses an untrained full-size ``deblur_unet`` package
(8.6 M parameters; throughput does not depend on the weights).

    .venv/bin/python benchmarks/serve_load.py --requests 200 --concurrency 8 --size 256

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of ``pid`` in MiB, Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _make_inputs(args: argparse.Namespace, work: Path) -> tuple[Path, bytes]:
    import numpy as np
    import torch

    import restorekit
    from restorekit.io import encode_image
    from restorekit.models.package import save_package

    if args.model:
        model_path = Path(args.model)
    else:
        torch.manual_seed(0)
        model_path = work / "deblur_unet_untrained.safetensors"
        save_package(restorekit.create_model("deblur_unet"), model_path)
    from skimage import data

    img = data.astronaut().astype(np.float32) / 255.0
    h, w = img.shape[:2]
    s = min(args.size, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    png = encode_image(img[top : top + s, left : left + s], "PNG")
    return model_path, png


def _core_baseline(model_path: Path, png: bytes, repeats: int, threads: int | None) -> float:
    """Median seconds of decode + restore + encode for ``png`` in this process (same core as the server)."""
    import torch

    from restorekit.serve.core import load_for_inference, restore_bytes, warm_up

    if threads:
        torch.set_num_threads(threads)
    loaded = load_for_inference(model_path, device="cpu")
    warm_up(loaded)
    for _ in range(3):  # the first calls of a fresh ONNX Runtime session are slower
        restore_bytes(loaded, png)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        restore_bytes(loaded, png)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def _burst(
    url: str, png: bytes, n: int, concurrency: int, timeout: float, server_times: list[tuple[float, float]] | None = None
) -> tuple[list[float], dict[int, int], float]:
    """Send ``n`` requests, ``concurrency`` in flight. Returns (latencies s, status counts, wall s).

    ``server_times`` collects (X-Processing-Time, X-Inference-Time) of each successful answer.
    """
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

        async def one(i: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/restore", files={"image": (f"img{i}.png", png, "image/png")})
                    code = r.status_code
                    if code == 200 and r.content[:4] != b"\x89PNG":
                        code = -2  # 200 with a wrong body counts as an error
                    if code == 200 and server_times is not None:
                        server_times.append((float(r.headers["x-processing-time"]), float(r.headers["x-inference-time"])))
                except httpx.HTTPError:
                    code = -1
                latencies.append(time.perf_counter() - t0)
                statuses[code] = statuses.get(code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    return latencies, statuses, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model package (default: an untrained full-size deblur_unet)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8, help="client requests in flight")
    ap.add_argument("--server-concurrency", type=int, default=1, help="inferences the server runs at once (--max-concurrency)")
    ap.add_argument("--size", type=int, default=256, help="square test image side in pixels (astronaut crop)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads in the server and the baseline")
    ap.add_argument("--baseline-repeats", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()

    import httpx

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        work = Path(tmp)
        model_path, png = _make_inputs(args, work)
        core_s = _core_baseline(model_path, png, args.baseline_repeats, args.threads)
        print(f"core (in-process decode+restore+encode, {args.size}x{args.size}): median {core_s * 1000:.1f} ms")

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "restorekit", "serve", "--model", str(model_path), "--host", "127.0.0.1", "--port", str(port),
               "--device", "cpu", "--max-concurrency", str(args.server_concurrency), "--max-queue", str(max(32, args.concurrency)),
               "--queue-timeout", str(args.timeout), "--log-level", "warning"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        log_path = work / "server.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
            try:
                deadline = time.monotonic() + 180
                while True:
                    if proc.poll() is not None:
                        print(log_path.read_text(), file=sys.stderr)
                        raise SystemExit(f"server exited with status {proc.returncode}")
                    try:
                        if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("server did not start")
                    time.sleep(0.2)
                rss_idle = _peak_rss_mb(proc.pid)
                # a few warm-up requests, not counted
                asyncio.run(_burst(url, png, min(4, args.requests), 1, args.timeout))
                server_times: list[tuple[float, float]] = []
                lat, statuses, wall = asyncio.run(_burst(url, png, args.requests, args.concurrency, args.timeout, server_times))
                health = httpx.get(f"{url}/healthz", timeout=10).json()
                rss_peak = _peak_rss_mb(proc.pid) or health.get("peak_rss_mb")
                alive = proc.poll() is None
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        core_after_s = _core_baseline(model_path, png, args.baseline_repeats, args.threads)
        print(f"core again after the burst: median {core_after_s * 1000:.1f} ms")

    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    ok = statuses.get(200, 0)
    errors = args.requests - ok
    throughput = ok / wall if wall > 0 else 0.0
    p50, p95 = _percentile(lat, 0.50), _percentile(lat, 0.95)
    service_s = wall / max(1, ok)  # server time per image at saturation
    core_mid = statistics.median([core_s, core_after_s])
    proc_med = statistics.median(t[0] for t in server_times) if server_times else float("nan")
    infer_med = statistics.median(t[1] for t in server_times) if server_times else float("nan")
    infer_share = sum(t[1] for t in server_times) / wall / args.server_concurrency if server_times else float("nan")
    print(f"burst: {args.requests} requests, {args.concurrency} in flight, server concurrency {args.server_concurrency}")
    print(f"  status counts: {dict(sorted(statuses.items()))}; errors: {errors}; server alive after burst: {alive}")
    print(f"  throughput {throughput:.2f} img/s ({args.size}x{args.size}); wall {wall:.1f} s")
    print(f"  latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms")
    print(f"  server peak RSS {rss_peak:.0f} MiB (after start-up {rss_idle or float('nan'):.0f} MiB)")
    print(f"  server-side, same requests: inference (restore_image) median {infer_med * 1000:.0f} ms; "
          f"handler incl. queueing median {proc_med * 1000:.0f} ms; the model ran {infer_share:.0%} of the burst's wall time")
    print(f"  per-image service time at saturation / in-burst inference time: {service_s / infer_med:.2f}x "
          f"({service_s * 1000:.0f} ms vs {infer_med * 1000:.0f} ms): decode/encode/HTTP overhead")
    print(f"  per-image service time / in-process core time (median of before and after): {service_s / core_mid:.2f}x "
          f"({core_s * 1000:.0f} and {core_after_s * 1000:.0f} ms)")
    print(f"  p50 latency / per-image service time: {p50 / service_s:.1f}x (queueing behind {args.concurrency} in flight)")
    print(f"  machine: {os.cpu_count()} CPUs, 1-min load average {load_before} before, {load_after} after")
    result = {
        "benchmark": "serve_load",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "server_concurrency": args.server_concurrency,
        "image": f"{args.size}x{args.size}",
        "model": "deblur_unet (untrained)" if not args.model else str(args.model),
        "ok": ok,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_alive": alive,
        "throughput_img_s": round(throughput, 3),
        "latency_p50_ms": round(p50 * 1000, 1),
        "latency_p95_ms": round(p95 * 1000, 1),
        "latency_max_ms": round(max(lat) * 1000, 1),
        "server_peak_rss_mb": round(float(rss_peak or 0), 1),
        "server_rss_after_start_mb": round(float(rss_idle or 0), 1),
        "core_ms_before": round(core_s * 1000, 1),
        "core_ms_after": round(core_after_s * 1000, 1),
        "server_inference_ms_p50": round(infer_med * 1000, 1),
        "server_handler_ms_p50": round(proc_med * 1000, 1),
        "inference_share_of_wall": round(infer_share, 3),
        "service_ms_per_image": round(service_s * 1000, 1),
        "service_over_inference": round(service_s / infer_med, 3),
        "service_over_core": round(service_s / core_mid, 3),
        "p50_over_service": round(p50 / service_s, 2),
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(load_before, 2) if load_before is not None else None,
        "loadavg_1m_after": round(load_after, 2) if load_after is not None else None,
    }
    print(json.dumps(result))
    return 0 if errors == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
