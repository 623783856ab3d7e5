# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Tests of BeatsFeatureExtractor and the batched Kaldi filter bank behind it."""

import logging
import tempfile
import unittest
from pathlib import Path

import hf_mixins
import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor

from beats_hf import BeatsFeatureExtractor
from beats_hf import feature_extraction_beats as fe_module
from beats_hf.feature_extraction_beats import compute_beats_fbank, compute_kaldi_fbank, num_fbank_frames

DATA = Path(__file__).parent / "data" / "official"
SR = 16000
# The stored official features were computed on another machine. FFT libraries pick their kernels by instruction set,
# so the same torchaudio call rounds differently on other CPUs: on an AVX-512 Xeon it differs from the stored fixture
# by up to 2.2e-5 in a few low-energy mel bins (and 1.4e-6 at the 99th percentile). Bit-exactness is therefore checked
# against torchaudio run on this machine (`test_bit_exact_with_torchaudio_*`), the stored fixture within this bound.
FIXTURE_ATOL = 5e-5
FIXTURE_MEAN_ATOL = 1e-6


@pytest.fixture(scope="module")
def official():
    """Padded fixture batch (2, 40000), clip 1 real for 27000 samples, and the official normalised fbank."""
    inputs = torch.load(DATA / "inputs.pt", weights_only=True)
    fbank = torch.load(DATA / "small_pt_outputs.pt", weights_only=True)["fbank"]
    assert inputs["lengths"] == [40000, 27000] and fbank.shape == (2, 248, 128)
    return inputs["waveform"], inputs["lengths"], fbank


def assert_matches_fixture(actual, expected):
    """Same features as the stored official ones, up to the FFT rounding of different machines."""
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    difference = (actual - expected).abs()
    assert float(difference.max()) <= FIXTURE_ATOL, float(difference.max())
    assert float(difference.mean()) <= FIXTURE_MEAN_ATOL, float(difference.mean())


# The options of the official `BEATs.preprocess` call to torchaudio.compliance.kaldi.fbank.
KALDI_OPTIONS = {"num_mel_bins": 128, "sample_frequency": 16000, "frame_length": 25, "frame_shift": 10}


def torchaudio_kaldi():
    """torchaudio.compliance.kaldi, or a skip where torchaudio is not installed."""
    return pytest.importorskip(
        "torchaudio.compliance.kaldi",
        reason="torchaudio is not installed; the fixture tests check parity with its stored output instead",
        exc_type=ImportError,
    )


def official_preprocess_here(waveforms):
    """`BEATs.preprocess` run on this machine: torchaudio's fbank per row, then the normalisation."""
    kaldi = torchaudio_kaldi()
    fbanks = torch.stack([kaldi.fbank(row.unsqueeze(0) * 2**15, **KALDI_OPTIONS) for row in waveforms])
    return (fbanks - 15.41663) / (2 * 6.55582)


def random_clip(num_samples, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / SR
    return (0.1 * rng.standard_normal(num_samples) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype(dtype)


# --------------------------------------------------------------------------------------------------------------------
# Parity with the official preprocessing (fixture computed by torchaudio.compliance.kaldi.fbank in BEATs.preprocess)


def test_clip0_bit_exact(official):
    waveform, _, fbank = official
    assert_matches_fixture(compute_beats_fbank(waveform[0]), fbank[0])


def test_cropped_clip1_bit_exact(official):
    # The official fbank was computed on the padded batch: only frames lying inside the 27000 real samples are
    # the clip's own frames.
    waveform, lengths, fbank = official
    ours = compute_beats_fbank(waveform[1, : lengths[1]])
    assert ours.shape == (167, 128)
    assert_matches_fixture(ours, fbank[1, :167])


def test_padded_batch_bit_exact(official):
    waveform, _, fbank = official
    assert_matches_fixture(compute_beats_fbank(waveform), fbank)


def test_kaldi_fbank_matches_official_after_normalisation(official):
    waveform, _, fbank = official
    raw = compute_kaldi_fbank(waveform * 2**15)
    assert torch.equal((raw - 15.41663) / (2 * 6.55582), compute_beats_fbank(waveform))
    assert_matches_fixture((raw - 15.41663) / (2 * 6.55582), fbank)


def test_lengths_compute_each_clip_alone(official):
    waveform, lengths, fbank = official
    ours = compute_beats_fbank(waveform, lengths, padding_value=-7.0)
    assert torch.equal(ours[0], compute_beats_fbank(waveform[0]))
    assert torch.equal(ours[1, :167], compute_beats_fbank(waveform[1, : lengths[1]]))
    assert_matches_fixture(ours[1, :167], fbank[1, :167])
    assert bool((ours[1, 167:] == -7.0).all())


@pytest.mark.parametrize("padding_value", [0.0, -1.5])
def test_feature_extractor_on_fixture(official, padding_value):
    waveform, lengths, fbank = official
    fe = BeatsFeatureExtractor(padding_value=padding_value)
    out = fe([waveform[0].numpy(), waveform[1, : lengths[1]].numpy()], sampling_rate=SR, return_tensors="pt")
    assert out["input_values"].shape == (2, 248, 128) and out["input_values"].dtype == torch.float32
    assert out["attention_mask"].sum(-1).tolist() == [248, 167]
    assert torch.equal(out["input_values"][0], compute_beats_fbank(waveform[0]))
    assert torch.equal(out["input_values"][1, :167], compute_beats_fbank(waveform[1, : lengths[1]]))
    assert_matches_fixture(out["input_values"][1, :167], fbank[1, :167])
    assert bool((out["input_values"][1, 167:] == padding_value).all())


def test_2d_batch_equals_official_padded_batch(official):
    # A 2-D input is a batch of full-length clips: the padded fixture row 1 is then processed with its zeros.
    waveform, _, fbank = official
    out = BeatsFeatureExtractor()(waveform.numpy(), sampling_rate=SR)
    assert isinstance(out["input_values"], np.ndarray)
    np.testing.assert_array_equal(out["input_values"], compute_beats_fbank(waveform).numpy())
    assert_matches_fixture(out["input_values"], fbank.numpy())
    assert out["attention_mask"].sum(-1).tolist() == [248, 248]


def test_input_types_agree(official):
    waveform, lengths, fbank = official
    fe = BeatsFeatureExtractor()
    clip = waveform[1, : lengths[1]]
    assert_matches_fixture(compute_beats_fbank(clip)[None], fbank[1:2, :167])
    for raw in (clip, clip.numpy(), clip.tolist(), [clip], [clip.numpy()], clip[None], clip.numpy()[None]):
        out = fe(raw, sampling_rate=SR, return_tensors="pt")
        assert torch.equal(out["input_values"], compute_beats_fbank(clip)[None]), type(raw)


@pytest.mark.parametrize(
    "lengths",
    [[2800, 5555, 16000, 16001, 33333], [60000, 30000, 50000, 2800]],
    ids=["short-clips-gathered", "long-clips-one-by-one"],
)
def test_clip_features_do_not_depend_on_batch_companions(lengths):
    clips = [random_clip(n, seed) for seed, n in enumerate(lengths)]
    padded = torch.stack([torch.from_numpy(np.pad(c, (0, max(lengths) - len(c)))) for c in clips])
    batched = compute_beats_fbank(padded, lengths, padding_value=3.0)
    for i, clip in enumerate(clips):
        alone = compute_beats_fbank(torch.from_numpy(clip))
        assert torch.equal(batched[i, : alone.shape[0]], alone)
        assert bool((batched[i, alone.shape[0] :] == 3.0).all())


def test_clips_shorter_than_a_patch_alone_or_in_equal_length_batches():
    # Below 16 frames BLAS rounds the mel product differently; such clips still match when not gathered.
    clips = torch.from_numpy(np.stack([random_clip(1500, seed) for seed in range(3)]))  # 7 frames each
    batched = compute_kaldi_fbank(clips * 2**15)
    for i in range(3):
        assert torch.equal(batched[i], compute_kaldi_fbank(clips[i] * 2**15))


@pytest.mark.parametrize("exact", [True, False])
def test_cpu_blocking_does_not_change_values(monkeypatch, exact):
    # Long clips are split into blocks of at most _CPU_BLOCK_FRAMES frames and short ones grouped into blocks; with
    # a 100-frame limit these small inputs take both paths (and the gathered path of ragged batches). The banded mel
    # products gather blocks into chunks of output rows: 150-frame chunks end inside clips, at clip ends and at the
    # padding between the clips of a ragged batch.
    long_batch = torch.from_numpy(np.stack([random_clip(24000, 7), random_clip(24000, 8)]))  # 148 frames each
    short_batch = torch.from_numpy(np.stack([random_clip(4800, seed) for seed in range(7)]))  # 28 frames each

    def run():
        return [
            compute_beats_fbank(long_batch, exact=exact),
            compute_beats_fbank(short_batch, exact=exact),
            compute_beats_fbank(long_batch, [24000, 17000], exact=exact),
            compute_beats_fbank(short_batch, [4800, 4000, 4800, 3000, 4800, 4800, 4800], exact=exact),
        ]

    monkeypatch.setattr(fe_module, "_CPU_BLOCK_FRAMES", 100)
    monkeypatch.setattr(fe_module, "_MEL_CHUNK_FRAMES", 150)
    blocked = run()
    monkeypatch.setattr(fe_module, "_CPU_BLOCK_FRAMES", 10**9)
    monkeypatch.setattr(fe_module, "_MEL_CHUNK_FRAMES", 10**6)
    for a, b in zip(blocked, run()):
        assert torch.equal(a, b)


def _addcmul_with_one_rounding(input, tensor1, tensor2, *, value=1, out=None):
    # What a kernel that fused `value * tensor1` into the addition would return: the exact sum, rounded once.
    exact = input.double() + value * tensor1.double() * tensor2.double()
    return exact.to(input.dtype) if out is None else out.copy_(exact)


def _addcmul_with_two_roundings(input, tensor1, tensor2, *, value=1, out=None):
    # What the CPU kernel computes: the product rounded, then the sum rounded.
    result = input + (tensor1 * value) * tensor2
    return result if out is None else out.copy_(result)


def test_one_pass_pre_emphasis_probe_accepts_two_roundings_and_rejects_one(monkeypatch):
    # The one-pass pre-emphasis (addcmul) is only used where it rounds like Kaldi's two steps; a kernel with a single
    # rounding must be detected, and the fbank must then fall back to two operations and stay bit-identical.
    clips = torch.from_numpy(np.stack([random_clip(16000, seed) for seed in range(3)]))
    exact, fast = compute_beats_fbank(clips), compute_beats_fbank(clips, exact=False)
    cpu = torch.device("cpu")
    monkeypatch.setattr(fe_module, "_one_pass_pre_emphasis_cache", {})
    monkeypatch.setattr(torch, "addcmul", _addcmul_with_two_roundings)
    assert fe_module._one_pass_pre_emphasis_is_exact(cpu, torch.float32)
    monkeypatch.setattr(fe_module, "_one_pass_pre_emphasis_cache", {})
    monkeypatch.setattr(torch, "addcmul", _addcmul_with_one_rounding)
    assert not fe_module._one_pass_pre_emphasis_is_exact(cpu, torch.float32)
    assert torch.equal(compute_beats_fbank(clips), exact)
    assert torch.equal(compute_beats_fbank(clips, exact=False), fast)


def test_two_step_pre_emphasis_fallback_is_bit_exact_with_torchaudio(monkeypatch):
    kaldi = torchaudio_kaldi()
    monkeypatch.setattr(fe_module, "_one_pass_pre_emphasis_is_exact", lambda device, dtype: False)
    for seed, n in enumerate((2800, 16000, 40000)):
        clip = torch.from_numpy(random_clip(n, seed))
        assert torch.equal(compute_kaldi_fbank(clip * 2**15), kaldi.fbank(clip.unsqueeze(0) * 2**15, **KALDI_OPTIONS))


def _power_spectra(rows, seed):
    clip = torch.from_numpy(random_clip(160 * rows + 240, seed)) * 2**15
    frames = clip.unfold(0, 400, 160) * torch.hann_window(400, periodic=False)
    return torch.fft.rfft(frames, n=512).abs().square()


def test_banded_mel_product_reproduces_the_dense_one_where_the_probe_allows_it():
    # The exact mode multiplies band by band only with pieces cut where the probe found BLAS's summation blocks; on
    # spectra it never saw, of row counts it never tried, that must still be the dense product, bit for bit.
    cpu = torch.device("cpu")
    split_every = fe_module._dense_equal_band_split(128, 16000.0, cpu, torch.float32)
    mel, _ = fe_module._cached_constants(128, 16000.0, cpu, torch.float32)
    if split_every is None:
        pytest.skip("no banded product reproduces this machine's dense BLAS product; the exact mode keeps it dense")
    bands = fe_module._mel_bands(128, 16000.0, cpu, torch.float32, split_every)
    for band in bands:
        bins = [b for low, high, _ in band.pieces for b in range(low, high)]
        assert bins == list(range(bins[0], bins[-1] + 1))  # contiguous, in order, nothing twice
        assert all((low // split_every) == ((high - 1) // split_every) for low, high, _ in band.pieces if split_every)
        assert not bool(mel[band.first : band.end, : bins[0]].any()) and not bool(
            mel[band.first : band.end, bins[-1] + 1 :].any()
        )
    for rows, seed in ((16, 1), (333, 2), (2999, 3)):
        power = _power_spectra(rows, seed)
        banded = torch.empty((rows, 128))
        fe_module._banded_mel_product(power, bands, banded)
        assert torch.equal(banded, torch.matmul(power, mel.t()))


_REAL_MATMUL = torch.matmul


def _rounded_once(a, b):
    """A product summed exactly and rounded once to float32: an idealised BLAS kernel."""
    return _REAL_MATMUL(a.double(), b.double()).to(a.dtype)


@pytest.mark.parametrize("block", [None, 128, 96])
def test_band_probe_finds_the_blocks_of_a_simulated_blas(monkeypatch, block):
    # Machine-independent check of the cut-and-add logic: a simulated BLAS sums each block of `block` bins of the
    # dense product exactly, rounds it, and adds the blocks to the output in float32 (`None`: one block). The probe
    # must find exactly that block size (uncut bands for one block), and the exact mode must then give that BLAS's
    # dense bits with the banded products.
    def blas_matmul(a, b, *, out=None):
        if a.shape[-1] == 257 and block is not None:  # the dense product
            result = _rounded_once(a[:, :block], b[:block])
            for start in range(block, 257, block):
                result = result + _rounded_once(a[:, start : start + block], b[start : start + block])
        else:
            result = _rounded_once(a, b)
        return result if out is None else out.copy_(result)

    def blas_addmm(c, a, b, *, out=None):
        return torch.add(c, _rounded_once(a, b), out=out)

    monkeypatch.setattr(fe_module, "_band_split_cache", {})
    monkeypatch.setattr(torch, "matmul", blas_matmul)
    monkeypatch.setattr(torch, "addmm", blas_addmm)
    cpu = torch.device("cpu")
    assert fe_module._dense_equal_band_split(128, 16000.0, cpu, torch.float32) == (0 if block is None else block)
    clips = torch.from_numpy(np.stack([random_clip(40000, seed) for seed in range(3)])) * 2**15
    banded = compute_kaldi_fbank(clips)
    monkeypatch.setattr(fe_module, "_dense_equal_band_split", lambda *args: None)
    assert torch.equal(compute_kaldi_fbank(clips), banded)


def test_exact_mode_uses_the_banded_products_where_the_probe_finds_a_split(monkeypatch):
    # Where the probe finds no split the exact mode falls back to dense products (same bits, slower): say so in the
    # test report. Where it finds one, the banded products must be what the kernel runs. Never on other devices.
    assert fe_module._dense_equal_band_split(128, 16000.0, torch.device("meta"), torch.float32) is None
    if fe_module._dense_equal_band_split(128, 16000.0, torch.device("cpu"), torch.float32) is None:
        pytest.skip("no banded product gives this BLAS's dense bits here: the exact mode multiplies densely (slower)")
    calls = []
    real_product = fe_module._banded_mel_product
    monkeypatch.setattr(fe_module, "_banded_mel_product", lambda *args: calls.append(1) or real_product(*args))
    compute_beats_fbank(torch.from_numpy(random_clip(16000, 0)))
    assert calls


def test_band_probe_declines_a_blas_that_rounds_the_dense_product_otherwise(monkeypatch):
    # A BLAS whose dense product of few rows is summed in another order (here: exactly, rounded once) while larger
    # ones keep the real kernel matches no split at every row count, and the probe must say so rather than accept
    # what only the larger products support.
    real_matmul = torch.matmul

    def matmul_rounded_once_below_1001_rows(a, b, *, out=None):
        if a.shape[-1] != 257 or a.shape[0] >= 1001:  # the band pieces and the large products keep the real kernel
            return real_matmul(a, b, out=out)
        result = real_matmul(a.double(), b.double()).to(a.dtype)
        return result if out is None else out.copy_(result)

    monkeypatch.setattr(fe_module, "_band_split_cache", {})
    monkeypatch.setattr(torch, "matmul", matmul_rounded_once_below_1001_rows)
    assert fe_module._dense_equal_band_split(128, 16000.0, torch.device("cpu"), torch.float32) is None


def test_dense_fallback_of_the_exact_mode_gives_the_same_bits(monkeypatch):
    # Where no banded product reproduces the dense one, the exact mode multiplies densely per block; both paths
    # must give torchaudio's values. Many short clips are gathered into one set of rows; longer ones are computed
    # clip by clip, with a clip of 7 frames (a dense block even in the banded mode) between banded chunks.
    gathered = torch.from_numpy(np.stack([random_clip(40000, seed) for seed in range(4)])), [2800, 16000, 40000, 1500]
    per_clip = (
        torch.from_numpy(np.stack([random_clip(160000, seed) for seed in range(4)])),
        [160000, 1500, 160000, 40000],
    )
    banded = [compute_kaldi_fbank(clips * 2**15, lengths) for clips, lengths in (gathered, per_clip)]
    monkeypatch.setattr(fe_module, "_dense_equal_band_split", lambda *args: None)
    for (clips, lengths), expected in zip((gathered, per_clip), banded):
        assert torch.equal(compute_kaldi_fbank(clips * 2**15, lengths), expected)
    kaldi = torchaudio_kaldi()
    clips, lengths = per_clip
    for i, length in enumerate(lengths):
        reference = kaldi.fbank(clips[i : i + 1, :length] * 2**15, **KALDI_OPTIONS)
        assert torch.equal(banded[1][i, : reference.shape[0]], reference), i


def test_band_probe_is_redone_when_the_float32_matmul_precision_changes(monkeypatch):
    # "medium" lets fp32 products run in bfloat16 through oneDNN on CPUs that have it, which sums otherwise: a split
    # found under "highest" must not be reused there (nor the other way round).
    clip = torch.from_numpy(random_clip(160000, 3)) * 2**15
    previous = torch.get_float32_matmul_precision()
    results = {}
    try:
        for precision in ("highest", "medium", "highest"):
            torch.set_float32_matmul_precision(precision)
            results[precision] = compute_kaldi_fbank(clip)
            with monkeypatch.context() as patched:
                patched.setattr(fe_module, "_dense_equal_band_split", lambda *args: None)
                assert torch.equal(results[precision], compute_kaldi_fbank(clip)), precision
    finally:
        torch.set_float32_matmul_precision(previous)


def test_overflowing_power_gives_the_nan_frames_of_the_dense_product(monkeypatch):
    # Finite samples beyond ~1e16 overflow |X|^2; the dense product then makes every filter of the frame NaN
    # (inf * 0) where the banded one would only spoil the filters of one band: the exact mode must give the former.
    tone = torch.sin(2 * np.pi * 1000 * torch.arange(4000) / 16000) * 1e18
    clips = torch.stack([tone, torch.from_numpy(random_clip(4000, 0)) * 2**15]).float()
    banded = compute_kaldi_fbank(clips)
    assert bool(banded[0].isnan().all()) and bool(banded[1].isfinite().all())
    monkeypatch.setattr(fe_module, "_dense_equal_band_split", lambda *args: None)
    dense = compute_kaldi_fbank(clips)
    assert torch.equal(dense.isnan(), banded.isnan()) and torch.equal(dense[1], banded[1])


@pytest.mark.parametrize("exact", [True, False])
def test_strided_time_axis_gives_the_values_of_contiguous_clips(exact):
    # A column-major batch (or a slice with a step) has a strided time axis; the frames are views of it, and the frame
    # means would be reduced in another order (up to 5e-4 apart in the log energies) unless the samples are made
    # contiguous first.
    clips = torch.from_numpy(np.stack([random_clip(16000, seed) for seed in range(33)]))
    column_major = clips.t().contiguous().t()
    assert not column_major.is_contiguous()
    expected = compute_kaldi_fbank(clips * 2**15, exact=exact)
    assert torch.equal(compute_kaldi_fbank(column_major * 2**15, exact=exact), expected)
    every_other = torch.from_numpy(np.stack([random_clip(32000, seed) for seed in range(3)]))[:, ::2]
    assert torch.equal(
        compute_beats_fbank(every_other, exact=exact), compute_beats_fbank(every_other.contiguous(), exact=exact)
    )
    features = BeatsFeatureExtractor(exact_fbank=exact)(column_major, sampling_rate=SR, return_tensors="pt")
    assert torch.equal(features["input_values"], compute_beats_fbank(clips, exact=exact))


def test_num_fbank_frames():
    assert [num_fbank_frames(n) for n in (0, 399, 400, 559, 560, 2800, 27000, 40000, 160000)] == [
        0,
        0,
        1,
        1,
        2,
        16,
        167,
        248,
        998,
    ]
    assert num_fbank_frames(torch.tensor([399, 400, 40000])).tolist() == [0, 1, 248]


def test_bit_exact_with_torchaudio_on_the_fixture_clips(official):
    waveform, lengths, fbank = official
    expected = official_preprocess_here(waveform)
    assert_matches_fixture(expected, fbank)  # the machine's own torchaudio is within the fixture bound too
    assert torch.equal(compute_beats_fbank(waveform), expected)
    assert torch.equal(compute_beats_fbank(waveform[0]), expected[0])
    alone = compute_beats_fbank(waveform[1, : lengths[1]])
    assert torch.equal(alone, official_preprocess_here(waveform[1:2, : lengths[1]])[0])
    assert torch.equal(alone, expected[1, :167])  # snip_edges: frames inside the clip ignore the padding


def test_bit_exact_with_torchaudio_on_random_clips():
    kaldi = torchaudio_kaldi()
    lengths = [2800, 4321, 16000, 40000, 160077]
    clips = [torch.from_numpy(random_clip(n, seed)) for seed, n in enumerate(lengths)]
    padded = torch.stack([torch.nn.functional.pad(c, (0, max(lengths) - len(c))) for c in clips])
    batched = compute_kaldi_fbank(padded * 2**15, lengths)
    for i, clip in enumerate(clips):
        expected = kaldi.fbank(clip.unsqueeze(0) * 2**15, **KALDI_OPTIONS)
        assert torch.equal(compute_kaldi_fbank(clip * 2**15), expected), i
        assert torch.equal(batched[i, : expected.shape[0]], expected), i
        expected64 = kaldi.fbank(clip.double().unsqueeze(0) * 2**15, **KALDI_OPTIONS)
        ours64 = compute_kaldi_fbank(clip.double() * 2**15)
        assert ours64.dtype == torch.float64
        torch.testing.assert_close(ours64, expected64, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------------------------------------------------
# Dtypes and devices


def test_float64_input_policy(official):
    waveform, _, fbank = official
    # The feature extractor always computes in float32, like the official front end.
    out = BeatsFeatureExtractor()(waveform[0].double().numpy(), sampling_rate=SR, return_tensors="pt")
    assert out["input_values"].dtype == torch.float32
    assert torch.equal(out["input_values"][0], compute_beats_fbank(waveform[0]))
    # The functions follow torchaudio: float64 in, float64 computed and returned.
    ours64 = compute_beats_fbank(waveform.double())
    assert ours64.dtype == torch.float64
    torch.testing.assert_close(ours64.float(), fbank, rtol=0, atol=1e-4)


def test_half_precision_is_computed_in_float32(official):
    waveform, _, _ = official
    half = waveform[0].half()
    out = compute_beats_fbank(half)
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    assert torch.equal(out, compute_beats_fbank(half.float()))


def test_constants_cached_per_device_and_dtype(official):
    waveform, _, _ = official
    compute_beats_fbank(waveform[0])
    compute_beats_fbank(waveform[0].double())
    mel32, window32 = fe_module._cached_constants(128, 16000.0, torch.device("cpu"), torch.float32)
    mel64, _ = fe_module._cached_constants(128, 16000.0, torch.device("cpu"), torch.float64)
    assert mel32.dtype == torch.float32 and mel64.dtype == torch.float64 and mel32.shape == (128, 257)
    assert window32.shape == (400,)
    # Filters are built in float32 and cast, as torchaudio does, so both dtypes hold the same values.
    assert torch.equal(mel64.float(), mel32)
    assert fe_module._cached_constants(128, 16000.0, torch.device("cpu"), torch.float32)[0] is mel32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(official):
    waveform, lengths, fbank = official
    ours = compute_beats_fbank(waveform.cuda(), lengths)
    assert ours.device.type == "cuda"
    torch.testing.assert_close(ours.cpu()[0], fbank[0], rtol=0, atol=1e-4)
    out = BeatsFeatureExtractor()(list(waveform.cuda()), sampling_rate=SR, return_tensors="pt")
    assert out["input_values"].device.type == "cpu"


def test_function_input_validation():
    with pytest.raises(ValueError, match="mono audio"):
        compute_kaldi_fbank(torch.zeros(1, 2, 4000))
    with pytest.raises(TypeError, match="floating-point"):
        compute_kaldi_fbank(torch.zeros(4000, dtype=torch.int16))
    with pytest.raises(ValueError, match="2 rows"):
        compute_kaldi_fbank(torch.zeros(2, 4000), [4000])
    with pytest.raises(ValueError, match=r"\[0, 4000\]"):
        compute_kaldi_fbank(torch.zeros(2, 4000), [4000, 5000])
    assert compute_kaldi_fbank(torch.zeros(3, 399)).shape == (3, 0, 128)


# --------------------------------------------------------------------------------------------------------------------
# Padding, truncation, outputs


def test_padding_options():
    fe = BeatsFeatureExtractor()
    clips = [random_clip(16000, 0), random_clip(8000, 1)]  # 98 and 48 frames
    out = fe(clips, sampling_rate=SR, padding="max_length", max_length=120, return_tensors="pt")
    assert out["input_values"].shape == (2, 120, 128) and out["attention_mask"].sum(-1).tolist() == [98, 48]
    out = fe(clips, sampling_rate=SR, padding="max_length", max_length=64, truncation=True, return_tensors="pt")
    assert out["input_values"].shape == (2, 64, 128) and out["attention_mask"].sum(-1).tolist() == [64, 48]
    out = fe(clips, sampling_rate=SR, pad_to_multiple_of=16, return_tensors="pt")
    assert out["input_values"].shape == (2, 112, 128)
    out = fe(clips, sampling_rate=SR, padding=False)
    assert [len(x) for x in out["input_values"]] == [98, 48]
    out = fe(clips, sampling_rate=SR, return_attention_mask=False, return_tensors="pt")
    assert "attention_mask" not in out
    # Without truncation=True nothing is cut, so clips longer than max_length cannot be stacked.
    with pytest.raises(ValueError, match="padding=True"):
        fe(clips, sampling_rate=SR, padding="max_length", max_length=64, return_tensors="pt")


def test_collator_pad_on_features():
    fe = BeatsFeatureExtractor()
    features = [{"input_values": np.ones((n, 128), dtype=np.float32)} for n in (20, 33)]
    batch = fe.pad(features, return_tensors="pt")
    assert batch["input_values"].shape == (2, 33, 128) and batch["attention_mask"].sum(-1).tolist() == [20, 33]


def test_left_padding_is_rejected():
    with pytest.raises(ValueError, match="padding_side='right'"):
        BeatsFeatureExtractor(padding_side="left")


def test_options_that_change_nothing_are_named(caplog):
    with caplog.at_level(logging.WARNING):
        fe = BeatsFeatureExtractor(num_mel_bins=64)
    assert "does not use num_mel_bins=64" in caplog.text and "feature_size (mel bins)" in caplog.text
    assert fe(random_clip(8000, 0), sampling_rate=SR)["input_values"].shape[-1] == 128


def test_save_load_round_trip_keeps_statistics(caplog):
    fe = BeatsFeatureExtractor(fbank_mean=1.25, fbank_std=3.5, padding_value=-1.0)
    with tempfile.TemporaryDirectory() as tmp, caplog.at_level(logging.WARNING):
        fe.save_pretrained(tmp)
        reloaded = BeatsFeatureExtractor.from_pretrained(tmp)
        auto = AutoFeatureExtractor.from_pretrained(tmp)
    assert "does not use" not in caplog.text  # the saved config's own keys are not unused options
    for loaded in (reloaded, auto):
        assert isinstance(loaded, BeatsFeatureExtractor)
        assert (loaded.fbank_mean, loaded.fbank_std, loaded.padding_value) == (1.25, 3.5, -1.0)
    clip = random_clip(8000, 3)
    np.testing.assert_array_equal(
        reloaded(clip, sampling_rate=SR)["input_values"], fe(clip, sampling_rate=SR)["input_values"]
    )


# --------------------------------------------------------------------------------------------------------------------
# Bad input


def test_wrong_sampling_rate():
    with pytest.raises(ValueError, match="44100 Hz") as info:
        BeatsFeatureExtractor()(random_clip(16000, 0), sampling_rate=44100)
    assert "16000 Hz" in str(info.value) and "Resample" in str(info.value)


def test_missing_sampling_rate_warns(caplog):
    with caplog.at_level(logging.WARNING):
        BeatsFeatureExtractor()(random_clip(16000, 0))
    assert "sampling_rate" in caplog.text


def test_multichannel_list_element():
    stereo = np.stack([random_clip(16000, 0), random_clip(16000, 1)])
    with pytest.raises(ValueError, match=r"Clip 1 has shape \(2, 16000\)") as info:
        BeatsFeatureExtractor()([random_clip(16000, 2), stereo], sampling_rate=SR)
    assert "mean(axis=0)" in str(info.value)


def test_multichannel_samples_by_channels_layout():
    stereo = np.stack([random_clip(16000, 0), random_clip(16000, 1)], axis=1)  # (16000, 2)
    with pytest.raises(ValueError, match="multi-channel") as info:
        BeatsFeatureExtractor()(stereo, sampling_rate=SR)
    assert "mean(axis=1)" in str(info.value)


def test_3d_input():
    with pytest.raises(ValueError, match="mono") as info:
        BeatsFeatureExtractor()(np.zeros((2, 2, 16000), dtype=np.float32), sampling_rate=SR)
    assert "(2, 2, 16000)" in str(info.value)


def test_2d_channels_first_is_a_batch():
    # The documented rule: a 2-D array is a batch of mono clips, even when it could be (channels, samples).
    out = BeatsFeatureExtractor()(np.zeros((2, 16000), dtype=np.float32), sampling_rate=SR, return_tensors="pt")
    assert out["input_values"].shape == (2, 98, 128)


def test_clip_too_short():
    with pytest.raises(ValueError, match="Clip 1 has 2799 samples") as info:
        BeatsFeatureExtractor()([random_clip(16000, 0), random_clip(2799, 1)], sampling_rate=SR)
    assert "2800" in str(info.value)
    BeatsFeatureExtractor()(random_clip(2800, 1), sampling_rate=SR)  # exactly one patch is fine


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("position", [0, 1234, 15919, 15990, 15999])
def test_non_finite_samples(bad, position):
    # 16000 samples make 98 frames covering samples 0..15919; the rest is in no frame, and is checked all the same.
    clip = random_clip(16000, 1)
    clip[position] = bad
    with pytest.raises(ValueError, match="Clip 2 contains NaN or infinite"):
        BeatsFeatureExtractor()([random_clip(16000, 0), random_clip(9000, 0), clip], sampling_rate=SR)


def test_finite_samples_whose_sum_overflows_are_accepted():
    # The finiteness check starts from sums (of the features and of the unframed samples); a sum that overflows is
    # not a NaN or Inf sample. (The features of such audio overflow too; only the check is tested here.)
    loud = np.full(16000, 3e38, dtype=np.float32)
    features = BeatsFeatureExtractor()(loud, sampling_rate=SR, return_tensors="pt")["input_values"]
    assert features.shape == (1, 98, 128)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8])
def test_integer_pcm(dtype):
    with pytest.raises(ValueError, match=f"integer dtype {np.dtype(dtype).name}") as info:
        BeatsFeatureExtractor()(np.zeros(16000, dtype=dtype), sampling_rate=SR)
    assert "32768" in str(info.value)
    with pytest.raises(ValueError, match="32768"):
        BeatsFeatureExtractor()(torch.zeros(16000, dtype=torch.int16), sampling_rate=SR)


@pytest.mark.parametrize(
    "empty", [[], np.zeros(0, dtype=np.float32), np.zeros((0, 16000), dtype=np.float32), [np.zeros(0)]]
)
def test_empty_input(empty):
    with pytest.raises(ValueError, match="empty"):
        BeatsFeatureExtractor()(empty, sampling_rate=SR)


def test_complex_and_object_arrays():
    with pytest.raises(ValueError, match="complex"):
        BeatsFeatureExtractor()(np.zeros(16000, dtype=np.complex64), sampling_rate=SR)
    with pytest.raises(ValueError, match="complex"):
        BeatsFeatureExtractor()(torch.zeros(16000, dtype=torch.complex64), sampling_rate=SR)
    with pytest.raises(ValueError, match="object"):
        BeatsFeatureExtractor()(np.array([0.1] * 16000, dtype=object), sampling_rate=SR)
    with pytest.raises(ValueError, match="ragged"):
        BeatsFeatureExtractor()([[[0.1] * 3000, [0.2] * 3001]], sampling_rate=SR)


def test_not_audio():
    with pytest.raises(TypeError, match="decoded audio"):
        BeatsFeatureExtractor()("clip.wav", sampling_rate=SR)


def test_tensors_that_require_grad_give_the_features_of_plain_tensors():
    # e.g. the output of a learnable front end or an augmentation module: the features are data, not a graph, so
    # the tensor is read like any other instead of failing deep in the kernel (out= operations refuse autograd).
    clips = [random_clip(16000, 0), random_clip(9000, 1)]
    extractor = BeatsFeatureExtractor()
    cases = {
        "list": ([torch.from_numpy(clip).requires_grad_() for clip in clips], clips),
        "2-D": (torch.from_numpy(np.stack([clips[0]] * 2)).requires_grad_(), np.stack([clips[0]] * 2)),
        "1-D": (torch.from_numpy(clips[1]).requires_grad_(), clips[1]),
    }
    for name, (tensors, arrays) in cases.items():
        expected = extractor(arrays, sampling_rate=SR, return_tensors="np")
        for return_tensors in ("pt", "np"):
            out = extractor(tensors, sampling_rate=SR, return_tensors=return_tensors)
            for key in ("input_values", "attention_mask"):
                np.testing.assert_array_equal(np.asarray(out[key]), expected[key], err_msg=f"{name} {key}")


@pytest.mark.parametrize("sample", [lambda x: torch.tensor(x), lambda x: np.array(x)], ids=["tensor", "array"])
def test_a_list_of_0d_samples_is_explained(sample):
    # `list(tensor)` gives 0-d tensors: each element would be a clip of no length; the message says so (it used to
    # speak of multi-channel audio).
    samples = [sample(x) for x in random_clip(3000, 0)]
    with pytest.raises(ValueError, match=r"Clip 0 is a single number \(a 0-d") as info:
        BeatsFeatureExtractor()(samples, sampling_rate=SR)
    assert "multi-channel" not in str(info.value).lower() and "1-D" in str(info.value)


# --------------------------------------------------------------------------------------------------------------------
# transformers' own feature-extractor test mixin (materialised from the transformers sdist by conftest.py)

try:
    from hf_tests.test_sequence_feature_extraction_common import SequenceFeatureExtractionTestMixin
except ImportError as exc:
    _mixin_import_error = exc

    class SequenceFeatureExtractionTestMixin:  # stands in so that the problem is reported as a failure, not a skip
        def test_hf_mixins_available(self):
            self.fail(f"{hf_mixins.unavailable_message()} Import error: {_mixin_import_error!r}")


class BeatsFeatureExtractionTester:
    """Inputs for the mixin, which exercises `pad()` and truncation on already extracted (frames, 128) features."""

    def __init__(self, parent, batch_size=7, min_seq_length=40, max_seq_length=200, feature_size=128):
        self.parent = parent
        self.batch_size = batch_size
        self.min_seq_length = min_seq_length
        self.max_seq_length = max_seq_length
        self.seq_length_diff = (max_seq_length - min_seq_length) // (batch_size - 1)
        self.feature_size = feature_size

    def prepare_feat_extract_dict(self):
        return {
            "feature_size": self.feature_size,
            "padding_value": 0.0,
            "sampling_rate": 16000,
            "return_attention_mask": True,
        }

    def prepare_inputs_for_common(self, equal_length=False, numpify=False):
        rng = np.random.default_rng(0)
        if equal_length:
            lengths = [self.max_seq_length] * self.batch_size
        else:
            lengths = range(self.min_seq_length, self.max_seq_length, self.seq_length_diff)
        inputs = [rng.random((n, self.feature_size), dtype=np.float32) for n in lengths]
        return inputs if numpify else [x.tolist() for x in inputs]


class BeatsFeatureExtractionTest(SequenceFeatureExtractionTestMixin, unittest.TestCase):
    feature_extraction_class = BeatsFeatureExtractor

    def setUp(self):
        self.feat_extract_tester = BeatsFeatureExtractionTester(self)


@pytest.mark.parametrize("lengths", [(16000, 16000, 16000), (16000, 5000, 32000), (20000,)])
def test_direct_longest_padding_equals_the_generic_pad(lengths):
    # `padding="longest"` with torch output skips `SequenceFeatureExtractor.pad`; it must give exactly what `pad` gives.
    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal(n) * 0.1).astype(np.float32) for n in lengths]
    extractor = BeatsFeatureExtractor()
    direct = extractor(clips, sampling_rate=16000, return_tensors="pt")
    longest = direct["input_values"].shape[1]
    generic = extractor(clips, sampling_rate=16000, return_tensors="pt", padding="max_length", max_length=longest)
    assert direct.keys() == generic.keys() == {"input_values", "attention_mask"}
    for key in direct:
        assert direct[key].dtype == generic[key].dtype
        assert torch.equal(direct[key], generic[key])
    assert "attention_mask" not in extractor(
        clips, sampling_rate=16000, return_tensors="pt", return_attention_mask=False
    )


def test_fast_filter_bank_stays_within_the_tolerance_of_the_official_one(official):
    # exact=False changes rounding only (re^2 + im^2, a banded mel product, the normalisation as one multiply-add;
    # the time-domain steps are kept):
    # within ~3e-7 of the exact features (the official ones on this machine), but not equal to them.
    waveform, lengths, fbank = official
    exact = compute_beats_fbank(waveform)
    fast = compute_beats_fbank(waveform, exact=False)
    assert fast.shape == fbank.shape and not torch.equal(fast, exact)
    assert float((fast - exact).abs().max()) <= 1e-6
    assert_matches_fixture(fast, fbank)
    clip = compute_beats_fbank(waveform[1, : lengths[1]], exact=False)
    assert float((clip - exact[1, :167]).abs().max()) <= 1e-6
    # Unnormalised log energies (up to ~25) keep the same relative accuracy.
    raw_exact = compute_kaldi_fbank(waveform * 2**15)
    raw_fast = compute_kaldi_fbank(waveform * 2**15, exact=False)
    assert float(((raw_fast - raw_exact).abs() / raw_exact.abs().clamp_min(1.0)).max()) <= 1e-6


def test_fast_filter_bank_option_of_the_extractor_is_saved(official, tmp_path):
    waveform, lengths, fbank = official
    extractor = BeatsFeatureExtractor(exact_fbank=False)
    extractor.save_pretrained(tmp_path)
    reloaded = BeatsFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded.exact_fbank is False and BeatsFeatureExtractor().exact_fbank is True
    features = reloaded(waveform[0].numpy(), sampling_rate=SR, return_tensors="pt")["input_values"][0]
    exact = compute_beats_fbank(waveform[0])
    assert not torch.equal(features, exact) and float((features - exact).abs().max()) <= 1e-5
