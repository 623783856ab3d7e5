# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Train a self-distilled BEATs acoustic tokenizer (paper section 3.2.2) from a frozen teacher.

    accelerate launch training/train_tokenizer.py --config training/configs/tokenizer_iter2.yaml
    python training/train_tokenizer.py --config training/configs/tokenizer_tiny.yaml --teacher_path runs/iter1/final

The teacher is the previous iteration's model: pre-trained (iterations 2 and 3: the tokenizer learns to predict its
last layer) or fine-tuned (iteration 3+: the tokenizer learns to predict its per-patch classification logits). The
run ends by measuring codebook usage; a collapsed codebook is refused (`CodebookCollapseError`, exit code 1) and saved
to `output_dir/collapsed` for inspection instead of `output_dir/final`. Any field below can be set in the YAML file
or as `--field value`; `--resume latest` continues the newest checkpoint of `output_dir` exactly.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader, IterableDataset
from tqdm.auto import tqdm

from beats_hf import BeatsConfig, BeatsFeatureExtractor, BeatsModel, BeatsTokenizerModel
from beats_hf.collators import DataCollatorForAudio, compute_input_values
from beats_hf.data import build_audio_dataset
from beats_hf.sampling import EpochShuffleSampler
from beats_hf.tokenizer_training import (
    DEFAULT_LEARNING_RATES,
    BeatsTeacher,
    BeatsTokenizerDistiller,
    CodebookCollapseError,
    CodebookEMA,
    check_codebook_health,
    measure_codebook_usage,
    save_tokenizer,
)
from beats_hf.training_utils import (
    BOOKKEEPING_FIELDS,
    TrainState,
    any_process_empty,
    build_optimizer,
    build_scheduler,
    codebook_usage,
    config_to_dict,
    destroy_process_group,
    end_trackers,
    load_config,
    log_metrics,
    resume_training_state,
    save_training_checkpoint,
)

# Paper Table 4, tokenizer column: dropout 0.1, layer drop 0.0, no layer-wise decay. Under the YAML's `model` values;
# everything else is the released architecture (BeatsConfig defaults).
TOKENIZER_MODEL_DEFAULTS = {
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "layerdrop": 0.0,
    "layer_wise_gradient_decay_ratio": 1.0,
}


# Settings a resumed run may change: they decide how the run is logged, checkpointed, fed and finally checked, not
# what it trains.
RESUMABLE_CHANGES = (
    *BOOKKEEPING_FIELDS,
    "features_on_device",
    "eval_data",
    "health_check_batches",
    "min_codes_used_fraction",
)


@dataclass
class TokenizerTrainConfig:
    # Teacher: the previous iteration's model directory (save_pretrained).
    teacher_path: str = field(default="", metadata={"help": "BEATs model directory of the previous iteration"})
    teacher_kind: str = field(default="auto", metadata={"help": "auto | pretrained | finetuned"})
    teacher_precision: str = field(default="fp32", metadata={"help": "fp32 | autocast (under mixed precision)"})
    # Tokenizer: BeatsConfig fields from model_config_file, then `model`; or the encoder of `init_from`.
    init_from: str | None = field(default=None, metadata={"help": "BEATs dir to initialise the tokenizer encoder"})
    model_config_file: str | None = field(default=None, metadata={"help": "YAML of BeatsConfig fields (model size)"})
    model: dict[str, Any] = field(default_factory=dict, metadata={"help": "BeatsConfig fields (YAML only)"})
    estimator_num_layers: int = 3
    commitment_weight: float = field(default=1.0, metadata={"help": "beta of the encoder-side VQ term"})
    kmeans_iterations: int = 10
    # Data: a folder, a .csv/.jsonl manifest, a saved dataset or hf:<name> (see beats_hf.data).
    train_data: str = ""
    eval_data: str | None = field(default=None, metadata={"help": "clips for the final codebook check"})
    data_split: str | None = field(default=None, metadata={"help": "split of a dataset dict / hf: dataset"})
    streaming: bool = field(default=False, metadata={"help": "stream a Hugging Face dataset (AudioSet-sized data)"})
    max_seconds: float = 10.0
    num_workers: int = 2
    features_on_device: bool = field(default=True, metadata={"help": "fbank on the accelerator (fp32) or in workers"})
    # Optimisation (paper Table 4): AdamW (0.9, 0.98), wd 0.01, 400K steps, 32K warmup, linear decay.
    learning_rate: float | None = field(default=None, metadata={"help": "default: 5e-5 (SSL teacher), 5e-4 (SL)"})
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    scheduler: str = "linear"
    warmup_steps: int = 32_000
    max_steps: int = 400_000
    # 1.4K s of audio per step in the paper: e.g. 8 devices x 18 clips of 10 s (1.44K s).
    batch_size: int = field(default=18, metadata={"help": "clips per device and micro-batch"})
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = field(default=1.0, metadata={"help": "0 disables clipping (not given by the paper)"})
    mixed_precision: str = field(default="no", metadata={"help": "no | bf16 | fp16"})
    seed: int = 0
    # Output, checkpoints, logs.
    output_dir: str = "runs/tokenizer"
    iteration: int = field(default=2, metadata={"help": "BEATs iteration the tokenizer labels for"})
    save_steps: int = 5000
    save_total_limit: int = 3
    resume: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder"})
    stop_after_steps: int | None = field(default=None, metadata={"help": "checkpoint and stop at this step"})
    log_steps: int = 100
    log_with: str | None = "tensorboard"
    # Codebook health check at the end.
    health_check_batches: int = 50
    min_codes_used_fraction: float = 0.1


def build_tokenizer(config: TokenizerTrainConfig) -> BeatsTokenizerModel:
    """A fresh tokenizer of the configured size, its encoder optionally initialised from a BEATs encoder."""
    values: dict[str, Any] = dict(TOKENIZER_MODEL_DEFAULTS)
    if config.model_config_file:
        values.update(yaml.safe_load(Path(config.model_config_file).read_text()) or {})
    values.update(config.model)
    if config.init_from is None:
        return BeatsTokenizerModel(BeatsConfig(**values))
    tokenizer = BeatsTokenizerModel(BeatsConfig.from_pretrained(config.init_from, **values))
    encoder = BeatsModel.from_pretrained(config.init_from)
    tokenizer.beats.load_state_dict(encoder.state_dict())
    return tokenizer


def resolve_learning_rate(config: TokenizerTrainConfig, teacher_kind: str) -> float:
    """
    The peak learning rate: `config.learning_rate` when it is set (any value, 0.0 included), else the paper's
    default for the teacher's kind (`DEFAULT_LEARNING_RATES`: 5e-5 for a pre-trained teacher, 5e-4 for a fine-tuned
    one). `None` is the only "unset" value.
    """
    if config.learning_rate is not None:
        return config.learning_rate
    return DEFAULT_LEARNING_RATES[teacher_kind]


def _saved_feature_extractor(model_dir: str | None) -> BeatsFeatureExtractor | None:
    if model_dir and Path(model_dir, "preprocessor_config.json").is_file():
        return BeatsFeatureExtractor.from_pretrained(model_dir)
    return None


def load_feature_extractor(config: TokenizerTrainConfig) -> BeatsFeatureExtractor:
    """
    The teacher's feature extractor: its fbank statistics are the ones the teacher learned with, and the tokenizer
    must see the same features. A teacher saved without one is refused rather than given the default statistics,
    which may not be its own (the ESPnet mistake, training-notes section 3).
    """
    feature_extractor = _saved_feature_extractor(config.teacher_path)
    if feature_extractor is None:
        raise ValueError(
            f"teacher_path {config.teacher_path} has no preprocessor_config.json, so the fbank mean/std the teacher "
            "was trained with are unknown. Save its feature extractor into that folder "
            "(BeatsFeatureExtractor(...).save_pretrained); pretrain.py and finetune.py write one into encoder/ "
            "and final/."
        )
    initial = _saved_feature_extractor(config.init_from)
    statistics = (feature_extractor.fbank_mean, feature_extractor.fbank_std)
    if initial is not None and (initial.fbank_mean, initial.fbank_std) != statistics:
        raise ValueError(
            f"init_from {config.init_from} normalises the fbank with mean/std {initial.fbank_mean}/"
            f"{initial.fbank_std}, the teacher with {statistics[0]}/{statistics[1]}; tokenizer and teacher must see "
            "the same features."
        )
    return feature_extractor


def get_dataloader(config: TokenizerTrainConfig, source: str, feature_extractor, train: bool) -> DataLoader:
    # Labels are not needed (and a labelled manifest would give label names the collator cannot batch).
    dataset = build_audio_dataset(
        source,
        max_seconds=config.max_seconds,
        crop="random" if train else "start",
        seed=config.seed,
        split=config.data_split,
        streaming=config.streaming,
        label_column=None,
    )
    iterable = isinstance(dataset, IterableDataset)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=None if iterable or not train else EpochShuffleSampler(len(dataset), seed=config.seed),
        collate_fn=DataCollatorForAudio(feature_extractor, return_waveforms=config.features_on_device),
        num_workers=config.num_workers,
        drop_last=train and not iterable,
        # A private generator: creating data-loader iterators must not consume the global RNG (dropout), so that a
        # resumed run draws exactly what an uninterrupted one does.
        generator=torch.Generator().manual_seed(config.seed),
    )


def main(config: TokenizerTrainConfig) -> dict[str, float]:
    """Train, check and save a tokenizer; returns the final metrics (also written to output_dir/final)."""
    if not config.teacher_path or not config.train_data:
        raise ValueError(
            "teacher_path and train_data are required (in the YAML file or as --teacher_path/--train_data)."
        )
    if config.stop_after_steps is not None and not 1 <= config.stop_after_steps <= config.max_steps:
        raise ValueError(
            f"stop_after_steps must be null or in [1, max_steps={config.max_steps}], got {config.stop_after_steps}."
        )
    output_dir = Path(config.output_dir)
    set_seed(config.seed)

    # 1. Teacher (frozen, outside the optimizer and the checkpoints), tokenizer and estimator.
    teacher = BeatsTeacher.from_pretrained(config.teacher_path, config.teacher_kind, config.teacher_precision)
    tokenizer = build_tokenizer(config)
    for name in ("patch_size", "num_mel_bins"):
        if getattr(tokenizer.config, name) != getattr(teacher.config, name):
            raise ValueError(
                f"tokenizer and teacher must share {name}: {getattr(tokenizer.config, name)} vs "
                f"{getattr(teacher.config, name)}."
            )
    distiller = BeatsTokenizerDistiller(
        tokenizer,
        teacher.target_dim,
        config.estimator_num_layers,
        config.commitment_weight,
        kmeans_iterations=config.kmeans_iterations,
        kmeans_seed=config.seed,
    )
    learning_rate = resolve_learning_rate(config, teacher.kind)
    feature_extractor = load_feature_extractor(config)

    # 2. Accelerator (layer drop skips layers at random, which DDP must be told about), data, optimizer, schedule.
    #    The schedule is stepped once per optimizer step in the loop, so it counts optimizer steps on any number of
    #    processes; it is saved with the checkpoints through register_for_checkpointing.
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=None if config.log_with in (None, "none") else config.log_with,
        project_dir=output_dir,
        # Batches carry per-clip lists (clip ids); they must not be sliced across processes.
        dataloader_config=DataLoaderConfiguration(dispatch_batches=False),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=tokenizer.config.layerdrop > 0)],
    )
    teacher.to(accelerator.device)
    train_loader = get_dataloader(config, config.train_data, feature_extractor, train=True)
    if not isinstance(train_loader.dataset, IterableDataset) and len(train_loader) == 0:
        raise ValueError(f"{config.train_data} has fewer clips than one batch ({config.batch_size}).")
    optimizer = build_optimizer(
        distiller, learning_rate, config.weight_decay, (config.adam_beta1, config.adam_beta2), config.adam_epsilon
    )
    scheduler = build_scheduler(optimizer, config.scheduler, config.warmup_steps, config.max_steps)
    distiller, optimizer, train_loader = accelerator.prepare(distiller, optimizer, train_loader)
    codebook_ema = CodebookEMA(accelerator.unwrap_model(distiller).quantizer)

    # 3. Resume: weights, codebook buffers, optimizer, schedule, RNG states and the TrainState counters.
    state = TrainState()
    accelerator.register_for_checkpointing(state, scheduler)
    run_config = {**config_to_dict(config), "learning_rate": learning_rate, "teacher_kind": teacher.kind}
    checkpoint = resume_training_state(accelerator, output_dir, config.resume, run_config, RESUMABLE_CHANGES)
    if checkpoint is not None:
        accelerator.print(f"Resumed from {checkpoint} at step {state.step}")
    accelerator.init_trackers(
        f"tokenizer_iter{config.iteration}",
        {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in run_config.items()},
    )
    clips_per_step = config.batch_size * config.gradient_accumulation_steps * accelerator.num_processes
    accelerator.print(
        f"***** Tokenizer training (iteration {config.iteration}) *****\n"
        f"  teacher: {config.teacher_path} ({teacher.kind}; target {teacher.target_name}, dim {teacher.target_dim})\n"
        f"  {clips_per_step} clips (<= {clips_per_step * config.max_seconds:.0f} s of audio) per optimizer step, "
        f"peak lr {learning_rate:g}, {config.max_steps} steps ({config.warmup_steps} warmup), "
        f"mixed precision: {config.mixed_precision}"
    )

    # 4. The loop. One EMA update of the codebook follows every optimizer step (see CodebookEMA).
    codebook_size = tokenizer.config.codebook_size
    window = dict.fromkeys(("loss", "distill_loss", "commitment_loss", "micro_batches"), 0.0)
    code_counts = torch.zeros(codebook_size, dtype=torch.long, device=accelerator.device)
    grad_norm = None
    progress = tqdm(total=config.max_steps, initial=state.step, disable=not accelerator.is_local_main_process)
    # A resumed run already past stop_after_steps stops at once instead of running on to max_steps.
    stop_at = config.max_steps if config.stop_after_steps is None else config.stop_after_steps
    while state.step < stop_at:
        train_loader.set_epoch(state.epoch)
        train_loader.dataset.set_epoch(state.epoch)
        skip = state.batches_seen_in_epoch
        # An epoch without a single usable batch would repeat for ever: it is an error, checked at the epoch's end.
        whole_epoch, trained_batches = skip == 0, 0
        for batch in accelerator.skip_first_batches(train_loader, skip) if skip else train_loader:
            state.batches_seen_in_epoch += 1
            if any_process_empty(accelerator, batch):  # every clip of a batch was unreadable (named in a warning)
                continue
            trained_batches += 1
            input_values = compute_input_values(batch, feature_extractor)
            with accelerator.accumulate(distiller):
                with accelerator.autocast():
                    targets = teacher(input_values, batch["attention_mask"])
                outputs = distiller(input_values, batch["attention_mask"], targets)
                accelerator.backward(outputs["loss"])
                codebook_ema.add(outputs["encoded"], outputs["token_ids"])
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    grad_norm = accelerator.clip_grad_norm_(distiller.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            for key in ("loss", "distill_loss", "commitment_loss"):
                window[key] += outputs[key].detach()
            window["micro_batches"] += 1
            code_counts += torch.bincount(outputs["token_ids"][outputs["token_ids"] >= 0], minlength=codebook_size)
            if not accelerator.sync_gradients:
                continue
            codebook_ema.step()
            if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: no update, the schedule waits too
                scheduler.step()
            state.step += 1
            progress.update(1)

            if state.step % config.log_steps == 0 or state.step == config.max_steps:
                means = {
                    key: accelerator.reduce(window[key] / window["micro_batches"], "mean").item()
                    for key in ("loss", "distill_loss", "commitment_loss")
                }
                counts = accelerator.reduce(code_counts, "sum").cpu()
                usage = codebook_usage(torch.repeat_interleave(torch.arange(codebook_size), counts), codebook_size)
                logs = {
                    **{f"train/{k}": v for k, v in means.items()},
                    **{f"tokenizer/{k}": v for k, v in usage.items()},
                }
                logs["lr"] = scheduler.get_last_lr()[0]
                if grad_norm is not None:
                    logs["grad_norm"] = float(grad_norm)
                log_metrics(accelerator, logs, state.step, output_dir)
                progress.set_postfix(distill=f"{means['distill_loss']:.4f}", codes=int(usage["codes_used"]))
                window = dict.fromkeys(window, 0.0)
                code_counts.zero_()
            if state.step % config.save_steps == 0 or state.step == config.stop_after_steps:
                save_training_checkpoint(accelerator, output_dir, state.step, config.save_total_limit, run_config)
            if state.step >= stop_at:
                break
        else:
            if whole_epoch and trained_batches == 0:
                raise ValueError(
                    f"A whole epoch of {config.train_data} gave no usable batch (every clip unreadable or shorter "
                    f"than 0.175 s, see the warnings): it needs at least {config.batch_size} readable clips per "
                    "process."
                )
            state.epoch += 1
            state.batches_seen_in_epoch = 0
    progress.close()
    if state.step < config.max_steps:
        end_trackers(accelerator)
        accelerator.print(f"Stopped at step {state.step} (stop_after_steps); continue with --resume latest.")
        return {"step": state.step, "stopped": True}

    # 5. Final checkpoint, codebook health check, and the tokenizer alone (no estimator, no teacher).
    if state.step % config.save_steps != 0:
        save_training_checkpoint(accelerator, output_dir, state.step, config.save_total_limit, run_config)
    unwrapped = accelerator.unwrap_model(distiller)
    eval_source = config.eval_data or config.train_data
    eval_loader = accelerator.prepare_data_loader(get_dataloader(config, eval_source, feature_extractor, train=False))
    usage = measure_codebook_usage(
        unwrapped.tokenizer, eval_loader, config.health_check_batches, feature_extractor, accelerator
    )
    accelerator.log({f"final/{k}": v for k, v in usage.items()}, step=state.step)
    info = {"config": run_config, "step": state.step, "codebook_usage_measured_on": eval_source}
    try:
        check_codebook_health(usage, config.min_codes_used_fraction)
    except CodebookCollapseError:
        if accelerator.is_main_process:
            save_tokenizer(unwrapped, output_dir / "collapsed", feature_extractor, teacher, usage, info)
        end_trackers(accelerator)
        raise
    if accelerator.is_main_process:
        save_tokenizer(unwrapped, output_dir / "final", feature_extractor, teacher, usage, info)
    accelerator.wait_for_everyone()
    end_trackers(accelerator)
    accelerator.print(
        f"Saved {output_dir / 'final'}: {int(usage['codes_used'])}/{codebook_size} codes used, "
        f"perplexity {usage['perplexity']:.1f}"
    )
    return {"step": state.step, "stopped": False, **usage}


def cli(argv: list[str] | None = None) -> None:
    config = load_config(TokenizerTrainConfig, argv, description=__doc__.splitlines()[0])
    try:
        main(config)
    except CodebookCollapseError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    try:
        cli()
    finally:
        destroy_process_group()
