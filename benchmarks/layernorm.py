"""LayerNorm2d forward + backward: restorekit's fused function against the same formulas in element-wise ops.

Times (median of ``--reps`` interleaved repetitions) one forward and backward pass of
``restorekit.models.layers.LayerNorm2dFunction``, of the permute + ``F.layer_norm``
composition autograd would build, and of the hand-derived formulas
(``layer_norm_2d_reference``, autograd through element-wise ops, as NAFNet's own
LayerNorm2d writes them), at NAFNet-w32 shapes, NCHW and channels-last inputs.
Usage: ``python benchmarks/layernorm.py [--reps 5] [--out FILE]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, load_average  # noqa: E402

from restorekit.models.layers import LayerNorm2dFunction, layer_norm_2d_reference  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    fns = {
        "fused_function": lambda x, w, b: LayerNorm2dFunction.apply(x, w, b, 1e-6),
        "permute_layer_norm": lambda x, w, b: F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w, b, 1e-6).permute(0, 3, 1, 2),
        "elementwise_formula": lambda x, w, b: layer_norm_2d_reference(x, w, b, 1e-6),
    }
    load0 = load_average()
    rows = []
    for c, s in ((32, 256), (256, 32)):
        for cl in (False, True):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(4, c, s, s, generator=g)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            x.requires_grad_()
            w, b = torch.randn(c, requires_grad=True), torch.randn(c, requires_grad=True)
            dy = torch.randn_like(x)
            times: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(args.reps + 1):
                for k, f in fns.items():
                    x.grad = w.grad = b.grad = None
                    t = time.perf_counter()
                    f(x, w, b).backward(dy)
                    times[k].append(time.perf_counter() - t)
            med = {k: statistics.median(v[1:]) * 1000 for k, v in times.items()}
            rows.append({"shape": [4, c, s, s], "channels_last": cl, "ms": {k: round(v, 2) for k, v in med.items()},
                         "formula_over_fused": round(med["elementwise_formula"] / med["fused_function"], 2),
                         "permute_over_fused": round(med["permute_layer_norm"] / med["fused_function"], 2)})
            print(json.dumps(rows[-1]), flush=True)
    out = {"benchmark": "layernorm", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": {**cpu_info(), "torch": torch.__version__, "threads": torch.get_num_threads()},
           "rows": rows, "load_avg_1m": [load0, load_average()]}
    if args.out:
        from restorekit.utils.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
