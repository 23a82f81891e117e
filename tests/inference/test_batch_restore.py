"""`restorekit restore` as a batch tool: shards, manifest, safe outputs, input discovery, option validation (#17, #18)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.cli.main import main
from restorekit.inference.batch import InputFile, Job, parse_shard, read_manifest, select_shard
from restorekit.io import read_image_with_info, write_image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon")


@pytest.fixture(scope="module")
def unet(tmp_path_factory) -> Path:
    import restorekit
    from restorekit.models.package import save_package

    torch.manual_seed(0)
    m = restorekit.create_model("deblur_unet", base_ch=8).eval()
    path = tmp_path_factory.mktemp("models") / "unet.safetensors"
    save_package(m, path)
    return path


@pytest.fixture(scope="module")
def seven(tmp_path_factory, photo) -> Path:
    """A folder of 7 real photos (small crops, 3 of them grey)."""
    root = tmp_path_factory.mktemp("seven")
    for i, name in enumerate(PHOTOS):
        write_image(root / f"{i}_{name}.png", photo(name, 40))
    return root


def _restore(*args: str) -> int:
    return main(["restore", *args, "-q", "--backend", "eager", "--tile", "0"])


def test_three_shards_cover_seven_photos_once(tmp_path, seven, unet, capsys):
    out, man = tmp_path / "out", tmp_path / "manifest.jsonl"
    for k in range(3):
        assert _restore("-m", str(unet), str(seven), "--out", str(out), "--shard", f"{k}/3", "--manifest", str(man)) == 0
    rows = read_manifest(man)
    assert sorted(Path(r["input"]).name for r in rows) == sorted(p.name for p in seven.iterdir())  # each input once
    assert all(r["status"] == "ok" and r["error"] is None and r["seconds"] > 0 for r in rows)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in seven.iterdir())
    err = capsys.readouterr().err
    assert "shard 0/3: 3 of 7" in err and "shard 1/3: 2 of 7" in err and "shard 2/3: 2 of 7" in err
    # a rerun skips every finished output and says so in the manifest
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert _restore("-m", str(unet), str(seven), "--out", str(out), "--shard", "1/3", "--manifest", str(man)) == 0
    again = read_manifest(man)[len(rows):]
    assert len(again) == 2 and {r["status"] for r in again} == {"skipped"}
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_shard_selection_is_disjoint_and_stable():
    jobs = [Job(InputFile(Path(f"d/{c}.png"), Path(f"{c}.png"), False), Path(f"o/{c}.png")) for c in "gfedcba"]
    parts = [select_shard(jobs, (k, 3)) for k in range(3)]
    names = [j.item.path.name for part in parts for j in part]
    assert sorted(names) == sorted(j.item.path.name for j in jobs) and len(names) == 7
    assert [j.item.path.name for j in parts[0]] == ["a.png", "d.png", "g.png"]  # by path order, not by given order
    assert select_shard(list(reversed(jobs)), (0, 3)) == parts[0]
    for bad in ("3/3", "1/0", "a/b", "-1/3"):
        with pytest.raises(Exception, match="--shard"):
            parse_shard(bad)


def test_output_over_the_inputs_is_refused(tmp_path, photo, unet, capsys):
    write_image(tmp_path / "a.png", photo("astronaut", 32))
    original = (tmp_path / "a.png").read_bytes()
    rc = _restore("-m", str(unet), str(tmp_path), "--out", str(tmp_path), "--overwrite")
    err = capsys.readouterr().err
    assert rc == 2 and "--out" in err and "would replace the input" in err
    assert (tmp_path / "a.png").read_bytes() == original
    # with a suffix the outputs are other files: allowed
    assert _restore("-m", str(unet), str(tmp_path / "a.png"), "--out", str(tmp_path), "--suffix", "_r") == 0
    assert (tmp_path / "a_r.png").exists() and (tmp_path / "a.png").read_bytes() == original


def test_raw_file_for_an_rgb_model_fails_alone(tmp_path, photo, unet, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", photo("astronaut", 32))
    (src / "b_shot.dng").write_bytes(b"II*\0not really a raw file")
    write_image(src / "c.png", photo("coffee", 32))
    rc = _restore("-m", str(unet), str(src), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert rc == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]  # later images still done
    line = next(x for x in err.splitlines() if x.startswith("error:"))
    assert "b_shot.dng" in line and "raw" in line and "Traceback" not in err
    assert "restored 2" in err and "failed 1" in err


def test_bad_out_is_found_before_any_model_work(tmp_path, photo, capsys):
    write_image(tmp_path / "a.png", photo("astronaut", 32))
    (tmp_path / "plain").write_text("a file")
    # the model does not exist: reaching it would print a different error
    rc = _restore("-m", str(tmp_path / "missing.safetensors"), str(tmp_path / "a.png"), "--out", str(tmp_path / "plain" / "sub"))
    err = capsys.readouterr().err
    assert rc == 2 and "--out" in err and "is a file, not a folder" in err and "a.png" not in err
    if os.geteuid() != 0:  # root writes through read-only permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        rc = _restore("-m", str(tmp_path / "missing.safetensors"), str(tmp_path / "a.png"), "--out", str(ro))
        err = capsys.readouterr().err
        assert rc == 2 and "--out" in err and "not writable" in err


def _animated_gif(path: Path, photo) -> None:
    from PIL import Image

    frames = [Image.fromarray((photo(n, 32) * 255).astype(np.uint8)).convert("P") for n in ("astronaut", "coffee")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def test_every_readable_format_and_every_skip_reported(tmp_path, photo, unet, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _animated_gif(src / "anim.gif", photo)
    write_image(src / "b.bmp", photo("chelsea", 32))
    write_image(src / "UPPER.JPG", photo("rocket", 32))
    rgba = np.concatenate([photo("coffee", 32), np.full((32, 32, 1), 0.5, np.float32)], axis=2)
    from PIL import Image

    Image.fromarray((rgba * 255).astype(np.uint8), "RGBA").save(src / "alpha.png")
    (src / "notes.txt").write_text("not an image")
    (src / "gone.png").symlink_to(tmp_path / "nowhere.png")
    rc = _restore("-m", str(unet), str(src), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert rc == 1  # the broken link is an error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["UPPER.JPG", "alpha.png", "anim.png", "b.bmp"]
    assert any("notes.txt" in x and x.startswith("skipped:") and ".txt" in x for x in err.splitlines())
    assert any("gone.png" in x and x.startswith("error:") and "broken symbolic link" in x for x in err.splitlines())
    assert any("anim.gif" in x and "2 frames" in x and "frame 1" in x for x in err.splitlines())
    assert any("alpha.png" in x and "alpha channel dropped" in x for x in err.splitlines())
    first = read_image_with_info(tmp_path / "out" / "anim.png")[0]
    assert first.shape == (32, 32, 3)
    # a folder of only GIFs is restored, not "no input images found"
    only = tmp_path / "gifs"
    only.mkdir()
    _animated_gif(only / "x.gif", photo)
    assert _restore("-m", str(unet), str(only), "--out", str(tmp_path / "out2")) == 0
    assert (tmp_path / "out2" / "x.png").exists()


def test_no_inputs_says_where_and_why(tmp_path, unet, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    assert _restore("-m", str(unet), str(tmp_path / "in"), "--out", str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert f"no input images found in {tmp_path / 'in'}" in err and "a.txt" in err


@pytest.mark.parametrize("suffix", ["/../../x", "..", "a\\b", "x/y"])
def test_suffix_cannot_escape_out(tmp_path, photo, unet, capsys, suffix):
    write_image(tmp_path / "in" / "a.png", photo("astronaut", 32))
    rc = _restore("-m", str(unet), str(tmp_path / "in"), "--out", str(tmp_path / "a" / "b" / "out"), "--suffix", suffix)
    assert rc == 2 and "--suffix" in capsys.readouterr().err
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "a.png"]
    assert written == []


@pytest.mark.parametrize("flags,flag", [
    (["--quality", "-3"], "--quality"), (["--quality", "0"], "--quality"), (["--quality", "500"], "--quality"),
    (["--tile", "64", "--overlap", "64"], "--overlap"), (["--tile", "64", "--overlap", "1.5"], "--overlap"),
    (["--batch", "0"], "--batch"), (["--strength", "2"], "--strength"), (["--tile", "-1"], "--tile"),
    (["--shard", "3/3"], "--shard"), (["--device", "gpu"], "--device"), (["--blend", "box"], "--blend"),
])
def test_numeric_options_are_validated_once(tmp_path, photo, capsys, flags, flag):
    for i in range(3):
        write_image(tmp_path / f"in{i}.png", photo("astronaut", 16))
    try:
        rc = main(["restore", "-m", "deblur_unet", str(tmp_path / "in0.png"), str(tmp_path / "in1.png"),
                   str(tmp_path / "in2.png"), "--out", str(tmp_path / "out"), *flags])
    except SystemExit as exc:  # argparse type errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and flag in err
    assert "in0.png" not in err and not (tmp_path / "out").exists()  # blamed once, on the option, before any work


def test_extension_case_kept_and_fraction_overlap(tmp_path, photo, unet):
    write_image(tmp_path / "Shot.JPEG", photo("astronaut", 48))
    assert main(["restore", "-m", str(unet), str(tmp_path / "Shot.JPEG"), "--out", str(tmp_path / "o"), "-q",
                 "--tile", "32", "--overlap", "0.25", "--backend", "eager"]) == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["Shot.JPEG"]


def test_plain_and_ray_engines_share_the_plan(tmp_path, seven, unet):
    """Without Ray running, the ray engine's job rows are built from the same plan (smoke of the row format)."""
    from restorekit.inference.batch import discover_inputs, plan_jobs

    items, skipped = discover_inputs([str(seven)])
    jobs, clashes = plan_jobs(items, tmp_path, "_x", "png")
    assert not skipped and not clashes and len(jobs) == 7
    assert all(j.dest.parent == tmp_path and j.dest.name.endswith("_x.png") for j in jobs)


@pytest.mark.slow
def test_ray_engine_matches_the_plain_cli(tmp_path, seven, unet):
    ray = pytest.importorskip("ray")
    plain = tmp_path / "plain"
    assert _restore("-m", str(unet), str(seven), "--out", str(plain)) == 0
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, configure_logging=False)
    try:
        out, man = tmp_path / "ray", tmp_path / "ray.jsonl"
        assert _restore("-m", str(unet), str(seven), "--out", str(out), "--engine", "ray", "--workers", "2",
                        "--manifest", str(man)) == 0
    finally:
        ray.shutdown()
    names = sorted(p.name for p in plain.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names and len(names) == 7
    for n in names:
        a, b = read_image_with_info(plain / n)[0], read_image_with_info(out / n)[0]
        # one thread per Ray worker against two in the plain run: oneDNN's channels-last convolutions are not
        # bit-identical across thread counts, so the 8-bit outputs may differ by one level here and there
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        assert a.shape == b.shape and float(diff.max()) <= 1 / 255 + 1e-6 and float(diff.mean()) < 0.1 / 255, (n, diff.max())
    rows = read_manifest(man)
    assert sorted(Path(r["input"]).name for r in rows) == names and {r["status"] for r in rows} == {"ok"}
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    json.dumps(rows)
