# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Tests of the built-in synthetic sound-event dataset (beats_hf.synthetic_sounds)."""

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from beats_hf import synthetic_sounds
from beats_hf.synthetic_sounds import (
    SPLITS,
    SYNTHETIC_CLASSES,
    generate_synthetic_dataset,
    synthesize_clip,
)

SMALL = {"train": 4, "validation": 2, "test": 3}
SR = 16000


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as reader:
        assert reader.getnchannels() == 1
        assert reader.getsampwidth() == 2
        assert reader.getframerate() == SR
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


def _all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "data", seed=0, clips_per_class=SMALL)


@pytest.fixture(scope="module")
def clips_by_class() -> dict[str, list[np.ndarray]]:
    """20 clips per class from streams disjoint from the dataset's."""
    return {
        name: [synthesize_clip(name, np.random.default_rng([4321, c, i])) for i in range(20)]
        for c, name in enumerate(SYNTHETIC_CLASSES)
    }


def test_classes():
    assert len(SYNTHETIC_CLASSES) >= 8
    assert len(set(SYNTHETIC_CLASSES)) == len(SYNTHETIC_CLASSES)
    for name in SYNTHETIC_CLASSES:
        assert f"``{name}``" in synthetic_sounds.__doc__  # every class is documented
        clip = synthesize_clip(name, np.random.default_rng(0))
        assert clip.dtype == np.float32 and clip.shape == (32000,)
        assert np.isfinite(clip).all()
        assert 0 < np.abs(clip).max() <= 0.98
    with pytest.raises(ValueError, match="Unknown synthetic sound class"):
        synthesize_clip("violin", np.random.default_rng(0))


@pytest.mark.parametrize(("duration", "sampling_rate"), [(1.0, 8000), (0.5, 16000), (4.0, 22050)])
def test_other_durations_and_rates(duration, sampling_rate):
    for c, name in enumerate(SYNTHETIC_CLASSES):
        clip = synthesize_clip(name, np.random.default_rng([1, c]), duration=duration, sampling_rate=sampling_rate)
        assert clip.shape == (round(duration * sampling_rate),)
        assert np.isfinite(clip).all() and 0 < np.abs(clip).max() <= 0.98


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="duration"):
        synthesize_clip("tone", np.random.default_rng(0), duration=0.0)
    with pytest.raises(ValueError, match="sampling_rate"):
        synthesize_clip("tone", np.random.default_rng(0), sampling_rate=100)
    with pytest.raises(ValueError, match="seed"):
        generate_synthetic_dataset(tmp_path, seed=-1)
    with pytest.raises(ValueError, match="Unknown split"):
        generate_synthetic_dataset(tmp_path, clips_per_class={"dev": 3})
    with pytest.raises(ValueError, match="non-negative"):
        generate_synthetic_dataset(tmp_path, clips_per_class={"train": -1})


def test_manifests_consistent_with_files(small_dataset):
    root = small_dataset
    info = json.loads((root / "dataset_info.json").read_text())
    assert info["seed"] == 0
    assert info["classes"] == list(SYNTHETIC_CLASSES)
    assert info["clips_per_class"] == SMALL
    assert info["sampling_rate"] == SR and info["duration"] == 2.0
    assert info["generator_version"] == synthetic_sounds.GENERATOR_VERSION

    listed = set()
    distractors = 0
    for split in SPLITS:
        with open(root / f"{split}.csv", newline="") as f:
            csv_rows = list(csv.DictReader(f))
        jsonl_rows = [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()]
        assert len(csv_rows) == len(jsonl_rows) == SMALL[split] * len(SYNTHETIC_CLASSES)
        assert info["num_clips"][split] == len(csv_rows)
        for row_csv, row_json in zip(csv_rows, jsonl_rows):
            assert list(row_csv) == ["path", "label", "split", "duration", "distractor"]
            assert row_csv["path"] == row_json["path"] and row_csv["label"] == row_json["label"]
            assert row_csv["distractor"] == row_json["distractor"]
            assert float(row_csv["duration"]) == row_json["duration"] == 2.0
            assert row_json["split"] == split
            path = Path(row_json["path"])
            assert not path.is_absolute() and path.parts[:2] == (split, row_json["label"])
            assert path.name.startswith(f"{split}_{row_json['label']}_")
            assert row_json["label"] in SYNTHETIC_CLASSES
            assert row_json["distractor"] in ("", *SYNTHETIC_CLASSES)
            assert row_json["distractor"] != row_json["label"]
            distractors += bool(row_json["distractor"])
            samples = _read_wav(root / path)
            assert samples.shape == (32000,)
            listed.add(path.as_posix())
        for name in SYNTHETIC_CLASSES:
            assert sum(r["label"] == name for r in jsonl_rows) == SMALL[split]
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.wav")}
    assert on_disk == listed
    assert 0 < distractors < len(listed)  # some clips have a distractor event, most do not


def test_deterministic_and_seed_dependent(small_dataset, tmp_path):
    again = generate_synthetic_dataset(tmp_path / "again", seed=0, clips_per_class=SMALL)
    assert _all_files(again) == _all_files(small_dataset)

    other = generate_synthetic_dataset(tmp_path / "other", seed=1, clips_per_class=SMALL)
    a, b = _all_files(small_dataset), _all_files(other)
    assert a.keys() == b.keys()
    wavs = [k for k in a if k.endswith(".wav")]
    assert all(a[k] != b[k] for k in wavs)


def test_split_independence(small_dataset, tmp_path):
    counts = {"train": 7, "validation": 2, "test": 3}  # only the train size changes
    other = generate_synthetic_dataset(tmp_path / "bigger_train", seed=0, clips_per_class=counts)
    a, b = _all_files(small_dataset), _all_files(other)
    for key, data in a.items():
        if key.startswith(("test", "validation")):
            assert b[key] == data, key
        elif key.startswith("train/"):
            assert b[key] == data, key  # the first train clips are unchanged too
    assert len([k for k in b if k.startswith("train/")]) == 7 * len(SYNTHETIC_CLASSES)


def test_idempotent_and_parameter_mismatch(tmp_path, monkeypatch):
    root = generate_synthetic_dataset(tmp_path / "d", seed=3, clips_per_class={"train": 2, "validation": 1, "test": 1})
    before = _all_files(root)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}

    def fail(*args, **kwargs):
        raise AssertionError("a complete dataset must not be regenerated")

    with monkeypatch.context() as patch:
        patch.setattr(synthetic_sounds, "_synthesize", fail)
        assert (
            generate_synthetic_dataset(root, seed=3, clips_per_class={"train": 2, "validation": 1, "test": 1}) == root
        )
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == mtimes

    with pytest.raises(FileExistsError, match="different parameters.*seed"):
        generate_synthetic_dataset(root, seed=4, clips_per_class={"train": 2, "validation": 1, "test": 1})
    with pytest.raises(FileExistsError, match="clips_per_class"):
        generate_synthetic_dataset(root, seed=3, clips_per_class={"train": 1, "validation": 1, "test": 1})

    # An incomplete dataset with the same parameters is completed.
    victim = root / "test" / "tone" / "test_tone_0000.wav"
    victim.unlink()
    generate_synthetic_dataset(root, seed=3, clips_per_class={"train": 2, "validation": 1, "test": 1})
    assert _all_files(root) == before

    # overwrite=True replaces it, removing clips the new parameters do not have.
    generate_synthetic_dataset(root, seed=3, clips_per_class={"train": 1, "validation": 1, "test": 0}, overwrite=True)
    assert not list((root / "test").rglob("*.wav"))
    assert len(list((root / "train").rglob("*.wav"))) == len(SYNTHETIC_CLASSES)
    assert (root / "test.csv").read_text() == "path,label,split,duration,distractor\n"
    assert (root / "test.jsonl").read_text() == ""
    assert json.loads((root / "dataset_info.json").read_text())["clips_per_class"]["test"] == 0


def test_no_clipping_and_levels_vary(small_dataset, clips_by_class):
    for wav in small_dataset.rglob("*.wav"):
        assert np.abs(_read_wav(wav).astype(np.int32)).max() < 32767  # never at full scale
    levels = {name: [20 * np.log10(np.sqrt(np.mean(x**2))) for x in clips] for name, clips in clips_by_class.items()}
    everything = np.concatenate(list(levels.values()))
    assert everything.max() - everything.min() > 10.0
    for name, values in levels.items():
        assert np.std(values) > 2.0, name  # every class spans many levels
    peaks = [np.abs(x).max() for clips in clips_by_class.values() for x in clips]
    assert max(peaks) <= 0.98 and np.std(peaks) > 0.05


def _frame_powers(x: np.ndarray, n_fft: int = 512, hop: int = 256) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n_fft)[::hop] * np.hanning(n_fft)
    return np.abs(np.fft.rfft(frames, axis=-1)) ** 2


def test_intra_class_variation(clips_by_class):
    freqs = np.fft.rfftfreq(512, 1 / SR)
    for name, clips in clips_by_class.items():
        dominant, onsets, extents = [], [], []
        for x in clips:
            power = _frame_powers(x)
            energy = 10 * np.log10(power.sum(1) + 1e-12)
            active = np.flatnonzero(energy > energy.max() - 12)
            onsets.append(active[0] * 256 / SR)
            extents.append((active[-1] - active[0] + 1) * 256 / SR)
            spectrum = power[active].sum(0)
            spectrum[freqs < 40] = 0
            dominant.append(freqs[np.argmax(spectrum)])
        assert np.std(onsets) > 0.1, name  # events start at different times
        assert np.std(extents) / np.mean(extents) > 0.1, name  # and last different times
        assert np.std(np.log2(dominant)) > 0.25, name  # at different pitches / bands


def _features(x: np.ndarray, bands: int = 24) -> np.ndarray:
    """Level-independent log band energies (event-focused shape, contrast, temporal spread) + a few statistics."""
    power = _frame_powers(x)
    freqs = np.fft.rfftfreq(512, 1 / SR)
    edges = np.geomspace(60, SR / 2, bands + 1)
    log_bands = np.log(
        np.stack([power[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in zip(edges[:-1], edges[1:])], 1) + 1e-10
    )
    frame_level = log_bands.mean(1)
    event = frame_level >= np.percentile(frame_level, 75)
    background = frame_level <= np.percentile(frame_level, 50)
    top = log_bands[event]
    peak_freq = np.log2(freqs[3:][np.argmax(power[:, 3:], 1)])
    event_power = power[event][:, 3:] + 1e-12
    flatness = np.log(np.exp(np.log(event_power).mean(1)) / event_power.mean(1)).mean()
    extra = [flatness, peak_freq[event].std(), np.abs(np.diff(peak_freq)).mean(), np.abs(np.diff(frame_level)).mean()]
    return np.concatenate(
        [
            top.mean(0) - top.mean(),
            top.mean(0) - log_bands[background].mean(0),
            log_bands.std(0),
            np.abs(np.diff(log_bands, axis=0)).mean(0),
            extra,
        ]
    )


def test_separable_by_spectrum_but_not_by_level(clips_by_class):
    """A cheap linear classifier on band energies separates the classes; the RMS level alone does not."""
    names = list(clips_by_class)
    x_all = {
        name: [(_features(x), np.log(np.sqrt(np.mean(x**2)))) for x in clips] for name, clips in clips_by_class.items()
    }
    train = [(f, r, c) for c, name in enumerate(names) for f, r in x_all[name][:10]]
    test = [(f, r, c) for c, name in enumerate(names) for f, r in x_all[name][10:]]
    y_train, y_test = np.array([c for *_, c in train]), np.array([c for *_, c in test])

    def standardise(a, b):
        mean, std = a.mean(0), a.std(0) + 1e-8
        return (a - mean) / std, (b - mean) / std

    a, b = standardise(np.array([f for f, *_ in train]), np.array([f for f, *_ in test]))
    a1, b1 = np.hstack([a, np.ones((len(a), 1))]), np.hstack([b, np.ones((len(b), 1))])
    weights = np.linalg.solve(a1.T @ a1 + 10.0 * np.eye(a1.shape[1]), a1.T @ np.eye(len(names))[y_train])
    ridge_accuracy = np.mean((b1 @ weights).argmax(1) == y_test)

    def nearest_centroid(a, b):
        centroids = np.stack([a[y_train == c].mean(0) for c in range(len(names))])
        return np.mean(np.argmin(((b[:, None] - centroids[None]) ** 2).sum(-1), 1) == y_test)

    rms_a, rms_b = standardise(np.array([[r] for _, r, _ in train]), np.array([[r] for _, r, _ in test]))
    rms_accuracy = nearest_centroid(rms_a, rms_b)
    print(
        f"band-energy ridge: {ridge_accuracy:.2f}, band-energy nearest centroid: {nearest_centroid(a, b):.2f}, "
        f"RMS nearest centroid: {rms_accuracy:.2f} (chance {1 / len(names):.2f})"
    )
    assert ridge_accuracy > 0.5  # chance is 0.1; typically 0.6-0.75 across seeds
    assert rms_accuracy < 0.35


def test_command_line(tmp_path, capsys):
    synthetic_sounds._main([str(tmp_path / "cli"), "--seed", "2", "--train", "1", "--validation", "0", "--test", "1"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    info = json.loads((tmp_path / "cli" / "dataset_info.json").read_text())
    assert info["seed"] == 2 and info["clips_per_class"] == {"train": 1, "validation": 0, "test": 1}


def test_foreign_manifests_are_not_replaced(tmp_path):
    # A folder holding someone's own data (manifests without our dataset_info.json) is refused, not clobbered.
    own = "path,label\nclips/dog.wav,dog\n"
    (tmp_path / "train.csv").write_text(own)
    counts = {"train": 1, "validation": 0, "test": 0}
    with pytest.raises(FileExistsError, match=r"train\.csv, which this generator did not write"):
        generate_synthetic_dataset(tmp_path, clips_per_class=counts)
    assert (tmp_path / "train.csv").read_text() == own and not list(tmp_path.rglob("*.wav"))
    (tmp_path / "train.csv").unlink()
    (tmp_path / "test.jsonl").write_text('{"audio": "x.wav", "labels": ["dog"]}\n')
    with pytest.raises(FileExistsError, match=r"test\.jsonl"):
        generate_synthetic_dataset(tmp_path, clips_per_class=counts)
    generate_synthetic_dataset(tmp_path, clips_per_class=counts, overwrite=True)
    assert (tmp_path / "test.jsonl").read_text() == ""

    # An interrupted run of ours (manifests written, no dataset_info.json yet) is completed, not refused.
    root = generate_synthetic_dataset(tmp_path / "ours", clips_per_class=counts)
    before = _all_files(root)
    (root / "dataset_info.json").unlink()
    generate_synthetic_dataset(root, clips_per_class=counts)
    assert _all_files(root) == before
