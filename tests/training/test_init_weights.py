"""``model.init``: fine-tuning starts from existing weights (packages or foreign checkpoints)."""

from __future__ import annotations

import pytest
import torch

from restorekit.errors import ConfigError
from restorekit.models.package import save_package
from restorekit.models.registry import create_model
from restorekit.training.config import parse_run_config
from restorekit.training.engine import build_model


def test_init_from_package_and_bare_state_dict(tmp_path, tiny_config):
    torch.manual_seed(3)
    pretrained = create_model("deblur_unet", base_ch=8)
    pkg = save_package(pretrained, tmp_path / "pre.safetensors")
    bare = tmp_path / "pre.pth"
    torch.save({"model_state_dict": pretrained.state_dict()}, bare)  # the seed's checkpoint layout
    for path in (pkg, bare):
        tiny_config["model"]["init"] = str(path)
        model = build_model(parse_run_config(tiny_config))
        for k, v in pretrained.state_dict().items():
            assert torch.equal(model.state_dict()[k], v), k
    tiny_config["model"]["init"] = None
    fresh = build_model(parse_run_config(tiny_config))
    assert not torch.equal(fresh.state_dict()["final.weight"], pretrained.state_dict()["final.weight"])


def test_init_with_other_architecture_names_the_setting(tmp_path, tiny_config):
    other = save_package(create_model("deblur_unet", base_ch=16), tmp_path / "wide.safetensors")
    tiny_config["model"]["init"] = str(other)
    with pytest.raises(ConfigError, match=r"model\.init .*wide\.safetensors"):
        build_model(parse_run_config(tiny_config))
    tiny_config["model"]["init"] = str(tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match=r"model\.init .*missing\.pth.*does not exist"):
        build_model(parse_run_config(tiny_config))
