#!/usr/bin/env python3
"""Installed (unzipped) size of the Lambda runtime set plus the models, per package, against Lambda's 250 MB limit.

Why a script: Lambda counts the function code and all its layers unzipped, and the number moves with every
dependency release; this makes it reproducible. It installs the ``lambda`` extra of this repository with pip into a
fresh temporary directory exactly as a layer build would (``pip install --target``; ``--layer`` adds
``--platform manylinux2014_x86_64 --only-binary=:all: --python-version 3.11``, the glibc 2.17 wheels that load on
the python3.11 runtime's Amazon Linux 2; ``--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64`` gets
the wheels for Amazon Linux 2023, i.e. the python3.12+ runtimes or a container image: pip takes a platform tag
literally, so list every tag the target accepts), sums every file per distribution (from each
``*.dist-info/RECORD``; anything left over is listed as such), then adds the model files the engine loads
(``facesearch.models.registry.RUNTIME_MODELS``, from ``FACESEARCH_MODEL_DIR`` or the build cache).
``--pin REQ`` adds a requirement (e.g. ``'numpy<2'``, which onnxruntime 1.16.3, the last release with manylinux2014
wheels, needs); ``--without NAME`` also prints the total without those distributions (to size a plan).

Usage (from the repository root)::

    .venv/bin/python scripts/lambda_size.py            # this machine's wheels
    .venv/bin/python scripts/lambda_size.py --layer --pin 'numpy<2'    # the wheels for the python3.11 runtime
    .venv/bin/python scripts/lambda_size.py --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64
    .venv/bin/python scripts/lambda_size.py --without opencv-python-headless --json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT_MB = 250.0
LAYER_PLATFORM = "manylinux2014_x86_64"
MB = 1_000_000  # Lambda's quotas are in decimal megabytes


def install(target: Path, extras: list[str], platforms: list[str], pins: list[str]) -> None:
    """pip-install this project with ``extras`` into ``target``; built from a copy, so no build/ lands in the tree."""
    source = target.parent / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, source / name)
    wheels = target.parent / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True)
    (wheel,) = wheels.glob("facesearch-*.whl")
    spec = f"facesearch[{','.join(extras)}] @ {wheel.as_uri()}" if extras else str(wheel)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target)]
    if platforms:  # pip takes each tag literally: list all the target accepts
        for platform in platforms:
            cmd += ["--platform", platform]
        cmd += ["--only-binary=:all:", "--python-version", "3.11"]
    subprocess.run([*cmd, spec, *pins], check=True)


def sizes_by_distribution(site: Path) -> dict[str, int]:
    """Bytes per distribution, from the RECORD files; files no RECORD claims are reported as '(unclaimed)'."""
    claimed: set[Path] = set()
    sizes: dict[str, int] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        name = record.parent.name.split("-")[0].lower().replace("_", "-")
        total = 0
        with record.open(newline="") as f:
            for row in csv.reader(f):
                if not row:
                    continue
                path = (site / row[0]).resolve()
                if path.is_file() and path not in claimed:
                    claimed.add(path)
                    total += path.stat().st_size
        sizes[name] = sizes.get(name, 0) + total
    rest = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and p.resolve() not in claimed)
    if rest:
        sizes["(unclaimed)"] = rest
    return sizes


def model_sizes() -> dict[str, int]:
    sys.path.insert(0, str(REPO / "src"))
    from facesearch.models.registry import RUNTIME_MODELS, models_dir

    out = {}
    for name in RUNTIME_MODELS:
        path = models_dir() / name
        if not path.is_file():
            raise SystemExit(f"{path} missing: run `facesearch models build` first")
        out[name] = path.stat().st_size
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extra", action="append", default=None, help="extras to install (default: lambda)")
    ap.add_argument("--layer", action="store_true", help="pip --platform manylinux2014_x86_64 --python-version 3.11")
    ap.add_argument("--platform", action="append", default=[], help=f"wheel platform tag (--layer: {LAYER_PLATFORM})")
    ap.add_argument("--pin", action="append", default=[], help="extra requirement for pip, e.g. 'numpy<2'")
    ap.add_argument("--without", action="append", default=[], help="also total without this distribution")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    extras = args.extra or ["lambda"]
    platforms = args.platform or ([LAYER_PLATFORM] if args.layer else [])
    with tempfile.TemporaryDirectory(prefix="lambda-size-") as tmp:
        site = Path(tmp) / "python"
        try:
            install(site, extras, platforms, args.pin)
        except subprocess.CalledProcessError:
            print(
                f"pip cannot install {extras} for {platforms or 'this machine'} (its error is above)", file=sys.stderr
            )
            return 2
        packages = sizes_by_distribution(site)
    models = model_sizes()
    total_packages, total_models = sum(packages.values()), sum(models.values())
    total = total_packages + total_models
    without = {n.lower(): packages.get(n.lower(), 0) for n in args.without}
    report = {
        "extras": extras,
        "platform": ", ".join(platforms) or "this machine",
        "pins": args.pin,
        "python": sys.version.split()[0],
        "packages": dict(sorted(packages.items(), key=lambda kv: -kv[1])),
        "models": models,
        "total_packages_bytes": total_packages,
        "total_models_bytes": total_models,
        "total_bytes": total,
        "limit_bytes": int(LIMIT_MB * MB),
        "total_without_bytes": total - sum(without.values()) if without else None,
        "without": sorted(without),
        "model_dir": os.environ.get("FACESEARCH_MODEL_DIR", "(build cache)"),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if total <= LIMIT_MB * MB else 1
    print(f"extras {extras}  wheels for: {report['platform']}  python {report['python']}")
    for name, size in report["packages"].items():
        print(f"  {name:32s} {size / MB:8.1f} MB")
    print(f"  {'packages':32s} {total_packages / MB:8.1f} MB")
    for name, size in models.items():
        print(f"  {name:32s} {size / MB:8.1f} MB")
    print(f"  {'models':32s} {total_models / MB:8.1f} MB")
    verdict = "within" if total <= LIMIT_MB * MB else "OVER"
    print(f"  {'TOTAL':32s} {total / MB:8.1f} MB  ({verdict} Lambda's {LIMIT_MB:.0f} MB unzipped limit)")
    if without:
        rest = total - sum(without.values())
        print(f"  {'TOTAL without ' + ', '.join(sorted(without)):32s} {rest / MB:8.1f} MB")
    return 0 if total <= LIMIT_MB * MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
