# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""The whole BEATs pipeline on built-in synthetic data, on a laptop CPU, with nothing downloaded.

    beats-hf demo                      # or: python training/demo.py          (3-6 min on 2 CPU cores)
    beats-hf demo --preset quick       # well under a minute: the CI version, same stages with fewer steps

Stages: generate the labelled synthetic sound-event data (beats_hf.synthetic_sounds) -> iteration-1 masked audio
modelling with the random-projection tokenizer -> self-distilled tokenizer (teacher: the iteration-1 encoder) ->
iteration-2 masked audio modelling -> fine-tune the iteration-2 encoder -> evaluate on the test split ->
classify a test clip with `pipeline("audio-classification")`. Then a linear probe of the frozen iteration-1 and
iteration-2 encoders against a randomly initialised one shows what pre-training bought.

Prints a results table and writes `results.json`, `loss_curves.png` and `codebook_usage.png` into `output_dir`.
Re-running continues: finished stages are skipped (the chain's `stage_done.json` markers). An `output_dir` that holds
a run with another preset, seed or clip length is refused (`demo_settings.json`), so no stage is reused from it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate as evaluate_script  # noqa: E402
import finetune  # noqa: E402
import run_iterations  # noqa: E402

from beats_hf import BeatsConfig, BeatsFeatureExtractor, BeatsModel  # noqa: E402
from beats_hf.audio_io import load_audio  # noqa: E402
from beats_hf.probing import linear_probe_accuracy, pooled_embeddings  # noqa: E402
from beats_hf.synthetic_sounds import SYNTHETIC_CLASSES, generate_synthetic_dataset  # noqa: E402
from beats_hf.training_utils import load_config, read_metrics  # noqa: E402

logger = logging.getLogger("demo")

# A small BEATs (about 0.4M parameters): the release architecture's structure at toy width.
DEMO_MODEL = {
    "patch_embedding_dim": 64,
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "num_buckets": 64,
    "max_bucket_distance": 128,
    "label_predictor_num_layers": 1,
    "codebook_size": 64,
    "codebook_dim": 16,
}

PRESETS: dict[str, dict[str, int]] = {
    # steps per stage and clips per class; "full" takes 3-6 min on 2 CPU cores, "quick" well under that.
    "full": {"mam_steps": 600, "tokenizer_steps": 300, "finetune_steps": 500, "train": 40, "eval": 10},
    "quick": {"mam_steps": 40, "tokenizer_steps": 30, "finetune_steps": 60, "train": 12, "eval": 4},
}


@dataclass
class DemoConfig:
    output_dir: str = field(
        default="", metadata={"help": "where the run goes (default: runs/demo, runs/demo-quick for --preset quick)"}
    )
    preset: str = field(default="full", metadata={"help": "full (3-6 min on 2 cores) or quick (CI, faster)"})
    seed: int = 0
    clip_seconds: float = 2.0
    threads: int = field(
        default=1, metadata={"help": "torch threads; tiny models run fastest on one (0: torch default)"}
    )

    def __post_init__(self) -> None:
        # One folder per preset by default, so that trying the quick preset first does not block the full one.
        if not self.output_dir:
            self.output_dir = "runs/demo" if self.preset == "full" else f"runs/demo-{self.preset}"


SETTINGS_FILE = "demo_settings.json"


def check_settings(root: Path, config: DemoConfig) -> None:
    """
    Record the settings that decide a demo run's results in `root`, or refuse a `root` that holds a run made with
    other ones: its finished stages would be skipped and their numbers shown as if they came from these settings.
    """
    settings = {"preset": config.preset, "seed": config.seed, "clip_seconds": config.clip_seconds}
    path = root / SETTINGS_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        differing = [
            f"{key} {stored.get(key)!r} (now {value!r})" for key, value in settings.items() if stored.get(key) != value
        ]
        if differing:
            raise ValueError(
                f"{root} holds a demo run made with {', '.join(differing)}; re-running continues a run with the "
                f"same settings only. Choose another --output_dir, or delete {root} to start over."
            )
        return
    if root.is_dir() and any(root.iterdir()):
        # A run from before the settings were recorded, or a folder that is not a demo run at all: its settings
        # cannot be checked, so its stages cannot be trusted to be this run's.
        raise ValueError(
            f"{root} is not empty but holds no {SETTINGS_FILE}, so it cannot be checked to be a demo run with these "
            f"settings. Choose another --output_dir, or delete {root} to start over."
        )
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run every stage (skipping finished ones) and return the results that the table and plots show."""
    if config.preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {config.preset!r}")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    preset = PRESETS[config.preset]
    root = Path(config.output_dir)
    check_settings(root, config)
    started = time.perf_counter()

    data_dir = generate_synthetic_dataset(
        root / "data",
        seed=config.seed,
        clips_per_class={"train": preset["train"], "validation": preset["eval"], "test": preset["eval"]},
        duration=config.clip_seconds,
    )
    train, validation, test = (str(data_dir / f"{split}.csv") for split in ("train", "validation", "test"))

    common = {"max_seconds": config.clip_seconds, "num_workers": 0, "mixed_precision": "no"}
    chain = run_iterations.ChainConfig(
        output_dir=str(root / "pretraining"),
        train_data=train,
        iterations=2,
        model=dict(DEMO_MODEL),
        pretrain={
            **common,
            "max_steps": preset["mam_steps"],
            "warmup_steps": preset["mam_steps"] // 10,
            "learning_rate": 2e-3,
            "batch_size": 16,
            "save_steps": preset["mam_steps"],
            "log_steps": max(1, preset["mam_steps"] // 20),
            "log_with": None,
        },
        tokenizer={
            **common,
            "max_steps": preset["tokenizer_steps"],
            "warmup_steps": preset["tokenizer_steps"] // 10,
            "learning_rate": 1e-3,
            "batch_size": 16,
            "save_steps": preset["tokenizer_steps"],
            "log_steps": max(1, preset["tokenizer_steps"] // 20),
            "log_with": None,
            "estimator_num_layers": 2,
        },
        seed=config.seed,
    )
    stages = run_iterations.run_chain(chain)
    chain_root = Path(chain.output_dir)

    finetune_dir = root / "finetune"
    finetune_config = finetune.FinetuneConfig(
        model=str(chain_root / "iter2" / "encoder"),
        output_dir=str(finetune_dir),
        train_data=train,
        validation_data=validation,
        test_data=test,
        learning_rate=3e-3,
        layer_decay=0.9,
        warmup_steps=preset["finetune_steps"] // 10,
        max_steps=preset["finetune_steps"],
        batch_size=16,
        layerdrop=0.0,
        roll=True,
        spec_augment_time_ratio=0.2,
        spec_augment_freq_ratio=0.2,
        eval_steps=max(1, preset["finetune_steps"] // 4),
        save_steps=preset["finetune_steps"],
        log_steps=max(1, preset["finetune_steps"] // 20),
        log_with=None,
        seed=config.seed,
        **common,
    )
    marker = finetune_dir / "final" / "metrics.json"
    # A finished fine-tuning run left its returned metrics in final/metrics.json ("results").
    finetune_metrics = (
        json.loads(marker.read_text())["results"] if marker.is_file() else finetune.main(finetune_config)
    )

    evaluation = evaluate_script.main(
        ["--model", str(finetune_dir / "final"), "--data", test, "--output-dir", str(root / "evaluation")]
    )

    from transformers import pipeline

    classifier = pipeline("audio-classification", model=str(finetune_dir / "final"))
    test_clip = sorted((data_dir / "test").rglob("*.wav"))[0]
    predictions = classifier(load_audio(test_clip), top_k=3)

    probe = linear_probe(root, chain_root, data_dir, config.seed)
    results = {
        "preset": config.preset,
        "seconds": round(time.perf_counter() - started, 1),
        "stages": stages,
        "finetune": {k: v for k, v in finetune_metrics.items() if isinstance(v, (int, float, str))},
        "evaluation": {k: v for k, v in evaluation.items() if isinstance(v, (int, float, str))},
        "pipeline": {"clip": str(test_clip.relative_to(data_dir)), "predictions": predictions},
        "linear_probe": probe,
    }
    (root / "results.json").write_text(json.dumps(results, indent=2, default=str))
    write_plots(root, chain_root, finetune_dir)
    return results


def linear_probe(root: Path, chain_root: Path, data_dir: Path, seed: int) -> dict[str, float]:
    """Test accuracy of a logistic regression on frozen pooled embeddings: random init vs iter1 vs iter2."""
    feature_extractor = BeatsFeatureExtractor()
    splits = {}
    for split in ("train", "test"):
        import csv

        with (data_dir / f"{split}.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        waveforms = [load_audio(data_dir / row["path"]) for row in rows]
        labels = [SYNTHETIC_CLASSES.index(row["label"]) for row in rows]
        splits[split] = (waveforms, labels)
    torch.manual_seed(seed)
    encoders = {
        "random_init": BeatsModel(BeatsConfig(**DEMO_MODEL)),
        "iter1": BeatsModel.from_pretrained(chain_root / "iter1" / "encoder"),
        "iter2": BeatsModel.from_pretrained(chain_root / "iter2" / "encoder"),
    }
    accuracies = {}
    for name, encoder in encoders.items():
        features = {split: pooled_embeddings(encoder, feature_extractor, splits[split][0]) for split in splits}
        accuracies[name] = linear_probe_accuracy(
            features["train"], splits["train"][1], features["test"], splits["test"][1], seed=seed
        )
    return accuracies


def write_plots(root: Path, chain_root: Path, finetune_dir: Path) -> None:
    """Loss curves of every stage and the tokenizers' codebook usage, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {
        "iter1 MAM": (chain_root / "iter1", "mam/loss"),
        "tokenizer iter2": (chain_root / "tokenizer_iter2", "train/distill_loss"),
        "iter2 MAM": (chain_root / "iter2", "mam/loss"),
        "fine-tuning": (finetune_dir, "train/loss"),
    }
    figure, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2))
    for axis, (title, (run_dir, key)) in zip(axes, curves.items()):
        records = [r for r in read_metrics(run_dir) if key in r]
        axis.plot([r["step"] for r in records], [r[key] for r in records])
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.set_ylabel(key)
    figure.tight_layout()
    figure.savefig(root / "loss_curves.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(5, 3.2))
    records = [r for r in read_metrics(chain_root / "tokenizer_iter2") if "tokenizer/codes_used" in r]
    axis.plot([r["step"] for r in records], [r["tokenizer/codes_used"] for r in records], marker="o")
    axis.axhline(DEMO_MODEL["codebook_size"], linestyle="--", color="grey", label="codebook size")
    axis.set_xlabel("step")
    axis.set_ylabel("codes used")
    axis.set_title("tokenizer iter2 codebook usage")
    axis.legend()
    figure.tight_layout()
    figure.savefig(root / "codebook_usage.png", dpi=100)
    plt.close(figure)


def _last(run_dir: Path, key: str) -> float | None:
    values = [record[key] for record in read_metrics(run_dir) if key in record]
    return values[-1] if values else None


def summary_rows(results: dict[str, Any], root: Path) -> list[tuple[str, Any, Any, Any]]:
    """(stage, final training loss, codes in use, accuracy) for every stage of the demo."""
    chain_root = root / "pretraining"
    rows = []
    for stage in results["stages"]:
        metrics, run_dir = stage.get("metrics", {}), chain_root / stage["stage"]
        if stage["kind"] == "pretrain":
            rows.append(
                (
                    f"{stage['stage']} MAM",
                    metrics.get("mam/loss"),
                    metrics.get("mam/distinct_target_codes"),
                    metrics.get("mam/masked_accuracy"),
                )
            )
        else:
            rows.append((stage["stage"], _last(run_dir, "train/loss"), metrics.get("codes_used"), None))
    finetune_metrics = results["finetune"]
    rows.append(
        ("fine-tune iter2", _last(root / "finetune", "train/loss"), None, finetune_metrics.get("validation/accuracy"))
    )
    rows.append(("test evaluation", None, None, results["evaluation"].get("accuracy")))
    return rows


def print_table(results: dict[str, Any], root: Path) -> None:
    print(f"\nBEATs demo ({results['preset']} preset) finished in {results['seconds']:.0f} s\n")
    print(f"{'stage':<22}{'final loss':>12}{'codes used':>12}{'accuracy':>10}")
    for name, loss, codes, accuracy in summary_rows(results, root):
        print(f"{name:<22}{_fmt(loss):>12}{_fmt(codes, 0):>12}{_fmt(accuracy):>10}")
    print(
        f"\n(MAM accuracy: masked-patch label accuracy; codes: distinct tokenizer labels in use, of "
        f"{DEMO_MODEL['codebook_size']}.)"
    )
    print(f"\nLinear probe on frozen encoders (test accuracy, chance = {1 / len(SYNTHETIC_CLASSES):.2f}):")
    for name, accuracy in results["linear_probe"].items():
        print(f"  {name:<12} {accuracy:.3f}")
    top = results["pipeline"]["predictions"][0]
    print(f"\npipeline('audio-classification') on {results['pipeline']['clip']}: {top['label']} ({top['score']:.3f})")


def _fmt(value: Any, decimals: int = 3) -> str:
    return f"{value:.{decimals}f}" if isinstance(value, (int, float)) else "-"


def main(config: DemoConfig) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    results = run_demo(config)
    print_table(results, Path(config.output_dir))
    print(f"\nWrote {Path(config.output_dir) / 'results.json'}, loss_curves.png and codebook_usage.png")
    return results


if __name__ == "__main__":
    main(load_config(DemoConfig, description=__doc__))
