# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Training samplers: a reproducible shuffle, AudioSet-style weighted sampling, and reference-class balancing.

All samplers draw each epoch from a generator seeded with `(seed, epoch)` and expose `set_epoch` (which accelerate's
prepared data loaders call), so that a resumed run sees exactly the order an uninterrupted run would have seen.

- [`EpochShuffleSampler`]: a random permutation per epoch.
- [`EpochWeightedSampler`]: a `WeightedRandomSampler` (with replacement) re-seeded per epoch.
- [`ShardSampler`]: one process's share of an evaluation set, in order, with no item repeated or left out.
- [`label_frequency_weights`]: AudioSet-style per-clip weights, `sum over the clip's labels of 1 / label frequency`.
- [`reference_balanced_weights`]: weights that give every class a fixed fraction of a reference class per epoch
  (the paper's KS1 footnote: each class is balanced to 50% of the size of the "unknown" class).

Choosing which clips train and which validate, on top of `beats_hf.data` records:

- [`split_by_fraction`]: a seeded, label-stratified hold-out split.
- [`fold_assignments`] and [`split_by_fold`]: cross-validation folds (ESC-50, IEMOCAP) from a manifest or dataset
  column, e.g. `fold`.
- [`record_label_sets`], [`label_id_sets`]: the labels of every record, without decoding audio.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler, WeightedRandomSampler

from .data import MANIFEST_ENCODING, csv_manifest_reader

logger = logging.getLogger(__name__)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # Distinct, well-mixed streams for every (seed, epoch) pair; torch.Generator takes one 64-bit seed.
    mixed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(mixed)


class EpochShuffleSampler(Sampler[int]):
    """A fresh random permutation of `range(num_items)` each epoch, determined by `(seed, epoch)`."""

    def __init__(self, num_items: int, seed: int = 0):
        if num_items <= 0:
            raise ValueError(f"cannot sample from an empty dataset (num_items={num_items})")
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self) -> Iterator[int]:
        yield from torch.randperm(self.num_items, generator=_epoch_generator(self.seed, self.epoch)).tolist()


class ShardSampler(Sampler[int]):
    """
    Items `process_index, process_index + num_processes, ...` of `range(num_items)`: every item goes to exactly one
    process. A distributed sampler instead repeats items to give every process the same number of batches, which
    per-batch gathers need but which miscounts as soon as a collator drops an unreadable clip; a loop over a shard
    gathers once, at the end (`training_utils.gather_uneven`).
    """

    def __init__(self, num_items: int, process_index: int = 0, num_processes: int = 1):
        if num_processes < 1 or not 0 <= process_index < num_processes:
            raise ValueError(f"process_index must be in [0, {num_processes}), got {process_index}")
        self.num_items = num_items
        self.process_index = process_index
        self.num_processes = num_processes

    def __len__(self) -> int:
        return len(range(self.process_index, self.num_items, self.num_processes))

    def __iter__(self) -> Iterator[int]:
        yield from range(self.process_index, self.num_items, self.num_processes)


class EpochWeightedSampler(WeightedRandomSampler):
    """
    `num_samples` draws with replacement, with probability proportional to `weights`, re-seeded from `(seed, epoch)`
    every epoch.

    A clip drawn several times in one epoch is the same dataset item each time: [`beats_hf.data.AudioClipDataset`]
    derives an item's random crop and `sample_seed` from `(seed, epoch, index)` alone (what makes resumes exact), so
    its repeats share one crop; the batch augmentations (roll, SpecAugment, mixup) still differ between them.
    """

    def __init__(self, weights: Sequence[float] | np.ndarray | torch.Tensor, num_samples: int, seed: int = 0):
        weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if weights.dim() != 1 or weights.numel() == 0:
            raise ValueError(f"weights must be a non-empty 1-D sequence, got shape {tuple(weights.shape)}")
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        super().__init__(weights, num_samples, replacement=True)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        self.generator = _epoch_generator(self.seed, self.epoch)
        yield from super().__iter__()


def label_frequency_weights(label_sets: Sequence[Sequence[int]], num_labels: int) -> np.ndarray:
    """
    AudioSet-style sampling weights: clip `i` gets `sum over its labels l of 1 / count(l)`, where `count(l)` is the
    number of training clips carrying label `l`. Rare labels are drawn as often as frequent ones on average, and a
    clip with several rare labels more often still. Clips without labels get weight 0: they are never drawn, and a
    warning says how many there are (a `ValueError` if it is every clip).

    Args:
        label_sets: The class indices of each clip.
        num_labels: Number of classes.

    Returns:
        `(num_clips,)` float64 weights (unnormalised).
    """
    counts = np.zeros(num_labels, dtype=np.float64)
    for index, labels in enumerate(label_sets):
        # A label listed twice for one clip is still one clip carrying it (the weights below use the set too).
        for label in set(labels):
            if not 0 <= label < num_labels:
                raise ValueError(f"clip {index} has label {label}, outside [0, {num_labels})")
            counts[label] += 1
    inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    weights = np.array([sum(inverse[label] for label in set(labels)) for labels in label_sets], dtype=np.float64)
    if weights.size == 0 or weights.sum() <= 0:
        raise ValueError("no clip carries a label: cannot build sampling weights")
    unlabelled = int((weights == 0).sum())
    if unlabelled:
        logger.warning("%d of %d clips carry no label: weighted sampling never draws them", unlabelled, len(weights))
    return weights


def reference_balanced_weights(
    labels: Sequence[int], reference_label: int, fraction: float = 0.5
) -> tuple[np.ndarray, int]:
    """
    Per-clip weights and an epoch size such that, in expectation, every class other than `reference_label` is drawn
    `fraction * count(reference_label)` times per epoch and the reference class `count(reference_label)` times.

    This is the paper's KS1 setting (Table 4 footnote: "we balance each class to 50% of the size of the unknown class
    for each training epoch"), with `reference_label` = the index of `_unknown_` and `fraction` = 0.5. Use the result
    with [`EpochWeightedSampler`] (draws with replacement, so small classes such as `_silence_` are repeated).

    Returns:
        `(num_clips,)` float64 weights and the number of draws per epoch.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty sequence of class indices (one per clip)")
    if fraction <= 0:
        raise ValueError(f"fraction must be positive, got {fraction}")
    classes, counts = np.unique(labels, return_counts=True)
    count_of = dict(zip(classes.tolist(), counts.tolist()))
    if reference_label not in count_of:
        raise ValueError(f"reference label {reference_label} has no clips; classes present: {sorted(count_of)}")
    reference_count = count_of[reference_label]
    target = {c: (reference_count if c == reference_label else fraction * reference_count) for c in count_of}
    weights = np.array([target[c] / count_of[c] for c in labels.tolist()], dtype=np.float64)
    num_samples = int(round(sum(target.values())))
    return weights, num_samples


# ----------------------------------------------------------------------------------------------------------------------
# Which clips train and which validate


class RecordSubset(Sequence):
    """A lazy view of some records of a sequence (a list, or a Hugging Face dataset read row by row)."""

    def __init__(self, records: Sequence, indices: Sequence[int]):
        self.records = records
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.records[self.indices[index]]

    def label_sets(self) -> list[tuple[str, ...]]:
        """The labels of every record of the view (from the parent's label column when it has one)."""
        parent = record_label_sets(self.records)
        return [parent[i] for i in self.indices]


def _subset(records: Sequence, indices: Sequence[int]) -> Sequence:
    if isinstance(records, list):
        return [records[i] for i in indices]
    return RecordSubset(records, indices)


def record_label_sets(records: Sequence) -> list[tuple[str, ...]]:
    """The label names of every record; uses `records.label_sets()` when available (no audio column is read)."""
    if hasattr(records, "label_sets"):
        return list(records.label_sets())
    return [tuple(record.labels) for record in records]


def label_id_sets(records: Sequence, label2id: dict[str, int]) -> list[list[int]]:
    """The label ids of every record; an unknown label is an error naming it."""
    sets = []
    for index, labels in enumerate(record_label_sets(records)):
        unknown = [label for label in labels if label not in label2id]
        if unknown:
            raise ValueError(f"record {index} has labels {unknown} that are not in label2id")
        sets.append([label2id[label] for label in labels])
    return sets


def split_by_fraction(records: Sequence, fraction: float, seed: int = 0) -> tuple[Sequence, Sequence]:
    """
    Hold out `round(fraction * len(records))` of the records, stratified by label set (each group of records with the
    same labels contributes `fraction * size` of its records, rounded down or up so that the total comes out right;
    which groups round up and which records are held out are chosen by `seed`), and keep the rest for training.

    Returns:
        `(train, held_out)`, both in the original order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, labels in enumerate(record_label_sets(records)):
        groups.setdefault(tuple(sorted(labels)), []).append(index)
    rng = np.random.default_rng(seed)
    keys = sorted(groups)
    # Rounding each group on its own would lose the fraction when groups are small (multi-label data, where most
    # label sets are rare: 10% asked, 3% held out): the groups with the largest remainders round up instead.
    quotas = np.array([fraction * len(groups[key]) for key in keys])
    counts = np.floor(quotas).astype(np.int64)
    extra = int(round(fraction * len(records))) - int(counts.sum())
    counts[np.lexsort((rng.random(len(keys)), counts - quotas))[:extra]] += 1
    held_out: set[int] = set()
    for key, count in zip(keys, counts):
        held_out.update(int(i) for i in rng.permutation(groups[key])[:count])
    if not held_out or len(held_out) == len(records):
        raise ValueError(
            f"a validation fraction of {fraction} of {len(records)} records leaves one side empty; change it"
        )
    train = [i for i in range(len(records)) if i not in held_out]
    return _subset(records, train), _subset(records, sorted(held_out))


def fold_assignments(
    source: str | os.PathLike, records: Sequence, column: str = "fold", path_column: str = "path"
) -> list[Any]:
    """
    The value of `column` for every record of `source`, in record order: read from a `.csv` / `.jsonl` manifest
    (matched by resolved file path, as `beats_hf.data` names records) or from a Hugging Face dataset's column.
    """
    if hasattr(records, "dataset"):
        dataset = records.dataset
        if column not in dataset.column_names:
            raise ValueError(f"{source} has no '{column}' column (columns: {dataset.column_names})")
        return list(dataset[column])
    path = Path(source)
    # Read as beats_hf.data reads manifests, so that the paths match its records'.
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding=MANIFEST_ENCODING) as handle:
            rows = list(csv_manifest_reader(handle))
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        with open(path, encoding=MANIFEST_ENCODING) as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    else:
        raise ValueError(f"folds are read from a .csv/.jsonl manifest or a dataset column; {source} is neither")
    if rows and column not in rows[0]:
        raise ValueError(f"{source} has no '{column}' column (columns: {sorted(rows[0])})")
    value_of: dict[str, Any] = {}
    for row in rows:
        file = Path(str(row[path_column]).strip())
        file = file if file.is_absolute() else path.parent / file
        value_of[file.resolve().as_posix()] = row[column]
    missing = [record.id for record in records if record.id not in value_of]
    if missing:
        raise ValueError(f"{len(missing)} clip(s) have no '{column}' value in {source}, e.g. {missing[:3]}")
    return [value_of[record.id] for record in records]


def split_by_fold(records: Sequence, folds: Sequence[Any], fold: int | str) -> tuple[Sequence, Sequence]:
    """`(training records, records of fold `fold`)`; fold values are compared as strings (CSV cells are text)."""
    if len(folds) != len(records):
        raise ValueError(f"{len(folds)} fold values for {len(records)} records")
    chosen = [i for i, value in enumerate(folds) if str(value).strip() == str(fold)]
    if not chosen:
        raise ValueError(f"no clip is in fold {fold!r}; folds present: {sorted({str(v) for v in folds})}")
    if len(chosen) == len(records):
        raise ValueError(f"every clip is in fold {fold!r}: nothing left to train on")
    chosen_set = set(chosen)
    return _subset(records, [i for i in range(len(records)) if i not in chosen_set]), _subset(records, chosen)


__all__ = [
    "EpochShuffleSampler",
    "EpochWeightedSampler",
    "RecordSubset",
    "ShardSampler",
    "fold_assignments",
    "label_frequency_weights",
    "label_id_sets",
    "record_label_sets",
    "reference_balanced_weights",
    "split_by_fold",
    "split_by_fraction",
]
