"""Facts about the benchmark machine: CPU model and clock (``lscpu``), load average, measured FMA peak.

``fma_peak_gflops`` measures the floating-point peak with a small kernel that is not a
matrix multiply: a C loop of 12 independent fused multiply-add chains on the widest
vector registers the compiler targets with ``-march=native`` (AVX-512: 16 floats, AVX2:
8, else scalar), no memory traffic, run on every core at once (one process per core).
2 flops per lane per FMA. It needs a
C compiler (``cc``); without one it returns None.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

FMA_SRC = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <immintrin.h>
#define CHAINS 12  /* independent accumulators: more than FMA latency x FMA ports */
#if defined(__AVX512F__)
typedef __m512 vec; enum { LANES = 16 };
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
static float hsum(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__FMA__)
typedef __m256 vec; enum { LANES = 8 };
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
static float hsum(vec v) { float f[8]; _mm256_storeu_ps(f, v); float s = 0; for (int i = 0; i < 8; i++) s += f[i]; return s; }
#else
typedef float vec; enum { LANES = 1 };
#define SET1(x) (x)
#define FMA(a, b, c) ((a) * (b) + (c))
static float hsum(vec v) { return v; }
#endif
int main(int argc, char** argv) {
  long iters = argc > 1 ? atol(argv[1]) : 50000000L;
  vec acc[CHAINS];
  vec a = SET1(0.999999f), b = SET1(1e-7f);
  for (int c = 0; c < CHAINS; c++) acc[c] = SET1((float)c * 1e-3f);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < iters; i++) {
    #pragma GCC unroll 12
    for (int c = 0; c < CHAINS; c++) acc[c] = FMA(acc[c], a, b);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  float sum = 0; for (int c = 0; c < CHAINS; c++) sum += hsum(acc[c]);
  printf("%.6f %.9g %d\n", 2.0 * iters * CHAINS * LANES / s / 1e9, sum, (int)LANES);
  return 0;
}
"""


def cpu_info() -> dict[str, Any]:
    """``lscpu``'s model name, max clock (MHz, when it reports one), logical CPUs; ``os.cpu_count()`` otherwise."""
    info: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return info
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    info["model_name"] = fields.get("Model name")
    for key in ("CPU max MHz", "CPU MHz"):
        if fields.get(key):
            info["mhz"] = float(fields[key])
            break
    if "mhz" not in info:
        bogo = fields.get("BogoMIPS")  # = 2 x the TSC clock on x86 when lscpu gives no MHz (VMs)
        info["mhz_from_bogomips"] = round(float(bogo) / 2, 1) if bogo else None
    info["flags_avx512f"] = "avx512f" in fields.get("Flags", "")
    return info


def load_average() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def fma_peak_gflops(cores: int | None = None, iters: int = 20_000_000, repeats: int = 3) -> dict[str, Any] | None:
    """Measured fp32 FMA peak (GFLOP/s) of ``cores`` cores together (default all): best of ``repeats`` runs."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    cores = cores or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="rk-fma-") as tmp:
        src, exe = Path(tmp) / "fma.c", Path(tmp) / "fma"
        src.write_text(FMA_SRC)
        try:
            subprocess.run([cc, "-O2", "-march=native", "-ffp-contract=fast", "-o", str(exe), str(src)],
                           check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        best_total, best_per_core = 0.0, 0.0
        for _ in range(repeats):
            procs = [subprocess.Popen([str(exe), str(iters)], stdout=subprocess.PIPE, text=True) for _ in range(cores)]
            rates = [float(p.communicate()[0].split()[0]) for p in procs]
            best_total = max(best_total, sum(rates))
            best_per_core = max(best_per_core, max(rates))
    return {"gflops_all_cores": round(best_total, 1), "gflops_best_core": round(best_per_core, 1), "cores": cores,
            "kernel": "fp32 vector FMA, 12 register chains, -O2 -march=native"}


if __name__ == "__main__":
    import json

    print(json.dumps({"cpu": cpu_info(), "load": load_average(), "fma": fma_peak_gflops()}))
