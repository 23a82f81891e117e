"""Batch restoration shared by the plain and the Ray engine of ``restorekit restore``.

* :func:`discover_inputs`: files, folders and globs -> :class:`InputFile` items (image and raw
  files), plus a reason for every file left out (not an image, hidden, broken symbolic link);
* :func:`check_out_dir`: ``--out`` is a writable folder, checked before any model work;
* :func:`plan_jobs`: one output path per input (``--suffix``/``--format``, names sanitised, never
  outside ``--out``, never over an input);
* :func:`parse_shard` / :func:`select_shard`: ``--shard K/N``, a deterministic disjoint share;
* :class:`Manifest`: ``--manifest FILE.jsonl``, one JSON line per finished image;
* :func:`restore_job`: restore one input into its output (atomic write) -> :class:`JobResult`.

This module reads image files and writes outputs; it never imports the raw package (raw files are
restored through a callable the caller passes, see :func:`restore_job`).
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from restorekit.errors import ConfigError, RestoreKitError
from restorekit.io.image import IMAGE_EXTENSIONS
from restorekit.utils.atomic import check_writable_folder

#: camera raw extensions (lower case) restored by raw models
RAW_SUFFIXES = (".dng", ".nef", ".cr2", ".cr3", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw", ".nrw", ".raw",
                ".3fr", ".iiq", ".rwl", ".erf", ".kdc", ".mrw", ".x3f")
#: extensions ``write_image`` writes (an input in another format is written as PNG)
WRITABLE_SUFFIXES = tuple(sorted(IMAGE_EXTENSIONS - {".gif", ".avif"}))
#: ``--format`` choices -> output extension (None: keep the input's)
FORMATS: dict[str, str | None] = {"keep": None, "png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "tif": ".tif",
                                  "tiff": ".tiff", "webp": ".webp", "bmp": ".bmp"}
#: raw model inputs: a model whose ``caps.inputs`` contain this restores raw files
RAW_INPUT = "rggb"


@dataclass(frozen=True)
class InputFile:
    """One input: its path, the output path relative to ``--out`` (without suffix/format), raw or not."""

    path: Path
    rel: Path
    is_raw: bool


@dataclass(frozen=True)
class Skipped:
    """A file left out of the run and why (``failed``: counts as an error, e.g. a broken link)."""

    path: str
    reason: str
    failed: bool = False


@dataclass(frozen=True)
class Job:
    """An input and the output it is restored into."""

    item: InputFile
    dest: Path


@dataclass
class JobResult:
    """What happened to one job: ``status`` ``ok``, ``skipped`` (output exists) or ``failed``."""

    input: str
    output: str
    status: str
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def manifest_row(self) -> dict[str, Any]:
        """The manifest line: input, output, seconds, status, error."""
        return {"input": self.input, "output": self.output, "seconds": round(self.seconds, 4), "status": self.status,
                "error": self.error}


@dataclass(frozen=True)
class WriteSettings:
    """How outputs are written and raw files restored (picklable: sent to Ray actors)."""

    quality: int = 95
    overwrite: bool = False
    iso: int | str = "auto"


# ----------------------------------------------------------------------------- discovery


def _kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in RAW_SUFFIXES:
        return "raw"
    return None


def _scan_folder(folder: Path, recursive: bool) -> tuple[list[InputFile], list[Skipped]]:
    found: list[InputFile] = []
    skipped: list[Skipped] = []
    entries = sorted(folder.rglob("*") if recursive else folder.iterdir())
    for f in entries:
        rel = f.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            if not f.is_dir():
                skipped.append(Skipped(str(f), "hidden file"))
            continue
        if f.is_symlink() and not f.exists():
            skipped.append(Skipped(str(f), f"broken symbolic link (target '{os.readlink(f)}' does not exist)", True))
            continue
        if f.is_dir():
            if not recursive:
                skipped.append(Skipped(str(f), "sub-folder (use --recursive)"))
            continue
        if not f.is_file():
            skipped.append(Skipped(str(f), "not a regular file"))
            continue
        kind = _kind(f)
        if kind is None:
            skipped.append(Skipped(str(f), f"not an image or raw file (extension '{f.suffix or '(none)'}')"))
            continue
        found.append(InputFile(f, rel, kind == "raw"))
    return found, skipped


def discover_inputs(items: list[str], recursive: bool = False) -> tuple[list[InputFile], list[Skipped]]:
    """Expand files, folders and globs into inputs (sorted per item, duplicates removed) and skipped files.

    Folders give their image (:data:`~restorekit.io.IMAGE_EXTENSIONS`) and raw files; every
    other entry is listed with its reason. Explicit files are taken whatever their extension (an
    unreadable one fails when read). Missing inputs and unmatched patterns are failed entries.
    """
    found: list[InputFile] = []
    skipped: list[Skipped] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            f, s = _scan_folder(p, recursive)
            found.extend(f)
            skipped.extend(s)
        elif p.is_symlink() and not p.exists():
            skipped.append(Skipped(item, f"broken symbolic link (target '{os.readlink(p)}' does not exist)", True))
        elif p.exists():
            found.append(InputFile(p, Path(p.name), _kind(p) == "raw"))
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                skipped.append(Skipped(item, "no file matches this pattern", True))
            for m in matches:
                if m.is_dir():
                    continue
                if _kind(m) is None:
                    skipped.append(Skipped(str(m), f"not an image or raw file (extension '{m.suffix or '(none)'}')"))
                elif m.is_symlink() and not m.exists():
                    skipped.append(Skipped(str(m), "broken symbolic link", True))
                else:
                    found.append(InputFile(m, Path(m.name), _kind(m) == "raw"))
        else:
            skipped.append(Skipped(item, "file does not exist", True))
    seen: set[Path] = set()
    unique: list[InputFile] = []
    for it in found:
        key = it.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(it)
    return unique, skipped


# ----------------------------------------------------------------------------- sharding


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (0 <= K < N, e.g. ``$SLURM_ARRAY_TASK_ID/3``) -> ``(K, N)``; None -> None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise ConfigError(f"--shard must be K/N with 0 <= K < N (e.g. 0/4), got {text!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"--shard {text}: K counts from 0 and must be smaller than N (shards 0/{max(n, 1)} .. "
                          f"{max(n, 1) - 1}/{max(n, 1)}), got K={k}, N={n}")
    return k, n


def select_shard(jobs: list[Job], shard: tuple[int, int] | None) -> list[Job]:
    """The jobs of shard ``(K, N)``: every N-th job in the stable order of the input paths, from the K-th.

    The N shards are disjoint and together cover every job, whatever the machine.
    """
    if shard is None:
        return list(jobs)
    k, n = shard
    order = sorted(jobs, key=lambda j: (j.item.path.as_posix(), j.dest.as_posix()))
    return [j for i, j in enumerate(order) if i % n == k]


# ----------------------------------------------------------------------------- outputs


def check_suffix(suffix: str) -> str:
    """``--suffix`` as given, refused when it could leave the output folder or make an unusable name."""
    if any(ch in suffix for ch in ("/", "\\", "\0")) or ".." in suffix or any(ord(ch) < 32 for ch in suffix):
        raise ConfigError(f"--suffix {suffix!r}: must not contain '/', '\\', '..' or control characters "
                          "(it is appended to each file name)")
    if len(suffix) > 100:
        raise ConfigError(f"--suffix is {len(suffix)} characters long; keep it under 100")
    return suffix


def _safe_part(part: str) -> str:
    """A file-name component without separators or control characters (``..`` becomes ``_``)."""
    clean = "".join("_" if ord(ch) < 32 or ch in "/\\" else ch for ch in part)
    return "_" if clean in ("", ".", "..") else clean


def output_path(item: InputFile, out_dir: Path, suffix: str, fmt: str) -> Path:
    """``out_dir / rel`` with ``suffix`` on the stem and the output extension (the input's, case kept).

    Raw inputs give ``.tif``; an input whose format is not writable (GIF, AVIF...) gives ``.png``.
    Raises ConfigError when the path would fall outside ``out_dir``.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(sorted(FORMATS))}, got {fmt!r}")
    ext = FORMATS[fmt]
    if ext is None:
        ext = ".tif" if item.is_raw else item.path.suffix
        if ext.lower() not in WRITABLE_SUFFIXES:
            ext = ".png"
    parts = [_safe_part(p) for p in item.rel.parent.parts]
    stem = _safe_part(item.rel.stem if item.rel.suffix else item.rel.name)
    dest = out_dir.joinpath(*parts, f"{stem}{suffix}{ext}")
    root = out_dir.resolve()
    if not dest.resolve().is_relative_to(root):
        raise ConfigError(f"--out: the output for '{item.path}' would be written outside '{out_dir}' ({dest})")
    return dest


def check_out_dir(out: str | Path) -> Path:
    """Create ``--out`` and check that a file can be written in it; ConfigError naming ``--out`` if not."""
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out '{out_dir}' exists and is not a folder")
    return check_writable_folder(out_dir, "--out")


def plan_jobs(items: list[InputFile], out_dir: Path, suffix: str, fmt: str) -> tuple[list[Job], list[Skipped]]:
    """One :class:`Job` per input; two inputs with the same output make the second a failed entry.

    Raises ConfigError (naming ``--out``) when an output would replace an input file.
    """
    check_suffix(suffix)
    inputs = {it.path.resolve(): it for it in items}
    jobs: list[Job] = []
    failed: list[Skipped] = []
    planned: dict[Path, Path] = {}
    for it in items:
        dest = output_path(it, out_dir, suffix, fmt)
        key = dest.resolve()
        if key in inputs:
            raise ConfigError(f"--out '{out_dir}': the output '{dest}' would replace the input '{inputs[key].path}'; "
                              "choose another --out folder or a --suffix")
        if key in planned:
            failed.append(Skipped(str(it.path), f"its output {dest} is also the output of {planned[key]} "
                                                f"(use --suffix or --format)", True))
            continue
        planned[key] = it.path
        jobs.append(Job(it, dest))
    return jobs, failed


# ----------------------------------------------------------------------------- manifest


class Manifest:
    """``--manifest FILE.jsonl``: appends one JSON line per finished image (several shards may share it).

    Each line is written with one ``write`` on a file opened in append mode and flushed to disk,
    so lines from concurrent processes on one machine do not interleave.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is None:
            return
        if self.path.exists() and self.path.is_dir():
            raise ConfigError(f"--manifest '{self.path}' is a folder; give a .jsonl file")
        for parent in self.path.parents:
            if parent.exists() and not parent.is_dir():
                raise ConfigError(f"--manifest '{self.path}': '{parent}' is a file, not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise ConfigError(f"--manifest '{self.path}' cannot be written ({exc.strerror or exc})") from None

    def record(self, result: JobResult) -> None:
        """Append ``result``'s manifest line (no-op without a manifest)."""
        if self.path is None:
            return
        line = json.dumps(result.manifest_row(), ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a manifest file (blank lines ignored)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------- restoring


def open_restorer(model: str, options: Any, preset: str | None = None, warn: bool = True) -> Any:
    """A :class:`~restorekit.inference.restorer.Restorer` for ``--model``: a model file, or a registry
    name (UNTRAINED weights, seeded so that every process builds the same ones)."""
    import torch

    from restorekit.inference.restorer import Restorer, load_restorer
    from restorekit.models.registry import create_model, list_models

    p = Path(model)
    if p.exists():
        return load_restorer(p, options=options)
    if model in list_models():
        if warn:
            print(f"warning: '{model}' is an architecture name: restoring with UNTRAINED random weights", file=sys.stderr)
        torch.manual_seed(0)
        return Restorer.from_module(create_model(model, preset=preset).eval(), options)
    raise ConfigError(f"--model '{model}': no such file and not a registered architecture ({', '.join(list_models())})")


RawRestore = Callable[..., Any]


def _input_notes(path: Path, info: Any) -> list[str]:
    """What was changed without the user asking: alpha dropped, grey made RGB, one frame of many."""
    notes = []
    try:
        from PIL import Image

        with Image.open(path) as im:
            frames = int(getattr(im, "n_frames", 1) or 1)
        if frames > 1:
            notes.append(f"animated/multi-frame image ({frames} frames): frame 1 was restored")
    except Exception:  # noqa: BLE001 - the image was decoded already; the frame count is informative only
        pass
    if info.has_alpha:
        notes.append("alpha channel dropped: the output is RGB without transparency")
    if info.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        notes.append(f"grey image (mode {info.mode}) restored as RGB; the output has 3 channels")
    return notes


def restore_job(restorer: Any, job: Job, settings: WriteSettings, raw_restore: RawRestore | None = None) -> JobResult:
    """Restore ``job.item`` into ``job.dest`` (atomic); errors become a failed :class:`JobResult`.

    RGB images go through ``restorer.restore_image``; raw files through
    ``raw_restore(restorer, src, dest, iso=...)`` (``restorekit.raw.restore.restore_raw_file``)
    when the model takes raw inputs (``restorer.caps.inputs``).
    """
    from restorekit.io.image import read_image_with_info, write_image

    src, dest = job.item.path, job.dest
    res = JobResult(str(src), str(dest), "ok")
    if dest.exists() and not settings.overwrite:
        res.status = "skipped"
        return res
    t0 = time.perf_counter()
    caps = restorer.caps
    try:
        if job.item.is_raw:
            if RAW_INPUT not in caps.inputs:
                raise ConfigError(f"a camera raw file, but model '{restorer.arch}' restores RGB images "
                                  f"(inputs {list(caps.inputs)}); use a raw model such as a noise-conditioned one")
            if raw_restore is None:
                raise ConfigError("raw files need restorekit.raw (pip install 'restorekit[raw]')")
            raw_restore(restorer, src, dest, iso=settings.iso)
        else:
            if not caps.rgb:
                raise ConfigError(f"model '{restorer.arch}' needs inputs {list(caps.inputs)} (camera raw files: "
                                  ".dng, ...), not an RGB image")
            img, info = read_image_with_info(src)
            res.notes = _input_notes(src, info)
            out = restorer.restore_image(img)
            bits = 16 if info.bit_depth > 8 and dest.suffix.lower() in (".png", ".tif", ".tiff") else 8
            write_image(dest, out, bit_depth=bits, quality=settings.quality)
    except RestoreKitError as exc:
        res.status, res.error = "failed", str(getattr(exc, "reason", None) or exc)
    except Exception as exc:  # noqa: BLE001 - decoding or runtime (ONNX Runtime, OOM) trouble: report it, go on
        first = str(exc).strip().splitlines()
        res.status, res.error = "failed", f"{type(exc).__name__}: {first[0] if first else 'no detail'}"
    res.seconds = time.perf_counter() - t0
    return res


def result_dict(result: JobResult) -> dict[str, Any]:
    """A JobResult as a plain dict (Ray rows)."""
    return asdict(result)
