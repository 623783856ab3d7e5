# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Reading user audio for the training and inference scripts.

- `load_audio` decodes a file to float32 mono at a target sampling rate. Decoders are tried in order:
  `soundfile` (WAV, FLAC, OGG/Vorbis/Opus, and MP3 where the installed libsndfile supports it), then `torchcodec`
  (only if it is importable), then the standard library `wave` module (8/16/24/32-bit integer PCM WAV), so plain
  WAV files are readable with no audio library at all.
- `resample` is a band-limited windowed-sinc polyphase resampler written with torch alone (no torchaudio / scipy).
- `random_crop` and `windows` cut waveforms for training (random excerpts) and long-file inference (overlapping
  windows covering the whole file).
- `write_wav` writes 16-bit PCM WAV files with the standard library.

torch is imported lazily (only `resample` needs it), so decoding in data-loader workers stays light.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import threading
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "AudioDecodeError",
    "load_audio",
    "random_crop",
    "read_audio",
    "resample",
    "window_starts",
    "windows",
    "write_wav",
]

logger = logging.getLogger(__name__)


class AudioDecodeError(ValueError):
    """An audio file could not be read. The message names the file and the reason; `path` and `reason` hold them."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, reason: str | None = None) -> None:
        # A single positional argument keeps the exception picklable and re-raisable by torch DataLoader workers.
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)
        self.reason = reason


def _decode_error(path: str | os.PathLike, reason: str) -> AudioDecodeError:
    return AudioDecodeError(f"Cannot read audio file '{os.fspath(path)}': {reason}", path=path, reason=reason)


# ----------------------------------------------------------------------------------------------------------------------
# Decoders: each returns (float32 array of shape (channels, frames), sampling_rate) or raises
# ----------------------------------------------------------------------------------------------------------------------


def _load_soundfile() -> Any:
    """The `soundfile` module, or None when it (or its libsndfile) is not importable."""
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    return soundfile


def _load_torchcodec_decoder() -> Any:
    """`torchcodec.decoders.AudioDecoder`, or None when torchcodec is not importable."""
    try:
        from torchcodec.decoders import AudioDecoder
    except Exception:  # ImportError, or a RuntimeError when its FFmpeg libraries are missing
        return None
    return AudioDecoder


def _decode_soundfile(soundfile: Any, path: Path) -> tuple[np.ndarray, int]:
    data, sampling_rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(sampling_rate)


def _decode_torchcodec(decoder_cls: Any, path: Path) -> tuple[np.ndarray, int]:
    samples = decoder_cls(os.fspath(path)).get_all_samples()
    data = samples.data.detach().to("cpu").float().numpy()
    if data.ndim == 1:
        data = data[None]
    return np.ascontiguousarray(data, dtype=np.float32), int(samples.sample_rate)


def _decode_wave(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(os.fspath(path), "rb") as reader:
        channels = reader.getnchannels()
        width = reader.getsampwidth()
        sampling_rate = reader.getframerate()
        raw = reader.readframes(reader.getnframes())
    frame_bytes = channels * width
    raw = raw[: len(raw) - len(raw) % frame_bytes]  # a truncated file may end mid-frame
    if width == 1:  # unsigned 8-bit
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
        data = values.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    else:
        raise ValueError(f"unsupported sample width of {width} bytes")
    return np.ascontiguousarray(data.reshape(-1, channels).T), int(sampling_rate)


_UNKNOWN_DATA_SIZES = (0, 0xFFFFFFFF)  # what writers that stream (and cannot seek back) leave in the header


def _declared_wav_frames(path: Path) -> int | None:
    """Frames per channel that a RIFF/WAVE file's header declares, or None when it is no WAV file or does not say.

    Decoders read a WAV file whose end is missing (an interrupted download or copy) without an error: libsndfile
    and the `wave` module both return the frames that are there. Comparing with the header tells the two apart.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            for _ in range(64):  # chunks before `data`: fmt, fact, LIST, bext, ...; a real file has a few
                chunk = file.read(8)
                if len(chunk) < 8:
                    return None
                size = int.from_bytes(chunk[4:8], "little")
                skip = size + (size & 1)  # chunks are padded to an even size
                if chunk[:4] == b"fmt ":
                    fmt = file.read(min(skip, 16))  # a corrupt size must not make this read the whole file
                    if len(fmt) < 14:
                        return None
                    block_align = int.from_bytes(fmt[12:14], "little")
                    skip -= len(fmt)
                elif chunk[:4] == b"data":
                    if not block_align or size in _UNKNOWN_DATA_SIZES:
                        return None
                    return size // block_align
                file.seek(skip, os.SEEK_CUR)
    except OSError:
        return None
    return None


_truncated_lock = threading.Lock()
_truncated_logged: set[str] = set()
_TRUNCATED_LOG_LIMIT = 100_000  # distinct paths remembered; beyond this, cut-short files are no longer logged


def _warn_truncated_once(path: Path, declared: int, frames: int, sampling_rate: int) -> None:
    key = os.path.abspath(os.fspath(path))
    with _truncated_lock:
        if key in _truncated_logged or len(_truncated_logged) >= _TRUNCATED_LOG_LIMIT:
            return
        _truncated_logged.add(key)
    logger.warning(
        "%s is cut short: its header declares %d frames (%.3f s) but the file holds %d (%.3f s); only those are used.",
        os.fspath(path),
        declared,
        declared / sampling_rate,
        frames,
        frames / sampling_rate,
    )


# Containers and codecs libsndfile does not read (AAC/ALAC in MP4, WMA, video files' audio): FFmpeg's job.
_FFMPEG_ONLY_SUFFIXES = frozenset({".m4a", ".mp4", ".aac", ".alac", ".wma", ".webm", ".mkv", ".mov", ".3gp", ".amr"})


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file as it is stored: no downmix, no resampling.

    A WAV file that holds fewer frames than its header declares (its end is missing) is read as far as it goes,
    with a warning naming it (once per path).

    Returns:
        ``(waveform, sampling_rate)`` with `waveform` a float32 array of shape ``(channels, frames)``; integer PCM
        is scaled to [-1, 1) (divided by 2**(bits - 1)).

    Raises:
        AudioDecodeError: The file does not exist, is empty, no decoder can read it, or it holds zero samples or
            non-finite values.
    """
    path = Path(path)
    if not path.exists():
        raise _decode_error(path, "file does not exist")
    if not path.is_file():
        raise _decode_error(path, "not a regular file")
    if path.stat().st_size == 0:
        raise _decode_error(path, "file is empty (0 bytes)")

    attempts: list[tuple[str, Any]] = []
    soundfile = _load_soundfile()
    if soundfile is not None:
        attempts.append(("soundfile", functools.partial(_decode_soundfile, soundfile)))
    decoder_cls = _load_torchcodec_decoder()
    if decoder_cls is not None:
        attempts.append(("torchcodec", functools.partial(_decode_torchcodec, decoder_cls)))
    attempts.append(("wave", _decode_wave))

    failures = []
    for name, decode in attempts:
        try:
            data, sampling_rate = decode(path)
        except Exception as error:  # every decoder has its own exception types
            failures.append(f"{name}: {type(error).__name__}: {error}".strip())
            continue
        break
    else:
        reason = "unsupported or corrupt audio (" + "; ".join(failures) + ")"
        if soundfile is None and decoder_cls is None:
            # Only the standard library's reader was tried: it takes integer PCM WAV and nothing else.
            reason += (
                "; without soundfile only integer PCM WAV files can be read: for FLAC, OGG, float or 24-bit "
                "extensible WAV and MP3, install it with `pip install 'beats_hf[audio]'` (or `pip install soundfile`)"
            )
        if decoder_cls is None and path.suffix.lower() in _FFMPEG_ONLY_SUFFIXES:
            # libsndfile reads none of these containers; torchcodec decodes them through FFmpeg.
            reason += (
                f"; {path.suffix} files need torchcodec, which was not found: `pip install torchcodec` (it needs "
                "FFmpeg on the machine), or convert the file to WAV or FLAC first, e.g. `ffmpeg -i in.m4a out.flac`"
            )
        raise _decode_error(path, reason)

    if sampling_rate <= 0:
        raise _decode_error(path, f"invalid sampling rate {sampling_rate}")
    if data.size == 0:
        raise _decode_error(path, "it contains zero samples")
    if not np.isfinite(data).all():
        raise _decode_error(path, "it contains NaN or infinite samples")
    declared = _declared_wav_frames(path)
    if declared is not None and data.shape[1] < declared:
        _warn_truncated_once(path, declared, data.shape[1], sampling_rate)
    return data, sampling_rate


_downmix_lock = threading.Lock()
_downmix_logged: set[str] = set()
_DOWNMIX_LOG_LIMIT = 100_000  # distinct paths remembered; beyond this, downmixing is no longer logged


def _log_downmix_once(path: str | os.PathLike, channels: int) -> None:
    key = os.path.abspath(os.fspath(path))
    with _downmix_lock:
        if key in _downmix_logged:
            return
        if len(_downmix_logged) >= _DOWNMIX_LOG_LIMIT:
            return
        _downmix_logged.add(key)
        full = len(_downmix_logged) == _DOWNMIX_LOG_LIMIT
    logger.info("Downmixed %d-channel audio to mono (mean over channels): %s", channels, os.fspath(path))
    if full:
        logger.info("Downmix messages for further files are suppressed (%d files logged).", _DOWNMIX_LOG_LIMIT)


def load_audio(path: str | os.PathLike, target_sampling_rate: int | None = 16000) -> np.ndarray:
    """Decode an audio file to a float32 mono waveform at `target_sampling_rate`.

    Multi-channel audio is averaged over channels; this is logged once (at INFO level) per file path. Audio at
    another rate is resampled with `resample`.

    Args:
        path: The file (WAV, FLAC, OGG, and whatever else the installed decoders read).
        target_sampling_rate: The rate to return; None keeps the file's rate.

    Returns:
        A 1-D float32 array.

    Raises:
        AudioDecodeError: The file cannot be read (see `read_audio`).
    """
    data, sampling_rate = read_audio(path)
    if data.shape[0] > 1:
        mono = data.mean(axis=0, dtype=np.float32)
        _log_downmix_once(path, data.shape[0])
    else:
        mono = data[0]
    if target_sampling_rate is not None and sampling_rate != target_sampling_rate:
        mono = resample(mono, sampling_rate, target_sampling_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def write_wav(path: str | os.PathLike, waveform: np.ndarray, sampling_rate: int) -> None:
    """Write a 16-bit PCM WAV file with the standard library `wave` module.

    Args:
        path: Output file.
        waveform: Float samples in [-1, 1] (clipped beyond), shape ``(frames,)`` or ``(channels, frames)``.
        sampling_rate: Samples per second.
    """
    data = np.asarray(waveform, dtype=np.float64)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2:
        raise ValueError(f"waveform must have shape (frames,) or (channels, frames), got {data.shape}")
    pcm = np.round(np.clip(data, -1.0, 1.0) * 32767.0).astype("<i2").T  # interleave channels
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(data.shape[0])
        writer.setsampwidth(2)
        writer.setframerate(int(sampling_rate))
        writer.writeframes(np.ascontiguousarray(pcm).tobytes())
    Path(path).write_bytes(buffer.getvalue())


# ----------------------------------------------------------------------------------------------------------------------
# Resampling
# ----------------------------------------------------------------------------------------------------------------------


def _sinc_filter(distance: np.ndarray, cutoff: float, zero_crossings: int, window: str, beta: float) -> np.ndarray:
    """Windowed-sinc low-pass taps at `distance` (in input samples); `cutoff` in cycles per input sample."""
    x = 2.0 * cutoff * distance  # in units of the sinc's zero crossings
    inside = np.abs(x) < zero_crossings
    ratio = np.clip(x / zero_crossings, -1.0, 1.0)
    if window == "hann":
        taper = np.cos(0.5 * np.pi * ratio) ** 2
    elif window == "kaiser":
        taper = np.i0(beta * np.sqrt(1.0 - ratio**2)) / np.i0(beta)
    else:
        raise ValueError(f"window must be 'hann' or 'kaiser', got {window!r}")
    return np.where(inside, 2.0 * cutoff * np.sinc(x) * taper, 0.0)


@functools.lru_cache(maxsize=32)
def _polyphase_kernel(
    orig: int, new: int, zero_crossings: int, rolloff: float, window: str, beta: float
) -> tuple[np.ndarray, int]:
    """(new, 1, taps) float64 kernel for conv1d with stride `orig`, and the left padding `width`.

    Output sample ``f * new + j`` sits at input position ``f * orig + j * orig / new``; tap ``idx`` of phase ``j``
    multiplies input sample ``f * orig + idx - width``.
    """
    cutoff = rolloff * min(orig, new) / (2.0 * orig)
    width = math.ceil(zero_crossings / (2.0 * cutoff))
    idx = np.arange(2 * width + orig + 1, dtype=np.float64)
    distance = idx[None, :] - width - np.arange(new, dtype=np.float64)[:, None] * orig / new
    return _sinc_filter(distance, cutoff, zero_crossings, window, beta)[:, None, :], width


_POLYPHASE_MAX_KERNEL = 1 << 22  # kernel entries above which the direct (gather) path is used


def _resample_torch(
    x: torch.Tensor,
    orig: int,
    new: int,
    zero_crossings: int,
    rolloff: float,
    window: str,
    beta: float,
    method: str | None = None,
) -> torch.Tensor:
    """Resample (batch, time) by the reduced ratio new / orig."""
    import torch
    import torch.nn.functional as F

    batch, length = x.shape
    out_length = -(-new * length // orig)  # ceil
    if length == 0:
        return x.new_zeros(batch, 0)
    cutoff = rolloff * min(orig, new) / (2.0 * orig)
    width = math.ceil(zero_crossings / (2.0 * cutoff))
    if method is None:
        method = "polyphase" if new * (2 * width + orig + 1) <= _POLYPHASE_MAX_KERNEL else "direct"
    if method == "polyphase":
        kernel, width = _polyphase_kernel(orig, new, zero_crossings, rolloff, window, beta)
        weight = torch.from_numpy(kernel).to(device=x.device, dtype=x.dtype)
        padded = F.pad(x[:, None, :], (width, width + orig))
        y = F.conv1d(padded, weight, stride=orig)  # (batch, new, frames)
        return y.transpose(1, 2).reshape(batch, -1)[:, :out_length]
    if method != "direct":
        raise ValueError(f"unknown method {method!r}")
    # Direct path for ratios whose polyphase kernel would be huge (e.g. 44100 -> 16001): each output sample gathers
    # its own 2 * width + 2 input samples. Chunked over output samples to bound memory.
    taps = np.arange(-width, width + 2)
    padded = F.pad(x, (width + 1, width + 2))
    out = torch.empty(batch, out_length, dtype=x.dtype, device=x.device)
    chunk = max(1, (1 << 22) // (taps.size * max(batch, 1)))
    for start in range(0, out_length, chunk):
        m = np.arange(start, min(out_length, start + chunk), dtype=np.int64)
        base = (m * orig) // new
        frac = ((m * orig) % new) / new
        index = base[:, None] + taps[None, :]  # input samples
        weights = _sinc_filter(taps[None, :] - frac[:, None], cutoff, zero_crossings, window, beta)
        gathered = padded[:, torch.from_numpy(index + width + 1).to(x.device)]  # (batch, chunk, taps)
        w = torch.from_numpy(weights).to(device=x.device, dtype=x.dtype)
        out[:, m[0] : m[-1] + 1] = (gathered * w).sum(-1)
    return out


def resample(
    waveform: np.ndarray | torch.Tensor,
    orig_sr: int,
    target_sr: int,
    *,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    window: str = "hann",
    beta: float = 8.6,
) -> np.ndarray | torch.Tensor:
    """Band-limited resampling of the last dimension with a windowed-sinc polyphase filter (torch only).

    The ratio is reduced by the gcd of the rates; the anti-aliasing low-pass sits at ``rolloff * min(orig_sr,
    target_sr) / 2`` with ``lowpass_filter_width`` zero crossings on each side, tapered by a Hann (default) or
    Kaiser window. Output length is ``ceil(n * target_sr / orig_sr)``; output sample ``m`` is at time
    ``m / target_sr`` (the first samples are aligned). Leading dimensions are batched.

    Args:
        waveform: Samples along the last dimension: a numpy array or a torch tensor (any device).
        orig_sr: Its sampling rate.
        target_sr: The wanted rate.
        lowpass_filter_width: Zero crossings of the sinc on each side (sharper transition with more).
        rolloff: Cutoff as a fraction of the lower Nyquist frequency.
        window: ``"hann"`` or ``"kaiser"``.
        beta: Kaiser window shape (ignored for Hann).

    Returns:
        The resampled waveform, of the input's type; float32 / float64 (and float16 / bfloat16 tensors, computed in
        float32) keep their dtype, other dtypes give float32. When the rates are equal the input itself is returned.
    """
    for name, rate in (("orig_sr", orig_sr), ("target_sr", target_sr)):
        if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
            raise ValueError(f"{name} must be a positive integer, got {rate!r}")
    if lowpass_filter_width < 1:
        raise ValueError(f"lowpass_filter_width must be >= 1, got {lowpass_filter_width}")
    if not 0.0 < rolloff <= 1.0:
        raise ValueError(f"rolloff must be in (0, 1], got {rolloff}")
    if orig_sr == target_sr:
        return waveform

    import torch

    is_numpy = isinstance(waveform, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(waveform)) if is_numpy else waveform
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"waveform must be a numpy array or a torch tensor, got {type(waveform).__name__}")
    if x.ndim == 0:
        raise ValueError("waveform must have at least one dimension")
    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    compute_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32

    gcd = math.gcd(int(orig_sr), int(target_sr))
    orig, new = int(orig_sr) // gcd, int(target_sr) // gcd
    shape = x.shape
    flat = x.reshape(math.prod(shape[:-1]), shape[-1]).to(compute_dtype)
    y = _resample_torch(flat, orig, new, int(lowpass_filter_width), float(rolloff), window, float(beta))
    y = y.reshape(*shape[:-1], y.shape[-1]).to(out_dtype)
    return y.numpy() if is_numpy else y


# ----------------------------------------------------------------------------------------------------------------------
# Cropping and windowing
# ----------------------------------------------------------------------------------------------------------------------


def random_crop(waveform: np.ndarray, max_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A random excerpt of at most `max_samples` along the last axis.

    Waveforms no longer than `max_samples` are returned unchanged (no padding); otherwise the start is drawn
    uniformly from every possible position with `rng` (a fresh unseeded generator when None). Returns a view.
    """
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1, got {max_samples}")
    waveform = np.asarray(waveform)
    length = waveform.shape[-1]
    if length <= max_samples:
        return waveform
    rng = np.random.default_rng() if rng is None else rng
    start = int(rng.integers(0, length - max_samples + 1))
    return waveform[..., start : start + max_samples]


def window_starts(num_samples: int, window_samples: int, hop_samples: int) -> list[int]:
    """Start offsets of the windows `windows` cuts: every `hop_samples`, plus a last one aligned to the end."""
    if window_samples < 1 or hop_samples < 1:
        raise ValueError(f"window_samples and hop_samples must be >= 1, got {window_samples} and {hop_samples}")
    if hop_samples > window_samples:
        raise ValueError(f"hop_samples ({hop_samples}) must not exceed window_samples ({window_samples})")
    if num_samples <= window_samples:
        return [0]
    starts = list(range(0, num_samples - window_samples + 1, hop_samples))
    if starts[-1] + window_samples < num_samples:
        starts.append(num_samples - window_samples)
    return starts


def windows(waveform: np.ndarray, window_samples: int, hop_samples: int) -> list[np.ndarray]:
    """Cut a long waveform into windows that together cover all of it (for long-file inference).

    Windows of `window_samples` start every `hop_samples`; if the last of them does not reach the end, one more
    window is added that ends exactly at the last sample (it overlaps its predecessor more than the others do).
    A waveform no longer than `window_samples` gives a single window, the waveform itself (shorter than
    `window_samples`: pad it if the model needs a fixed length). A hop larger than the window would leave gaps,
    so it is rejected. Windows are views along the last axis; `window_starts` gives their offsets (for
    timestamps: ``start / sampling_rate``).
    """
    waveform = np.asarray(waveform)
    return [
        waveform[..., start : start + window_samples]
        for start in window_starts(waveform.shape[-1], window_samples, hop_samples)
    ]
