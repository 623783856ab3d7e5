# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Pieces shared by the training scripts in `training/`: configs, optimiser, schedules, resumable state, codebook metrics.

The scripts stay readable top to bottom (one `main(config)` each); what they have in common lives here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shutil
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

ConfigT = TypeVar("ConfigT")


# ----------------------------------------------------------------------------------------------------------------------
# Configs: a dataclass of defaults, overridden by a YAML file, overridden by --key value on the command line.


def _field_type(field: dataclasses.Field, owner: type) -> Any:
    hints = typing.get_type_hints(owner)
    return hints[field.name]


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Convert a YAML / command-line value to the field's annotated type, with a clear error."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for candidate in non_none:
            try:
                return _coerce(value, candidate, name)
            except (TypeError, ValueError) as error:
                errors.append(str(error))
        raise ValueError(f"{name}: cannot interpret {value!r} as {annotation}: {'; '.join(errors)}")
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        item_type = args[0] if args else str
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        items = [_coerce(v, item_type, name) for v in value]
        return tuple(items) if origin is tuple or annotation is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{name}: expected an integer, got {value!r}")
        return int(float(value)) if isinstance(value, str) else int(value)
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        return str(value)
    if annotation is Any:
        return value
    return annotation(value)


def load_config(config_class: type[ConfigT], argv: Sequence[str] | None = None, description: str = "") -> ConfigT:
    """
    Parse `--config FILE.yaml` and `--<field> VALUE` overrides into a `config_class` dataclass instance.
    Unknown keys in the YAML file or on the command line are errors that list the valid names.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", type=Path, default=None, help="YAML file with field values (overridden by flags)")
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    for name, field in fields.items():
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = field.metadata.get("help", "")
        parser.add_argument(f"--{name}", default=argparse.SUPPRESS, help=f"{help_text} (default: {default!r})")
    namespace = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if namespace.config is not None:
        import yaml

        if not namespace.config.is_file():
            parser.error(f"--config {namespace.config}: no such file")
        loaded = yaml.safe_load(namespace.config.read_text()) or {}
        if not isinstance(loaded, dict):
            parser.error(f"--config {namespace.config}: expected a mapping of field names to values")
        unknown = sorted(set(loaded) - set(fields))
        if unknown:
            parser.error(f"--config {namespace.config}: unknown fields {unknown}; valid fields: {sorted(fields)}")
        values.update(loaded)
    for name in fields:
        if name in vars(namespace):
            values[name] = getattr(namespace, name)
    try:
        coerced = {
            name: _coerce(value, _field_type(fields[name], config_class), name) for name, value in values.items()
        }
        return config_class(**coerced)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON/YAML-serialisable dict of a config dataclass (paths become strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}


# ----------------------------------------------------------------------------------------------------------------------
# Optimiser and schedules.


def _no_weight_decay(name: str, parameter: nn.Parameter) -> bool:
    # Biases, norms, gates and 1-D parameters are not decayed (as in BEiT / fairseq recipes).
    return parameter.ndim <= 1 or name.endswith(".bias") or "layer_norm" in name or "gru_rel_pos_const" in name


_ENCODER_LAYER = re.compile(r"(?:^|\.)beats\.encoder\.layers\.(\d+)\.|^encoder\.layers\.(\d+)\.")
_BELOW_FIRST_LAYER = re.compile(
    r"^(beats\.)?(embeddings\.|encoder\.pos_conv_embed\.|encoder\.relative_position_bias\.)"
)
_ENCODER_NORM = re.compile(r"^(beats\.)?encoder\.layer_norm\.")


def _layer_id(name: str, num_layers: int, layer_norm_first: bool) -> int:
    """0 below the first encoder layer, i + 1 for encoder layer i, num_layers + 1 above the encoder (heads)."""
    match = _ENCODER_LAYER.search(name)
    if match is not None:
        return int(match.group(1) or match.group(2)) + 1
    if _BELOW_FIRST_LAYER.search(name):
        return 0
    if _ENCODER_NORM.search(name):
        # Post-LN models normalise before the first layer; pre-LN models after the last one.
        return num_layers + 1 if layer_norm_first else 0
    return num_layers + 1


def build_param_groups(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float,
    layer_decay: float = 1.0,
    num_layers: int | None = None,
) -> list[dict[str, Any]]:
    """
    AdamW parameter groups: no weight decay for biases and norms, and layer-wise learning-rate decay: encoder layer
    `i` of `N` gets `lr * layer_decay ** (N + 1 - (i + 1))`, the patch embedding `lr * layer_decay ** (N + 1)`, heads `lr`.
    """
    config = getattr(model, "config", None)
    if num_layers is None:
        num_layers = getattr(config, "num_hidden_layers", 0)
    layer_norm_first = bool(getattr(config, "layer_norm_first", False))
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        layer = _layer_id(name, num_layers, layer_norm_first) if layer_decay != 1.0 else num_layers + 1
        decay = not _no_weight_decay(name, parameter)
        key = (layer, decay)
        if key not in groups:
            scale = layer_decay ** (num_layers + 1 - layer)
            groups[key] = {
                "params": [],
                "param_names": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr": learning_rate * scale,
                "lr_scale": scale,
                "layer_id": layer,
            }
        groups[key]["params"].append(parameter)
        groups[key]["param_names"].append(name)
    return [groups[key] for key in sorted(groups)]


def build_optimizer(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.98),
    eps: float = 1e-6,
    layer_decay: float = 1.0,
) -> torch.optim.AdamW:
    """AdamW with the paper's betas (0.9, 0.98) and weight decay 0.01 by default."""
    groups = build_param_groups(model, learning_rate, weight_decay, layer_decay)
    for group in groups:
        group.pop("param_names")
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """`linear` (warmup then linear decay; pre-training) or `cosine` (warmup then cosine decay; fine-tuning)."""
    if kind not in ("linear", "cosine", "constant"):
        raise ValueError(f"scheduler must be 'linear', 'cosine' or 'constant', got {kind!r}")
    if warmup_steps < 0 or total_steps <= 0 or warmup_steps > total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}) and total_steps > 0")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        shape = 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return min_lr_ratio + (1.0 - min_lr_ratio) * shape

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----------------------------------------------------------------------------------------------------------------------
# Resumable training state (registered with accelerator.register_for_checkpointing).


@dataclasses.dataclass
class TrainState:
    """Counters saved with every checkpoint so that `--resume` continues exactly where a run stopped."""

    step: int = 0
    epoch: int = 0
    batches_seen_in_epoch: int = 0

    def state_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key, value in state.items():
            setattr(self, key, int(value))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest `checkpoints/step_<n>` folder of a run, or None."""
    folder = Path(output_dir) / "checkpoints"
    candidates = [p for p in folder.glob("step_*") if p.is_dir() and p.name[5:].isdigit()]
    return max(candidates, key=lambda p: int(p.name[5:])) if candidates else None


def prune_checkpoints(output_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""

    folder = Path(output_dir) / "checkpoints"
    candidates = sorted(
        (p for p in folder.glob("step_*") if p.is_dir() and p.name[5:].isdigit()), key=lambda p: int(p.name[5:])
    )
    for stale in candidates[: max(0, len(candidates) - keep)]:
        shutil.rmtree(stale, ignore_errors=True)


PARTIAL_CHECKPOINT_SUFFIX = ".partial"
# Config fields of every training script that a resumed run may change: they decide where the run writes, how it is
# logged and checkpointed and how many workers feed it, not what it trains. Each script adds its own.
BOOKKEEPING_FIELDS = (
    "resume",
    "stop_after_steps",
    "output_dir",
    "num_workers",
    "log_steps",
    "log_with",
    "save_steps",
    "save_total_limit",
)
# The settings of the run that wrote a checkpoint, compared with those of a run resuming from it.
CHECKPOINT_RUN_CONFIG_FILE = "run_config.json"


def _run_settings(run_config: dict[str, Any], num_processes: int) -> dict[str, Any]:
    """The settings stored with a checkpoint and compared on resume, as JSON would give them back."""
    return {**json.loads(json.dumps(run_config, default=str)), "num_processes": num_processes}


def save_training_checkpoint(
    accelerator: Any, output_dir: str | Path, step: int, keep: int, run_config: dict[str, Any] | None = None
) -> Path:
    """
    `accelerator.save_state` into `output_dir/checkpoints/step_<step>`, then keep only the newest `keep`.

    The state is written under `step_<step>.partial` and renamed once every process has written its part: a run
    killed while saving then leaves no `step_<n>` folder for `latest_checkpoint` to pick and fail to load, and the
    checkpoints before it are still there (pruning comes after the rename). `run_config` (the run's settings) is
    stored with the state, so that [`resume_training_state`] can refuse to continue it with other settings.
    """

    folder = Path(output_dir) / "checkpoints" / f"step_{step}"
    partial = folder.with_name(folder.name + PARTIAL_CHECKPOINT_SUFFIX)
    if accelerator.is_main_process and partial.exists():  # left by a save that was interrupted
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if run_config is not None:
            values = _run_settings(run_config, accelerator.num_processes)
            (partial / CHECKPOINT_RUN_CONFIG_FILE).write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)
        prune_checkpoints(output_dir, keep)
    accelerator.wait_for_everyone()
    return folder


def check_resumed_run_config(
    checkpoint: str | Path, run_config: dict[str, Any], num_processes: int, free_fields: Iterable[str] = ()
) -> None:
    """
    Raise a ValueError when `run_config` (and `num_processes`) differ from the settings stored with `checkpoint` in
    any field but `free_fields` (those that do not change what is trained: logging, checkpoint cadence, workers).
    A resumed run is meant to continue the interrupted one exactly; with another batch size, schedule, data, model
    or number of processes its step counters, data position and learning rate would silently mean something else.
    A checkpoint saved without its settings is not checked.
    """

    stored_file = Path(checkpoint) / CHECKPOINT_RUN_CONFIG_FILE
    if not stored_file.is_file():
        return
    stored = json.loads(stored_file.read_text())
    current = _run_settings(run_config, num_processes)
    free = set(free_fields)
    changed = sorted(
        name for name in set(stored) | set(current) if name not in free and stored.get(name) != current.get(name)
    )
    if changed:
        details = ", ".join(f"{name}: {stored.get(name)!r} -> {current.get(name)!r}" for name in changed)
        raise ValueError(
            f"Cannot resume from {checkpoint}: it was trained with other settings ({details}). Resume with the "
            "settings it was saved with, or start a new run in another output_dir."
        )


def resume_training_state(
    accelerator: Any,
    output_dir: str | Path,
    resume: str | Path | None,
    run_config: dict[str, Any] | None = None,
    free_fields: Iterable[str] = (),
) -> Path | None:
    """
    Restore everything registered with the Accelerator (model, optimizer, scheduler, RNG states, TrainState) from
    `resume`: `"latest"` (the newest checkpoint of this run; a run without one yet starts from scratch) or the path
    of a checkpoint folder, which must exist. With `run_config`, the checkpoint must have been saved with the same
    settings apart from `free_fields` ([`check_resumed_run_config`]). Returns the checkpoint used, or None.
    """
    if not resume:
        return None
    if resume == "latest":
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            accelerator.print(f"No checkpoint in {Path(output_dir) / 'checkpoints'} yet; starting from scratch.")
            return None
    else:
        checkpoint = Path(resume)
        if not checkpoint.is_dir():
            raise FileNotFoundError(
                f"resume={str(resume)!r} is not a checkpoint folder; pass 'latest' or a folder such as "
                f"{Path(output_dir) / 'checkpoints' / 'step_1000'}."
            )
    if run_config is not None:
        check_resumed_run_config(checkpoint, run_config, accelerator.num_processes, free_fields)
    accelerator.load_state(str(checkpoint))
    return checkpoint


def end_trackers(accelerator: Any) -> None:
    """
    Finish the experiment trackers of a run but keep the process group (unlike `accelerator.end_training`): a chain
    (`training/run_iterations.py`) runs its next stage in the same processes. Entry points tear the group down with
    [`destroy_process_group`] when the whole job is done.
    """
    for tracker in accelerator.trackers:
        tracker.finish()


def any_process_empty(accelerator: Any, batch: dict[str, Any]) -> bool:
    """
    Whether any process got a batch of unreadable clips only (`collators.is_empty_batch`); then every process skips
    its batch, so that all of them stay at the same data position and take their gradient steps together.
    """
    from .collators import is_empty_batch

    empty = torch.tensor(float(is_empty_batch(batch)), device=accelerator.device)
    return bool(accelerator.reduce(empty, "max")) if accelerator.num_processes > 1 else bool(empty)


def gather_uneven(accelerator: Any, tensor: torch.Tensor) -> torch.Tensor:
    """
    All processes' `tensor`s concatenated along dim 0, in process order, when their first dimensions differ (zero
    included): each is padded to the longest for the collective and cut back afterwards. Every process must call it.
    """
    if accelerator.num_processes == 1:
        return tensor
    counts = accelerator.gather(torch.tensor([tensor.shape[0]], device=accelerator.device)).tolist()
    gathered = accelerator.gather(accelerator.pad_across_processes(tensor, dim=0))
    rows = max(counts)
    return torch.cat([gathered[rank * rows : rank * rows + count] for rank, count in enumerate(counts)])


def destroy_process_group() -> None:
    """Tear down the data-parallel process group at the end of a job, if one was set up."""
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------------------
# Metric logging: the trackers configured on the Accelerator (TensorBoard, ...) plus a plain JSON-lines file that
# plots and reports can read without a tracker.

METRICS_FILE = "metrics.jsonl"


def log_metrics(accelerator: Any, metrics: dict[str, Any], step: int, output_dir: str | Path) -> None:
    """`accelerator.log` the scalar metrics and append them, with the step, to `output_dir/metrics.jsonl`."""

    scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if accelerator.trackers:
        accelerator.log(scalars, step=step)
    if accelerator.is_main_process:
        path = Path(output_dir) / METRICS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps({"step": step, **scalars}) + "\n")


def read_metrics(output_dir: str | Path) -> list[dict[str, float]]:
    """The records `log_metrics` wrote for a run (empty when the run logged nothing)."""

    path = Path(output_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------------------------------
# Codebook health.


def codebook_usage(token_ids: torch.Tensor | Iterable[torch.Tensor], codebook_size: int) -> dict[str, float]:
    """
    Usage statistics of discrete labels (entries < 0 are ignored): number of distinct codes used, the used fraction,
    and the perplexity `exp(entropy)` of the code histogram (equal to `codebook_size` for uniform use, 1 for collapse).
    """
    if isinstance(token_ids, torch.Tensor):
        token_ids = [token_ids]
    counts = torch.zeros(codebook_size, dtype=torch.float64)
    for ids in token_ids:
        ids = ids.detach().reshape(-1).cpu()
        ids = ids[ids >= 0]
        counts += torch.bincount(ids, minlength=codebook_size).double()
    total = counts.sum()
    if total == 0:
        return {"codes_used": 0.0, "usage_fraction": 0.0, "perplexity": 0.0}
    probabilities = counts / total
    nonzero = probabilities[probabilities > 0]
    entropy = float(-(nonzero * nonzero.log()).sum())
    used = float((counts > 0).sum())
    return {"codes_used": used, "usage_fraction": used / codebook_size, "perplexity": math.exp(entropy)}


__all__ = [
    "BOOKKEEPING_FIELDS",
    "CHECKPOINT_RUN_CONFIG_FILE",
    "PARTIAL_CHECKPOINT_SUFFIX",
    "TrainState",
    "any_process_empty",
    "build_optimizer",
    "build_param_groups",
    "build_scheduler",
    "check_resumed_run_config",
    "codebook_usage",
    "config_to_dict",
    "gather_uneven",
    "latest_checkpoint",
    "load_config",
    "log_metrics",
    "prune_checkpoints",
    "read_metrics",
    "resume_training_state",
    "save_training_checkpoint",
]
