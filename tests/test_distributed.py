# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""
The training scripts in two data-parallel processes (torchrun + gloo on CPU, the code path of a multi-GPU run):
pre-training with an interruption and a resume, the self-distilled tokenizer, and fine-tuning with evaluation.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from beats_hf.synthetic_sounds import generate_synthetic_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--max_seconds", "1.0", "--batch_size", "4", "--warmup_steps", "1", "--log_with", "none"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(script: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(REPO_ROOT / "training" / script)]
    # Accelerate only treats a torchrun CPU job as multi-process when told it runs on the CPU.
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env)
    if completed.returncode != 0:
        # torchrun's own summary hides the worker's error: show the ranks' tracebacks first.
        output = completed.stdout + completed.stderr
        worker_lines = [line for line in output.splitlines() if line.startswith("[rank") or "Error" in line]
        pytest.fail(f"{script} failed ({completed.returncode}):\n" + "\n".join(worker_lines[-60:]) + output[-3000:])
    return completed


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_dataset(root, seed=0, clips_per_class={"train": 1, "validation": 1, "test": 1}, duration=1.0)
    return root


def test_two_process_pretrain_tokenizer_and_finetune(synthetic, tmp_path):
    pretrain_dir = tmp_path / "pretrain"
    common = ["--config", "training/configs/pretrain_tiny.yaml", "--train_data", str(synthetic / "train.csv")]
    common += ["--output_dir", str(pretrain_dir), "--max_steps", "4", "--save_steps", "2", *TINY]
    first = torchrun("pretrain.py", *common, "--stop_after_steps", "2")
    assert "8 clips x 1 views per step" in first.stdout + first.stderr  # 2 processes x 4 clips
    # Each process saved its own RNG state, so the resumed run replays both data streams.
    checkpoint = pretrain_dir / "checkpoints" / "step_2"
    assert (checkpoint / "random_states_0.pkl").is_file() and (checkpoint / "random_states_1.pkl").is_file()
    resumed = torchrun("pretrain.py", *common, "--resume", "latest")
    assert "Resumed from" in resumed.stdout + resumed.stderr
    assert (pretrain_dir / "encoder" / "model.safetensors").is_file()
    history = [json.loads(line) for line in (pretrain_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(entry["step"] for entry in history) == 4

    tokenizer_dir = tmp_path / "tokenizer"
    torchrun(
        "train_tokenizer.py",
        *["--config", "training/configs/tokenizer_tiny.yaml", "--teacher_path", str(pretrain_dir / "encoder")],
        *["--train_data", str(synthetic / "train.csv"), "--output_dir", str(tokenizer_dir), "--max_steps", "4"],
        *["--save_steps", "2", "--min_codes_used_fraction", "0", *TINY],
    )
    assert (tokenizer_dir / "final" / "model.safetensors").is_file()

    finetune_dir = tmp_path / "finetune"
    torchrun(
        "finetune.py",
        *["--config", "training/recipes/synthetic.yaml", "--model", str(pretrain_dir / "encoder")],
        *["--synthetic_data_dir", str(tmp_path / "synthetic_data"), "--synthetic_train_clips_per_class", "2"],
        *["--synthetic_eval_clips_per_class", "1", "--output_dir", str(finetune_dir), "--max_steps", "2"],
        *["--eval_steps", "2", "--save_steps", "2", *TINY],
    )
    report = json.loads((finetune_dir / "final" / "metrics.json").read_text())
    # Evaluation gathers the two shards without the duplicates a distributed sampler pads with: 10 classes x 1 clip.
    assert report["metrics"]["test"]["num_clips"] == 10


def test_two_process_chain_runs_every_stage_in_the_same_processes(synthetic, tmp_path):
    # The stages share the processes (and their process group): none may tear it down before the chain ends.
    tiny_run = "max_steps: 2, warmup_steps: 1, batch_size: 4, max_seconds: 1.0, num_workers: 0, save_steps: 2"
    config = tmp_path / "chain.yaml"
    config.write_text(
        f"""output_dir: {tmp_path / "chain"}
train_data: {synthetic / "train.csv"}
iterations: 2
iter3_plus: true
finetune_train_data: {synthetic / "train.csv"}
finetune_validation_data: {synthetic / "validation.csv"}
model: {{patch_embedding_dim: 32, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4,
  intermediate_size: 64, num_conv_pos_embeddings: 16, num_conv_pos_embedding_groups: 4, num_buckets: 32,
  max_bucket_distance: 64, label_predictor_num_layers: 1, codebook_size: 16, codebook_dim: 8}}
pretrain: {{{tiny_run}, log_with: null}}
tokenizer: {{{tiny_run}, log_with: null, estimator_num_layers: 1, min_codes_used_fraction: 0.0}}
finetune: {{{tiny_run}, eval_steps: 2, log_with: null}}
"""
    )
    torchrun("run_iterations.py", "--config", str(config))
    stages = ["iter1", "tokenizer_iter2", "iter2", "iter2_finetuned", "tokenizer_iter3_plus", "iter3_plus"]
    for stage in stages:
        assert (tmp_path / "chain" / stage / "stage_done.json").is_file(), stage


def test_two_process_evaluation_counts_every_clip_once_when_one_is_unreadable(synthetic, tmp_path):
    # The evaluation shards then hold different numbers of usable clips (with batches of one, one process even gets
    # an empty batch): the metrics must be those of one process evaluating the same model on the same clips.
    import csv

    import torch
    from accelerate import Accelerator

    from beats_hf import BeatsForAudioClassification

    sys.path.insert(0, str(REPO_ROOT / "training"))
    import finetune

    rows = list(csv.DictReader((synthetic / "validation.csv").open()))
    (tmp_path / "broken.wav").write_bytes(b"")
    validation = tmp_path / "validation_with_broken_clip.csv"
    with validation.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        for index, row in enumerate(rows):
            writer.writerow({"path": str(synthetic / row["path"]), "label": row["label"]})
            if index == 2:
                writer.writerow({"path": str(tmp_path / "broken.wav"), "label": row["label"]})
    encoder = tmp_path / "encoder"
    torchrun(
        "pretrain.py",
        *["--config", "training/configs/pretrain_tiny.yaml", "--train_data", str(synthetic / "train.csv")],
        *["--output_dir", str(tmp_path / "pretrain"), "--max_steps", "1", *TINY],
    )
    (tmp_path / "pretrain" / "encoder").rename(encoder)
    output = tmp_path / "finetune"
    arguments = ["--model", str(encoder), "--train_data", str(synthetic / "train.csv")]
    arguments += ["--validation_data", str(validation), "--output_dir", str(output), "--max_steps", "1"]
    arguments += ["--eval_steps", "0", "--save_steps", "0", "--eval_batch_size", "1", "--num_workers", "0", *TINY]
    torchrun("finetune.py", *arguments)
    distributed = json.loads((output / "final" / "metrics.json").read_text())["metrics"]["validation"]
    assert distributed["num_clips"] == len(rows) and distributed["num_skipped_clips"] == 1

    config = finetune.FinetuneConfig(
        model=str(encoder),
        train_data=str(synthetic / "train.csv"),
        validation_data=str(validation),
        output_dir=str(tmp_path / "single"),
        max_seconds=1.0,
        eval_batch_size=3,
        num_workers=0,
    )
    data = finetune.prepare_data(config)
    feature_extractor = finetune.load_feature_extractor(config)
    model = BeatsForAudioClassification.from_pretrained(output / "final").eval()
    accelerator = Accelerator(cpu=True)
    loader = finetune.build_loader(config, data.validation, data, feature_extractor, False, accelerator)
    loss_type = finetune.resolve_loss_type(config.loss, data.multi_label, config.mixup_alpha)
    with torch.no_grad():
        single = finetune.evaluate(model, loader, feature_extractor, accelerator, data.multi_label, loss_type)
    assert single["num_clips"] == len(rows) and single["num_skipped_clips"] == 1
    assert abs(single["loss"] - distributed["loss"]) <= 1e-5
    assert single["accuracy"] == distributed["accuracy"]
