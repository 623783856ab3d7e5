# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Shared helpers of the model and integration tests: a tiny BEATs configuration and random inputs."""

import numpy as np
import torch

from beats_hf import BeatsConfig

# 2 layers, hidden 32, 4 heads, 16 x 16 patches over 32 mel bins (2 mel bands per time step). The patch embedding
# (24) differs from hidden_size so that the projection exists; max_bucket_distance must exceed num_buckets // 4.
TINY_CONFIG_KWARGS = {
    "num_mel_bins": 32,
    "patch_size": 16,
    "patch_embedding_dim": 24,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "num_conv_pos_embeddings": 4,
    "num_conv_pos_embedding_groups": 4,
    "num_buckets": 32,
    "max_bucket_distance": 64,
    "codebook_size": 16,
    "codebook_dim": 8,
    "label_predictor_num_layers": 1,
    "layerdrop": 0.0,
    "layer_wise_gradient_decay_ratio": 1.0,
}


def tiny_config(**overrides) -> BeatsConfig:
    """The tiny test configuration, with `overrides` applied."""
    return BeatsConfig(**{**TINY_CONFIG_KWARGS, **overrides})


def make_model(model_class, seed=0, attn_implementation=None, **config_overrides):
    """A seeded, randomly initialised tiny model in eval mode."""
    torch.manual_seed(seed)
    config = tiny_config(**config_overrides)
    if attn_implementation is not None:
        return model_class._from_config(config, attn_implementation=attn_implementation).eval()
    return model_class(config).eval()


def padded_batch(valid_frames=(64, 50, 33), num_mel_bins=32, seed=0):
    """
    Random normalised filter banks, right-padded to the longest clip, and their frame-level attention mask.
    The padded frames hold large random values (not zeros) so that any leak of padding into the outputs shows.
    """
    generator = torch.Generator().manual_seed(seed)
    num_frames = max(valid_frames)
    input_values = torch.randn(len(valid_frames), num_frames, num_mel_bins, generator=generator)
    attention_mask = torch.zeros(len(valid_frames), num_frames, dtype=torch.long)
    for i, length in enumerate(valid_frames):
        attention_mask[i, :length] = 1
        input_values[i, length:] = 100.0 * torch.randn(num_frames - length, num_mel_bins, generator=generator)
    return input_values, attention_mask


def random_waveform(num_samples, seed=0, amplitude=0.3) -> np.ndarray:
    """Mono float32 noise in [-amplitude, amplitude], the kind of input the feature extractor takes."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.uniform(-1.0, 1.0, num_samples)).astype(np.float32)
