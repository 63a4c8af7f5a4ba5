"""How good a score is: AUC, PR-AUC, Brier score and calibration, overall and per segment, and
the calibration plot (a reliability diagram, PNG through matplotlib's Agg backend)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

BINS = 10
MIN_SEGMENT_EXAMPLES = 50
PLOTTED_SEGMENTS = 4


def calibration_bins(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> list[dict[str, Any]]:
    """Equal-width bins of predicted probability: mean predicted vs observed rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        if n == 0:
            continue
        out.append(
            {
                "from": round(float(edges[b]), 3),
                "to": round(float(edges[b + 1]), 3),
                "n": n,
                "predicted": round(float(p[inside].mean()), 4),
                "observed": round(float(y[inside].mean()), 4),
            }
        )
    return out


def expected_calibration_error(bins: Sequence[Mapping[str, Any]]) -> float:
    total = sum(int(b["n"]) for b in bins)
    if not total:
        return 0.0
    return float(sum(b["n"] * abs(b["predicted"] - b["observed"]) for b in bins) / total)


def metrics(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Ranking and probability quality of predictions ``p`` for labels ``y`` (0/1)."""
    n = len(y)
    positives = int(y.sum())
    out: dict[str, Any] = {
        "n": n,
        "positives": positives,
        "base_rate": round(positives / n, 4) if n else 0.0,
        "mean_predicted": round(float(p.mean()), 4) if n else 0.0,
    }
    if n and 0 < positives < n:
        out["auc"] = round(float(roc_auc_score(y, p)), 4)
        out["pr_auc"] = round(float(average_precision_score(y, p)), 4)
    if n:
        out["brier"] = round(float(brier_score_loss(y, p)), 4)
        # what predicting the base rate for everyone scores (the reference a model must beat)
        out["brier_base_rate"] = round(float(np.mean((y - y.mean()) ** 2)), 4)
        bins = calibration_bins(p, y)
        out["ece"] = round(expected_calibration_error(bins), 4)
        out["calibration"] = bins
    return out


def report(
    p: np.ndarray,
    y: np.ndarray,
    segments: Sequence[Sequence[str]],
    *,
    uncalibrated: np.ndarray | None = None,
) -> dict[str, Any]:
    """Overall metrics, the uncalibrated model's for comparison, and per segment (segments
    with at least ``MIN_SEGMENT_EXAMPLES`` examples)."""
    out: dict[str, Any] = {"overall": metrics(p, y)}
    if uncalibrated is not None:
        out["uncalibrated"] = {
            k: v for k, v in metrics(uncalibrated, y).items() if k in ("brier", "ece", "auc")
        }
    members: dict[str, list[int]] = {}
    for i, keys in enumerate(segments):
        for key in keys:
            members.setdefault(key, []).append(i)
    per_segment: dict[str, Any] = {}
    for key in sorted(members):
        rows = np.array(members[key], dtype=np.intp)
        if len(rows) >= MIN_SEGMENT_EXAMPLES:
            per_segment[key] = metrics(p[rows], y[rows])
    out["segments"] = per_segment
    return out


def plot(title: str, result: Mapping[str, Any]) -> bytes:
    """The reliability diagram of one score (overall, uncalibrated for comparison, and the
    largest segments), with the distribution of predictions below; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure

    figure: Figure = plt.figure(figsize=(6.4, 6.4), dpi=100)
    try:
        top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
        top.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfect")
        overall = result["overall"]
        bins = overall.get("calibration", [])
        label = (
            f"all (AUC {overall.get('auc', float('nan')):.3f}, "
            f"Brier {overall.get('brier', float('nan')):.3f})"
        )
        top.plot(
            [b["predicted"] for b in bins],
            [b["observed"] for b in bins],
            marker="o",
            linewidth=2,
            label=label,
        )
        segments = sorted(
            result.get("segments", {}).items(), key=lambda kv: -int(kv[1].get("n", 0))
        )[:PLOTTED_SEGMENTS]
        for key, values in segments:
            seg_bins = values.get("calibration", [])
            top.plot(
                [b["predicted"] for b in seg_bins],
                [b["observed"] for b in seg_bins],
                marker=".",
                linewidth=1,
                alpha=0.7,
                label=f"{key} (n={values.get('n')})",
            )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("observed rate")
        top.set_title(title)
        top.legend(loc="upper left", fontsize=8)
        bottom.bar(
            [(b["from"] + b["to"]) / 2 for b in bins],
            [b["n"] for b in bins],
            width=0.09,
            color="#4c72b0",
        )
        bottom.set_xlabel("predicted probability")
        bottom.set_ylabel("moments")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)
