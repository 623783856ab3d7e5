# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Audio datasets for pre-training, tokenizer training and fine-tuning.

Three kinds of source, all read by [`read_audio_records`]:

- a **folder** of audio files (wav, flac, ogg, opus, mp3; searched recursively), labels optionally taken from the
  top-level sub-folder each file sits in (`root/<label>/.../clip.wav`);
- a **manifest**, CSV or JSON lines, with a `path` column (relative to the manifest's folder, or absolute) and an
  optional `label` column: one label, several separated by `;`, or a JSON list (`["Dog", "Bark"]`);
- a **Hugging Face dataset** with an audio column: a `save_to_disk` folder, or `hf:<name>` for
  `datasets.load_dataset(name, split=...)`. The column may be a `datasets.Audio` feature (decoded here with
  soundfile, so torchcodec is not needed), a dict with `array` and `sampling_rate`, or a file path. With
  `streaming=True` the rows are read lazily (an iterable dataset), for AudioSet-sized data.

[`AudioClipDataset`] (map-style) and [`StreamingAudioClipDataset`] (iterable) turn records into training items:
16 kHz float32 mono waveforms (any other rate is resampled, multi-channel audio downmixed with a logged note),
cropped to at most `max_seconds` (a random excerpt for training, the start for evaluation). Unreadable clips and
clips shorter than one BEATs patch (0.175 s) are reported by name in a warning, counted, and returned as `None`,
which the collators drop: a bad file never stops a long run. Nothing is cut silently either: the first clip a start
crop cuts is named in a warning (once per dataset and process), every cut is counted (`num_truncated`), and items
say whether they were cut (`truncated`), which the collators sum per batch (`num_truncated_clips`). Random crops
cut by design and are counted without a warning.

All randomness is a function of `(seed, epoch, index)`: the crop of item `i` in epoch `e` and its `sample_seed`
(used by the collator to draw masks) do not depend on worker processes or on how many batches were skipped, so a
resumed run sees exactly the batches an uninterrupted run would (with `beats_hf.sampling.EpochShuffleSampler` for
the order).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio_io import AudioDecodeError, _load_soundfile, load_audio, resample

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")
# The shortest clip the model accepts: one 16-frame patch of 25 ms frames every 10 ms = 400 + 15 * 160 samples.
MIN_CLIP_SAMPLES = 2800
CROP_MODES = ("random", "start")
HUB_PREFIX = "hf:"


@dataclass(frozen=True, eq=False)
class AudioRecord:
    """
    One clip of a data source, not yet decoded: exactly one of `path` (an audio file), `array` (samples at
    `sampling_rate`, shape `(samples,)` or `(channels, samples)`) or `encoded` (the bytes of an audio file, as a
    `datasets.Audio` column stores them) holds the audio. `id` names the clip in messages and in the label cache.
    """

    id: str
    path: str | None = None
    array: np.ndarray | None = None
    sampling_rate: int | None = None
    encoded: bytes | None = None
    labels: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------------------------------------------------------------
# Labels


def parse_labels(value: Any, where: str = "") -> tuple[str, ...]:
    """
    Labels from a manifest or dataset cell: `None`/empty -> no label; a list -> its items; a string holding a JSON
    list -> its items; otherwise labels separated by `;`. An empty label between separators is an error.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text == "":
            return ()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{where}: label cell {text!r} starts with '[' but is not a JSON list ({error})."
                ) from None
            if not isinstance(parsed, list):
                raise ValueError(f"{where}: label cell {text!r} must be a JSON list of labels.")
            items = [str(v).strip() for v in parsed]
        else:
            items = [part.strip() for part in text.split(";")]
    if any(item == "" for item in items):
        raise ValueError(f"{where}: label cell {value!r} contains an empty label; remove the stray separator.")
    return tuple(items)


def build_label_vocabulary(*record_sets: Sequence[AudioRecord]) -> dict[str, int]:
    """`label2id` over every label of one or more record sets (e.g. all splits), sorted (stable across machines)."""
    labels = sorted({label for records in record_sets for labels in _label_sets(records) for label in labels})
    if not labels:
        raise ValueError("The records carry no labels; give a label column, or labels from sub-folder names.")
    return {label: index for index, label in enumerate(labels)}


def _label_sets(records: Sequence[AudioRecord]) -> Iterable[tuple[str, ...]]:
    # Any lazy view with a label_sets (HuggingFaceAudioRecords, sampling.RecordSubset) reads its label column alone;
    # iterating it would read every row's audio bytes.
    if hasattr(records, "label_sets"):
        return records.label_sets()
    return (record.labels for record in records)


def _check_known_labels(records: Sequence[AudioRecord], label2id: dict[str, int]) -> None:
    unknown = sorted({label for labels in _label_sets(records) for label in labels if label not in label2id})
    if unknown:
        raise ValueError(
            f"{len(unknown)} label(s) of the data are not in label2id, e.g. {unknown[:5]}; build label2id with "
            "build_label_vocabulary over all splits, or fix the labels."
        )


# ----------------------------------------------------------------------------------------------------------------------
# Readers


def read_audio_records(
    source: str | os.PathLike,
    *,
    split: str | None = None,
    labels_from_folders: bool = False,
    path_column: str = "path",
    label_column: str | None = "label",
    audio_column: str = "audio",
    id_column: str | None = None,
    streaming: bool = False,
) -> Sequence[AudioRecord] | HuggingFaceAudioRecordStream:
    """
    Read the clips of a data source (see the module docstring for the formats).

    Args:
        source: a folder of audio files, a `.csv` / `.jsonl` manifest, a `datasets.save_to_disk` folder, or
            `hf:<dataset name>`.
        split: split of `hf:` datasets (required), or of a saved dataset dict (required when it holds several).
        labels_from_folders: folders only: label each file with the top-level sub-folder it sits in. Hidden files
            and folders and `__MACOSX` folders are not read.
        path_column, label_column: manifest columns (`label_column=None` ignores labels).
        audio_column, label_column, id_column: dataset columns; clip ids default to `<source>[<row>]` (plus the
            file name stored in the audio column, if any). Streams need `id_column` for stable ids.
        streaming: datasets only: read rows lazily (returns a [`HuggingFaceAudioRecordStream`]).

    Returns:
        A list of [`AudioRecord`] (folders, manifests), a lazy sequence (`HuggingFaceAudioRecords`) or a stream.
    """
    text = os.fspath(source)
    if text.startswith(HUB_PREFIX):
        return _read_hf_dataset(text, split, audio_column, label_column, id_column, streaming)
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(
            f"Data source {text!r} does not exist. Give a folder of audio files, a .csv/.jsonl manifest, a "
            f"datasets.save_to_disk folder, or '{HUB_PREFIX}<name>' for a Hugging Face Hub dataset."
        )
    if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        return _read_hf_dataset(text, split, audio_column, label_column, id_column, streaming)
    if streaming:
        raise ValueError(f"streaming=True is for Hugging Face datasets; {text!r} is a folder or manifest.")
    if path.is_dir():
        return _read_folder(path, labels_from_folders)
    if path.suffix.lower() == ".csv":
        return _read_csv_manifest(path, path_column, label_column)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl_manifest(path, path_column, label_column)
    raise ValueError(f"Cannot read {text!r}: expected a folder, a .csv or .jsonl manifest, or a saved dataset.")


def _is_metadata(relative: Path) -> bool:
    # Hidden files and folders (e.g. macOS's "._clip.wav" resource forks, ".git") and the "__MACOSX" folder of zip
    # archives made on macOS hold no audio, though their names may end in .wav.
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _read_folder(root: Path, labels_from_folders: bool) -> list[AudioRecord]:
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS and not _is_metadata(p.relative_to(root)) and p.is_file()
    )
    if not files:
        raise ValueError(f"No audio files ({', '.join(AUDIO_EXTENSIONS)}) found under {root}.")
    records = []
    for file in files:
        labels: tuple[str, ...] = ()
        if labels_from_folders:
            parts = file.relative_to(root).parts
            if len(parts) < 2:
                raise ValueError(
                    f"{file} lies directly in {root}; with labels_from_folders every file must be inside a class "
                    "sub-folder (root/<label>/...). Move it, or read the folder without labels."
                )
            labels = (parts[0],)
        records.append(AudioRecord(id=file.resolve().as_posix(), path=os.fspath(file), labels=labels))
    return records


def _manifest_record(row: dict, manifest: Path, where: str, path_column: str, label_column: str | None) -> AudioRecord:
    value = row.get(path_column)
    if value is None or str(value).strip() == "":
        raise ValueError(f"{where}: empty '{path_column}' value.")
    file = Path(str(value).strip())
    if not file.is_absolute():
        file = manifest.parent / file
    labels = parse_labels(row.get(label_column), where) if label_column else ()
    return AudioRecord(id=file.resolve().as_posix(), path=os.fspath(file), labels=labels)


# utf-8-sig: spreadsheet exports start with a byte-order mark, which would otherwise stick to the first column name
# (or make a JSON line invalid). skipinitialspace: hand-written "path, label" rows, whose quoted cells only parse so.
MANIFEST_ENCODING = "utf-8-sig"


def csv_manifest_reader(handle: Iterable[str]) -> csv.DictReader:
    """The rows of a CSV manifest opened with `newline=""` and [`MANIFEST_ENCODING`], as dicts."""
    return csv.DictReader(handle, skipinitialspace=True)


class _NumberedLines:
    """The lines of a file as the csv module reads them, counting them and noting the first that is not blank."""

    def __init__(self, handle: Iterable[str]) -> None:
        self._lines = iter(handle)
        self.number = 0
        self.first_filled: int | None = None

    def __iter__(self) -> _NumberedLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        if self.first_filled is None and line.strip():
            self.first_filled = self.number
        return line


def _read_csv_manifest(manifest: Path, path_column: str, label_column: str | None) -> list[AudioRecord]:
    with open(manifest, newline="", encoding=MANIFEST_ENCODING) as handle:
        lines = _NumberedLines(handle)
        reader = csv_manifest_reader(lines)
        columns = reader.fieldnames or []
        if path_column not in columns:
            raise ValueError(f"{manifest} has no '{path_column}' column (columns: {columns}).")
        if label_column and label_column not in columns:
            label_column = None  # an unlabelled manifest
        # Line numbers of the file, not row counts: blank lines are skipped and quoted cells may span lines (a row
        # that does is named by its first and last lines).
        records, places = [], []
        lines.first_filled = None
        for row in reader:
            first_line, last_line = lines.first_filled, lines.number
            lines.first_filled = None
            where = f"{first_line}" if first_line == last_line else f"{first_line}-{last_line}"
            places.append(f"{manifest}:{where}")
            # csv.DictReader's key None holds the cells past the header's last column (empty ones, a trailing comma,
            # lose nothing).
            if any(str(cell).strip() for cell in row.get(None) or ()):
                raise ValueError(
                    f"{places[-1]}: {len(row[None])} more cell(s) than the header has columns ({row[None]}), which "
                    f"would be dropped. Put several labels in one cell separated by ';' (e.g. \"Dog;Bark\"), and "
                    "quote cells that contain commas."
                )
            records.append(_manifest_record(row, manifest, places[-1], path_column, label_column))
    return _checked_manifest_records(manifest, records, places)


def _checked_manifest_records(manifest: Path, records: list[AudioRecord], places: list[str]) -> list[AudioRecord]:
    """
    Refuses an empty manifest and one that lists a file twice: the copies would be drawn twice as often, could land on
    both sides of a train/test split, and two different label cells for one file leave its labels undecided.
    """
    if not records:
        raise ValueError(f"{manifest} lists no clips.")
    first_place: dict[str, str] = {}
    for record, place in zip(records, places):
        if record.id in first_place:
            raise ValueError(
                f"{place}: {record.path} is already listed at {first_place[record.id]}. List each file once, with "
                "all its labels in one cell (separated by ';'); to draw some clips more often, use weighted or "
                "balanced sampling instead of repeating rows."
            )
        first_place[record.id] = place
    return records


def _read_jsonl_manifest(manifest: Path, path_column: str, label_column: str | None) -> list[AudioRecord]:
    records, places = [], []
    with open(manifest, encoding=MANIFEST_ENCODING) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{manifest}:{line_number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error}).") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: each line must be a JSON object with a '{path_column}' key.")
            if path_column not in row:
                raise ValueError(f"{where}: no '{path_column}' key (keys: {sorted(row)}).")
            records.append(_manifest_record(row, manifest, where, path_column, label_column))
            places.append(where)
    return _checked_manifest_records(manifest, records, places)


def _open_hf_dataset(source: str, split: str | None, streaming: bool) -> Any:
    import datasets

    if source.startswith(HUB_PREFIX):
        name = source[len(HUB_PREFIX) :]
        if split is None:
            raise ValueError(f"{source}: give the split to read (e.g. split='train').")
        return datasets.load_dataset(name, split=split, streaming=streaming)
    dataset = datasets.load_from_disk(source)
    if isinstance(dataset, datasets.DatasetDict):
        if split is None and len(dataset) == 1:
            split = next(iter(dataset))
        if split is None or split not in dataset:
            raise ValueError(f"{source} holds the splits {sorted(dataset)}; choose one with split=..., got {split!r}.")
        dataset = dataset[split]
    if streaming:
        # Several shards so that data-loader workers can share the stream.
        dataset = dataset.to_iterable_dataset(num_shards=max(1, min(len(dataset), 64)))
    return dataset


def _read_hf_dataset(
    source: str,
    split: str | None,
    audio_column: str,
    label_column: str | None,
    id_column: str | None,
    streaming: bool,
) -> HuggingFaceAudioRecords | HuggingFaceAudioRecordStream:
    import datasets

    dataset = _open_hf_dataset(source, split, streaming)
    features = dataset.features
    if features is not None:
        columns = list(features)
        if audio_column not in columns:
            raise ValueError(f"{source} has no audio column '{audio_column}' (columns: {columns}); set audio_column.")
        if id_column is not None and id_column not in columns:
            raise ValueError(f"{source} has no id column '{id_column}' (columns: {columns}).")
        if label_column is not None and label_column not in columns:
            label_column = None
        if isinstance(features[audio_column], datasets.Audio):
            # Keep the encoded bytes; they are decoded in the dataset (soundfile), where failures are skipped.
            dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    label_feature = features[label_column] if features is not None and label_column is not None else None
    rows = _RowConverter(source, audio_column, label_column, label_feature, id_column)
    if streaming:
        return HuggingFaceAudioRecordStream(dataset, rows)
    return HuggingFaceAudioRecords(dataset, rows)


class _RowConverter:
    """Turns a datasets row into an [`AudioRecord`] without decoding its audio."""

    def __init__(self, source: str, audio_column: str, label_column: str | None, label_feature: Any, id_column):
        self.source = source
        self.audio_column = audio_column
        self.label_column = label_column
        self.label_feature = label_feature
        self.id_column = id_column

    def labels(self, value: Any, where: str) -> tuple[str, ...]:
        feature = self.label_feature
        inner = getattr(feature, "feature", None)  # Sequence / List features
        if hasattr(feature, "int2str") and isinstance(value, (int, np.integer)):
            if value == -1:  # datasets' ClassLabel value for a missing label
                return ()
            return (feature.int2str(int(value)),)
        if hasattr(inner, "int2str") and isinstance(value, (list, tuple)):
            return tuple(inner.int2str(int(v)) for v in value)
        return parse_labels(value, where)

    def __call__(self, row: dict, index: int) -> AudioRecord:
        where = f"{self.source}[{index}]"
        value = row[self.audio_column]
        labels = self.labels(row.get(self.label_column), where) if self.label_column else ()
        stored_path = value.get("path") if isinstance(value, dict) else value if isinstance(value, str) else None
        # Stored file names need not be unique (many datasets store bare names), so the row number is kept in ids.
        if self.id_column is not None:
            clip_id = str(row[self.id_column])
        elif stored_path:
            clip_id = f"{where}:{stored_path}"
        else:
            clip_id = where
        if isinstance(value, str):
            return AudioRecord(id=clip_id, path=value, labels=labels)
        if isinstance(value, dict) and value.get("array") is not None:
            if value.get("sampling_rate") is None:
                raise ValueError(f"{where}: the audio dict has an 'array' but no 'sampling_rate'.")
            array = np.asarray(value["array"])
            return AudioRecord(id=clip_id, array=array, sampling_rate=int(value["sampling_rate"]), labels=labels)
        if isinstance(value, dict) and value.get("bytes") is not None:
            return AudioRecord(id=clip_id, encoded=value["bytes"], labels=labels)
        if isinstance(value, dict) and value.get("path"):
            return AudioRecord(id=clip_id, path=value["path"], labels=labels)
        if hasattr(value, "get_all_samples"):  # a torchcodec decoder (datasets decoding is on)
            samples = value.get_all_samples()
            array = samples.data.detach().cpu().float().numpy()
            return AudioRecord(id=clip_id, array=array, sampling_rate=int(samples.sample_rate), labels=labels)
        raise ValueError(
            f"{where}: cannot read audio column '{self.audio_column}' of type {type(value).__name__}; expected a "
            "datasets.Audio value, a dict with 'array' and 'sampling_rate', or a file path."
        )


class HuggingFaceAudioRecords(Sequence):
    """A `datasets.Dataset` seen as a sequence of [`AudioRecord`]; rows are read (not decoded) on access."""

    def __init__(self, dataset: Any, rows: _RowConverter):
        self.dataset = dataset
        self.rows = rows

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> AudioRecord:
        if not 0 <= index < len(self.dataset):
            raise IndexError(index)
        return self.rows(self.dataset[int(index)], int(index))

    def label_sets(self) -> list[tuple[str, ...]]:
        """The labels of every row, read from the label column alone (no audio is touched)."""
        if self.rows.label_column is None:
            return [() for _ in range(len(self))]
        column = self.dataset[self.rows.label_column]
        return [self.rows.labels(value, f"{self.rows.source}[{i}]") for i, value in enumerate(column)]


class HuggingFaceAudioRecordStream:
    """A streaming `datasets.IterableDataset` seen as an iterable of [`AudioRecord`]."""

    def __init__(self, dataset: Any, rows: _RowConverter):
        self.dataset = dataset
        self.rows = rows

    def __iter__(self) -> Iterator[AudioRecord]:
        for index, row in enumerate(self.dataset):
            yield self.rows(row, index)


# ----------------------------------------------------------------------------------------------------------------------
# Decoding


_downmix_lock = threading.Lock()
_downmix_logged: set[str] = set()


def _to_mono(array: np.ndarray, clip_id: str) -> np.ndarray:
    if array.ndim == 1:
        return array
    if array.ndim != 2 or array.shape[0] > array.shape[1]:
        raise AudioDecodeError(
            f"Cannot use the audio array of '{clip_id}': expected (samples,) or (channels, samples), got shape "
            f"{array.shape}",
            path=clip_id,
            reason="bad array shape",
        )
    if array.shape[0] == 1:  # soundfile decodes mono as (1, samples): nothing to downmix, nothing to log
        return array[0]
    with _downmix_lock:
        first_time = clip_id not in _downmix_logged and len(_downmix_logged) < 100_000
        _downmix_logged.add(clip_id)
    if first_time:
        logger.info("Downmixed %d-channel audio to mono (mean over channels): %s", array.shape[0], clip_id)
    return array.mean(axis=0, dtype=np.float32)


def load_record_waveform(record: AudioRecord, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Decode a record to float32 mono at `sampling_rate` (downmixed and resampled as needed)."""
    if record.path is not None:
        return load_audio(record.path, target_sampling_rate=sampling_rate)
    if record.encoded is not None:
        soundfile = _load_soundfile()
        if soundfile is None:
            raise ImportError(
                f"Decoding the encoded audio of '{record.id}' (a datasets.Audio column) needs soundfile: "
                "`pip install 'beats_hf[audio]'` (or `pip install soundfile`)."
            )
        try:
            data, rate = soundfile.read(io.BytesIO(record.encoded), dtype="float32", always_2d=True)
        except Exception as error:  # libsndfile raises its own error types
            raise AudioDecodeError(
                f"Cannot decode the audio of '{record.id}': {error}", path=record.id, reason=str(error)
            ) from None
        array, source_rate = np.ascontiguousarray(data.T), int(rate)
    elif record.array is not None:
        array, source_rate = np.asarray(record.array), record.sampling_rate
        if not np.issubdtype(array.dtype, np.floating):
            # Not an unreadable clip but a data format: stop rather than skip every clip, or use PCM 32768x too loud.
            raise ValueError(
                f"The audio array of '{record.id}' has dtype {array.dtype}; BEATs expects float samples in [-1, 1]. "
                "Convert integer PCM first, e.g. `x.astype(np.float32) / 32768` for int16 (`/ 2**31` for int32)."
            )
        array = array.astype(np.float32, copy=False)
        if source_rate is None or source_rate <= 0:
            raise AudioDecodeError(f"'{record.id}' has no valid sampling rate", path=record.id, reason="no rate")
    else:
        raise AudioDecodeError(f"'{record.id}' holds no audio", path=record.id, reason="no audio")
    if array.size == 0 or not np.isfinite(array).all():
        raise AudioDecodeError(
            f"'{record.id}' is empty or holds NaN/inf samples", path=record.id, reason="empty or non-finite"
        )
    mono = _to_mono(array, record.id)
    if source_rate != sampling_rate:
        mono = resample(mono, source_rate, sampling_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


# ----------------------------------------------------------------------------------------------------------------------
# Datasets


def _item_rng(seed: int, epoch: int, index: int, worker: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index, worker])


class _ClipMaker:
    """Decode, check and crop one record; shared by the map-style and the streaming dataset."""

    def __init__(self, max_seconds: float, crop: str, label2id: dict[str, int] | None):
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}.")
        max_samples = round(max_seconds * SAMPLING_RATE)
        if max_samples < MIN_CLIP_SAMPLES:
            raise ValueError(f"max_seconds ({max_seconds}) must be at least 0.175 s, one BEATs patch.")
        self.max_samples = max_samples
        self.crop = crop
        self.label2id = label2id
        self.num_skipped = 0
        self.num_truncated = 0
        self._warned_truncation = False

    def __call__(self, record: AudioRecord, rng: np.random.Generator) -> dict[str, Any] | None:
        try:
            waveform = load_record_waveform(record)
        except AudioDecodeError as error:
            self.num_skipped += 1
            logger.warning("Skipping unreadable clip %s: %s", record.id, error)
            return None
        if waveform.shape[0] < MIN_CLIP_SAMPLES:
            self.num_skipped += 1
            logger.warning(
                "Skipping clip %s: %.3f s is shorter than one BEATs patch (0.175 s).",
                record.id,
                waveform.shape[0] / SAMPLING_RATE,
            )
            return None
        start = 0
        truncated = waveform.shape[0] > self.max_samples
        if truncated:
            self.num_truncated += 1
            if self.crop == "random":  # an excerpt of a longer clip: cropping by design, not worth a warning
                start = int(rng.integers(0, waveform.shape[0] - self.max_samples + 1))
            elif not self._warned_truncation:
                self._warned_truncation = True
                self._warn_truncation(record, waveform.shape[0])
        waveform = waveform[start : start + self.max_samples]
        labels: list[str] | list[int] = list(record.labels)
        if self.label2id is not None:
            labels = [self.label2id[label] for label in record.labels]
        return {
            "waveform": waveform,
            "labels": labels,
            "id": record.id,
            "crop_start": start,
            "sample_seed": int(rng.integers(0, 2**63 - 1)),
            "truncated": truncated,
        }

    def _warn_truncation(self, record: AudioRecord, num_samples: int) -> None:
        limit = self.max_samples / SAMPLING_RATE
        logger.warning(
            "Clip %s is %.2f s long, longer than max_seconds=%g: only its first %g s are used (crop='start'). Raise "
            "the limit to use whole clips (fine-tuning: eval_max_seconds; training/evaluate.py: --max-seconds; "
            "elsewhere: max_seconds). Warned once per dataset and process (each data-loader worker is a process); "
            "later cuts are not logged but counted (num_truncated; num_truncated_clips of each collated batch).",
            record.id,
            num_samples / SAMPLING_RATE,
            limit,
            limit,
        )


class AudioClipDataset(torch.utils.data.Dataset):
    """
    Map-style dataset of training clips. Item `i` is a dict with `waveform` (float32 16 kHz mono, at most
    `max_seconds` long), `labels` (label strings, or ids when `label2id` is given), `id`, `crop_start` (in samples),
    `sample_seed` (drawn from `(seed, epoch, i)`, for the collator's masks) and `truncated` (the clip was longer
    than `max_seconds` and was cut), or `None` when the clip cannot be used (the reason is logged with the clip's
    name and `num_skipped` counts it in this process).

    Clips longer than `max_seconds` are cut: `crop="random"` takes a random excerpt (training, by design), and
    `crop="start"` keeps the start (evaluation) and logs a warning naming the first clip it cuts, its length and the
    limit. Both count the cut in `num_truncated`.

    Call `set_epoch(epoch)` before each epoch: random crops change with the epoch and nothing else.
    """

    def __init__(
        self,
        records: Sequence[AudioRecord],
        max_seconds: float = 10.0,
        crop: str = "random",
        seed: int = 0,
        label2id: dict[str, int] | None = None,
    ):
        if len(records) == 0:
            raise ValueError("AudioClipDataset needs at least one record.")
        if label2id is not None:
            _check_known_labels(records, label2id)
        self.records = records
        self.seed = seed
        self.epoch = 0
        self.clip_maker = _ClipMaker(max_seconds, crop, label2id)

    @property
    def num_skipped(self) -> int:
        """Unusable clips met by this process's copy of the dataset (see `num_truncated` for the scope)."""
        return self.clip_maker.num_skipped

    @property
    def num_truncated(self) -> int:
        """
        Items cut to `max_seconds` by this process's copy of the dataset, random crops included; every read counts
        (a clip read in two passes counts twice). Data-loader workers (`num_workers > 0`) read with copies of their
        own, whose counts never reach this one: there, the warning (one per worker, per pass unless the workers
        persist) and the collators' per-batch `num_truncated_clips` are the signals that reach the main process.
        """
        return self.clip_maker.num_truncated

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        return self.clip_maker(self.records[index], _item_rng(self.seed, self.epoch, int(index)))


class StreamingAudioClipDataset(torch.utils.data.IterableDataset):
    """
    Iterable counterpart of [`AudioClipDataset`] over a [`HuggingFaceAudioRecordStream`], with the same items.
    Rows are shuffled with a buffer of `shuffle_buffer_size` (0 = stream order), reseeded with `set_epoch`; with
    several data-loader workers the dataset's shards are split between them by `datasets`. Cut clips are warned
    about and counted as in [`AudioClipDataset`] (`num_truncated`, with the same per-process scope).
    """

    def __init__(
        self,
        stream: HuggingFaceAudioRecordStream,
        max_seconds: float = 10.0,
        crop: str = "random",
        seed: int = 0,
        label2id: dict[str, int] | None = None,
        shuffle_buffer_size: int = 1000,
    ):
        super().__init__()
        self.stream = stream
        self.seed = seed
        self.epoch = 0
        self.shuffle_buffer_size = shuffle_buffer_size
        self.clip_maker = _ClipMaker(max_seconds, crop, label2id)

    @property
    def num_skipped(self) -> int:
        """Unusable clips met by this process's copy of the dataset (see [`AudioClipDataset.num_truncated`])."""
        return self.clip_maker.num_skipped

    @property
    def num_truncated(self) -> int:
        """Items cut to `max_seconds` by this process's copy (see [`AudioClipDataset.num_truncated`])."""
        return self.clip_maker.num_truncated

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        dataset = self.stream.dataset
        if self.shuffle_buffer_size > 0:
            dataset = dataset.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer_size)
        dataset.set_epoch(self.epoch)
        worker = torch.utils.data.get_worker_info()
        worker_id = 0 if worker is None else worker.id
        for position, row in enumerate(dataset):
            record = self.stream.rows(row, position)
            label2id = self.clip_maker.label2id
            if label2id is not None and any(label not in label2id for label in record.labels):
                raise ValueError(f"{record.id}: labels {record.labels} are not all in label2id.")
            yield self.clip_maker(record, _item_rng(self.seed, self.epoch, position, worker_id))


def build_audio_dataset(
    source: str | os.PathLike,
    *,
    max_seconds: float = 10.0,
    crop: str = "random",
    seed: int = 0,
    label2id: dict[str, int] | None = None,
    split: str | None = None,
    streaming: bool = False,
    shuffle_buffer_size: int = 1000,
    **reader_kwargs: Any,
) -> AudioClipDataset | StreamingAudioClipDataset:
    """[`read_audio_records`] followed by the matching dataset class (streaming datasets are iterable)."""
    records = read_audio_records(source, split=split, streaming=streaming, **reader_kwargs)
    if isinstance(records, HuggingFaceAudioRecordStream):
        return StreamingAudioClipDataset(records, max_seconds, crop, seed, label2id, shuffle_buffer_size)
    return AudioClipDataset(records, max_seconds, crop, seed, label2id)


__all__ = [
    "AUDIO_EXTENSIONS",
    "MIN_CLIP_SAMPLES",
    "SAMPLING_RATE",
    "AudioClipDataset",
    "AudioRecord",
    "HuggingFaceAudioRecordStream",
    "HuggingFaceAudioRecords",
    "StreamingAudioClipDataset",
    "build_audio_dataset",
    "build_label_vocabulary",
    "load_record_waveform",
    "parse_labels",
    "read_audio_records",
]
