"""The :class:`Restorer`: one object that runs any model file restorekit reads.

``load_restorer(path, **options)`` accepts a model package (``.safetensors``), a
Lightning ``.ckpt``, a BasicSR/official ``.pth``, a seed checkpoint, an exported
``.onnx`` or a TorchScript ``.pt``; ``Restorer.from_module(module)`` wraps a module
in memory. Calling it::

    restorer = load_restorer("model.safetensors", tile=512)
    y = restorer(x)          # x: (B, 3, H, W) float in [0, 1], any size and batch
                             # y: (B, 3, H, W) float32 CPU in [0, 1]

handles everything that depends on the model: its value range, padding to its
size multiple, TLC, tiles of its native size, overlapping tiles blended with
linear/cosine windows sized from a memory budget, halving the tile on
out-of-memory errors, and the runtime (eager PyTorch, ``torch.compile``, ONNX
Runtime, TorchScript). For models with extra inputs (a noise-conditioned raw
model: ``rggb``, ``cond``, ``residual``) ``restorer(residual, rggb=..., cond=...)``
tiles every spatial input consistently.

Every front end (CLI, HTTP service, web app, Azure handler, evaluation, raw
restore, demo) adapts this object; :func:`restore_image` and
:func:`restore_tensor` are thin calls into it.
"""

from __future__ import annotations

import logging
import math
import weakref
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from restorekit.errors import CheckpointError, ConfigError
from restorekit.inference.ensemble import ensemble_forward
from restorekit.inference.memory import fit_batch
from restorekit.inference.options import RestoreOptions
from restorekit.inference.runtime import (
    ModelInfo,
    Runtime,
    exported_kind,
    fingerprint,
    make_runtime,
    model_info,
    open_exported,
)
from restorekit.inference.tiling import axis_plan, resolve_overlap
from restorekit.inference.core import MIN_TILE, Progress, is_oom, plan_tile, round_tile
from restorekit.models.spec import ArchSpec, Capabilities

log = logging.getLogger("restorekit.inference")

ProgressArg = None | bool | Callable[[int, int], Any] | Any


class Restorer:
    """Runs one model on images of any size (see the module docstring).

    Attributes: ``module`` (the ``nn.Module``, None for exported files), ``spec``
    (its :class:`~restorekit.models.spec.ArchSpec`, None when the architecture is
    unknown), ``args`` (constructor arguments), ``caps`` (capabilities), ``info``
    (:class:`ModelInfo`), ``options`` (:class:`RestoreOptions`), ``device``, ``source``.
    """

    def __init__(
        self,
        *,
        module: nn.Module | None = None,
        runtime: Runtime | None = None,
        options: RestoreOptions | None = None,
        source: str | None = None,
    ) -> None:
        from restorekit.device import resolve_device

        if (module is None) == (runtime is None):
            raise ConfigError("Restorer needs exactly one of module= or runtime=")
        self.options = options or RestoreOptions()
        self.module = module
        self._fixed_runtime = runtime
        self.info: ModelInfo = model_info(module) if module is not None else runtime.info  # type: ignore[union-attr]
        self.source = source
        if runtime is not None:
            self.device = runtime.device
        elif self.options.device == "auto":
            p = next(iter(module.parameters()), None)  # type: ignore[union-attr]
            self.device = p.device if p is not None and p.device.type != "cpu" else resolve_device("auto")
        else:
            self.device = resolve_device(self.options.device)
        self._check_precision()
        self._runtimes: dict[tuple[int, int], Runtime] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_module(cls, module: nn.Module, options: RestoreOptions | None = None, **values: Any) -> "Restorer":
        """Wrap an ``nn.Module`` (the caller's module is never modified)."""
        opts = (options or RestoreOptions()).updated(**values) if values else (options or RestoreOptions())
        return cls(module=module, options=opts)

    @classmethod
    def coerce(cls, model: "Restorer | nn.Module | Runtime | str | Path", options: RestoreOptions | None = None) -> "Restorer":
        """A Restorer for a Restorer (options replaced), a module, a runtime or a model file."""
        opts = options or RestoreOptions()
        if isinstance(model, Restorer):
            return model if options is None else model.with_options(opts)
        if isinstance(model, nn.Module):
            return cls(module=model, options=opts)
        if isinstance(model, Runtime):
            return cls(runtime=model, options=opts)
        if isinstance(model, (str, Path)):
            return load_restorer(model, options=opts)
        raise ConfigError(f"expected a Restorer, an nn.Module, a Runtime or a model file, got {type(model).__name__}")

    def with_options(self, options: RestoreOptions | None = None, **values: Any) -> "Restorer":
        """The same model with other options (runtimes are rebuilt lazily)."""
        opts = (options or self.options).updated(**values) if values else (options or self.options)
        if self.module is not None:
            return Restorer(module=self.module, options=opts, source=self.source)
        return Restorer(runtime=self._fixed_runtime, options=opts, source=self.source)

    # ------------------------------------------------------------------ facts
    @property
    def spec(self) -> ArchSpec | None:
        """The architecture's spec (None when the architecture is not registered)."""
        from restorekit.models.registry import MODELS

        return MODELS.get(self.info.arch) if self.info.arch in MODELS else None

    @property
    def args(self) -> dict[str, Any]:
        """The constructor arguments the model was built with."""
        return dict(self.info.arch_args)

    @property
    def caps(self) -> Capabilities:
        """The model's capabilities (value range, size multiple, inputs, TLC, native size, ...)."""
        return self.info.caps

    @property
    def arch(self) -> str:
        """The architecture's registry name (or the class name of a foreign module)."""
        return self.info.arch or (type(self.module).__name__ if self.module is not None else "model")

    def describe(self) -> str:
        """One line: architecture, source, runtime and device."""
        kind = self._fixed_runtime.name if self._fixed_runtime is not None else f"backend {self.options.backend}"
        return f"{self.arch} ({kind} on {self.device})"

    def _check_precision(self) -> None:
        p = self.options.precision
        if p == "fp16" and self.device.type == "cpu":
            raise ConfigError(f"--precision {p}: fp16 inference needs a GPU; on the cpu use fp32 or bf16")

    # ------------------------------------------------------------------ runtimes
    def runtime_for(self, tile_hw: tuple[int, int]) -> Runtime:
        """The runtime used for tiles of ``tile_hw`` (a TLC copy of the module when TLC applies)."""
        if self._fixed_runtime is not None:
            return self._fixed_runtime
        fp = fingerprint(self.module)  # type: ignore[arg-type]
        if fp != self.__dict__.get("_weights_fp"):  # the module's weights changed: rebuild copies and runtimes
            self._runtimes.clear()
            self.__dict__.pop("_tlc_copy", None)
            self.__dict__["_weights_fp"] = fp
        key = tile_hw if self._wants_tlc(tile_hw) else (0, 0)
        rt = self._runtimes.get(key)
        if rt is None:
            module = self._tlc_module() if key != (0, 0) else self.module
            rt = make_runtime(module, self.device, self.options.backend, precision=self.options.precision)
            self._runtimes[key] = rt
        return rt

    def _wants_tlc(self, tile_hw: tuple[int, int]) -> bool:
        """TLC decision for tiles of ``tile_hw`` (logged once per tile size)."""
        if not self.caps.tlc or self.options.tlc == "off":
            return False
        ts = self.info.train_size
        seen = self.__dict__.setdefault("_tlc_logged", set())
        say = log.info if tile_hw not in seen else log.debug
        seen.add(tile_hw)
        if not ts:
            if self.options.tlc == "on":
                raise ConfigError("--tlc on: the model's training size is unknown (set train_size in the package)")
            say("TLC not applied to %s: training size unknown (the package records no train_size)", self.arch)
            return False
        if self.options.tlc == "auto" and tile_hw[0] <= 1.5 * ts[0] and tile_hw[1] <= 1.5 * ts[1]:
            say("TLC not needed for %s: tiles %dx%d are within 1.5x the training size %dx%d", self.arch, *tile_hw, *ts)
            return False
        say("TLC applied to %s for %dx%d tiles (training size %dx%d)", self.arch, *tile_hw, *ts)
        return True

    def _tlc_module(self) -> nn.Module:
        """A TLC copy of the module (made once; the caller's module is never changed)."""
        import copy

        import importlib

        tlc = importlib.import_module("restorekit.models.tlc")
        cached = self.__dict__.get("_tlc_copy")
        if cached is None:
            cached = copy.deepcopy(self.module)
            res = tlc.enable_tlc(cached, train_size=self.info.train_size)  # type: ignore[arg-type]
            cached = res if isinstance(res, nn.Module) else cached
            self.__dict__["_tlc_copy"] = cached
        return cached

    # ------------------------------------------------------------------ running
    def __call__(self, x: torch.Tensor, *, progress: ProgressArg = None, **extras: torch.Tensor) -> torch.Tensor:
        """Restore a batch: ``(B, 3, H, W)`` float in [0, 1] -> ``(B, 3, H, W)`` float32 CPU in [0, 1].

        A ``(3, H, W)`` tensor is taken as a batch of one. For models with extra
        inputs, pass them by name (``rggb=(B, 4, H/2, W/2)``, ``cond=(B, K)``); ``x`` is
        then the model's full-resolution image input (``residual``).
        """
        if x.ndim == 3:
            x = x.unsqueeze(0)
            extras = {k: (v.unsqueeze(0) if k != "cond" and v.ndim == 3 else v) for k, v in extras.items()}
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"Restorer expects a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        if x.shape[-2] < 1 or x.shape[-1] < 1:
            raise ConfigError(f"Restorer: empty image of shape {tuple(x.shape)}")
        self._check_extras(x, extras)
        outs = []
        for b in range(x.shape[0]):
            ex = {k: v[b : b + 1] for k, v in extras.items()}
            outs.append(self._restore_one(x[b].detach().to("cpu", torch.float32), ex, progress))
        return outs[0].unsqueeze(0) if len(outs) == 1 else torch.stack(outs)

    def _check_extras(self, x: torch.Tensor, extras: dict[str, torch.Tensor]) -> None:
        needed = [n for n in self.caps.inputs if n not in ("input", "residual")]
        missing = [n for n in needed if n not in extras]
        unknown = [n for n in extras if n not in needed]
        if missing or unknown:
            what = f"needs inputs {list(self.caps.inputs)}" if not self.caps.rgb else "takes one RGB image"
            raise ConfigError(f"model '{self.arch}' {what}: missing {missing}, unexpected {unknown}")
        if "rggb" in extras:
            r = extras["rggb"]
            if r.ndim != 4 or r.shape[0] != x.shape[0] or tuple(r.shape[-2:]) != (x.shape[-2] // 2, x.shape[-1] // 2):
                raise ConfigError(f"rggb must be (B, 4, H/2, W/2) = {(x.shape[0], 4, x.shape[-2] // 2, x.shape[-1] // 2)}, "
                                  f"got {tuple(r.shape)}")
            if x.shape[-2] % 2 or x.shape[-1] % 2:
                raise ConfigError(f"raw models need an even image size, got {tuple(x.shape[-2:])}")

    def restore_image(self, image: Any, *, progress: ProgressArg = None) -> np.ndarray:
        """One image (numpy ``(H, W[, 3])`` float/uint8/uint16, PIL, or tensor) -> ``(H, W, 3)`` float32 in [0, 1]."""
        return self(image_to_chw(image), progress=progress)[0].permute(1, 2, 0).numpy()

    def _restore_one(self, src: torch.Tensor, extras: dict[str, torch.Tensor], progress: ProgressArg) -> torch.Tensor:
        """``src`` (3, H, W) CPU in [0, 1] -> (3, H, W) CPU float32 in [0, 1]; retries smaller tiles on OOM."""
        o = self.options
        _, h, w = src.shape
        caps = self.caps
        mult = caps.size_multiple
        even = 2 if "rggb" in extras else 1
        t, ov = self._plan(h, w)
        batch = o.batch
        if o.tile == "auto" and self.device.type == "cpu" and self.module is not None and t < max(h, w):
            batch = fit_batch(self.module, self.device, min(t, h), min(t, w), batch, self._budget())
        out = torch.empty((h, w, 3), dtype=torch.float32)
        while True:
            try:
                self._tiled_pass(src, extras, out, t, ov, batch, progress, even)
                break
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are retried
                if not is_oom(exc):
                    raise
                new_t = round_tile(min(t, max(h, w)) // 2, max(mult, even))
                _free_device_memory(self.device)
                if new_t < MIN_TILE or new_t >= t or caps.native_size:
                    if batch > 1:
                        batch = max(1, batch // 2)
                        log.warning("out of memory at tile %d; retrying with batch %d", t, batch)
                        continue
                    raise
                log.warning("out of memory at tile %d on %s; retrying the image with tile %d", t, self.device, new_t)
                ov = resolve_overlap(o.overlap_value, new_t)
                t = new_t
        # in place on the one (H, W, 3) buffer: a 4096 x 4096 image costs 200 MB per extra copy
        if o.strength < 1.0:
            out.mul_(o.strength).add_(src.permute(1, 2, 0), alpha=1.0 - o.strength)
        if o.clip:
            out.clamp_(0.0, 1.0)
        return out.permute(2, 0, 1)

    def _budget(self) -> int | None:
        return self.options.memory_budget_mb * 2**20 if self.options.memory_budget_mb else None

    def _plan(self, h: int, w: int) -> tuple[int, int]:
        """``(tile, overlap)`` in pixels for an ``h x w`` image (tile >= max(h, w): one pass)."""
        o, caps = self.options, self.caps
        if caps.native_size:
            n = int(caps.native_size)
            if max(h, w) <= n and o.tile in ("auto", 0):
                return max(h, w), 0
            t = n  # tiles of exactly the native size (smaller images are padded to it)
            return t, resolve_overlap(o.overlap_value, t)
        source = self.module if self.module is not None else self._fixed_runtime
        mult = max(caps.size_multiple, 2 if not caps.rgb else 1)
        return plan_tile(h, w, o.tile, o.overlap_value, multiple=mult, model=source, device=self.device,
                         batch=1 if self.device.type == "cpu" else o.batch, memory_budget=self._budget())

    def _tiled_pass(self, src: torch.Tensor, extras: dict[str, torch.Tensor], out: torch.Tensor, tile: int,
                    overlap: int, batch: int, progress: ProgressArg, even: int) -> None:
        """One tiled pass over ``src`` (3, H, W) into ``out`` (H, W, 3) (blended, unclipped)."""
        _, h, w = src.shape
        native = self.caps.native_size
        if even > 1 and tile < max(h, w):
            tile -= tile % 2
            overlap -= overlap % 2
        ys, wys, tot_y = axis_plan(h, tile, overlap, self.options.blend)
        xs, wxs, tot_x = axis_plan(w, tile, overlap, self.options.blend)
        if even > 1:
            ys, xs = [y - y % 2 for y in ys], [x - x % 2 for x in xs]
        th, tw = min(tile, h), min(tile, w)
        rt = self.runtime_for((th, tw))
        coords = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
        single = len(coords) == 1
        out.zero_()
        bar = Progress(progress, len(coords))
        try:
            for b0 in range(0, len(coords), max(1, batch)):
                chunk = coords[b0 : b0 + max(1, batch)]
                tiles = torch.stack([src[:, ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] for iy, ix in chunk])
                feeds: dict[str, torch.Tensor] = {}
                if "rggb" in extras:
                    r = extras["rggb"][0]
                    feeds["rggb"] = torch.stack(
                        [r[:, ys[iy] // 2 : (ys[iy] + th) // 2, xs[ix] // 2 : (xs[ix] + tw) // 2] for iy, ix in chunk])
                if "cond" in extras:
                    feeds["cond"] = extras["cond"].to(torch.float32).expand(len(chunk), -1)
                pred = self._forward(rt, tiles, feeds, native)
                if single:
                    out.copy_(pred[0].permute(1, 2, 0))
                    continue
                for k, (iy, ix) in enumerate(chunk):
                    wt = torch.from_numpy(np.outer(wys[iy], wxs[ix]))
                    out[ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw].add_((pred[k] * wt).permute(1, 2, 0))
                bar.update(len(chunk))
        finally:
            bar.close(own=progress is True)
        if not single:
            out.div_(torch.from_numpy(tot_y)[:, None, None])
            out.div_(torch.from_numpy(tot_x)[None, :, None])

    def _forward(self, rt: Runtime, tiles: torch.Tensor, feeds: dict[str, torch.Tensor], native: int | None) -> torch.Tensor:
        """Run one batch of tiles; pads to the native size first when the model has one."""
        h, w = tiles.shape[-2:]
        if native and (h < native or w < native):
            tiles = _pad_to(tiles, native, native)
        if feeds:
            # pad every spatial input to the size multiple (full-resolution inputs by m, packed ones by m/2):
            # exported graphs are traced at a multiple and do not carry the module's own padding branch
            m = max(2, self.caps.size_multiple)
            ph, pw = -tiles.shape[-2] % m, -tiles.shape[-1] % m
            if ph or pw:
                tiles = _pad_to(tiles, tiles.shape[-2] + ph, tiles.shape[-1] + pw)
                if "rggb" in feeds:
                    r = feeds["rggb"]
                    feeds = {**feeds, "rggb": _pad_to(r, r.shape[-2] + ph // 2, r.shape[-1] + pw // 2)}
            inputs = {"residual": tiles, **feeds, "input": tiles}
            pred = rt.run_inputs([inputs[n] for n in self.caps.inputs])
        elif self.options.ensemble:
            pred = ensemble_forward(rt, tiles)
        else:
            pred = rt(tiles)
        return pred[..., :h, :w]


def _pad_to(x: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """Reflect-pad ``(B, C, h, w)`` at the bottom/right to ``(th, tw)`` (replicate when too small to reflect)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = th - h, tw - w
    mode = "reflect" if h > ph and w > pw else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _free_device_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- loading


def load_restorer(path: str | Path, *, options: RestoreOptions | None = None, overrides: dict[str, Any] | None = None,
                  **values: Any) -> Restorer:
    """A :class:`Restorer` for any model file restorekit reads (see the module docstring).

    ``values`` are :class:`RestoreOptions` fields (``tile=512``, ``device="cpu"``...),
    validated once; ``overrides`` are constructor arguments for weight files whose
    settings cannot be read from the file (``{"num_heads": 8}``). Arguments stored
    in a file always win over inferred ones.
    """
    opts = (options or RestoreOptions()).updated(**values) if values else (options or RestoreOptions())
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"model file '{p}' does not exist")
    if p.is_dir():
        raise CheckpointError(f"model '{p}' is a folder, not a model file")
    kind = exported_kind(p)
    if kind is not None:
        from restorekit.device import resolve_device

        rt = open_exported(p, kind, resolve_device(opts.device))
        return Restorer(runtime=rt, options=opts, source=str(p))
    from restorekit.models.loading import load_model

    module = load_model(p, **(overrides or {}))
    return Restorer(module=module, options=opts, source=str(p))


# ----------------------------------------------------------------------------- thin wrappers


def image_to_chw(image: Any) -> torch.Tensor:
    """numpy (H,W[,3|4]) float [0,1]/uint8/uint16, PIL image, or tensor (3,H,W)/(1,3,H,W) -> (3,H,W) float32 CPU."""
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ConfigError(f"expected one image, got a batch of shape {tuple(t.shape)}")
            t = t[0]
        if t.ndim == 3 and t.shape[0] in (1, 3):
            t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
            if t.dtype == torch.uint8:
                t = t.float() / 255.0
            return t.to("cpu", torch.float32)
        if t.ndim in (2, 3):
            image = t.cpu().numpy()
        else:
            raise ConfigError(f"unsupported tensor shape {tuple(t.shape)} (use (3,H,W) or (1,3,H,W))")
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    elif arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ConfigError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[..., :3]
    if any(st < 0 for st in arr.strides):  # flipped views: torch cannot view negative strides
        arr = np.ascontiguousarray(arr)
    t = torch.from_numpy(arr).permute(2, 0, 1)
    return t.expand(3, -1, -1) if t.shape[0] == 1 else t


def _options_from(tile: Any, overlap: Any, blend: Any, device: Any, batch: Any, ensemble: Any, backend: Any,
                  memory_budget: Any, clip: bool = True) -> RestoreOptions:
    dev = None if device is None else str(device)
    mb = None if memory_budget is None else max(1, int(math.ceil(int(memory_budget) / 2**20)))
    return RestoreOptions.parse(tile=tile, overlap=overlap, blend=blend, device=dev, batch=batch, ensemble=ensemble,
                                backend=backend, memory_budget_mb=mb, clip=clip)


_RESTORER_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, tuple[Any, Restorer]]]" = weakref.WeakKeyDictionary()


def _cached(model: Any, opts: RestoreOptions) -> Restorer:
    """Reuse a module's Restorer (and its runtimes) across calls with the same options and the same card.

    Runtimes built from a module are themselves invalidated when its weights change
    (see :func:`~restorekit.inference.runtime.onnx_runtime_for`); a new card (other
    training size, value range) makes a new Restorer.
    """
    if isinstance(model, (nn.Module, Runtime)):
        from restorekit.models.spec import card_of

        card = card_of(model) if isinstance(model, nn.Module) else None
        per = _RESTORER_CACHE.setdefault(model, {})
        key = opts.model_dump_json()
        hit = per.get(key)
        if hit is None or hit[0] is not card:
            hit = (card, Restorer.coerce(model, opts))
            per[key] = hit
        return hit[1]
    return Restorer.coerce(model, opts)


def restore_image(
    model: Restorer | nn.Module | Runtime | str,
    image: Any,
    *,
    tile: int | str = "auto",
    overlap: int | float = 32,
    blend: str = "linear",
    device: str | torch.device | None = None,
    batch: int = 4,
    ensemble: bool = False,
    progress: ProgressArg = None,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> np.ndarray:
    """Restore one RGB image; returns ``(H, W, 3)`` float32 in [0, 1] (clipped). A thin call into :class:`Restorer`.

    ``image``: ``(H, W, 3)``/``(H, W)`` numpy array (float in [0, 1], uint8 or uint16),
    a PIL image, or a ``(3, H, W)``/``(1, 3, H, W)`` tensor in [0, 1]. ``model``: a
    Restorer (its options are used as they are), an ``nn.Module``, a Runtime or a model
    file. The other arguments are :class:`RestoreOptions` (``memory_budget`` in bytes).
    """
    if isinstance(model, Restorer):
        return model.restore_image(image, progress=progress)
    opts = _options_from(tile, overlap, blend, device, batch, ensemble, backend, memory_budget)
    return _cached(model, opts).restore_image(image, progress=progress)


def restore_tensor(
    model: Restorer | nn.Module | Runtime | str,
    x: torch.Tensor,
    *,
    tile: int | str = "auto",
    overlap: int | float = 32,
    blend: str = "linear",
    device: str | torch.device | None = None,
    batch: int = 4,
    ensemble: bool = False,
    progress: ProgressArg = None,
    backend: str = "auto",
    clip: bool = True,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Restore ``x`` ``(B, 3, H, W)`` or ``(3, H, W)`` float RGB in [0, 1] -> ``(B, 3, H, W)`` CPU float32.

    A thin call into :class:`Restorer` (see :func:`restore_image` for the arguments).
    """
    if isinstance(model, Restorer):
        return model(x, progress=progress)
    opts = _options_from(tile, overlap, blend, device, batch, ensemble, backend, memory_budget, clip)
    return _cached(model, opts)(x, progress=progress)
