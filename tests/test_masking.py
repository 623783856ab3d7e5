# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Tests of MAM masks (beats_hf.masking), the MAM collator and the tokenizer label cache."""

import json
import logging

import numpy as np
import pytest
import torch

from beats_hf import BeatsConfig, BeatsFeatureExtractor, BeatsRandomProjectionTokenizer, BeatsTokenizerModel
from beats_hf.collators import DataCollatorForAudio, DataCollatorForMaskedAudioModeling, compute_input_values
from beats_hf.label_cache import StaleLabelCacheError, TokenizerLabelCache, clip_key, tokenizer_fingerprint
from beats_hf.masking import inverse_block_patch_mask, multi_mask, random_patch_mask

FREQ = 8  # mel patches of BEATs


def _patch_mask(time_steps: list[int], max_time: int) -> torch.BoolTensor:
    """Real patches of clips with the given numbers of time steps, right-padded to max_time."""
    real = torch.arange(max_time)[None, :] < torch.tensor(time_steps)[:, None]
    return real.repeat_interleave(FREQ, dim=1)


def _expected_masked(real: torch.Tensor, ratio: float) -> torch.Tensor:
    return torch.clamp(torch.round(real.float() * ratio).long(), max=real - 1)


@pytest.mark.parametrize("kind", ["random", "inverse_block"])
@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.9])
def test_exact_masked_count_and_padding_never_masked(kind, ratio):
    patch_mask = _patch_mask([62, 30, 3, 1], 62)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        if kind == "random":
            mask = random_patch_mask(patch_mask, ratio, generator)
        else:
            mask = inverse_block_patch_mask(patch_mask, FREQ, ratio, generator=generator)
        assert mask.dtype == torch.bool and mask.shape == patch_mask.shape
        assert not (mask & ~patch_mask).any()
        assert torch.equal(mask.sum(1), _expected_masked(patch_mask.sum(1), ratio))


def _visible_neighbours(mask: torch.Tensor, time_steps: int) -> float:
    """Mean number of visible 4-neighbours (on the time x mel grid) of the visible patches."""
    visible = (~mask).view(mask.shape[0], time_steps, FREQ).float()
    padded = torch.nn.functional.pad(visible, (1, 1, 1, 1))
    neighbours = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    return float((neighbours * visible).sum() / visible.sum())


def test_inverse_block_masks_are_blocky():
    patch_mask = _patch_mask([62] * 64, 62)
    generator = torch.Generator().manual_seed(1)
    blocks = inverse_block_patch_mask(patch_mask, FREQ, 0.75, generator=generator)
    uniform = random_patch_mask(patch_mask, 0.75, generator)
    assert torch.equal(blocks.sum(1), uniform.sum(1))
    # Visible patches of a uniform 25% mask have about 4 * 0.25 = 1 visible neighbour; inside blocks most have 3-4.
    assert _visible_neighbours(uniform, 62) < 1.3
    assert _visible_neighbours(blocks, 62) > 2.5
    with pytest.raises(ValueError, match="multiple of num_freq_patches"):
        inverse_block_patch_mask(patch_mask[:, :-1], FREQ)


def test_multi_mask_shapes_order_and_independence():
    patch_mask = _patch_mask([10, 6], 10)
    generator = torch.Generator().manual_seed(2)
    for kind in ("random", "inverse_block"):
        masks, clip_index = multi_mask(patch_mask, 4, 0.75, kind, num_freq_patches=FREQ, generator=generator)
        assert masks.shape == (8, 80) and clip_index.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
        assert not (masks & ~patch_mask[clip_index]).any()
        assert torch.equal(masks.sum(1), _expected_masked(patch_mask.sum(1), 0.75)[clip_index])
        views_of_clip0 = {tuple(row.tolist()) for row in masks[:4]}
        assert len(views_of_clip0) == 4  # independent draws
    with pytest.raises(ValueError, match="needs num_freq_patches"):
        multi_mask(patch_mask, 2, mask_type="inverse_block")
    with pytest.raises(ValueError, match="mask_type must be one of"):
        multi_mask(patch_mask, 2, mask_type="spans")


def _tiny_config(**overrides) -> BeatsConfig:
    values = dict(
        patch_embedding_dim=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        label_predictor_num_layers=1,
        codebook_size=16,
        codebook_dim=8,
    )
    return BeatsConfig(**{**values, **overrides})


def _items(lengths: list[float], seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "waveform": (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32),
            "labels": [],
            "id": f"clip{i}",
            "crop_start": 0,
            "sample_seed": int(rng.integers(2**62)),
        }
        for i, seconds in enumerate(lengths)
    ]


def test_mam_collator_shapes_clip_index_and_determinism():
    extractor, config = BeatsFeatureExtractor(), _tiny_config()
    items = _items([1.0, 0.5, 0.8])
    collator = DataCollatorForMaskedAudioModeling(extractor, config, num_mask_views=3, seed=7)
    batch = collator(items + [None])
    frames = batch["input_values"].shape[1]
    num_patches = (frames // 16) * FREQ
    assert batch["input_values"].shape == (3, frames, 128) and batch["attention_mask"].shape == (3, frames)
    assert batch["bool_masked_pos"].shape == (9, num_patches)
    assert batch["clip_index"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert batch["num_skipped_clips"] == 1 and batch["clip_keys"][0] == clip_key("clip0", 0, items[0]["waveform"])
    # Shorter clips keep their padding unmasked.
    real_time_steps = (batch["attention_mask"].sum(1) // 16).tolist()
    for row, clip in enumerate(batch["clip_index"].tolist()):
        assert not batch["bool_masked_pos"][row, real_time_steps[clip] * FREQ :].any()

    again = DataCollatorForMaskedAudioModeling(extractor, config, num_mask_views=3, seed=7)(items)
    assert torch.equal(again["bool_masked_pos"], batch["bool_masked_pos"])
    other_seed = DataCollatorForMaskedAudioModeling(extractor, config, num_mask_views=3, seed=8)(items)
    assert not torch.equal(other_seed["bool_masked_pos"], batch["bool_masked_pos"])
    # Without sample seeds, one seeded generator is used in turn: reproducible from the collator's seed.
    bare = [{"waveform": item["waveform"]} for item in items]
    first = DataCollatorForMaskedAudioModeling(extractor, config, seed=1)
    second = DataCollatorForMaskedAudioModeling(extractor, config, seed=1)
    assert torch.equal(first(bare)["bool_masked_pos"], second(bare)["bool_masked_pos"])

    waveform_batch = DataCollatorForMaskedAudioModeling(extractor, config, seed=7, return_waveforms=True)(items)
    assert torch.equal(compute_input_values(waveform_batch, extractor), batch["input_values"])
    assert torch.equal(waveform_batch["attention_mask"], batch["attention_mask"])
    inverse = DataCollatorForMaskedAudioModeling(extractor, config, mask_type="inverse_block", seed=7)(items)
    assert torch.equal(inverse["bool_masked_pos"].sum(1), batch["bool_masked_pos"][::3].sum(1))


@pytest.mark.parametrize("lengths", [[1.0, 0.5, 0.8], [0.6, 0.6]])
def test_waveform_path_honours_the_fast_fbank_setting(lengths):
    # return_waveforms=True leaves the fbank to compute_input_values, which must use the extractor's settings as the
    # extractor itself does: exact_fbank=False gives the fast filter bank on both paths, never the exact one.
    items, config = _items(lengths), _tiny_config()
    fast, exact = BeatsFeatureExtractor(exact_fbank=False), BeatsFeatureExtractor()
    for make in (
        lambda extractor, waveforms: DataCollatorForAudio(extractor, return_waveforms=waveforms),
        lambda extractor, waveforms: DataCollatorForMaskedAudioModeling(extractor, config, return_waveforms=waveforms),
    ):
        in_collator = make(fast, False)(items)["input_values"]
        on_device = compute_input_values(make(fast, True)(items), fast)
        assert torch.equal(on_device, in_collator)
        exact_features = compute_input_values(make(exact, True)(items), exact)
        assert torch.equal(exact_features, make(exact, False)(items)["input_values"])
        assert not torch.equal(on_device, exact_features)  # the flag is used, not ignored
        assert torch.allclose(on_device, exact_features, atol=1e-4)


def test_label_cache_hits_misses_and_persistence(tmp_path):
    extractor, config = BeatsFeatureExtractor(), _tiny_config()
    tokenizer = BeatsRandomProjectionTokenizer(config).eval()
    batch = DataCollatorForMaskedAudioModeling(extractor, config)(_items([1.0, 0.5, 0.8]))
    calls = []

    def tokenize(input_values, attention_mask):
        calls.append(input_values.shape[0])
        return tokenizer(input_values, attention_mask=attention_mask).token_ids

    expected = tokenize(batch["input_values"], batch["attention_mask"])
    calls.clear()
    cache = TokenizerLabelCache(tmp_path, tokenizer, extractor, flush_every=0)
    labels = cache.labels_for_batch(
        batch["clip_keys"][:2], batch["input_values"][:2], batch["attention_mask"][:2], tokenize
    )
    assert calls == [2] and (cache.hits, cache.misses) == (0, 2)
    full = cache.labels_for_batch(batch["clip_keys"], batch["input_values"], batch["attention_mask"], tokenize)
    assert calls == [2, 1] and (cache.hits, cache.misses) == (2, 3)
    assert torch.equal(full, expected) and torch.equal(labels, expected[:2, : labels.shape[1]])
    assert cache.flush() is not None and cache.flush() is None

    reopened = TokenizerLabelCache(tmp_path, BeatsRandomProjectionTokenizer(config), extractor)
    assert len(reopened) == 3
    args = (batch["clip_keys"], batch["input_values"], batch["attention_mask"], tokenize)
    assert torch.equal(reopened.labels_for_batch(*args), expected)
    assert calls == [2, 1] and reopened.misses == 0
    with pytest.raises(StaleLabelCacheError, match="Pass the batch's attention_mask"):
        reopened.labels_for_batch(batch["clip_keys"], batch["input_values"], None, tokenize)


def test_label_cache_misses_when_the_audio_behind_an_id_changes(tmp_path):
    # A file replaced by other audio of the same length (or a dataset row that now holds another clip) keeps its id,
    # crop start and length: only the digest of the samples in the key tells the two apart.
    extractor, config = BeatsFeatureExtractor(), _tiny_config()
    tokenizer = BeatsRandomProjectionTokenizer(config).eval()
    collator = DataCollatorForMaskedAudioModeling(extractor, config)
    old, new = _items([1.0], seed=0), _items([1.0], seed=1)
    assert old[0]["id"] == new[0]["id"] and old[0]["waveform"].shape == new[0]["waveform"].shape

    def tokenize(input_values, attention_mask):
        return tokenizer(input_values, attention_mask=attention_mask).token_ids

    cache = TokenizerLabelCache(tmp_path, tokenizer, extractor)
    before = collator(old)
    cache.labels_for_batch(before["clip_keys"], before["input_values"], before["attention_mask"], tokenize)
    cache.flush()
    reopened = TokenizerLabelCache(tmp_path, tokenizer, extractor)
    after = collator(new)
    labels = reopened.labels_for_batch(after["clip_keys"], after["input_values"], after["attention_mask"], tokenize)
    assert (reopened.hits, reopened.misses) == (0, 1)
    assert torch.equal(labels, tokenize(after["input_values"], after["attention_mask"]))
    same = collator(_items([1.0], seed=0))
    reopened.labels_for_batch(same["clip_keys"], same["input_values"], same["attention_mask"], tokenize)
    assert reopened.hits == 1


def test_label_cache_survives_damaged_files(tmp_path, caplog):
    # A shard or metadata.json cut short (e.g. the machine went down after the rename, before the data reached the
    # disk) costs its entries, not the training run; a stale shard is still refused.
    extractor, config = BeatsFeatureExtractor(), _tiny_config()
    tokenizer = BeatsRandomProjectionTokenizer(config)
    cache = TokenizerLabelCache(tmp_path, tokenizer, extractor)
    kept, lost = clip_key("kept", 0, np.zeros(16000, dtype=np.float32)), clip_key("lost", 0, np.ones(8, np.float32))
    cache.put(kept, torch.tensor([1, 2, 3]))
    cache.flush()
    cache.put(lost, torch.tensor([4]))
    damaged = cache.flush()
    damaged.write_bytes(damaged.read_bytes()[:40])
    (tmp_path / "metadata.json").write_text('{"format_vers')
    with caplog.at_level(logging.WARNING, logger="beats_hf.label_cache"):
        reopened = TokenizerLabelCache(tmp_path, tokenizer, extractor)
    assert kept in reopened and lost not in reopened
    assert torch.equal(reopened.get(kept), torch.tensor([1, 2, 3]))
    assert any(damaged.name in m and "tokenized again" in m for m in caplog.messages)
    assert any("metadata.json cannot be read" in m for m in caplog.messages)
    assert json.loads((tmp_path / "metadata.json").read_text())["tokenizer_fingerprint"] == reopened.fingerprint
    (tmp_path / "metadata.json").unlink()  # the readable shard alone still refuses another tokenizer
    with pytest.raises(StaleLabelCacheError, match="labels-.*fingerprint"):
        TokenizerLabelCache(
            tmp_path, BeatsRandomProjectionTokenizer(_tiny_config(random_projection_seed=1)), extractor
        )


def test_label_cache_refuses_a_changed_tokenizer(tmp_path):
    extractor, config = BeatsFeatureExtractor(), _tiny_config()
    tokenizer = BeatsRandomProjectionTokenizer(config)
    cache = TokenizerLabelCache(tmp_path, tokenizer, extractor)
    cache.put(clip_key("a", 0, np.zeros(16000, dtype=np.float32)), torch.tensor([1, 2, 3]))
    cache.flush()
    reseeded = BeatsRandomProjectionTokenizer(_tiny_config(random_projection_seed=1))
    with pytest.raises(StaleLabelCacheError, match="built by a different tokenizer"):
        TokenizerLabelCache(tmp_path, reseeded, extractor)
    other_statistics = BeatsFeatureExtractor(fbank_mean=10.0)
    with pytest.raises(StaleLabelCacheError, match="Delete this one|delete this one"):
        TokenizerLabelCache(tmp_path, tokenizer, other_statistics)
    # Any weight change counts, not only the config: a trained tokenizer after one more update is another tokenizer.
    trained = BeatsTokenizerModel(config)
    fingerprint = tokenizer_fingerprint(trained, extractor)
    with torch.no_grad():
        trained.quantizer.codebook[0, 0] += 1e-3
    assert tokenizer_fingerprint(trained, extractor) != fingerprint
