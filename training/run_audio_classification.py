# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Fine-tune BEATs for audio classification with the Hugging Face `Trainer` (the Trainer counterpart of finetune.py).

    python training/run_audio_classification.py --do_train --do_eval --model_name_or_path runs/iter3/encoder \\
        --train_data ESC-50/folds.csv --fold 1 --max_seconds 5 --output_dir runs/esc50_trainer/fold1 \\
        --max_steps 80000 --warmup_steps 8000 --learning_rate 3e-5 --layer_decay 0.2 --roll \\
        --spec_augment_time_ratio 0.2 --spec_augment_freq_ratio 0.2 --per_device_train_batch_size 15 --bf16

(`--do_train`, `--do_eval` on the validation data, `--do_predict` on `--test_data`, as in the transformers
examples), or with a JSON file of the same arguments (`python training/run_audio_classification.py args.json`). The
`TrainingArguments` options work (`--save_steps`, `--resume_from_checkpoint`, `--report_to tensorboard`, ...), except
the two the recipe replaces: `--optim` (AdamW with layer-wise decay, below) and `--label_smoothing_factor` (the
recipe's loss), which are refused rather than ignored. `--do_eval` / `--do_predict` without `--do_train` score the
model folder's own classifier head (its `label2id` and task), so that folder must be a fine-tuned classifier.

It reads data, builds the classifier (fresh head on any BEATs folder) and the train sampler with the same functions
as `finetune.py`, so both paths train the same model on the same clips in the same order with the same loss; the
differences are the Trainer's own: its loop, checkpoint format and logging, an epoch's last, smaller batch (kept
unless `--dataloader_drop_last`; `finetune.py` drops it), and the random draws of the augmentations (seeded per
batch from its clips here, from the position in the run there). Our pieces plug in here:
- augmentations (roll -> mixup -> SpecAugment) in the training data collator only ([`AugmentingCollator`]);
- the float32 loss (CE, or BCE for multi-label and mixup) in `compute_loss`;
- layer-wise learning-rate decay and AdamW (0.9, 0.98) in `create_optimizer`;
- `finetune.py`'s training order (shuffle, weighted or balanced sampling, re-seeded per epoch) in `_get_train_sampler`;
- `compute_metrics`: accuracy for single-label data, mAP for multi-label data.

Unreadable clips are named in a warning and left out of their batch in a single process; a multi-process run stops
at the first one instead (the Trainer's collectives need equal batches everywhere; `finetune.py` handles them).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from transformers import EvalPrediction, HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.training_args import OptimizerNames

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared data/model preparation of finetune.py

from finetune import (  # noqa: E402
    FinetuneConfig,
    LabelledData,
    build_augmentation,
    build_classifier,
    build_train_sampler,
    load_feature_extractor,
    prepare_data,
)

from beats_hf import BeatsConfig, BeatsForAudioClassification  # noqa: E402
from beats_hf.augmentation import AugmentingCollator, classification_loss, resolve_loss_type  # noqa: E402
from beats_hf.collators import DataCollatorForAudio, is_empty_batch  # noqa: E402
from beats_hf.data import AudioClipDataset  # noqa: E402
from beats_hf.metrics import classification_metrics  # noqa: E402
from beats_hf.training_utils import build_optimizer  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "BEATs model folder to start from (encoder, MAM, classifier)"})
    freeze_feature_encoder: bool = field(default=False, metadata={"help": "freeze the patch embedding"})
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    layerdrop: float = field(default=0.1, metadata={"help": "Table 4: 0.1 for fine-tuning"})
    classifier_dropout: float = 0.0
    layer_wise_gradient_decay_ratio: float = field(
        default=1.0, metadata={"help": "the official GradMultiply per layer; 1 = off (layer_decay does the decay)"}
    )
    fbank_mean: float | None = field(default=None, metadata={"help": "override the feature extractor's mean"})
    fbank_std: float | None = field(default=None, metadata={"help": "override the feature extractor's std"})


@dataclass
class DataArguments:
    """Where the clips come from, how they are sampled and augmented: the same fields as `FinetuneConfig`."""

    train_data: str = field(metadata={"help": "folder, .csv/.jsonl manifest, saved dataset, hf:<name>, or synthetic"})
    validation_data: str | None = None
    test_data: str | None = None
    validation_fraction: float = 0.0
    fold: int | None = None
    fold_column: str = "fold"
    train_split: str | None = "train"
    validation_split: str | None = "validation"
    test_split: str | None = "test"
    path_column: str = "path"
    label_column: str = "label"
    audio_column: str = "audio"
    multi_label: bool | None = None
    synthetic_data_dir: str = "runs/synthetic_data"
    synthetic_train_clips_per_class: int = 40
    synthetic_eval_clips_per_class: int = 10
    synthetic_seed: int = 0
    max_seconds: float = field(default=10.0, metadata={"help": "training crop length (random crops)"})
    eval_max_seconds: float | None = None
    sampling: str = field(default="shuffle", metadata={"help": "shuffle | weighted | balanced"})
    epoch_samples: int | None = None
    balance_reference_label: str = "_unknown_"
    balance_fraction: float = 0.5
    loss: str = field(default="auto", metadata={"help": "auto (CE, or BCE for multi-label / mixup) | ce | bce"})
    roll: bool = False
    spec_augment_time_ratio: float = 0.0
    spec_augment_freq_ratio: float = 0.0
    num_time_masks: int = 1
    num_freq_masks: int = 1
    mixup_alpha: float = 0.0
    mixup_prob: float = 1.0


@dataclass
class BeatsTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the paper's fine-tuning defaults (Table 4) and layer-wise learning-rate decay."""

    layer_decay: float = field(default=1.0, metadata={"help": "layer-wise learning-rate decay (1 = none)"})
    weight_decay: float = 0.01
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    lr_scheduler_type: str = "cosine"
    # No clipping, as in finetune.py (the paper gives none): both paths train the same model by default.
    max_grad_norm: float = 0.0
    # Our datasets yield dicts with `waveform`, which the model does not take: the collator turns them into inputs.
    remove_unused_columns: bool = False


class SetDatasetEpoch(TrainerCallback):
    """Random crops change with the epoch (`AudioClipDataset.set_epoch`), whatever sampler the Trainer uses."""

    def __init__(self, dataset: AudioClipDataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(int(state.epoch or 0))


class BeatsTrainer(Trainer):
    """
    A `Trainer` with the BEATs fine-tuning recipe: augmenting collator for training batches only, float32 CE/BCE
    loss, layer-wise LR decay, and weighted / balanced sampling.
    """

    # compute_loss returns a per-batch mean, so the Trainer must divide it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        loss_type: str,
        train_collator: AugmentingCollator | None = None,
        train_sampler_factory: Callable[[], torch.utils.data.Sampler] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        # create_optimizer and compute_loss below replace what these options configure in the Trainer.
        optim = OptimizerNames(self.args.optim)
        if optim not in (OptimizerNames.ADAMW_TORCH, OptimizerNames.ADAMW_TORCH_FUSED):
            raise ValueError(
                f"optim {optim.value!r} would be ignored: the recipe's optimizer is AdamW with layer-wise "
                "learning-rate decay. Remove --optim (set AdamW's betas, eps and weight decay with --adam_beta1/2, "
                "--adam_epsilon, --weight_decay)."
            )
        if self.args.label_smoothing_factor != 0:
            raise ValueError(
                "label_smoothing_factor would be ignored: the recipe's CE/BCE loss has no label smoothing. Remove "
                "--label_smoothing_factor."
            )
        if self.args.dataloader_persistent_workers and self.args.dataloader_num_workers > 0:
            # Persistent workers keep the copy of the dataset they started with: the set_epoch of every later epoch
            # would never reach them, and each epoch would repeat the first one's random crops and sample seeds
            # (hence augmentations).
            raise ValueError(
                "dataloader_persistent_workers would freeze the random crops and augmentations of the first epoch: "
                "the workers' datasets never see set_epoch. Remove --dataloader_persistent_workers."
            )
        self.loss_type = loss_type
        self.train_collator = train_collator
        self.train_sampler_factory = train_sampler_factory

    def get_train_dataloader(self):
        if self.train_collator is None:
            return super().get_train_dataloader()
        plain = self.data_collator
        self.data_collator = self.train_collator
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = plain

    def _get_train_sampler(self, train_dataset=None):
        if self.train_sampler_factory is not None:
            return self.train_sampler_factory()
        return super()._get_train_sampler(train_dataset)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            self.optimizer = build_optimizer(
                self.model if model is None else model,
                self.args.learning_rate,
                self.args.weight_decay,
                (self.args.adam_beta1, self.args.adam_beta2),
                self.args.adam_epsilon,
                layer_decay=self.args.layer_decay,
            )
        return self.optimizer

    def _check_no_skipped_clips_across_processes(self, inputs: dict[str, Any]) -> None:
        # The Trainer's collectives (DDP's gradient reduction, the evaluation gathers) need every process to bring a
        # batch of the same size; a process that dropped clips would hang or miscount the others.
        if self.args.world_size > 1 and inputs.get("num_skipped_clips", 0):
            raise RuntimeError(
                f"{inputs['num_skipped_clips']} clip(s) of a batch could not be read (named in the warnings above). "
                "The Trainer cannot leave clips out in a multi-process run: fix or remove those files, or use "
                "training/finetune.py, which skips them in every process alike."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self._check_no_skipped_clips_across_processes(inputs)
        if is_empty_batch(inputs):  # every clip of the batch was unreadable (and named in a warning)
            loss = torch.zeros((), device=self.args.device, requires_grad=True)
            return (loss, None) if return_outputs else loss
        outputs = model(input_values=inputs["input_values"], attention_mask=inputs["attention_mask"])
        loss = classification_loss(outputs.logits, inputs["labels"], self.loss_type)
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        self._check_no_skipped_clips_across_processes(inputs)
        # Every clip of the batch was unreadable (and named in a warning): it has no inputs for the model to score.
        if is_empty_batch(inputs):
            return None, None, None
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)


def make_compute_metrics(multi_label: bool) -> Callable[[EvalPrediction], dict[str, float]]:
    """Accuracy (single-label) or mAP (multi-label) from the Trainer's gathered logits and labels."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        metrics = classification_metrics(np.asarray(logits), np.asarray(prediction.label_ids), multi_label)
        return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}

    return compute_metrics


def finetune_config_from(model_args: ModelArguments, data_args: DataArguments, seed: int) -> FinetuneConfig:
    """The `FinetuneConfig` holding these arguments, so that data and model are prepared exactly as finetune.py does."""
    model_fields = {k: v for k, v in asdict(model_args).items() if k != "model_name_or_path"}
    return FinetuneConfig(model=model_args.model_name_or_path, seed=seed, **asdict(data_args), **model_fields)


def trained_classifier_config(model_dir: str) -> BeatsConfig:
    """The config of the fine-tuned classifier in `model_dir`; any other folder is refused (its head is untrained)."""
    config = BeatsConfig.from_pretrained(model_dir)
    if "BeatsForAudioClassification" not in (config.architectures or []):
        raise ValueError(
            f"{model_dir} is not a fine-tuned classifier: without --do_train, --do_eval and --do_predict would score "
            "an untrained head. Add --do_train, or give the folder of a fine-tuned classifier."
        )
    return config


def load_trained_classifier(
    model_dir: str, config: BeatsConfig, data: LabelledData
) -> tuple[BeatsForAudioClassification, LabelledData]:
    """
    The classifier saved in `model_dir` ([`trained_classifier_config`] gives `config`), head included, and `data` with
    that classifier's `label2id` and task: what evaluation without training scores (a fresh head would be scored as if
    it were the model's).
    """
    label2id = {label: int(index) for label, index in config.label2id.items()}
    # The data's own check would advise rebuilding label2id, which a trained head cannot take.
    unknown = sorted(set(data.label2id) - set(label2id))
    if unknown:
        raise ValueError(
            f"{len(unknown)} label(s) of the data are not among the {len(label2id)} of the classifier in {model_dir}, "
            f"e.g. {unknown[:5]} (its labels are e.g. {sorted(label2id)[:5]}). Score it on data labelled with its "
            "label names, or add --do_train to train a new head on these labels."
        )
    model = BeatsForAudioClassification.from_pretrained(model_dir, config=config)
    multi_label = config.problem_type == "multi_label_classification"
    return model, replace(data, label2id=label2id, multi_label=multi_label)


def build_trainer(
    model_args: ModelArguments, data_args: DataArguments, training_args: BeatsTrainingArguments
) -> tuple[BeatsTrainer, LabelledData]:
    """
    The configured `BeatsTrainer` (model, data, collators, sampler, metrics) and the data it trains on. The model is
    a fresh head on the folder's encoder, or, when only evaluating (`do_eval` / `do_predict` without `do_train`), the
    folder's classifier as it is ([`load_trained_classifier`]).
    """
    config = finetune_config_from(model_args, data_args, training_args.seed)
    evaluate_only = not training_args.do_train and (training_args.do_eval or training_args.do_predict)
    trained = trained_classifier_config(config.model) if evaluate_only else None
    if trained is not None and config.multi_label is None:
        # The trained head decides the task, not the labels of the data it is scored on.
        config = replace(config, multi_label=trained.problem_type == "multi_label_classification")
    with training_args.main_process_first(desc="reading data"):
        data = prepare_data(config)
    if trained is None:
        model = build_classifier(config, data)
    else:
        model, data = load_trained_classifier(config.model, trained, data)
    if config.freeze_feature_encoder:
        model.freeze_feature_encoder()
    feature_extractor = load_feature_extractor(config)
    loss_type = resolve_loss_type(config.loss, data.multi_label, config.mixup_alpha)

    def dataset(records, train: bool) -> AudioClipDataset:
        max_seconds = config.max_seconds if train else (config.eval_max_seconds or config.max_seconds)
        crop = "random" if train else "start"
        return AudioClipDataset(records, max_seconds, crop=crop, seed=config.seed, label2id=data.label2id)

    train_dataset = dataset(data.train, train=True)
    collator = DataCollatorForAudio(feature_extractor, len(data.label2id), data.multi_label)
    augmentation = build_augmentation(config, len(data.label2id))
    trainer = BeatsTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=dataset(data.validation, train=False) if data.validation else None,
        data_collator=collator,
        processing_class=feature_extractor,
        compute_metrics=make_compute_metrics(data.multi_label),
        callbacks=[SetDatasetEpoch(train_dataset)],
        loss_type=loss_type,
        train_collator=AugmentingCollator(collator, augmentation, training_args.seed)
        if augmentation.enabled
        else None,
        # Shuffling too: the Trainer's own sampler would draw another order than finetune.py from the same seed.
        train_sampler_factory=lambda: build_train_sampler(config, data),
    )
    return trainer, data


def _evaluate(trainer: BeatsTrainer, dataset: Any, prefix: str, multi_label: bool) -> dict[str, float]:
    metrics = trainer.evaluate(dataset, metric_key_prefix=prefix)
    # With every clip unreadable the Trainer has nothing to score and returns its timings alone.
    score = f"{prefix}_{'mAP' if multi_label else 'accuracy'}"
    if score not in metrics:
        raise ValueError(
            f"No {prefix} clip could be read (each was named in a warning above), so there is no {score} to report; "
            "fix or remove those files."
        )
    if math.isnan(metrics[score]):  # the mAP of data in which no class has a positive clip
        raise ValueError(
            f"None of the {prefix} clips carries a label, so the {score} is undefined; check that the data's label "
            "column holds the labels (several separated by ';')."
        )
    trainer.log_metrics(prefix, metrics)
    trainer.save_metrics(prefix, metrics)
    return metrics


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = HfArgumentParser((ModelArguments, DataArguments, BeatsTrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=argv[0])
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        f"Process rank: {training_args.local_process_index}, device: {training_args.device}, "
        f"n_gpu: {training_args.n_gpu}, distributed: {training_args.parallel_mode.value == 'distributed'}, "
        f"bf16: {training_args.bf16}, fp16: {training_args.fp16}"
    )
    set_seed(training_args.seed)

    trainer, data = build_trainer(model_args, data_args, training_args)
    # Checked before training, which may take hours: asked-for metrics must not just be missing at the end.
    if training_args.do_eval and trainer.eval_dataset is None:
        raise ValueError("--do_eval needs validation clips: give validation_data, fold or validation_fraction")
    if training_args.do_predict and not data.test:
        raise ValueError("--do_predict needs test clips: give test_data")
    metrics: dict[str, float] = {}
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()  # the classifier and its feature extractor: pipeline("audio-classification") loads it
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
        metrics.update(result.metrics)
    if training_args.do_eval:
        eval_metrics = _evaluate(trainer, None, "eval", data.multi_label)
        metrics.update(eval_metrics)
    if training_args.do_predict:
        test_dataset = AudioClipDataset(
            data.test,
            data_args.eval_max_seconds or data_args.max_seconds,
            crop="start",
            seed=training_args.seed,
            label2id=data.label2id,
        )
        metrics.update(_evaluate(trainer, test_dataset, "test", data.multi_label))
    if trainer.is_world_process_zero():
        trainer.create_model_card(finetuned_from=model_args.model_name_or_path, tasks="audio-classification")
    return metrics


if __name__ == "__main__":
    main()
