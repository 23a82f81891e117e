"""Training speed defaults: memory format from the architecture's spec, trainer.compile auto."""

from __future__ import annotations

import pytest
import torch

from restorekit.errors import ConfigError
from restorekit.models.registry import create_model
from restorekit.models.spec import Capabilities, caps_of
from restorekit.training.config import parse_run_config, resolve_compile
from restorekit.training.module import wants_channels_last


def test_channels_last_auto_follows_the_spec() -> None:
    for name, kw in (("nafnet", {"width": 8, "enc_blk_nums": [1], "dec_blk_nums": [1]}), ("deblur_unet", {"base_ch": 8})):
        m = create_model(name, **kw)
        caps = caps_of(m)
        want = caps.channels_last.get("train:cpu", caps.channels_last["cpu"])
        assert wants_channels_last(m, "auto", "cpu") is bool(want)
        assert wants_channels_last(m, True, "cpu") is True and wants_channels_last(m, False, "cpu") is False


def test_training_entry_overrides_the_device_entry(monkeypatch) -> None:
    import restorekit.models.spec as spec

    m = create_model("deblur_unet", base_ch=8)
    for train_value in (True, False):
        caps = Capabilities(value_range="-1,1", channels_last={"cpu": not train_value, "train:cpu": train_value})
        monkeypatch.setattr(spec, "caps_of", lambda model, caps=caps: caps)
        assert wants_channels_last(m, "auto", "cpu") is train_value
    monkeypatch.setattr(spec, "caps_of", lambda model: Capabilities(channels_last={"cpu": True}))
    assert wants_channels_last(m, "auto", "cpu") is True  # no training entry: the device entry


def test_compile_auto_only_on_cuda() -> None:
    assert resolve_compile("auto", torch.device("cpu")) is False
    assert resolve_compile("auto", torch.device("cuda")) is True
    assert resolve_compile(True, torch.device("cpu")) is True
    assert resolve_compile(False, torch.device("cuda")) is False


def test_compile_setting_validated(tiny_config) -> None:
    assert parse_run_config(tiny_config).trainer.compile == "auto"
    tiny_config["trainer"]["compile"] = True
    assert parse_run_config(tiny_config).trainer.compile is True
    tiny_config["trainer"]["compile"] = "sometimes"
    with pytest.raises(ConfigError, match="trainer.compile"):
        parse_run_config(tiny_config)
