# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""One BEATs pre-training iteration: masked audio modelling (MAM) against a frozen acoustic tokenizer.

Paper section 3.3.2: 75% of the patches are masked, the encoder sees only the visible ones, the label predictor
sees their representations plus zeros at masked positions and predicts the tokenizer's discrete label of every
patch; the loss is the cross-entropy on masked patches. Iteration 1 uses a random-projection tokenizer (built here
from a seed and saved into the run first); later iterations use a tokenizer trained by `training/train_tokenizer.py`.

    accelerate launch training/pretrain.py --config training/configs/pretrain_iter1.yaml
    python training/pretrain.py --config training/configs/pretrain_tiny.yaml        # CPU demo
    python training/pretrain.py --config ... --resume latest                        # continue exactly

Outputs in `output_dir`: `checkpoints/step_<n>` (Accelerate state, for `--resume`), TensorBoard logs, `tokenizer/`
(iteration 1), `final/` (a `BeatsForMaskedAudioModeling`) and `encoder/` (the bare `BeatsModel`, which the next
tokenizer's teacher and fine-tuning load), each with its feature extractor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from beats_hf import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForMaskedAudioModeling,
    BeatsRandomProjectionTokenizer,
    BeatsTokenizerModel,
)
from beats_hf.collators import DataCollatorForMaskedAudioModeling, compute_input_values
from beats_hf.data import AudioClipDataset, build_audio_dataset
from beats_hf.label_cache import TokenizerLabelCache, tokenizer_fingerprint
from beats_hf.masking import MASK_TYPES
from beats_hf.sampling import EpochShuffleSampler
from beats_hf.training_utils import (
    BOOKKEEPING_FIELDS,
    TrainState,
    any_process_empty,
    build_optimizer,
    build_scheduler,
    config_to_dict,
    destroy_process_group,
    end_trackers,
    load_config,
    log_metrics,
    resume_training_state,
    save_training_checkpoint,
)

logger = logging.getLogger("pretrain")

# Pre-training values of paper Table 4 that live in the model config: dropout 0.1, no layer drop, and no
# layer-wise gradient decay (the 0.6 of the released configs is a fine-tuning value).
PRETRAIN_MODEL_DEFAULTS = {
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "layerdrop": 0.0,
    "layer_wise_gradient_decay_ratio": 1.0,
}


@dataclass
class PretrainConfig:
    """Every knob of a MAM run; defaults are the paper's (Table 4, section 3.3.2) unless marked otherwise."""

    # Data
    train_data: str = field(default="", metadata={"help": "folder, .csv/.jsonl manifest, saved dataset, or hf:<name>"})
    train_split: str | None = field(default=None, metadata={"help": "split of a dataset dict / hf: dataset"})
    streaming: bool = field(default=False, metadata={"help": "stream a Hugging Face dataset (AudioSet-sized data)"})
    audio_column: str = "audio"
    id_column: str | None = field(default=None, metadata={"help": "stable clip ids (needed to cache streamed data)"})
    max_seconds: float = field(default=10.0, metadata={"help": "crop length; clips are at most this long"})
    crop: str = field(default="random", metadata={"help": "'random' excerpts or 'start' (needed by label_cache)"})
    shuffle_buffer_size: int = field(default=1000, metadata={"help": "streaming only"})
    num_workers: int = 2
    # Model: fields of BeatsConfig over the release architecture (90M encoder, 1024 codes)
    model: dict[str, Any] = field(default_factory=dict, metadata={"help": "BeatsConfig overrides (YAML mapping)"})
    # Tokenizer
    tokenizer: str = field(
        default="random_projection", metadata={"help": "'random_projection' or a saved tokenizer folder"}
    )
    random_projection_seed: int = 0
    label_cache: bool = field(default=False, metadata={"help": "compute tokenizer labels once per clip, on disk"})
    label_cache_dir: str | None = field(default=None, metadata={"help": "default: <output_dir>/label_cache"})
    # Masking
    mask_ratio: float = 0.75
    mask_type: str = field(default="random", metadata={"help": "'random' (paper) or 'inverse_block' (EAT)"})
    num_mask_views: int = field(default=1, metadata={"help": "masked views per clip sharing one tokenizer pass"})
    mask_block_time: int = 5
    mask_block_freq: int = 5
    mask_views_per_pass: int | None = field(
        default=None, metadata={"help": "views per forward/backward pass, to bound memory (None: all at once)"}
    )
    # Optimisation (paper: 5.6K s of audio per step = 35 clips of 10 s on each of 16 GPUs)
    batch_size: int = 35
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    weight_decay: float = 0.01
    warmup_steps: int = 32_000
    max_steps: int = 400_000
    max_grad_norm: float = field(default=3.0, metadata={"help": "not given in the paper; BEiT-style value"})
    mixed_precision: str | None = field(default=None, metadata={"help": "'no', 'fp16', 'bf16'; None: accelerate's"})
    fbank_on_device: bool = field(default=True, metadata={"help": "filter bank in the training step (fp32)"})
    seed: int = 0
    # Bookkeeping
    output_dir: str = "runs/pretrain_iter1"
    log_steps: int = 100
    save_steps: int = 5000
    save_total_limit: int = 3
    resume: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder"})
    stop_after_steps: int | None = field(
        default=None, metadata={"help": "stop (with a checkpoint) after this step, schedule unchanged"}
    )
    log_with: str | None = "tensorboard"


# Settings a resumed run may change: they decide how the run is logged, checkpointed and fed, not what it trains.
RESUMABLE_CHANGES = (
    *BOOKKEEPING_FIELDS,
    "label_cache",
    "label_cache_dir",
    "mask_views_per_pass",
    "fbank_on_device",
)


def check_config(config: PretrainConfig) -> None:
    """Reject settings that cannot work, each with the fix."""
    problems = []
    if not config.train_data:
        problems.append("train_data is required (a folder, manifest, saved dataset or hf:<name>)")
    unknown = sorted(set(config.model) - {f.name for f in dataclasses.fields(BeatsConfig)})
    if unknown:
        problems.append(f"model has unknown BeatsConfig fields {unknown}")
    if config.mask_type not in MASK_TYPES:
        problems.append(f"mask_type must be one of {MASK_TYPES}, got {config.mask_type!r}")
    if config.mask_views_per_pass is not None and config.mask_views_per_pass < 1:
        problems.append(f"mask_views_per_pass must be >= 1 or null, got {config.mask_views_per_pass}")
    if config.label_cache and config.crop != "start":
        problems.append(
            "label_cache needs crop='start': cached labels belong to one crop of each clip, and random crops of "
            "longer clips would never hit the cache (for clips no longer than max_seconds nothing changes)"
        )
    if config.label_cache and config.streaming and config.id_column is None:
        problems.append("label_cache with streaming needs id_column: row positions of a shuffled stream are not ids")
    if config.max_steps < 1 or not 0 <= config.warmup_steps <= config.max_steps:
        problems.append(f"need 0 <= warmup_steps ({config.warmup_steps}) <= max_steps ({config.max_steps})")
    if config.stop_after_steps is not None and not 1 <= config.stop_after_steps <= config.max_steps:
        problems.append(
            f"stop_after_steps must be null or in [1, max_steps={config.max_steps}], got {config.stop_after_steps}"
        )
    # The masks are drawn by the collator from mask_ratio; a second value in the model config would be stored with
    # the model while another ratio was trained.
    if "mask_ratio" in config.model and config.model["mask_ratio"] != config.mask_ratio:
        problems.append(
            f"model.mask_ratio ({config.model['mask_ratio']}) differs from mask_ratio ({config.mask_ratio}); set "
            "mask_ratio only (it is copied into the model config)"
        )
    if problems:
        raise ValueError("Invalid PretrainConfig: " + "; ".join(problems) + ".")


_TOKENIZER_CLASSES = {cls.__name__: cls for cls in (BeatsRandomProjectionTokenizer, BeatsTokenizerModel)}


def _load_saved_tokenizer(path: Path) -> tuple[Any, BeatsFeatureExtractor]:
    """A tokenizer folder written by save_pretrained, with the feature extractor its labels were computed with."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"tokenizer {path} has no config.json; give a folder saved by save_pretrained.")
    architectures = json.loads(config_file.read_text()).get("architectures") or []
    if not architectures or architectures[0] not in _TOKENIZER_CLASSES:
        raise ValueError(f"{path} holds {architectures}, not a BEATs tokenizer ({sorted(_TOKENIZER_CLASSES)}).")
    # The fbank statistics decide the labels; a default would be a guess that could differ from what the tokenizer
    # (and its teacher) saw, the ESPnet mistake (training-notes section 3).
    if not (path / "preprocessor_config.json").is_file():
        raise ValueError(
            f"tokenizer {path} has no preprocessor_config.json, so the fbank mean/std its labels depend on are "
            "unknown. Save the feature extractor it was trained with into that folder "
            "(BeatsFeatureExtractor(...).save_pretrained), as train_tokenizer.py does."
        )
    tokenizer = _TOKENIZER_CLASSES[architectures[0]].from_pretrained(path)
    return tokenizer, BeatsFeatureExtractor.from_pretrained(path)


def load_tokenizer(config: PretrainConfig, model_config: BeatsConfig, output_dir: Path, accelerator: Accelerator):
    """
    The frozen tokenizer and its feature extractor. A random-projection tokenizer is built once and saved; a trained
    one is copied into `output_dir/tokenizer`. Either way that folder then holds the tokenizer the run's checkpoints
    were trained against, and a resumed run must find the same one there.
    """
    kept_copy = output_dir / "tokenizer"
    if config.tokenizer == "random_projection":
        path = kept_copy
        # Only the main process decides: another process testing for the file could see it already written, skip
        # the barrier, and leave the processes in different collectives (a hang).
        if accelerator.is_main_process and not (path / "config.json").is_file():
            # The seed fixes the projection and codebook at construction; the saved tensors are what count.
            tokenizer_config = BeatsConfig(
                num_mel_bins=model_config.num_mel_bins,
                patch_size=model_config.patch_size,
                codebook_size=model_config.codebook_size,
                codebook_dim=model_config.codebook_dim,
                random_projection_seed=config.random_projection_seed,
            )
            BeatsRandomProjectionTokenizer(tokenizer_config).save_pretrained(path)
            BeatsFeatureExtractor().save_pretrained(path)
        accelerator.wait_for_everyone()
        # A tokenizer already in the folder (a resumed run) must be the one this config asks for.
        saved = json.loads((path / "config.json").read_text())
        wanted = {
            "architectures": [BeatsRandomProjectionTokenizer.__name__],
            "random_projection_seed": config.random_projection_seed,
            **{
                name: getattr(model_config, name)
                for name in ("codebook_size", "codebook_dim", "patch_size", "num_mel_bins")
            },
        }
        differing = {name: (saved.get(name), value) for name, value in wanted.items() if saved.get(name) != value}
        if differing:
            raise ValueError(
                f"{path} holds a tokenizer with "
                + ", ".join(f"{name}={old}" for name, (old, _) in differing.items())
                + " but this run asks for "
                + ", ".join(f"{name}={new}" for name, (_, new) in differing.items())
                + ". Use a new output_dir, or delete that folder if the old run is not to be resumed."
            )
        tokenizer, feature_extractor = _load_saved_tokenizer(path)
    else:
        path = Path(config.tokenizer)
        tokenizer, feature_extractor = _load_saved_tokenizer(path)
        if path.resolve() != kept_copy.resolve():
            # Every process checks before any copy is made, so that none reads a half-written copy.
            if (kept_copy / "config.json").is_file():
                kept_tokenizer, kept_extractor = _load_saved_tokenizer(kept_copy)
                if tokenizer_fingerprint(kept_tokenizer, kept_extractor) != tokenizer_fingerprint(
                    tokenizer, feature_extractor
                ):
                    raise ValueError(
                        f"{kept_copy} holds the tokenizer this run was trained against, and {path} is a different "
                        "tokenizer (other weights, config or fbank statistics): resuming would mix two sets of "
                        "labels. Use a new output_dir, or pass tokenizer: "
                        f"{kept_copy} to continue with the old one."
                    )
            accelerator.wait_for_everyone()
            if accelerator.is_main_process and not (kept_copy / "config.json").is_file():
                # The run keeps the tokenizer it was trained against, next to its checkpoints.
                shutil.copytree(path, kept_copy, dirs_exist_ok=True)
    for name in ("codebook_size", "patch_size", "num_mel_bins"):
        if getattr(tokenizer.config, name) != getattr(model_config, name):
            raise ValueError(
                f"The tokenizer has {name}={getattr(tokenizer.config, name)} but the model "
                f"{getattr(model_config, name)}; set model.{name} to the tokenizer's value."
            )
    return tokenizer.eval().requires_grad_(False), feature_extractor


def build_train_loader(config: PretrainConfig, feature_extractor, model_config: BeatsConfig):
    dataset = build_audio_dataset(
        config.train_data,
        split=config.train_split,
        streaming=config.streaming,
        max_seconds=config.max_seconds,
        crop=config.crop,
        seed=config.seed,
        shuffle_buffer_size=config.shuffle_buffer_size,
        audio_column=config.audio_column,
        id_column=config.id_column,
        label_column=None,
    )
    collator = DataCollatorForMaskedAudioModeling(
        feature_extractor,
        model_config,
        mask_ratio=config.mask_ratio,
        mask_type=config.mask_type,
        num_mask_views=config.num_mask_views,
        seed=config.seed,
        block_time=config.mask_block_time,
        block_freq=config.mask_block_freq,
        return_waveforms=config.fbank_on_device,
    )
    sampler = EpochShuffleSampler(len(dataset), seed=config.seed) if isinstance(dataset, AudioClipDataset) else None
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=config.num_workers,
        drop_last=True,
        # Its own generator, so that creating a loader iterator never draws from the global RNG (dropout's).
        generator=torch.Generator().manual_seed(config.seed),
    )
    return dataset, loader


class MaskedPredictionMeter:
    """MAM metrics over a logging window: loss, masked accuracy, distinct predicted and target codes."""

    def __init__(self, codebook_size: int, device: torch.device):
        self.codebook_size, self.device = codebook_size, device
        self.reset()

    def reset(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device)
        self.batches = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device)
        self.masked = torch.zeros((), device=self.device)
        self.predicted_codes = torch.zeros(self.codebook_size, device=self.device)
        self.target_codes = torch.zeros(self.codebook_size, device=self.device)

    @torch.no_grad()
    def update(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, masked: torch.Tensor) -> None:
        scored = masked & (labels >= 0)
        predictions, targets = logits.argmax(dim=-1)[scored], labels[scored]
        self.loss_sum += loss.detach().float()
        self.batches += 1
        self.correct += (predictions == targets).sum()
        self.masked += scored.sum()
        self.predicted_codes += torch.bincount(predictions, minlength=self.codebook_size)
        self.target_codes += torch.bincount(targets, minlength=self.codebook_size)

    def summary(self, accelerator: Accelerator) -> dict[str, float]:
        # Summed over processes: one sync point per logging window.
        totals = [accelerator.reduce(t, "sum") for t in (self.loss_sum, self.batches, self.correct, self.masked)]
        predicted, target = (accelerator.reduce(t, "sum") for t in (self.predicted_codes, self.target_codes))
        loss_sum, batches, correct, masked = (float(t) for t in totals)
        self.reset()
        return {
            "mam/loss": loss_sum / max(batches, 1.0),
            "mam/masked_accuracy": correct / max(masked, 1.0),
            "mam/distinct_predicted_codes": float((predicted > 0).sum()),
            "mam/distinct_target_codes": float((target > 0).sum()),
        }


def masked_views_forward_backward(
    accelerator: Accelerator,
    model: torch.nn.Module,
    meter: MaskedPredictionMeter,
    input_values: torch.Tensor,
    attention_mask: torch.Tensor,
    bool_masked_pos: torch.Tensor,
    views: torch.Tensor,
    labels: torch.Tensor,
    views_per_pass: int | None,
) -> None:
    """
    Forward and backward over the masked views, `views_per_pass` at a time (all at once when None). Each pass's mean
    loss is weighted by its share of the scored (masked, real) patches, so the gradient is that of one pass over all
    views; gradients are synchronised across processes after the last pass only.
    """
    view_labels = labels[views]
    scored = (bool_masked_pos & (view_labels >= 0)).sum(dim=1)
    per_pass = views_per_pass or len(views)
    for start in range(0, len(views), per_pass):
        part = slice(start, start + per_pass)
        last = start + per_pass >= len(views)
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            outputs = model(
                input_values[views[part]],
                attention_mask=attention_mask[views[part]],
                bool_masked_pos=bool_masked_pos[part],
                labels=view_labels[part],
            )
            accelerator.backward(outputs.loss * (scored[part].sum() / scored.sum()))
        meter.update(outputs.loss, outputs.logits, view_labels[part], bool_masked_pos[part])


def main(config: PretrainConfig) -> dict[str, Any]:
    check_config(config)
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=config.log_with,
        project_dir=output_dir,
        # Batches hold per-clip and per-view tensors (clip_index); they must not be sliced across processes.
        dataloader_config=DataLoaderConfiguration(dispatch_batches=False),
    )
    set_seed(config.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "pretrain_config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))

    # 1. Model, frozen tokenizer, data
    model_config = BeatsConfig(**{**PRETRAIN_MODEL_DEFAULTS, **config.model, "mask_ratio": config.mask_ratio})
    model = BeatsForMaskedAudioModeling(model_config)
    tokenizer, feature_extractor = load_tokenizer(config, model_config, output_dir, accelerator)
    dataset, train_loader = build_train_loader(config, feature_extractor, model_config)

    # 2. Optimiser, schedule, Accelerate
    optimizer = build_optimizer(
        model,
        config.learning_rate,
        config.weight_decay,
        (config.adam_beta1, config.adam_beta2),
        config.adam_epsilon,
    )
    # Stepped by hand once per optimiser step (a prepared scheduler steps once per process).
    scheduler = build_scheduler(optimizer, "linear", config.warmup_steps, config.max_steps)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    tokenizer.to(accelerator.device)  # frozen: never prepared, never in the optimiser
    state = TrainState()
    accelerator.register_for_checkpointing(state, scheduler)
    run_config = config_to_dict(config)
    checkpoint = resume_training_state(accelerator, output_dir, config.resume, run_config, RESUMABLE_CHANGES)
    if checkpoint is not None:
        accelerator.print(f"Resumed from {checkpoint} at step {state.step} (epoch {state.epoch})")
    label_cache = None
    if config.label_cache:
        cache_dir = config.label_cache_dir or output_dir / "label_cache"
        label_cache = TokenizerLabelCache(cache_dir, tokenizer, feature_extractor, accelerator.process_index)
    accelerator.init_trackers("pretrain", config={k: str(v) for k, v in config_to_dict(config).items()})

    def tokenize(input_values, attention_mask):
        return tokenizer(input_values, attention_mask=attention_mask).token_ids

    meter = MaskedPredictionMeter(model_config.codebook_size, accelerator.device)
    progress = tqdm(total=config.max_steps, initial=state.step, disable=not accelerator.is_local_main_process)
    total_batch = config.batch_size * accelerator.num_processes * config.gradient_accumulation_steps
    accelerator.print(f"***** MAM pre-training: {total_batch} clips x {config.num_mask_views} views per step *****")
    stop_at = config.max_steps if config.stop_after_steps is None else config.stop_after_steps
    metrics: dict[str, float] = {}
    history: list[dict[str, float]] = []
    skipped_clips, grad_norm, learning_rate = 0, torch.zeros(()), 0.0

    # 3. The loop
    while state.step < stop_at:
        dataset.set_epoch(state.epoch)
        epoch_loader = accelerator.skip_first_batches(train_loader, state.batches_seen_in_epoch)
        epoch_loader.set_epoch(state.epoch)
        whole_epoch, trained_batches = state.batches_seen_in_epoch == 0, 0
        for batch in epoch_loader:
            state.batches_seen_in_epoch += 1
            skipped_clips += batch.pop("num_skipped_clips")
            if any_process_empty(accelerator, batch):
                continue
            trained_batches += 1
            input_values = compute_input_values(batch, feature_extractor)  # fp32, outside autocast
            attention_mask, views = batch["attention_mask"], batch["clip_index"]
            with torch.no_grad():
                if label_cache is None:
                    labels = tokenize(input_values, attention_mask)
                else:
                    labels = label_cache.labels_for_batch(batch["clip_keys"], input_values, attention_mask, tokenize)
            with accelerator.accumulate(model):
                masks, per_pass = batch["bool_masked_pos"], config.mask_views_per_pass
                masked_views_forward_backward(
                    accelerator, model, meter, input_values, attention_mask, masks, views, labels, per_pass
                )
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    learning_rate = scheduler.get_last_lr()[0]  # the rate this step used
                    scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            progress.update(1)
            if state.step % config.log_steps == 0 or state.step == stop_at:
                metrics = meter.summary(accelerator)
                metrics.update(lr=learning_rate, grad_norm=float(grad_norm), skipped_clips=skipped_clips)
                log_metrics(accelerator, metrics, state.step, output_dir)
                history.append({"step": state.step, **metrics})
                progress.set_postfix(loss=f"{metrics['mam/loss']:.3f}", acc=f"{metrics['mam/masked_accuracy']:.3f}")
            if state.step % config.save_steps == 0 or state.step == stop_at:
                if label_cache is not None:
                    label_cache.flush()
                save_training_checkpoint(accelerator, output_dir, state.step, config.save_total_limit, run_config)
            if state.step >= stop_at:
                break
        else:  # the epoch ran out before the last step
            if whole_epoch and trained_batches == 0:
                raise ValueError(
                    f"A whole epoch of {config.train_data} gave no usable batch ({skipped_clips} clips skipped, see the "
                    f"warnings): it needs at least {config.batch_size} readable clips per process."
                )
            state.epoch, state.batches_seen_in_epoch = state.epoch + 1, 0
    progress.close()

    # 4. Save the pre-trained model (and the bare encoder for the next tokenizer and fine-tuning)
    accelerator.wait_for_everyone()
    if state.step >= config.max_steps and accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        for folder, pretrained in (("final", unwrapped), ("encoder", unwrapped.beats)):
            pretrained.save_pretrained(output_dir / folder)
            feature_extractor.save_pretrained(output_dir / folder)
    # No process moves on (e.g. to the next stage of a chain) before the model is written.
    accelerator.wait_for_everyone()
    end_trackers(accelerator)
    results = {**metrics, "step": state.step, "epoch": state.epoch, "history": history, "output_dir": str(output_dir)}
    # Stopped early (stop_after_steps): no model was written, the run continues with --resume latest.
    results["stopped"] = state.step < config.max_steps
    if label_cache is not None:
        results.update(label_cache_hits=label_cache.hits, label_cache_misses=label_cache.misses)
    return results


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        main(load_config(PretrainConfig, description=__doc__))
    finally:
        destroy_process_group()
