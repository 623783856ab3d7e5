# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Evaluation metrics on hand-computed cases, and their plots."""

import math

import numpy as np
import pytest

from beats_hf.metrics import (
    accuracy,
    average_precision_per_class,
    classification_metrics,
    confusion_matrix,
    mean_average_precision,
    plot_confusion_matrix,
    plot_per_class_ap,
)


def test_average_precision_hand_computed():
    # Class 0: positives ranked 1st and 3rd of 4 -> AP = (1/1 + 2/3) / 2 = 5/6.
    # Class 1: the single positive is ranked 2nd -> AP = 1/2.
    # Class 2: no positive -> skipped.
    scores = np.array([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.4, 0.9, 0.1], [0.1, 0.2, 0.5]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    ap = average_precision_per_class(scores, targets)
    assert ap[0] == pytest.approx(5 / 6)
    assert ap[1] == pytest.approx(1 / 2)
    assert math.isnan(ap[2])
    result = mean_average_precision(scores, targets)
    assert result["mAP"] == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert result["per_class_ap"][2] is None
    assert result["num_classes_evaluated"] == 2 and result["skipped_classes"] == [2]


def test_perfect_ranking_gives_map_one():
    targets = np.eye(4)
    assert mean_average_precision(targets * 5 - 1, targets)["mAP"] == pytest.approx(1.0)


def test_accuracy_and_confusion_matrix_hand_computed():
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 3.0, 1.0], [1.0, 0.0, 4.0], [5.0, 0.0, 1.0]])
    labels = np.array([0, 1, 2, 2, 1])
    predictions = logits.argmax(1)  # 0, 1, 1, 2, 0
    assert accuracy(predictions, labels) == pytest.approx(3 / 5)
    matrix = confusion_matrix(predictions, labels, 3)
    assert matrix.tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    metrics = classification_metrics(logits, labels, multi_label=False)
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["confusion_matrix"] == matrix.tolist()
    # One-hot (e.g. mixed-up) label rows are read through argmax.
    assert classification_metrics(logits, np.eye(3)[labels], multi_label=False)["accuracy"] == pytest.approx(0.6)


def test_metric_input_errors():
    with pytest.raises(ValueError):
        average_precision_per_class(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_plots_are_written(tmp_path):
    ap_path = plot_per_class_ap([0.9, None, 0.4], ["a", "b", "c"], tmp_path / "per_class_ap.png")
    cm_path = plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["x", "y"], tmp_path / "confusion_matrix.png")
    for path in (ap_path, cm_path):
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
