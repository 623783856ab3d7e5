# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""The whole iterative BEATs pre-training chain from one config (paper Figure 1 and section 4.2).

    iter1 MAM (random-projection tokenizer)
      -> tokenizer_iter2 (teacher: iter1 encoder)   -> iter2 MAM
      -> tokenizer_iter3 (teacher: iter2 encoder)   -> iter3 MAM
    and, with `iter3_plus: true`, the supervised branch:
      iter2 fine-tuned on labelled data (training/finetune.py)
      -> tokenizer_iter3_plus (teacher: the fine-tuned iter2, its per-patch classification logits) -> iter3+ MAM

Each stage writes into `output_dir/<stage>/` and, once finished, a `stage_done.json` with its metrics. A stage whose
marker exists is skipped; a stage interrupted after a checkpoint resumes from it (`resume: latest`), so re-running
the same command after an interruption continues where the chain stopped.

    python training/run_iterations.py --config training/configs/chain_tiny.yaml
    accelerate launch training/run_iterations.py --config training/configs/chain_audioset.yaml
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from accelerate import PartialState

sys.path.insert(0, str(Path(__file__).resolve().parent))

import finetune  # noqa: E402
import pretrain  # noqa: E402
import train_tokenizer  # noqa: E402

from beats_hf.training_utils import config_to_dict, destroy_process_group, latest_checkpoint, load_config  # noqa: E402

logger = logging.getLogger("run_iterations")

STAGE_MARKER = "stage_done.json"


@dataclass
class ChainConfig:
    """One config for every stage; `pretrain`, `tokenizer` and `finetune` hold overrides of each script's config."""

    output_dir: str = "runs/beats_chain"
    train_data: str = field(default="", metadata={"help": "unlabelled audio for MAM and tokenizer training"})
    iterations: int = field(default=3, metadata={"help": "MAM iterations to run: 1, 2 or 3"})
    iter3_plus: bool = field(default=False, metadata={"help": "also run the fine-tuned-teacher branch (iter3+)"})
    finetune_train_data: str | None = field(default=None, metadata={"help": "labelled audio (iter3+ teacher)"})
    finetune_validation_data: str | None = None
    model: dict[str, Any] = field(default_factory=dict, metadata={"help": "BeatsConfig fields for every model"})
    pretrain: dict[str, Any] = field(default_factory=dict, metadata={"help": "PretrainConfig overrides"})
    tokenizer: dict[str, Any] = field(default_factory=dict, metadata={"help": "TokenizerTrainConfig overrides"})
    finetune: dict[str, Any] = field(default_factory=dict, metadata={"help": "FinetuneConfig overrides"})
    stage_overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "per-stage overrides, e.g. {iter2: {max_steps: 1000}}"}
    )
    seed: int = 0


@dataclass
class Stage:
    name: str
    kind: str  # pretrain | tokenizer | finetune
    fields: dict[str, Any]


def plan_stages(config: ChainConfig) -> list[Stage]:
    """The stages of the chain in order, each with its script config fields (paths wired to earlier stages)."""
    if config.iterations not in (1, 2, 3):
        raise ValueError(f"iterations must be 1, 2 or 3, got {config.iterations}")
    if config.iter3_plus and (config.iterations < 2 or not config.finetune_train_data):
        raise ValueError("iter3_plus needs iterations >= 2 (its teacher is iter2) and finetune_train_data (labels).")
    root = Path(config.output_dir)
    stages: list[Stage] = []

    def mam(name: str, tokenizer: str) -> None:
        stages.append(Stage(name, "pretrain", {"tokenizer": tokenizer, "model": dict(config.model)}))

    def tokenizer(name: str, teacher: str, iteration: int) -> None:
        stages.append(
            Stage(name, "tokenizer", {"teacher_path": teacher, "iteration": iteration, "model": dict(config.model)})
        )

    mam("iter1", "random_projection")
    for iteration in range(2, config.iterations + 1):
        tokenizer(f"tokenizer_iter{iteration}", str(root / f"iter{iteration - 1}" / "encoder"), iteration)
        mam(f"iter{iteration}", str(root / f"tokenizer_iter{iteration}" / "final"))
    if config.iter3_plus:
        finetune_fields = {"model": str(root / "iter2" / "encoder"), "train_data": config.finetune_train_data}
        if config.finetune_validation_data:
            finetune_fields["validation_data"] = config.finetune_validation_data
        stages.append(Stage("iter2_finetuned", "finetune", finetune_fields))
        tokenizer("tokenizer_iter3_plus", str(root / "iter2_finetuned" / "final"), 3)
        mam("iter3_plus", str(root / "tokenizer_iter3_plus" / "final"))
    _check_overrides(config, stages)
    return stages


# Fields the chain sets to connect each stage to the one before it (and where each stage writes). An override of one
# of them would silently break the chain, e.g. a shared tokenizer.teacher_path would give every tokenizer the same
# teacher instead of the previous iteration's model.
WIRED_FIELDS = {
    "pretrain": ("output_dir", "tokenizer"),
    "tokenizer": ("output_dir", "teacher_path", "iteration"),
    "finetune": ("output_dir", "model"),
}


def _check_overrides(config: ChainConfig, stages: list[Stage]) -> None:
    names = {stage.name: stage.kind for stage in stages}
    unknown = sorted(set(config.stage_overrides) - set(names))
    if unknown:
        raise ValueError(
            f"stage_overrides names stages {unknown} that this chain does not run; its stages are {list(names)} "
            "(iterations and iter3_plus decide which run)."
        )
    shared = {"pretrain": config.pretrain, "tokenizer": config.tokenizer, "finetune": config.finetune}
    sources = [(kind, kind, values) for kind, values in shared.items()]
    sources += [(f"stage_overrides.{name}", names[name], values) for name, values in config.stage_overrides.items()]
    for where, kind, values in sources:
        if not isinstance(values, dict):
            raise ValueError(f"{where} must be a mapping of {kind} config fields, got {values!r}.")
        wired = sorted(set(values) & set(WIRED_FIELDS[kind]))
        if wired:
            raise ValueError(
                f"{where} sets {wired}, which the chain wires itself (each stage reads the previous stage's output "
                "under output_dir). Run that script on its own for a different wiring."
            )


SCRIPTS = {
    "pretrain": (pretrain, pretrain.PretrainConfig),
    "tokenizer": (train_tokenizer, train_tokenizer.TokenizerTrainConfig),
    "finetune": (finetune, finetune.FinetuneConfig),
}


def stage_config(config: ChainConfig, stage: Stage) -> Any:
    """The script config of `stage`: chain defaults, then the kind's overrides, then the stage's own overrides."""
    module, config_class = SCRIPTS[stage.kind]
    shared = {"pretrain": config.pretrain, "tokenizer": config.tokenizer, "finetune": config.finetune}[stage.kind]
    values: dict[str, Any] = {"seed": config.seed, "output_dir": str(Path(config.output_dir) / stage.name)}
    if stage.kind != "finetune":
        values["train_data"] = config.train_data
    values.update(stage.fields)
    for overrides in (shared, config.stage_overrides.get(stage.name, {})):
        for key, value in overrides.items():
            if key == "model" and isinstance(value, dict):
                values["model"] = {**values.get("model", {}), **value}
            else:
                values[key] = value
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"stage {stage.name}: {config_class.__name__} has no fields {unknown}")
    if "model" in values and "model" in known and not isinstance(values["model"], (dict, str)):
        raise ValueError(f"stage {stage.name}: 'model' must be a mapping of BeatsConfig fields")
    return config_class(**values)


def run_chain(config: ChainConfig) -> list[dict[str, Any]]:
    """Run (or continue) every stage; returns one summary per stage (metrics, seconds, whether it was skipped)."""
    if not config.train_data:
        raise ValueError("train_data is required: a folder of audio files, a CSV/JSONL manifest or a dataset.")
    root = Path(config.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "chain_config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    summaries = []
    for stage in plan_stages(config):
        marker = root / stage.name / STAGE_MARKER
        if marker.is_file():
            summary = json.loads(marker.read_text())
            logger.info("stage %s: already done, skipped", stage.name)
            summaries.append({**summary, "skipped": True})
            continue
        script_config = stage_config(config, stage)
        if latest_checkpoint(root / stage.name) is not None and getattr(script_config, "resume", None) is None:
            script_config = dataclasses.replace(script_config, resume="latest")
            logger.info("stage %s: resuming from its latest checkpoint", stage.name)
        logger.info("stage %s: starting (%s)", stage.name, stage.kind)
        started = time.perf_counter()
        metrics = SCRIPTS[stage.kind][0].main(script_config)
        summary = {
            "stage": stage.name,
            "kind": stage.kind,
            "seconds": round(time.perf_counter() - started, 1),
            "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float, str))},
        }
        if (metrics or {}).get("stopped"):
            # Not done: no marker, and the next run of the chain resumes this stage from its latest checkpoint. The
            # later stages need its output, so the chain stops here.
            logger.info(
                "stage %s: stopped at step %s (stop_after_steps); rerun the chain to resume it",
                stage.name,
                summary["metrics"].get("step"),
            )
            summaries.append({**summary, "skipped": False, "stopped": True})
            break
        if PartialState().is_main_process:  # one writer: concurrent writes of one file can interleave
            marker.write_text(json.dumps(summary, indent=2))
        summaries.append({**summary, "skipped": False})
    return summaries


def main(config: ChainConfig) -> list[dict[str, Any]]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    summaries = run_chain(config)
    for summary in summaries:
        state = "skipped (done before)" if summary["skipped"] else f"{summary['seconds']} s"
        if summary.get("stopped"):
            state += f", stopped at step {summary['metrics'].get('step')}: rerun to resume"
        print(f"{summary['stage']:<22} {state}")
    return summaries


if __name__ == "__main__":
    try:
        main(load_config(ChainConfig, description=__doc__))
    finally:
        destroy_process_group()
