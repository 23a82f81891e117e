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


def test_precision_auto_is_bf16_on_cpus_with_amx(tiny_config, monkeypatch) -> None:
    """``trainer.precision: auto``: bf16-mixed where the CPU has AMX-BF16, fp32 elsewhere; explicit values win."""
    from restorekit.training.engine import resolve_precision

    cfg = parse_run_config(tiny_config)
    monkeypatch.setenv("RESTOREKIT_CPU_BF16", "1")
    assert resolve_precision(cfg, "cpu") == "bf16-mixed"
    assert resolve_precision(cfg, "mps") == "32-true"
    monkeypatch.setenv("RESTOREKIT_CPU_BF16", "0")
    assert resolve_precision(cfg, "cpu") == "32-true"
    monkeypatch.setenv("RESTOREKIT_CPU_BF16", "1")
    tiny_config["trainer"]["precision"] = "32"
    assert resolve_precision(parse_run_config(tiny_config), "cpu") == "32-true"
    tiny_config["trainer"]["precision"] = "16-mixed"
    with pytest.raises(ConfigError, match="trainer.precision: 16-mixed needs CUDA"):
        resolve_precision(parse_run_config(tiny_config), "cpu")


def test_amx_probe_matches_the_cpu_flags(monkeypatch) -> None:
    """Without the override, the probe says what /proc/cpuinfo says about amx_bf16 (Linux)."""
    from pathlib import Path

    from restorekit.device import cpu_has_fast_bf16

    monkeypatch.delenv("RESTOREKIT_CPU_BF16", raising=False)
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    flags = next((ln.split(":", 1)[1].split() for ln in info.read_text().splitlines() if ln.startswith("flags")), [])
    assert cpu_has_fast_bf16() is ("amx_bf16" in flags and "amx_tile" in flags)


def test_losses_and_validation_stay_fp32_under_bf16_autocast(tiny_config) -> None:
    """Under bf16-mixed only the network runs in bf16: MS-SSIM + L1 of given tensors and the validation
    PSNR/SSIM of the EMA/eval network equal their fp32 values, although autocast is on around them."""
    from restorekit.data import build_datasets, collate
    from restorekit.metrics import psnr_batch, ssim_batch
    from restorekit.training.engine import build_model
    from restorekit.training.module import RestorationModule

    tiny_config["loss"] = [{"name": "l1", "weight": 1.0}, {"name": "ms_ssim", "weight": 1.0}]
    tiny_config["train"]["n_samples"] = 0  # no sample images: the module is not attached to a Trainer
    cfg = parse_run_config(tiny_config)
    torch.manual_seed(0)
    module = RestorationModule(cfg, build_model(cfg), total_steps=10)
    _, val = build_datasets(cfg.data, seed=0)
    batch = collate([val[0]])
    pred = batch["input"].clamp(0, 1) * 0.9 + 0.05
    ref, _ = module._loss(pred, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = module._loss(pred, batch)
    assert got.dtype == torch.float32
    assert abs(float(got) - float(ref)) < 1e-6, (float(got), float(ref))

    logged: dict[str, float] = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))  # type: ignore[method-assign]
    with torch.no_grad():
        out = module.predict(module.eval_model(), batch).float().clamp(0, 1)
        want_psnr = float(psnr_batch(out, batch["target"]).mean())
        want_ssim = float(ssim_batch(out, batch["target"]).mean())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            module.validation_step(batch, 0)
    assert abs(logged["val_psnr"] - want_psnr) < 1e-4, (logged["val_psnr"], want_psnr)
    assert abs(logged["val_ssim"] - want_ssim) < 1e-5, (logged["val_ssim"], want_ssim)
