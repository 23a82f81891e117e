"""Where evaluation samples come from: folder pairs, dataset folders, training configs, datasets.

A sample is an :class:`EvalSample`: a name, the target, optionally the degraded input and/or an
existing prediction (all ``(H, W, 3)`` float32 RGB in [0, 1]), conditions for per-condition
breakdowns (e.g. ``{"iso": 3200, "degradation": "blur"}``), and, for raw samples, the collated
batch the model needs (``rggb``/``cond``/``residual``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import DataError

from restorekit.io.image import IMAGE_EXTENSIONS as IMAGE_EXTS  # the one list (GIF, AVIF where readable)
#: folder-name pairs recognised in a dataset folder (degraded, clean)
PAIR_DIR_NAMES: list[tuple[str, str]] = [
    ("input", "target"),
    ("blur", "sharp"),
    ("blur_gamma", "sharp"),
    ("noisy", "clean"),
    ("noisy", "gt"),
    ("lq", "gt"),
    ("lr", "hr"),
    ("degraded", "clean"),
    ("degraded", "target"),
    ("input", "gt"),
]


@dataclass
class EvalSample:
    """One evaluation item; images are ``(H, W, 3)`` float32 RGB in [0, 1]."""

    name: str
    target: np.ndarray
    input: np.ndarray | None = None
    pred: np.ndarray | None = None
    conditions: dict[str, Any] = field(default_factory=dict)
    batch: dict[str, Any] | None = None  # model-ready collated batch (raw samples)


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTS


def index_folder(folder: str | Path) -> dict[str, Path]:
    """Image files under ``folder`` (recursive) keyed by relative path without extension."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"folder '{root}' does not exist or is not a folder")
    out: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if _is_image(p):
            key = p.relative_to(root).with_suffix("").as_posix()
            if key in out:
                raise DataError(f"'{root}' holds two images named '{key}' ({out[key].name}, {p.name})")
            out[key] = p
    if not out:
        raise DataError(f"folder '{root}' holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    return out


def pair_folders(folders: dict[str, str | Path], *, on_missing: str = "fail") -> list[tuple[str, dict[str, Path]]]:
    """Match files across folders by relative name without extension.

    ``folders``: role -> folder, e.g. ``{"pred": ..., "target": ..., "input": ...}``. ``on_missing``: "fail"
    (DataError listing unmatched names) or "skip". Returns ``[(name, {role: path})]`` sorted by name.
    """
    indexes = {role: index_folder(f) for role, f in folders.items()}
    roles = list(indexes)
    common = set(indexes[roles[0]])
    for r in roles[1:]:
        common &= set(indexes[r])
    problems = []
    for r in roles:
        extra = sorted(set(indexes[r]) - common)
        if extra:
            problems.append(f"{len(extra)} file(s) in {r} folder '{folders[r]}' have no partner: {', '.join(extra[:5])}")
    if problems and on_missing == "fail":
        raise DataError("; ".join(problems) + " (pass --skip-missing to score the matched pairs only)")
    if not common:
        raise DataError("no file names in common between " + ", ".join(f"'{f}'" for f in folders.values()))
    return [(k, {r: indexes[r][k] for r in roles}) for k in sorted(common)]


def _read(path: Path, max_pixels: int | None = None) -> np.ndarray:
    from restorekit.io import read_image

    return read_image(path, max_pixels=max_pixels)


def _check_sizes(name: str, arrays: dict[str, np.ndarray], paths: dict[str, Path] | None = None) -> None:
    shapes = {r: a.shape for r, a in arrays.items() if a is not None}
    if len(set(shapes.values())) > 1:
        where = ", ".join(f"{r} {shapes[r][1]}x{shapes[r][0]}" + (f" ('{paths[r]}')" if paths else "") for r in shapes)
        raise DataError(f"sample '{name}': image sizes differ: {where}")


def folder_samples(
    target_dir: str | Path,
    *,
    input_dir: str | Path | None = None,
    pred_dir: str | Path | None = None,
    on_missing: str = "fail",
    limit: int | None = None,
) -> tuple[int, Iterator[EvalSample]]:
    """Samples from parallel folders (lazy: images are read when iterated). Returns (count, iterator)."""
    folders: dict[str, str | Path] = {"target": target_dir}
    if input_dir is not None:
        folders["input"] = input_dir
    if pred_dir is not None:
        folders["pred"] = pred_dir
    pairs = pair_folders(folders, on_missing=on_missing)
    if limit:
        pairs = pairs[:limit]

    def gen() -> Iterator[EvalSample]:
        for name, paths in pairs:
            arrays = {r: _read(p) for r, p in paths.items()}
            _check_sizes(name, arrays, paths)
            yield EvalSample(name=name, target=arrays["target"], input=arrays.get("input"), pred=arrays.get("pred"))

    return len(pairs), gen()


def find_pair_dirs(root: str | Path) -> list[tuple[Path, Path]]:
    """(degraded, clean) folder pairs in a dataset folder: ``root/{input,target}``, GoPro
    ``root/<scene>/{blur,sharp}``, ``root/{noisy,clean}``, ``root/{lq,gt}`` ... (see PAIR_DIR_NAMES)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder '{root}' does not exist")
    found: list[tuple[Path, Path]] = []
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    for folder in candidates:
        for deg, clean in PAIR_DIR_NAMES:
            if (folder / deg).is_dir() and (folder / clean).is_dir():
                found.append((folder / deg, folder / clean))
                break
    if not found:
        names = ", ".join(f"{a}/{b}" for a, b in PAIR_DIR_NAMES[:6])
        raise DataError(f"dataset folder '{root}' has no recognised pair of sub-folders ({names}, ...), directly or one level down")
    return found


def dataset_folder_samples(root: str | Path, *, on_missing: str = "fail", limit: int | None = None) -> tuple[int, Iterator[EvalSample]]:
    """Samples from every (degraded, clean) folder pair found in ``root``; names are prefixed by the
    scene folder when the pairs live one level down (GoPro)."""
    root = Path(root)
    groups = []
    for deg, clean in find_pair_dirs(root):
        prefix = "" if deg.parent == root else deg.parent.name + "/"
        groups.append((prefix, deg.parent.name if prefix else None, pair_folders({"input": deg, "target": clean}, on_missing=on_missing)))
    items = [(prefix + name, scene, paths) for prefix, scene, pairs in groups for name, paths in pairs]
    if limit:
        items = items[:limit]

    def gen() -> Iterator[EvalSample]:
        for name, scene, paths in items:
            arrays = {r: _read(p) for r, p in paths.items()}
            _check_sizes(name, arrays, paths)
            cond = {"scene": scene} if scene else {}
            yield EvalSample(name=name, target=arrays["target"], input=arrays["input"], conditions=cond)

    return len(items), gen()


def _chw_to_hwc(t: Any) -> np.ndarray:
    import torch

    if isinstance(t, torch.Tensor):
        t = t.detach().to("cpu", torch.float32)
        if t.dim() == 4:
            t = t[0]
        return np.ascontiguousarray(t.permute(1, 2, 0).numpy())
    arr = np.asarray(t, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    return np.ascontiguousarray(arr)


def _scalar(v: Any) -> Any:
    import torch

    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        if v.numel() != 1:
            return None
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
        return "+".join(v)
    return None


def sample_conditions(sample: dict[str, Any]) -> dict[str, Any]:
    """Conditions of a dataset sample: ``iso`` and the scalar/string entries of ``params``/``conditions``.

    Nested dicts in ``params`` are flattened with dots (``blur.sigma``); lists of strings are joined by "+".
    """
    out: dict[str, Any] = {}
    if "iso" in sample:
        v = _scalar(sample["iso"])
        if v is not None:
            out["iso"] = v
    for key in ("conditions", "params"):
        src = sample.get(key)
        if not isinstance(src, dict):
            continue
        stack = [("", src)]
        while stack:
            prefix, d = stack.pop()
            for k, v in d.items():
                name = f"{prefix}{k}"
                if isinstance(v, dict):
                    stack.append((name + ".", v))
                    continue
                sv = _scalar(v)
                if sv is not None and name not in out:
                    out[name] = sv
    return out


def dataset_samples(ds: Any, *, limit: int | None = None) -> tuple[int, Iterator[EvalSample]]:
    """Samples from a restorekit dataset (``ds[i]`` -> dict with ``input``, ``target``, ``name``, ...)."""
    n = len(ds)
    if limit:
        n = min(n, limit)

    def gen() -> Iterator[EvalSample]:
        for i in range(n):
            s = ds[i]
            if not isinstance(s, dict) or "target" not in s:
                raise DataError(f"dataset item {i} is not a dict with a 'target' tensor")
            name = str(s.get("name", f"sample_{i:04d}"))
            batch = None
            if "rggb" in s:
                from restorekit.data.dataset import collate

                batch = collate([s])
            inp = s.get("input", s.get("residual"))
            yield EvalSample(
                name=name,
                target=_chw_to_hwc(s["target"]),
                input=None if inp is None else _chw_to_hwc(inp),
                conditions=sample_conditions(s),
                batch=batch,
            )

    return n, gen()


def config_samples(path: str | Path, *, limit: int | None = None, overrides: list[str] | None = None) -> tuple[int, Iterator[EvalSample]]:
    """Validation samples of a training config (``data:`` section) or of a bare data config (``kind:``)."""
    from restorekit.config.base import apply_overrides, load_yaml
    from restorekit.data import build_datasets

    raw = apply_overrides(load_yaml(path), overrides)
    if "data" in raw:
        from restorekit.training.config import load_run_config

        cfg = load_run_config(path, overrides)
        data_cfg, seed = cfg.data, cfg.seed
    elif "kind" in raw:
        from restorekit.data.config import parse_data_config

        data_cfg, seed = parse_data_config(raw, f"'{path}'"), 0
    else:
        raise DataError(f"config '{path}' has neither a 'data:' section nor a 'kind:' key")
    _, val_ds = build_datasets(data_cfg, seed=seed, run_dir=None)
    if val_ds is None or len(val_ds) == 0:
        raise DataError(f"config '{path}': its validation split is empty (set data.val_fraction or a validation source)")
    return dataset_samples(val_ds, limit=limit)


def iterable_samples(items: Iterable[Any], *, limit: int | None = None) -> tuple[int | None, Iterator[EvalSample]]:
    """Samples from an iterable of :class:`EvalSample` or dataset-style dicts."""

    def gen() -> Iterator[EvalSample]:
        for i, item in enumerate(items):
            if limit and i >= limit:
                return
            if isinstance(item, EvalSample):
                yield item
            elif isinstance(item, dict):
                inp = item.get("input")
                pred = item.get("pred")
                yield EvalSample(
                    name=str(item.get("name", f"sample_{i:04d}")),
                    target=_chw_to_hwc(item["target"]),
                    input=None if inp is None else _chw_to_hwc(inp),
                    pred=None if pred is None else _chw_to_hwc(pred),
                    conditions=sample_conditions(item),
                )
            else:
                raise DataError(f"evaluation item {i} is a {type(item).__name__}, expected EvalSample or dict")

    n = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    if n is not None and limit:
        n = min(n, limit)
    return n, gen()


def resolve_data(data: Any, *, limit: int | None = None, on_missing: str = "fail") -> tuple[int | None, Iterator[EvalSample]]:
    """Samples from ``data``: a YAML config path, a dataset folder, an ``(input_dir, target_dir)`` pair,
    a dict ``{"input": dir, "target": dir}``, a dataset object (``__getitem__`` -> dict) or an iterable."""
    if isinstance(data, (str, Path)):
        p = Path(data)
        if p.suffix.lower() in (".yaml", ".yml"):
            return config_samples(p, limit=limit)
        if not p.exists():
            raise DataError(f"--data '{p}' does not exist")
        return dataset_folder_samples(p, on_missing=on_missing, limit=limit)
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(x, (str, Path)) for x in data):
        return folder_samples(data[1], input_dir=data[0], on_missing=on_missing, limit=limit)
    if isinstance(data, dict) and "target" in data and isinstance(data["target"], (str, Path)):
        return folder_samples(data["target"], input_dir=data.get("input"), pred_dir=data.get("pred"), on_missing=on_missing, limit=limit)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, tuple)):
        return dataset_samples(data, limit=limit)
    if isinstance(data, Iterable):
        return iterable_samples(data, limit=limit)
    raise DataError(f"cannot evaluate on a {type(data).__name__}: pass a folder, a config file, a folder pair or a dataset")


RestoreFn = Callable[[EvalSample], np.ndarray]
