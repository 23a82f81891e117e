"""``tracking.metric_aliases``: the seeds' MLflow names (``epoch_psnr``/``epoch_ssim``) logged beside restorekit's."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorekit.errors import ConfigError
from restorekit.training.config import config_to_dict, flatten_config, load_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["deblur-unet", "manuscript-vit", "raw-nafnet-cond"])
def test_seed_configs_ask_for_the_seed_names(name):
    cfg = load_run_config(CONFIGS / f"{name}.yaml")
    assert cfg.tracking.metric_aliases == {"val_psnr": "epoch_psnr", "val_ssim": "epoch_ssim"}


def test_distill_seed_config_asks_for_the_seed_names():
    from restorekit.distill.config import load_distill_config

    cfg = load_distill_config(CONFIGS / "distill-restormer-unet.yaml")
    assert cfg.student.tracking.metric_aliases == {"val_psnr": "epoch_psnr", "val_ssim": "epoch_ssim"}


def test_bad_aliases_are_named():
    with pytest.raises(ConfigError, match="metric_aliases"):
        load_run_config(CONFIGS / "deblur-unet.yaml", ["tracking.metric_aliases={val_psrn: epoch_psnr}"])
    with pytest.raises(ConfigError, match="share an alias"):
        load_run_config(CONFIGS / "deblur-unet.yaml", ["tracking.metric_aliases={val_psnr: x, val_ssim: x}"])
    with pytest.raises(ConfigError, match="new MLflow metric name"):
        load_run_config(CONFIGS / "deblur-unet.yaml", ["tracking.metric_aliases={val_psnr: val_ssim}"])


def test_recorder_logs_aliases_to_a_real_mlflow_store(tmp_path):
    from mlflow.tracking import MlflowClient

    from restorekit.training.callbacks import RunRecorder
    from restorekit.training.tracking import Tracker

    cfg = load_run_config(CONFIGS / "deblur-unet.yaml")
    params = flatten_config(config_to_dict(cfg))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(tmp_path / "run", uri=uri, experiment="aliases", run_name="r")
    recorder = RunRecorder(tmp_path / "run", tracker=tracker, params=params)
    run_id, _ = tracker.start(params)
    for epoch, (psnr, ssim) in enumerate([(21.5, 0.61), (23.25, 0.7)]):
        entry = {"epoch": epoch, "train_loss": 0.3 - 0.1 * epoch, "val_psnr": psnr, "val_ssim": ssim, "lr": 2e-4}
        tracker.log_metrics(recorder._metric_items(entry), step=epoch)
    tracker.end()
    client = MlflowClient(tracking_uri=uri)
    for name, expect in (("epoch_psnr", [21.5, 23.25]), ("val_psnr", [21.5, 23.25]), ("epoch_ssim", [0.61, 0.7])):
        hist = sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)
        assert [m.value for m in hist] == pytest.approx(expect) and [m.step for m in hist] == [0, 1]
    # a config without aliases logs only restorekit's names
    plain = RunRecorder(tmp_path / "p", tracker=None, params=flatten_config(config_to_dict(
        load_run_config(CONFIGS / "deblur-unet.yaml", ["tracking.metric_aliases={}"]))))
    assert set(plain._metric_items({"val_psnr": 20.0, "val_ssim": 0.5})) == {"val_psnr", "val_ssim"}
