# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Data collators: batches of clips from [`beats_hf.data`] datasets to model inputs.

- [`DataCollatorForMaskedAudioModeling`]: filter banks plus MAM masks, with `K` masked views per clip sharing one
  tokenizer pass (`clip_index` maps views to clips).
- [`DataCollatorForAudio`]: filter banks plus class labels (ids, or multi-hot floats), for tokenizer training and
  fine-tuning.

Both drop the `None` items the datasets return for unreadable clips and report how many they dropped
(`num_skipped_clips`); a batch with no usable clip comes out as `{"num_skipped_clips": n}` alone, and training loops
skip it ([`is_empty_batch`]). Other batches also count the clips the dataset cut to its `max_seconds` (items with
`truncated`; `num_truncated_clips`): unlike the dataset's own counter, this count crosses data-loader worker
processes with the batches. With `return_waveforms=True` they leave the filter bank to the training step
([`compute_input_values`]), so that it can run on the accelerator, in float32, outside autocast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .configuration_beats import BeatsConfig
from .feature_extraction_beats import BeatsFeatureExtractor, compute_beats_fbank, num_fbank_frames
from .label_cache import clip_key
from .masking import MASK_TYPES, multi_mask
from .modeling_beats import compute_patch_attention_mask


def is_empty_batch(batch: dict[str, Any]) -> bool:
    """True for the batch a collator returns when every clip of it was unreadable."""
    return "attention_mask" not in batch


def _pad_waveforms(waveforms: list[np.ndarray]) -> tuple[torch.Tensor, torch.LongTensor]:
    lengths = torch.tensor([w.shape[0] for w in waveforms], dtype=torch.long)
    padded = torch.zeros(len(waveforms), int(lengths.max()), dtype=torch.float32)
    for row, waveform in zip(padded, waveforms):
        row[: waveform.shape[0]] = torch.from_numpy(np.asarray(waveform, dtype=np.float32))
    return padded, lengths


def _frame_attention_mask(lengths: torch.LongTensor, sampling_rate: int) -> torch.Tensor:
    frames = num_fbank_frames(lengths, sampling_rate)
    positions = torch.arange(int(frames.max()))
    return (positions[None, :] < frames[:, None]).to(torch.int32)


def compute_input_values(batch: dict[str, Any], feature_extractor: BeatsFeatureExtractor) -> torch.Tensor:
    """
    The normalised filter bank of a batch: `batch["input_values"]` when the collator computed it, otherwise computed
    here from `waveforms` / `waveform_lengths` on their device, in float32 with autocast disabled (the fbank's
    power spectrum overflows half precision, and the features must not depend on the mixed-precision setting).
    Both paths honour every setting of `feature_extractor`, `exact_fbank` included, so they give the same features.
    """
    if "input_values" in batch:
        return batch["input_values"]
    waveforms = batch["waveforms"]
    with torch.autocast(device_type=waveforms.device.type, enabled=False):
        return compute_beats_fbank(
            waveforms.float(),
            batch["waveform_lengths"],
            num_mel_bins=feature_extractor.feature_size,
            sample_frequency=feature_extractor.sampling_rate,
            fbank_mean=feature_extractor.fbank_mean,
            fbank_std=feature_extractor.fbank_std,
            padding_value=feature_extractor.padding_value,
            exact=feature_extractor.exact_fbank,
        )


class _AudioBatcher:
    """Shared part of the collators: drop unusable items, then filter banks (or padded waveforms)."""

    def __init__(self, feature_extractor: BeatsFeatureExtractor, return_waveforms: bool):
        self.feature_extractor = feature_extractor
        self.return_waveforms = return_waveforms

    def __call__(self, items: list[dict[str, Any] | None]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        kept = [item for item in items if item is not None]
        batch: dict[str, Any] = {"num_skipped_clips": len(items) - len(kept)}
        if not kept:
            return kept, batch
        waveforms = [item["waveform"] for item in kept]
        sampling_rate = self.feature_extractor.sampling_rate
        if self.return_waveforms:
            batch["waveforms"], batch["waveform_lengths"] = _pad_waveforms(waveforms)
            batch["attention_mask"] = _frame_attention_mask(batch["waveform_lengths"], sampling_rate)
        else:
            features = self.feature_extractor(waveforms, sampling_rate=sampling_rate, return_tensors="pt")
            batch["input_values"] = features["input_values"]
            batch["attention_mask"] = features["attention_mask"]
        batch["num_truncated_clips"] = sum(bool(item.get("truncated", False)) for item in kept)
        batch["clip_ids"] = [item.get("id", str(i)) for i, item in enumerate(kept)]
        batch["clip_keys"] = [
            clip_key(item.get("id", str(i)), item.get("crop_start", 0), item["waveform"])
            for i, item in enumerate(kept)
        ]
        return kept, batch


def batch_seed_sequence(seed: int, items: list[Any]) -> np.random.SeedSequence | None:
    """
    The seed of a batch's random draws (masks, augmentations) from `seed` and its usable items' `sample_seed`s, or
    None when an item has none. A batch then draws the same whatever came before it: in another data-loader worker,
    another process, or after a resume that skipped the batches before it without collating them.
    """
    seeds = [item.get("sample_seed") if isinstance(item, Mapping) else None for item in items if item is not None]
    if not seeds or any(value is None for value in seeds):
        return None
    return np.random.SeedSequence([seed, *seeds])


class DataCollatorForMaskedAudioModeling:
    """
    Collates clips for masked audio modelling: filter banks (or waveforms), a frame `attention_mask`, and
    `num_mask_views` masks per clip drawn on the CPU.

    The batch holds, for `B` usable clips and `K = num_mask_views`:

    - `input_values` `(B, frames, mel)` (or `waveforms` `(B, samples)` and `waveform_lengths` `(B,)` with
      `return_waveforms=True`) and `attention_mask` `(B, frames)`: one entry per **clip**, so the tokenizer runs
      once per clip;
    - `bool_masked_pos` `(K * B, num_patches)`, clip-major (row `r` is view `r % K` of clip `r // K`) and
      `clip_index` `(K * B,)` mapping each view to its clip: feed the model `input_values[clip_index]` and the
      tokenizer's labels `labels[clip_index]`;
    - `clip_ids`, `clip_keys` (for [`TokenizerLabelCache`]), `num_skipped_clips` and `num_truncated_clips`.

    Masks are reproducible: when the items carry a `sample_seed` (as [`AudioClipDataset`] items do), the batch's
    generator is seeded from `seed` and those, so a batch's masks depend only on the seed, the epoch and the clips
    in it, not on worker processes or on a resume. Otherwise one generator seeded with `seed` is used in turn.

    Args:
        feature_extractor ([`BeatsFeatureExtractor`]): makes the filter banks.
        config ([`BeatsConfig`]): gives the patch grid (`patch_size`, `num_freq_patches`).
        mask_ratio (`float`, defaults to 0.75): fraction of real patches masked in every view (paper: 75%).
        mask_type (`str`, defaults to `"random"`): `"random"` (paper) or `"inverse_block"` (EAT).
        num_mask_views (`int`, defaults to 1): masked views per clip (EAT's multi-mask).
        seed (`int`, defaults to 0): seed of the masks.
        block_time, block_freq (`int`, default to 5): block shape of inverse block masks, in patches.
        return_waveforms (`bool`, defaults to `False`): leave the filter bank to [`compute_input_values`].
    """

    def __init__(
        self,
        feature_extractor: BeatsFeatureExtractor,
        config: BeatsConfig,
        mask_ratio: float = 0.75,
        mask_type: str = "random",
        num_mask_views: int = 1,
        seed: int = 0,
        block_time: int = 5,
        block_freq: int = 5,
        return_waveforms: bool = False,
    ):
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}.")
        if num_mask_views < 1:
            raise ValueError(f"num_mask_views must be >= 1, got {num_mask_views}.")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}.")
        if feature_extractor.feature_size != config.num_mel_bins:
            raise ValueError(
                f"The feature extractor makes {feature_extractor.feature_size} mel bins but the model expects "
                f"{config.num_mel_bins}; use the feature extractor saved with the model."
            )
        self.batcher = _AudioBatcher(feature_extractor, return_waveforms)
        self.config = config
        self.mask_ratio = mask_ratio
        self.mask_type = mask_type
        self.num_mask_views = num_mask_views
        self.seed = seed
        self.block_time = block_time
        self.block_freq = block_freq
        self._fallback_generator = torch.Generator().manual_seed(seed)

    def _generator(self, items: list[dict[str, Any]]) -> torch.Generator:
        sequence = batch_seed_sequence(self.seed, items)
        if sequence is None:
            return self._fallback_generator
        return torch.Generator().manual_seed(int(sequence.generate_state(1, dtype=np.uint64)[0]))

    def __call__(self, items: list[dict[str, Any] | None]) -> dict[str, Any]:
        kept, batch = self.batcher(items)
        if not kept:
            return batch
        frame_mask = batch["attention_mask"]
        num_frames = frame_mask.shape[1]
        patch_attention_mask = compute_patch_attention_mask(frame_mask, num_frames, self.config)
        if patch_attention_mask is None:
            num_patches = (num_frames // self.config.patch_size) * self.config.num_freq_patches
            patch_attention_mask = torch.ones(len(kept), num_patches, dtype=torch.bool)
        batch["bool_masked_pos"], batch["clip_index"] = multi_mask(
            patch_attention_mask,
            self.num_mask_views,
            self.mask_ratio,
            self.mask_type,
            num_freq_patches=self.config.num_freq_patches,
            block_time=self.block_time,
            block_freq=self.block_freq,
            generator=self._generator(kept),
        )
        return batch


class DataCollatorForAudio:
    """
    Collates clips for tokenizer training and fine-tuning: `input_values` (or `waveforms` and `waveform_lengths`),
    a frame `attention_mask`, and, when `num_labels` is given, `labels` from the items' label ids (datasets built
    with `label2id`):

    - single-label (`multi_label=False`): `labels` is a `(B,)` LongTensor; a clip without exactly one label is an
      error naming the clip;
    - multi-label (`multi_label=True`): `labels` is a `(B, num_labels)` multi-hot float tensor.

    Without `num_labels` the items' labels are not used (features only, e.g. for tokenizer training).

    Also `clip_ids`, `clip_keys`, `num_skipped_clips` and `num_truncated_clips` (see
    [`DataCollatorForMaskedAudioModeling`]).

    Args:
        feature_extractor ([`BeatsFeatureExtractor`]): makes the filter banks.
        num_labels (`int`, *optional*): number of classes; `None` leaves labels out of the batch.
        multi_label (`bool`, defaults to `False`): multi-hot float labels instead of class ids.
        return_waveforms (`bool`, defaults to `False`): leave the filter bank to [`compute_input_values`].
    """

    def __init__(
        self,
        feature_extractor: BeatsFeatureExtractor,
        num_labels: int | None = None,
        multi_label: bool = False,
        return_waveforms: bool = False,
    ):
        if multi_label and num_labels is None:
            raise ValueError("multi_label=True needs num_labels (the size of the multi-hot label vector).")
        if num_labels is not None and num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}.")
        self.batcher = _AudioBatcher(feature_extractor, return_waveforms)
        self.num_labels = num_labels
        self.multi_label = multi_label

    def _labels(self, items: list[dict[str, Any]]) -> torch.Tensor:
        label_lists = [list(item.get("labels") or []) for item in items]
        for item, labels in zip(items, label_lists):
            if any(not isinstance(label, (int, np.integer)) for label in labels):
                raise ValueError(
                    f"Clip {item.get('id')} has label names {labels}, not ids; build the dataset with label2id "
                    "(beats_hf.data.build_label_vocabulary)."
                )
            if any(not 0 <= label < self.num_labels for label in labels):
                raise ValueError(f"Clip {item.get('id')} has label ids {labels} outside [0, {self.num_labels}).")
        if self.multi_label:
            targets = torch.zeros(len(items), self.num_labels, dtype=torch.float32)
            for row, labels in enumerate(label_lists):
                targets[row, list(labels)] = 1.0
            return targets
        for item, labels in zip(items, label_lists):
            if len(labels) != 1:
                raise ValueError(
                    f"Clip {item.get('id')} has {len(labels)} labels {labels}; single-label classification needs "
                    "exactly one per clip. Give every clip one label, or treat the data as multi-label: "
                    "DataCollatorForAudio(multi_label=True) with a model whose problem_type is "
                    "multi_label_classification (`multi_label: true` in finetune.py's config)."
                )
        return torch.tensor([labels[0] for labels in label_lists], dtype=torch.long)

    def __call__(self, items: list[dict[str, Any] | None]) -> dict[str, Any]:
        kept, batch = self.batcher(items)
        if not kept:
            return batch
        if self.num_labels is not None:
            batch["labels"] = self._labels(kept)
        return batch


__all__ = [
    "DataCollatorForAudio",
    "DataCollatorForMaskedAudioModeling",
    "batch_seed_sequence",
    "compute_input_values",
    "is_empty_batch",
]
