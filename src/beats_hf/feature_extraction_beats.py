# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Feature extractor for BEATs: Kaldi-compatible log-mel filter banks, computed in batches with torch.

The official BEATs code (`BEATs.preprocess`) turns 16 kHz audio into features with
`torchaudio.compliance.kaldi.fbank`, one clip at a time. This module computes the same numbers without torchaudio
(which Hub remote code cannot rely on), on a whole batch at once and on any device. On CPU in float32 the result is
bit-identical to the torchaudio computation: every rounding step happens in the same order and dtype (the three
substitutions give the same values faster: `hypot` for complex `abs`, both correctly rounded; a one-pass
pre-emphasis; and the mel product band by band over the bins the filters cover, cut where BLAS cuts the dense sum;
the last two are checked against torchaudio's operations at run time, with a fallback to them).

Public functions:

- [`compute_kaldi_fbank`]: batched equivalent of `torchaudio.compliance.kaldi.fbank` with the options BEATs uses.
- [`compute_beats_fbank`]: the whole BEATs preprocessing (int16 scaling, filter bank, normalisation).
- [`num_fbank_frames`]: number of frames a clip of a given length produces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import PaddingStrategy, TensorType, logging

logger = logging.get_logger(__name__)

# Kaldi framing and filter-bank options used by BEATs. Anything not listed is a torchaudio default that BEATs keeps:
# dither 0, povey window, DC removal, 0.97 pre-emphasis, power spectrum, log, no energy term, no VTLN.
_FRAME_LENGTH_MS = 25.0
_FRAME_SHIFT_MS = 10.0
_PREEMPHASIS = 0.97
_POVEY_EXPONENT = 0.85
_LOW_FREQ = 20.0
_HIGH_FREQ = 0.0  # <= 0 means "offset from Nyquist", so 0 is Nyquist itself
# std::numeric_limits<float>::epsilon(): Kaldi's floor before the log, whatever the compute dtype.
_LOG_FLOOR = float(torch.finfo(torch.float32).eps)
# BEATs normalisation constants (AudioSet statistics of the fbank), divided by 2 * std like AST.
_FBANK_MEAN = 15.41663
_FBANK_STD = 6.55582
# The patch embedding needs a full 16-frame time step; shorter clips produce no patch at all.
_MIN_FRAMES = 16
# Kaldi works on int16-range samples; the float [-1, 1] audio is rescaled (not rounded, not clipped).
_INT16_SCALE = 2**15
# Frames per block of the CPU kernel: large enough for BLAS/FFT efficiency, small enough to stay in cache.
_CPU_BLOCK_FRAMES = 1024

_constant_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

# Keys a saved preprocessor config carries besides the extractor's options (read by the base classes or the Auto
# classes), which are therefore not "unused options".
_FEATURE_EXTRACTOR_METADATA = frozenset({"auto_map", "feature_extractor_type", "processor_class", "padding_side"})

# What BeatsFeatureExtractor accepts: one clip, a list of clips, or a (batch, samples) array/tensor.
AudioInput = np.ndarray | torch.Tensor | list[float] | list[np.ndarray] | list[torch.Tensor] | list[list[float]]


def _frame_geometry(sample_frequency: float) -> tuple[int, int, int]:
    """Window length, hop and FFT size in samples, truncated to integers the way Kaldi does."""
    window = int(sample_frequency * _FRAME_LENGTH_MS * 0.001)
    hop = int(sample_frequency * _FRAME_SHIFT_MS * 0.001)
    n_fft = 1 if window == 0 else 2 ** (window - 1).bit_length()
    return window, hop, n_fft


def num_fbank_frames(num_samples: int | torch.Tensor, sample_frequency: float = 16000.0) -> int | torch.Tensor:
    """
    Number of filter-bank frames Kaldi produces for a clip of `num_samples` samples (`snip_edges=True`).

    Only frames lying entirely inside the clip are kept: `1 + (num_samples - 400) // 160` at 16 kHz, and 0 for clips
    shorter than one 25 ms window.

    Args:
        num_samples (`int` or `torch.Tensor` of integers): clip length(s) in samples.
        sample_frequency (`float`, defaults to 16000): sampling rate in Hz.

    Returns:
        `int` or `torch.Tensor`: the frame count(s), same type as `num_samples`.
    """
    window, hop, _ = _frame_geometry(sample_frequency)
    if isinstance(num_samples, torch.Tensor):
        return torch.where(num_samples >= window, 1 + torch.div(num_samples - window, hop, rounding_mode="floor"), 0)
    return 1 + (num_samples - window) // hop if num_samples >= window else 0


def _kaldi_mel_scale(freq):
    return 1127.0 * (1.0 + freq / 700.0).log()


def _build_mel_matrix(num_mel_bins: int, n_fft: int, sample_frequency: float) -> torch.Tensor:
    """Kaldi triangular mel filters, `(num_mel_bins, n_fft // 2 + 1)` in float32 on CPU (Nyquist column is zero)."""
    if num_mel_bins <= 3:
        raise ValueError(f"Kaldi filter banks need more than 3 mel bins, got num_mel_bins={num_mel_bins}.")
    nyquist = 0.5 * sample_frequency
    high_freq = _HIGH_FREQ + nyquist if _HIGH_FREQ <= 0.0 else _HIGH_FREQ
    # Band edges are python doubles and the per-bin grid is float32, exactly as in torchaudio's `get_mel_banks`
    # (which uses the default dtype, float32 unless changed); computing them any other way moves some filter
    # weights by 1 ulp. The dtype is explicit so that `torch.set_default_dtype` cannot change the filters.
    mel_low = 1127.0 * math.log(1.0 + _LOW_FREQ / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    mel_step = (mel_high - mel_low) / (num_mel_bins + 1)
    bin_index = torch.arange(num_mel_bins, dtype=torch.float32).unsqueeze(1)
    left = mel_low + bin_index * mel_step
    center = mel_low + (bin_index + 1.0) * mel_step
    right = mel_low + (bin_index + 2.0) * mel_step
    fft_mel = _kaldi_mel_scale((sample_frequency / n_fft) * torch.arange(n_fft // 2, dtype=torch.float32))
    fft_mel = fft_mel.unsqueeze(0)
    rising = (fft_mel - left) / (center - left)
    falling = (right - fft_mel) / (right - center)
    filters = torch.clamp_min(torch.min(rising, falling), 0.0)
    # Kaldi's filters stop below Nyquist; the last FFT bin gets an all-zero column.
    return torch.cat([filters, torch.zeros(num_mel_bins, 1, dtype=torch.float32)], dim=1)


def _cached_constants(
    num_mel_bins: int, sample_frequency: float, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mel matrix (cast from float32, as torchaudio does) and povey window, built once per (device, dtype)."""
    key = (num_mel_bins, float(sample_frequency), device, dtype)
    if key not in _constant_cache:
        window, _, n_fft = _frame_geometry(sample_frequency)
        mel = _build_mel_matrix(num_mel_bins, n_fft, sample_frequency).to(device=device, dtype=dtype)
        # The window is computed on the target device in the compute dtype, which is what torchaudio does too.
        povey = torch.hann_window(window, periodic=False, device=device, dtype=dtype).pow(_POVEY_EXPONENT)
        _constant_cache[key] = (mel, povey)
    return _constant_cache[key]


# The mel product over bands of the mel matrix: groups of 16 consecutive filters, each multiplied over only the FFT
# bins where any of them is nonzero (13% of the dense matrix's products for BEATs' 128 filters). BLAS runs fastest
# with multiples of 16 filters, and on chunks of 4096 frames no other partition into 16-filter units was faster
# beyond the noise (`bench/profile_mel_bands.py`, timed uncut; the exact mode cuts one band in two at bin 128).
_MEL_BAND_FILTERS = 16
# Output rows per chunk of the banded mel products (~4 MB of power spectra): each operation has a fixed cost, so
# products, log and normalisation over chunks gathered from several blocks of frames beat one set per block
# (`bench/compare_fbank_revisions.py`).
_MEL_CHUNK_FRAMES = 4096
# Inner-dimension block sizes a BLAS may split the dense product into (each block summed on its own, then added to
# the output), tried in this order by `_dense_equal_band_split`; 0 means no split.
_BLAS_SPLIT_CANDIDATES = (0, 128, 256, 64, 96, 192, 384, 512)


@dataclass(frozen=True)
class _MelBand:
    """Filters `first:end` of the mel matrix, as pieces `(first_bin, end_bin, weights (bins, filters))` in bin order."""

    first: int
    end: int
    pieces: tuple[tuple[int, int, torch.Tensor], ...]


_band_cache: dict[tuple, list[_MelBand]] = {}


def _mel_bands(
    num_mel_bins: int, sample_frequency: float, device: torch.device, dtype: torch.dtype, split_every: int = 0
) -> list[_MelBand]:
    """`_build_mel_bands`, built once per arguments."""
    key = (num_mel_bins, float(sample_frequency), device, dtype, split_every)
    if key not in _band_cache:
        _band_cache[key] = _build_mel_bands(num_mel_bins, sample_frequency, device, dtype, split_every)
    return _band_cache[key]


def _build_mel_bands(
    num_mel_bins: int, sample_frequency: float, device: torch.device, dtype: torch.dtype, split_every: int
) -> list[_MelBand]:
    """
    The mel matrix as groups of `_MEL_BAND_FILTERS` filters over the bins where any filter of the group is nonzero,
    each group cut into pieces at the multiples of `split_every` (0: one piece). The filters are triangles over a
    few neighbouring bins, so the sum of the pieces' products equals the dense product up to float rounding, and
    bit for bit when the pieces follow the dense product's own summation blocks (`_dense_equal_band_split`).
    """
    mel, _ = _cached_constants(num_mel_bins, sample_frequency, device, dtype)
    bands = []
    for first in range(0, num_mel_bins, _MEL_BAND_FILTERS):
        end = min(first + _MEL_BAND_FILTERS, num_mel_bins)
        used = (mel[first:end] != 0).any(dim=0).nonzero().flatten()
        low, high = (int(used.min()), int(used.max()) + 1) if used.numel() else (0, 1)
        edges = [low]
        if split_every:
            edges += range((low // split_every + 1) * split_every, high, split_every)
        edges.append(high)
        pieces = tuple((a, b, mel[first:end, a:b].t().contiguous()) for a, b in zip(edges[:-1], edges[1:]))
        bands.append(_MelBand(first, end, pieces))
    return bands


def _banded_mel_product(power: torch.Tensor, bands: list[_MelBand], out: torch.Tensor) -> None:
    """`out = power @ mel.T` band by band: the first piece of a band is written, the later ones added in bin order."""
    for band in bands:
        energies = out[:, band.first : band.end]
        (low, high, weights), *rest = band.pieces
        torch.matmul(power[:, low:high], weights, out=energies)
        for low, high, weights in rest:
            torch.addmm(energies, power[:, low:high], weights, out=energies)


_band_split_cache: dict[tuple, int | None] = {}


def _dense_equal_band_split(
    num_mel_bins: int, sample_frequency: float, device: torch.device, dtype: torch.dtype
) -> int | None:
    """
    The `split_every` for which the banded mel product gives the dense `power @ mel.T` bit for bit on this device,
    or None if no candidate does (the exact mode then keeps the dense product).

    A zero weight leaves a multiply-add chain unchanged (`p * 0 + c == c`), so a band's product equals the dense one
    exactly when BLAS sums each output along the inner dimension in one chain per block of bins and adds the blocks
    to the output in order, and the band's pieces start where those blocks do (MKL's sgemm as torch 2.9-2.14 call it
    on an AMD EPYC Zen 4 sums the 257 bins of a 512-point FFT in blocks of 128, the 513 of a 1024-point one in blocks
    of 192). Which block size, if any, is decided once per dtype, thread count and float32 matmul precision setting,
    on values spread over many decades and at several row counts. CPU only: elsewhere the exact mode keeps the dense
    product.
    """
    if device.type != "cpu":
        # GPU BLAS libraries pick kernels (and split-K) by shape, and one chunk there holds all the rows of a call:
        # a probe at a few row counts would not cover them.
        return None
    mkldnn_matmul = getattr(torch.backends.mkldnn, "matmul", None)
    # Float32 matmul precision settings route products to other kernels (oneDNN in bfloat16 on CPUs that have it).
    key = (
        num_mel_bins,
        float(sample_frequency),
        dtype,
        torch.get_num_threads(),
        torch.get_float32_matmul_precision(),
        getattr(mkldnn_matmul, "fp32_precision", None),
        getattr(torch.backends.mkldnn, "enabled", None),
    )
    if key not in _band_split_cache:
        _, _, n_fft = _frame_geometry(sample_frequency)
        mel, _ = _cached_constants(num_mel_bins, sample_frequency, device, dtype)
        gen = torch.Generator(device="cpu").manual_seed(0)
        # Log-normal "power spectra" over ~15 decades, so that any other order of roundings shows; the rows of a
        # full chunk repeat 1024 random ones (the kernel BLAS picks depends on the shape, not on the values).
        rows = _MEL_CHUNK_FRAMES
        levels = torch.randn((1024, n_fft // 2 + 1), generator=gen, dtype=torch.float32).mul_(4.0)
        power = levels.exp_().repeat(-(-rows // 1024), 1)[:rows].to(dtype)
        # Row counts of the kernel's chunks: the fewest that are banded (16), an odd count, a full chunk.
        dense = {count: torch.matmul(power[:count], mel.t()) for count in (_MIN_FRAMES, 1001, rows)}
        out = torch.empty_like(dense[rows])

        def reproduces_dense(split_every: int) -> bool:
            bands = _build_mel_bands(num_mel_bins, sample_frequency, device, dtype, split_every)
            for count, expected in dense.items():
                _banded_mel_product(power[:count], bands, out[:count])
                if not torch.equal(out[:count], expected):
                    return False
            return True

        _band_split_cache[key] = next((split for split in _BLAS_SPLIT_CANDIDATES if reproduces_dense(split)), None)
    return _band_split_cache[key]


_one_pass_pre_emphasis_cache: dict[tuple, bool] = {}


def _one_pass_pre_emphasis_is_exact(device: torch.device, dtype: torch.dtype) -> bool:
    """
    Whether `addcmul(x, x_prev, 1, value=-0.97)` rounds like Kaldi's two steps `x - (0.97 * x_prev)` on this device.

    addcmul computes `x + (value * x_prev) * 1`: the product is rounded before the sum, and multiplying by one is
    exact, so even a kernel compiled with fused multiply-adds gives the two-step result, in one pass instead of
    two. A kernel that fused `value * x_prev` into the addition would not; this probe (once per device and dtype,
    on shifted views of one buffer written into a wider one like the real call, with rows of 402 samples so that
    8- and 16-lane vector loops both leave a scalar tail) decides, and the caller falls back to two operations if
    it fails.
    """
    key = (device, dtype)
    if key not in _one_pass_pre_emphasis_cache:
        gen = torch.Generator(device="cpu").manual_seed(0)
        values = torch.randn((8, 403), generator=gen, device="cpu", dtype=torch.float32) * 1e4
        probe = values.to(device=device, dtype=dtype)
        written = torch.zeros((8, 512), device=device, dtype=dtype)
        torch.addcmul(
            probe[:, 1:],
            probe[:, :-1],
            torch.ones((), device=device, dtype=dtype),
            value=-_PREEMPHASIS,
            out=written[:, : probe.shape[1] - 1],
        )
        two_steps = probe[:, 1:] - probe[:, :-1] * _PREEMPHASIS
        _one_pass_pre_emphasis_cache[key] = bool(torch.equal(written[:, : probe.shape[1] - 1], two_steps))
    return _one_pass_pre_emphasis_cache[key]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    if not dtype.is_floating_point:
        raise TypeError(
            f"compute_kaldi_fbank expects floating-point audio, got {dtype}. Convert integer PCM to float first."
        )
    # Half-precision power spectra of int16-range audio overflow (|X|^2 reaches ~1e13), so they are computed in fp32.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _as_length_tensor(
    lengths: Sequence[int] | torch.Tensor | None, batch: int, num_samples: int
) -> torch.Tensor | None:
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, dtype=torch.int64).reshape(-1).cpu()
    if lengths.numel() != batch:
        raise ValueError(f"`lengths` has {lengths.numel()} entries but the batch has {batch} rows.")
    if bool((lengths < 0).any()) or bool((lengths > num_samples).any()):
        raise ValueError(f"`lengths` must lie in [0, {num_samples}] (the padded length), got {lengths.tolist()}.")
    return lengths


def compute_kaldi_fbank(
    waveforms: torch.Tensor,
    lengths: Sequence[int] | torch.Tensor | None = None,
    *,
    num_mel_bins: int = 128,
    sample_frequency: float = 16000.0,
    padding_value: float = 0.0,
    exact: bool = True,
) -> torch.Tensor:
    """
    Log-mel filter banks of a batch of clips, equal to `torchaudio.compliance.kaldi.fbank` applied to each row.

    The options are those BEATs uses: `frame_length=25`, `frame_shift=10`, `dither=0`, povey window, DC offset
    removal, pre-emphasis 0.97, 512-point FFT (`round_to_power_of_two`), `snip_edges=True`, mel filters between
    20 Hz and Nyquist on the Kaldi mel scale, power spectrum, `log(max(E, 1.1920929e-07))`, no energy term. The input
    is used as given: Kaldi (and BEATs) expect int16-range samples, see [`compute_beats_fbank`] for the full
    preprocessing.

    Frames never straddle the end of a clip (`snip_edges`), so a frame computed from a zero-padded batch is the same
    as the frame computed from the clip alone whenever it lies inside the clip. With `lengths`, only those frames are
    computed, and the remaining positions are filled with `padding_value`.

    Dtype policy: float32 and float64 inputs are computed in their own dtype (the mel matrix is built in float32 and
    cast, like torchaudio); float16/bfloat16 inputs are computed and returned in float32, because their range cannot
    hold the power spectrum.

    Exactness: on CPU in float32 the output equals torchaudio's bit for bit, for every clip of 16 frames (0.175 s)
    or more, whatever it is batched with. A clip of fewer than 16 frames is exact when computed on its own; batched
    through `lengths` with other clips it can differ by one float32 ulp, because BLAS rounds the mel product of such
    small matrices differently. On other devices the result follows that device's FFT and matmul kernels.

    Args:
        waveforms (`torch.Tensor` of shape `(batch, num_samples)` or `(num_samples,)`):
            Mono audio, on any device, in any floating dtype.
        lengths (sequence of `int` or `torch.Tensor` of shape `(batch,)`, *optional*):
            Real length of each row in samples when the batch is right-padded. Defaults to full rows.
        num_mel_bins (`int`, defaults to 128):
            Number of mel filters.
        sample_frequency (`float`, defaults to 16000):
            Sampling rate in Hz.
        padding_value (`float`, defaults to 0.0):
            Value written to frames past the end of a clip (only when `lengths` is given).
        exact (`bool`, defaults to `True`):
            `True` keeps every rounding of torchaudio (the bit-exactness above). `False` computes the power spectrum
            as `re^2 + im^2` (not `|X|` rounded, then squared) and the normalisation as one multiply-add: about 1.3x
            faster on CPU (~3x the official per-clip loop for 8 x 10 s clips, `bench/bench_feature_extraction.py`),
            within a few 1e-7 of the exact energies (relative), i.e. about one float32 step of the log (up to ~2e-6
            for log energies near 20, ~3e-7 after BEATs' normalisation). The framing, DC removal, pre-emphasis and
            window keep torchaudio's roundings in both modes: the lowest mel bins are ill-conditioned (pre-emphasis
            leaves them ~1e-3 of the energy), and reordering those steps moves them by ~1e-4.

    Returns:
        `torch.Tensor` of shape `(batch, num_frames, num_mel_bins)` (or `(num_frames, num_mel_bins)` for 1-D input),
        on the input's device. `num_frames` is [`num_fbank_frames`] of the padded length.
    """
    if waveforms.dim() not in (1, 2):
        raise ValueError(
            f"compute_kaldi_fbank expects (batch, num_samples) or (num_samples,) mono audio, got shape "
            f"{tuple(waveforms.shape)}."
        )
    single = waveforms.dim() == 1
    waveforms = waveforms.unsqueeze(0) if single else waveforms
    dtype = _compute_dtype(waveforms.dtype)
    batch, num_samples = waveforms.shape
    lengths = _as_length_tensor(lengths, batch, num_samples)
    out = _fbank(
        waveforms.to(dtype), lengths, num_mel_bins, sample_frequency, padding_value, scale=None, norm=None, exact=exact
    )
    return out[0] if single else out


def compute_beats_fbank(
    waveforms: torch.Tensor,
    lengths: Sequence[int] | torch.Tensor | None = None,
    *,
    num_mel_bins: int = 128,
    sample_frequency: float = 16000.0,
    fbank_mean: float = _FBANK_MEAN,
    fbank_std: float = _FBANK_STD,
    padding_value: float = 0.0,
    exact: bool = True,
) -> torch.Tensor:
    """
    BEATs preprocessing of a batch of clips: `(kaldi_fbank(x * 2**15) - fbank_mean) / (2 * fbank_std)`.

    Equals the official `BEATs.preprocess` applied to each clip on its own (bit-identical on CPU in float32). The
    official code runs on the padded batch; the frames that lie inside a clip are the same either way, the frames it
    computes from the zero padding are replaced here by `padding_value` when `lengths` is given.

    Args:
        waveforms (`torch.Tensor` of shape `(batch, num_samples)` or `(num_samples,)`):
            Mono 16 kHz audio in [-1, 1], on any device, in any floating dtype (see [`compute_kaldi_fbank`] for the
            dtype policy).
        lengths (sequence of `int` or `torch.Tensor` of shape `(batch,)`, *optional*):
            Real length of each row in samples when the batch is right-padded. Defaults to full rows.
        num_mel_bins (`int`, defaults to 128):
            Number of mel filters.
        sample_frequency (`float`, defaults to 16000):
            Sampling rate in Hz.
        fbank_mean (`float`, defaults to 15.41663), fbank_std (`float`, defaults to 6.55582):
            Normalisation statistics; the features are divided by `2 * fbank_std`.
        padding_value (`float`, defaults to 0.0):
            Value of the normalised features past the end of a clip (only when `lengths` is given).
        exact (`bool`, defaults to `True`):
            `False` trades the bit-exactness for speed, see [`compute_kaldi_fbank`] (features within ~3e-7).

    Returns:
        `torch.Tensor` of shape `(batch, num_frames, num_mel_bins)` (or `(num_frames, num_mel_bins)` for 1-D input).
    """
    if waveforms.dim() not in (1, 2):
        raise ValueError(
            f"compute_beats_fbank expects (batch, num_samples) or (num_samples,) mono audio, got shape "
            f"{tuple(waveforms.shape)}."
        )
    single = waveforms.dim() == 1
    waveforms = waveforms.unsqueeze(0) if single else waveforms
    dtype = _compute_dtype(waveforms.dtype)
    batch, num_samples = waveforms.shape
    lengths = _as_length_tensor(lengths, batch, num_samples)
    out = _beats_fbank(
        waveforms.to(dtype), lengths, num_mel_bins, sample_frequency, fbank_mean, fbank_std, padding_value, exact
    )
    return out[0] if single else out


def _beats_fbank(
    waveforms: torch.Tensor,
    lengths: torch.Tensor | None,
    num_mel_bins: int,
    sample_frequency: float,
    fbank_mean: float,
    fbank_std: float,
    padding_value: float,
    exact: bool,
    feature_sums: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """The BEATs preprocessing on checked (batch, samples) input in the compute dtype: int16 scale, fbank, norm."""
    return _fbank(
        waveforms,
        lengths,
        num_mel_bins,
        sample_frequency,
        padding_value,
        scale=_INT16_SCALE,
        norm=(fbank_mean, 2 * fbank_std),
        exact=exact,
        feature_sums=feature_sums,
    )


def _fbank(
    waveforms: torch.Tensor,
    lengths: torch.Tensor | None,
    num_mel_bins: int,
    sample_frequency: float,
    padding_value: float,
    scale: float | None,
    norm: tuple[float, float] | None,
    exact: bool = True,
    feature_sums: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """
    Shared batched kernel; `waveforms` is (batch, samples) in the compute dtype, checks are done by callers.

    With `feature_sums`, a sum over each finished block (or chunk) of features, of the first filter of each band of
    16, is appended to it while the block is still in cache: the feature extractor's NaN check. A NaN or infinite
    sample makes every feature of its frames NaN (through the frame mean), an infinite power every feature of its
    band, so these columns see both, for a sixteenth of a sum over all the features.
    """
    # Frames are views of the samples, and reductions over them round differently when the time axis is strided (a
    # column-major batch, a slice): contiguous samples give every clip the values it gets alone, as torchaudio's.
    waveforms = waveforms.contiguous()
    device, dtype = waveforms.device, waveforms.dtype
    batch, num_samples = waveforms.shape
    window, hop, n_fft = _frame_geometry(sample_frequency)
    max_frames = num_fbank_frames(num_samples, sample_frequency)
    out = torch.empty((batch, max_frames, num_mel_bins), device=device, dtype=dtype)
    if max_frames == 0 or batch == 0:
        return out
    mel, povey = _cached_constants(num_mel_bins, sample_frequency, device, dtype)

    window_weights = povey
    if scale is not None and math.frexp(scale)[0] == 0.5:
        # A power-of-two scale commutes with every rounding step before the window (mean, DC removal, pre-emphasis;
        # and the energies of samples small enough to go subnormal are floored anyway), so folding it into the
        # window gives the same bits as scaling the samples first, without a pass over the audio.
        window_weights = povey * scale
    elif scale is not None:
        waveforms = waveforms * scale
    frames = waveforms.unfold(-1, window, hop)  # (batch, max_frames, window), an overlapping view
    counts = [max_frames] * batch if lengths is None else num_fbank_frames(lengths, sample_frequency).tolist()
    ragged = any(count < max_frames for count in counts)
    flat_out = out.view(batch * max_frames, num_mel_bins)

    # Blocks of frames, each with the row where its features go. On CPU, blocks of about _CPU_BLOCK_FRAMES frames
    # keep the working set in cache and let the scratch buffers be reused, which beats single passes over a large
    # batch; blocks of 16 frames or more give the same values whatever their size, so blocking changes nothing.
    valid = None
    if device.type != "cpu" or (ragged and sum(counts) < batch * _CPU_BLOCK_FRAMES // 4):
        # Accelerators want the largest kernels they can get, and many short clips of different lengths are cheaper
        # gathered than handled one by one: compute only the frames inside each clip, as one set of rows.
        if ragged:
            valid = torch.arange(max_frames, device=device)[None, :] < torch.tensor(counts, device=device)[:, None]
            frame_rows = frames[valid]
            target = torch.empty((frame_rows.shape[0], num_mel_bins), device=device, dtype=dtype)
        else:
            frame_rows, target = frames.reshape(-1, window), flat_out
        blocks = _split_rows(frame_rows, _CPU_BLOCK_FRAMES if device.type == "cpu" else None)
    elif not ragged and _MIN_FRAMES <= max_frames < _CPU_BLOCK_FRAMES:
        per_block = _CPU_BLOCK_FRAMES // max_frames
        blocks = [(frames[b : b + per_block], b * max_frames) for b in range(0, batch, per_block)]
        target = flat_out
    else:
        # Long clips are split into blocks; each clip shorter than a patch is its own block, so that its mel product
        # has the same shape as torchaudio's (BLAS rounds differently for fewer than 16 rows).
        blocks = [
            (piece, b * max_frames + start)
            for b, count in enumerate(counts)
            for piece, start in _split_rows(frames[b, :count], _CPU_BLOCK_FRAMES)
        ]
        target = flat_out
    if not blocks:
        return out.fill_(padding_value)
    # The frame means (DC offsets) in one operation for all the rows computed rather than one per block: each
    # operation has a fixed cost, and on CPU a row's mean does not depend on how many rows are reduced with it
    # (bit-identical). `row_means[r]` is the mean of the frame whose features go to `target[r]`. A ragged batch
    # split clip by clip keeps per-block means: the whole batch would include all its padded frames.
    if valid is not None:
        row_means = frame_rows.mean(dim=-1, keepdim=True)
    elif not ragged:
        row_means = frames.mean(dim=-1, keepdim=True).view(batch * max_frames, 1)
    else:
        row_means = None

    largest = max(block.shape[:-1].numel() for block, _ in blocks)
    scratch = _FbankScratch(largest, window, n_fft, device, dtype)
    one_pass_pre_emphasis = _one_pass_pre_emphasis_is_exact(device, dtype)
    unit = torch.ones((), device=device, dtype=dtype)
    if norm is not None and not exact:
        norm_shift = torch.tensor(-norm[0] / norm[1], device=device, dtype=dtype)

    def finish_energies(energies: torch.Tensor, checked: bool = False) -> torch.Tensor | None:
        """
        Log mel energies, normalised, in place; the exact mode keeps torchaudio's two normalisation roundings. Returns
        the sum of the first filter of each band if `checked` or `feature_sums` asks for it (see above).
        """
        energies.clamp_min_(_LOG_FLOOR).log_()
        if norm is not None and exact:
            energies.sub_(norm[0]).div_(norm[1])
        elif norm is not None:
            torch.add(norm_shift, energies, alpha=1.0 / norm[1], out=energies)
        return energies[:, ::_MEL_BAND_FILTERS].sum() if checked or feature_sums is not None else None

    # The mel products, log and normalisation run band by band on chunks of up to _MEL_CHUNK_FRAMES consecutive
    # output rows, gathered from several blocks: each operation has a fixed cost, and these are cheap per frame. The
    # power spectra of the pending chunk wait in `power` (never more rows than the call has). The exact mode does so
    # where the banded product gives the dense product's bits, and keeps the dense product of their own shape for
    # blocks of fewer than 16 rows (BLAS rounds products of so few rows differently).
    split_every = _dense_equal_band_split(num_mel_bins, sample_frequency, device, dtype) if exact else 0
    bands = None if split_every is None else _mel_bands(num_mel_bins, sample_frequency, device, dtype, split_every)
    if bands is not None:
        capacity = min(target.shape[0], max(largest, _MEL_CHUNK_FRAMES))
        power = torch.empty((capacity, n_fft // 2 + 1), device=device, dtype=dtype)
    chunk_start = chunk_end = 0

    def finish_chunk() -> None:
        if chunk_end > chunk_start:
            chunk_power, energies = power[: chunk_end - chunk_start], target[chunk_start:chunk_end]
            _banded_mel_product(chunk_power, bands, energies)
            total = finish_energies(energies, checked=exact)
            # An infinite power (|X|^2 beyond the float range: samples above ~1e16) makes every filter of its frame
            # NaN in the dense product (inf * 0), but only the filters of its band in the banded one.
            if exact and not bool(total.isfinite()):
                torch.matmul(chunk_power, mel.t(), out=energies)
                total = finish_energies(energies, checked=True)
            if feature_sums is not None:
                feature_sums.append(total)

    for block, row0 in blocks:
        rows = block.shape[:-1].numel()
        views = scratch.views(block.shape)
        # Still an overlapping view of the samples until here; the subtraction makes the frames contiguous.
        if row_means is None:
            block_means = block.mean(dim=-1, keepdim=True)
        else:
            block_means = row_means[row0 : row0 + rows].view(*block.shape[:-1], 1)
        torch.sub(block, block_means, out=views.centred_like_block)
        views.first_sample.copy_(views.centred_first)
        # Pre-emphasis y[i] = x[i] - 0.97 * x[i-1], then the window, written into the FFT buffer. Each step is
        # rounded separately and in Kaldi's order (addcmul keeps the product's and the difference's roundings, as
        # its probe checks); fusing steps into one rounding would change the last bits.
        if one_pass_pre_emphasis:
            torch.addcmul(views.centred, views.previous, unit, value=-_PREEMPHASIS, out=views.windowed)
        else:
            torch.mul(views.previous, _PREEMPHASIS, out=views.windowed)
            torch.sub(views.centred, views.windowed, out=views.windowed)
        views.windowed.mul_(window_weights)
        spectrum = torch.fft.rfft(views.fft_in)
        if bands is None or (exact and rows < _MIN_FRAMES):
            energies = target[row0 : row0 + rows]
            # Multiplying by the transposed view of the (mels, bins) matrix, like torchaudio, keeps BLAS on the same
            # kernel; a contiguous (bins, mels) copy rounds differently for matrices of fewer than 16 rows.
            torch.matmul(_power_spectrum(spectrum), mel.t(), out=energies)
            total = finish_energies(energies)
            if feature_sums is not None:
                feature_sums.append(total)
            continue
        if row0 != chunk_end or chunk_end - chunk_start + rows > power.shape[0]:
            finish_chunk()
            chunk_start = chunk_end = row0
        slot = power[chunk_end - chunk_start : chunk_end - chunk_start + rows]
        if exact:
            _power_spectrum(spectrum, out=slot)
        else:
            # re^2 + im^2 from the squares of the interleaved real and imaginary parts.
            squares = torch.view_as_real(spectrum).view(rows, 2 * spectrum.shape[-1]).square_()
            torch.add(squares[:, 0::2], squares[:, 1::2], out=slot)
        chunk_end += rows
    if bands is not None:
        finish_chunk()

    if valid is not None:
        out.fill_(padding_value)
        out[valid] = target
    elif ragged:
        for b, count in enumerate(counts):
            out[b, count:] = padding_value
    return out


@dataclass
class _BlockViews:
    """Views of the fbank scratch buffers for one block shape (see `_FbankScratch.views`)."""

    centred: torch.Tensor  # (rows, window): the DC-free frames
    centred_like_block: torch.Tensor  # the same, shaped like the block of frames it is computed from
    centred_first: torch.Tensor  # (rows,): sample 0 of each frame
    first_sample: torch.Tensor  # (rows,): column 0 of the shifted buffer, where sample 0 is repeated
    previous: torch.Tensor  # (rows, window): x[i-1] for every sample i, with x[-1] := x[0]
    fft_in: torch.Tensor  # (rows, n_fft): windowed frames and their zero padding
    windowed: torch.Tensor  # (rows, window): the part of fft_in the frames are written to


class _FbankScratch:
    """
    Buffers of one filter-bank call, reused by its blocks of frames, with their views built once per block shape
    (slicing a tensor costs microseconds, and the blocks of a call mostly share one shape).
    """

    def __init__(self, rows: int, window: int, n_fft: int, device: torch.device, dtype: torch.dtype) -> None:
        # Columns window..n_fft stay zero across blocks: the FFT's zero padding, written once.
        self.fft_in = torch.zeros((rows, n_fft), device=device, dtype=dtype)
        # The DC-free frames, one column to the right of column 0, which repeats sample 0 (Kaldi's x[-1] := x[0]):
        # the pre-emphasis of all samples is then one operation on two shifted views.
        self.shifted = torch.empty((rows, window + 1), device=device, dtype=dtype)
        self.window = window
        self._views: dict[tuple, _BlockViews] = {}

    def views(self, block_shape: torch.Size) -> _BlockViews:
        key = tuple(block_shape)
        if key not in self._views:
            rows = block_shape[:-1].numel()
            centred = self.shifted[:rows, 1:]
            self._views[key] = _BlockViews(
                centred=centred,
                centred_like_block=centred.view(block_shape),
                centred_first=centred[:, 0],
                first_sample=self.shifted[:rows, 0],
                previous=self.shifted[:rows, :-1],
                fft_in=self.fft_in[:rows],
                windowed=self.fft_in[:rows, : self.window],
            )
        return self._views[key]


def _split_rows(rows: torch.Tensor, block_rows: int | None) -> list[tuple[torch.Tensor, int]]:
    """Near-equal row blocks of at most `block_rows` rows and at least _MIN_FRAMES rows, with their offsets."""
    total = rows.shape[0]
    if total == 0:
        return []
    if block_rows is None or total <= block_rows:
        return [(rows, 0)]
    count = max(1, min(-(-total // block_rows), total // _MIN_FRAMES))
    edges = [k * total // count for k in range(count + 1)]
    return [(rows[a:b], a) for a, b in zip(edges[:-1], edges[1:])]


def _power_spectrum(spectrum: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """
    `spectrum.abs() ** 2` as torchaudio rounds it (`|X|` rounded, then squared), into `out` if given. On CPU `|X|`
    comes from the faster real-valued `hypot` (the same correctly rounded values).
    """
    if spectrum.device.type != "cpu":
        magnitude = spectrum.abs() if out is None else out.copy_(spectrum.abs())
        return magnitude.square_()
    # Complex abs on CPU goes through a complex-valued temporary and is ~3x slower than hypot on contiguous
    # real/imaginary parts. Both round |z| correctly; they agreed on every one of 10M FFT bins we compared.
    parts = torch.view_as_real(spectrum)
    real = parts[..., 0].contiguous()
    return torch.hypot(real, parts[..., 1].contiguous(), out=real if out is None else out).square_()


class BeatsFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Feature extractor for BEATs: normalised 128-bin Kaldi log-mel filter banks, one frame every 10 ms.

    Each clip is processed on its own, exactly like the official `BEATs.preprocess` (bit-identical on CPU): samples
    are scaled to the int16 range (`x * 2**15`), turned into a Kaldi filter bank (25 ms povey window, 10 ms hop,
    512-point FFT, 20 Hz to Nyquist, log power) and normalised as `(fbank - fbank_mean) / (2 * fbank_std)`. The
    clips are then right-padded to a common number of frames with [`~SequenceFeatureExtractor.pad`], and a
    frame-level `attention_mask` (1 = real frame) tells the model which frames are padding. Unlike the official
    code, the padded frames are never computed from zero samples, so a clip gets the same features whatever it is
    batched with.

    The filter bank is computed with torch ([`compute_beats_fbank`]), batched over the clips, on the device of
    the input tensors (CPU for numpy input, or the `device` argument). torchaudio is not needed.

    Accepted audio: mono float samples in [-1, 1] at `sampling_rate` (16 kHz):

    - one clip: a 1-D `np.ndarray`, `torch.Tensor` or list of floats;
    - a batch: a list of such clips (any lengths), or a 2-D array/tensor of shape `(batch, num_samples)` whose rows
      are all full-length clips. **A 2-D array is always read as a batch of mono clips**, never as
      `(channels, samples)`: downmix multi-channel audio first (e.g. `wav.mean(axis=0)`). A 2-D element inside a
      list is rejected as multi-channel audio.

    Each clip needs at least 2800 samples (0.175 s, 16 frames = one patch). Integer PCM, complex, NaN or infinite
    samples are rejected with an explanation; resampling is the caller's job (or the pipeline's). Tensors that
    require grad are read like others: the features are not differentiable.

    Args:
        feature_size (`int`, *optional*, defaults to 128):
            Number of mel bins (128 for every released BEATs model).
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate the model was trained at, in Hz.
        padding_value (`float`, *optional*, defaults to 0.0):
            Value of the normalised features in padded frames. The model ignores padded frames through the
            `attention_mask`, so the value does not change its outputs.
        fbank_mean (`float`, *optional*, defaults to 15.41663):
            Mean used to normalise the log filter bank (the AudioSet value of the official code).
        fbank_std (`float`, *optional*, defaults to 6.55582):
            Standard deviation used to normalise the log filter bank; features are divided by `2 * fbank_std`.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Whether [`~BeatsFeatureExtractor.__call__`] returns the frame-level `attention_mask`.
        exact_fbank (`bool`, *optional*, defaults to `True`):
            `True`: features bit-identical to the official preprocessing. `False`: about 1.3x faster filter banks
            within ~3e-7 of them (see [`compute_kaldi_fbank`]), e.g. for CPU data loading in training.
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 128,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        fbank_mean: float = _FBANK_MEAN,
        fbank_std: float = _FBANK_STD,
        return_attention_mask: bool = True,
        exact_fbank: bool = True,
        **kwargs,
    ):
        unused = sorted(set(kwargs) - _FEATURE_EXTRACTOR_METADATA)
        if unused:
            # The base class would store them as attributes that nothing reads, e.g. `num_mel_bins=64` (it is
            # `feature_size` here): said, so that a setting that has no effect is not taken for one that has.
            logger.warning(
                "BeatsFeatureExtractor does not use %s; they are kept as attributes but change nothing. Its options "
                "are feature_size (mel bins), sampling_rate, padding_value, fbank_mean, fbank_std, "
                "return_attention_mask, exact_fbank and padding_side.",
                ", ".join(f"{key}={kwargs[key]!r}" for key in unused),
            )
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        if self.padding_side != "right":
            raise ValueError(
                f"BeatsFeatureExtractor only supports padding_side='right' (got {self.padding_side!r}): the model "
                "reads the attention_mask as real frames followed by padding."
            )
        self.fbank_mean = fbank_mean
        self.fbank_std = fbank_std
        self.exact_fbank = exact_fbank

    @property
    def min_num_samples(self) -> int:
        """Shortest clip accepted, in samples: enough for one 16-frame patch (2800 at 16 kHz)."""
        window, hop, _ = _frame_geometry(self.sampling_rate)
        return window + (_MIN_FRAMES - 1) * hop

    def __call__(
        self,
        raw_speech: AudioInput,
        sampling_rate: int | None = None,
        padding: bool | str | PaddingStrategy = "longest",
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """
        Compute normalised filter banks for one clip or a batch of clips and pad them to a common length.

        Args:
            raw_speech (`np.ndarray`, `torch.Tensor`, `list[float]`, `list[np.ndarray]`, `list[torch.Tensor]`, `list[list[float]]`):
                One clip (1-D) or a batch (a list of 1-D clips, or a 2-D `(batch, num_samples)` array/tensor of
                full-length clips) of mono float audio in [-1, 1]. See the class docstring for the rules.
            sampling_rate (`int`, *optional*):
                Sampling rate of `raw_speech`. It must equal `self.sampling_rate`; pass it to catch unresampled
                audio early.
            padding (`bool`, `str` or [`~utils.PaddingStrategy`], *optional*, defaults to `"longest"`):
                Padding of the frame sequences, as in [`~SequenceFeatureExtractor.pad`]: `"longest"`/`True` pads
                to the longest clip, `"max_length"` to `max_length` frames, `False`/`"do_not_pad"` returns clips
                of different lengths (then `return_tensors="pt"` is impossible).
            max_length (`int`, *optional*):
                Length in **frames** (one every 10 ms) for `padding="max_length"` and for truncation.
            truncation (`bool`, *optional*, defaults to `False`):
                Cut clips longer than `max_length` frames. Nothing is ever truncated unless this is `True`.
            pad_to_multiple_of (`int`, *optional*):
                Round the padded length up to a multiple of this many frames (e.g. 16, the patch size).
            return_attention_mask (`bool`, *optional*):
                Whether to return the frame-level `attention_mask`; defaults to `self.return_attention_mask`.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` for torch tensors, `"np"` (or `None`) for numpy arrays.
            device (`str` or `torch.device`, *optional*):
                Device on which to compute the filter banks; defaults to the device of torch input, else CPU. The
                returned features are always on CPU (move them with `.to(device)`).

        Returns:
            [`BatchFeature`] with `input_values` of shape `(batch, num_frames, feature_size)` (float32) and, if
            requested, `attention_mask` of shape `(batch, num_frames)` (int32, 1 = real frame).
        """
        if kwargs:
            logger.warning(f"{self.__class__.__name__}.__call__ ignores unexpected arguments: {sorted(kwargs)}.")
        if sampling_rate is not None:
            if sampling_rate != self.sampling_rate:
                raise ValueError(
                    f"The audio was sampled at {sampling_rate} Hz, but this feature extractor (and the BEATs model) "
                    f"expects {self.sampling_rate} Hz. Resample the audio to {self.sampling_rate} Hz before calling "
                    "it; resampling is the caller's job (the audio-classification pipeline does it for inputs given "
                    "as {'raw': array, 'sampling_rate': rate})."
                )
        else:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{self.__class__.__name__}()`. "
                "Failing to do so can result in silent errors that might be hard to debug."
            )

        # float32 from here on, like the official front end: float64 audio is rounded first (its features then
        # match a float64 computation within ~3e-5), and the finiteness check sees the values actually used.
        waveforms, lengths = self._collate(raw_speech, device)
        self._check_lengths(lengths)
        # What compute_beats_fbank does, minus the input checks done above, plus the sums for the NaN check.
        feature_sums: list[torch.Tensor] = []
        features = _beats_fbank(
            waveforms,
            torch.tensor(lengths) if len(set(lengths)) > 1 else None,
            self.feature_size,
            self.sampling_rate,
            self.fbank_mean,
            self.fbank_std,
            self.padding_value,
            self.exact_fbank,
            feature_sums,
        )
        self._check_finite(waveforms, lengths, feature_sums)
        frame_counts = [num_fbank_frames(length, self.sampling_rate) for length in lengths]
        if (
            padding in (True, "longest", PaddingStrategy.LONGEST)
            and max_length is None
            and not truncation
            and pad_to_multiple_of is None
            and return_tensors in ("pt", TensorType.PYTORCH)
        ):
            # The batched filter bank is already padded to the longest clip with `padding_value`: skip the round trip
            # through per-clip numpy arrays and `pad`, which would only copy it twice more (same result).
            data = {"input_values": features.cpu()}
            if self.return_attention_mask if return_attention_mask is None else return_attention_mask:
                # In numpy: each small torch operation costs ~10 us on CPU, several times numpy's.
                mask = np.arange(features.shape[1])[None, :] < np.asarray(frame_counts)[:, None]
                data["attention_mask"] = torch.from_numpy(mask.astype(np.int32))
            return BatchFeature(data)
        features = features.cpu().numpy()
        clips = BatchFeature({"input_values": [features[i, :count] for i, count in enumerate(frame_counts)]})
        return self.pad(
            clips,
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
        )

    def _collate(self, raw_speech: Any, device: str | torch.device | None) -> tuple[torch.Tensor, list[int]]:
        """Validate layout and dtypes; return a zero-padded float32 (batch, samples) tensor and the clip lengths."""
        if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
            if raw_speech.ndim == 1:
                clips = [_checked_clip(raw_speech, 0)]
            elif raw_speech.ndim == 2:
                batch = _checked_dtype(raw_speech, None)
                num_rows, num_samples = batch.shape
                if num_rows > 0 and 0 < num_samples <= 8 and num_rows >= 100 * num_samples:
                    raise ValueError(
                        f"Got a 2-D array of shape {tuple(batch.shape)}. A 2-D input is read as (batch, num_samples), "
                        f"so this would be {num_rows} clips of {num_samples} samples; it looks like multi-channel "
                        "audio in (num_samples, channels) layout instead. BEATs takes mono audio: downmix it first, "
                        "e.g. `wav.mean(axis=1)`."
                    )
                if num_rows == 0 or num_samples == 0:
                    raise ValueError(
                        f"Got an empty batch of shape {tuple(batch.shape)}; there is no audio to process."
                    )
                return _to_float32(batch, device), [num_samples] * num_rows
            else:
                raise ValueError(
                    f"Expected one mono clip (1-D) or a batch of mono clips (2-D, batch x samples), got an array of "
                    f"shape {tuple(raw_speech.shape)}. Downmix multi-channel audio to mono first, e.g. "
                    "`wav.mean(axis=0)` for a (channels, samples) clip."
                )
        elif isinstance(raw_speech, (list, tuple)):
            if len(raw_speech) == 0:
                raise ValueError("Got an empty list; pass at least one clip of audio.")
            if all(isinstance(x, (int, float, np.number)) for x in raw_speech):
                clips = [_checked_clip(raw_speech, 0)]
            else:
                clips = [_checked_clip(clip, index) for index, clip in enumerate(raw_speech)]
        else:
            raise TypeError(
                f"{self.__class__.__name__} takes decoded audio (numpy arrays, torch tensors or lists of floats), got "
                f"{type(raw_speech).__name__}. Load audio files first, e.g. with soundfile.read, or use a pipeline."
            )

        if device is None:
            device = next((clip.device for clip in clips if isinstance(clip, torch.Tensor)), torch.device("cpu"))
        lengths = [int(clip.shape[0]) for clip in clips]
        if len(set(lengths)) == 1:
            return torch.stack([_to_float32(clip, device) for clip in clips]), lengths
        waveforms = torch.zeros(len(clips), max(lengths), device=device, dtype=torch.float32)
        for row, clip in zip(waveforms, clips):
            row[: clip.shape[0]] = _to_float32(clip, device)
        return waveforms, lengths

    def _check_lengths(self, lengths: list[int]) -> None:
        minimum = self.min_num_samples
        for index, length in enumerate(lengths):
            if length == 0:
                raise ValueError(f"Clip {index} is empty (0 samples); remove it from the batch.")
            if length < minimum:
                raise ValueError(
                    f"Clip {index} has {length} samples ({length / self.sampling_rate:.4f} s), shorter than the "
                    f"{minimum} samples ({minimum / self.sampling_rate:.3f} s, {_MIN_FRAMES} frames = one patch) "
                    "BEATs needs. Pad it with zeros to that length or drop it."
                )

    def _check_finite(self, waveforms: torch.Tensor, lengths: list[int], feature_sums: list[torch.Tensor]) -> None:
        """Reject NaN or infinite samples, looking at the samples themselves only when a fast check fails."""
        # A NaN or infinite sample makes every feature of its frames NaN (through the frame mean), so the sums of
        # every 16th feature, taken block by block in the kernel while in cache, find it; the samples after a clip's
        # last frame are in no frame and are summed directly. A NaN/Inf sum can also come from finite audio loud
        # enough to overflow: only then are the samples checked one by one, which tells the two apart.
        window, hop, _ = _frame_geometry(self.sampling_rate)
        framed = min((num_fbank_frames(length, self.sampling_rate) - 1) * hop + window for length in lengths)
        sums = [*feature_sums, waveforms[:, framed:].sum()]
        if waveforms.device.type == "cpu":
            # Reading the few sums one by one is cheaper than three more operations on them.
            if all(math.isfinite(float(total)) for total in sums):
                return
        elif bool(torch.isfinite(torch.stack(sums)).all()):
            return
        finite = torch.isfinite(waveforms).all(dim=1)
        if not bool(finite.all()):
            index = int((~finite).nonzero()[0, 0])
            raise ValueError(
                f"Clip {index} contains NaN or infinite samples; clean or drop it (e.g. np.nan_to_num) before "
                "feature extraction."
            )


_PCM_HINT = (
    "BEATs expects float audio in [-1, 1]; convert integer PCM first, e.g. `x.astype(np.float32) / 32768` for "
    "int16 (`/ 2**31` for int32, `(x - 128) / 128` for uint8)."
)


def _checked_dtype(clip: np.ndarray | torch.Tensor, index: int | None) -> np.ndarray | torch.Tensor:
    """Reject sample types that are not real floats, with the fix in the message."""
    where = "The audio" if index is None else f"Clip {index}"
    if isinstance(clip, torch.Tensor):
        if clip.is_complex():
            raise ValueError(f"{where} is complex ({clip.dtype}); BEATs takes real-valued audio samples.")
        if not clip.is_floating_point():
            raise ValueError(f"{where} has dtype {clip.dtype}. {_PCM_HINT}")
        return clip
    kind = clip.dtype.kind
    if kind in "iu":
        raise ValueError(f"{where} has integer dtype {clip.dtype}. {_PCM_HINT}")
    if kind == "c":
        raise ValueError(f"{where} is complex ({clip.dtype}); BEATs takes real-valued audio samples.")
    if kind != "f":
        raise ValueError(
            f"{where} has dtype {clip.dtype} ({'ragged nested lists or ' if kind == 'O' else ''}not an array of float "
            "samples). Pass 1-D float arrays of audio samples in [-1, 1]."
        )
    return clip


def _checked_clip(clip: Any, index: int) -> np.ndarray | torch.Tensor:
    """One clip of a batch, as a 1-D float array or tensor."""
    if not isinstance(clip, (np.ndarray, torch.Tensor)):
        if not isinstance(clip, (list, tuple)):
            raise TypeError(
                f"Clip {index} is a {type(clip).__name__}; each clip must be a 1-D numpy array, torch tensor or list "
                "of float samples (load audio files first, e.g. with soundfile.read)."
            )
        try:
            clip = np.asarray(clip)
        except ValueError:
            clip = np.asarray(clip, dtype=object)
    clip = _checked_dtype(clip, index)
    if clip.ndim == 0:
        # What `list(tensor)` gives: the elements of a list of clips must be clips, and only Python or numpy
        # numbers make the list itself one clip.
        raise ValueError(
            f"Clip {index} is a single number (a 0-d {type(clip).__name__}), not a clip. Pass one clip as a 1-D "
            "array or tensor (not a list of 0-d tensors, e.g. from `list(tensor)`), or a batch as a list of 1-D "
            "clips."
        )
    if clip.ndim != 1:
        raise ValueError(
            f"Clip {index} has shape {tuple(clip.shape)}, but each clip must be 1-D mono audio. Multi-channel audio "
            "must be downmixed first, e.g. `wav.mean(axis=0)` for (channels, samples); for a single channel use "
            "`wav.squeeze()`."
        )
    return clip


def _to_float32(audio: np.ndarray | torch.Tensor, device: str | torch.device | None) -> torch.Tensor:
    """float32 tensor on `device`; the official front end runs in float32, so float64 audio is rounded to it."""
    if isinstance(audio, torch.Tensor):
        # The features are data, not part of a graph (the kernel writes into buffers, which autograd refuses, and
        # they are returned as numpy or fresh tensors): audio that requires grad is read like any other tensor.
        return audio.detach().to(device=device, dtype=torch.float32)
    # Also converts non-native byte order, and copies read-only or negatively strided arrays torch cannot wrap.
    array = np.ascontiguousarray(audio, dtype=np.float32)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).to(device)


__all__ = ["BeatsFeatureExtractor", "compute_beats_fbank", "compute_kaldi_fbank", "num_fbank_frames"]
