# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Tests of the audio datasets (beats_hf.data) and the audio collator (beats_hf.collators.DataCollatorForAudio)."""

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

import beats_hf.data as data_module
from beats_hf import BeatsFeatureExtractor
from beats_hf.audio_io import write_wav
from beats_hf.collators import DataCollatorForAudio, is_empty_batch
from beats_hf.data import (
    AudioClipDataset,
    AudioRecord,
    StreamingAudioClipDataset,
    build_audio_dataset,
    build_label_vocabulary,
    load_record_waveform,
    parse_labels,
    read_audio_records,
)
from beats_hf.synthetic_sounds import generate_synthetic_dataset

datasets = pytest.importorskip("datasets")
soundfile = pytest.importorskip("soundfile")

SR = 16000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return generate_synthetic_dataset(
        root, seed=0, clips_per_class={"train": 1, "validation": 0, "test": 0}, duration=1.0
    )


def _tone(seconds: float, sampling_rate: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    mono = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return mono if channels == 1 else np.stack([mono, 0.5 * mono])


def test_folder_reader_with_and_without_folder_labels(synthetic, tmp_path):
    labelled = read_audio_records(synthetic / "train", labels_from_folders=True)
    assert len(labelled) == 10
    assert {r.labels for r in labelled} == {(p.name,) for p in (synthetic / "train").iterdir()}
    assert all(r.path.endswith(".wav") and r.id == r.id.strip() for r in labelled)
    assert all(r.labels == () for r in read_audio_records(synthetic / "train"))

    write_wav(tmp_path / "loose.wav", _tone(0.5), SR)
    with pytest.raises(ValueError, match="loose.wav lies directly in"):
        read_audio_records(tmp_path, labels_from_folders=True)
    with pytest.raises(ValueError, match="No audio files"):
        read_audio_records(_empty(tmp_path))


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_csv_manifest_paths_and_labels(synthetic, tmp_path):
    records = read_audio_records(synthetic / "train.csv")
    assert len(records) == 10 and all(len(r.labels) == 1 for r in records)
    # A manifest elsewhere, with an absolute path, a relative path, several labels and a JSON list.
    write_wav(tmp_path / "a.wav", _tone(0.5), SR)
    absolute = (synthetic / "train" / "tone" / "train_tone_0000.wav").resolve()
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerow(["a.wav", "Dog;Bark"])
        writer.writerow([str(absolute), '["Music", "Tone"]'])
        writer.writerow(["b.wav", ""])
    rows = read_audio_records(manifest)
    assert [r.labels for r in rows] == [("Dog", "Bark"), ("Music", "Tone"), ()]
    assert rows[0].path == str(tmp_path / "a.wav") and rows[1].path == str(absolute)
    assert build_label_vocabulary(rows) == {"Bark": 0, "Dog": 1, "Music": 2, "Tone": 3}
    assert build_label_vocabulary(rows[:1], rows[1:]) == build_label_vocabulary(rows)  # over several splits

    (tmp_path / "bad.csv").write_text("file,label\na.wav,x\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        read_audio_records(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="empty label"):
        parse_labels("Dog;;Cat", "here")


def test_jsonl_manifest(synthetic, tmp_path):
    records = read_audio_records(synthetic / "train.jsonl")
    assert len(records) == 10
    manifest = tmp_path / "m.jsonl"
    write_wav(tmp_path / "a.wav", _tone(0.5), SR)
    manifest.write_text(json.dumps({"path": "a.wav", "label": ["x", "y"]}) + "\n\n" + json.dumps({"path": "b.wav"}))
    assert [r.labels for r in read_audio_records(manifest)] == [("x", "y"), ()]
    manifest.write_text("{not json}\n")
    with pytest.raises(ValueError, match="m.jsonl:1: not valid JSON"):
        read_audio_records(manifest)


def test_manifests_from_spreadsheets_and_editors(tmp_path):
    write_wav(tmp_path / "a.wav", _tone(0.5), SR)
    # A UTF-8 byte-order mark (spreadsheet export) and spaces after the commas, with a quoted cell.
    manifest = tmp_path / "m.csv"
    manifest.write_text('path, label\na.wav, "Dog;Bark"\n', encoding="utf-8-sig")
    (record,) = read_audio_records(manifest)
    assert record.path == str(tmp_path / "a.wav") and record.labels == ("Dog", "Bark")
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"path": "a.wav", "label": "Dog"}) + "\n", encoding="utf-8-sig")
    assert [r.labels for r in read_audio_records(jsonl)] == [("Dog",)]
    # Errors name the line of the file, past blank lines and cells spanning lines.
    manifest.write_text('path,label\na.wav,"Dog;\nBark"\n\n,Cat\n')
    with pytest.raises(ValueError, match=r"m\.csv:5: empty 'path'"):
        read_audio_records(manifest)
    manifest.write_text('path,label\n\n,"Dog;\nBark"\n')
    with pytest.raises(ValueError, match=r"m\.csv:3-4: empty 'path'"):
        read_audio_records(manifest)
    manifest.write_text("path,label\na.wav,Dog,\n")  # a trailing comma loses nothing
    assert [r.labels for r in read_audio_records(manifest)] == [("Dog",)]
    # Labels separated by commas instead of ';' spill into cells without a column: refused, not dropped.
    manifest.write_text("path,label\na.wav,Dog,Bark\n")
    with pytest.raises(ValueError, match=r"m\.csv:2: 1 more cell\(s\) than the header has columns \(\['Bark'\]\)"):
        read_audio_records(manifest)


def test_manifests_refuse_a_file_listed_twice(tmp_path):
    write_wav(tmp_path / "a.wav", _tone(0.5), SR)
    (tmp_path / "sub").mkdir()
    # The same file, once relative and once through another spelling of its path, with different labels.
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,Dog\nb.wav,Cat\nsub/../a.wav,Bark\n")
    with pytest.raises(ValueError, match=r"m\.csv:4: .*a\.wav is already listed at .*m\.csv:2\. List each file once"):
        read_audio_records(manifest)
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"path": "a.wav"}) + "\n" + json.dumps({"path": str(tmp_path / "a.wav")}) + "\n")
    with pytest.raises(ValueError, match=r"m\.jsonl:2: .*already listed at .*m\.jsonl:1"):
        read_audio_records(jsonl)


def _wav_bytes(waveform: np.ndarray, sampling_rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(waveform).T, sampling_rate, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def saved_hf_dataset(tmp_path_factory):
    """A datasets.Audio column (encoded bytes, one clip 44.1 kHz stereo) and a ClassLabel column, saved to disk."""
    folder = tmp_path_factory.mktemp("hf") / "ds"
    clips = [_tone(1.0), _tone(0.6, 44100, channels=2), _tone(0.8)]
    rates = [SR, 44100, SR]
    dataset = datasets.Dataset.from_dict(
        {
            "audio": [
                {"bytes": _wav_bytes(c, r), "path": f"clip{i}.wav"} for i, (c, r) in enumerate(zip(clips, rates))
            ],
            "label": [0, 1, 1],
            "clip": ["a", "b", "c"],
        }
    )
    dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    dataset = dataset.cast_column("label", datasets.ClassLabel(names=["cat", "dog"]))
    dataset.save_to_disk(str(folder))
    return folder


def test_hf_dataset_from_disk(saved_hf_dataset, caplog):
    records = read_audio_records(saved_hf_dataset, id_column="clip")
    assert len(records) == 3 and [r.id for r in records] == ["a", "b", "c"]
    assert [r.labels for r in records] == [("cat",), ("dog",), ("dog",)]
    dataset = AudioClipDataset(records, label2id=build_label_vocabulary(records))
    with caplog.at_level(logging.INFO, logger="beats_hf.data"):
        item = dataset[1]
    assert any("Downmixed 2-channel" in m and "b" in m for m in caplog.messages)
    assert item["labels"] == [1] and item["waveform"].dtype == np.float32
    assert item["waveform"].shape[0] == int(np.ceil(0.6 * SR))  # 44.1 kHz -> 16 kHz

    # Arrays in a plain dict column are taken as they are (here 8 kHz, resampled).
    plain = datasets.Dataset.from_dict({"audio": [{"array": _tone(0.5, 8000), "sampling_rate": 8000}]})
    folder = saved_hf_dataset.parent / "plain"
    plain.save_to_disk(str(folder))
    (record,) = read_audio_records(folder)
    assert AudioClipDataset([record])[0]["waveform"].shape[0] == SR // 2


def test_hf_dataset_dict_missing_labels_and_mono_bytes(tmp_path, caplog):
    # A saved dataset dict with one split needs no split=...; ClassLabel -1 is datasets' missing label.
    audio = [{"bytes": _wav_bytes(_tone(0.5), SR), "path": f"clip{i}.wav"} for i in range(2)]
    dataset = datasets.Dataset.from_dict({"audio": audio, "label": [0, -1]})
    dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    dataset = dataset.cast_column("label", datasets.ClassLabel(names=["cat", "dog"]))
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "dd"))
    records = read_audio_records(tmp_path / "dd")
    assert records.label_sets() == [("cat",), ()] and records[1].labels == ()
    # Mono clips decode as (1, samples): nothing is downmixed, so nothing is logged.
    with caplog.at_level(logging.INFO, logger="beats_hf.data"):
        assert AudioClipDataset(records)[0]["waveform"].shape == (SR // 2,)
    assert not any("Downmixed" in m for m in caplog.messages)


def test_label_views_are_read_from_their_label_column():
    # A lazy view (sampling.RecordSubset of a Hugging Face dataset) is checked without reading any row's audio.
    class View(Sequence):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            raise AssertionError("a row was read")

        def label_sets(self):
            return [("cat",), ("dog",)]

    assert build_label_vocabulary(View()) == {"cat": 0, "dog": 1}
    with pytest.raises(ValueError, match="not in label2id"):
        AudioClipDataset(View(), label2id={"cat": 0})


def test_array_records_refuse_integer_samples_and_say_what_to_install(monkeypatch):
    pcm = (_tone(0.5) * 32767).astype(np.int16)
    with pytest.raises(ValueError, match="dtype int16.*/ 32768"):
        load_record_waveform(AudioRecord(id="pcm", array=pcm, sampling_rate=SR))
    monkeypatch.setattr(data_module, "_load_soundfile", lambda: None)
    with pytest.raises(ImportError, match=r"'enc'.*pip install 'beats_hf\[audio\]'"):
        load_record_waveform(AudioRecord(id="enc", encoded=_wav_bytes(_tone(0.5), SR)))


def test_hf_dataset_streaming(saved_hf_dataset):
    dataset = build_audio_dataset(saved_hf_dataset, streaming=True, id_column="clip", shuffle_buffer_size=0)
    assert isinstance(dataset, StreamingAudioClipDataset)
    items = list(dataset)
    assert [i["id"] for i in items] == ["a", "b", "c"] and [i["labels"] for i in items] == [["cat"], ["dog"], ["dog"]]
    shuffled = build_audio_dataset(saved_hf_dataset, streaming=True, id_column="clip", shuffle_buffer_size=10, seed=1)
    assert sorted(i["id"] for i in shuffled) == ["a", "b", "c"]
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, collate_fn=DataCollatorForAudio(BeatsFeatureExtractor())
    )
    batches = list(loader)
    assert [b["input_values"].shape[0] for b in batches] == [2, 1]


def test_resampling_of_a_44k_file(tmp_path):
    write_wav(tmp_path / "c.wav", _tone(1.0, 44100), 44100)
    (record,) = read_audio_records(tmp_path)
    waveform = AudioClipDataset([record])[0]["waveform"]
    assert waveform.shape == (SR,)
    spectrum = np.abs(np.fft.rfft(waveform))
    assert abs(np.argmax(spectrum) * SR / len(waveform) - 440) < 2


def test_stereo_file_is_downmixed_with_a_note(tmp_path, caplog):
    write_wav(tmp_path / "stereo.wav", _tone(0.5, channels=2), SR)
    (record,) = read_audio_records(tmp_path)
    with caplog.at_level(logging.INFO, logger="beats_hf.audio_io"):
        waveform = AudioClipDataset([record])[0]["waveform"]
    assert waveform.ndim == 1
    assert any("Downmixed 2-channel" in m and "stereo.wav" in m for m in caplog.messages)


def test_unreadable_and_short_clips_are_reported_and_skipped(tmp_path, caplog):
    write_wav(tmp_path / "good.wav", _tone(0.5), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF-not-really-a-wav")
    write_wav(tmp_path / "short.wav", _tone(0.1), SR)
    dataset = AudioClipDataset(read_audio_records(tmp_path))
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        items = [dataset[i] for i in range(len(dataset))]
    names = [None if item is None else item["id"].rsplit("/", 1)[-1] for item in items]
    assert names == [None, "good.wav", None]
    assert dataset.num_skipped == 2
    assert any("broken.wav" in m and "unreadable" in m for m in caplog.messages)
    assert any("short.wav" in m and "shorter than one BEATs patch" in m for m in caplog.messages)

    collator = DataCollatorForAudio(BeatsFeatureExtractor())
    batch = collator(items)
    assert batch["num_skipped_clips"] == 2 and batch["input_values"].shape[0] == 1
    empty = collator([None, None])
    assert is_empty_batch(empty) and empty == {"num_skipped_clips": 2}


def test_crops_are_seeded_by_seed_epoch_and_index(tmp_path):
    write_wav(tmp_path / "long.wav", _tone(3.0), SR)
    records = read_audio_records(tmp_path)
    random_crops = AudioClipDataset(records, max_seconds=1.0, crop="random", seed=3)
    first = random_crops[0]
    assert first["waveform"].shape == (SR,) and first["truncated"]
    assert set(first) == {"waveform", "labels", "id", "crop_start", "sample_seed", "truncated"}
    assert random_crops[0]["crop_start"] == first["crop_start"]
    random_crops.set_epoch(1)
    starts = {random_crops[0]["crop_start"]}
    for epoch in range(2, 6):
        random_crops.set_epoch(epoch)
        starts.add(random_crops[0]["crop_start"])
    assert len(starts) > 1
    start_crops = AudioClipDataset(records, max_seconds=1.0, crop="start")
    assert start_crops[0]["crop_start"] == 0
    np.testing.assert_array_equal(
        start_crops[0]["waveform"], AudioClipDataset(records, max_seconds=3.0)[0]["waveform"][:SR]
    )
    with pytest.raises(ValueError, match="crop must be one of"):
        AudioClipDataset(records, crop="middle")


def _truncation_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "longer than max_seconds" in r.getMessage()]


def test_start_crops_warn_once_and_count_every_cut_clip(tmp_path, caplog):
    for name, seconds in (("a_long.wav", 3.0), ("b_long.wav", 2.5), ("c_exact.wav", 1.0), ("d_short.wav", 0.5)):
        write_wav(tmp_path / name, _tone(seconds), SR)
    records = read_audio_records(tmp_path)
    dataset = AudioClipDataset(records, max_seconds=1.0, crop="start")
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        items = [dataset[i] for i in range(len(dataset))]
    # One warning, for the first clip cut: its name, its length, the limit and the options that raise it.
    (message,) = _truncation_warnings(caplog)
    assert "a_long.wav" in message and "3.00 s" in message and "max_seconds=1" in message
    assert "eval_max_seconds" in message and "--max-seconds" in message
    assert [item["truncated"] for item in items] == [True, True, False, False]  # exactly max_seconds is not cut
    assert [item["waveform"].shape[0] for item in items] == [SR, SR, SR, SR // 2]
    assert dataset.num_truncated == 2

    collator = DataCollatorForAudio(BeatsFeatureExtractor())
    assert collator(items)["num_truncated_clips"] == 2 and collator(items[2:])["num_truncated_clips"] == 0
    assert collator([None]) == {"num_skipped_clips": 1}  # empty batches keep their shape

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        again = [dataset[i] for i in range(len(dataset))]
    assert _truncation_warnings(caplog) == [] and dataset.num_truncated == 4  # every read counts, warned once
    assert all(np.array_equal(x["waveform"], y["waveform"]) for x, y in zip(items, again))

    # Random crops cut by design: counted and flagged, never warned about.
    caplog.clear()
    random_crops = AudioClipDataset(records, max_seconds=1.0, crop="random")
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        flags = [random_crops[i]["truncated"] for i in range(len(random_crops))]
    assert _truncation_warnings(caplog) == [] and flags == [True, True, False, False]
    assert random_crops.num_truncated == 2
    # Clips within the limit: nothing to report.
    caplog.clear()
    whole = AudioClipDataset(records, max_seconds=3.0, crop="start")
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        assert not any(whole[i]["truncated"] for i in range(len(whole)))
    assert _truncation_warnings(caplog) == [] and whole.num_truncated == 0


def test_cut_clips_are_counted_across_data_loader_workers(tmp_path):
    # Worker processes read with their own copies of the dataset: the main process's counter stays at 0, and the
    # batches' num_truncated_clips is the count that reaches it (what training/evaluate.py reports).
    for index in range(6):
        write_wav(tmp_path / f"clip{index}.wav", _tone(2.0 if index % 2 == 0 else 0.5), SR)
    dataset = AudioClipDataset(read_audio_records(tmp_path), max_seconds=1.0, crop="start")
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, num_workers=2, collate_fn=DataCollatorForAudio(BeatsFeatureExtractor())
    )
    assert sum(batch["num_truncated_clips"] for batch in loader) == 3
    assert dataset.num_truncated == 0


def test_streaming_start_crops_warn_and_count(saved_hf_dataset, caplog):
    dataset = build_audio_dataset(
        saved_hf_dataset, streaming=True, id_column="clip", shuffle_buffer_size=0, max_seconds=0.7, crop="start"
    )
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        items = list(dataset)
    (message,) = _truncation_warnings(caplog)
    assert "Clip a is 1.00 s long" in message and "max_seconds=0.7" in message
    assert [(item["id"], item["truncated"]) for item in items] == [("a", True), ("b", False), ("c", True)]
    assert dataset.num_truncated == 2


def test_labels_and_audio_collator(synthetic):
    records = read_audio_records(synthetic / "train.csv")
    label2id = build_label_vocabulary(records)
    dataset = AudioClipDataset(records, label2id=label2id, crop="start")
    items = [dataset[i] for i in range(4)]
    extractor = BeatsFeatureExtractor()
    single = DataCollatorForAudio(extractor, num_labels=len(label2id))(items)
    assert single["labels"].dtype == torch.long
    assert single["labels"].tolist() == [label2id[records[i].labels[0]] for i in range(4)]
    assert single["input_values"].shape[:2] == single["attention_mask"].shape
    multi = DataCollatorForAudio(extractor, num_labels=len(label2id), multi_label=True)(items)
    assert multi["labels"].shape == (4, len(label2id)) and multi["labels"].sum(1).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="not in label2id"):
        AudioClipDataset(records, label2id={"tone": 0})
    assert "labels" not in DataCollatorForAudio(extractor)(items)  # features only
    with pytest.raises(ValueError, match="not ids"):
        DataCollatorForAudio(extractor, num_labels=10)([AudioClipDataset(records)[0]])
    two_labels = {**items[0], "labels": [0, 1]}
    with pytest.raises(
        ValueError,
        match=r"exactly one per clip.*DataCollatorForAudio\(multi_label=True\) with a model whose problem_type",
    ):
        DataCollatorForAudio(extractor, num_labels=10)([two_labels])


def test_folder_reader_skips_hidden_files_and_macos_archive_folders(tmp_path):
    for folder in ("dog", "__MACOSX/dog", ".cache"):
        (tmp_path / folder).mkdir(parents=True)
    write_wav(tmp_path / "dog" / "bark.wav", _tone(0.5), SR)
    (tmp_path / "dog" / "._bark.wav").write_bytes(b"\x00\x05\x16\x07 resource fork")  # AppleDouble, not audio
    write_wav(tmp_path / "__MACOSX" / "dog" / "bark.wav", _tone(0.5), SR)
    write_wav(tmp_path / ".cache" / "x.wav", _tone(0.5), SR)
    records = read_audio_records(tmp_path, labels_from_folders=True)
    assert [(Path(r.path).relative_to(tmp_path).as_posix(), r.labels) for r in records] == [("dog/bark.wav", ("dog",))]
