"""Raw subcommands of ``restorekit data``: ``align`` (and ``synth``, synthetic raw scenes).

``register_data_commands(subparsers)`` is called by ``restorekit.cli.data`` with
the ``data`` command's sub-subparsers. Heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import sys


def register_data_commands(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``align`` and ``synth-raw`` to ``restorekit data``."""
    p = subparsers.add_parser(
        "align",
        help="align ground-truth shots onto noisy shots (ORB + ECC), pairing files by name",
        description=(
            "For each file of NOISY_DIR with a same-named file in GT_DIR: coarse ORB + RANSAC partial-affine "
            "estimate, ECC (Euclidean) refinement, exposure matched by mean ratio. Writes OUT/aligned/<name> "
            "and OUT/alignment.csv (name, m00..m12, cc, gain, psnr_before, psnr_after, status, reason). "
            "Raw files are demosaiced for alignment; their aligned ground truth is written as 16-bit TIFF."
        ),
    )
    p.add_argument("noisy_dir", metavar="NOISY_DIR")
    p.add_argument("gt_dir", metavar="GT_DIR")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (aligned/ and alignment.csv)")
    p.add_argument("--min-cc", type=float, default=0.9, help="reject pairs whose ECC correlation is lower (default 0.9)")
    p.add_argument("--features", type=int, default=2000, help="ORB features (default 2000)")
    p.add_argument("--matches", type=int, default=50, help="best matches kept for RANSAC (default 50)")
    p.add_argument("--iterations", type=int, default=200, help="ECC iterations (default 200)")
    p.add_argument("--eps", type=float, default=1e-5, help="ECC convergence epsilon (default 1e-5)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of aligned JPEG outputs (default 95)")
    p.set_defaults(func=_run_align)

    s = subparsers.add_parser(
        "synth-raw",
        help="write synthetic RawNIND-style DNG scenes from scikit-image photos (for demos and tests)",
        description=(
            "Unprocess scikit-image photos into linear raw Bayer scenes and write one DNG per ISO per scene "
            "(OUT/<scene>/<scene>_ISO<iso>.dng), with calibrated shot/read noise growing with the ISO; the lowest "
            "ISO is the ground truth. The result is a RawNIND-style folder for 'restorekit data pack --raw' and raw training."
        ),
    )
    s.add_argument("--out", required=True, metavar="DIR", help="output folder (one subfolder per scene)")
    s.add_argument("--isos", default="100,800,1600,3200,6400",
                   help="comma-separated ISOs; the lowest is the ground truth (default 100,800,1600,3200,6400)")
    s.add_argument("--size", type=int, default=256, help="centre crop side of each photo (default 256)")
    s.add_argument("--photos", default="astronaut,coffee,chelsea,rocket",
                   help="comma-separated scikit-image photo names (default astronaut,coffee,chelsea,rocket)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.set_defaults(func=_run_synth)


def _run_align(args: argparse.Namespace) -> int:
    from restorekit.raw.align import align_folder

    rows = align_folder(
        args.noisy_dir, args.gt_dir, args.out, min_cc=args.min_cc, quality=args.quality,
        n_features=args.features, n_matches=args.matches, ecc_iterations=args.iterations, ecc_eps=args.eps,
    )
    ok = [r for r in rows if r["status"] == "ok"]
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['status']}: {r['name']}: {r['reason']}", file=sys.stderr)
    print(f"aligned {len(ok)} of {len(rows)} pairs -> {args.out}/aligned, {args.out}/alignment.csv", file=sys.stderr)
    return 0 if rows and len(ok) == len(rows) else 1


def _run_synth(args: argparse.Namespace) -> int:
    from restorekit.errors import ConfigError
    from restorekit.raw.unprocess import bundled_photos, make_synthetic_scenes

    try:
        isos = [int(x) for x in args.isos.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--isos must be comma-separated integers, got {args.isos!r}") from exc
    if len(isos) < 2:
        raise ConfigError("--isos needs at least two values (the lowest is the ground truth)")
    photos = bundled_photos([n.strip() for n in args.photos.split(",") if n.strip()], size=args.size)
    if not photos:
        raise ConfigError(f"--photos: none of {args.photos!r} is a scikit-image photo")
    paths = make_synthetic_scenes(args.out, photos, isos=isos, seed=args.seed)
    print(f"wrote {len(paths)} DNG files ({len(photos)} scenes x {len(isos)} ISOs) -> {args.out}", file=sys.stderr)
    return 0
