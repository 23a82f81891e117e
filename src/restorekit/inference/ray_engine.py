"""``restorekit restore --engine ray``: batch restoration on Ray Data (optional extra ``[ray]``).

The driver plans the jobs exactly as the plain engine does (:mod:`restorekit.inference.batch`:
discovery, output names, ``--shard``), builds a Ray Dataset of ``(input, output)`` rows and maps it
through :class:`RestoreActor` actors: each actor opens the model once as a
:class:`~restorekit.inference.restorer.Restorer` (one actor per GPU of the cluster, or a set CPU
share each), restores its rows with :func:`~restorekit.inference.batch.restore_job` (same reading,
raw dispatch, atomic writes as the plain CLI: identical outputs) and returns one status row per
image. The driver writes the ``--manifest`` lines and prints errors as rows come back.

Inputs and outputs must be on storage every node sees (a shared file system); on a local Ray
that is simply the local disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from restorekit.errors import ConfigError
from restorekit.inference.batch import InputFile, Job, JobResult, Manifest, WriteSettings, open_restorer, restore_job

#: object store of a local Ray started by restorekit (bytes): rows are small, images never travel
LOCAL_OBJECT_STORE = 256 * 2**20


class RestoreActor:
    """A Ray Data actor: opens the model once, restores rows of ``{input, rel, is_raw, dest}``."""

    def __init__(self, model: str, options: dict[str, Any], preset: str | None, settings: WriteSettings,
                 raw_restore: Callable[..., Any] | None, threads: int) -> None:
        import torch

        from restorekit.inference.options import RestoreOptions

        torch.set_num_threads(max(1, threads))
        self.restorer = open_restorer(model, RestoreOptions.parse(**options), preset=preset, warn=False)
        self.settings = settings
        self.raw_restore = raw_restore

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {k: [] for k in ("input", "output", "status", "seconds", "error", "notes")}
        for src, rel, is_raw, dest in zip(batch["input"], batch["rel"], batch["is_raw"], batch["dest"]):
            job = Job(InputFile(Path(str(src)), Path(str(rel)), bool(is_raw)), Path(str(dest)))
            res = restore_job(self.restorer, job, self.settings, self.raw_restore)
            cols["input"].append(res.input)
            cols["output"].append(res.output)
            cols["status"].append(res.status)
            cols["seconds"].append(float(res.seconds))
            cols["error"].append(res.error or "")
            cols["notes"].append(json.dumps(res.notes))
        return cols


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"--engine ray needs Ray Data: pip install 'restorekit[ray]' ({exc})") from None
    return ray


def run_ray(
    jobs: list[Job],
    model: str,
    options: Any,
    settings: WriteSettings,
    *,
    manifest: Manifest | None = None,
    preset: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    raw_restore: Callable[..., Any] | None = None,
    report: Callable[[JobResult], None] | None = None,
    quiet: bool = False,
) -> list[JobResult]:
    """Restore ``jobs`` on Ray Data; returns one :class:`JobResult` per job (order of completion).

    ``address``: an existing cluster (``auto``, ``ray://head:10001``); None starts a local Ray
    (or reuses the one this process already started). ``workers``: Restorer actors (default:
    one per GPU of the cluster, each holding a GPU; else 1 on CPUs). ``cpus_per_worker``: CPUs
    each actor reserves (and its torch threads).
    """
    ray = _import_ray()
    if not jobs:
        return []
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet, "configure_logging": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["object_store_memory"] = LOCAL_OBJECT_STORE
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--address {address or '(local)'}: cannot start or reach Ray ({exc})") from None
        started = True
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        use_gpu = gpus > 0 and (options.device == "auto" or options.device.startswith("cuda"))
        n = workers or (max(1, gpus) if use_gpu else 1)
        from ray.data import DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = not quiet
        rows = [{"input": str(j.item.path), "rel": str(j.item.rel), "is_raw": j.item.is_raw, "dest": str(j.dest)}
                for j in jobs]
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), max(1, 4 * n)))
        ds = ds.map_batches(
            RestoreActor,
            fn_constructor_kwargs={"model": str(model), "options": options.model_dump(), "preset": preset,
                                   "settings": settings, "raw_restore": raw_restore,
                                   "threads": int(max(1, cpus_per_worker))},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n),
            num_cpus=cpus_per_worker,
            num_gpus=1 if use_gpu and gpus else 0,
        )
        results: list[JobResult] = []
        for row in ds.iter_rows():
            res = JobResult(str(row["input"]), str(row["output"]), str(row["status"]), float(row["seconds"]),
                            str(row["error"]) or None, list(json.loads(str(row["notes"]))))
            if manifest is not None:
                manifest.record(res)
            if report is not None:
                report(res)
            results.append(res)
        return results
    finally:
        if started:  # a local Ray stops; a cluster is only disconnected from
            ray.shutdown()


__all__ = ["RestoreActor", "run_ray", "LOCAL_OBJECT_STORE"]
