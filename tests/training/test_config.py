"""RunConfig validation: errors name the key; overrides; every shipped config loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from restorekit.errors import ConfigError
from restorekit.training.config import RunConfig, load_run_config, parse_run_config

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_config_parses_with_defaults(tiny_config):
    cfg = parse_run_config(tiny_config)
    assert isinstance(cfg, RunConfig)
    assert cfg.data.kind == "skimage" and cfg.data.patch_size == 32
    assert cfg.loss[0].name == "charbonnier"
    assert cfg.train.early_stopping.enabled is True and cfg.train.checkpoint.every_n_epochs == 1
    assert cfg.trainer.precision == "auto"


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("train", "epochz"), 3, "train.epochz: unknown key"),
        (("optim", "lr"), "fast", "optim.lr"),
        (("train", "ema", "decay"), 1.5, "train.ema.decay"),
        (("trainer", "precision"), "fp8", "trainer.precision"),
        (("schedule", "name"), "step", "schedule.name"),
        (("tracking", "colour"), "red", "tracking.colour: unknown key"),
        (("data", "patch_sise"), 64, "patch_sise"),
    ],
)
def test_bad_key_or_type_names_the_key(tiny_config, path, value, needle):
    node = tiny_config
    for p in path[:-1]:
        node = node.setdefault(p, {})
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        parse_run_config(tiny_config, "'run.yaml'")
    assert needle in str(err.value)
    assert "run.yaml" in str(err.value)


def test_unknown_model_and_loss_are_named(tiny_config):
    bad = dict(tiny_config, model={"name": "no_such_net"})
    with pytest.raises(ConfigError, match=r"model\.name.*no_such_net"):
        parse_run_config(bad)
    bad = dict(tiny_config, loss=[{"name": "no_such_loss"}])
    with pytest.raises(ConfigError, match=r"loss\.0\.name"):
        parse_run_config(bad)


def test_progressive_stages_must_start_at_zero(tiny_config):
    tiny_config["train"]["progressive"] = {"stages": [{"at": 2, "patch_size": 32, "batch_size": 2}]}
    with pytest.raises(ConfigError, match="train.progressive.stages"):
        parse_run_config(tiny_config)


def test_overrides_from_yaml_file(tmp_path, tiny_config):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(tiny_config))
    cfg = load_run_config(p, ["optim.lr=3e-4", "train.ema.enabled=true", "data.batch_size=4", "train.progressive.stages=[{at: 0, patch_size: 32, batch_size: 2}]"])
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.train.ema.enabled is True
    assert cfg.data.batch_size == 4
    assert cfg.train.progressive.stages[0].patch_size == 32
    with pytest.raises(ConfigError, match="train.epochs"):
        load_run_config(p, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="must look like"):
        load_run_config(p, ["train.epochs"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_run_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", ["demo.yaml", "deblur-unet.yaml", "manuscript-vit.yaml"])
def test_shipped_configs_load(name):
    path = ROOT / "configs" / name
    cfg = load_run_config(path)
    assert cfg.loss and cfg.train.epochs >= 1


def test_all_shipped_configs_validate():
    """Every run config under configs/ validates (other commands' configs, e.g. distillation, have their own schema)."""
    from restorekit.models.registry import list_models

    checked = 0
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if set(raw) - set(RunConfig.model_fields):
            continue  # not a `restorekit train` config
        if raw.get("model", {}).get("name", "deblur_unet") not in list_models():
            continue  # that architecture's issue has not landed in this checkout
        load_run_config(path)
        checked += 1
    assert checked >= 3


def test_seed_recipe_values():
    cfg = load_run_config(ROOT / "configs" / "deblur-unet.yaml")
    assert cfg.model.name == "deblur_unet" and cfg.data.kind == "gopro" and cfg.data.patch_size == 256
    assert [(t.name, t.weight) for t in cfg.loss] == [("ms_ssim", 0.84), ("charbonnier", 0.16)]
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("adamw", 2e-4, 1e-4)
    assert (cfg.schedule.name, cfg.schedule.min_lr) == ("cosine", 1e-6)
    assert cfg.train.grad_clip == 1.0 and cfg.train.checkpoint.every_n_epochs == 10
    assert cfg.train.early_stopping.enabled
    vit = load_run_config(ROOT / "configs" / "manuscript-vit.yaml")
    assert vit.model.name == "vit_restorer" and vit.data.batch_size == 16 and vit.train.epochs == 100
    assert (vit.optim.lr, vit.optim.weight_decay) == (1e-4, 0.01)
    assert [(t.name, t.weight) for t in vit.loss] == [("l1", 1.0), ("perceptual", 0.1)]
