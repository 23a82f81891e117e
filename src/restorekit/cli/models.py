"""`restorekit models`: list architectures and inspect model files.

``restorekit models list`` prints every registered architecture with its value
range and presets. ``restorekit models info NAME_OR_FILE [--preset P] [--arg k=v]
[--size H W] [--json]`` builds the architecture (or loads the weight file in any
format :func:`restorekit.models.loading.load_model` accepts) and prints its
parameter count and multiply-accumulates at the given input size
(1 MAC = one multiply-add; element-wise ops not counted).
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from restorekit.models.spec import args_of, caps_of


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("models", help="list architectures and inspect model files")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    pl = msub.add_parser("list", help="list registered architectures")
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl.set_defaults(func=run_list)
    pi = msub.add_parser("info", help="parameters and MACs of an architecture or a weight file")
    pi.add_argument("target", metavar="NAME_OR_FILE", help="registry name (see `models list`) or a weight file")
    pi.add_argument("--size", nargs=2, type=int, default=[256, 256], metavar=("H", "W"), help="input size (default 256 256)")
    pi.add_argument("--preset", default=None, help="named preset of the architecture")
    pi.add_argument("--arch", default=None, help="architecture of a weight file (default: recognised from its keys)")
    pi.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="constructor argument (YAML value)")
    pi.add_argument("--json", action="store_true", help="print one JSON object")
    pi.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _parse_args(pairs: list[str]) -> dict[str, Any]:
    import yaml

    from restorekit.errors import ConfigError

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--arg '{pair}': expected KEY=VALUE")
        k, v = pair.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def run_list(args: argparse.Namespace) -> int:
    from restorekit.models import get_spec, list_models

    rows = []
    for name in list_models():
        s = get_spec(name)
        caps = s.caps()
        rows.append({"name": name, "value_range": caps.value_range, "size_multiple": caps.size_multiple,
                     "inputs": list(caps.inputs), "tlc": caps.tlc, "native_size": caps.native_size,
                     "presets": sorted(s.presets), "description": s.description})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  [{r['value_range']}]  {r['description']}")
        if r["presets"]:
            print(f"{'':<{width}}  presets: {', '.join(r['presets'])}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from restorekit.models import create_model, list_models
    from restorekit.models.info import model_summary
    from restorekit.models.loading import load_model
    from restorekit.errors import ConfigError

    kwargs = _parse_args(args.arg)
    target = args.target
    if Path(target).exists():
        if args.preset:
            kwargs["preset"] = args.preset
        model = load_model(target, arch=args.arch, **kwargs)
        source = str(Path(target))
    elif target in list_models():
        model = create_model(target, preset=args.preset, **kwargs)
        source = "registry"
    else:
        raise ConfigError(f"'{target}' is neither a file nor a registered model; available: {', '.join(list_models())}")
    h, w = args.size
    if h <= 0 or w <= 0:
        raise ConfigError(f"--size {h} {w}: sizes must be positive")
    info = model_summary(model, (h, w))
    info["source"] = source
    info["args"] = args_of(model)
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    print(f"model:       {info['arch']}  ({source})")
    print(f"arguments:   {json.dumps(info['args'], default=str)}")
    print(f"value range: [{info['value_range']}]")
    caps = caps_of(model)
    print(f"capabilities: size multiple {caps.size_multiple}, inputs {', '.join(caps.inputs)}, TLC {'yes' if caps.tlc else 'no'}"
          f"{f', native size {caps.native_size}' if caps.native_size else ''}")
    print(f"parameters:  {info['params']:,} ({info['params'] / 1e6:.2f} M)")
    print(f"MACs:        {info['gmacs']:.2f} G at 1x{h}x{w} (1 MAC = one multiply-add; element-wise ops not counted)")
    parts = ", ".join(f"{k} {v / 1e9:.2f} G" for k, v in sorted(info["macs_by_op"].items()))
    print(f"             {parts}")
    return 0
