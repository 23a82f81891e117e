"""`restorekit eval --mlflow-run ID` logs the evaluation to an existing MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from restorekit.cli.main import main
from restorekit.io import write_image


def test_eval_logs_metrics_and_report_to_an_existing_run(tmp_path: Path, photo, capsys) -> None:
    from mlflow.tracking import MlflowClient

    for i, n in enumerate(("astronaut", "coffee")):
        t = photo(n, 64)
        noisy = np.clip(t + np.random.default_rng(i).normal(0, 0.05, t.shape), 0, 1).astype(np.float32)
        write_image(tmp_path / "input" / f"{n}.png", noisy)
        write_image(tmp_path / "target" / f"{n}.png", t)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("eval-test")
    run_id = client.create_run(exp).info.run_id
    report = tmp_path / "eval" / "report.json"
    rc = main(["eval", "--pred", str(tmp_path / "input"), "--target", str(tmp_path / "target"), "--baselines", "none",
               "--report", str(report), "--no-images", "--mlflow-run", run_id, "--mlflow-uri", uri])
    assert rc == 0, capsys.readouterr()
    res = json.loads(report.read_text())
    logged = client.get_run(run_id).data.metrics
    psnr_keys = [k for k in logged if k.endswith("_psnr")]
    assert psnr_keys, logged
    # the logged mean is the report's mean, not something recomputed elsewhere
    method = res["primary"]
    assert abs(logged[f"eval_{method}_psnr"] - res["methods"][method]["mean"]["psnr"]) < 1e-9
    arts = [a.path for a in client.list_artifacts(run_id, "evaluation")]
    assert any(a.endswith("report.json") for a in arts)
    # an unknown run id is an error naming the option, exit 2
    assert main(["eval", "--pred", str(tmp_path / "input"), "--target", str(tmp_path / "target"), "--baselines", "none",
                 "--report", str(report), "--no-images", "--mlflow-run", "0" * 32, "--mlflow-uri", uri]) == 2
    assert "--mlflow-run" in capsys.readouterr().err
