# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Fine-tuning ingredients: roll, SpecAugment, mixup, the loss, layer-wise LR decay, and the samplers."""

import numpy as np
import pytest
import torch
from torch import nn

from beats_hf.augmentation import (
    AugmentingCollator,
    FinetuneAugmentation,
    classification_loss,
    labels_to_targets,
    mixup,
    resolve_loss_type,
    roll_time,
    spec_augment,
)
from beats_hf.data import AudioRecord
from beats_hf.sampling import (
    EpochShuffleSampler,
    EpochWeightedSampler,
    fold_assignments,
    label_frequency_weights,
    reference_balanced_weights,
    split_by_fraction,
)

PAD = -7.0  # a padding value no augmentation could produce by accident


def padded_batch(lengths=(40, 25, 64, 17), frames=64, mel_bins=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(len(lengths), frames, mel_bins, generator=generator)
    mask = (torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]).long()
    values = values.masked_fill(~mask.bool()[:, :, None], PAD)
    return values, mask


# ----------------------------------------------------------------------------------------------------------------------
# Roll


def test_roll_is_a_cyclic_shift_of_real_frames_and_leaves_padding():
    values, mask = padded_batch()
    shifts = torch.tensor([3, 0, 70, 16])
    rolled = roll_time(values, mask, np.random.default_rng(0), shifts=shifts)
    assert rolled.shape == values.shape
    for i, n in enumerate(mask.sum(1).tolist()):
        expected = torch.roll(values[i, :n], shifts=int(shifts[i]) % n, dims=0)
        assert torch.equal(rolled[i, :n], expected)
        assert torch.equal(rolled[i, n:], values[i, n:])


def test_roll_random_shifts_preserve_content_and_work_on_waveforms():
    values, mask = padded_batch()
    rolled = roll_time(values, mask, np.random.default_rng(1))
    for i, n in enumerate(mask.sum(1).tolist()):
        assert torch.equal(rolled[i, :n].sort(dim=0).values, values[i, :n].sort(dim=0).values)
        assert torch.equal(rolled[i, n:], values[i, n:])
    waveforms = torch.arange(10.0).repeat(2, 1)
    wave_mask = torch.tensor([[1] * 10, [1] * 6 + [0] * 4])
    out = roll_time(waveforms, wave_mask, np.random.default_rng(0), shifts=torch.tensor([2, 1]))
    assert out[0].tolist() == [8, 9, 0, 1, 2, 3, 4, 5, 6, 7]
    assert out[1].tolist() == [5, 0, 1, 2, 3, 4, 6, 7, 8, 9]


# ----------------------------------------------------------------------------------------------------------------------
# SpecAugment


def test_spec_augment_masks_real_frames_within_bounds_and_fills_with_mean():
    values, mask = padded_batch()
    lengths = mask.sum(1)
    ratio_t, ratio_f = 0.3, 0.2
    for seed in range(50):
        out, masked = spec_augment(values, mask, np.random.default_rng(seed), ratio_t, ratio_f)
        assert out.shape == values.shape
        assert torch.all(out[masked] == 0.0)
        assert torch.equal(out[~masked], values[~masked])
        for i, n in enumerate(lengths.tolist()):
            assert not masked[i, n:].any(), "padding must never be masked"
            assert torch.all(out[i, n:] == PAD)
            real = masked[i, :n]
            masked_frames = real.all(dim=1).sum().item()  # frames masked across every mel bin
            masked_bins = real.all(dim=0).sum().item()
            assert masked_frames <= int(ratio_t * n)
            assert masked_bins <= int(ratio_f * values.shape[2])
            # Every masked cell lies in a masked frame or a masked mel bin (masks are full stripes).
            stripes = real.all(dim=1)[:, None] | real.all(dim=0)[None, :]
            assert torch.equal(real & ~stripes, torch.zeros_like(real))


def test_spec_augment_masked_fraction_statistics():
    frames, mel_bins, ratio = 200, 128, 0.3
    values = torch.randn(256, frames, mel_bins)
    _, masked = spec_augment(values, None, np.random.default_rng(0), ratio, ratio, num_time_masks=1, num_freq_masks=1)
    time_fraction = masked.all(dim=2).float().mean().item()
    freq_fraction = masked.all(dim=1).float().mean().item()
    # One mask of width uniform in {0..floor(0.3 n)}: mean fraction ~ 0.15.
    assert time_fraction == pytest.approx(ratio / 2, abs=0.02)
    assert freq_fraction == pytest.approx(ratio / 2, abs=0.02)
    _, masked_two = spec_augment(values, None, np.random.default_rng(0), ratio, 0.0, num_time_masks=2)
    assert masked_two.all(dim=2).float().sum(1).max().item() <= 2 * int(ratio * frames)
    assert masked_two.all(dim=2).float().mean().item() > time_fraction


def test_spec_augment_rejects_bad_ratios():
    values, mask = padded_batch()
    with pytest.raises(ValueError, match="time_mask_ratio"):
        spec_augment(values, mask, np.random.default_rng(0), 1.5, 0.1)


# ----------------------------------------------------------------------------------------------------------------------
# Mixup


def test_mixup_mixes_features_labels_and_masks():
    values, mask = padded_batch()
    targets = labels_to_targets(torch.tensor([0, 3, 1, 3]), 5)
    partner = torch.tensor([2, 0, 3, 1])
    lam = torch.tensor([0.7, 0.2, 0.5, 1.0])
    mixed, mixed_mask, mixed_targets, used = mixup(
        values, mask, targets, np.random.default_rng(0), 0.8, partner=partner, weights=lam
    )
    assert torch.equal(used, lam)
    lengths = mask.sum(1).tolist()
    for i in range(4):
        j = int(partner[i])
        n_i, n_j = lengths[i], lengths[j]
        common, longer = min(n_i, n_j), max(n_i, n_j)
        assert torch.allclose(mixed[i, :common], lam[i] * values[i, :common] + (1 - lam[i]) * values[j, :common])
        # Where only one clip is real the other adds the mean (0), never its padding value.
        only = values[i, common:longer] if n_i > n_j else values[j, common:longer]
        weight = lam[i] if n_i > n_j else 1 - lam[i]
        assert torch.allclose(mixed[i, common:longer], weight * only)
        assert torch.all(mixed[i, longer:] == PAD)
        assert torch.allclose(mixed_targets[i], lam[i] * targets[i] + (1 - lam[i]) * targets[j])
        assert torch.equal(mixed_mask[i], (mask[i].bool() | mask[j].bool()).long())
    assert torch.allclose(mixed_targets.sum(1), torch.ones(4))
    # The union of two right-padding prefixes is the longer prefix: still right padding.
    lengths = mixed_mask.sum(1)
    assert torch.equal(mixed_mask, (torch.arange(64)[None] < lengths[:, None]).long())


def test_mixup_weight_statistics_follow_beta():
    values = torch.zeros(4000, 16, 8)
    targets = labels_to_targets(torch.zeros(4000, dtype=torch.long), 2)
    alpha = 0.8
    _, _, mixed_targets, lam = mixup(values, None, targets, np.random.default_rng(0), alpha)
    assert torch.allclose(mixed_targets.sum(1), torch.ones(4000))
    assert lam.min() >= 0 and lam.max() <= 1
    assert lam.mean().item() == pytest.approx(0.5, abs=0.02)
    assert lam.var().item() == pytest.approx(1 / (4 * (2 * alpha + 1)), abs=0.01)


def test_mixup_needs_float_targets():
    values, mask = padded_batch()
    with pytest.raises(ValueError, match="labels_to_targets"):
        mixup(values, mask, torch.tensor([0, 1, 2, 3]), np.random.default_rng(0), 0.8)


# ----------------------------------------------------------------------------------------------------------------------
# The recipe object and the collator


def test_finetune_augmentation_pipeline_and_reproducibility():
    values, mask = padded_batch()
    batch = {"input_values": values, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 3])}
    off = FinetuneAugmentation()
    assert not off.enabled
    assert off(batch, np.random.default_rng(0))["input_values"] is values

    augmentation = FinetuneAugmentation(
        roll=True, spec_augment_time_ratio=0.3, spec_augment_freq_ratio=0.3, mixup_alpha=0.8, num_labels=4
    )
    first = augmentation(batch, np.random.default_rng(5))
    second = augmentation(batch, np.random.default_rng(5))
    assert torch.equal(first["input_values"], second["input_values"])
    assert first["labels"].shape == (4, 4) and torch.allclose(first["labels"].sum(1), torch.ones(4))
    assert not torch.equal(first["input_values"], values)
    # Padding of the mixed batch is untouched padding of the original batch.
    lengths = first["attention_mask"].sum(1)
    for i, n in enumerate(lengths.tolist()):
        assert torch.all(first["input_values"][i, n:] == PAD)
    assert torch.equal(batch["labels"], torch.tensor([0, 1, 2, 3])), "the input batch must not be modified"


def test_mixup_requires_num_labels():
    with pytest.raises(ValueError, match="num_labels"):
        FinetuneAugmentation(mixup_alpha=0.8)


def test_augmenting_collator_applies_augmentation():
    values, mask = padded_batch()

    def collate(features):
        return {"input_values": values.clone(), "attention_mask": mask, "labels": torch.tensor(features)}

    collator = AugmentingCollator(collate, FinetuneAugmentation(spec_augment_time_ratio=0.5), seed=0)
    out = collator([0, 1, 2, 3])
    assert out["labels"].tolist() == [0, 1, 2, 3]
    assert not torch.equal(out["input_values"], values)


def test_augmenting_collator_draws_from_the_items_seeds_whatever_came_before():
    # A resumed Trainer run skips the batches it already trained on without collating them: the batch after the
    # resume point must get the augmentation it got in the uninterrupted run.
    values, mask = padded_batch()

    def collate(items):
        return {"input_values": values.clone(), "attention_mask": mask}

    def items(seeds):
        return [{"sample_seed": seed} for seed in seeds]

    augmentation = FinetuneAugmentation(spec_augment_time_ratio=0.5, spec_augment_freq_ratio=0.3)
    uninterrupted = AugmentingCollator(collate, augmentation, seed=0)
    uninterrupted(items([11, 12, 13, 14]))
    expected = uninterrupted(items([21, 22, 23, 24]))["input_values"]
    resumed = AugmentingCollator(collate, augmentation, seed=0)
    assert torch.equal(resumed(items([21, 22, 23, 24]))["input_values"], expected)
    assert not torch.equal(resumed(items([31, 22, 23, 24]))["input_values"], expected)
    assert not torch.equal(
        AugmentingCollator(collate, augmentation, seed=1)(items([21, 22, 23, 24]))["input_values"], expected
    )


def test_augmenting_collator_passes_empty_batches_through():
    # Every clip of the batch unreadable: the collator's empty batch must reach the training step, which skips it.
    augmentation = FinetuneAugmentation(roll=True, mixup_alpha=0.8, spec_augment_time_ratio=0.2, num_labels=3)
    collator = AugmentingCollator(lambda items: {"num_skipped_clips": len(items)}, augmentation, seed=0)
    assert collator([None, None]) == {"num_skipped_clips": 2}


# ----------------------------------------------------------------------------------------------------------------------
# Loss


def test_loss_type_and_fp32_losses():
    assert resolve_loss_type("auto", multi_label=False) == "ce"
    assert resolve_loss_type("auto", multi_label=False, mixup_alpha=0.8) == "bce"
    assert resolve_loss_type("auto", multi_label=True) == "bce"
    with pytest.raises(ValueError, match="bce"):
        resolve_loss_type("ce", multi_label=True)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], dtype=torch.bfloat16)
    labels = torch.tensor([0, 2])
    ce = classification_loss(logits, labels, "ce")
    assert ce.dtype == torch.float32
    assert torch.allclose(ce, nn.functional.cross_entropy(logits.float(), labels))
    # Hard labels and their one-hot targets give the same CE and BCE.
    assert torch.allclose(classification_loss(logits, labels_to_targets(labels, 3), "ce"), ce)
    bce = classification_loss(logits, labels, "bce")
    expected = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels_to_targets(labels, 3))
    assert torch.allclose(bce, expected)


# ----------------------------------------------------------------------------------------------------------------------
# Layer-wise learning-rate decay (training_utils.build_optimizer with layer_decay)


def test_layer_wise_learning_rate_decay_exact_values():
    from beats_hf import BeatsConfig, BeatsForAudioClassification
    from beats_hf.training_utils import build_optimizer

    config = BeatsConfig(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        patch_embedding_dim=32,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        num_labels=4,
    )
    model = BeatsForAudioClassification(config)
    lr, decay, n = 1e-3, 0.5, 3
    optimizer = build_optimizer(model, lr, layer_decay=decay)
    param_lr = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    names = dict(model.named_parameters())
    assert set(param_lr) == {id(p) for p in model.parameters()}, "every parameter is in exactly one group"
    # Head: full LR; encoder layer i: lr * decay ** (n - i); patch embedding and positional conv: lr * decay ** (n + 1).
    assert param_lr[id(names["classifier.weight"])] == pytest.approx(lr)
    for i in range(n):
        assert param_lr[id(names[f"beats.encoder.layers.{i}.self_attn.q_proj.weight"])] == pytest.approx(
            lr * decay ** (n - i)
        )
        assert param_lr[id(names[f"beats.encoder.layers.{i}.final_layer_norm.bias"])] == pytest.approx(
            lr * decay ** (n - i)
        )
    assert param_lr[id(names["beats.embeddings.patch_conv.weight"])] == pytest.approx(lr * decay ** (n + 1))
    # Post-LN: the encoder LayerNorm normalises before the first layer, so it is decayed like the embeddings.
    assert param_lr[id(names["beats.encoder.layer_norm.weight"])] == pytest.approx(lr * decay ** (n + 1))
    decay_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay_of[id(names["classifier.weight"])] == 0.01 and decay_of[id(names["classifier.bias"])] == 0.0
    assert optimizer.defaults["betas"] == (0.9, 0.98)


# ----------------------------------------------------------------------------------------------------------------------
# Samplers


def test_label_frequency_weights_hand_computed():
    # label counts: 0 -> 3 clips, 1 -> 1 clip, 2 -> 2 clips
    label_sets = [[0], [0, 1], [0, 2], [2], []]
    weights = label_frequency_weights(label_sets, num_labels=3)
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3 + 1, 1 / 3 + 1 / 2, 1 / 2, 0.0])
    sampler = EpochWeightedSampler(weights, num_samples=20000, seed=0)
    drawn = np.bincount(list(sampler), minlength=5) / 20000
    assert drawn == pytest.approx(weights / weights.sum(), abs=0.01)
    with pytest.raises(ValueError, match="outside"):
        label_frequency_weights([[3]], num_labels=3)


def test_label_frequency_weights_count_a_repeated_label_once():
    # Clip 0 lists label 0 twice: label 0 is still carried by 2 clips, so each gets 1/2.
    weights = label_frequency_weights([[0, 0], [0], [1]], num_labels=2)
    assert weights.tolist() == pytest.approx([1 / 2, 1 / 2, 1.0])


def test_reference_balanced_weights_give_each_class_half_the_reference():
    labels = [0] * 100 + [1] * 10 + [2] * 40  # class 0 plays "_unknown_"
    weights, num_samples = reference_balanced_weights(labels, reference_label=0, fraction=0.5)
    assert num_samples == 100 + 50 + 50
    expected_per_class = {c: weights[np.asarray(labels) == c].sum() / weights.sum() * num_samples for c in range(3)}
    assert expected_per_class == pytest.approx({0: 100, 1: 50, 2: 50})
    sampler = EpochWeightedSampler(weights, num_samples, seed=3)
    sampler.set_epoch(1)
    counts = np.bincount(np.asarray(labels)[list(sampler)], minlength=3)
    assert counts.sum() == 200 and abs(counts[1] - 50) < 25


def test_epoch_samplers_are_reproducible_per_epoch():
    sampler = EpochShuffleSampler(10, seed=1)
    first = list(sampler)
    assert sorted(first) == list(range(10))
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    weighted = EpochWeightedSampler([1.0, 2.0, 3.0], num_samples=30, seed=0)
    draw = list(weighted)
    assert list(weighted) == draw


def test_split_by_fraction_holds_out_the_fraction_of_small_groups():
    # Multi-label data: most label sets are shared by one to three clips. Rounding each group on its own held out a
    # third of what was asked; the total must be the fraction, still stratified and reproducible.
    rng = np.random.default_rng(0)
    records = [
        AudioRecord(id=str(i), labels=tuple(sorted(set(rng.choice(50, size=rng.integers(1, 4)).astype(str)))))
        for i in range(2000)
    ]
    for fraction in (0.1, 0.25):
        train, held_out = split_by_fraction(records, fraction, seed=1)
        assert len(held_out) == round(fraction * len(records)) and len(train) + len(held_out) == len(records)
        assert {r.id for r in train}.isdisjoint(r.id for r in held_out)
        assert [r.id for r in split_by_fraction(records, fraction, seed=1)[1]] == [r.id for r in held_out]
    # Large groups keep their share exactly.
    single = [AudioRecord(id=str(i), labels=("ab"[i % 2],)) for i in range(40)]
    _, held_out = split_by_fraction(single, 0.25, seed=0)
    assert sorted(r.labels[0] for r in held_out) == ["a"] * 5 + ["b"] * 5


def test_fold_assignments_read_spreadsheet_csv(tmp_path):
    # A UTF-8 byte-order mark (spreadsheet export) and spaces after the commas, as beats_hf.data reads them.
    (tmp_path / "m.csv").write_text("path, label, fold\na.wav, dog, 1\nb.wav, cat, 2\n", encoding="utf-8-sig")
    records = [AudioRecord(id=(tmp_path / name).resolve().as_posix()) for name in ("a.wav", "b.wav")]
    assert fold_assignments(tmp_path / "m.csv", records) == ["1", "2"]
