# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Tests of audio decoding, resampling and windowing (beats_hf.audio_io)."""

import logging
import pickle
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from beats_hf import audio_io
from beats_hf.audio_io import (
    AudioDecodeError,
    load_audio,
    random_crop,
    read_audio,
    resample,
    window_starts,
    windows,
    write_wav,
)

soundfile = pytest.importorskip("soundfile")


def _write_pcm_wav(path: Path, samples: np.ndarray, sampling_rate: int, width: int) -> None:
    """Write integer PCM (shape (frames, channels)) with the standard library, for any sample width."""
    samples = np.asarray(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    if width == 1:
        raw = (samples.astype(np.int16) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        values = samples.astype(np.int32).reshape(-1)
        raw = np.stack([values & 0xFF, (values >> 8) & 0xFF, (values >> 16) & 0xFF], 1).astype(np.uint8).tobytes()
    else:
        raw = samples.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(samples.shape[1])
        writer.setsampwidth(width)
        writer.setframerate(sampling_rate)
        writer.writeframes(raw)


def _sine(freq: float, sampling_rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * sampling_rate)) / sampling_rate)


def _peak_and_leakage_db(y: np.ndarray, sampling_rate: int, freq: float) -> tuple[float, float]:
    """Frequency of the spectral peak, and the energy away from `freq` relative to the energy at it (dB)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / sampling_rate)
    near = np.abs(freqs - freq) < 30
    return freqs[np.argmax(spectrum)], 10 * np.log10(spectrum[~near].sum() / spectrum[near].sum())


@pytest.fixture
def no_soundfile(monkeypatch):
    """Make the decoders behave as if soundfile (and torchcodec) were not installed."""
    monkeypatch.setattr(audio_io, "_load_soundfile", lambda: None)
    monkeypatch.setattr(audio_io, "_load_torchcodec_decoder", lambda: None)


# ----------------------------------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_soundfile", [True, False])
def test_wav_round_trip_int16(tmp_path, monkeypatch, use_soundfile):
    if not use_soundfile:
        monkeypatch.setattr(audio_io, "_load_soundfile", lambda: None)
    pcm = np.random.default_rng(0).integers(-32768, 32768, 16000).astype(np.int16)
    pcm[:2] = [-32768, 32767]
    path = tmp_path / "mono.wav"
    _write_pcm_wav(path, pcm, 16000, 2)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (16000,)
    np.testing.assert_array_equal(audio, pcm.astype(np.float32) / 32768.0)
    assert -1.0 <= audio.min() and audio.max() < 1.0


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wave_fallback_sample_widths(tmp_path, no_soundfile, width):
    bits = 8 * width
    rng = np.random.default_rng(width)
    ints = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(1000, 2), dtype=np.int64)
    ints[0] = [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
    path = tmp_path / f"pcm{bits}.wav"
    _write_pcm_wav(path, ints, 8000, width)
    data, sampling_rate = read_audio(path)
    assert sampling_rate == 8000 and data.shape == (2, 1000) and data.dtype == np.float32
    np.testing.assert_allclose(data, (ints.T / 2.0 ** (bits - 1)).astype(np.float32), rtol=0, atol=1e-7)
    if width in (2, 3):  # libsndfile reads these the same way
        np.testing.assert_array_equal(audio_io._decode_soundfile(soundfile, path)[0], data)


def test_synthetic_dataset_files_load(tmp_path):
    from beats_hf.synthetic_sounds import generate_synthetic_dataset

    root = generate_synthetic_dataset(tmp_path, clips_per_class={"train": 1, "validation": 0, "test": 0})
    path = next(root.rglob("*.wav"))
    with wave.open(str(path), "rb") as reader:
        expected = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2") / 32768.0
    np.testing.assert_array_equal(load_audio(path), expected.astype(np.float32))


def test_stereo_downmix_logged_once(tmp_path, caplog):
    left, right = _sine(440, 16000, 0.5, 0.4), _sine(660, 16000, 0.5, 0.2)
    path = tmp_path / "stereo.wav"
    write_wav(path, np.stack([left, right]), 16000)
    with caplog.at_level(logging.INFO, logger="beats_hf.audio_io"):
        first = load_audio(path)
        second = load_audio(str(path))
    expected = (np.round(left * 32767) + np.round(right * 32767)) / 2 / 32768
    np.testing.assert_allclose(first, expected, atol=1e-6)
    np.testing.assert_array_equal(first, second)
    messages = [r.getMessage() for r in caplog.records if "Downmixed" in r.getMessage()]
    assert len(messages) == 1
    assert str(path) in messages[0] and "2-channel" in messages[0]
    assert all(r.levelno == logging.INFO for r in caplog.records)


@pytest.mark.parametrize("use_soundfile", [True, False])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_a_wav_file_cut_short_is_read_as_far_as_it_goes_with_a_warning(
    tmp_path, monkeypatch, caplog, use_soundfile, subtype
):
    # Both decoders return the frames of a WAV file whose end is missing (an interrupted copy) without an error:
    # half the audio disappeared silently, and the clip was classified or trained on as if it were whole.
    if not use_soundfile:
        if subtype == "FLOAT":
            pytest.skip("the standard library reads integer PCM only")
        monkeypatch.setattr(audio_io, "_load_soundfile", lambda: None)
    waveform = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    whole = tmp_path / "whole.wav"
    soundfile.write(whole, waveform.T, 16000, subtype=subtype)
    data = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2 + 1])  # ends mid-frame
    with caplog.at_level(logging.WARNING, logger="beats_hf.audio_io"):
        complete, _ = read_audio(whole)
        partial, rate = read_audio(cut)
        read_audio(cut)
    assert complete.shape == (2, 16000) and rate == 16000
    assert 0 < partial.shape[1] < 8000
    np.testing.assert_array_equal(partial, complete[:, : partial.shape[1]])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages  # once per file, and none for the whole file
    assert str(cut) in messages[0] and "16000 frames (1.000 s)" in messages[0]
    assert f"holds {partial.shape[1]} " in messages[0]


@pytest.mark.parametrize("variant", ["streamed", "chunk after the data"])
def test_whole_wav_files_with_unusual_headers_are_not_reported_cut_short(tmp_path, caplog, variant):
    # A streamed WAV (data size unknown: 0xFFFFFFFF) holds all its frames, and so does a data chunk followed by
    # another chunk.
    path = tmp_path / "clip.wav"
    write_wav(path, np.zeros(16000), 16000)
    data = bytearray(path.read_bytes())
    if variant == "streamed":
        data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    else:
        data += b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="beats_hf.audio_io"):
        assert read_audio(path)[0].shape == (1, 16000)
    assert not caplog.records


def test_flac_via_soundfile(tmp_path):
    pcm = (np.random.default_rng(1).standard_normal(8000) * 3000).astype(np.int16)
    path = tmp_path / "clip.flac"
    soundfile.write(path, pcm, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(path), pcm.astype(np.float32) / 32768.0)


@pytest.mark.parametrize(("fmt", "subtype", "suffix"), [("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")])
def test_compressed_formats_via_soundfile(tmp_path, fmt, subtype, suffix):
    path = tmp_path / f"tone.{suffix}"
    try:
        soundfile.write(path, _sine(1000, 16000, 1.0), 16000, format=fmt, subtype=subtype)
    except Exception as error:  # an older libsndfile without this format
        pytest.skip(f"libsndfile cannot write {fmt}: {error}")
    audio = load_audio(path)
    assert abs(len(audio) - 16000) < 2000
    assert _peak_and_leakage_db(audio, 16000, 1000)[0] == pytest.approx(1000, abs=5)


def test_44k_file_is_resampled(tmp_path):
    path = tmp_path / "tone44k.wav"
    tone = _sine(1000, 44100, 1.5, 0.5)
    write_wav(path, tone, 44100)
    audio = load_audio(path)  # default target 16 kHz
    assert audio.dtype == np.float32
    assert len(audio) == -(-len(tone) * 16000 // 44100)
    peak, leakage = _peak_and_leakage_db(audio, 16000, 1000)
    assert peak == pytest.approx(1000, abs=1)
    assert leakage < -40
    assert np.sqrt(np.mean(audio[200:-200] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert load_audio(path, target_sampling_rate=None).shape == (len(tone),)


def test_torchcodec_used_when_soundfile_is_missing(tmp_path, monkeypatch):
    path = tmp_path / "x.wav"
    write_wav(path, np.zeros(10), 16000)
    calls = []

    class FakeDecoder:
        def __init__(self, source):
            calls.append(source)

        def get_all_samples(self):
            class Samples:
                data = torch.full((2, 320), 0.25)
                sample_rate = 32000

            return Samples()

    monkeypatch.setattr(audio_io, "_load_soundfile", lambda: None)
    monkeypatch.setattr(audio_io, "_load_torchcodec_decoder", lambda: FakeDecoder)
    audio = load_audio(path)
    assert calls == [str(path)]
    assert audio.shape == (160,)
    np.testing.assert_allclose(audio[10:-10], 0.25, atol=2e-3)


def test_falls_back_to_wave_when_soundfile_fails(tmp_path, monkeypatch):
    class BrokenSoundfile:
        @staticmethod
        def read(*args, **kwargs):
            raise RuntimeError("libsndfile says no")

    monkeypatch.setattr(audio_io, "_load_soundfile", lambda: BrokenSoundfile)
    monkeypatch.setattr(audio_io, "_load_torchcodec_decoder", lambda: None)
    path = tmp_path / "x.wav"
    _write_pcm_wav(path, np.array([0, 16384, -16384], dtype=np.int16), 16000, 2)
    np.testing.assert_array_equal(load_audio(path), [0.0, 0.5, -0.5])


def test_without_soundfile_a_flac_file_error_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "tone.flac"
    soundfile.write(path, _sine(1000, 16000, 0.5), 16000, format="FLAC")
    monkeypatch.setattr(audio_io, "_load_soundfile", lambda: None)
    monkeypatch.setattr(audio_io, "_load_torchcodec_decoder", lambda: None)
    with pytest.raises(AudioDecodeError, match=r"pip install 'beats_hf\[audio\]'"):
        load_audio(path)
    monkeypatch.undo()
    assert load_audio(path).shape == (8000,)


def test_without_torchcodec_an_m4a_file_error_says_what_to_install(tmp_path, monkeypatch):
    # The start of an MP4 container (an `ftyp` box of brand M4A): libsndfile and the wave module reject it.
    path = tmp_path / "voice.M4A"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(64))
    monkeypatch.setattr(audio_io, "_load_torchcodec_decoder", lambda: None)
    with pytest.raises(AudioDecodeError, match=r"\.M4A files need torchcodec.*pip install torchcodec") as info:
        load_audio(path)
    assert "soundfile" in str(info.value)
    wav_like = tmp_path / "garbage.wav"
    wav_like.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioDecodeError) as info:
        load_audio(wav_like)
    assert "need torchcodec" not in str(info.value)  # the hint is for containers only FFmpeg reads


def test_unreadable_files_raise_naming_the_file(tmp_path, no_soundfile):
    missing = tmp_path / "missing.wav"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(256)))
    no_frames = tmp_path / "no_frames.wav"
    _write_pcm_wav(no_frames, np.zeros(0, dtype=np.int16), 16000, 2)
    cases = [
        (missing, "does not exist"),
        (empty, "empty"),
        (garbage, "unsupported or corrupt"),
        (no_frames, "zero samples"),
        (tmp_path, "not a regular file"),
    ]
    for path, reason in cases:
        with pytest.raises(AudioDecodeError, match=reason) as info:
            load_audio(path)
        assert str(path) in str(info.value)
        assert info.value.path == str(path)
        assert isinstance(info.value, ValueError)
    error = pickle.loads(pickle.dumps(AudioDecodeError("x")))  # survives DataLoader worker round trips
    assert str(error) == "x"


def test_unreadable_files_with_soundfile(tmp_path):
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"fLaC" + bytes(100))
    with pytest.raises(AudioDecodeError, match="garbage.flac") as info:
        load_audio(garbage)
    assert "soundfile" in str(info.value) and "wave" in str(info.value)
    no_frames = tmp_path / "no_frames.wav"
    _write_pcm_wav(no_frames, np.zeros(0, dtype=np.int16), 16000, 2)
    with pytest.raises(AudioDecodeError, match="zero samples"):
        load_audio(no_frames)


def test_non_finite_samples_rejected(tmp_path):
    path = tmp_path / "nan.wav"
    soundfile.write(path, np.array([0.0, np.nan, 0.1], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="NaN"):
        load_audio(path)


# ----------------------------------------------------------------------------------------------------------------------
# Resampling
# ----------------------------------------------------------------------------------------------------------------------


def test_resample_identity_returns_input():
    x = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    assert resample(x, 16000, 16000) is x
    t = torch.randn(2, 100)
    assert resample(t, 16000, 16000) is t


@pytest.mark.parametrize(
    ("orig", "target"), [(44100, 16000), (48000, 16000), (8000, 16000), (22050, 16000), (16000, 44100)]
)
@pytest.mark.parametrize("length", [0, 1, 7, 441, 1000, 4411])
def test_resample_length(orig, target, length):
    y = resample(np.zeros(length, dtype=np.float32), orig, target)
    assert y.shape == (-(-length * target // orig),)


def test_resample_sine_44k_to_16k():
    y = resample(_sine(1000, 44100, 2.0).astype(np.float32), 44100, 16000)
    assert y.dtype == np.float32
    peak, leakage = _peak_and_leakage_db(y, 16000, 1000)
    assert peak == pytest.approx(1000, abs=1)
    assert leakage < -40


@pytest.mark.parametrize("window", ["hann", "kaiser"])
def test_resample_rejects_content_above_new_nyquist(window):
    # 12 kHz is representable at 44.1 kHz but not at 16 kHz: it must not alias down to 4 kHz.
    y = resample(_sine(12000, 44100, 1.0), 44100, 16000, window=window)
    level = 20 * np.log10(np.sqrt(np.mean(y[100:-100] ** 2)) / (0.5 / np.sqrt(2)))
    assert level < -40


def test_resample_passband_and_round_trip():
    x = _sine(1000, 16000, 1.0)
    up = resample(x, 16000, 44100)
    t = np.arange(len(up)) / 44100
    np.testing.assert_allclose(up[300:-300], 0.5 * np.sin(2 * np.pi * 1000 * t[300:-300]), atol=2e-3)
    back = resample(up, 44100, 16000)
    assert back.shape == x.shape
    np.testing.assert_allclose(back[200:-200], x[200:-200], atol=2e-3)


def test_resample_types_and_batching():
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((2, 3, 1000))
    out = resample(batch, 48000, 16000)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (2, 3, 334)
    np.testing.assert_allclose(out[1, 2], resample(batch[1, 2], 48000, 16000), atol=1e-12)

    tensor = torch.from_numpy(batch)
    out_t = resample(tensor, 48000, 16000)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float64
    np.testing.assert_allclose(out_t.numpy(), out, atol=1e-12)

    out_f32 = resample(tensor.float(), 48000, 16000)
    assert out_f32.dtype == torch.float32
    np.testing.assert_allclose(out_f32.numpy(), out, atol=1e-5)

    assert resample(np.zeros(10, dtype=np.int16), 32000, 16000).dtype == np.float32
    assert resample(torch.zeros(10, dtype=torch.bfloat16), 32000, 16000).dtype == torch.bfloat16


def test_resample_direct_path_matches_polyphase():
    x = torch.randn(2, 3000, dtype=torch.float64)
    for orig, new in [(441, 160), (160, 441), (3, 2)]:
        a = audio_io._resample_torch(x, orig, new, 6, 0.99, "hann", 8.6, method="polyphase")
        b = audio_io._resample_torch(x, orig, new, 6, 0.99, "hann", 8.6, method="direct")
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    y = resample(np.asarray(_sine(1000, 44100, 0.5)), 44100, 16001)  # coprime rates: direct path
    assert y.shape == (-(-22050 * 16001 // 44100),)
    assert _peak_and_leakage_db(y, 16001, 1000)[1] < -40


def test_resample_invalid_arguments():
    with pytest.raises(ValueError, match="orig_sr"):
        resample(np.zeros(4), 0, 16000)
    with pytest.raises(ValueError, match="target_sr"):
        resample(np.zeros(4), 16000, 16000.5)
    with pytest.raises(ValueError, match="window"):
        resample(np.zeros(4), 8000, 16000, window="blackman")


# ----------------------------------------------------------------------------------------------------------------------
# Cropping and windows
# ----------------------------------------------------------------------------------------------------------------------


def test_random_crop():
    x = np.arange(100, dtype=np.float32)
    assert random_crop(x, 100, np.random.default_rng(0)) is x
    assert random_crop(x, 500, np.random.default_rng(0)) is x
    crops = [random_crop(x, 10, np.random.default_rng(seed)) for seed in range(50)]
    for crop in crops:
        assert crop.shape == (10,)
        np.testing.assert_array_equal(crop, np.arange(crop[0], crop[0] + 10))
    assert len({crop[0] for crop in crops}) > 10
    np.testing.assert_array_equal(random_crop(x, 10, np.random.default_rng(3)), crops[3])
    assert random_crop(np.zeros((2, 100)), 30, np.random.default_rng(0)).shape == (2, 30)
    with pytest.raises(ValueError):
        random_crop(x, 0, np.random.default_rng(0))


def test_windows_cover_the_whole_file():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    assert window_starts(3, 4, 2) == [0]
    x = np.arange(16000 * 7 + 123, dtype=np.float32)
    parts = windows(x, 16000 * 2, 16000)
    assert all(len(p) == 32000 for p in parts)
    np.testing.assert_array_equal(parts[0], x[:32000])
    np.testing.assert_array_equal(parts[-1], x[-32000:])  # the last window ends at the last sample
    covered = np.zeros(len(x), dtype=bool)
    for start, part in zip(window_starts(len(x), 32000, 16000), parts):
        np.testing.assert_array_equal(part, x[start : start + 32000])
        covered[start : start + 32000] = True
    assert covered.all()
    short = np.ones(100)
    assert len(windows(short, 200, 100)) == 1
    np.testing.assert_array_equal(windows(short, 200, 100)[0], short)
    with pytest.raises(ValueError, match="hop_samples"):
        windows(x, 100, 200)
