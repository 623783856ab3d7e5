# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""End-to-end tests of training/pretrain.py (masked audio modelling) on generated audio, on the CPU."""

import csv
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from beats_hf import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForMaskedAudioModeling,
    BeatsModel,
    BeatsRandomProjectionTokenizer,
    BeatsTokenizerModel,
)
from beats_hf.synthetic_sounds import generate_synthetic_dataset
from training.pretrain import MaskedPredictionMeter, PretrainConfig, main, masked_views_forward_backward

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {
    "patch_embedding_dim": 32,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "label_predictor_num_layers": 1,
    "codebook_size": 16,
    "codebook_dim": 8,
}


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    # Accelerate keeps process-wide singletons; each in-process run starts from a clean state.
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_dataset(root, seed=0, clips_per_class={"train": 1, "validation": 0, "test": 0}, duration=1.0)
    return root / "train.csv"


def tiny_config(train_csv: Path, output_dir: Path, **overrides) -> PretrainConfig:
    values = dict(
        train_data=str(train_csv),
        max_seconds=1.0,
        num_workers=0,
        model=dict(TINY_MODEL),
        batch_size=4,
        learning_rate=1e-3,
        warmup_steps=2,
        max_steps=4,
        log_steps=2,
        save_steps=2,
        save_total_limit=1,
        output_dir=str(output_dir),
        log_with=None,
    )
    return PretrainConfig(**{**values, **overrides})


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_pretrain_end_to_end(train_csv, tmp_path):
    results = main(tiny_config(train_csv, tmp_path, log_with="tensorboard"))
    assert results["step"] == 4 and len(results["history"]) == 2
    for key in ("mam/loss", "mam/masked_accuracy", "mam/distinct_predicted_codes", "mam/distinct_target_codes"):
        assert key in results and results[key] == results[key]  # present and not NaN
    assert 1 <= results["mam/distinct_target_codes"] <= 16 and results["lr"] > 0 and results["grad_norm"] > 0
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_4"]  # pruned to save_total_limit
    assert list((tmp_path / "pretrain").rglob("events.out.tfevents.*"))
    model = BeatsForMaskedAudioModeling.from_pretrained(tmp_path / "final")
    encoder = BeatsModel.from_pretrained(tmp_path / "encoder")
    assert model.config.hidden_dropout == 0.1 and model.config.layerdrop == 0.0  # Table 4 pre-training values
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, model.beats.state_dict()[name])
    assert (tmp_path / "encoder" / "preprocessor_config.json").is_file()
    tokenizer = BeatsRandomProjectionTokenizer.from_pretrained(tmp_path / "tokenizer")
    assert torch.equal(tokenizer.codebook, BeatsRandomProjectionTokenizer(tokenizer.config).codebook)


def test_overfitting_a_fixed_batch_lowers_the_loss(train_csv, tmp_path):
    rows = list(csv.DictReader(open(train_csv)))[:4]
    manifest = train_csv.parent / "four_clips.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    model = {**TINY_MODEL, "hidden_dropout": 0.0, "attention_dropout": 0.0}
    config = tiny_config(
        manifest,
        tmp_path,
        model=model,
        crop="start",
        learning_rate=3e-3,
        max_steps=40,
        warmup_steps=5,
        log_steps=10,
        save_steps=40,
    )
    losses = [entry["mam/loss"] for entry in main(config)["history"]]
    assert len(losses) == 4
    # Uniform guessing over 16 codes costs ln 16 = 2.77; the masks change every step, the four clips do not.
    assert losses[-1] < 0.75 * losses[0] and losses[-1] == min(losses), losses


def test_interrupted_run_resumes_to_the_same_weights(train_csv, tmp_path):
    # 10 clips, batches of 4 (drop_last): 2 batches per epoch, so 6 steps cross two epoch boundaries and the
    # interruption after step 3 falls in the middle of an epoch. Dropout (0.1) exercises the restored RNG state.
    uninterrupted = tiny_config(train_csv, tmp_path / "a", max_steps=6, save_steps=3)
    main(uninterrupted)
    interrupted = dataclasses.replace(uninterrupted, output_dir=str(tmp_path / "b"), stop_after_steps=3)
    assert main(interrupted)["step"] == 3
    assert not (tmp_path / "b" / "final").exists()
    resumed = main(dataclasses.replace(interrupted, stop_after_steps=None, resume="latest"))
    assert resumed["step"] == 6 and resumed["epoch"] == 2
    expected, actual = _weights(tmp_path / "a" / "final"), _weights(tmp_path / "b" / "final")
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_multi_mask_with_inverse_block_masks(train_csv, tmp_path):
    config = tiny_config(train_csv, tmp_path, num_mask_views=2, mask_type="inverse_block", max_steps=2)
    results = main(config)
    assert results["step"] == 2 and results["mam/loss"] > 0


def test_views_in_several_passes_give_the_same_gradient():
    from accelerate import Accelerator

    from beats_hf.collators import DataCollatorForMaskedAudioModeling

    accelerator = Accelerator(cpu=True)
    config = BeatsConfig(**TINY_MODEL, hidden_dropout=0.0, attention_dropout=0.0, layerdrop=0.0)
    model = BeatsForMaskedAudioModeling(config)
    generator = torch.Generator().manual_seed(0)
    items = [{"waveform": 0.1 * torch.randn(12000 + 2000 * i, generator=generator).numpy()} for i in range(3)]
    batch = DataCollatorForMaskedAudioModeling(BeatsFeatureExtractor(), config, num_mask_views=2)(items)
    labels = BeatsRandomProjectionTokenizer(config)(batch["input_values"], batch["attention_mask"]).token_ids
    inputs = (batch["input_values"], batch["attention_mask"], batch["bool_masked_pos"], batch["clip_index"], labels)
    gradients = []
    for views_per_pass in (None, 4, 1):
        model.zero_grad()
        meter = MaskedPredictionMeter(config.codebook_size, torch.device("cpu"))
        masked_views_forward_backward(accelerator, model, meter, *inputs, views_per_pass)
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    scale = max(g.abs().max() for g in gradients[0].values())
    for other in gradients[1:]:
        assert other.keys() == gradients[0].keys()
        assert max((gradients[0][name] - other[name]).abs().max() for name in other) < 1e-5 * scale


def test_label_cache_run_with_a_trained_tokenizer(train_csv, tmp_path):
    tokenizer_dir = tmp_path / "tokenizer_iter2"
    BeatsTokenizerModel(BeatsConfig(**TINY_MODEL)).save_pretrained(tokenizer_dir)
    BeatsFeatureExtractor().save_pretrained(tokenizer_dir)
    config = tiny_config(
        train_csv,
        tmp_path / "run",
        tokenizer=str(tokenizer_dir),
        label_cache=True,
        crop="start",
        max_steps=4,
        batch_size=5,
    )
    results = main(config)
    assert (tmp_path / "run" / "tokenizer" / "model.safetensors").is_file()
    # Epoch 0 (steps 1-2) tokenizes all 10 clips; epoch 1 (steps 3-4) finds them all in the cache.
    assert (results["label_cache_misses"], results["label_cache_hits"]) == (10, 10)
    assert list((tmp_path / "run" / "label_cache").glob("labels-*.safetensors"))
    with pytest.raises(ValueError, match="label_cache needs crop='start'"):
        main(dataclasses.replace(config, crop="random"))


def test_random_projection_tokenizer_of_an_existing_run_must_match_the_config(tmp_path):
    # A folder keeps the random-projection tokenizer its run was trained against; another seed (or codebook size)
    # is a different tokenizer and must not be swapped for the saved one silently.
    from accelerate import Accelerator

    from training.pretrain import load_tokenizer

    accelerator = Accelerator(cpu=True)
    model_config = BeatsConfig(**TINY_MODEL)
    first, _ = load_tokenizer(
        PretrainConfig(train_data="x", random_projection_seed=3), model_config, tmp_path, accelerator
    )
    again, _ = load_tokenizer(
        PretrainConfig(train_data="x", random_projection_seed=3), model_config, tmp_path, accelerator
    )
    assert first.config.random_projection_seed == 3 and torch.equal(first.codebook, again.codebook)
    with pytest.raises(ValueError, match="random_projection_seed=3 but this run asks for random_projection_seed=4"):
        load_tokenizer(PretrainConfig(train_data="x", random_projection_seed=4), model_config, tmp_path, accelerator)
    smaller = BeatsConfig(**{**TINY_MODEL, "codebook_size": TINY_MODEL["codebook_size"] // 2})
    with pytest.raises(ValueError, match="codebook_size"):
        load_tokenizer(PretrainConfig(train_data="x", random_projection_seed=3), smaller, tmp_path, accelerator)


def test_command_line_run(train_csv, tmp_path):
    command = [
        sys.executable,
        str(REPO_ROOT / "training" / "pretrain.py"),
        "--config",
        str(REPO_ROOT / "training" / "configs" / "pretrain_tiny.yaml"),
        "--train_data",
        str(train_csv),
        "--output_dir",
        str(tmp_path),
        "--max_seconds",
        "1.0",
        "--batch_size",
        "4",
        "--max_steps",
        "2",
        "--warmup_steps",
        "1",
        "--num_workers",
        "1",
        "--log_with",
        "none",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "final" / "model.safetensors").is_file() and (tmp_path / "encoder" / "config.json").is_file()
    assert (tmp_path / "pretrain_config.yaml").read_text().startswith("train_data:")


def test_a_resume_with_other_settings_is_refused(train_csv, tmp_path):
    # The checkpoint's step counters, data position and schedule belong to its settings: another batch size (or
    # schedule, data, model, ...) would silently continue a different run. Logging and cadence may change.
    config = tiny_config(train_csv, tmp_path, max_steps=4, stop_after_steps=2)
    assert main(config)["step"] == 2
    with pytest.raises(ValueError, match=r"other settings \(batch_size: 4 -> 5\)"):
        main(dataclasses.replace(config, batch_size=5, stop_after_steps=None, resume="latest"))
    with pytest.raises(ValueError, match=r"learning_rate: 0.001 -> 0.002.*warmup_steps: 2 -> 1"):
        main(dataclasses.replace(config, learning_rate=2e-3, warmup_steps=1, stop_after_steps=None, resume="latest"))
    resumed = main(dataclasses.replace(config, stop_after_steps=None, resume="latest", log_steps=1, save_steps=4))
    assert resumed["step"] == 4 and not resumed["stopped"]


def test_an_interrupted_checkpoint_save_is_never_resumed_from(tmp_path):
    # A run killed while writing step_4 must resume from step_2, not from a half-written step_4.
    from beats_hf.training_utils import latest_checkpoint, save_training_checkpoint

    class Killed(Exception):
        pass

    class FakeAccelerator:
        is_main_process, num_processes, kill = True, 1, False

        def wait_for_everyone(self):
            pass

        def save_state(self, folder):
            Path(folder).mkdir(parents=True)
            (Path(folder) / "model.safetensors").write_bytes(b"complete" if not self.kill else b"cut sh")
            if self.kill:
                raise Killed

    accelerator = FakeAccelerator()
    assert save_training_checkpoint(accelerator, tmp_path, 2, keep=1) == tmp_path / "checkpoints" / "step_2"
    accelerator.kill = True
    with pytest.raises(Killed):
        save_training_checkpoint(accelerator, tmp_path, 4, keep=1)
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_2"
    accelerator.kill = False  # the next save of that step replaces the leftover
    save_training_checkpoint(accelerator, tmp_path, 4, keep=1, run_config={"seed": 0})
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_4"]
    assert (tmp_path / "checkpoints" / "step_4" / "model.safetensors").read_bytes() == b"complete"


def test_an_epoch_without_a_readable_clip_is_an_error(tmp_path):
    broken = []
    for index in range(4):
        path = tmp_path / f"broken{index}.wav"
        path.write_bytes(b"")
        broken.append({"path": str(path), "label": "none"})
    manifest = tmp_path / "broken.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(broken)
    with pytest.raises(ValueError, match="gave no usable batch"):
        main(tiny_config(manifest, tmp_path / "run", batch_size=2))


def test_settings_that_would_be_ignored_are_refused():
    from training.pretrain import check_config

    check_config(PretrainConfig(train_data="x", model={"mask_ratio": 0.75}))  # the same value is harmless
    with pytest.raises(ValueError, match=r"model.mask_ratio \(0.5\) differs from mask_ratio \(0.75\)"):
        check_config(PretrainConfig(train_data="x", model={"mask_ratio": 0.5}))
    for stop in (0, 400_001):  # 0 used to mean "no stop", beyond max_steps it never triggered
        with pytest.raises(ValueError, match="stop_after_steps must be null or in"):
            check_config(PretrainConfig(train_data="x", stop_after_steps=stop))


def test_a_trained_tokenizer_needs_its_feature_extractor_and_stays_the_runs_tokenizer(tmp_path):
    from accelerate import Accelerator

    from training.pretrain import load_tokenizer

    accelerator, model_config = Accelerator(cpu=True), BeatsConfig(**TINY_MODEL)
    bare = tmp_path / "bare"
    BeatsTokenizerModel(model_config).save_pretrained(bare)
    with pytest.raises(ValueError, match="no preprocessor_config.json"):
        load_tokenizer(
            PretrainConfig(train_data="x", tokenizer=str(bare)), model_config, tmp_path / "run", accelerator
        )

    tokenizers = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        tokenizers.append(tmp_path / f"tokenizer_{seed}")
        BeatsTokenizerModel(model_config).save_pretrained(tokenizers[-1])
        BeatsFeatureExtractor().save_pretrained(tokenizers[-1])
    run = tmp_path / "run"
    load_tokenizer(PretrainConfig(train_data="x", tokenizer=str(tokenizers[0])), model_config, run, accelerator)
    assert (run / "tokenizer" / "model.safetensors").is_file()
    # Resuming with the same tokenizer is fine; with another one the checkpoints would mix two sets of labels.
    load_tokenizer(PretrainConfig(train_data="x", tokenizer=str(tokenizers[0])), model_config, run, accelerator)
    with pytest.raises(ValueError, match="is a different tokenizer"):
        load_tokenizer(PretrainConfig(train_data="x", tokenizer=str(tokenizers[1])), model_config, run, accelerator)
    assert torch.equal(
        BeatsTokenizerModel.from_pretrained(run / "tokenizer").quantize_projection[0].weight,
        BeatsTokenizerModel.from_pretrained(tokenizers[0]).quantize_projection[0].weight,
    )
    # Nor may a run folder of a trained tokenizer be taken for an iteration-1 (random-projection) run.
    with pytest.raises(ValueError, match="architectures=\\['BeatsTokenizerModel'\\]"):
        load_tokenizer(PretrainConfig(train_data="x"), model_config, run, accelerator)
