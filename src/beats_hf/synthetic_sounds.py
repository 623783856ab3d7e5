# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""A procedurally generated, labelled sound-event dataset: the project's built-in default data.

Every clip is synthesised with numpy alone (no downloads, no audio library), deterministically from a seed, so the
demo (pre-train -> fine-tune -> evaluate) and the tests have real, varied audio to learn from on any machine.

Classes (`SYNTHETIC_CLASSES`), one label per clip:

- ``tone``: a steady harmonic tone (fundamental 150-1000 Hz, 1-6 harmonics with random spectral roll-off, sometimes
  odd-harmonic "hollow" timbres), 0.4-1.6 s with smooth attack / release; sometimes a second tone at another pitch.
- ``chirp``: a rising or falling frequency sweep (2x-6x range, linear or exponential, 0.15-0.8 s, 1-3 harmonics);
  sometimes two sweeps.
- ``click_train``: periodic clicks (5-40 clicks per second with timing jitter), each a short damped resonance
  (0.8-5 kHz, 0.4-3 ms decay), for 0.3-1.6 s.
- ``noise_burst``: 1-4 bursts (50-400 ms) of band-passed noise (centre 0.3-5 kHz, 0.25-1 octave wide).
- ``siren``: a frequency-modulated harmonic tone (carrier 0.5-1.5 kHz, +-15-45 % deviation, 0.5-6 Hz modulation
  that is sinusoidal "wail", triangular, or a smoothed two-tone "hi-lo"), 0.8-1.9 s.
- ``drum``: 1-6 decaying low-frequency hits (45-180 Hz with a downward pitch glide, 50-250 ms decay, a short noise
  transient at the attack), in a loose rhythm.
- ``bird``: 2-10 short fast chirps (20-120 ms syllables, 1.8-5.5 kHz, up / down / arched sweeps) with weak harmonics.
- ``engine``: a long low harmonic hum (fundamental 25-110 Hz, 8-30 harmonics, slow rev drift) with amplitude
  modulation at 3-25 Hz and rumble noise.
- ``dripping``: 2-8 sparse resonant "plinks" (0.5-2.5 kHz damped sinusoids with the upward pitch glide of a drop).
- ``speech_like``: a glottal pulse train (90-250 Hz with intonation) shaped by three vowel formants that change
  from syllable to syllable, 2-7 syllables with a syllabic envelope and occasional fricative noise.

Every clip also varies in onset time, event durations and timbre; gets coloured background noise (white to brown)
at 10-30 dB SNR; with probability `DISTRACTOR_PROBABILITY` gets a distractor event of another class mixed in 10-20
dB below the main event (recorded in the manifests' ``distractor`` column, so a multi-label variant is possible);
and is normalised to a random RMS level between -34 and -18 dBFS (scaled down further only when its peak would
exceed 0.98), so the level carries no information about the class.

`generate_synthetic_dataset` writes the train / validation / test splits as 16-bit PCM WAV files (with the standard
library `wave` module) plus CSV and JSON-lines manifests and a ``dataset_info.json``. Each clip's random stream is
derived from ``(seed, split, class, index)`` only, so changing the size of one split never changes another split.

It is also runnable: ``python -m beats_hf.synthetic_sounds OUTPUT_DIR [--seed 0] [--train 40] ...``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import wave
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_CLIPS_PER_CLASS",
    "DISTRACTOR_PROBABILITY",
    "GENERATOR_VERSION",
    "SPLITS",
    "SYNTHETIC_CLASSES",
    "generate_synthetic_dataset",
    "synthesize_clip",
]

#: Bumped whenever the synthesis changes the audio produced for a given seed (it is stored in dataset_info.json, so a
#: dataset written by another version is detected and not silently reused).
GENERATOR_VERSION = "1"

SYNTHETIC_CLASSES: tuple[str, ...] = (
    "tone",
    "chirp",
    "click_train",
    "noise_burst",
    "siren",
    "drum",
    "bird",
    "engine",
    "dripping",
    "speech_like",
)

#: Split names, in the order that gives each its index in the random-stream key.
SPLITS: tuple[str, ...] = ("train", "validation", "test")

#: Clips per class in each split of the default dataset (10 classes x 60 clips x 2 s).
DEFAULT_CLIPS_PER_CLASS: dict[str, int] = {"train": 40, "validation": 10, "test": 10}

#: Probability that a clip gets a quieter event of another class mixed in.
DISTRACTOR_PROBABILITY = 0.3

_DISTRACTOR_LEVEL_DB = (-20.0, -10.0)  # relative to the main event's RMS
_SNR_DB = (10.0, 30.0)  # background noise, relative to the events' RMS
_RMS_DBFS = (-34.0, -18.0)  # final clip level
_PEAK_LIMIT = 0.98
_INFO_FILE = "dataset_info.json"
_MANIFEST_COLUMNS = ("path", "label", "split", "duration", "distractor")


# ----------------------------------------------------------------------------------------------------------------------
# Small signal helpers
# ----------------------------------------------------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _unit_rms(x: np.ndarray) -> np.ndarray:
    level = _rms(x)
    return x / level if level > 0 else x


def _fmax(sampling_rate: int) -> float:
    """Highest frequency a generator may put a component at (a margin below Nyquist)."""
    return 0.42 * sampling_rate


def _span(rng: np.random.Generator, n: int, sampling_rate: int, min_dur: float, max_dur: float) -> tuple[int, int]:
    """A random event (start, length) in samples lying inside a clip of `n` samples."""
    clip_dur = n / sampling_rate
    max_dur = min(max_dur, 0.95 * clip_dur)
    min_dur = min(min_dur, max_dur)
    length = max(1, min(n, int(rng.uniform(min_dur, max_dur) * sampling_rate)))
    start = int(rng.integers(0, n - length + 1))
    return start, length


def _add(out: np.ndarray, start: int, segment: np.ndarray) -> None:
    """Add `segment` into `out` at `start`, dropping whatever falls past the end."""
    if start >= out.size:
        return
    stop = min(out.size, start + segment.size)
    out[start:stop] += segment[: stop - start]


def _ramp(x: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp: 0 for x <= 0, 1 for x >= 1."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _ar_envelope(length: int, sampling_rate: int, attack: float, release: float) -> np.ndarray:
    """Attack / sustain / release envelope with raised-cosine ramps (times in seconds)."""
    total = length / sampling_rate
    attack, release = max(attack, 1.0 / sampling_rate), max(release, 1.0 / sampling_rate)
    if attack + release > total:
        scale = total / (attack + release)
        attack, release = attack * scale, release * scale
    t = np.arange(length) / sampling_rate
    return _ramp(t / attack) * _ramp((total - t) / release)


def _timbre(rng: np.random.Generator, max_harmonics: int, rolloff: tuple[float, float] = (0.7, 2.5)) -> np.ndarray:
    """Random harmonic amplitudes: 1..max_harmonics partials, power-law roll-off, optionally odd-dominant."""
    count = int(rng.integers(1, max_harmonics + 1))
    k = np.arange(1, count + 1, dtype=np.float64)
    amps = k ** -rng.uniform(*rolloff) * rng.uniform(0.5, 1.0, count)
    if count > 2 and rng.random() < 0.3:
        amps[1::2] *= 0.1  # hollow, clarinet-like
    amps[0] = 1.0
    return amps


def _harmonic_stack(freq: np.ndarray, sampling_rate: int, amps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics k * freq(t) with amplitudes `amps`, fading out partials that approach Nyquist."""
    phase = 2.0 * np.pi * np.cumsum(freq) / sampling_rate
    limit = 0.45 * sampling_rate
    out = np.zeros_like(phase)
    offsets = rng.uniform(0.0, 2.0 * np.pi, amps.size)
    for k, (amp, offset) in enumerate(zip(amps, offsets), start=1):
        fade = np.clip((limit - k * freq) / (0.05 * sampling_rate), 0.0, 1.0)
        if not fade.any():
            break
        out += amp * fade * np.sin(k * phase + offset)
    return out


def _shaped_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise with a 1/f**exponent power spectrum (0 = white, 1 = pink, 2 = brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    spectrum *= freqs ** (-exponent / 2.0)
    spectrum[0] = 0.0
    return _unit_rms(np.fft.irfft(spectrum, n))


def _bandpass_noise(rng: np.random.Generator, n: int, sampling_rate: int, centre: float, octaves: float) -> np.ndarray:
    """Unit-RMS noise with a Gaussian band (in log frequency) around `centre`, `octaves` standard deviation."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sampling_rate)
    freqs[0] = freqs[1] if freqs.size > 1 else 1.0
    spectrum *= np.exp(-0.5 * (np.log2(freqs / centre) / octaves) ** 2)
    return _unit_rms(np.fft.irfft(spectrum, n))


# ----------------------------------------------------------------------------------------------------------------------
# Class generators: (rng, n_samples, sampling_rate) -> float64 waveform of n_samples (any level)
# ----------------------------------------------------------------------------------------------------------------------


def _gen_tone(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n)
    for event in range(1 if rng.random() < 0.75 else 2):
        start, length = _span(rng, n, sr, 0.4, 1.6)
        f0 = _log_uniform(rng, 150.0, 1000.0)
        freq = f0 * (1.0 + rng.uniform(-0.003, 0.003) * np.linspace(0.0, 1.0, length))
        x = _harmonic_stack(freq, sr, _timbre(rng, 6), rng)
        x *= _ar_envelope(length, sr, _log_uniform(rng, 0.005, 0.1), _log_uniform(rng, 0.02, 0.3))
        _add(out, start, _unit_rms(x) * (1.0 if event == 0 else rng.uniform(0.5, 1.0)))
    return out


def _gen_chirp(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n)
    for event in range(1 if rng.random() < 0.7 else 2):
        start, length = _span(rng, n, sr, 0.15, 0.8)
        f_a = _log_uniform(rng, 200.0, min(3000.0, _fmax(sr) / 2.0))
        ratio = _log_uniform(rng, 2.0, 6.0)
        f_b = float(np.clip(f_a * ratio if rng.random() < 0.5 else f_a / ratio, 80.0, _fmax(sr)))
        s = np.linspace(0.0, 1.0, length)
        freq = f_a * (f_b / f_a) ** s if rng.random() < 0.5 else f_a + (f_b - f_a) * s
        x = _harmonic_stack(freq, sr, _timbre(rng, 3, (1.5, 3.0)), rng)
        x *= _ar_envelope(length, sr, _log_uniform(rng, 0.005, 0.03), _log_uniform(rng, 0.01, 0.08))
        _add(out, start, _unit_rms(x) * (1.0 if event == 0 else rng.uniform(0.5, 1.0)))
    return out


def _gen_click_train(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    start, length = _span(rng, n, sr, 0.3, 1.6)
    period = sr / _log_uniform(rng, 5.0, 40.0)
    jitter = rng.uniform(0.0, 0.08)
    impulses = np.zeros(length)
    t = rng.uniform(0.0, 0.5 * period)
    while t < length:
        impulses[int(t)] = max(0.3, 1.0 + 0.15 * rng.standard_normal())
        t += period * max(0.5, 1.0 + jitter * rng.standard_normal())
    centre = _log_uniform(rng, 800.0, min(5000.0, _fmax(sr)))
    tau = _log_uniform(rng, 0.0004, 0.003)
    tk = np.arange(int(8 * tau * sr) + 1) / sr
    kernel = np.exp(-tk / tau) * np.sin(2.0 * np.pi * centre * tk + rng.uniform(0.0, 2.0 * np.pi))
    kernel[0] += rng.uniform(0.0, 1.0)  # some clicks have a sharper impulsive attack
    x = np.convolve(impulses, kernel)[:length] * np.linspace(1.0, rng.uniform(0.6, 1.4), length)
    out = np.zeros(n)
    _add(out, start, x)
    return out


def _gen_noise_burst(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    noise = _bandpass_noise(rng, n, sr, _log_uniform(rng, 300.0, min(5000.0, _fmax(sr))), rng.uniform(0.25, 1.0))
    envelope = np.zeros(n)
    for _ in range(int(rng.integers(1, 5))):
        start, length = _span(rng, n, sr, 0.05, 0.4)
        burst = _ar_envelope(length, sr, _log_uniform(rng, 0.002, 0.02), _log_uniform(rng, 0.01, 0.1))
        segment = envelope[start : start + length]
        np.maximum(segment, burst[: segment.size] * rng.uniform(0.5, 1.0), out=segment)
    return noise * envelope


def _gen_siren(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    start, length = _span(rng, n, sr, 0.8, 1.9)
    carrier = _log_uniform(rng, 500.0, 1500.0)
    depth = rng.uniform(0.15, 0.45)
    rate = _log_uniform(rng, 0.5, 6.0)
    phase = 2.0 * np.pi * rate * np.arange(length) / sr + rng.uniform(0.0, 2.0 * np.pi)
    kind = int(rng.integers(3))
    if kind == 0:  # wail
        modulation = np.sin(phase)
    elif kind == 1:  # triangular sweep
        modulation = 2.0 / np.pi * np.arcsin(np.sin(phase))
    else:  # hi-lo two-tone
        modulation = np.tanh(4.0 * np.sin(phase)) / np.tanh(4.0)
    freq = np.minimum(carrier * (1.0 + depth * modulation), _fmax(sr))
    x = _harmonic_stack(freq, sr, _timbre(rng, 4, (1.0, 2.5)), rng)
    x *= _ar_envelope(length, sr, _log_uniform(rng, 0.02, 0.2), _log_uniform(rng, 0.05, 0.3))
    out = np.zeros(n)
    _add(out, start, x)
    return out


def _gen_drum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    clip_dur = n / sr
    hits = int(rng.integers(1, 7))
    interval = rng.uniform(0.12, 0.45)
    f0 = _log_uniform(rng, 45.0, 180.0)
    tau = _log_uniform(rng, 0.05, 0.25)
    glide = rng.uniform(0.3, 2.0)
    transient_level = rng.uniform(0.05, 0.4)
    t_hit = rng.uniform(0.0, max(0.0, clip_dur - (hits - 1) * interval - 0.1))
    t = np.arange(int(min(6.0 * tau, clip_dur) * sr)) / sr
    out = np.zeros(n)
    for _ in range(hits):
        if t_hit >= clip_dur - 0.05:
            break
        freq = f0 * (1.0 + 0.03 * rng.standard_normal()) * (1.0 + glide * np.exp(-t / 0.03))
        body = np.sin(2.0 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / tau)
        transient = rng.standard_normal(t.size) * np.exp(-t / 0.004) * transient_level
        _add(out, int(t_hit * sr), (body + transient) * rng.uniform(0.6, 1.0))
        t_hit += interval * max(0.5, 1.0 + 0.1 * rng.standard_normal())
    return out


def _gen_bird(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    clip_dur = n / sr
    syllables = int(rng.integers(2, 11))
    upper = min(5500.0, _fmax(sr) / 1.8)
    base = _log_uniform(rng, min(1800.0, upper / 1.5), upper)
    syllable_dur = _log_uniform(rng, 0.02, 0.12)
    gap = rng.uniform(0.02, 0.15)
    preferred_shape = int(rng.integers(3))
    harmonics = np.array([1.0, rng.uniform(0.05, 0.4), rng.uniform(0.0, 0.15)])
    total = syllables * (syllable_dur + gap)
    t_syl = rng.uniform(0.0, max(0.0, clip_dur - total))
    out = np.zeros(n)
    for _ in range(syllables):
        length = max(2, int(syllable_dur * rng.uniform(0.8, 1.2) * sr))
        shape = preferred_shape if rng.random() < 0.7 else int(rng.integers(3))
        ratio = rng.uniform(1.1, 1.8)
        s = np.linspace(0.0, 1.0, length)
        exponent = s if shape == 0 else (1.0 - s if shape == 1 else np.sin(np.pi * s))
        freq = np.minimum(base * rng.uniform(0.9, 1.1) * ratio**exponent, _fmax(sr))
        x = _harmonic_stack(freq, sr, harmonics, rng) * np.hanning(length)
        _add(out, int(t_syl * sr), x * rng.uniform(0.6, 1.0))
        t_syl += length / sr + gap * rng.uniform(0.7, 1.3)
        if t_syl >= clip_dur:
            break
    return out


def _gen_engine(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    start, length = _span(rng, n, sr, 1.2, 2.0)
    t = np.arange(length) / sr
    f0 = _log_uniform(rng, 25.0, 110.0)
    freq = f0 * (
        1.0 + rng.uniform(-0.08, 0.08) * t / max(t[-1], 1e-3) + 0.01 * np.sin(2.0 * np.pi * rng.uniform(0.2, 1.0) * t)
    )
    count = int(rng.integers(8, 31))
    amps = np.arange(1, count + 1, dtype=np.float64) ** -rng.uniform(0.5, 1.2) * rng.uniform(0.3, 1.0, count)
    x = _unit_rms(_harmonic_stack(freq, sr, amps, rng))
    depth = rng.uniform(0.2, 0.7)
    x *= 1.0 + depth * np.sin(2.0 * np.pi * _log_uniform(rng, 3.0, 25.0) * t + rng.uniform(0.0, 2.0 * np.pi))
    x += _shaped_noise(rng, length, 2.0) * rng.uniform(0.05, 0.3)
    x *= _ar_envelope(length, sr, _log_uniform(rng, 0.1, 0.4), _log_uniform(rng, 0.1, 0.4))
    out = np.zeros(n)
    _add(out, start, x)
    return out


def _gen_dripping(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    clip_dur = n / sr
    drops = int(rng.integers(2, 9))
    f0 = _log_uniform(rng, 500.0, 2500.0)
    times = np.sort(rng.uniform(0.0, max(0.0, clip_dur - 0.1), drops))
    t = np.arange(int(min(0.25, clip_dur) * sr)) / sr
    out = np.zeros(n)
    for onset in times:
        glide = rng.uniform(0.2, 1.0)
        glide_tau = _log_uniform(rng, 0.01, 0.03)
        freq = f0 * rng.uniform(0.85, 1.15) * (1.0 + glide * (1.0 - np.exp(-t / glide_tau)))
        phase = 2.0 * np.pi * np.cumsum(np.minimum(freq, _fmax(sr))) / sr
        envelope = (1.0 - np.exp(-t / 0.0007)) * np.exp(-t / _log_uniform(rng, 0.01, 0.05))
        x = np.sin(phase) + rng.uniform(0.0, 0.2) * np.sin(2.7 * phase) * (2.7 * freq < _fmax(sr))
        _add(out, int(onset * sr), x * envelope * rng.uniform(0.4, 1.0))
    return out


_VOWEL_FORMANTS = np.array(
    [
        [730.0, 1090.0, 2440.0],  # a
        [530.0, 1840.0, 2480.0],  # e
        [270.0, 2290.0, 3010.0],  # i
        [570.0, 840.0, 2410.0],  # o
        [300.0, 870.0, 2240.0],  # u
    ]
)


def _gen_speech_like(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    clip_dur = n / sr
    syllables = int(rng.integers(2, 8))
    tract = rng.uniform(0.85, 1.2)  # vocal-tract length factor (formant scaling)
    f0 = _log_uniform(rng, 90.0, 250.0)
    bandwidths = np.array([80.0, 100.0, 150.0]) * rng.uniform(0.8, 1.3)
    durations = rng.uniform(0.12, 0.3, syllables)
    gaps = rng.uniform(0.03, 0.15, syllables)
    total = float(np.sum(durations + gaps))
    onset = int(rng.uniform(0.0, max(0.0, clip_dur - total)) * sr)
    length = min(n - onset, int(total * sr))
    formants = np.zeros((3, length))
    envelope = np.zeros(length)
    fricatives = np.zeros(length)
    position = 0
    for duration, gap in zip(durations, gaps):
        size = int(duration * sr)
        stop = min(length, position + size)
        if stop <= position:
            break
        vowel = _VOWEL_FORMANTS[int(rng.integers(len(_VOWEL_FORMANTS)))] * tract * rng.uniform(0.92, 1.08, 3)
        formants[:, position:stop] = vowel[:, None]
        envelope[position:stop] = np.sin(np.pi * np.linspace(0.0, 1.0, size))[: stop - position] ** 0.7
        if rng.random() < 0.35:  # a fricative consonant leading into the syllable
            size_f = int(rng.uniform(0.03, 0.08) * sr)
            start_f = max(0, position - size_f // 2)
            burst = _bandpass_noise(rng, size_f, sr, min(_log_uniform(rng, 4000.0, 6000.0), _fmax(sr)), 0.5)
            burst *= np.hanning(size_f) * rng.uniform(0.1, 0.4)
            _add(fricatives, start_f, burst)
        position = stop + int(gap * sr)
    t = np.arange(length) / sr
    contour = f0 * (
        1.0
        - rng.uniform(0.0, 0.2) * t / max(total, 1e-3)
        + 0.08 * np.sin(2.0 * np.pi * rng.uniform(1.0, 4.0) * t + rng.uniform(0.0, 2.0 * np.pi))
    )
    phase = 2.0 * np.pi * np.cumsum(contour) / sr
    voiced = np.zeros(length)
    limit = 0.45 * sr
    for k in range(1, int(limit / contour.min()) + 1):
        kf = k * contour
        gain = np.zeros(length)
        for formant, bandwidth in zip(formants, bandwidths):
            gain += 1.0 / (1.0 + ((kf - formant) / (0.5 * bandwidth)) ** 2)
        voiced += gain / k * (kf < limit) * np.sin(k * phase)
    x = _unit_rms(voiced * envelope) + fricatives
    out = np.zeros(n)
    _add(out, onset, x)
    return out


_GENERATORS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "tone": _gen_tone,
    "chirp": _gen_chirp,
    "click_train": _gen_click_train,
    "noise_burst": _gen_noise_burst,
    "siren": _gen_siren,
    "drum": _gen_drum,
    "bird": _gen_bird,
    "engine": _gen_engine,
    "dripping": _gen_dripping,
    "speech_like": _gen_speech_like,
}
assert tuple(_GENERATORS) == SYNTHETIC_CLASSES


# ----------------------------------------------------------------------------------------------------------------------
# Clips
# ----------------------------------------------------------------------------------------------------------------------


def _num_samples(duration: float, sampling_rate: int) -> int:
    if not isinstance(sampling_rate, (int, np.integer)) or isinstance(sampling_rate, bool) or sampling_rate < 4000:
        raise ValueError(f"sampling_rate must be an integer >= 4000, got {sampling_rate!r}")
    try:
        seconds = float(duration)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    n = int(round(seconds * sampling_rate))
    if n < int(0.1 * sampling_rate):
        raise ValueError(f"duration must be at least 0.1 s, got {duration!r}")
    return n


def _check_class(class_name: str) -> None:
    if class_name not in _GENERATORS:
        raise ValueError(
            f"Unknown synthetic sound class {class_name!r}; expected one of {', '.join(SYNTHETIC_CLASSES)}"
        )


def _synthesize(class_name: str, rng: np.random.Generator, n: int, sampling_rate: int) -> tuple[np.ndarray, str]:
    """One mixed, level-normalised clip and the name of its distractor class ("" when there is none)."""
    mix = _unit_rms(_GENERATORS[class_name](rng, n, sampling_rate))
    distractor = ""
    if rng.random() < DISTRACTOR_PROBABILITY:
        others = [name for name in SYNTHETIC_CLASSES if name != class_name]
        distractor = others[int(rng.integers(len(others)))]
        level = 10.0 ** (rng.uniform(*_DISTRACTOR_LEVEL_DB) / 20.0)
        mix = mix + level * _unit_rms(_GENERATORS[distractor](rng, n, sampling_rate))
    snr = rng.uniform(*_SNR_DB)
    mix = mix + _shaped_noise(rng, n, rng.uniform(0.0, 2.0)) * _rms(mix) * 10.0 ** (-snr / 20.0)
    mix *= 10.0 ** (rng.uniform(*_RMS_DBFS) / 20.0) / max(_rms(mix), 1e-12)
    peak = float(np.max(np.abs(mix)))
    if peak > _PEAK_LIMIT:
        mix *= _PEAK_LIMIT / peak
    return mix.astype(np.float32), distractor


def synthesize_clip(
    class_name: str, rng: np.random.Generator, duration: float = 2.0, sampling_rate: int = 16000
) -> np.ndarray:
    """Synthesise one clip of `class_name`.

    Args:
        class_name: One of `SYNTHETIC_CLASSES`.
        rng: The random stream; the clip is a deterministic function of its state.
        duration: Clip length in seconds (events are placed inside it; at least 0.1 s).
        sampling_rate: Samples per second (at least 4000; frequencies are kept below 0.45 x the rate).

    Returns:
        A float32 mono waveform of ``round(duration * sampling_rate)`` samples, with peak <= 0.98 and a random RMS
        level between -34 and -18 dBFS (lower only when the peak would otherwise exceed 0.98). With probability `DISTRACTOR_PROBABILITY` a quieter event of another class is mixed
        in; `generate_synthetic_dataset` records which in its manifests.
    """
    _check_class(class_name)
    return _synthesize(class_name, rng, _num_samples(duration, sampling_rate), sampling_rate)[0]


# ----------------------------------------------------------------------------------------------------------------------
# Dataset on disk
# ----------------------------------------------------------------------------------------------------------------------


def _wav_bytes(waveform: np.ndarray, sampling_rate: int) -> bytes:
    """16-bit PCM mono WAV file contents, written with the standard library."""
    pcm = np.round(np.clip(waveform, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sampling_rate)
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers (or concurrent identical writers) never see partial files."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _resolve_counts(clips_per_class: Mapping[str, int] | None) -> dict[str, int]:
    counts = dict(DEFAULT_CLIPS_PER_CLASS)
    if clips_per_class is not None:
        unknown = set(clips_per_class) - set(SPLITS)
        if unknown:
            raise ValueError(f"Unknown split(s) {sorted(unknown)} in clips_per_class; expected keys among {SPLITS}")
        counts.update(clips_per_class)
    for split, count in counts.items():
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
            raise ValueError(f"clips_per_class[{split!r}] must be a non-negative integer, got {count!r}")
        counts[split] = int(count)
    return counts


def _clip_name(split: str, class_name: str, index: int) -> str:
    return f"{split}_{class_name}_{index:04d}.wav"


def _expected_info(seed: int, counts: dict[str, int], duration: float, sampling_rate: int, n: int) -> dict:
    return {
        "name": "beats_hf synthetic sounds",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "classes": list(SYNTHETIC_CLASSES),
        "splits": list(SPLITS),
        "clips_per_class": counts,
        "num_clips": {split: counts[split] * len(SYNTHETIC_CLASSES) for split in SPLITS},
        "duration": duration,
        "num_samples": n,
        "sampling_rate": sampling_rate,
        "distractor_probability": DISTRACTOR_PROBABILITY,
        "manifest_columns": list(_MANIFEST_COLUMNS),
    }


_COMPARED_KEYS = ("generator_version", "seed", "classes", "splits", "clips_per_class", "num_samples", "sampling_rate")


def _is_complete(root: Path, info: dict, wav_size: int) -> bool:
    for split in SPLITS:
        if not (root / f"{split}.csv").is_file() or not (root / f"{split}.jsonl").is_file():
            return False
        for class_name in SYNTHETIC_CLASSES:
            for index in range(info["clips_per_class"][split]):
                path = root / split / class_name / _clip_name(split, class_name, index)
                try:
                    if path.stat().st_size != wav_size:
                        return False
                except OSError:
                    return False
    return True


_OWN_FILE = re.compile(r"^(?:train|validation|test)_[a-z_]+_\d{4,}\.wav$")


def _foreign_manifests(root: Path) -> list[str]:
    """Manifests in `root` that this generator would replace but did not write (judged by their first line)."""
    foreign = []
    for split in SPLITS:
        for path in (root / f"{split}.csv", root / f"{split}.jsonl"):
            if not path.is_file():
                continue
            with path.open(encoding="utf-8", errors="replace", newline="") as handle:
                first = handle.readline().rstrip("\r\n")
            if path.suffix == ".csv":
                ours = first == ",".join(_MANIFEST_COLUMNS)
            else:
                try:
                    ours = not first or list(json.loads(first)) == list(_MANIFEST_COLUMNS)
                except (ValueError, TypeError):
                    ours = False
            if not ours:
                foreign.append(path.name)
    return foreign


def _remove_stale(root: Path, keep: set[Path]) -> None:
    """Delete clip files of ours (by name pattern) that the dataset being written does not contain."""
    for split in SPLITS:
        for class_dir in (root / split).glob("*"):
            if not class_dir.is_dir():
                continue
            for path in class_dir.iterdir():
                if _OWN_FILE.match(path.name) and path not in keep:
                    path.unlink(missing_ok=True)


def generate_synthetic_dataset(
    output_dir: str | Path,
    seed: int = 0,
    clips_per_class: dict[str, int] | None = None,
    duration: float = 2.0,
    sampling_rate: int = 16000,
    overwrite: bool = False,
) -> Path:
    """Write the synthetic sound-event dataset to `output_dir` (idempotent).

    Layout::

        output_dir/
            dataset_info.json                     # parameters, classes, counts, generator version
            train.csv, validation.csv, test.csv    # manifests: path,label,split,duration,distractor
            train.jsonl, validation.jsonl, test.jsonl
            <split>/<class>/<split>_<class>_<i>.wav   # 16-bit PCM mono WAV, i zero-padded to 4 digits

    Manifest ``path`` values are POSIX paths relative to `output_dir`; ``distractor`` is the class of the quieter
    event mixed into the clip, or empty. Rows are ordered by class, then index.

    Clip ``i`` of class ``c`` in split ``s`` is drawn from ``np.random.default_rng([seed, SPLITS.index(s),
    SYNTHETIC_CLASSES.index(c), i])``, so the same seed gives byte-identical files and changing one split's size
    leaves every other split (and the first clips of that split) unchanged.

    Args:
        output_dir: Directory to write into (created if needed).
        seed: Non-negative integer seed.
        clips_per_class: Clips per class for some of ``"train"``, ``"validation"`` and ``"test"``; splits not given
            keep their default (`DEFAULT_CLIPS_PER_CLASS`: 40 / 10 / 10). A count of 0 writes an empty manifest.
        duration: Clip length in seconds.
        sampling_rate: Sampling rate of the files.
        overwrite: Replace a dataset written with different parameters, or manifests not written by this
            generator, instead of raising.

    Returns:
        `output_dir` as a `Path`.

    Raises:
        FileExistsError: `output_dir` holds a dataset written with different parameters, or a ``train`` /
            ``validation`` / ``test`` ``.csv`` / ``.jsonl`` file this generator did not write, and `overwrite` is
            False.
        ValueError: An argument is invalid.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    n = _num_samples(duration, sampling_rate)
    counts = _resolve_counts(clips_per_class)
    root = Path(output_dir)
    info = _expected_info(seed, counts, float(duration), int(sampling_rate), n)
    info_path = root / _INFO_FILE
    wav_size = len(_wav_bytes(np.zeros(n, dtype=np.float32), sampling_rate))

    if info_path.is_file():
        try:
            existing = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = None
        same = isinstance(existing, dict) and all(existing.get(key) == info[key] for key in _COMPARED_KEYS)
        if same and _is_complete(root, info, wav_size):
            return root
        if not same and not overwrite:
            differing = (
                [key for key in _COMPARED_KEYS if existing.get(key) != info[key]]
                if isinstance(existing, dict)
                else ["<unreadable dataset_info.json>"]
            )
            raise FileExistsError(
                f"{root} already holds a synthetic dataset generated with different parameters "
                f"(differing: {', '.join(differing)}). Pass overwrite=True to replace it, or choose another directory."
            )
        info_path.unlink(missing_ok=True)  # the dataset is incomplete until the info file is written again, last
    elif not overwrite and root.is_dir():
        # No info file: either an interrupted run of ours (manifests with our header, completed below) or someone
        # else's data, whose manifests must not be silently replaced.
        foreign = _foreign_manifests(root)
        if foreign:
            raise FileExistsError(
                f"{root} holds {', '.join(foreign)}, which this generator did not write (and no {_INFO_FILE}). "
                "Pass overwrite=True (--overwrite) to replace them, or choose another directory."
            )

    root.mkdir(parents=True, exist_ok=True)
    written: set[Path] = set()
    for split_index, split in enumerate(SPLITS):
        rows = []
        for class_index, class_name in enumerate(SYNTHETIC_CLASSES):
            class_dir = root / split / class_name
            if counts[split]:
                class_dir.mkdir(parents=True, exist_ok=True)
            for index in range(counts[split]):
                rng = np.random.default_rng([seed, split_index, class_index, index])
                waveform, distractor = _synthesize(class_name, rng, n, sampling_rate)
                path = class_dir / _clip_name(split, class_name, index)
                _write_atomic(path, _wav_bytes(waveform, sampling_rate))
                written.add(path)
                rows.append(
                    {
                        "path": path.relative_to(root).as_posix(),
                        "label": class_name,
                        "split": split,
                        "duration": n / sampling_rate,
                        "distractor": distractor,
                    }
                )
        csv_buffer = io.StringIO()
        csv_writer = csv.DictWriter(csv_buffer, fieldnames=_MANIFEST_COLUMNS, lineterminator="\n")
        csv_writer.writeheader()
        csv_writer.writerows(rows)
        _write_atomic(root / f"{split}.csv", csv_buffer.getvalue().encode("utf-8"))
        jsonl = "".join(json.dumps(row, sort_keys=False) + "\n" for row in rows)
        _write_atomic(root / f"{split}.jsonl", jsonl.encode("utf-8"))
    _remove_stale(root, written)
    _write_atomic(info_path, (json.dumps(info, indent=2) + "\n").encode("utf-8"))
    return root


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the beats_hf synthetic sound-event dataset.")
    parser.add_argument("output_dir")
    parser.add_argument("--seed", type=int, default=0)
    for split in SPLITS:
        parser.add_argument(f"--{split}", type=int, default=DEFAULT_CLIPS_PER_CLASS[split], help="clips per class")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--sampling-rate", type=int, default=16000)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    root = generate_synthetic_dataset(
        args.output_dir,
        seed=args.seed,
        clips_per_class={split: getattr(args, split) for split in SPLITS},
        duration=args.duration,
        sampling_rate=args.sampling_rate,
        overwrite=args.overwrite,
    )
    print(root)


if __name__ == "__main__":
    _main()
