# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Fine-tune a pre-trained BEATs model for audio classification (paper section 3.3.3, appendix Table 4).

    accelerate launch training/finetune.py --config training/recipes/esc50.yaml --model runs/iter3/encoder
    python training/finetune.py --config training/recipes/synthetic.yaml --model runs/tiny/encoder   # CPU demo
    python training/finetune.py --config ... --resume latest                                          # continue exactly

`--model` is any BEATs folder: a pre-trained encoder (`BeatsModel`), a masked-audio-modelling model
(`BeatsForMaskedAudioModeling`, whose label predictor is dropped), a converted official checkpoint, or a classifier
(its head is replaced). A fresh linear head is put on the encoder: per-patch scores averaged over the real patches.

Augmentations (roll -> mixup -> SpecAugment) run on the filter-bank batch, which is computed on the accelerator in
float32 outside autocast; the loss is computed in float32 (cross-entropy, or binary cross-entropy for multi-label
data and with mixup). A non-finite loss is skipped and counted instead of poisoning the weights.

Outputs in `output_dir`: `checkpoints/step_<n>` (Accelerate state, for `--resume`), TensorBoard logs, and `final/`
(the classifier with `id2label` and `problem_type`, and its feature extractor), which
`pipeline("audio-classification", model=".../final")` loads after `import beats_hf`; plus `final/metrics.json`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, send_to_device, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from beats_hf import BeatsConfig, BeatsFeatureExtractor, BeatsForAudioClassification
from beats_hf.augmentation import FinetuneAugmentation, classification_loss, resolve_loss_type
from beats_hf.collators import DataCollatorForAudio, compute_input_values, is_empty_batch
from beats_hf.data import AudioClipDataset, AudioRecord, read_audio_records
from beats_hf.metrics import classification_metrics
from beats_hf.sampling import (
    EpochShuffleSampler,
    EpochWeightedSampler,
    ShardSampler,
    fold_assignments,
    label_frequency_weights,
    label_id_sets,
    record_label_sets,
    reference_balanced_weights,
    split_by_fold,
    split_by_fraction,
)
from beats_hf.synthetic_sounds import generate_synthetic_dataset
from beats_hf.training_utils import (
    BOOKKEEPING_FIELDS,
    TrainState,
    any_process_empty,
    build_optimizer,
    build_scheduler,
    config_to_dict,
    destroy_process_group,
    end_trackers,
    gather_uneven,
    load_config,
    log_metrics,
    resume_training_state,
    save_training_checkpoint,
)

SAMPLING_MODES = ("shuffle", "weighted", "balanced")


@dataclass
class FinetuneConfig:
    # Model: any BEATs folder (pre-trained encoder, MAM model, converted checkpoint, classifier).
    model: str = field(default="", metadata={"help": "BEATs model folder to start from"})
    output_dir: str = "runs/finetune"
    # Data: a folder (labels = sub-folder names), a .csv/.jsonl manifest, a saved dataset, hf:<name>, or "synthetic".
    train_data: str = field(default="", metadata={"help": "training clips, or 'synthetic' for the built-in data"})
    validation_data: str | None = field(default=None, metadata={"help": "validation clips (else fold / fraction)"})
    test_data: str | None = field(default=None, metadata={"help": "clips evaluated once with the final model"})
    validation_fraction: float = field(default=0.0, metadata={"help": "hold out this fraction of train_data"})
    fold: int | None = field(default=None, metadata={"help": "cross-validation: clips of this fold validate"})
    fold_column: str = "fold"
    train_split: str | None = field(default="train", metadata={"help": "split name for datasets"})
    validation_split: str | None = "validation"
    test_split: str | None = "test"
    path_column: str = "path"
    label_column: str = "label"
    audio_column: str = "audio"
    multi_label: bool | None = field(default=None, metadata={"help": "default: true if any clip has several labels"})
    synthetic_data_dir: str = "runs/synthetic_data"
    synthetic_train_clips_per_class: int = 40
    synthetic_eval_clips_per_class: int = 10
    synthetic_seed: int = 0
    max_seconds: float = field(default=10.0, metadata={"help": "training crop length (random crops)"})
    eval_max_seconds: float | None = field(default=None, metadata={"help": "evaluation crop (from the start)"})
    fbank_mean: float | None = field(default=None, metadata={"help": "override the feature extractor's mean"})
    fbank_std: float | None = field(default=None, metadata={"help": "override the feature extractor's std"})
    num_workers: int = 2
    features_on_device: bool = field(default=True, metadata={"help": "fbank on the accelerator (fp32) or in workers"})
    # Sampling: plain shuffling, AudioSet-style weights, or every class at a fraction of a reference class (KS1).
    sampling: str = field(default="shuffle", metadata={"help": "shuffle | weighted | balanced"})
    epoch_samples: int | None = field(default=None, metadata={"help": "draws per epoch for weighted sampling"})
    balance_reference_label: str = "_unknown_"
    balance_fraction: float = 0.5
    # Optimisation (Table 4): AdamW (0.9, 0.98), weight decay 0.01, cosine schedule with warmup, layer-wise LR decay.
    learning_rate: float = 1e-4
    layer_decay: float = field(default=1.0, metadata={"help": "layer-wise learning-rate decay (1 = none)"})
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    scheduler: str = "cosine"
    warmup_steps: int = 500
    max_steps: int = 5000
    batch_size: int = field(default=16, metadata={"help": "clips per device and micro-batch"})
    eval_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = field(default=0.0, metadata={"help": "0 disables clipping (not given by the paper)"})
    loss: str = field(default="auto", metadata={"help": "auto (CE, or BCE for multi-label / mixup) | ce | bce"})
    # Model regularisation (Table 4: dropout 0.0, layer drop 0.1).
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    layerdrop: float = 0.1
    classifier_dropout: float = 0.0
    layer_wise_gradient_decay_ratio: float = field(
        default=1.0, metadata={"help": "the official GradMultiply per layer; 1 = off (layer_decay does the decay)"}
    )
    freeze_feature_encoder: bool = False
    # Augmentation (Table 4): roll, SpecAugment (max masked fraction per axis), mixup (Beta alpha).
    roll: bool = False
    spec_augment_time_ratio: float = 0.0
    spec_augment_freq_ratio: float = 0.0
    num_time_masks: int = 1
    num_freq_masks: int = 1
    mixup_alpha: float = 0.0
    mixup_prob: float = 1.0
    # Run.
    mixed_precision: str = field(default="no", metadata={"help": "no | bf16 | fp16"})
    seed: int = 0
    eval_steps: int = field(default=500, metadata={"help": "evaluate every n steps (0: only at the end)"})
    save_steps: int = field(default=1000, metadata={"help": "checkpoint every n steps (0: only at the end)"})
    save_total_limit: int = 2
    log_steps: int = 50
    log_with: str | None = "tensorboard"
    resume: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder"})
    stop_after_steps: int | None = field(default=None, metadata={"help": "checkpoint and stop at this step"})


logger = logging.getLogger("finetune")

# Settings a resumed run may change: they decide how the run is logged, checkpointed, fed and finally tested, not what
# it trains (anything else makes the resumed run a different run, refused by resume_training_state).
RESUMABLE_CHANGES = (
    *BOOKKEEPING_FIELDS,
    "features_on_device",
    "eval_steps",
    "eval_batch_size",
    "test_data",
    "test_split",
)


# ----------------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class LabelledData:
    """The records of each split, the label vocabulary, and whether clips carry several labels."""

    train: Sequence[AudioRecord]
    validation: Sequence[AudioRecord] | None
    test: Sequence[AudioRecord] | None
    label2id: dict[str, int]
    multi_label: bool


def _read(config: FinetuneConfig, source: str, split: str | None) -> Sequence[AudioRecord]:
    return read_audio_records(
        source,
        split=split,
        labels_from_folders=True,
        path_column=config.path_column,
        label_column=config.label_column,
        audio_column=config.audio_column,
    )


def prepare_data(config: FinetuneConfig) -> LabelledData:
    """Read (or generate) the splits: validation from `validation_data`, a `fold`, or a `validation_fraction`."""
    train_source, validation_source, test_source = config.train_data, config.validation_data, config.test_data
    if train_source == "synthetic":
        root = generate_synthetic_dataset(
            config.synthetic_data_dir,
            seed=config.synthetic_seed,
            clips_per_class={
                "train": config.synthetic_train_clips_per_class,
                "validation": config.synthetic_eval_clips_per_class,
                "test": config.synthetic_eval_clips_per_class,
            },
        )
        train_source = str(root / "train.csv")
        if validation_source is None and config.fold is None and config.validation_fraction == 0:
            validation_source = str(root / "validation.csv")
        test_source = test_source or str(root / "test.csv")

    train = _read(config, train_source, config.train_split)
    validation = None
    held_out_ways = [config.fold is not None, validation_source is not None, config.validation_fraction > 0]
    if sum(held_out_ways) > 1:
        raise ValueError("give only one of validation_data, fold and validation_fraction")
    if config.fold is not None:
        folds = fold_assignments(train_source, train, config.fold_column, config.path_column)
        train, validation = split_by_fold(train, folds, config.fold)
    elif validation_source is not None:
        validation = _read(config, validation_source, config.validation_split)
    elif config.validation_fraction > 0:
        train, validation = split_by_fraction(train, config.validation_fraction, config.seed)
    test = _read(config, test_source, config.test_split) if test_source else None

    # Sorted over every split, as build_label_vocabulary does, without reading audio columns of datasets.
    names = {
        label for records in (train, validation, test) if records for s in record_label_sets(records) for label in s
    }
    if not names:
        raise ValueError(f"{train_source} carries no labels: give a label column, or class sub-folders.")
    label2id = {label: index for index, label in enumerate(sorted(names))}
    # The vocabulary spans every split (the head must score each evaluated label), but a label no training clip
    # carries gets an output that is never trained: said, since its AP or accuracy then measures nothing learned.
    unseen = sorted(names - {label for labels in record_label_sets(train) for label in labels})
    if unseen:
        logger.warning(
            "%d label(s) occur only in the validation/test clips, never in training (%s%s): the classifier's outputs "
            "for them stay untrained. Add training clips with them, or drop them from the evaluation splits.",
            len(unseen),
            ", ".join(map(repr, unseen[:5])),
            ", ..." if len(unseen) > 5 else "",
        )
    multi_label = config.multi_label
    if multi_label is None:
        multi_label = any(len(labels) > 1 for labels in label_id_sets(train, label2id))
    for split, records in (("train", train), ("validation", validation), ("test", test)):
        if records:
            _check_labelled(split, records, multi_label)
    return LabelledData(train, validation, test, label2id, multi_label)


def _check_labelled(split: str, records: Sequence, multi_label: bool) -> None:
    # Checked here, before training: the collator would refuse a single-label clip without exactly one label only
    # when its batch comes, possibly hours into training, and a multi-label split in which no clip carries a label
    # (e.g. a manifest whose label column is missing or misnamed, read as unlabelled) would train on all-negative
    # targets or end the run with an undefined (NaN) mAP.
    counts = [len(labels) for labels in record_label_sets(records)]
    if multi_label:
        if not any(counts):
            raise ValueError(
                f"none of the {len(counts)} {split} clips carries a label, so they give no training signal (train) "
                "or no mAP (validation, test); check that the split's label column holds the labels (several "
                "separated by ';')."
            )
        return
    wrong = [index for index, count in enumerate(counts) if count != 1]
    if wrong:
        examples = ", ".join(f"{records[i].id!r} ({counts[i]} labels)" for i in wrong[:3])
        raise ValueError(
            f"{len(wrong)} of {len(counts)} {split} clips do not have exactly one label (e.g. {examples}); "
            "single-label classification needs one per clip. Label or remove them, or set multi_label: true."
        )


def build_train_sampler(config: FinetuneConfig, data: LabelledData) -> torch.utils.data.Sampler:
    """Shuffle, AudioSet-style weighted sampling, or reference-class balancing (KS1), all re-seeded per epoch."""
    if config.sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {config.sampling!r}")
    if config.sampling == "shuffle":
        return EpochShuffleSampler(len(data.train), seed=config.seed)
    label_sets = label_id_sets(data.train, data.label2id)
    if config.sampling == "weighted":
        weights = label_frequency_weights(label_sets, len(data.label2id))
        return EpochWeightedSampler(weights, config.epoch_samples or len(data.train), seed=config.seed)
    if data.multi_label:
        raise ValueError("sampling 'balanced' is for single-label data; use 'weighted' for multi-label data")
    if config.balance_reference_label not in data.label2id:
        raise ValueError(
            f"balance_reference_label {config.balance_reference_label!r} is not a label of the data "
            f"(labels: {sorted(data.label2id)[:10]}...)"
        )
    weights, num_samples = reference_balanced_weights(
        [labels[0] for labels in label_sets], data.label2id[config.balance_reference_label], config.balance_fraction
    )
    return EpochWeightedSampler(weights, config.epoch_samples or num_samples, seed=config.seed)


def build_loader(
    config: FinetuneConfig,
    records: Sequence[AudioRecord],
    data: LabelledData,
    feature_extractor: BeatsFeatureExtractor,
    train: bool,
    accelerator: Accelerator | None = None,
) -> DataLoader:
    """
    The training loader (to be prepared by accelerate), or an evaluation loader over this process's shard of the
    clips (not prepared: each clip is evaluated once, see `evaluate`).
    """
    max_seconds = config.max_seconds if train else (config.eval_max_seconds or config.max_seconds)
    dataset = AudioClipDataset(
        records, max_seconds, crop="random" if train else "start", seed=config.seed, label2id=data.label2id
    )
    return DataLoader(
        dataset,
        batch_size=config.batch_size if train else config.eval_batch_size,
        sampler=build_train_sampler(config, data)
        if train
        else ShardSampler(len(dataset), accelerator.process_index, accelerator.num_processes)
        if accelerator is not None
        else None,
        collate_fn=DataCollatorForAudio(
            feature_extractor, len(data.label2id), data.multi_label, return_waveforms=config.features_on_device
        ),
        num_workers=config.num_workers,
        drop_last=train,
        # A private generator: creating iterators must not consume the global RNG (dropout, layer drop), so that a
        # resumed run draws exactly what an uninterrupted one does.
        generator=torch.Generator().manual_seed(config.seed),
        persistent_workers=False,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Model


def build_classifier(config: FinetuneConfig, data: LabelledData) -> BeatsForAudioClassification:
    """[`load_classifier`] on `config.model` with the data's labels and the recipe's dropout and decay settings."""
    return load_classifier(
        config.model,
        data.label2id,
        data.multi_label,
        hidden_dropout=config.hidden_dropout,
        attention_dropout=config.attention_dropout,
        layerdrop=config.layerdrop,
        classifier_dropout=config.classifier_dropout,
        layer_wise_gradient_decay_ratio=config.layer_wise_gradient_decay_ratio,
    )


def load_classifier(
    model_dir: str | Path, label2id: dict[str, int], multi_label: bool, **config_overrides: Any
) -> BeatsForAudioClassification:
    """
    A `BeatsForAudioClassification` with a fresh head on the encoder of any BEATs folder.

    The encoder weights must all load (a `BeatsModel` folder stores them without the `beats.` prefix, a MAM model
    or a classifier with it; transformers maps both); a folder that leaves any encoder weight uninitialised is an
    error rather than a silently random encoder.
    """
    id2label = {index: label for label, index in label2id.items()}
    config = BeatsConfig.from_pretrained(
        model_dir,
        id2label=id2label,
        label2id=dict(label2id),
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
        **config_overrides,
    )
    source_architectures = list(config.architectures or [])
    model, info = BeatsForAudioClassification.from_pretrained(
        model_dir, config=config, ignore_mismatched_sizes=True, output_loading_info=True
    )
    missing = [key for key in info["missing_keys"] if not key.startswith("classifier.")]
    mismatched = [key for key, *_ in info.get("mismatched_keys", []) if not key.startswith("classifier.")]
    if missing or mismatched:
        raise ValueError(
            f"{model_dir} does not provide every encoder weight (missing: {missing[:5]}, shape mismatch: "
            f"{mismatched[:5]}); is it a BEATs model folder?"
        )
    if "BeatsForAudioClassification" in source_architectures:
        # A fresh head, even when the old one has the right shape (initialised as the model initialises it).
        with torch.no_grad():
            torch.nn.init.normal_(model.classifier.weight, mean=0.0, std=model.config.initializer_range)
            torch.nn.init.zeros_(model.classifier.bias)
    model.config.architectures = ["BeatsForAudioClassification"]
    return model


def load_feature_extractor(config: FinetuneConfig) -> BeatsFeatureExtractor:
    """The model folder's feature extractor (its fbank statistics), with the recipe's overrides if any."""
    if Path(config.model, "preprocessor_config.json").is_file():
        feature_extractor = BeatsFeatureExtractor.from_pretrained(config.model)
    else:
        feature_extractor = BeatsFeatureExtractor()
    if config.fbank_mean is not None:
        feature_extractor.fbank_mean = config.fbank_mean
    if config.fbank_std is not None:
        feature_extractor.fbank_std = config.fbank_std
    return feature_extractor


def build_augmentation(config: FinetuneConfig, num_labels: int) -> FinetuneAugmentation:
    return FinetuneAugmentation(
        roll=config.roll,
        spec_augment_time_ratio=config.spec_augment_time_ratio,
        spec_augment_freq_ratio=config.spec_augment_freq_ratio,
        num_time_masks=config.num_time_masks,
        num_freq_masks=config.num_freq_masks,
        mixup_alpha=config.mixup_alpha,
        mixup_prob=config.mixup_prob,
        num_labels=num_labels,
    )


def compute_loss(
    model: torch.nn.Module, batch: dict[str, Any], feature_extractor: BeatsFeatureExtractor, loss_type: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward pass and float32 loss of a (possibly augmented) batch; returns `(loss, logits)`."""
    input_values = compute_input_values(batch, feature_extractor)
    logits = model(input_values=input_values, attention_mask=batch["attention_mask"]).logits
    return classification_loss(logits, batch["labels"], loss_type), logits


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    feature_extractor: BeatsFeatureExtractor,
    accelerator: Accelerator,
    multi_label: bool,
    loss_type: str,
) -> dict[str, Any]:
    """
    Loss and the task metric (accuracy or mAP, see `beats_hf.metrics`) over a whole evaluation set, from a loader of
    this process's shard (`build_loader(..., train=False, accelerator=...)`). The shards' outputs are gathered once at
    the end: the processes may hold different numbers of usable clips (an unreadable clip is dropped by the collator),
    which per-batch gathers cannot take.
    """
    was_training = model.training
    model.eval()
    all_logits, all_labels, skipped, truncated = [], [], 0, 0
    for batch in loader:
        skipped += batch["num_skipped_clips"]
        truncated += batch.get("num_truncated_clips", 0)
        if is_empty_batch(batch):
            continue
        batch = send_to_device(batch, accelerator.device)
        input_values = compute_input_values(batch, feature_extractor)
        all_logits.append(model(input_values=input_values, attention_mask=batch["attention_mask"]).logits.float())
        all_labels.append(batch["labels"])
    model.train(was_training)
    num_labels = accelerator.unwrap_model(model).config.num_labels
    device = accelerator.device
    logits = torch.cat(all_logits) if all_logits else torch.zeros(0, num_labels, device=device)
    if all_labels:
        labels = torch.cat(all_labels)
    else:
        labels = torch.zeros(
            (0, num_labels) if multi_label else (0,), device=device, dtype=torch.float if multi_label else torch.long
        )
    logits, labels = gather_uneven(accelerator, logits), gather_uneven(accelerator, labels)
    skipped, truncated = accelerator.reduce(torch.tensor([skipped, truncated], device=device), "sum").tolist()
    if len(labels) == 0:
        raise ValueError(f"the evaluation set has no usable clip ({skipped} unreadable or too short)")
    metrics = classification_metrics(logits.cpu(), labels.cpu(), multi_label)
    metrics["loss"] = classification_loss(logits, labels, loss_type).item()
    metrics["num_clips"] = len(labels)
    metrics["num_skipped_clips"] = skipped
    # Clips longer than eval_max_seconds, scored on their start (the dataset names the first in a warning).
    metrics["num_truncated_clips"] = truncated
    return metrics


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {f"{prefix}/{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass
class FinetuneState(TrainState):
    """
    [`TrainState`] plus the run's skipped-batch counters, checkpointed with it so that a resumed run reports the
    batches and updates skipped before the interruption too (a checkpoint without them loads with 0).
    """

    skipped_losses: int = 0
    skipped_updates: int = 0


def _step_generator(config: FinetuneConfig, state: TrainState, process_index: int) -> np.random.Generator:
    # A function of the position in the run only, so a resumed run draws the same augmentations.
    return np.random.default_rng([config.seed, state.epoch, state.batches_seen_in_epoch, process_index])


# ----------------------------------------------------------------------------------------------------------------------
# Training


def main(config: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune, evaluate and save; returns the final metrics (also written to `output_dir/final/metrics.json`)."""
    if not config.model or not config.train_data:
        raise ValueError("model and train_data are required (in the YAML file or as --model / --train_data).")
    if config.mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {config.mixed_precision!r}")
    output_dir = Path(config.output_dir)
    set_seed(config.seed)

    # 1. Accelerator. Layer drop skips layers at random, which DDP must be told about. main() may run several times
    #    in one process (the iteration chain, tests): an earlier run's mixed-precision setting must not block this one.
    if AcceleratorState._shared_state and AcceleratorState().num_processes == 1:
        AcceleratorState._reset_state()
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=None if config.log_with in (None, "none") else config.log_with,
        project_dir=output_dir,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=config.layerdrop > 0)],
    )

    # 2. Data, model with a fresh head, loss, augmentations.
    with accelerator.main_process_first():
        data = prepare_data(config)
    model = build_classifier(config, data)
    if config.freeze_feature_encoder:
        model.freeze_feature_encoder()
    feature_extractor = load_feature_extractor(config)
    loss_type = resolve_loss_type(config.loss, data.multi_label, config.mixup_alpha)
    augmentation = build_augmentation(config, len(data.label2id))
    train_loader = build_loader(config, data.train, data, feature_extractor, train=True)
    if len(train_loader) == 0:
        raise ValueError(f"{config.train_data} has fewer clips than one batch ({config.batch_size}).")
    eval_loader = None
    if data.validation:
        eval_loader = build_loader(config, data.validation, data, feature_extractor, False, accelerator)

    # 3. Optimizer with layer-wise LR decay, schedule in optimizer steps (stepped in the loop, checkpointed).
    optimizer = build_optimizer(
        model,
        config.learning_rate,
        config.weight_decay,
        (config.adam_beta1, config.adam_beta2),
        config.adam_epsilon,
        layer_decay=config.layer_decay,
    )
    scheduler = build_scheduler(optimizer, config.scheduler, config.warmup_steps, config.max_steps)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)

    state = FinetuneState()
    accelerator.register_for_checkpointing(state, scheduler)
    run_config = {**config_to_dict(config), "loss_type": loss_type, "multi_label": data.multi_label}
    checkpoint = resume_training_state(accelerator, output_dir, config.resume, run_config, RESUMABLE_CHANGES)
    if checkpoint is not None:
        accelerator.print(f"Resumed from {checkpoint} at step {state.step}")
    accelerator.init_trackers(
        "finetune", {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in run_config.items()}
    )
    clips_per_step = config.batch_size * config.gradient_accumulation_steps * accelerator.num_processes
    accelerator.print(
        f"***** Fine-tuning {config.model} *****\n"
        f"  {len(data.train)} training clips, {len(data.validation) if data.validation else 0} validation, "
        f"{len(data.label2id)} labels ({'multi' if data.multi_label else 'single'}-label, loss {loss_type})\n"
        f"  {clips_per_step} clips (<= {clips_per_step * config.max_seconds:.0f} s of audio) per step, peak lr "
        f"{config.learning_rate:g}, layer decay {config.layer_decay}, {config.max_steps} steps "
        f"({config.warmup_steps} warmup), mixed precision {config.mixed_precision}"
    )

    # 4. The loop.
    max_norm = config.max_grad_norm if config.max_grad_norm > 0 else math.inf
    window_loss, window_batches = 0.0, 0
    grad_norm, last_eval = None, None
    progress = tqdm(total=config.max_steps, initial=state.step, disable=not accelerator.is_local_main_process)
    model.train()
    while state.step < config.max_steps and state.step != config.stop_after_steps:
        train_loader.set_epoch(state.epoch)
        train_loader.dataset.set_epoch(state.epoch)
        skip = state.batches_seen_in_epoch
        for batch in accelerator.skip_first_batches(train_loader, skip) if skip else train_loader:
            rng = _step_generator(config, state, accelerator.process_index)
            state.batches_seen_in_epoch += 1
            if any_process_empty(accelerator, batch):  # every clip of a batch was unreadable (named in a warning)
                continue
            batch = {**batch, "input_values": compute_input_values(batch, feature_extractor)}
            batch = augmentation(batch, rng)
            with accelerator.accumulate(model):
                loss, _ = compute_loss(model, batch, feature_extractor, loss_type)
                # Every process must agree, or DDP would wait forever for the gradients of a skipped backward.
                finite = torch.isfinite(loss.detach()).reshape(1).float()
                if accelerator.gather(finite).min().item() == 1.0:
                    accelerator.backward(loss)
                    window_loss += loss.item()
                    window_batches += 1
                else:
                    state.skipped_losses += 1
                    accelerator.print(f"step {state.step}: non-finite loss {loss.item()}; batch skipped")
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_norm)
                    # fp16: the GradScaler skips inf/NaN gradients itself (and must see every step to lower its
                    # scale); otherwise a non-finite gradient norm means the update is skipped here.
                    updated = False
                    if config.mixed_precision == "fp16" or torch.isfinite(grad_norm):
                        optimizer.step()
                        updated = not accelerator.optimizer_step_was_skipped
                    state.skipped_updates += int(not updated)
                    optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            if updated:  # as in the HF Trainer and pretrain.py: a skipped update does not advance the schedule
                scheduler.step()
            state.step += 1
            progress.update(1)

            if state.step % config.log_steps == 0 or state.step == config.max_steps:
                mean_loss = accelerator.reduce(
                    torch.tensor(window_loss / max(window_batches, 1), device=accelerator.device), "mean"
                ).item()
                logs = {"train/loss": mean_loss, "lr": scheduler.get_last_lr()[-1]}
                logs.update(
                    {"train/skipped_losses": state.skipped_losses, "train/skipped_updates": state.skipped_updates}
                )
                if grad_norm is not None and math.isfinite(float(grad_norm)):
                    logs["grad_norm"] = float(grad_norm)
                log_metrics(accelerator, logs, state.step, output_dir)
                progress.set_postfix(loss=f"{mean_loss:.4f}")
                window_loss, window_batches = 0.0, 0
            if eval_loader is not None and config.eval_steps > 0 and state.step % config.eval_steps == 0:
                last_eval = evaluate(model, eval_loader, feature_extractor, accelerator, data.multi_label, loss_type)
                log_metrics(accelerator, _scalars(last_eval, "validation"), state.step, output_dir)
                accelerator.print(f"step {state.step}: {_summary(last_eval)}")
            if (
                config.save_steps > 0 and state.step % config.save_steps == 0
            ) or state.step == config.stop_after_steps:
                save_training_checkpoint(accelerator, output_dir, state.step, config.save_total_limit, run_config)
            if state.step >= config.max_steps or state.step == config.stop_after_steps:
                break
        else:
            state.epoch += 1
            state.batches_seen_in_epoch = 0
    progress.close()
    if state.step < config.max_steps:
        end_trackers(accelerator)
        accelerator.print(f"Stopped at step {state.step} (stop_after_steps); continue with --resume latest.")
        return {"step": state.step, "stopped": True}

    # 5. Final checkpoint, evaluation, and the classifier with its feature extractor.
    save_training_checkpoint(accelerator, output_dir, state.step, config.save_total_limit, run_config)
    results: dict[str, Any] = {"step": state.step, "stopped": False, "loss_type": loss_type}
    results.update(skipped_losses=state.skipped_losses, skipped_updates=state.skipped_updates)
    final_metrics = {}
    if eval_loader is not None:
        if last_eval is None or config.eval_steps <= 0 or state.step % config.eval_steps != 0:
            last_eval = evaluate(model, eval_loader, feature_extractor, accelerator, data.multi_label, loss_type)
        final_metrics["validation"] = last_eval
    if data.test is not None:
        test_loader = build_loader(config, data.test, data, feature_extractor, False, accelerator)
        final_metrics["test"] = evaluate(
            model, test_loader, feature_extractor, accelerator, data.multi_label, loss_type
        )
    for split, metrics in final_metrics.items():
        accelerator.log(_scalars(metrics, f"final_{split}"), step=state.step)
        accelerator.print(f"final {split}: {_summary(metrics)}")
        results.update(_scalars(metrics, split))

    final_dir = output_dir / "final"
    results["final_model"] = str(final_dir)
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(final_dir)
        feature_extractor.save_pretrained(final_dir)
        report = {"results": results, "metrics": final_metrics, "config": run_config}
        (final_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    accelerator.wait_for_everyone()
    end_trackers(accelerator)
    accelerator.print(f"Saved {final_dir}")
    return results


def _summary(metrics: dict[str, Any]) -> str:
    keys = [k for k in ("accuracy", "mAP", "loss") if k in metrics]
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys) + f" ({metrics['num_clips']} clips)"


def cli(argv: list[str] | None = None) -> None:
    main(load_config(FinetuneConfig, argv, description=__doc__.splitlines()[0]))


if __name__ == "__main__":
    try:
        cli()
    finally:
        destroy_process_group()
