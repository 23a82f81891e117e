"""MLflow tracking through ``MlflowClient`` with a local store that needs no server.

Default store: ``sqlite:///<run folder parent>/mlflow.db`` (or ``tracking.uri``,
or the ``MLFLOW_TRACKING_URI`` environment variable); artefacts of a new
experiment go to ``<run folder parent>/mlartifacts``. The run id is kept in
``<run>/mlflow_run.json`` so that a resumed training continues the same MLflow
run. Browse with ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``
(full ``mlflow`` package).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from restorekit.errors import ConfigError
from restorekit.utils.atomic import atomic_write_json

RUN_FILE = "mlflow_run.json"


def default_tracking_uri(run_dir: Path, uri: str | None = None) -> str:
    """``uri`` if set, else ``$MLFLOW_TRACKING_URI`` if set, else sqlite beside the run folder."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    return f"sqlite:///{Path(run_dir).resolve().parent / 'mlflow.db'}"


class Tracker:
    """One MLflow run for one run folder (rank 0 only)."""

    def __init__(self, run_dir: Path, *, uri: str | None, experiment: str, run_name: str, tags: dict[str, str] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.uri = default_tracking_uri(self.run_dir, uri)
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.run_id: str | None = None
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        art = None
        if self.uri.startswith("sqlite:"):
            art = (self.run_dir.resolve().parent / "mlartifacts").as_uri()
        return self.client.create_experiment(self.experiment, artifact_location=art)

    def start(self, params: dict[str, str]) -> tuple[str, bool]:
        """Open the run recorded in the run folder (resumed) or create one; returns (run_id, resumed)."""
        rec = self.run_dir / RUN_FILE
        try:
            if rec.is_file():
                info = json.loads(rec.read_text())
                if info.get("tracking_uri") == self.uri:
                    run = self.client.get_run(info["run_id"])
                    self.run_id = run.info.run_id
                    self.client.update_run(self.run_id, status="RUNNING")
                    return self.run_id, True
            exp_id = self._experiment_id()
            run = self.client.create_run(exp_id, run_name=self.run_name, tags=self.tags)
        except Exception as exc:  # noqa: BLE001 - any store problem is a configuration problem
            raise ConfigError(f"tracking.uri: cannot use MLflow store '{self.uri}': {exc}") from exc
        self.run_id = run.info.run_id
        atomic_write_json(rec, {"run_id": self.run_id, "tracking_uri": self.uri, "experiment": self.experiment})
        self.log_params(params)
        return self.run_id, False

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:250], str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, int(step)) for k, v in metrics.items() if v is not None]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def logged_steps(self, key: str) -> set[int]:
        """Steps at which metric ``key`` was logged in this run."""
        return {m.step for m in self.client.get_metric_history(self.run_id, key)}

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def register_model(self, name: str, artifact_path: str) -> str:
        """Register ``runs:/<run>/<artifact_path>`` under ``name`` in the model registry; returns the version."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException:
            pass  # already exists
        run = self.client.get_run(self.run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
        mv = self.client.create_model_version(name, source=source, run_id=self.run_id)
        return str(mv.version)

    def adopt(self, run_folder: str | Path) -> str | None:
        """Nest the run recorded in ``<run_folder>/mlflow_run.json`` (same store) under this run; its id or None."""
        rec = Path(run_folder) / RUN_FILE
        if self.run_id is None or not rec.is_file():
            return None
        try:
            info = json.loads(rec.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if info.get("tracking_uri") != self.uri or info.get("run_id") == self.run_id:
            return None
        self.client.set_tag(info["run_id"], "mlflow.parentRunId", self.run_id)
        return str(info["run_id"])

    def end(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)


def open_parent_run(folder: Path, *, uri: str | None, experiment: str, run_name: str,
                    tags: dict[str, str] | None = None) -> Tracker:
    """The parent MLflow run of a multi-stage job (distillation: teacher and student runs nest under it).

    Kept in ``<folder>/mlflow_run.json`` like a training run, so a resumed job reuses it. Child runs
    carry the tag ``mlflow.parentRunId`` (pass :func:`child_tags` to their ``tracking.tags``).
    """
    tracker = Tracker(Path(folder), uri=uri, experiment=experiment, run_name=run_name, tags=tags)
    tracker.start({})
    return tracker


def child_tags(parent_run_id: str | None) -> dict[str, str]:
    """Tags that make a run a child of ``parent_run_id`` in the MLflow UI (empty when None)."""
    return {"mlflow.parentRunId": parent_run_id} if parent_run_id else {}


def evaluation_metrics(result: dict[str, Any], prefix: str = "eval") -> dict[str, float]:
    """Flatten a ``restorekit.evaluation`` result to MLflow metrics ``{prefix}_{method}_{metric}`` (finite means),
    plus ``{prefix}_gain_over_input_db`` / ``{prefix}_gain_over_best_baseline_db`` when present."""
    import math

    out: dict[str, float] = {}
    for method, row in (result.get("methods") or {}).items():
        for metric, value in (row.get("mean") or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                key = "".join(c if c.isalnum() or c in "_-." else "_" for c in f"{prefix}_{method}_{metric}")
                out[key] = float(value)
    gain = result.get("gain_db") or {}
    for k in ("over_input", "over_best_baseline"):
        v = gain.get(k)
        if isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[f"{prefix}_gain_{k}_db"] = float(v)
    return out


def log_evaluation(run_id: str, result: dict[str, Any], *, uri: str | None = None, run_dir: str | Path = ".",
                   files: list[str | Path] | None = None, prefix: str = "eval") -> dict[str, float]:
    """Log an evaluation result (``restorekit eval``) to the existing MLflow run ``run_id``.

    Metrics from :func:`evaluation_metrics`, the tag ``restorekit.eval.count``, and ``files`` (the
    report JSON/Markdown/CSV) as artefacts under ``evaluation/``. ``uri`` as :func:`default_tracking_uri`
    (``run_dir`` locates the default sqlite store). Raises :class:`ConfigError` naming ``--mlflow-run``
    when the run does not exist in that store. Returns the logged metrics.
    """
    tracker = Tracker(Path(run_dir), uri=uri, experiment="", run_name="")
    try:
        run = tracker.client.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - unknown id, bad store
        raise ConfigError(f"--mlflow-run: no MLflow run '{run_id}' in store '{tracker.uri}' ({exc})") from None
    tracker.run_id = run.info.run_id
    metrics = evaluation_metrics(result, prefix)
    tracker.log_metrics(metrics, step=0)
    tracker.client.set_tag(tracker.run_id, f"restorekit.{prefix}.count", str(result.get("count", "")))
    for f in files or []:
        if Path(f).is_file():
            tracker.log_artifact(f, "evaluation")
    return metrics
