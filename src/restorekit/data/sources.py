"""Finding samples: each dataset layout becomes a list of :class:`Item` (input/target/extras refs).

Pairing problems are collected, not raised one at a time: :func:`check_items`
reports every missing partner, size mismatch and unreadable file together
(naming the files), then fails or drops them according to ``on_error``.
"""

from __future__ import annotations

import csv
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import numpy as np

from restorekit.data.storage import Location, Storage, decode_uint, resolve
from restorekit.errors import DataError, ImageReadError, RestoreKitError

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- image references


@dataclass(frozen=True)
class FileRef:
    """An image file inside a :class:`Storage` (plain folder or packed dataset)."""

    storage: Storage
    rel: str

    def load(self, max_pixels: int | None = None) -> np.ndarray:
        """(H, W, 3) RGB, uint8/uint16 as stored (float32 for exotic formats)."""
        return decode_uint(self.storage.read_bytes(self.rel), self.display(), max_pixels=max_pixels)

    def read_bytes(self) -> bytes:
        return self.storage.read_bytes(self.rel)

    def size(self) -> tuple[int, int]:
        return self.storage.size_of(self.rel)

    def display(self) -> str:
        return self.storage.display(self.rel)


def _stereo(i: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return data.stereo_motorcycle()[i]

    return load


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


#: bundled scikit-image photos (no download needed), by name
SKIMAGE_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    **{
        n: _skimage(n)
        for n in (
            "astronaut",
            "coffee",
            "chelsea",
            "cat",
            "rocket",
            "hubble_deep_field",
            "immunohistochemistry",
            "retina",
            "colorwheel",
            "camera",
            "clock",
            "cell",
            "page",
            "text",
            "coins",
            "moon",
            "horse",
            "grass",
            "gravel",
            "brick",
        )
    },
    "motorcycle_left": _stereo(0),
    "motorcycle_right": _stereo(1),
}

_SK_CACHE: dict[str, np.ndarray] = {}


@dataclass(frozen=True)
class SkimageRef:
    """A photo bundled with scikit-image, as (H, W, 3) uint8 RGB."""

    name: str

    def load(self, max_pixels: int | None = None) -> np.ndarray:
        arr = _SK_CACHE.get(self.name)
        if arr is None:
            arr = np.asarray(SKIMAGE_LOADERS[self.name]())
            if arr.dtype == bool:
                arr = arr.astype(np.uint8) * 255
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=2)
            arr = np.ascontiguousarray(arr[..., :3])
            if arr.dtype != np.uint8:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
            arr.setflags(write=False)
            _SK_CACHE[self.name] = arr
        return arr

    def size(self) -> tuple[int, int]:
        return tuple(self.load().shape[:2])  # type: ignore[return-value]

    def display(self) -> str:
        return f"skimage.data.{self.name}"


ImageRef = FileRef | SkimageRef


@dataclass
class Item:
    """One sample: a target, an input (None = synthesised by degradation), aligned extras."""

    name: str
    target: ImageRef
    input: ImageRef | None = None
    extras: dict[str, ImageRef] = field(default_factory=dict)
    group: str | None = None

    def refs(self) -> list[tuple[str, ImageRef]]:
        out: list[tuple[str, ImageRef]] = []
        if self.input is not None:
            out.append(("input", self.input))
        out.append(("target", self.target))
        out.extend(self.extras.items())
        return out


@dataclass
class Problem:
    """A pairing problem: ``kind`` is missing / size / unreadable / duplicate, or ``skipped``
    (a file left out of the listing, e.g. a broken symbolic link: reported, never fatal)."""

    kind: str
    name: str
    detail: str
    files: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"[{self.kind}] {self.name}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail, "files": self.files}


# ----------------------------------------------------------------------------- helpers


def _stem_key(rel: str) -> str:
    """Relative path without extension, POSIX: ``a/b/c.png`` -> ``a/b/c``."""
    p = PurePosixPath(rel)
    return str(p.with_suffix("")) if p.suffix else str(p)


#: problem kinds that are reported but never make ``on_error: fail`` raise
NON_FATAL = frozenset({"skipped"})


def _skipped_problems(st: Storage, rel: str, pre: str = "") -> list[Problem]:
    """A ``skipped`` problem for each file the listing of ``rel`` left out (broken symbolic links)."""
    return [Problem("skipped", _stem_key(k[len(pre) :]), why, [st.display(k)]) for k, why in st.skipped_files(rel).items()]


def _drop_ambiguous(groups: dict[str, list[FileRef]], what: str, prefix: str = "") -> tuple[dict[str, FileRef], list[Problem]]:
    """Keep the keys with one file; a key shared by several files (``a.png`` + ``a.jpg``) is
    ambiguous: dropped, with one ``duplicate`` problem naming every file."""
    index: dict[str, FileRef] = {}
    problems: list[Problem] = []
    for key, refs in groups.items():
        if len(refs) == 1:
            index[key] = refs[0]
        else:
            problems.append(
                Problem("duplicate", f"{prefix}{key}", f"several files share the name '{key}' in {what}: ambiguous partner, sample dropped",
                        [r.display() for r in refs])
            )
    return index, problems


def _index_folder(loc: Location, what: str) -> tuple[dict[str, FileRef], list[Problem]]:
    """Map stem key (relative to ``loc``) -> FileRef for every image below ``loc``; ambiguous
    names (several files, one stem) are reported and left out, as are skipped files."""
    st = loc.storage
    if not st.is_dir(loc.rel):
        raise DataError(f"{what} '{st.display(loc.rel)}' is not a folder (or does not exist)")
    pre = (loc.rel.rstrip("/") + "/") if loc.rel else ""
    groups: dict[str, list[FileRef]] = {}
    for rel in st.list_files(loc.rel):
        groups.setdefault(_stem_key(rel[len(pre) :]), []).append(FileRef(st, rel))
    index, problems = _drop_ambiguous(groups, what)
    return index, problems + _skipped_problems(st, loc.rel, pre)


def _match_extras(
    items: list[Item], extra: dict[str, str], problems: list[Problem], key_of: Callable[[Item], list[str]]
) -> None:
    for ename, folder in extra.items():
        index, dup = _index_folder(resolve(folder), f"extra '{ename}' folder")
        problems.extend(dup)
        base_index: dict[str, FileRef] = {}
        for k, ref in index.items():
            base_index.setdefault(PurePosixPath(k).name, ref)
        for it in items:
            ref = None
            for k in key_of(it):
                ref = index.get(k) or base_index.get(PurePosixPath(k).name)
                if ref is not None:
                    break
            if ref is None:
                problems.append(Problem("missing", it.name, f"no '{ename}' file named like it in '{folder}'", [it.target.display()]))
            else:
                it.extras[ename] = ref


def _pair(
    inputs: dict[str, FileRef],
    targets: dict[str, FileRef],
    in_what: str,
    tgt_what: str,
    group: str | None = None,
    prefix: str = "",
    reported: set[str] | None = None,
) -> tuple[list[Item], list[Problem]]:
    """Items for the keys in both; a key missing on one side is a problem unless already ``reported``
    (its partner was ambiguous or skipped)."""
    items, problems = [], []
    for key in sorted(set(inputs) | set(targets)):
        name = f"{prefix}{key}"
        if reported and name in reported and (key not in targets or key not in inputs):
            continue
        if key not in targets:
            problems.append(Problem("missing", name, f"input has no target in {tgt_what}", [inputs[key].display()]))
        elif key not in inputs:
            problems.append(Problem("missing", name, f"target has no input in {in_what}", [targets[key].display()]))
        else:
            items.append(Item(name=name, input=inputs[key], target=targets[key], group=group))
    return items, problems


# ----------------------------------------------------------------------------- layouts


def gopro_items(root: str, blur_dir: str = "blur", sharp_dir: str = "sharp", extra: dict[str, str] | None = None) -> tuple[list[Item], list[Problem]]:
    """GoPro layout ``root/<scene>/{blur_dir,sharp_dir}/*``; a root holding blur/ and sharp/ itself is one scene."""
    loc = resolve(root)
    st = loc.storage
    if not st.is_dir(loc.rel):
        raise DataError(f"GoPro root '{root}' is not a folder (or does not exist)")
    pre = (loc.rel.rstrip("/") + "/") if loc.rel else ""
    scenes: dict[str, dict[str, dict[str, list[FileRef]]]] = {}
    for rel in st.list_files(loc.rel):
        parts = PurePosixPath(rel[len(pre) :]).parts
        if len(parts) == 3:
            scene, sub, fname = parts
        elif len(parts) == 2:
            scene, (sub, fname) = "", parts
        else:
            continue
        if sub not in (blur_dir, sharp_dir):
            continue
        scenes.setdefault(scene, {blur_dir: {}, sharp_dir: {}})[sub].setdefault(_stem_key(fname), []).append(FileRef(st, rel))
    if not scenes:
        raise DataError(
            f"no GoPro scenes found in '{root}': expected {root}/<scene>/{blur_dir}/*.png and {root}/<scene>/{sharp_dir}/*.png"
        )
    items: list[Item] = []
    problems: list[Problem] = _skipped_problems(st, loc.rel, pre)
    for scene in sorted(scenes):
        d = scenes[scene]
        prefix = f"{scene}/" if scene else ""
        blurs, p1 = _drop_ambiguous(d[blur_dir], f"{scene}/{blur_dir}", prefix)
        sharps, p2 = _drop_ambiguous(d[sharp_dir], f"{scene}/{sharp_dir}", prefix)
        its, probs = _pair(
            blurs, sharps, f"{scene}/{blur_dir}", f"{scene}/{sharp_dir}", group=scene or None, prefix=prefix,
            reported={p.name for p in p1 + p2},
        )
        items += its
        problems += p1 + p2 + probs
    if extra:
        _match_extras(items, extra, problems, lambda it: [it.name])
    return items, problems


def paired_items(input_dir: str, target_dir: str, extra: dict[str, str] | None = None) -> tuple[list[Item], list[Problem]]:
    """Two parallel folders paired by relative path without extension."""
    ins, p1 = _index_folder(resolve(input_dir), "input_dir")
    tgs, p2 = _index_folder(resolve(target_dir), "target_dir")
    items, problems = _pair(ins, tgs, f"'{input_dir}'", f"'{target_dir}'", reported={p.name for p in p1 + p2})
    problems = p1 + p2 + problems
    if extra:
        _match_extras(items, extra, problems, lambda it: [it.name])
    return items, problems


def clean_items(folder: str, extra: dict[str, str] | None = None) -> tuple[list[Item], list[Problem]]:
    """A folder of clean images (targets); inputs are synthesised."""
    tgs, problems = _index_folder(resolve(folder), "clean folder")
    items = [Item(name=k, target=v) for k, v in sorted(tgs.items())]
    if extra:
        _match_extras(items, extra, problems, lambda it: [it.name])
    return items, problems


def skimage_items(names: Iterable[str]) -> tuple[list[Item], list[Problem]]:
    """The bundled scikit-image photos, as clean targets."""
    return [Item(name=n, target=SkimageRef(n)) for n in names], []


def pairs_list_items(file: str) -> tuple[list[Item], list[Problem]]:
    """A CSV (header ``input,target[,name][,<extra>...]``) or JSON list of such objects.

    Relative paths are resolved against the list file's folder; extra columns
    become aligned extras (e.g. ``teacher``).
    """
    path = Path(file)
    if not path.is_file():
        raise DataError(f"pairs list '{file}' does not exist")
    rows = _read_rows(path)
    base = path.parent
    items: list[Item] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        where = f"{file} row {i + 1}"
        if not isinstance(row, dict) or not row.get("input") or not row.get("target"):
            raise DataError(f"{where}: needs non-empty 'input' and 'target' (got {row!r})")
        refs: dict[str, FileRef] = {}
        missing = []
        for key, val in row.items():
            if key == "name" or val in (None, ""):
                continue
            if not str(key).isidentifier():
                raise DataError(f"{where}: column '{key}' is not a valid extra name")
            p = Path(str(val))
            p = p if p.is_absolute() else base / p
            loc = resolve(p)
            if not loc.storage.exists(loc.rel):
                missing.append(str(p))
            refs[str(key)] = FileRef(loc.storage, loc.rel)
        name = str(row.get("name") or PurePosixPath(str(row["target"])).stem)
        if name in seen:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 1
        if missing:
            problems.append(Problem("missing", name, f"{where}: file(s) do not exist", missing))
            continue
        extras = {k: v for k, v in refs.items() if k not in ("input", "target")}
        items.append(Item(name=name, input=refs["input"], target=refs["target"], extras=extras))
    return items, problems


def _read_rows(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"pairs list '{path}' is not valid JSON: {exc}") from exc
        if isinstance(data, dict) and "pairs" in data:
            data = data["pairs"]
        if not isinstance(data, list):
            raise DataError(f"pairs list '{path}' must be a JSON list of objects (or {{\"pairs\": [...]}})")
        return data
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "input" not in reader.fieldnames or "target" not in reader.fieldnames:
        raise DataError(f"pairs list '{path}' needs a CSV header with 'input' and 'target' columns (got {reader.fieldnames})")
    return [dict(r) for r in reader]


# ----------------------------------------------------------------------------- checking


def check_items(
    items: list[Item],
    problems: list[Problem],
    *,
    mode: str = "header",
    on_error: str = "fail",
    source: str = "dataset",
    max_pixels: int | None = None,
) -> tuple[list[Item], list[Problem]]:
    """Verify every item up front; return (good items, all problems).

    ``mode`` "header" reads each file's size from its header (cheap), "full"
    decodes every file, "none" skips checks. With ``on_error`` "fail" any
    problem raises one :class:`DataError` listing the offending files; with
    "skip" the bad items are dropped with a warning.
    """
    problems = list(problems)
    good: list[Item] = []
    for it in items:
        if mode == "none":
            good.append(it)
            continue
        sizes: dict[str, tuple[int, int]] = {}
        bad = False
        for role, ref in it.refs():
            try:
                if mode == "full":
                    sizes[role] = tuple(ref.load(max_pixels).shape[:2])  # type: ignore[assignment]
                else:
                    sizes[role] = ref.size()
            except RestoreKitError as exc:
                reason = exc.reason if isinstance(exc, ImageReadError) else str(exc)
                problems.append(Problem("unreadable", it.name, f"{role}: {reason}", [ref.display()]))
                bad = True
        if bad:
            continue
        if len(set(sizes.values())) > 1:
            detail = ", ".join(f"{role} {w}x{h}" for role, (h, w) in sizes.items())
            problems.append(Problem("size", it.name, f"sizes differ: {detail}", [ref.display() for _, ref in it.refs()]))
            continue
        good.append(it)
    if problems:
        report = format_problems(problems, source)
        if on_error == "fail" and any(p.kind not in NON_FATAL for p in problems):
            raise DataError(report + "\n(set data.on_error: skip to drop these samples with a warning)")
        warnings.warn(report + f"\nskipping them: {len(good)} samples remain", UserWarning, stacklevel=2)
        log.warning("%s", report)
    if not good:
        raise DataError(f"{source}: no usable samples" + (f" ({len(problems)} problem(s))" if problems else ""))
    return good, problems


def format_problems(problems: list[Problem], source: str, limit: int = 25) -> str:
    """One message listing the problems (the first ``limit``) and the offending files."""
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    lines = [f"{source}: {len(problems)} problem(s) ({summary}):"]
    for p in problems[:limit]:
        lines.append(f"  {p.line()}")
        lines.extend(f"      {f}" for f in p.files)
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)
