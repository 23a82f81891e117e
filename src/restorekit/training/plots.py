"""Training history plots and comparison images (matplotlib Agg, written atomically)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from restorekit.utils.atomic import atomic_write_bytes


def plot_history(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write a PNG with loss curves (train/val) and validation PSNR (output and degraded input) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for h in history:
            v = h.get(key)
            if v is not None:
                xs.append(int(h["epoch"]))
                ys.append(float(v))
        return xs, ys

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train loss"), ("val_loss", "val loss")):
        xs, ys = series(key)
        if xs:
            ax1.plot(xs, ys, marker="o", ms=3, label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.set_title("loss")
    ax1.legend(loc="best")
    for key, label in (("val_psnr", "model output"), ("val_input_psnr", "degraded input")):
        xs, ys = series(key)
        if xs:
            ax2.plot(xs, ys, marker="o", ms=3, label=label, ls="-" if key == "val_psnr" else "--")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("PSNR (dB)")
    ax2.set_title("validation PSNR")
    ax2.legend(loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def comparison_strip(inp: np.ndarray, out: np.ndarray, tgt: np.ndarray, gap: int = 4) -> np.ndarray:
    """``input | output | target`` side by side: three (H,W,3) [0,1] arrays -> (H, 3W+2*gap, 3), white gaps."""
    h = max(a.shape[0] for a in (inp, out, tgt))
    parts = []
    for i, a in enumerate((inp, out, tgt)):
        a = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        if a.shape[0] < h:
            a = np.pad(a, ((0, h - a.shape[0]), (0, 0), (0, 0)), constant_values=1.0)
        parts.append(a)
        if i < 2:
            parts.append(np.ones((h, gap, 3), dtype=a.dtype))
    return np.concatenate(parts, axis=1).astype(np.float32)


def save_comparison(inp: np.ndarray, out: np.ndarray, tgt: np.ndarray, path: str | Path) -> Path:
    """Write the ``input | output | target`` strip as an 8-bit PNG (atomic)."""
    from restorekit.io import write_image

    write_image(path, comparison_strip(inp, out, tgt), bit_depth=8)
    return Path(path)
