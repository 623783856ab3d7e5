# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Tokenizer training (paper section 3.2.2): estimator, teacher, distiller, codebook EMA and health, and the script."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file

from beats_hf import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsForMaskedAudioModeling,
    BeatsModel,
    BeatsTokenizerModel,
)
from beats_hf.synthetic_sounds import generate_synthetic_dataset
from beats_hf.tokenizer_training import (
    DEFAULT_LEARNING_RATES,
    BeatsTeacher,
    BeatsTokenizerDistiller,
    BeatsTokenizerEstimator,
    CodebookCollapseError,
    CodebookEMA,
    check_codebook_health,
    estimator_config,
    measure_codebook_usage,
    save_tokenizer,
)
from beats_hf.training_utils import load_config
from training.train_tokenizer import (
    TokenizerTrainConfig,
    build_tokenizer,
    load_feature_extractor,
    main,
    resolve_learning_rate,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_YAML = REPO_ROOT / "training" / "configs" / "tokenizer_tiny.yaml"
TINY_MODEL = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "patch_embedding_dim": 32,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "num_buckets": 32,
    "max_bucket_distance": 64,
    "codebook_size": 16,
    "codebook_dim": 8,
}
NUM_TEACHER_LABELS = 5


def tiny_tokenizer(seed: int = 0, **overrides) -> BeatsTokenizerModel:
    torch.manual_seed(seed)
    return BeatsTokenizerModel(BeatsConfig(**{**TINY_MODEL, "layerdrop": 0.0, **overrides}))


def fbank_batch(seed: int = 0, batch_size: int = 2, num_frames: int = 98) -> tuple[torch.Tensor, torch.Tensor]:
    """Random filter banks with one padded clip, so that every loss is checked on real patches only."""
    generator = torch.Generator().manual_seed(seed)
    input_values = torch.randn(batch_size, num_frames, 128, generator=generator)
    attention_mask = torch.ones(batch_size, num_frames, dtype=torch.long)
    attention_mask[-1, num_frames - 40 :] = 0
    return input_values, attention_mask


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # The models are tiny: a second thread only adds synchronisation, and a busy 2-core machine makes it spin.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def teacher_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("teachers")
    torch.manual_seed(0)
    pretrained = BeatsModel(BeatsConfig(**TINY_MODEL))
    pretrained.save_pretrained(root / "pretrained")
    BeatsFeatureExtractor().save_pretrained(root / "pretrained")
    torch.manual_seed(1)
    finetuned = BeatsForAudioClassification(BeatsConfig(**TINY_MODEL, num_labels=NUM_TEACHER_LABELS))
    finetuned.save_pretrained(root / "finetuned")
    BeatsFeatureExtractor().save_pretrained(root / "finetuned")
    BeatsForMaskedAudioModeling(BeatsConfig(**TINY_MODEL)).save_pretrained(root / "masked_audio_modeling")
    tiny_tokenizer().save_pretrained(root / "tokenizer")
    names = ("pretrained", "finetuned", "masked_audio_modeling", "tokenizer")
    return {name: root / name for name in names}


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    # 10 one-second clips per split (one per synthetic class).
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic"),
        seed=0,
        clips_per_class={"train": 1, "validation": 1, "test": 0},
        duration=1.0,
    )


@pytest.fixture
def fresh_accelerate_state():
    # Every in-process main() builds its own Accelerator (its own precision and accumulation settings).
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def script_config(teacher_dir: Path, audio_dir: Path, output_dir: Path, **overrides) -> TokenizerTrainConfig:
    config = load_config(TokenizerTrainConfig, ["--config", str(TINY_YAML)])
    values = {
        "teacher_path": str(teacher_dir),
        "train_data": str(audio_dir / "train.csv"),
        "eval_data": str(audio_dir / "validation.csv"),
        "output_dir": str(output_dir),
        "max_seconds": 1.0,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "warmup_steps": 1,
        "log_steps": 2,
        **overrides,
    }
    return dataclasses.replace(config, **values)


# ----------------------------------------------------------------------------------------------------------------------
# Estimator and teacher


def test_estimator_shapes_and_depth():
    config = estimator_config(BeatsConfig(**TINY_MODEL), num_layers=3)
    assert config.num_hidden_layers == 3 and config.layerdrop == 0.0
    estimator = BeatsTokenizerEstimator(config, target_dim=7)
    assert len(estimator.encoder.layers) == 3
    quantized = torch.nn.functional.normalize(torch.randn(2, 24, 8), dim=-1)
    mask = torch.ones(2, 24, dtype=torch.bool)
    mask[1, 16:] = False
    assert estimator(quantized, mask).shape == (2, 24, 7)
    with pytest.raises(ValueError, match="codebook_dim|shape"):
        estimator(torch.randn(2, 24, 5))
    with pytest.raises(ValueError, match="at least 1"):
        estimator_config(BeatsConfig(**TINY_MODEL), num_layers=0)


def test_teacher_detection_frozen_and_forcing(teacher_dirs):
    pretrained = BeatsTeacher.from_pretrained(teacher_dirs["pretrained"])
    finetuned = BeatsTeacher.from_pretrained(teacher_dirs["finetuned"])
    assert (pretrained.kind, pretrained.target_dim) == ("pretrained", TINY_MODEL["hidden_size"])
    assert (finetuned.kind, finetuned.target_dim) == ("finetuned", NUM_TEACHER_LABELS)
    for teacher in (pretrained, finetuned):
        assert not teacher.model.training
        assert not any(parameter.requires_grad for parameter in teacher.model.parameters())
        assert not isinstance(teacher, torch.nn.Module)  # never a submodule, so never in a state dict
    input_values, attention_mask = fbank_batch()
    targets = finetuned(input_values, attention_mask)
    assert targets.shape == (2, 48, NUM_TEACHER_LABELS) and not targets.requires_grad

    from_pretraining_run = BeatsTeacher.from_pretrained(teacher_dirs["masked_audio_modeling"])
    assert from_pretraining_run.kind == "pretrained" and isinstance(from_pretraining_run.model, BeatsModel)
    forced = BeatsTeacher.from_pretrained(teacher_dirs["finetuned"], kind="pretrained")
    assert isinstance(forced.model, BeatsModel) and forced.target_dim == TINY_MODEL["hidden_size"]
    with pytest.raises(ValueError, match="pre-trained model without a classifier"):
        BeatsTeacher.from_pretrained(teacher_dirs["pretrained"], kind="finetuned")
    with pytest.raises(ValueError, match="holds a tokenizer"):
        BeatsTeacher.from_pretrained(teacher_dirs["tokenizer"])
    with pytest.raises(FileNotFoundError, match="previous iteration"):
        BeatsTeacher.from_pretrained(teacher_dirs["pretrained"] / "missing")


def test_teacher_precision_under_autocast(teacher_dirs):
    input_values, attention_mask = fbank_batch()
    fp32 = BeatsTeacher.from_pretrained(teacher_dirs["pretrained"])
    reference = fp32(input_values, attention_mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_fp32 = fp32(input_values, attention_mask)
        fp32.precision = "autocast"
        in_bf16 = fp32(input_values, attention_mask)
    assert in_fp32.dtype == in_bf16.dtype == torch.float32
    assert torch.equal(in_fp32, reference)  # "fp32" ignores the caller's autocast
    assert not torch.equal(in_bf16, reference)  # "autocast" follows it
    torch.testing.assert_close(in_bf16, reference, atol=0.1, rtol=0.1)


def test_finetuned_teacher_targets_are_per_patch_logits(teacher_dirs):
    teacher = BeatsTeacher.from_pretrained(teacher_dirs["finetuned"])
    model = teacher.model
    input_values, _ = fbank_batch()  # unpadded, so that the clip logits are the plain mean over patches
    targets = teacher(input_values)
    with torch.no_grad():
        expected = model.classifier(model.beats(input_values).last_hidden_state)
        clip_logits = model(input_values).logits
    torch.testing.assert_close(targets, expected)
    torch.testing.assert_close(targets.mean(dim=1), clip_logits)


# ----------------------------------------------------------------------------------------------------------------------
# Distiller


@pytest.mark.parametrize("kind", ["pretrained", "finetuned"])
def test_distillation_loss_decreases_on_a_fixed_batch(teacher_dirs, kind):
    # Iterations 2/3 distil features; iteration 3+ distils the per-patch logits of a fine-tuned teacher (K outputs).
    teacher = BeatsTeacher.from_pretrained(teacher_dirs[kind])
    distiller = BeatsTokenizerDistiller(tiny_tokenizer(hidden_dropout=0.0), teacher.target_dim)
    expected_dim = NUM_TEACHER_LABELS if kind == "finetuned" else TINY_MODEL["hidden_size"]
    assert distiller.estimator.target_dim == expected_dim
    input_values, attention_mask = fbank_batch()
    targets = teacher(input_values, attention_mask)
    optimizer = torch.optim.AdamW(distiller.parameters(), lr=2e-3)
    codebook_ema = CodebookEMA(distiller.quantizer)
    losses = []
    for _ in range(30):
        outputs = distiller(input_values, attention_mask, targets)
        outputs["loss"].backward()
        codebook_ema.add(outputs["encoded"], outputs["token_ids"])
        optimizer.step()
        optimizer.zero_grad()
        codebook_ema.step()
        losses.append(outputs["distill_loss"].item())
    assert outputs["token_ids"][-1, 24:].eq(-100).all()  # the padded patches of the last clip carry no label
    assert losses[-1] < 0.5 * losses[0], losses


def test_distiller_matches_tokenizer_and_initialises_the_codebook_once(monkeypatch):
    distiller = BeatsTokenizerDistiller(tiny_tokenizer(), target_dim=6)
    input_values, attention_mask = fbank_batch()
    targets = torch.randn(2, 48, 6)
    distiller.eval()
    distiller(input_values, attention_mask, targets)
    assert distiller.quantizer.initialized.item() == 0  # evaluation never initialises

    calls = []
    original = distiller.quantizer.initialize_codebook
    monkeypatch.setattr(
        distiller.quantizer, "initialize_codebook", lambda *a, **k: (calls.append(a[0].shape), original(*a, **k))
    )
    distiller.train()
    for seed in range(3):
        outputs = distiller(*fbank_batch(seed), targets)
    assert len(calls) == 1 and calls[0] == (48 + 24, 8)  # k-means on the first batch's real patches only
    assert distiller.quantizer.initialized.item() == 1
    torch.testing.assert_close(distiller.quantizer.codebook, distiller.quantizer.kmeans_codebook)

    # Quantization here (float32, outside autocast) gives the labels of the inference model.
    distiller.eval()
    outputs = distiller(input_values, attention_mask, targets)
    assert torch.equal(outputs["token_ids"], distiller.tokenizer(input_values, attention_mask).token_ids)
    with pytest.raises(ValueError, match="teacher_targets must have shape"):
        distiller(input_values, attention_mask, torch.randn(2, 48, 5))


def test_codebook_ema_runs_once_per_optimizer_step():
    quantizer = tiny_tokenizer().quantizer
    with torch.no_grad():
        quantizer.codebook.copy_(torch.nn.functional.normalize(torch.randn(16, 8), dim=-1))
    reference = type(quantizer)(tiny_tokenizer().config)
    reference.load_state_dict(quantizer.state_dict())
    encoded = [torch.nn.functional.normalize(torch.randn(2, 10, 8), dim=-1) for _ in range(2)]
    token_ids = [torch.randint(0, 16, (2, 10)) for _ in range(2)]
    token_ids[1][0, 5:] = -100  # padding is left out of the statistics

    codebook_ema = CodebookEMA(quantizer)
    for micro_encoded, micro_ids in zip(encoded, token_ids):  # two micro-batches of one optimizer step
        codebook_ema.add(micro_encoded, micro_ids)
    assert torch.equal(quantizer.codebook, reference.codebook)  # nothing moves before the step
    assert codebook_ema.step() == 35 and codebook_ema.num_pending == 0
    real = torch.cat(token_ids).flatten() >= 0
    reference.update_codebook(torch.cat(encoded).flatten(0, 1)[real], torch.cat(token_ids).flatten()[real])
    torch.testing.assert_close(quantizer.codebook, reference.codebook, rtol=0, atol=1e-6)
    torch.testing.assert_close(quantizer.cluster_size, reference.cluster_size, rtol=0, atol=1e-6)


def test_ema_codebook_stays_in_float32_buffers_under_bf16_autocast():
    distiller = BeatsTokenizerDistiller(tiny_tokenizer(), target_dim=6)
    optimizer = torch.optim.AdamW(distiller.parameters(), lr=1e-3)
    quantizer = distiller.quantizer
    buffer_names = {"codebook", "cluster_size", "kmeans_codebook", "kmeans_cluster_size", "initialized"}
    assert buffer_names <= {name for name, _ in quantizer.named_buffers()}
    assert not any(isinstance(getattr(quantizer, name), torch.nn.Parameter) for name in buffer_names)
    assert not list(quantizer.parameters())
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(buffer) for buffer in quantizer.buffers()}

    codebook_ema = CodebookEMA(quantizer)
    targets = torch.randn(2, 48, 6)
    for step in range(6):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = distiller(*fbank_batch(step), targets)
        outputs["loss"].backward()
        codebook_ema.add(outputs["encoded"], outputs["token_ids"])
        optimizer.step()
        optimizer.zero_grad()
        codebook_ema.step()
        if step == 0:
            after_first_step = quantizer.codebook.clone()
    assert quantizer.codebook.dtype == torch.float32 and outputs["encoded"].dtype == torch.float32
    assert not torch.equal(quantizer.codebook, after_first_step)  # the EMA writes were kept
    torch.testing.assert_close(quantizer.codebook.norm(dim=-1), torch.ones(16))
    real_ids = outputs["token_ids"][outputs["token_ids"] >= 0]
    assert real_ids.unique().numel() > 1


# ----------------------------------------------------------------------------------------------------------------------
# Codebook health and saving


def test_collapse_check_raises_with_advice():
    tokenizer = tiny_tokenizer()
    # Identical encodings make k-means put every centroid on the same point (up to rounding, which this removes).
    tokenizer.quantizer.initialize_codebook(torch.nn.functional.normalize(torch.ones(64, 8), dim=-1))
    tokenizer.quantizer.codebook.copy_(tokenizer.quantizer.codebook[:1].expand(16, -1))
    batch = dict(zip(("input_values", "attention_mask"), fbank_batch()))
    usage = measure_codebook_usage(tokenizer, [batch])
    assert usage["codes_used"] == 1 and usage["perplexity"] == pytest.approx(1.0)
    with pytest.raises(CodebookCollapseError) as error:
        check_codebook_health(usage, min_codes_used_fraction=0.1)
    message = str(error.value)
    assert "1 of 16 codes" in message and "must not be used" in message and "learning rate" in message
    check_codebook_health({"codes_used": 8, "usage_fraction": 0.5, "perplexity": 6.0}, min_codes_used_fraction=0.1)


def test_saved_tokenizer_has_no_estimator_and_keeps_the_codebook(tmp_path, teacher_dirs):
    teacher = BeatsTeacher.from_pretrained(teacher_dirs["pretrained"])
    distiller = BeatsTokenizerDistiller(tiny_tokenizer(), teacher.target_dim)
    input_values, attention_mask = fbank_batch()
    outputs = distiller(input_values, attention_mask, teacher(input_values, attention_mask))
    codebook_ema = CodebookEMA(distiller.quantizer)
    codebook_ema.add(outputs["encoded"], outputs["token_ids"])
    codebook_ema.step()

    usage = {"codes_used": 5.0, "usage_fraction": 5 / 16, "perplexity": 4.2}
    save_tokenizer(distiller, tmp_path / "final", BeatsFeatureExtractor(), teacher, usage)
    saved_keys = load_file(tmp_path / "final" / "model.safetensors").keys()
    assert not any("estimator" in key for key in saved_keys)
    loaded, info = BeatsTokenizerModel.from_pretrained(tmp_path / "final", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    for name, buffer in distiller.quantizer.named_buffers():
        assert torch.equal(getattr(loaded.quantizer, name), buffer), name
    loaded.eval()
    distiller.tokenizer.eval()
    assert torch.equal(
        loaded(input_values, attention_mask).token_ids, distiller.tokenizer(input_values, attention_mask).token_ids
    )
    training_info = json.loads((tmp_path / "final" / "tokenizer_training.json").read_text())
    assert training_info["teacher_kind"] == "pretrained" and training_info["teacher_target"] == "last_hidden_state"
    assert training_info["codebook_codes_used"] == 5.0 and training_info["codebook_perplexity"] == 4.2
    assert (tmp_path / "final" / "preprocessor_config.json").is_file()


def test_learning_rate_zero_is_kept_and_only_none_means_the_default():
    # An explicit 0.0 is a value (e.g. to check a pipeline without updates), not "unset": it must not fall back to the
    # paper's default. Only None (the field's default, or `learning_rate: null` in YAML) selects it.
    assert TokenizerTrainConfig().learning_rate is None
    for kind, default in DEFAULT_LEARNING_RATES.items():
        assert resolve_learning_rate(TokenizerTrainConfig(), kind) == default
        assert resolve_learning_rate(TokenizerTrainConfig(learning_rate=0.0), kind) == 0.0
        assert resolve_learning_rate(TokenizerTrainConfig(learning_rate=1e-4), kind) == 1e-4
    from_flag = load_config(TokenizerTrainConfig, ["--learning_rate", "0"])
    assert from_flag.learning_rate == 0.0
    assert resolve_learning_rate(from_flag, "pretrained") == 0.0


def test_build_tokenizer_from_a_beats_encoder(teacher_dirs, audio_dir, tmp_path):
    config = script_config(teacher_dirs["pretrained"], audio_dir, tmp_path, init_from=str(teacher_dirs["finetuned"]))
    tokenizer = build_tokenizer(config)
    encoder = BeatsForAudioClassification.from_pretrained(teacher_dirs["finetuned"]).beats
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tokenizer.beats.state_dict()[name], tensor), name
    assert tokenizer.config.hidden_dropout == 0.1 and tokenizer.config.codebook_size == 16


# ----------------------------------------------------------------------------------------------------------------------
# The script


def test_script_end_to_end_in_process(teacher_dirs, audio_dir, tmp_path, monkeypatch, fresh_accelerate_state):
    from beats_hf.modeling_beats import BeatsVectorQuantizer

    ema_updates = []
    original = BeatsVectorQuantizer.update_codebook
    monkeypatch.setattr(
        BeatsVectorQuantizer, "update_codebook", lambda self, *a: (ema_updates.append(1), original(self, *a))
    )
    config = script_config(teacher_dirs["finetuned"], audio_dir, tmp_path, max_steps=3, gradient_accumulation_steps=2)
    metrics = main(config)
    assert metrics["step"] == 3 and not metrics["stopped"] and metrics["codes_used"] > 1
    assert len(ema_updates) == 3  # one EMA update per optimizer step, not per micro-batch
    final = tmp_path / "final"
    loaded = BeatsTokenizerModel.from_pretrained(final)
    assert loaded.config.codebook_size == 16 and loaded.quantizer.initialized.item() == 1
    info = json.loads((final / "tokenizer_training.json").read_text())
    assert info["teacher_kind"] == "finetuned" and info["target_dim"] == NUM_TEACHER_LABELS
    assert info["config"]["learning_rate"] == 1e-3
    # Checkpoints hold the tokenizer and the estimator, never the teacher.
    checkpoint_keys = load_file(tmp_path / "checkpoints" / "step_3" / "model.safetensors").keys()
    assert all(key.startswith(("tokenizer.", "estimator.")) for key in checkpoint_keys)


def test_script_refuses_a_collapsed_codebook(teacher_dirs, audio_dir, tmp_path, monkeypatch, fresh_accelerate_state):
    from beats_hf.modeling_beats import BeatsVectorQuantizer

    # Forced collapse: the quantizer assigns every patch to code 0, whatever its codebook.
    original = BeatsVectorQuantizer.forward

    def collapse(self, encoded):
        quantized, indices = original(self, encoded)
        return quantized, torch.zeros_like(indices)

    monkeypatch.setattr(BeatsVectorQuantizer, "forward", collapse)
    config = script_config(teacher_dirs["pretrained"], audio_dir, tmp_path, max_steps=1, min_codes_used_fraction=0.25)
    with pytest.raises(CodebookCollapseError, match="Codebook collapse: the tokenizer uses [1-3] of 16 codes"):
        main(config)
    assert (tmp_path / "collapsed" / "model.safetensors").is_file() and not (tmp_path / "final").exists()


def test_resumed_run_matches_an_uninterrupted_one(teacher_dirs, audio_dir, tmp_path):
    # 10 clips, batch 2, accumulation 2: 5 micro-batches and 3 optimizer steps per epoch; stop mid-epoch 0.
    common = {"max_steps": 5, "save_steps": 100, "gradient_accumulation_steps": 2}
    runs = {}
    for name, stops in (("uninterrupted", [None]), ("resumed", [2, None])):
        for stop in stops:
            AcceleratorState._reset_state(reset_partial_state=True)
            GradientState._reset_state()
            resume = "latest" if stop is None and name == "resumed" else None
            config = script_config(
                teacher_dirs["pretrained"], audio_dir, tmp_path / name, stop_after_steps=stop, resume=resume, **common
            )
            runs[name] = main(config)
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert runs["resumed"]["step"] == runs["uninterrupted"]["step"] == 5
    for relative in ("final/model.safetensors", "checkpoints/step_5/model.safetensors"):
        expected = load_file(tmp_path / "uninterrupted" / relative)
        actual = load_file(tmp_path / "resumed" / relative)
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), f"{relative}: {key}"
    assert any(key.endswith("quantizer.codebook") for key in expected)

    # A resume with other settings would continue a different run: refused, naming what changed.
    config = script_config(teacher_dirs["pretrained"], audio_dir, tmp_path / "resumed", resume="latest", **common)
    with pytest.raises(ValueError, match=r"other settings \(batch_size: 2 -> 3\)"):
        main(dataclasses.replace(config, batch_size=3))
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    # A resumed run already past stop_after_steps stops at once instead of training on to max_steps.
    stopped = script_config(teacher_dirs["pretrained"], audio_dir, tmp_path / "stopped", stop_after_steps=2, **common)
    assert main(stopped) == {"step": 2, "stopped": True}
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert main(dataclasses.replace(stopped, stop_after_steps=1, resume="latest")) == {"step": 2, "stopped": True}
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    with pytest.raises(ValueError, match="stop_after_steps must be null or in"):
        main(dataclasses.replace(stopped, stop_after_steps=0))


def test_a_teacher_without_its_feature_extractor_is_refused(teacher_dirs, audio_dir, tmp_path):
    # The fbank statistics the teacher learned with are unknown: the default AudioSet values would be a guess.
    bare = tmp_path / "teacher"
    BeatsModel.from_pretrained(teacher_dirs["pretrained"]).save_pretrained(bare)
    with pytest.raises(ValueError, match="no preprocessor_config.json.*Save its feature extractor"):
        load_feature_extractor(script_config(bare, audio_dir, tmp_path / "run"))
    custom = BeatsFeatureExtractor(fbank_mean=10.0)
    custom.save_pretrained(bare)
    assert load_feature_extractor(script_config(bare, audio_dir, tmp_path / "run")).fbank_mean == 10.0


def test_an_epoch_without_a_readable_clip_is_an_error(teacher_dirs, tmp_path, fresh_accelerate_state):
    # Every clip unreadable: each epoch gives no batch, and the loop used to start the next one for ever.
    import csv
    import signal

    manifest = tmp_path / "broken.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for index in range(4):
            (tmp_path / f"broken{index}.wav").write_bytes(b"")
            writer.writerow([str(tmp_path / f"broken{index}.wav"), "none"])

    def timeout(signum, frame):
        raise TimeoutError("the training loop did not stop")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    try:
        config = script_config(teacher_dirs["pretrained"], tmp_path, tmp_path / "run", max_steps=2)
        with pytest.raises(ValueError, match="gave no usable batch"):
            main(dataclasses.replace(config, train_data=str(manifest), eval_data=None))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_script_runs_as_a_subprocess(teacher_dirs, audio_dir, tmp_path):
    command = [
        sys.executable,
        str(REPO_ROOT / "training" / "train_tokenizer.py"),
        "--config",
        str(TINY_YAML),
        "--teacher_path",
        str(teacher_dirs["pretrained"]),
        "--train_data",
        str(audio_dir / "train.csv"),
        "--output_dir",
        str(tmp_path),
        "--max_steps",
        "2",
        "--warmup_steps",
        "1",
        "--batch_size",
        "2",
        "--max_seconds",
        "1.0",
        "--health_check_batches",
        "2",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "final" / "model.safetensors").is_file()
    assert "codes used" in result.stdout
