"""The run's MLflow pyfunc model (issue #17): any-size images through mlflow.pyfunc, registry, serving."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata
from skimage.transform import resize

from restorekit.training.config import parse_run_config
from restorekit.training.engine import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # noqa: ANN001, ANN201
    from tests.training.conftest import TINY
    import copy

    raw = copy.deepcopy(TINY)
    raw["train"].update({"epochs": 1, "checkpoint": {"every_n_epochs": 0}})
    raw["trainer"]["log_every_n_steps"] = 1
    raw["tracking"]["registered_model_name"] = "tiny-pyfunc"
    root = tmp_path_factory.mktemp("mlf")
    res = train(parse_run_config(raw), root / "runs" / "tiny")
    uri = json.loads((res.run_dir / "mlflow_run.json").read_text())["tracking_uri"]
    return res, uri


def _photo(h: int = 45, w: int = 67) -> np.ndarray:
    img = resize(skdata.coffee(), (h, w), anti_aliasing=True).astype(np.float32)
    return np.clip(img + np.random.default_rng(0).normal(0, 0.05, img.shape), 0, 1).astype(np.float32)


def test_pyfunc_model_restores_any_size_and_is_registered(trained) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from restorekit.inference.restorer import load_restorer

    res, uri = trained
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{res.mlflow_run_id}/model")
        spec = model.metadata.get_input_schema().inputs[0]
        assert tuple(spec.shape) == (-1, -1, -1, 3) and spec.type == np.dtype(np.float32)
        x = _photo()
        out = model.predict(x[None])
        assert out.shape == (1, 45, 67, 3) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        # the same numbers as restoring with the run's package directly
        ref = load_restorer(res.package).restore_image(x)
        np.testing.assert_allclose(out[0], ref, atol=1e-5)
        # another size in the same call-less model: 33x20
        assert model.predict(_photo(33, 20)[None]).shape == (1, 33, 20, 3)
        client = MlflowClient(tracking_uri=uri)
        files = {a.path for a in client.list_artifacts(res.mlflow_run_id, "model")}
        assert {"model/MLmodel", "model/input_example.json", "model/requirements.txt"} <= files
        reqs = mlflow.pyfunc.get_model_dependencies(f"runs:/{res.mlflow_run_id}/model")
        assert any(line.startswith("torch==") for line in Path(reqs).read_text().splitlines())
        versions = client.search_model_versions("name='tiny-pyfunc'")
        assert [v.run_id for v in versions] == [res.mlflow_run_id]
        assert res.final_metrics["registered_model"] == {"name": "tiny-pyfunc", "version": str(versions[0].version)}
        # per-step loss every trainer.log_every_n_steps (=1) optimizer steps
        steps = [m.step for m in client.get_metric_history(res.mlflow_run_id, "train_loss_step")]
        assert steps == list(range(1, res.global_step + 1))
    finally:
        mlflow.set_tracking_uri(None)


def test_log_evaluation_to_the_training_run(trained, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from restorekit.evaluation.runner import evaluate_samples
    from restorekit.evaluation.sources import iterable_samples
    from restorekit.inference.restorer import load_restorer
    from restorekit.training.tracking import log_evaluation

    res, uri = trained
    restorer = load_restorer(res.package)
    x = _photo()
    clean = resize(skdata.coffee(), (45, 67), anti_aliasing=True).astype(np.float32)
    n, samples = iterable_samples([{"name": "coffee", "input": x, "target": clean}])
    result = evaluate_samples(samples, model_fn=lambda s: restorer.restore_image(s.input), total=n)
    report = tmp_path / "eval.json"
    report.write_text(json.dumps({"mean": result["mean"]}))
    metrics = log_evaluation(res.mlflow_run_id, result, uri=uri, files=[report])
    run = MlflowClient(tracking_uri=uri).get_run(res.mlflow_run_id)
    assert run.data.metrics["eval_model_psnr"] == pytest.approx(result["methods"]["model"]["mean"]["psnr"])
    assert metrics["eval_input_psnr"] == pytest.approx(result["methods"]["input"]["mean"]["psnr"])
    from restorekit.errors import ConfigError

    with pytest.raises(ConfigError, match="--mlflow-run"):
        log_evaluation("0" * 32, result, uri=uri)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_one_request(trained) -> None:
    res, uri = trained
    port = _free_port()
    # the scoring server runs `uvicorn` from PATH: the venv's bin folder
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow_cli), "models", "serve", "-m", f"runs:/{res.mlflow_run_id}/model", "--env-manager",
                             "local", "-p", str(port), "-h", "127.0.0.1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        x = _photo(20, 31)
        body = json.dumps({"inputs": x[None].tolist()}).encode()
        deadline, answer = time.time() + 180, None
        while time.time() < deadline and proc.poll() is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                             headers={"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(req, timeout=30).read())
                break
            except OSError:
                time.sleep(0.5)
        assert answer is not None, proc.stdout.read() if proc.poll() is not None else "server did not answer"
        pred = np.asarray(answer["predictions"], dtype=np.float32)
        assert pred.shape == (1, 20, 31, 3) and 0.0 <= pred.min() and pred.max() <= 1.0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
