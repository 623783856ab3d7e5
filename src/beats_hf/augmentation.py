# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Fine-tuning augmentations on padded filter-bank batches, and the loss that goes with them (paper §3.3.3, Table 4).

Every function works on a right-padded batch as the collators produce it: `input_values` `(batch, frames, mel_bins)`
normalised filter banks and a frame `attention_mask` `(batch, frames)` (1 = real frame, 0 = padding). Padding is never
augmented: roll and SpecAugment only touch a clip's real frames, and mixup reports which frames are real in the mix.

- [`roll_time`]: circular shift of each clip within its real frames (or samples, for waveforms).
- [`spec_augment`]: SpecAugment time and frequency masks (Park et al., 2019).
- [`mixup`]: mixup (Zhang et al., 2017) of filter banks and label targets with `Beta(alpha, alpha)` weights.
- [`FinetuneAugmentation`]: the three in the paper's order, configured with the Table 4 values of a recipe.
- [`AugmentingCollator`]: wraps a collator so that the augmentation runs on each training batch (the Trainer path).
- [`classification_loss`] and [`resolve_loss_type`]: cross-entropy or binary cross-entropy, in float32.

Randomness always comes from an explicit `numpy.random.Generator`, so that a training run can replay (and resume) its
augmentations exactly by seeding one generator per batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .collators import batch_seed_sequence, is_empty_batch

#: SpecAugment fill value. The features are normalised with the dataset's filter-bank mean, so 0 *is* the mean, the
#: value Park et al. fill masks with (a zero in un-normalised log-mel would be a loud, flat spectrum instead).
SPEC_AUGMENT_FILL_VALUE = 0.0

LOSS_TYPES = ("auto", "ce", "bce")


def real_lengths(
    attention_mask: torch.Tensor | None, batch_size: int, length: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Number of real (unpadded) positions of each row: the sum of a right-padding mask, or the full length."""
    if attention_mask is None:
        return torch.full((batch_size,), length, dtype=torch.long, device=device)
    if tuple(attention_mask.shape) != (batch_size, length):
        raise ValueError(
            f"attention_mask must have shape {(batch_size, length)} (batch, frames), got {tuple(attention_mask.shape)}"
        )
    return attention_mask.long().sum(dim=1)


def _check_features(input_values: torch.Tensor) -> None:
    if input_values.dim() != 3:
        raise ValueError(
            f"expected a (batch, frames, mel_bins) filter-bank batch, got shape {tuple(input_values.shape)}"
        )


# ----------------------------------------------------------------------------------------------------------------------
# Roll


def roll_time(
    values: torch.Tensor,
    attention_mask: torch.Tensor | None,
    rng: np.random.Generator,
    shifts: torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Circularly shift every row along dim 1 by a random amount, within its real positions only.

    Works on filter banks `(batch, frames, mel_bins)` and on waveforms `(batch, samples)`. Row `i` with `n_i` real
    positions becomes `x[(t - s_i) mod n_i]` for `t < n_i` (`s_i` uniform in `[0, n_i)`); its padding is left as it
    is, so a rolled clip never wraps padding into its audio.

    Args:
        values: The padded batch.
        attention_mask: `(batch, length)` right-padding mask, or None when no row is padded.
        rng: Source of the shifts.
        shifts: `(batch,)` explicit shifts instead of random ones (taken modulo each row's real length).

    Returns:
        A new tensor of the same shape and dtype.
    """
    if values.dim() < 2:
        raise ValueError(f"roll_time expects a batch with a time axis at dim 1, got shape {tuple(values.shape)}")
    batch, length = values.shape[:2]
    lengths = real_lengths(attention_mask, batch, length, values.device).clamp_min(1)
    if shifts is None:
        shifts = torch.from_numpy(np.floor(rng.random(batch) * lengths.cpu().numpy()).astype(np.int64))
    shifts = shifts.to(values.device).long() % lengths
    positions = torch.arange(length, device=values.device).unsqueeze(0)
    source = (positions - shifts[:, None]) % lengths[:, None]
    # Padding positions read themselves.
    source = torch.where(positions < lengths[:, None], source, positions)
    index = source.view(batch, length, *([1] * (values.dim() - 2))).expand_as(values)
    return torch.gather(values, 1, index)


# ----------------------------------------------------------------------------------------------------------------------
# SpecAugment


def _span_masks(
    lengths: np.ndarray, axis_length: int, ratio: float, num_masks: int, rng: np.random.Generator
) -> np.ndarray:
    """`(batch, axis_length)` bool: `num_masks` spans per row, each of width uniform in {0..floor(ratio * n)}."""
    batch = len(lengths)
    mask = np.zeros((batch, axis_length), dtype=bool)
    if ratio <= 0 or num_masks <= 0:
        return mask
    max_width = np.floor(ratio * lengths).astype(np.int64)
    positions = np.arange(axis_length)
    for _ in range(num_masks):
        width = np.floor(rng.random(batch) * (max_width + 1)).astype(np.int64)
        start = np.floor(rng.random(batch) * (lengths - width + 1)).astype(np.int64)
        mask |= (positions[None, :] >= start[:, None]) & (positions[None, :] < (start + width)[:, None])
    return mask


def spec_augment(
    input_values: torch.Tensor,
    attention_mask: torch.Tensor | None,
    rng: np.random.Generator,
    time_mask_ratio: float,
    freq_mask_ratio: float,
    num_time_masks: int = 1,
    num_freq_masks: int = 1,
    fill_value: float = SPEC_AUGMENT_FILL_VALUE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    SpecAugment time and frequency masking of a padded filter-bank batch.

    Each clip gets `num_time_masks` time masks whose widths are drawn uniformly from `{0, ..., floor(time_mask_ratio *
    n)}` (`n` = the clip's real frames; this is Park et al.'s upper bound `p` on the masked fraction of time steps) and
    `num_freq_masks` frequency masks with widths up to `floor(freq_mask_ratio * mel_bins)`. Masked cells are set to
    `fill_value` (0 = the dataset mean of the normalised features). Only real frames are masked; padding is untouched.
    So the masked fraction of a clip's real frames is at most `num_time_masks * time_mask_ratio` (likewise for mel
    bins), and about half of that on average.

    Returns:
        The masked batch (a new tensor) and the `(batch, frames, mel_bins)` bool tensor of masked cells.
    """
    _check_features(input_values)
    for name, ratio in (("time_mask_ratio", time_mask_ratio), ("freq_mask_ratio", freq_mask_ratio)):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {ratio}")
    if num_time_masks < 0 or num_freq_masks < 0:
        raise ValueError(f"mask counts must be >= 0, got {num_time_masks} time and {num_freq_masks} frequency masks")
    batch, frames, mel_bins = input_values.shape
    lengths = real_lengths(attention_mask, batch, frames).cpu().numpy()
    time_mask = _span_masks(lengths, frames, time_mask_ratio, num_time_masks, rng)
    freq_mask = _span_masks(np.full(batch, mel_bins), mel_bins, freq_mask_ratio, num_freq_masks, rng)
    real = np.arange(frames)[None, :] < lengths[:, None]
    masked = (time_mask[:, :, None] | freq_mask[:, None, :]) & real[:, :, None]
    masked = torch.from_numpy(masked).to(input_values.device)
    return input_values.masked_fill(masked, fill_value), masked


# ----------------------------------------------------------------------------------------------------------------------
# Mixup


def labels_to_targets(labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Float targets `(batch, num_labels)`: one-hot for class indices `(batch,)`, unchanged (as float) otherwise."""
    if labels.dim() == 1:
        if labels.is_floating_point():
            raise ValueError("1-D labels must be integer class indices; multi-label targets are (batch, num_labels)")
        if bool((labels < 0).any()) or bool((labels >= num_labels).any()):
            raise ValueError(f"class indices must lie in [0, {num_labels}), got {labels.tolist()}")
        return F.one_hot(labels.long(), num_labels).float()
    if labels.dim() != 2 or labels.shape[1] != num_labels:
        raise ValueError(f"expected labels (batch,) or (batch, {num_labels}), got shape {tuple(labels.shape)}")
    return labels.float()


def mixup(
    input_values: torch.Tensor,
    attention_mask: torch.Tensor | None,
    targets: torch.Tensor,
    rng: np.random.Generator,
    alpha: float,
    partner: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """
    Mix every clip with a random partner from the batch: `lam * x_i + (1 - lam) * x_j` on filter banks and targets.

    `lam` is drawn per clip from `Beta(alpha, alpha)`. Clips of different lengths are mixed on the padded batch (the
    longer length wins): where only one clip is real, the other contributes the dataset mean (0 in normalised
    features), whatever value the batch is padded with, so padding never leaks into real frames. The mixed clip's
    attention mask is the union of the two masks, still a right-padding prefix, and the frames that are padding in
    both clips keep the batch's padding value.

    Args:
        input_values: `(batch, frames, mel_bins)` filter banks.
        attention_mask: `(batch, frames)` right-padding mask, or None.
        targets: `(batch, num_labels)` float targets (see [`labels_to_targets`]).
        rng: Source of partners and weights.
        alpha: Beta distribution parameter (> 0).
        partner, weights: explicit `(batch,)` partner indices and mixing weights instead of random ones.

    Returns:
        Mixed features, mixed attention mask (None if the input had none), mixed targets (rows still sum to what
        they summed to, e.g. 1 for one-hot), and the `(batch,)` weights `lam`.
    """
    _check_features(input_values)
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0, got {alpha}")
    batch = input_values.shape[0]
    if targets.dim() != 2 or targets.shape[0] != batch or not targets.is_floating_point():
        raise ValueError(
            f"mixup needs float targets of shape (batch={batch}, num_labels), got {tuple(targets.shape)} "
            f"{targets.dtype}; convert class indices with labels_to_targets"
        )
    if partner is None:
        partner = torch.from_numpy(rng.permutation(batch))
    if weights is None:
        weights = torch.from_numpy(rng.beta(alpha, alpha, size=batch))
    partner = partner.to(input_values.device).long()
    lam = weights.to(device=input_values.device, dtype=torch.float32)
    lam_x = lam.to(input_values.dtype).view(batch, 1, 1)
    lam_y = lam.to(targets.dtype).view(batch, 1)
    mixed_targets = lam_y * targets + (1 - lam_y) * targets[partner]
    if attention_mask is None:
        return lam_x * input_values + (1 - lam_x) * input_values[partner], None, mixed_targets, lam
    real = attention_mask.bool()
    # The feature extractor's padding_value need not be the mean: a clip shorter than its partner must add the mean
    # (0), not its padding value, to the partner's real frames.
    present = input_values.masked_fill(~real[:, :, None], 0.0)
    mixed_real = real | real[partner]
    mixed = torch.where(mixed_real[:, :, None], lam_x * present + (1 - lam_x) * present[partner], input_values)
    return mixed, mixed_real.to(attention_mask.dtype), mixed_targets, lam


# ----------------------------------------------------------------------------------------------------------------------
# The fine-tuning recipe


@dataclasses.dataclass
class FinetuneAugmentation:
    """
    The paper's fine-tuning augmentations, applied in the order roll -> mixup -> SpecAugment to a padded batch
    (mixup before SpecAugment so that masks cover the mixed clip, as when each clip is masked on its own).

    Defaults switch everything off; the recipes set the Table 4 values (e.g. AS-2M: roll, SpecAugment 0.3,
    mixup 0.8). `num_labels` is needed only to turn class indices into one-hot targets for mixup.
    """

    roll: bool = False
    spec_augment_time_ratio: float = 0.0
    spec_augment_freq_ratio: float = 0.0
    num_time_masks: int = 1
    num_freq_masks: int = 1
    mixup_alpha: float = 0.0
    mixup_prob: float = 1.0
    num_labels: int | None = None
    fill_value: float = SPEC_AUGMENT_FILL_VALUE

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0 (0 disables mixup), got {self.mixup_alpha}")
        if not 0.0 <= self.mixup_prob <= 1.0:
            raise ValueError(f"mixup_prob must be in [0, 1], got {self.mixup_prob}")
        if self.mixup_alpha > 0 and self.num_labels is None:
            raise ValueError("mixup needs num_labels to build one-hot targets from class indices")
        for name in ("spec_augment_time_ratio", "spec_augment_freq_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return (
            self.roll
            or self.mixup_alpha > 0
            or (self.spec_augment_time_ratio > 0 and self.num_time_masks > 0)
            or (self.spec_augment_freq_ratio > 0 and self.num_freq_masks > 0)
        )

    def __call__(self, batch: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Augment `batch` (`input_values`, optional `attention_mask` and `labels`); returns a new dict."""
        out = dict(batch)
        if not self.enabled:
            return out
        values = out["input_values"]
        mask = out.get("attention_mask")
        if self.roll:
            values = roll_time(values, mask, rng)
        if self.mixup_alpha > 0 and rng.random() < self.mixup_prob:
            if out.get("labels") is None:
                raise ValueError("mixup needs labels in the batch")
            targets = labels_to_targets(out["labels"], self.num_labels)
            values, mask, out["labels"], _ = mixup(values, mask, targets, rng, self.mixup_alpha)
        if self.spec_augment_time_ratio > 0 or self.spec_augment_freq_ratio > 0:
            values, _ = spec_augment(
                values,
                mask,
                rng,
                self.spec_augment_time_ratio,
                self.spec_augment_freq_ratio,
                self.num_time_masks,
                self.num_freq_masks,
                self.fill_value,
            )
        out["input_values"] = values
        if mask is not None:
            out["attention_mask"] = mask
        return out


class AugmentingCollator:
    """
    A collator that augments what `collator` returns with a [`FinetuneAugmentation`], for training batches only.
    Batches with no usable clip ([`beats_hf.collators.is_empty_batch`]) are passed through unchanged.

    When the items carry a `sample_seed` (as [`beats_hf.data.AudioClipDataset`] items do), each batch's generator is
    seeded from `seed` and those: a batch's augmentations depend only on the seed, the epoch and the clips in it, not
    on data-loader workers, processes or where a run was resumed (the Trainer skips the batches it already trained
    on without collating them). Otherwise the random stream is seeded from `seed` in the main process and, in a
    DataLoader worker, from the worker's own seed (which torch derives from the global seed each epoch), so workers
    never repeat each other's augmentations.
    """

    def __init__(self, collator: Callable[[list], Mapping[str, Any]], augmentation: FinetuneAugmentation, seed: int):
        self.collator = collator
        self.augmentation = augmentation
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._worker_seed: int | None = None

    def _generator(self, items: list) -> np.random.Generator:
        sequence = batch_seed_sequence(self.seed, items)
        if sequence is not None:
            return np.random.default_rng(sequence)
        info = torch.utils.data.get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            self._rng = np.random.default_rng([self.seed, info.seed])
        return self._rng

    def __call__(self, features: list) -> dict[str, Any]:
        batch = self.collator(features)
        if is_empty_batch(batch):  # every clip was unreadable: nothing to augment, and the training step skips it
            return dict(batch)
        return self.augmentation(batch, self._generator(features))


# ----------------------------------------------------------------------------------------------------------------------
# Loss


def resolve_loss_type(loss: str, multi_label: bool, mixup_alpha: float = 0.0) -> str:
    """
    `"ce"` or `"bce"`. `"auto"` follows the paper (§3.3.3): binary cross-entropy for multi-label data or when mixup
    is used, cross-entropy otherwise. Cross-entropy on multi-label data is refused.
    """
    if loss not in LOSS_TYPES:
        raise ValueError(f"loss must be one of {LOSS_TYPES}, got {loss!r}")
    if loss == "auto":
        return "bce" if multi_label or mixup_alpha > 0 else "ce"
    if loss == "ce" and multi_label:
        raise ValueError("cross-entropy needs one label per clip; use loss 'bce' (or 'auto') for multi-label data")
    return loss


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, loss_type: str) -> torch.Tensor:
    """
    Mean classification loss in float32 (whatever the autocast dtype of `logits`).

    Args:
        logits: `(batch, num_labels)` pooled scores.
        labels: `(batch,)` class indices, or `(batch, num_labels)` float targets (multi-hot or mixed soft targets).
        loss_type: `"ce"` (softmax cross-entropy, soft targets allowed) or `"bce"` (sigmoid binary cross-entropy,
            averaged over clips and classes).
    """
    logits = logits.float()
    if loss_type == "ce":
        if labels.dim() == 1:
            return F.cross_entropy(logits, labels.long())
        return F.cross_entropy(logits, labels.float())
    if loss_type == "bce":
        return F.binary_cross_entropy_with_logits(logits, labels_to_targets(labels, logits.shape[-1]))
    raise ValueError(f"loss_type must be 'ce' or 'bce', got {loss_type!r}")


__all__ = [
    "LOSS_TYPES",
    "SPEC_AUGMENT_FILL_VALUE",
    "AugmentingCollator",
    "FinetuneAugmentation",
    "classification_loss",
    "labels_to_targets",
    "mixup",
    "real_lengths",
    "resolve_loss_type",
    "roll_time",
    "spec_augment",
]
