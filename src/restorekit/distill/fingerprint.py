"""Fingerprints that decide whether a teacher-output cache is still valid.

A cache of teacher outputs is only correct for one teacher (its weights and the
way it is run: tiling, TLC, value range), one set of inputs (the file listing)
and one degradation recipe. :func:`cache_fingerprint` hashes those three parts
separately and together, so that a stale cache can be refused with a message
that says *which* part changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import torch

FINGERPRINT_VERSION = 1


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text of ``obj`` (sorted keys, no whitespace, Paths as strings)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default)


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(chunk)
            if not buf:
                break
            h.update(buf)
    return h.hexdigest()


def hash_state_dict(model: torch.nn.Module) -> str:
    """Hex SHA-256 over a module's state dict: key names, dtypes, shapes and raw bytes (CPU, contiguous)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.numpy().tobytes())
    return h.hexdigest()


def teacher_hash(model: torch.nn.Module, weights_path: str | Path | None = None) -> str:
    """Identity of the teacher's weights.

    The loaded weights themselves are hashed (not the file), so the same
    weights saved in two formats give the same hash, and a file replaced in
    place gives a new one.
    """
    del weights_path  # the state dict is the ground truth; the path only names it
    return hash_state_dict(model)


def listing_hash(
    files: Iterable[tuple[str, Path]],
    mode: Literal["stat", "content"] = "stat",
) -> str:
    """Hash of a data listing: relative name plus size and mtime (``stat``) or plus content (``content``).

    ``stat`` is cheap and catches regenerated or edited files (their size or
    modification time changes); ``content`` reads every byte and also survives
    a copy that resets modification times.
    """
    h = hashlib.sha256()
    for name, path in sorted(files, key=lambda item: item[0]):
        st = Path(path).stat()
        h.update(name.encode())
        h.update(b"\0")
        if mode == "content":
            h.update(hash_file(path).encode())
        else:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        h.update(b"\n")
    return h.hexdigest()


def cache_fingerprint(
    *,
    teacher: str,
    teacher_run: Mapping[str, Any],
    data: str,
    degrade: Any,
    cache_format: Mapping[str, Any],
) -> dict[str, Any]:
    """The fingerprint record of a teacher cache.

    ``teacher``: :func:`teacher_hash`; ``teacher_run``: how it is run (tile,
    overlap, TLC, value range); ``data``: :func:`listing_hash` of the inputs;
    ``degrade``: the degradation recipe (any JSON-able object, hashed
    canonically); ``cache_format``: file format and bit depth. The returned
    dict holds one hash per part and ``digest`` over all of them.
    """
    parts = {
        "teacher": teacher,
        "teacher_run": sha256_text(canonical_json(dict(teacher_run))),
        "data": data,
        "degrade": sha256_text(canonical_json(degrade)),
        "format": sha256_text(canonical_json(dict(cache_format))),
    }
    digest = sha256_text(canonical_json({"version": FINGERPRINT_VERSION, **parts}))
    return {"version": FINGERPRINT_VERSION, "digest": digest, "parts": parts}


def changed_parts(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of the fingerprint parts that differ between two records (all of them when unreadable)."""
    op, np_ = old.get("parts"), new.get("parts")
    if not isinstance(op, Mapping) or not isinstance(np_, Mapping) or old.get("version") != new.get("version"):
        return sorted(new.get("parts", {}).keys()) or ["version"]
    return sorted(k for k in set(op) | set(np_) if op.get(k) != np_.get(k))
