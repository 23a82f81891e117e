"""Distillation loss: L1(target) + lambda_kd L1(teacher) + lambda_perc Perceptual, and feature distillation."""

from __future__ import annotations

import pytest
import torch

from restorekit.distill.config import DistillSection, default_loss_terms
from restorekit.distill.features import FeaturePair, FeatureTerms, probe_channels
from restorekit.errors import ConfigError
from restorekit.losses import build_loss
from restorekit.models import create_model


def _photos(photo, size=64):
    tgt = torch.from_numpy(photo("astronaut", size)).permute(2, 0, 1)[None]
    inp = torch.from_numpy(photo("coffee", size)).permute(2, 0, 1)[None]
    return tgt, inp


def test_default_terms_follow_reference_weights() -> None:
    terms = default_loss_terms(DistillSection())
    assert [(t["name"], t["weight"], t.get("target", "target")) for t in terms] == [
        ("l1", 1.0, "target"), ("kd_output", 1.0, "teacher"), ("perceptual", 0.1, "teacher")]
    assert terms[2]["args"] == {"network": "vgg16", "layers": ["relu2_2"]}
    terms = default_loss_terms(DistillSection(lambda_perc=0.0, lambda_kd=0.5, perceptual_target="target"))
    assert [(t["name"], t["weight"]) for t in terms] == [("l1", 1.0), ("kd_output", 0.5)]
    with pytest.raises(ConfigError):
        default_loss_terms(DistillSection(lambda_l1=0, lambda_kd=0, lambda_perc=0))


def test_total_is_the_weighted_sum_on_real_images(photo) -> None:
    torch.manual_seed(0)
    target, pred = _photos(photo)
    teacher = (0.7 * target + 0.3 * pred).clamp(0, 1)
    section = DistillSection(lambda_kd=0.5, lambda_perc=0.1, perceptual_args={"network": "vgg16", "layers": ["relu2_2"], "weights": "random"})
    loss = build_loss(default_loss_terms(section))
    total, parts = loss(pred, target, teacher=teacher)
    l1 = (pred - target).abs().mean()
    kd = (pred - teacher).abs().mean()
    assert torch.allclose(parts["l1"], l1) and torch.allclose(parts["kd_output"], kd)
    perc = parts["perceptual@teacher"]
    assert perc > 0
    assert torch.allclose(total, l1 + 0.5 * kd + 0.1 * perc, rtol=1e-5)
    # the perceptual term really compares with the teacher: equal to it -> zero perceptual and kd
    _, parts_t = loss(teacher, target, teacher=teacher)
    assert float(parts_t["kd_output"]) == 0.0 and float(parts_t["perceptual@teacher"]) == pytest.approx(0.0, abs=1e-7)
    # and with perceptual_target=target it compares with the ground truth instead
    section_t = section.model_copy(update={"perceptual_target": "target"})
    _, parts_g = build_loss(default_loss_terms(section_t))(target, target, teacher=teacher)
    assert float(parts_g["perceptual"]) == pytest.approx(0.0, abs=1e-7) and float(parts_g["kd_output"]) > 0


def test_feature_distillation_adapter_trains_student_not_teacher(photo) -> None:
    torch.manual_seed(0)
    student = create_model("student_unet", base_filters=8, depth=3)
    teacher = create_model("nafnet", width=8, enc_blk_nums=[1, 1, 1, 1], middle_blk_num=1, dec_blk_nums=[1, 1, 1, 1]).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    pairs = [FeaturePair("enc2", "encoders.1", 1.0), FeaturePair("bottleneck", "middle_blks", 0.5)]
    assert probe_channels(student, teacher, pairs) == [(16, 16), (64, 128)]
    feats = FeatureTerms(student, teacher, pairs)
    assert [tuple(t.adapter.weight.shape[:2]) for t in feats.terms] == [(16, 16), (128, 64)]
    _, x = _photos(photo, 32)
    with torch.no_grad():
        teacher(x)
    student(x)
    assert feats.ready()
    total, parts = feats()
    assert set(parts) == {"feat_enc2", "feat_bottleneck"}
    assert torch.allclose(total, parts["feat_enc2"] + 0.5 * parts["feat_bottleneck"])
    total.backward()
    assert student.enc2.block[0].weight.grad is not None and student.enc2.block[0].weight.grad.abs().sum() > 0
    assert feats.terms[0].adapter.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    # a few adapter+student steps on one real image reduce the feature distance
    opt = torch.optim.Adam(list(student.parameters()) + list(feats.parameters()), 1e-3)
    first = float(total.detach())
    for _ in range(5):
        with torch.no_grad():
            teacher(x)
        student(x)
        t, _ = feats()
        opt.zero_grad()
        t.backward()
        opt.step()
    assert float(t.detach()) < first
    feats.remove()
    with pytest.raises(ConfigError, match="not found"):
        FeatureTerms(student, teacher, [FeaturePair("nope", "encoders.1")])
