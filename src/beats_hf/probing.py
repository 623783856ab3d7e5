# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Linear probing: how linearly separable are a frozen encoder's clip embeddings? (What pre-training bought.)"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .feature_extraction_beats import BeatsFeatureExtractor
from .modeling_beats import BeatsModel


@torch.no_grad()
def pooled_embeddings(
    encoder: BeatsModel,
    feature_extractor: BeatsFeatureExtractor,
    waveforms: Sequence[np.ndarray],
    batch_size: int = 16,
) -> np.ndarray:
    """
    Mean of the last layer's patch vectors over each clip's real patches, `(num_clips, hidden_size)`, computed on the
    encoder's device and in its dtype, in eval mode (the encoder's mode is restored afterwards, also after an error).
    The waveforms must be at the feature extractor's sampling rate.
    """
    if len(waveforms) == 0:
        raise ValueError("pooled_embeddings needs at least one waveform.")
    was_training = encoder.training
    encoder.eval()
    rows = []
    try:
        for start in range(0, len(waveforms), batch_size):
            batch = list(waveforms[start : start + batch_size])
            inputs = feature_extractor(batch, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
            # Filter banks are float32; a half-precision encoder takes them in its own dtype.
            input_values = inputs["input_values"].to(encoder.device, encoder.dtype)
            outputs = encoder(input_values=input_values, attention_mask=inputs["attention_mask"].to(encoder.device))
            mask = outputs.patch_attention_mask.unsqueeze(-1).float()
            pooled = (outputs.last_hidden_state.float() * mask).sum(dim=1) / mask.sum(dim=1)
            rows.append(pooled.cpu().numpy())
    finally:
        # A probe taken during training must not leave dropout and layer drop switched off.
        encoder.train(was_training)
    return np.concatenate(rows, axis=0)


def linear_probe_accuracy(
    train_features: np.ndarray,
    train_labels: Sequence[int],
    test_features: np.ndarray,
    test_labels: Sequence[int],
    seed: int = 0,
) -> float:
    """Test accuracy of a multinomial logistic regression on standardised features (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    probe.fit(train_features, np.asarray(train_labels))
    return float((probe.predict(test_features) == np.asarray(test_labels)).mean())


__all__ = ["linear_probe_accuracy", "pooled_embeddings"]
