# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Fine-tuning: model loading, data splits, recipes, resume, the Trainer path, the script end to end, and accuracy.

The models are tiny (hidden 64, 2 layers) and randomly initialised: no pre-trained tiny model ships with the
project, and a random encoder must learn the synthetic sounds too. Everything runs on one CPU thread, which is
several times faster than two for models this small when the machine is shared.
"""

import csv
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from beats_hf import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsForMaskedAudioModeling,
    BeatsModel,
)
from beats_hf.data import read_audio_records
from beats_hf.sampling import fold_assignments, record_label_sets, split_by_fold, split_by_fraction
from beats_hf.synthetic_sounds import SYNTHETIC_CLASSES, generate_synthetic_dataset
from beats_hf.training_utils import load_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training"))

import finetune  # noqa: E402
import run_audio_classification  # noqa: E402

# Loaded by path: `import evaluate` could find the Hugging Face `evaluate` package instead.
_spec = importlib.util.spec_from_file_location("beats_hf_evaluate_script", REPO / "training" / "evaluate.py")
evaluate_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate_script)

TINY = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    patch_embedding_dim=64,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    num_buckets=32,
    max_bucket_distance=64,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_encoder")
    BeatsModel(BeatsConfig(**TINY)).save_pretrained(path)
    BeatsFeatureExtractor().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """10 classes x (30 train, 10 validation) clips of 2 s, plus small manifests for the quick tests."""
    root = generate_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic"), seed=0, clips_per_class={"train": 30, "validation": 10, "test": 0}
    )
    rows = list(csv.DictReader(open(root / "train.csv")))
    small = [row for row in rows if int(row["path"][-8:-4]) < 3]  # 3 clips per class
    _write_manifest(root / "small_train.csv", small, lambda row: row["label"])
    validation = [row for row in csv.DictReader(open(root / "validation.csv")) if int(row["path"][-8:-4]) < 2]
    _write_manifest(root / "small_validation.csv", validation, lambda row: row["label"])
    # Multi-label: the main event and the quieter distractor mixed into the clip.
    _write_manifest(
        root / "multi_label.csv",
        small,
        lambda row: ";".join([row["label"]] + ([row["distractor"]] if row["distractor"] else [])),
        folds=True,
    )
    return root


def _write_manifest(path: Path, rows, label_of, folds: bool = False) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"] + (["fold"] if folds else []))
        for index, row in enumerate(rows):
            writer.writerow([row["path"], label_of(row)] + ([index % 3 + 1] if folds else []))


def quick_config(model_dir: Path, data: Path, output_dir: Path, **overrides) -> "finetune.FinetuneConfig":
    values = dict(
        model=str(model_dir),
        train_data=str(data / "small_train.csv"),
        validation_data=str(data / "small_validation.csv"),
        output_dir=str(output_dir),
        max_seconds=2.0,
        batch_size=6,
        eval_batch_size=20,
        learning_rate=1e-3,
        warmup_steps=2,
        max_steps=4,
        eval_steps=0,
        save_steps=0,
        log_steps=2,
        num_workers=0,
        log_with="none",
    )
    values.update(overrides)
    return finetune.FinetuneConfig(**values)


# ----------------------------------------------------------------------------------------------------------------------
# Model loading


def _assert_same_encoder(classifier: BeatsForAudioClassification, encoder: BeatsModel) -> None:
    expected = encoder.state_dict()
    loaded = classifier.beats.state_dict()
    assert expected.keys() == loaded.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


def test_classifier_loads_every_encoder_weight_from_encoder_mam_and_classifier_folders(tmp_path, tiny_encoder_dir):
    label2id = {"a": 0, "b": 1, "c": 2}
    # A BeatsModel folder stores keys without the `beats.` prefix.
    classifier = finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=False, layerdrop=0.1)
    _assert_same_encoder(classifier, BeatsModel.from_pretrained(tiny_encoder_dir))
    assert classifier.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert classifier.config.problem_type == "single_label_classification"
    assert classifier.config.layerdrop == 0.1

    # A masked-audio-modelling folder: `beats.*` loads, the label predictor is dropped.
    torch.manual_seed(1)
    mam = BeatsForMaskedAudioModeling(BeatsConfig(**TINY))
    mam.save_pretrained(tmp_path / "mam")
    classifier = finetune.load_classifier(tmp_path / "mam", label2id, multi_label=True)
    _assert_same_encoder(classifier, mam.beats)
    assert classifier.config.problem_type == "multi_label_classification"

    # A classifier folder with a head of the same shape still gets a fresh head.
    old = BeatsForAudioClassification(BeatsConfig(**TINY, num_labels=3))
    with torch.no_grad():
        old.classifier.weight.fill_(1.0)
    old.save_pretrained(tmp_path / "classifier")
    classifier = finetune.load_classifier(tmp_path / "classifier", label2id, multi_label=False)
    _assert_same_encoder(classifier, old.beats)
    assert not torch.equal(classifier.classifier.weight, old.classifier.weight)

    # A folder that does not hold the encoder is refused rather than silently random.
    from safetensors.torch import save_file

    BeatsConfig(**TINY).save_pretrained(tmp_path / "other")
    save_file({"something.else": torch.zeros(1)}, tmp_path / "other" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="encoder weight"):
        finetune.load_classifier(tmp_path / "other", label2id, multi_label=False)


# ----------------------------------------------------------------------------------------------------------------------
# Data preparation


def test_validation_fraction_and_fold_splits(synthetic):
    records = read_audio_records(synthetic / "small_train.csv")
    train, held_out = split_by_fraction(records, 1 / 3, seed=0)
    assert len(train) + len(held_out) == len(records) == 30
    assert sorted(label for (label,) in record_label_sets(held_out)) == sorted(SYNTHETIC_CLASSES)  # stratified
    assert not {r.id for r in train} & {r.id for r in held_out}
    again, _ = split_by_fraction(records, 1 / 3, seed=0)
    assert [r.id for r in again] == [r.id for r in train]

    multi = read_audio_records(synthetic / "multi_label.csv")
    folds = fold_assignments(synthetic / "multi_label.csv", multi)
    train, fold_two = split_by_fold(multi, folds, 2)
    assert len(fold_two) == 10 and len(train) == 20
    assert all(str(f) == "2" for r, f in zip(multi, folds) if r in fold_two)
    with pytest.raises(ValueError, match="no clip is in fold"):
        split_by_fold(multi, folds, 7)

    config = quick_config(Path("unused"), synthetic, Path("unused"), validation_data=None, fold=2)
    config = replace(config, train_data=str(synthetic / "multi_label.csv"))
    data = finetune.prepare_data(config)
    assert data.multi_label and len(data.validation) == 10 and len(data.label2id) == 10


def test_recipes_load_with_their_table_4_values():
    recipes = sorted((REPO / "training" / "recipes").glob("*.yaml"))
    assert {p.stem for p in recipes} >= {"as2m", "as20k", "esc50", "ks1", "ks2", "er", "synthetic"}
    loaded = {p.stem: load_config(finetune.FinetuneConfig, ["--config", str(p)]) for p in recipes}
    assert loaded["as2m"].mixup_alpha == 0.8 and loaded["as2m"].sampling == "weighted" and loaded["as2m"].roll
    assert loaded["as2m"].layer_decay == 0.6 and loaded["as20k"].layer_decay == 0.3
    assert loaded["esc50"].fold == 1 and loaded["esc50"].mixup_alpha == 0.0 and loaded["esc50"].layer_decay == 0.2
    assert loaded["ks1"].sampling == "balanced" and loaded["ks1"].balance_fraction == 0.5
    assert loaded["er"].spec_augment_time_ratio == 0.15 and loaded["er"].learning_rate == 3e-5
    for name, config in loaded.items():
        assert config.adam_beta2 == 0.98 and config.weight_decay == 0.01 and config.scheduler == "cosine", name
        if name != "synthetic":
            assert config.layerdrop == 0.1 and config.hidden_dropout == 0.0, name


# ----------------------------------------------------------------------------------------------------------------------
# Resume, mixed precision, non-finite losses


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return BeatsForAudioClassification.from_pretrained(model_dir).state_dict()


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_encoder_dir, synthetic):
    # Multi-label data with weighted sampling, every augmentation, dropout, layer drop, random 1 s crops of 2 s
    # clips and gradient accumulation: everything random must replay exactly after a resume.
    common = dict(
        train_data=str(synthetic / "multi_label.csv"),
        validation_data=None,
        validation_fraction=0.2,
        max_seconds=1.0,
        batch_size=4,
        gradient_accumulation_steps=2,
        max_steps=5,  # 24 training clips: 6 micro-batches, 3 steps per epoch -> the run crosses an epoch
        sampling="weighted",
        roll=True,
        spec_augment_time_ratio=0.3,
        spec_augment_freq_ratio=0.3,
        mixup_alpha=0.8,
        hidden_dropout=0.1,
        layerdrop=0.3,
    )
    full = finetune.main(quick_config(tiny_encoder_dir, synthetic, tmp_path / "full", **common))
    assert full["loss_type"] == "bce" and not full["stopped"]
    stopped = finetune.main(
        quick_config(tiny_encoder_dir, synthetic, tmp_path / "split", stop_after_steps=2, **common)
    )
    assert stopped == {"step": 2, "stopped": True}
    assert (tmp_path / "split" / "checkpoints" / "step_2").is_dir()
    # Another accumulation would make the resumed run a different run: refused, naming the setting (logging may change).
    changed = {**common, "gradient_accumulation_steps": 1}
    with pytest.raises(ValueError, match=r"other settings \(gradient_accumulation_steps: 2 -> 1\)"):
        finetune.main(quick_config(tiny_encoder_dir, synthetic, tmp_path / "split", resume="latest", **changed))
    resumed = finetune.main(
        quick_config(tiny_encoder_dir, synthetic, tmp_path / "split", resume="latest", log_steps=1, **common)
    )
    assert resumed["step"] == 5
    expected, actual = _weights(tmp_path / "full" / "final"), _weights(tmp_path / "split" / "final")
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    initial = BeatsModel.from_pretrained(tiny_encoder_dir).state_dict()
    assert not torch.equal(
        actual["beats.encoder.layers.0.feed_forward.fc1.weight"],
        initial["encoder.layers.0.feed_forward.fc1.weight"],
    ), "training must change the encoder"
    assert resumed["validation/mAP"] == full["validation/mAP"]


def test_bf16_run_and_non_finite_loss_is_skipped(tmp_path, tiny_encoder_dir, synthetic, monkeypatch):
    calls = {"n": 0}
    real_loss = finetune.classification_loss

    def first_loss_is_nan(logits, labels, loss_type):
        calls["n"] += 1
        loss = real_loss(logits, labels, loss_type)
        return loss * float("nan") if calls["n"] == 1 else loss

    monkeypatch.setattr(finetune, "classification_loss", first_loss_is_nan)
    result = finetune.main(quick_config(tiny_encoder_dir, synthetic, tmp_path / "bf16", mixed_precision="bf16"))
    assert result["skipped_losses"] == 1 and result["skipped_updates"] == 0
    assert np.isfinite(result["validation/loss"])
    assert all(torch.isfinite(value).all() for value in _weights(tmp_path / "bf16" / "final").values())


def test_a_resumed_run_reports_the_losses_skipped_before_the_interruption(
    tmp_path, tiny_encoder_dir, synthetic, monkeypatch
):
    calls, real_loss = {"n": 0}, finetune.classification_loss

    def first_loss_is_nan(logits, labels, loss_type):
        calls["n"] += 1
        return real_loss(logits, labels, loss_type) * (float("nan") if calls["n"] == 1 else 1.0)

    monkeypatch.setattr(finetune, "classification_loss", first_loss_is_nan)
    common = dict(max_steps=3, validation_data=None)
    finetune.main(quick_config(tiny_encoder_dir, synthetic, tmp_path, stop_after_steps=1, **common))
    resumed = finetune.main(quick_config(tiny_encoder_dir, synthetic, tmp_path, resume="latest", **common))
    assert resumed["step"] == 3 and resumed["skipped_losses"] == 1 and resumed["skipped_updates"] == 0


def test_an_update_skipped_for_a_non_finite_gradient_does_not_advance_the_schedule(
    tmp_path, tiny_encoder_dir, synthetic, monkeypatch
):
    from accelerate import Accelerator

    real_clip, calls, schedulers = Accelerator.clip_grad_norm_, {"n": 0}, []

    def first_norm_is_inf(self, parameters, max_norm, norm_type=2):
        calls["n"] += 1
        norm = real_clip(self, parameters, max_norm, norm_type)
        return norm * float("inf") if calls["n"] == 1 else norm

    real_build = finetune.build_scheduler
    monkeypatch.setattr(Accelerator, "clip_grad_norm_", first_norm_is_inf)
    monkeypatch.setattr(
        finetune, "build_scheduler", lambda *a, **k: schedulers.append(real_build(*a, **k)) or schedulers[-1]
    )
    result = finetune.main(quick_config(tiny_encoder_dir, synthetic, tmp_path / "run", max_steps=3))
    assert result["skipped_updates"] == 1 and result["step"] == 3
    assert schedulers[0].last_epoch == 2  # stepped after the two updates that ran


# ----------------------------------------------------------------------------------------------------------------------
# The Trainer path


def _trainer(tiny_encoder_dir, synthetic, output_dir, validation_data=None, **training):
    model_args = run_audio_classification.ModelArguments(model_name_or_path=str(tiny_encoder_dir), layerdrop=0.0)
    data_args = run_audio_classification.DataArguments(
        train_data=str(synthetic / "small_train.csv"),
        validation_data=str(validation_data or synthetic / "small_validation.csv"),
        max_seconds=2.0,
    )
    training_args = run_audio_classification.BeatsTrainingArguments(
        output_dir=str(output_dir), report_to="none", use_cpu=True, **training
    )
    return run_audio_classification.build_trainer(model_args, data_args, training_args)


def test_trainer_and_accelerate_paths_compute_the_same_loss(tmp_path, tiny_encoder_dir, synthetic):
    trainer, data = _trainer(tiny_encoder_dir, synthetic, tmp_path / "trainer", per_device_train_batch_size=6)
    config = quick_config(tiny_encoder_dir, synthetic, tmp_path / "accelerate", layerdrop=0.0)
    loader = finetune.build_loader(config, data.train, data, finetune.load_feature_extractor(config), train=False)
    items = [loader.dataset[i] for i in range(6)]

    accelerate_batch = loader.collate_fn(items)  # waveforms: the fbank is computed in the training step
    trainer_batch = trainer.data_collator(items)  # the Trainer's collator computes the fbank itself
    feature_extractor = trainer.processing_class
    from beats_hf.collators import compute_input_values

    assert torch.equal(compute_input_values(accelerate_batch, feature_extractor), trainer_batch["input_values"])
    model = trainer.model.eval()
    loss_type = finetune.resolve_loss_type(config.loss, data.multi_label, config.mixup_alpha)
    with torch.no_grad():
        accelerate_loss, _ = finetune.compute_loss(model, accelerate_batch, feature_extractor, loss_type)
        trainer_loss = trainer.compute_loss(model, trainer_batch)
    assert accelerate_loss.item() > 0
    assert torch.equal(accelerate_loss, trainer_loss)


def test_trainer_path_trains_with_layer_decay_and_saves_a_pipeline_model(tmp_path, tiny_encoder_dir, synthetic):
    trainer, _ = _trainer(
        tiny_encoder_dir,
        synthetic,
        tmp_path / "trainer",
        max_steps=3,
        per_device_train_batch_size=6,
        learning_rate=1e-3,
        layer_decay=0.5,
        save_strategy="no",
    )
    trainer.train_collator = run_audio_classification.AugmentingCollator(
        trainer.data_collator, finetune.FinetuneAugmentation(spec_augment_time_ratio=0.2, roll=True), seed=0
    )
    trainer.train()
    learning_rates = {group["lr_scale"] for group in trainer.optimizer.param_groups}
    assert learning_rates == {1.0, 0.5, 0.25, 0.125}  # head, layer 1, layer 0, embeddings
    assert trainer.evaluate()["eval_accuracy"] >= 0.0
    trainer.save_model()
    _check_pipeline(tmp_path / "trainer", synthetic)


def test_trainer_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_encoder_dir, synthetic):
    # Random crops, shuffling and augmentation must all replay after the Trainer resumes from a checkpoint.
    def run(output_dir, resume=None):
        trainer, _ = _trainer(
            tiny_encoder_dir,
            synthetic,
            output_dir,
            max_steps=4,
            per_device_train_batch_size=3,
            learning_rate=1e-3,
            save_strategy="steps",
            save_steps=2,
            seed=5,
        )
        trainer.train_collator = run_audio_classification.AugmentingCollator(
            trainer.data_collator,
            finetune.FinetuneAugmentation(spec_augment_time_ratio=0.3, spec_augment_freq_ratio=0.2, roll=True),
            seed=5,
        )
        trainer.train(resume_from_checkpoint=resume)
        return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}

    uninterrupted = run(tmp_path / "full")
    resumed = run(tmp_path / "resumed", resume=str(tmp_path / "full" / "checkpoint-2"))
    assert uninterrupted.keys() == resumed.keys()
    assert all(torch.equal(uninterrupted[name], resumed[name]) for name in uninterrupted)


def test_trainer_evaluates_past_a_batch_of_unreadable_clips(tmp_path, tiny_encoder_dir, synthetic):
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    rows = list(csv.DictReader(open(synthetic / "small_validation.csv")))
    with open(tmp_path / "validation.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerow([str(tmp_path / "broken.wav"), rows[0]["label"]])
        writer.writerows([str(synthetic / row["path"]), row["label"]] for row in rows)
    # One clip per batch: the broken clip's batch holds no clip at all.
    trainer, data = _trainer(
        tiny_encoder_dir, synthetic, tmp_path / "run", tmp_path / "validation.csv", per_device_eval_batch_size=1
    )
    metrics = trainer.evaluate()
    readable = run_audio_classification.AudioClipDataset(
        trainer.eval_dataset.records[1:], 2.0, crop="start", label2id=data.label2id
    )
    expected = trainer.evaluate(readable)
    assert metrics["eval_accuracy"] == expected["eval_accuracy"]
    assert metrics["eval_loss"] == pytest.approx(expected["eval_loss"])


def test_trainer_refuses_skipped_clips_in_a_multi_process_run(tmp_path, tiny_encoder_dir, synthetic):
    trainer, _ = _trainer(tiny_encoder_dir, synthetic, tmp_path / "run")
    items = [trainer.eval_dataset[0], None]  # the second clip could not be read
    batch = trainer.data_collator(items)
    assert batch["num_skipped_clips"] == 1
    trainer.compute_loss(trainer.model, batch)  # one process: the clip is left out
    with mock.patch.object(type(trainer.args), "world_size", new_callable=mock.PropertyMock, return_value=2):
        with pytest.raises(RuntimeError, match="cannot leave clips out in a multi-process run"):
            trainer.compute_loss(trainer.model, batch)
        with pytest.raises(RuntimeError, match="cannot leave clips out in a multi-process run"):
            trainer.prediction_step(trainer.model, batch, prediction_loss_only=False)


def _script_args(model_dir, synthetic, output_dir, *extra):
    return [
        "--model_name_or_path",
        str(model_dir),
        "--train_data",
        str(synthetic / "small_train.csv"),
        "--max_seconds",
        "2",
        "--output_dir",
        str(output_dir),
        "--report_to",
        "none",
        "--use_cpu",
        *extra,
    ]


def test_trainer_script_evaluates_a_fine_tuned_classifier_with_its_own_head(tmp_path, tiny_encoder_dir, synthetic):
    # Label ids in another order than the data's sorted names: the classifier's own label2id must be used.
    label2id = {name: i for i, name in enumerate(sorted(SYNTHETIC_CLASSES, reverse=True))}
    torch.manual_seed(3)
    model = finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=False).eval()
    model.save_pretrained(tmp_path / "model")
    feature_extractor = BeatsFeatureExtractor.from_pretrained(tiny_encoder_dir)
    feature_extractor.save_pretrained(tmp_path / "model")

    records = read_audio_records(synthetic / "small_validation.csv")
    dataset = run_audio_classification.AudioClipDataset(records, 2.0, crop="start", label2id=label2id)
    batch = run_audio_classification.DataCollatorForAudio(feature_extractor, len(label2id))(list(dataset))
    with torch.no_grad():
        logits = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"]).logits
    expected_loss = torch.nn.functional.cross_entropy(logits, batch["labels"]).item()
    expected_accuracy = (logits.argmax(dim=1) == batch["labels"]).float().mean().item()

    metrics = run_audio_classification.main(
        _script_args(
            tmp_path / "model",
            synthetic,
            tmp_path / "eval",
            "--validation_data",
            str(synthetic / "small_validation.csv"),
            "--do_eval",
            "--per_device_eval_batch_size",
            str(len(records)),
        )
    )
    assert metrics["eval_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert metrics["eval_accuracy"] == pytest.approx(expected_accuracy)
    # Validation data none of whose clips can be read gives no score: an error, not a run with timings alone.
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    (tmp_path / "broken.csv").write_text(f"path,label\n{tmp_path / 'broken.wav'},{SYNTHETIC_CLASSES[0]}\n")
    with pytest.raises(ValueError, match="No eval clip could be read"):
        run_audio_classification.main(
            _script_args(
                tmp_path / "model", synthetic, tmp_path / "broken", "--validation_data", str(tmp_path / "broken.csv")
            )
            + ["--do_eval"]
        )
    # An encoder has no trained head to evaluate.
    with pytest.raises(ValueError, match="not a fine-tuned classifier"):
        run_audio_classification.main(
            _script_args(
                tiny_encoder_dir,
                synthetic,
                tmp_path / "encoder",
                "--validation_data",
                str(synthetic / "small_validation.csv"),
                "--do_eval",
            )
        )


def test_trainer_script_evaluation_refuses_labels_the_classifier_does_not_know(tmp_path, tiny_encoder_dir, synthetic):
    # A trained head cannot take a new label2id: the refusal must say so, not advise rebuilding label2id.
    label2id = {name: i for i, name in enumerate(SYNTHETIC_CLASSES[1:])}
    finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=False).save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor.from_pretrained(tiny_encoder_dir).save_pretrained(tmp_path / "model")
    arguments = ["--validation_data", str(synthetic / "small_validation.csv"), "--do_eval"]
    with pytest.raises(ValueError, match=rf"not among the {len(label2id)} of the classifier.*add --do_train"):
        run_audio_classification.main(_script_args(tmp_path / "model", synthetic, tmp_path / "eval", *arguments))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--do_train", "--do_eval"], "--do_eval needs validation clips"),
        (["--do_train", "--do_predict"], "--do_predict needs test clips"),
        (["--do_train", "--optim", "sgd"], "optim 'sgd' would be ignored"),
        (["--do_train", "--label_smoothing_factor", "0.1"], "label_smoothing_factor would be ignored"),
        (
            ["--do_train", "--dataloader_num_workers", "1", "--dataloader_persistent_workers"],
            "dataloader_persistent_workers would freeze",
        ),
    ],
)
def test_trainer_script_refuses_what_it_would_silently_skip_or_ignore(
    tmp_path, tiny_encoder_dir, synthetic, extra, message
):
    with pytest.raises(ValueError, match=message):
        run_audio_classification.main(_script_args(tiny_encoder_dir, synthetic, tmp_path / "run", *extra))


def _check_pipeline(model_dir: Path, synthetic: Path) -> None:
    from transformers import pipeline

    from beats_hf.audio_io import load_audio

    classifier = pipeline("audio-classification", model=str(model_dir))
    predictions = classifier(load_audio(synthetic / "validation" / "bird" / "validation_bird_0000.wav"), top_k=3)
    assert len(predictions) == 3 and {p["label"] for p in predictions} <= set(SYNTHETIC_CLASSES)


# ----------------------------------------------------------------------------------------------------------------------
# The script end to end, then evaluate.py and the pipeline on its output


def test_finetune_script_end_to_end(tmp_path, tiny_encoder_dir, synthetic):
    output_dir = tmp_path / "run"
    command = [
        sys.executable,
        str(REPO / "training" / "finetune.py"),
        "--config",
        str(REPO / "training" / "recipes" / "synthetic.yaml"),
        "--model",
        str(tiny_encoder_dir),
        "--train_data",
        str(synthetic / "small_train.csv"),
        "--validation_data",
        str(synthetic / "small_validation.csv"),
        "--output_dir",
        str(output_dir),
        "--max_steps",
        "4",
        "--warmup_steps",
        "1",
        "--batch_size",
        "6",
        "--eval_steps",
        "2",
        "--save_steps",
        "2",
        "--log_steps",
        "1",
    ]
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    final = output_dir / "final"
    config = json.loads((final / "config.json").read_text())
    assert config["problem_type"] == "single_label_classification"
    assert sorted(config["id2label"].values()) == sorted(SYNTHETIC_CLASSES)
    assert (final / "preprocessor_config.json").is_file()
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["results"]["step"] == 4 and 0.0 <= metrics["results"]["validation/accuracy"] <= 1.0
    assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["step_2", "step_4"]
    assert list((output_dir / "finetune").rglob("events.out.tfevents.*")), "TensorBoard logs"

    report = evaluate_script.main(
        [
            "--model",
            str(final),
            "--data",
            str(synthetic / "small_validation.csv"),
            "--output-dir",
            str(tmp_path / "ev"),
        ]
    )
    assert report["num_clips"] == 20 and 0.0 <= report["accuracy"] <= 1.0
    assert np.asarray(report["confusion_matrix"]).sum() == 20
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["accuracy"] == report["accuracy"]
    _check_pipeline(final, synthetic)


def test_evaluate_multi_label_writes_map_and_per_class_plot(tmp_path, tiny_encoder_dir, synthetic):
    label2id = {name: i for i, name in enumerate(SYNTHETIC_CLASSES)}
    model = finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=True)
    model.save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "model")
    report = evaluate_script.main(
        [
            "--model",
            str(tmp_path / "model"),
            "--data",
            str(synthetic / "multi_label.csv"),
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert 0.0 <= report["mAP"] <= 1.0 and report["num_classes_evaluated"] == 10
    assert (tmp_path / "per_class_ap.png").is_file()


def test_evaluate_multi_label_refuses_data_without_labels(tmp_path, tiny_encoder_dir, synthetic):
    # No clip with a positive label: every AP is undefined, and a NaN mAP would be reported as if measured.
    label2id = {name: i for i, name in enumerate(SYNTHETIC_CLASSES)}
    finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=True).save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "model")
    rows = list(csv.DictReader(open(synthetic / "small_validation.csv")))
    _write_manifest(synthetic / "unlabelled.csv", rows, lambda row: "")
    arguments = ["--model", str(tmp_path / "model"), "--data", str(synthetic / "unlabelled.csv")]
    with pytest.raises(ValueError, match="none of its clips has a label.*--label-column"):
        evaluate_script.main([*arguments, "--output-dir", str(tmp_path / "out"), "--num-workers", "0"])
    assert not (tmp_path / "out" / "report.json").exists()


def test_evaluate_single_label_refuses_clips_without_one_label_before_scoring(tmp_path, tiny_encoder_dir, synthetic):
    label2id = {name: i for i, name in enumerate(SYNTHETIC_CLASSES)}
    finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=False).save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "model")
    rows = [
        {**row, "path": str(synthetic / row["path"])}
        for row in csv.DictReader(open(synthetic / "small_validation.csv"))
    ]
    # The last clip has two labels: the collator would stop only at its batch, after the others were scored.
    rows[-1]["label"] += ";" + rows[0]["label"]
    manifest = tmp_path / "two_labels.csv"
    _write_manifest(manifest, rows, lambda row: row["label"])
    arguments = ["--model", str(tmp_path / "model"), "--data", str(manifest), "--num-workers", "0"]
    with pytest.raises(ValueError, match=r"1 of 20 clips .* do not have exactly one label .* single-label classifier"):
        evaluate_script.main([*arguments, "--output-dir", str(tmp_path / "out")])


def test_trainer_script_refuses_an_undefined_map(tmp_path, tiny_encoder_dir, synthetic):
    # Multi-label validation data without a single positive label: the Trainer would report eval_mAP = NaN.
    label2id = {name: i for i, name in enumerate(SYNTHETIC_CLASSES)}
    finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=True).save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "model")
    rows = list(csv.DictReader(open(synthetic / "small_validation.csv")))
    _write_manifest(tmp_path / "unlabelled.csv", [{"path": str(synthetic / r["path"])} for r in rows], lambda r: "")
    arguments = _script_args(tmp_path / "model", synthetic, tmp_path / "eval", "--do_eval")
    arguments[arguments.index("--train_data") + 1] = str(synthetic / "multi_label.csv")
    # Refused while reading the data, before any training could run.
    with pytest.raises(ValueError, match="none of the .* validation clips carries a label"):
        run_audio_classification.main([*arguments, "--validation_data", str(tmp_path / "unlabelled.csv")])


def test_trainer_script_evaluates_with_the_task_of_the_classifier(tmp_path, tiny_encoder_dir, synthetic):
    # A multi-label classifier scored on data whose training split has one label per clip (so the data alone would
    # be read as single-label, and its multi-label validation clips refused).
    label2id = {name: i for i, name in enumerate(SYNTHETIC_CLASSES)}
    finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=True).save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "model")
    arguments = _script_args(tmp_path / "model", synthetic, tmp_path / "eval", "--do_eval")
    metrics = run_audio_classification.main([*arguments, "--validation_data", str(synthetic / "multi_label.csv")])
    assert 0.0 <= metrics["eval_mAP"] <= 1.0


def test_evaluate_reports_clips_cut_to_max_seconds(tmp_path, tiny_encoder_dir, synthetic, capsys):
    # The synthetic clips last 2 s. The count comes from the batches, so it is right with worker processes (the
    # default --num-workers 2), whose datasets' counters never reach the main process.
    label2id = {name: i for i, name in enumerate(SYNTHETIC_CLASSES)}
    finetune.load_classifier(tiny_encoder_dir, label2id, multi_label=False).save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "model")
    common = ["--model", str(tmp_path / "model"), "--data", str(synthetic / "small_validation.csv")]
    whole = evaluate_script.main([*common, "--output-dir", str(tmp_path / "whole")])
    assert whole["num_truncated_clips"] == 0 and whole["max_seconds"] == 10.0
    assert "0 cut to their first 10 s)" in capsys.readouterr().out
    cut = evaluate_script.main([*common, "--output-dir", str(tmp_path / "cut"), "--max-seconds", "1"])
    assert cut["num_clips"] == 20 and cut["num_truncated_clips"] == 20
    assert json.loads((tmp_path / "cut" / "report.json").read_text())["num_truncated_clips"] == 20
    summary = capsys.readouterr().out
    assert "20 cut to their first 1 s (raise --max-seconds to evaluate whole clips)" in summary


def test_validation_clips_longer_than_eval_max_seconds_are_reported(tmp_path, tiny_encoder_dir, synthetic, caplog):
    config = quick_config(tiny_encoder_dir, synthetic, tmp_path, max_seconds=1.0, eval_max_seconds=1.5)
    data = finetune.prepare_data(config)
    feature_extractor = finetune.load_feature_extractor(config)
    validation = finetune.build_loader(config, data.validation, data, feature_extractor, train=False)
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        cut = sum(batch["num_truncated_clips"] for batch in validation)
    warnings = [m for m in caplog.messages if "longer than max_seconds" in m]
    assert len(warnings) == 1 and "2.00 s long, longer than max_seconds=1.5" in warnings[0]
    assert "eval_max_seconds" in warnings[0]
    assert cut == len(data.validation) == validation.dataset.num_truncated  # num_workers=0: one process
    # The fine-tuning evaluation reports them with its metrics.
    from accelerate import Accelerator

    model = finetune.load_classifier(tiny_encoder_dir, data.label2id, data.multi_label).eval()
    loss_type = finetune.resolve_loss_type(config.loss, data.multi_label, config.mixup_alpha)
    metrics = finetune.evaluate(
        model, validation, feature_extractor, Accelerator(cpu=True), data.multi_label, loss_type
    )
    assert metrics["num_truncated_clips"] == len(data.validation) == metrics["num_clips"]
    # Random training crops cut by design and stay quiet.
    caplog.clear()
    train = finetune.build_loader(config, data.train, data, feature_extractor, train=True)
    with caplog.at_level(logging.WARNING, logger="beats_hf.data"):
        next(iter(train))
    assert not any("longer than max_seconds" in m for m in caplog.messages)


# ----------------------------------------------------------------------------------------------------------------------
# Accuracy: a tiny randomly initialised model learns the synthetic sounds far above chance (10%) on held-out clips.


def test_finetuning_reaches_far_above_chance(tmp_path, tiny_encoder_dir, synthetic):
    config = load_config(
        finetune.FinetuneConfig,
        [
            "--config",
            str(REPO / "training" / "recipes" / "synthetic.yaml"),
            "--model",
            str(tiny_encoder_dir),
            "--train_data",
            str(synthetic / "train.csv"),
            "--validation_data",
            str(synthetic / "validation.csv"),
            "--output_dir",
            str(tmp_path / "run"),
            "--max_steps",
            "300",
            "--batch_size",
            "16",
            "--learning_rate",
            "5e-3",
            "--layer_decay",
            "1.0",
            # A short run from a random encoder learns faster without augmentation (it pays off in longer runs).
            "--roll",
            "false",
            "--spec_augment_time_ratio",
            "0",
            "--spec_augment_freq_ratio",
            "0",
            "--eval_steps",
            "0",
            "--save_steps",
            "0",
            "--log_with",
            "none",
        ],
    )
    result = finetune.main(config)
    chance = 1 / len(SYNTHETIC_CLASSES)
    assert result["validation/num_clips"] == 100
    assert result["validation/accuracy"] >= 3 * chance, result


def test_single_label_data_with_an_unlabelled_clip_is_refused_before_training(tmp_path, synthetic):
    rows = list(csv.DictReader(open(synthetic / "small_validation.csv")))
    with open(tmp_path / "validation.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([str(synthetic / row["path"]), row["label"]] for row in rows)
        shutil.copy(synthetic / rows[0]["path"], tmp_path / "unlabelled.wav")
        writer.writerow([str(tmp_path / "unlabelled.wav"), ""])  # forgotten label
    config = quick_config(Path("unused"), synthetic, Path("unused"), validation_data=str(tmp_path / "validation.csv"))
    with pytest.raises(ValueError, match="1 of .* validation clips do not have exactly one label"):
        finetune.prepare_data(config)
    # Multi-label data may have clips without any label (no positive class).
    assert finetune.prepare_data(replace(config, multi_label=True)).multi_label


def test_multi_label_split_without_any_label_is_refused_before_training(tmp_path, synthetic):
    # A validation manifest without its label column reads as unlabelled: its mAP would be NaN after training.
    rows = list(csv.DictReader(open(synthetic / "small_validation.csv")))
    with open(tmp_path / "validation.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path"])
        writer.writerows([str(synthetic / row["path"])] for row in rows)
    config = quick_config(
        Path("unused"),
        synthetic,
        Path("unused"),
        train_data=str(synthetic / "multi_label.csv"),
        validation_data=str(tmp_path / "validation.csv"),
    )
    with pytest.raises(ValueError, match="none of the .* validation clips carries a label"):
        finetune.prepare_data(config)
    assert finetune.prepare_data(replace(config, validation_data=None, validation_fraction=0.2)).multi_label


def test_a_label_seen_only_in_evaluation_splits_is_named_in_a_warning(tmp_path, synthetic, caplog):
    rows = list(csv.DictReader(open(synthetic / "small_validation.csv")))
    with open(tmp_path / "validation.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([str(synthetic / row["path"]), row["label"]] for row in rows[1:])
        writer.writerow([str(synthetic / rows[0]["path"]), "never_trained"])
    config = quick_config(Path("unused"), synthetic, Path("unused"), validation_data=str(tmp_path / "validation.csv"))
    with caplog.at_level(logging.WARNING, logger="finetune"):
        assert "never_trained" in finetune.prepare_data(config).label2id
    assert len(caplog.messages) == 1 and "1 label(s) occur only in the validation/test clips" in caplog.messages[0]
    assert "'never_trained'" in caplog.messages[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="finetune"):
        finetune.prepare_data(replace(config, validation_data=str(synthetic / "small_validation.csv")))
    assert not caplog.messages


def test_trainer_draws_the_training_order_of_finetune_py(tmp_path, tiny_encoder_dir, synthetic):
    trainer, data = _trainer(tiny_encoder_dir, synthetic, tmp_path / "trainer", seed=3)
    config = quick_config(tiny_encoder_dir, synthetic, tmp_path / "accelerate", seed=3)
    for epoch in (0, 1):
        expected, sampler = finetune.build_train_sampler(config, data), trainer._get_train_sampler()
        expected.set_epoch(epoch)
        sampler.set_epoch(epoch)
        assert list(sampler) == list(expected)
