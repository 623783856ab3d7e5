# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Evaluation metrics of the paper's tasks, and their plots.

- Multi-label (AudioSet): mean average precision (mAP), the macro average of per-class average precision
  (scikit-learn's `average_precision_score`). Classes without any positive clip in the evaluation set have no defined
  AP; they are skipped and *listed* (`skipped_classes`), never counted as 0 or 1. On the real AudioSet eval set every
  class has positives, so this only matters for small or custom evaluation sets, where the mAP is then over fewer
  classes than the model has: compare such numbers with care.
- Single-label (ESC-50, Speech Commands, IEMOCAP): accuracy and the confusion matrix.

[`classification_metrics`] picks the right ones from the label format; [`plot_per_class_ap`] and
[`plot_confusion_matrix`] draw them with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _as_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().float().cpu().numpy()
    return np.asarray(array)


def average_precision_per_class(scores: Any, targets: Any) -> np.ndarray:
    """
    Average precision of every class; NaN for classes without a positive clip (AP is undefined there).

    Args:
        scores: `(num_clips, num_classes)` scores (logits or probabilities: AP only uses their order).
        targets: `(num_clips, num_classes)` binary targets.
    """
    from sklearn.metrics import average_precision_score

    scores, targets = _as_numpy(scores), _as_numpy(targets)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(
            f"scores and targets must both be (num_clips, num_classes), got {scores.shape} and {targets.shape}"
        )
    binary = targets > 0.5
    ap = np.full(scores.shape[1], np.nan, dtype=np.float64)
    for c in range(scores.shape[1]):
        if binary[:, c].any():
            ap[c] = average_precision_score(binary[:, c], scores[:, c])
    return ap


def mean_average_precision(scores: Any, targets: Any) -> dict[str, Any]:
    """
    Macro mAP over the classes that have at least one positive clip.

    Returns:
        `{"mAP": float, "per_class_ap": list[float | None], "num_classes_evaluated": int,
        "skipped_classes": list[int]}`; `per_class_ap` has None for skipped classes. `mAP` is NaN if no class has a
        positive.
    """
    ap = average_precision_per_class(scores, targets)
    evaluated = ~np.isnan(ap)
    return {
        "mAP": float(ap[evaluated].mean()) if evaluated.any() else float("nan"),
        "per_class_ap": [None if np.isnan(v) else float(v) for v in ap],
        "num_classes_evaluated": int(evaluated.sum()),
        "skipped_classes": np.flatnonzero(~evaluated).tolist(),
    }


def confusion_matrix(predictions: Any, labels: Any, num_classes: int) -> np.ndarray:
    """`(num_classes, num_classes)` counts; row = true class, column = predicted class."""
    predictions, labels = _as_numpy(predictions).astype(np.int64), _as_numpy(labels).astype(np.int64)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(
            f"predictions and labels must be 1-D of equal length, got {predictions.shape}, {labels.shape}"
        )
    for name, values in (("predictions", predictions), ("labels", labels)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes})")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def accuracy(predictions: Any, labels: Any) -> float:
    """Fraction of clips whose predicted class equals the label."""
    predictions, labels = _as_numpy(predictions), _as_numpy(labels)
    if predictions.shape != labels.shape or predictions.size == 0:
        raise ValueError(f"need equal, non-empty shapes, got {predictions.shape} and {labels.shape}")
    return float((predictions == labels).mean())


def classification_metrics(logits: Any, labels: Any, multi_label: bool) -> dict[str, Any]:
    """
    The paper's metric for a task: mAP (+ per-class AP) for multi-label, accuracy (+ confusion matrix) otherwise.

    Args:
        logits: `(num_clips, num_classes)` scores.
        labels: `(num_clips, num_classes)` binary targets for multi-label; `(num_clips,)` class indices (or one-hot
            rows) for single-label.
        multi_label: Which kind of task.

    NaN scores (a diverged model) are an error: they have no order to rank or to take the best class from.
    """
    logits = _as_numpy(logits)
    labels = _as_numpy(labels)
    nan_clips = int(np.isnan(logits).any(axis=-1).sum()) if logits.ndim == 2 else 0
    if nan_clips:
        raise ValueError(f"{nan_clips} of {len(logits)} clips have NaN scores; the metrics are undefined")
    if multi_label:
        return mean_average_precision(logits, labels)
    if labels.ndim == 2:
        # Anything else, e.g. a (num_clips, 1) column of class indices, would read as class 0 throughout.
        if labels.shape != logits.shape:
            raise ValueError(f"one-hot labels must have the logits' shape {logits.shape}, got {labels.shape}")
        # argmax reads a row without a label (all zeros) or with several equal top labels (multi-hot) as its first
        # top column, i.e. a guessed class; such rows name no single class.
        ambiguous = np.flatnonzero((labels == labels.max(axis=1, keepdims=True)).sum(axis=1) != 1)
        if ambiguous.size:
            raise ValueError(
                f"{ambiguous.size} of {len(labels)} one-hot label rows (e.g. row {int(ambiguous[0])}: "
                f"{labels[ambiguous[0]].tolist()}) have no single largest entry, so they name no class; "
                "single-label metrics need one class per clip (multi-hot rows need multi_label=True)."
            )
        labels = labels.argmax(axis=1)
    predictions = logits.argmax(axis=1)
    return {
        "accuracy": accuracy(predictions, labels),
        "confusion_matrix": confusion_matrix(predictions, labels, logits.shape[1]).tolist(),
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_per_class_ap(per_class_ap: Sequence[float | None], class_names: Sequence[str], path: str | Path) -> Path:
    """Bar chart of per-class AP, sorted from best to worst; classes without positives are left out (and counted)."""
    if len(per_class_ap) != len(class_names):
        raise ValueError(
            f"plot_per_class_ap got {len(per_class_ap)} AP values but {len(class_names)} class names; give one name "
            "per class, in the order of the APs."
        )
    plt = _pyplot()
    pairs = sorted(((name, ap) for name, ap in zip(class_names, per_class_ap) if ap is not None), key=lambda p: -p[1])
    skipped = len(per_class_ap) - len(pairs)
    width = max(6.0, 0.18 * len(pairs) + 2)
    fig, ax = plt.subplots(figsize=(min(width, 60.0), 4.5))
    ax.bar(range(len(pairs)), [ap for _, ap in pairs], color="tab:blue")
    ax.set_xticks(range(len(pairs)))
    ax.set_xticklabels([name for name, _ in pairs], rotation=90, fontsize=6 if len(pairs) > 40 else 8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("average precision")
    mean = np.mean([ap for _, ap in pairs]) if pairs else float("nan")
    title = f"per-class AP (mAP {mean:.3f} over {len(pairs)} classes"
    ax.set_title(title + (f"; {skipped} without positives skipped)" if skipped else ")"))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_confusion_matrix(matrix: Any, class_names: Sequence[str], path: str | Path) -> Path:
    """Confusion matrix (rows = true class, columns = predicted), normalised per row, with counts when it is small."""
    plt = _pyplot()
    matrix = _as_numpy(matrix).astype(np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(4.0, 0.35 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(min(size, 30.0), min(size, 30.0)))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(class_names, rotation=90, fontsize=7)
    ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 20:
        for i in ticks:
            for j in ticks:
                if matrix[i, j]:
                    colour = "white" if normalised[i, j] > 0.5 else "black"
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7, color=colour)
    accuracy_value = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"confusion matrix (accuracy {accuracy_value:.3f})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = [
    "accuracy",
    "average_precision_per_class",
    "classification_metrics",
    "confusion_matrix",
    "mean_average_precision",
    "plot_confusion_matrix",
    "plot_per_class_ap",
]
