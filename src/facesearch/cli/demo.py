"""The README's first command: the whole engine on the shared datasets, with pictures to look at."""

from __future__ import annotations

import time
from pathlib import Path

from facesearch.annotate import draw_faces, save_rgb

REPO_ROOT = Path(__file__).resolve().parents[3]


def default_datasets() -> Path:
    return REPO_ROOT.parent / "shared" / "datasets"


def run_demo(datasets: Path | None, out: Path) -> int:
    from facesearch.cli.engine_commands import summarize_eval
    from facesearch.engine.engine import FaceEngine
    from facesearch.evaluation import evaluate

    datasets = datasets or default_datasets()
    faces_dev, crowd = datasets / "faces-dev", datasets / "crowd" / "largest_selfie.jpg"
    for path in (faces_dev, crowd):
        if not path.exists():
            raise FileNotFoundError(f"demo data missing: {path} (pass --datasets DIR)")
    out.mkdir(parents=True, exist_ok=True)
    engine = FaceEngine()

    print(f"== 1. Accuracy on {faces_dev}")
    report = evaluate(faces_dev, engine)
    print(summarize_eval(report))

    print(f"\n== 2. Every face in the crowd photo {crowd.name}")
    start = time.perf_counter()
    result = engine.analyze(crowd.read_bytes())
    elapsed = time.perf_counter() - start
    drawn = draw_faces(result.image.rgb, [f.box for f in result.faces], [f.landmarks for f in result.faces])
    path = save_rgb(drawn, out / "crowd_annotated.jpg")
    print(f"{len(result.faces)} faces detected, aligned and embedded in {elapsed:.2f} s → {path}")

    print("\n== 3. Group photos")
    for name, group in report["groups"].items():
        image = engine.analyze((faces_dev / "images" / name).read_bytes(), embed=False)
        drawn = draw_faces(image.image.rgb, [f.box for f in image.faces], [f.landmarks for f in image.faces])
        matches = ", ".join(f"{m['identity']} ({m['similarity']:.1f})" for m in group["matches"]) or "nobody known"
        print(f"{name}: {group['faces']} faces; recognised: {matches} → {save_rgb(drawn, out / name)}")
    return 0
