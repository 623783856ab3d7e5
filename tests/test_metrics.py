# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Evaluation metrics on hand-computed cases, their plots, and the linear probe's embeddings."""

import math

import numpy as np
import pytest
import torch
from utils import make_model, random_waveform

from beats_hf import BeatsFeatureExtractor, BeatsModel
from beats_hf.metrics import (
    accuracy,
    average_precision_per_class,
    classification_metrics,
    confusion_matrix,
    mean_average_precision,
    plot_confusion_matrix,
    plot_per_class_ap,
)
from beats_hf.probing import pooled_embeddings


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


def test_single_label_metrics_refuse_labels_they_would_misread():
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 3.0]])
    # A column of class indices is not one-hot: read through argmax, every label would be class 0.
    with pytest.raises(ValueError, match="one-hot labels"):
        classification_metrics(logits, np.array([[0], [1], [2]]), multi_label=False)
    # A row without a label, or with two, names no class: argmax would silently pick the first column.
    for rows in ([[1, 0, 0], [0, 0, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 1], [0, 0, 1]]):
        with pytest.raises(ValueError, match="1 of 3 one-hot label rows.*row 1"):
            classification_metrics(logits, np.array(rows), multi_label=False)
    # Soft (mixed-up or smoothed) rows with one largest entry are read through argmax.
    soft = np.array([[0.7, 0.3, 0.0], [0.05, 0.9, 0.05], [0.2, 0.0, 0.8]])
    assert classification_metrics(logits, soft, multi_label=False)["accuracy"] == pytest.approx(1.0)
    # A NaN row has no best class (argmax would pick the first NaN) and no rank for AP.
    logits[1, 0] = np.nan
    for multi_label, labels in ((False, np.array([0, 1, 2])), (True, np.eye(3))):
        with pytest.raises(ValueError, match="1 of 3 clips have NaN scores"):
            classification_metrics(logits, labels, multi_label=multi_label)


def test_plots_are_written(tmp_path):
    ap_path = plot_per_class_ap([0.9, None, 0.4], ["a", "b", "c"], tmp_path / "per_class_ap.png")
    cm_path = plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["x", "y"], tmp_path / "confusion_matrix.png")
    for path in (ap_path, cm_path):
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="3 AP values but 2 class names"):
        plot_per_class_ap([0.9, None, 0.4], ["a", "b"], tmp_path / "short.png")


def _probe_inputs():
    encoder = make_model(BeatsModel, seed=0)
    # Ragged clips: the padding of the shorter ones must not enter their means.
    waveforms = [random_waveform(n, seed=i) for i, n in enumerate((8000, 3000, 5600))]
    return encoder, BeatsFeatureExtractor(feature_size=encoder.config.num_mel_bins), waveforms


def test_pooled_embeddings_average_real_patches_and_keep_the_encoder_mode():
    encoder, feature_extractor, waveforms = _probe_inputs()
    encoder.train()  # e.g. a probe taken between training steps
    pooled = pooled_embeddings(encoder, feature_extractor, waveforms, batch_size=2)
    assert encoder.training, "dropout and layer drop must stay on for the training that follows"
    encoder.eval()
    with torch.no_grad():
        for row, waveform in zip(pooled, waveforms):
            alone = encoder(**feature_extractor([waveform], sampling_rate=16000, return_tensors="pt"))
            np.testing.assert_allclose(row, alone.last_hidden_state[0].mean(dim=0).numpy(), atol=1e-5)


def test_pooled_embeddings_of_a_half_precision_encoder_and_after_an_error():
    encoder, feature_extractor, waveforms = _probe_inputs()
    expected = pooled_embeddings(encoder, feature_extractor, waveforms)
    np.testing.assert_allclose(pooled_embeddings(encoder.bfloat16(), feature_extractor, waveforms), expected, atol=0.1)
    encoder.train()
    with pytest.raises(ValueError, match="0.175 s|too short|shorter"):
        pooled_embeddings(encoder, feature_extractor, [waveforms[0], np.zeros(100, dtype=np.float32)])
    assert encoder.training, "the encoder's mode is restored after an error too"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_pooled_embeddings_of_an_encoder_on_cuda():
    encoder, feature_extractor, waveforms = _probe_inputs()
    expected = pooled_embeddings(encoder, feature_extractor, waveforms)
    np.testing.assert_allclose(pooled_embeddings(encoder.cuda(), feature_extractor, waveforms), expected, atol=1e-4)
