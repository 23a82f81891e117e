"""Config plumbing: YAML loading, overrides, validation errors that name the key."""

from __future__ import annotations

import pytest

from restorekit.config.base import StrictModel, apply_overrides, load_yaml, validate_config
from restorekit.errors import ConfigError


class Optim(StrictModel):
    lr: float = 1e-3
    betas: list[float] = [0.9, 0.999]


class Cfg(StrictModel):
    name: str = "run"
    epochs: int = 10
    optim: Optim = Optim()


def test_load_yaml_and_validate(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nepochs: 3\noptim:\n  lr: 2.0e-4\n")
    cfg = validate_config(Cfg, load_yaml(p), str(p))
    assert cfg.name == "x" and cfg.epochs == 3 and cfg.optim.lr == pytest.approx(2e-4)


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown key"):
        validate_config(Cfg, {"optim": {"lrr": 1.0}}, "c.yaml")


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"epochs: .*integer"):
        validate_config(Cfg, {"epochs": "many"}, "c.yaml")


def test_overrides_parse_yaml_values():
    data = apply_overrides({"optim": {"lr": 1.0}}, ["optim.lr=3e-4", "epochs=5", "optim.betas=[0.5, 0.9]", "name=abc"])
    cfg = validate_config(Cfg, data)
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.epochs == 5 and cfg.optim.betas == [0.5, 0.9] and cfg.name == "abc"


def test_override_errors():
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="'name' is not a section"):
        apply_overrides({"name": "x"}, ["name.sub=1"])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*not valid YAML"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(lst)
