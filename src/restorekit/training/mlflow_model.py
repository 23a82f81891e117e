"""The trained model as an MLflow **pyfunc** model (artifact path ``model`` of the training run).

What is logged (``log_pyfunc_model``)::

    model/MLmodel                  flavour python_function, signature, requirements
    model/artifacts/model.safetensors   the restorekit package (the only weights)
    model/python_model.pkl         a ``RestorerPyfunc`` (no weights inside)
    model/input_example.json       a small (1, 16, 16, 3) example
    model/requirements.txt

Signature: input and output are tensors of shape ``(-1, -1, -1, 3)`` float32,
i.e. a batch ``(N, H, W, 3)`` of RGB images in [0, 1] of *any* size (an
inferred signature would fix the example's size). ``predict`` restores each
image with :class:`restorekit.inference.restorer.Restorer` (tiling, padding to
the architecture's size multiple) and returns ``(N, H, W, 3)`` float32 in
[0, 1]. Load it anywhere restorekit is installed::

    import mlflow
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    out = model.predict(batch_hwc)            # (N, H, W, 3) float32 in [0, 1]

or serve it: ``mlflow models serve -m runs:/<id>/model --env-manager local``
(needs the full ``mlflow`` package) and post ``{"inputs": [[[[r, g, b], ...]]]}``
to ``/invocations``. Loading imports only :mod:`restorekit.inference`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import DataError

ARTIFACT_PATH = "model"
PACKAGE_KEY = "package"

try:  # mlflow-skinny is a dependency; keep the module importable for documentation tools without it
    from mlflow.pyfunc import PythonModel as _PythonModelBase
except ImportError:  # pragma: no cover
    _PythonModelBase = object  # type: ignore[assignment,misc]


def as_image_batch(model_input: Any) -> np.ndarray:
    """``model_input`` (array, nested list, or a one-column DataFrame of arrays) -> ``(N, H, W, 3)`` float32.

    A single ``(H, W, 3)`` image is promoted to a batch of one. Raises :class:`DataError`
    for other shapes or values outside [0, 1] (beyond rounding).
    """
    if hasattr(model_input, "to_numpy") and not isinstance(model_input, np.ndarray):
        model_input = model_input.to_numpy()
    x = np.asarray(model_input, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or 0 in x.shape:
        raise DataError(f"restorekit model: expected images (N, H, W, 3) RGB float32 in [0, 1], got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise DataError("restorekit model: input has NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise DataError(f"restorekit model: input values must be in [0, 1] (got {lo:.3g}..{hi:.3g}); divide 8-bit images by 255")
    return np.clip(x, 0.0, 1.0)


class RestorerPyfunc(_PythonModelBase):  # type: ignore[misc,valid-type]
    """An MLflow ``PythonModel`` wrapping a :class:`~restorekit.inference.restorer.Restorer`.

    ``options``: :class:`~restorekit.inference.options.RestoreOptions` values (tile, device, ...)
    applied when the package is loaded; validated then (a bad one is a ConfigError naming the flag).
    """

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self._restorer: Any = None

    def load_context(self, context):  # noqa: ANN001, ANN201 - no type hints: MLflow would derive a schema from them
        from restorekit.inference.restorer import load_restorer

        self._restorer = load_restorer(context.artifacts[PACKAGE_KEY], **self.options)

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - see load_context
        """Restore ``(N, H, W, 3)`` float32 [0, 1] images (any H, W); returns the same shape and range."""
        if self._restorer is None:
            self.load_context(context)
        batch = as_image_batch(model_input)
        out = [np.asarray(self._restorer.restore_image(img), dtype=np.float32) for img in batch]
        return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def any_size_signature() -> Any:
    """``(-1, -1, -1, 3)`` float32 tensor in and out: batches of RGB images of any size."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    spec = TensorSpec(np.dtype(np.float32), (-1, -1, -1, 3))
    return ModelSignature(inputs=Schema([spec]), outputs=Schema([spec]))


def pip_requirements() -> list[str]:
    """What a fresh environment needs to load the model (versions of this environment)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for name in ("restorekit", "torch", "numpy", "safetensors", "mlflow-skinny", "pydantic", "pyyaml", "scikit-image"):
        try:
            reqs.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            reqs.append(name)
    return reqs


def input_example(size: int = 16) -> np.ndarray:
    """A deterministic ``(1, size, size, 3)`` float32 example in [0, 1] (a colour ramp)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    return np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)[None].astype(np.float32)


def save_pyfunc_model(package: str | Path, path: str | Path, *, options: dict[str, Any] | None = None) -> Path:
    """Write the pyfunc model folder for ``package`` at ``path`` (which must not exist)."""
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=RestorerPyfunc(options),
        artifacts={PACKAGE_KEY: str(package)},
        signature=any_size_signature(),
        input_example=input_example(),
        pip_requirements=pip_requirements(),
    )
    return Path(path)


def log_pyfunc_model(tracker: Any, package: str | Path, *, registered_model_name: str | None = None,
                     options: dict[str, Any] | None = None) -> str | None:
    """Log ``package`` as a pyfunc model at ``model/`` of ``tracker``'s run; register it when a name is given.

    Returns the registered version (or None). ``tracker`` is a :class:`~restorekit.training.tracking.Tracker`.
    """
    with tempfile.TemporaryDirectory(prefix="restorekit-mlflow-") as tmp:
        folder = save_pyfunc_model(package, Path(tmp) / ARTIFACT_PATH, options=options)
        tracker.client.log_artifacts(tracker.run_id, str(folder), ARTIFACT_PATH)
    if registered_model_name:
        return tracker.register_model(registered_model_name, ARTIFACT_PATH)
    return None
