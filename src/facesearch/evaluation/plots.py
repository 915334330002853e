"""PNG plots of an evaluation: the DET curve and false positives vs gallery size (matplotlib, a dev/cli extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facesearch.evaluation.metrics import BIN_WIDTH, PairScores


def write_plots(scores: PairScores, report: dict, out_dir: Path) -> list[Path]:
    """``det.png`` (FNMR against FMR, log axes) and ``fpir_gallery_size.png`` (measured vs 1 − (1 − FMR)^N)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # the product runtime does not ship matplotlib
        raise RuntimeError("plots need matplotlib: pip install 'facesearch[dev]'") from exc

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    fig, ax = plt.subplots(figsize=(6, 5))
    cum = np.cumsum(scores.impostor_hist)
    edges = np.arange(1, cum.size + 1) * BIN_WIDTH
    fmr = cum / max(scores.impostor_pairs, 1)
    fnmr = 1.0 - np.searchsorted(scores.genuine, edges, side="right") / max(scores.genuine_pairs, 1)
    keep = (fmr > 0) & (fnmr > 0)
    ax.loglog(fmr[keep], fnmr[keep], label=f"{Path(report['dataset']).name}, all pairs")
    for row in report.get("error_rates", []):
        if row["fmr"] > 0 and row["fnmr"] > 0:
            ax.plot(row["fmr"], row["fnmr"], "o", color="C1")
            ax.annotate(f"{row['similarity']:g}", (row["fmr"], row["fnmr"]), textcoords="offset points", xytext=(4, 4))
    ax.axvline(1 / max(scores.impostor_pairs, 1) * 10, color="grey", ls=":", lw=1, label="10 false matches")
    ax.set_xlabel("false match rate (per comparison)")
    ax.set_ylabel("false non-match rate")
    ax.set_title(f"DET: {scores.impostor_pairs:,} impostor / {scores.genuine_pairs:,} genuine pairs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out_dir / "det.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    rows = report.get("identification", {}).get("rows", [])
    if rows:
        fig, ax = plt.subplots(figsize=(6, 5))
        for k, s in enumerate(sorted({r["similarity"] for r in rows})):
            rs = sorted((r for r in rows if r["similarity"] == s), key=lambda r: r["gallery_size"])
            sizes = [r["gallery_size"] for r in rs]
            ax.plot(sizes, [r["fpir"] for r in rs], "o", color=f"C{k}", label=f"similarity {s:g}: measured")
            grid = np.logspace(np.log10(min(sizes)), np.log10(max(sizes)), 50)
            f = rs[0]["fmr"]
            ax.plot(
                grid, -np.expm1(grid * np.log1p(-f)), "-", color=f"C{k}", alpha=0.6, label=f"1-(1-FMR)^N, FMR={f:.1e}"
            )
        ax.set_xscale("log")
        ax.set_xlabel("gallery size N (people, one photo each)")
        ax.set_ylabel("FPIR: stranger searches with ≥ 1 false candidate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "fpir_gallery_size.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
