"""Layering of the restorekit package (issue #12).

* The subpackage import graph (every ``import``/``from ... import`` in every module,
  at top level *and* inside functions, parsed with :mod:`ast`) has no cycle.
* No module imports a ``_private`` name (or a ``_private`` module) of another subpackage.
* ``restorekit.inference`` loads and restores with Lightning, MLflow and matplotlib
  unimportable (they belong to the ``[train]`` extra).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "restorekit"


@dataclass(frozen=True)
class ImportEdge:
    module: str  #: importing module, e.g. restorekit.data.build
    target: str  #: imported module, e.g. restorekit.raw.dataset
    names: tuple[str, ...]  #: names taken with ``from target import ...``
    line: int


def module_name(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def subpackage(module: str) -> str:
    """``restorekit.data.build`` -> ``data``; top-level modules (``restorekit.errors``) are their own node."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "restorekit"


def imports_of(path: Path, root: Path = SRC) -> list[ImportEdge]:
    """Every restorekit import in ``path``, wherever it appears (functions, try blocks, TYPE_CHECKING)."""
    mod = module_name(path, root)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out: list[ImportEdge] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [ImportEdge(mod, a.name, (), node.lineno) for a in node.names if a.name.split(".")[0] == "restorekit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "restorekit":
                out.append(ImportEdge(mod, target, tuple(a.name for a in node.names), node.lineno))
    return out


def all_edges(root: Path = SRC) -> list[ImportEdge]:
    return [e for p in sorted(root.rglob("*.py")) for e in imports_of(p, root)]


def subpackage_graph(edges: list[ImportEdge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        a, b = subpackage(e.module), subpackage(e.target)
        if a != b:
            graph[a].add(b)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of ``graph`` (depth-first search), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(edges: list[ImportEdge]) -> list[str]:
    """``module:line imports target.name`` for each private name/module taken across subpackages."""
    bad = []
    for e in edges:
        if subpackage(e.module) == subpackage(e.target):
            continue
        if any(is_private(p) for p in e.target.split(".")):
            bad.append(f"{e.module}:{e.line} imports private module {e.target}")
        bad += [f"{e.module}:{e.line} imports {e.target}.{n}" for n in e.names if is_private(n)]
    return bad


def _explain(cycle: list[str], edges: list[ImportEdge]) -> str:
    lines = []
    for a, b in zip(cycle, cycle[1:]):
        lines += [f"  {e.module}:{e.line} -> {e.target}" for e in edges if subpackage(e.module) == a and subpackage(e.target) == b]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the checker itself


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))


def test_checker_sees_function_level_relative_and_private_imports(tmp_path: Path) -> None:
    root = tmp_path / "restorekit"
    _write(root, "__init__.py", "")
    _write(root, "a/__init__.py", "from .mod import thing\n")
    _write(root, "a/mod.py", "def f():\n    from restorekit.b.x import _hidden\n    return _hidden\nthing = 1\n")
    _write(root, "b/__init__.py", "")
    _write(root, "b/x.py", "import restorekit.c\n_hidden = 2\n")
    _write(root, "c/__init__.py", "try:\n    from restorekit.a import thing\nexcept ImportError:\n    thing = None\n")
    edges = all_edges(root)
    assert ImportEdge("restorekit.a", "restorekit.a.mod", ("thing",), 1) in edges  # relative import resolved
    graph = subpackage_graph(edges)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert private_imports(edges) == ["restorekit.a.mod:2 imports restorekit.b.x._hidden"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


# ---------------------------------------------------------------------------------------------- the real package


def test_subpackage_graph_has_no_cycle() -> None:
    edges = all_edges()
    graph = subpackage_graph(edges)
    assert {"io", "data", "models", "inference", "export"} <= set(graph)  # the parse found the package
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle {' -> '.join(cycle or [])}:\n{_explain(cycle or [], edges)}"


def test_layers_point_one_way() -> None:
    graph = subpackage_graph(all_edges())
    assert "inference" in graph["export"]
    assert "export" not in graph.get("inference", set()), "inference must never import export"
    assert not ("raw" in graph.get("data", set()) and "data" in graph.get("raw", set())), "data and raw import each other"
    for low in ("io", "utils", "registry", "errors", "config"):
        assert not (graph.get(low, set()) & {"models", "inference", "training", "export", "serve", "cli"}), low


def test_no_private_imports_across_subpackages() -> None:
    bad = private_imports(all_edges())
    assert not bad, "private cross-subpackage imports:\n" + "\n".join(bad)


def test_dead_code_is_gone() -> None:
    assert not (SRC / "cli" / "_pending.py").exists()
    # one list of image extensions: no module spells the extension set out again
    offenders = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
        if p.name != "image.py" and '".tif", ".tiff", ".webp"' in p.read_text(encoding="utf-8")
    ]
    assert not offenders, f"modules repeating the image-extension list (use restorekit.io.IMAGE_EXTENSIONS): {offenders}"


# ---------------------------------------------------------------------------------------------- no training stack

_BLOCKED = ("lightning", "pytorch_lightning", "lightning_fabric", "mlflow", "matplotlib")

_SCRIPT = r"""
import json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # "import name" now raises ImportError
import restorekit.inference
from restorekit.inference import load_restorer
import numpy as np
from skimage import data
from skimage.transform import resize
from restorekit.models import create_model
from restorekit.models.package import save_package

model = create_model("deblur_unet", preset="tiny")
path = save_package(model, sys.argv[1])
restorer = load_restorer(path, tile=32, overlap=8)
photo = resize(data.astronaut(), (48, 40), anti_aliasing=True).astype(np.float32)
out = restorer.restore_image(photo)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r} and sys.modules[m] is not None)
print(json.dumps({{"shape": list(out.shape), "min": float(out.min()), "max": float(out.max()),
                  "finite": bool(np.isfinite(out).all()), "loaded": loaded, "arch": restorer.arch}}))
"""


def test_inference_works_without_the_training_stack(tmp_path: Path) -> None:
    script = _SCRIPT.format(blocked=_BLOCKED)
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "tiny.safetensors")],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["shape"] == [48, 40, 3]
    assert res["finite"] and 0.0 <= res["min"] <= res["max"] <= 1.0
    assert res["loaded"] == []
    assert res["arch"] == "deblur_unet"


def test_blocking_really_blocks() -> None:
    """The trick used above does make an installed module unimportable (guards against a vacuous pass)."""
    pytest.importorskip("matplotlib")
    code = "import sys; sys.modules['matplotlib'] = None\ntry:\n import matplotlib\nexcept ImportError:\n print('blocked')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "blocked"
