# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""The `beats-hf` command line on the built-in synthetic data with tiny random models and converted fixtures.

Most commands run in-process (`beats_hf.cli.main`, output through `capsys`); a few run end to end in a subprocess
(`python -m beats_hf.cli`). Every user mistake must end with exit code 2 and one line on stderr, never a traceback.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers.utils import logging as transformers_logging

from beats_hf import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsModel,
    BeatsRandomProjectionTokenizer,
    BeatsTokenizerModel,
)
from beats_hf.audio_io import load_audio, write_wav
from beats_hf.cli import REPO_ROOT, SCRIPT_COMMANDS, main
from beats_hf.conversion import convert_checkpoint
from beats_hf.inference import ModelKindError, label_scores, load_model, run_file
from beats_hf.synthetic_sounds import SYNTHETIC_CLASSES, generate_synthetic_dataset

torch.set_num_threads(1)

FIXTURES = Path(__file__).resolve().parent / "data" / "official"
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    patch_embedding_dim=24,
    num_conv_pos_embeddings=4,
    num_conv_pos_embedding_groups=4,
    num_buckets=32,
    max_bucket_distance=64,
    codebook_size=16,
    codebook_dim=8,
    layerdrop=0.0,
)
ID2LABEL = dict(enumerate(SYNTHETIC_CLASSES))
CHUNK_FRAMES = 992  # --chunk-seconds 10 rounded down to whole 16-frame patch rows


# ---------------------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def _restore_transformers_logging():
    """`main` silences transformers (verbosity, progress bars) for the process; give other tests their defaults."""
    verbosity = transformers_logging.get_verbosity()
    progress = transformers_logging.is_progress_bar_enabled()
    yield
    transformers_logging.set_verbosity(verbosity)
    (transformers_logging.enable_progress_bar if progress else transformers_logging.disable_progress_bar)()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One 2 s clip per synthetic class, a 25 s file made of them, and broken files."""
    root = generate_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic"), seed=0, clips_per_class={"train": 1, "validation": 0, "test": 0}
    )
    clips = sorted(root.glob("train/*/*.wav"))
    assert len(clips) == len(SYNTHETIC_CLASSES)
    extra = tmp_path_factory.mktemp("files")
    joined = np.concatenate([load_audio(path) for path in clips + clips])[: 25 * 16000]
    write_wav(extra / "long.wav", joined, 16000)
    (extra / "garbage.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    (extra / "empty.wav").write_bytes(b"")
    write_wav(extra / "short.wav", load_audio(clips[0])[:2700], 16000)  # 0.169 s, under one patch row (0.175 s)
    (extra / "not_a_model").mkdir()
    (extra / "not_a_model" / "notes.txt").write_text("no model here")
    return {
        "clip": clips[0],
        "clips": clips,
        "long": extra / "long.wav",
        "garbage": extra / "garbage.wav",
        "empty": extra / "empty.wav",
        "short": extra / "short.wav",
        "missing": extra / "missing.wav",
        "not_a_model": extra / "not_a_model",
        "no_model": extra / "no_such_model",
    }


def _save(model, folder: Path) -> Path:
    if any(True for _ in model.parameters()):
        model.save_pretrained(folder)
    else:  # the random-projection tokenizer has only buffers, and save_pretrained needs a parameter for its dtype
        model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(folder)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    BeatsFeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny random models saved as folders: name -> folder."""
    root = tmp_path_factory.mktemp("models")
    labels = {"id2label": ID2LABEL, "label2id": {v: k for k, v in ID2LABEL.items()}}
    specs = {
        "classifier": (BeatsForAudioClassification, {**labels, "problem_type": "single_label_classification"}),
        "multilabel": (BeatsForAudioClassification, {**labels, "problem_type": "multi_label_classification"}),
        "encoder": (BeatsModel, {}),
        "tokenizer": (BeatsTokenizerModel, {}),
        "projection": (BeatsRandomProjectionTokenizer, {}),
    }
    folders = {}
    for seed, (name, (cls, extra)) in enumerate(specs.items()):
        torch.manual_seed(seed)
        folders[name] = _save(cls(BeatsConfig(**TINY, **extra)).eval(), root / name)
    return folders


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Folders converted from the official-format fixtures: pretrained, finetuned (10 labels), tokenizer."""
    root = tmp_path_factory.mktemp("converted")
    return {
        name: convert_checkpoint(FIXTURES / f"small_{name}.pt", root / name).output_dir
        for name in ("pt", "ft", "tokenizer")
    }


def cli(capsys, *args):
    """Run `beats-hf ARGS` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module", autouse=True)
def end_to_end(data, models):
    """
    `python -m beats_hf.cli` runs (each spends seconds importing torch), started when the module starts so that they
    overlap with the in-process tests; the tests at the end collect them. name -> Popen.
    """
    commands = {
        "classify": ["classify", data["clip"], "--model", models["multilabel"], "--format", "json", "--top-k", 2],
        "error": ["tokenize", data["clip"], data["garbage"], "--model", models["tokenizer"]],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "beats_hf.cli", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, args in commands.items()
    }
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_user_error(code, err, *needles):
    """Exit code 2 and exactly one line on stderr, naming the problem, without a traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("beats-hf ") and "error:" in lines[0], lines[0]
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])


def _features(path):
    return BeatsFeatureExtractor()(load_audio(path), sampling_rate=16000, return_tensors="pt")["input_values"]


def _frame_chunks(features, chunk_frames=CHUNK_FRAMES):
    pieces = [features[:, s : s + chunk_frames] for s in range(0, features.shape[1], chunk_frames)]
    return [piece for piece in pieces if piece.shape[1] >= 16]


# ---------------------------------------------------------------------------------------------------------------------
# --help


@pytest.mark.parametrize("command", ["classify", "embed", "tokenize"])
def test_inference_command_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert f"usage: beats-hf {command}" in out
    assert "example" in out and f"beats-hf {command} " in out.split("example", 1)[1]
    assert "--model" in out and "--chunk-seconds" in out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for command in ("classify", "embed", "tokenize", *SCRIPT_COMMANDS):
        assert command in out
    assert "examples:" in out and "beats-hf classify " in out


@pytest.mark.parametrize("command", list(SCRIPT_COMMANDS))
def test_script_command_help(capsys, command):
    script = SCRIPT_COMMANDS[command][0]
    if not (REPO_ROOT / script).is_file():
        pytest.skip(f"{script} does not exist yet")
    code, out, err = cli(capsys, command, "--help")
    assert code == 0, err
    assert "Traceback" not in err
    assert f"example:\n  beats-hf {command}" in out
    assert "usage:" in out  # the script's own help follows


def test_missing_script_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("beats_hf.cli.REPO_ROOT", tmp_path)
    code, _, err = cli(capsys, "pretrain", "--config", "x.yaml")
    assert_user_error(code, err, "training/pretrain.py is not available")


# ---------------------------------------------------------------------------------------------------------------------
# classify


def test_classify_table(capsys, data, models):
    files = data["clips"][:2]
    code, out, err = cli(capsys, "classify", *files, "--model", models["classifier"], "--top-k", 3)
    assert code == 0, err
    assert err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 2 * 4
    assert lines[0] == f"{files[0]} (2.00 s)" and lines[4] == f"{files[1]} (2.00 s)"
    for line in lines[1:4] + lines[5:8]:
        rank, label, score = line.split()
        assert rank in ("1.", "2.", "3.") and label in SYNTHETIC_CLASSES and 0.0 < float(score) < 1.0


@pytest.mark.parametrize("kind", ["classifier", "multilabel"])
def test_classify_json_scores(capsys, data, models, kind):
    code, out, err = cli(capsys, "classify", data["clip"], "--model", models[kind], "--top-k", 100, "--format", "json")
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["file"] == str(data["clip"]) and entry["duration"] == 2.0
    labels = entry["labels"]
    assert len(labels) == len(SYNTHETIC_CLASSES)  # --top-k is capped at the number of labels
    assert sorted(item["label"] for item in labels) == sorted(SYNTHETIC_CLASSES)
    scores = [item["score"] for item in labels]
    assert scores == sorted(scores, reverse=True)
    model = BeatsForAudioClassification.from_pretrained(models[kind]).eval()
    with torch.no_grad():
        logits = model(input_values=_features(data["clip"])).logits[0]
    expected = torch.softmax(logits, -1) if kind == "classifier" else torch.sigmoid(logits)
    for item in labels:
        assert item["score"] == pytest.approx(float(expected[model.config.label2id[item["label"]]]), abs=1e-5)
    if kind == "classifier":
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    else:
        assert sum(scores) > 1.0  # independent sigmoids


def test_classify_top_k_default_and_one(capsys, data, models):
    code, out, _ = cli(capsys, "classify", data["clip"], "--model", models["classifier"], "--format", "json")
    assert code == 0 and len(json.loads(out)[0]["labels"]) == 5
    code, out, _ = cli(capsys, "classify", data["clip"], "--model", models["classifier"], "--top-k", 1)
    assert code == 0 and len(out.strip().splitlines()) == 2


def test_classify_long_file_is_the_patch_weighted_mean_over_chunks(capsys, data, models):
    """25 s in 10 s chunks (992 frames): the logits are the mean of per-patch logits over all chunks' patches."""
    model = BeatsForAudioClassification.from_pretrained(models["classifier"]).eval()
    with torch.no_grad():
        patch_logits = [
            model.classifier(model.beats(input_values=piece).last_hidden_state)[0]
            for piece in _frame_chunks(_features(data["long"]))
        ]
    assert [p.shape[0] for p in patch_logits] == [62 * 8, 62 * 8, 32 * 8]  # 2498 frames = 992 + 992 + 514
    expected = torch.cat(patch_logits).mean(dim=0)
    unweighted = torch.stack([p.mean(dim=0) for p in patch_logits]).mean(dim=0)  # what a wrong aggregation gives
    assert float((expected - unweighted).abs().max()) > 1e-3

    model_, extractor = load_model(models["classifier"], "classify")
    result = run_file(model_, extractor, data["long"], "classify", chunk_seconds=10.0, batch_size=4)
    torch.testing.assert_close(result.outputs["logits"], expected, atol=1e-4, rtol=1e-4)
    assert result.num_chunks == 3 and result.duration == 25.0
    assert result.unencoded_seconds == pytest.approx(25.0 - 156 * 0.16)

    code, out, err = cli(
        capsys,
        "classify",
        data["long"],
        "--model",
        models["classifier"],
        "--top-k",
        10,
        "--format",
        "json",
        "--chunk-seconds",
        10,
        "--batch-size",
        2,
    )
    assert code == 0, err
    scores = label_scores(model_, expected)  # softmax: single-label
    for item in json.loads(out)[0]["labels"]:
        assert item["score"] == pytest.approx(float(scores[SYNTHETIC_CLASSES.index(item["label"])]), abs=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# embed


@pytest.mark.parametrize("layers, shapes", [("last", ((32,), (96, 32))), ("all", ((3, 32), (3, 96, 32)))])
def test_embed_safetensors(capsys, tmp_path, data, models, layers, shapes):
    files = data["clips"][:2]
    code, out, err = cli(
        capsys, "embed", *files, "--model", models["encoder"], "--output-dir", tmp_path, "--layers", layers
    )
    assert code == 0, err
    assert len(out.strip().splitlines()) == 2
    encoder = BeatsModel.from_pretrained(models["encoder"]).eval()
    for path in files:
        tensors = load_file(tmp_path / f"{path.stem}.safetensors")
        assert set(tensors) == {"pooled", "patches"}
        assert (tuple(tensors["pooled"].shape), tuple(tensors["patches"].shape)) == shapes
        torch.testing.assert_close(tensors["pooled"], tensors["patches"].mean(dim=-2))
        with torch.no_grad():
            outputs = encoder(input_values=_features(path), output_hidden_states=True)
        expected = outputs.last_hidden_state[0] if layers == "last" else torch.stack(outputs.hidden_states)[:, 0]
        torch.testing.assert_close(tensors["patches"], expected, atol=1e-5, rtol=1e-5)


def test_embed_npy_and_pooled_only(capsys, tmp_path, data, models):
    code, _, err = cli(
        capsys, "embed", data["clip"], "--model", models["encoder"], "--output-dir", tmp_path, "--format", "npy"
    )
    assert code == 0, err
    pooled = np.load(tmp_path / f"{data['clip'].stem}.pooled.npy")
    patches = np.load(tmp_path / f"{data['clip'].stem}.patches.npy")
    assert pooled.shape == (32,) and patches.shape == (96, 32)
    np.testing.assert_allclose(pooled, patches.mean(axis=0), atol=1e-6)

    only = tmp_path / "only"
    code, _, err = cli(
        capsys,
        "embed",
        data["clip"],
        "--model",
        models["encoder"],
        "--output-dir",
        only,
        "--format",
        "npy",
        "--layers",
        "all",
        "--pooled-only",
    )
    assert code == 0, err
    assert sorted(p.name for p in only.iterdir()) == [f"{data['clip'].stem}.pooled.npy"]
    assert np.load(only / f"{data['clip'].stem}.pooled.npy").shape == (3, 32)


def test_embed_with_classifier_and_tokenizer_folders_uses_their_encoders(capsys, tmp_path, data, models):
    for name, cls in (("classifier", BeatsForAudioClassification), ("tokenizer", BeatsTokenizerModel)):
        code, _, err = cli(capsys, "embed", data["clip"], "--model", models[name], "--output-dir", tmp_path / name)
        assert code == 0 and err == "", err
        with torch.no_grad():
            expected = cls.from_pretrained(models[name]).eval().beats(input_values=_features(data["clip"]))
        capsys.readouterr()  # the reference load's own progress output is not the command's
        patches = load_file(tmp_path / name / f"{data['clip'].stem}.safetensors")["patches"]
        torch.testing.assert_close(patches, expected.last_hidden_state[0], atol=1e-5, rtol=1e-5)


def test_embed_long_file(capsys, tmp_path, data, models):
    code, out, err = cli(
        capsys, "embed", data["long"], "--model", models["encoder"], "--output-dir", tmp_path, "--pooled-only"
    )
    assert code == 0, err
    assert "pooled (32,)" in out and "patches" not in out
    encoder = BeatsModel.from_pretrained(models["encoder"]).eval()
    with torch.no_grad():
        patches = torch.cat(
            [encoder(input_values=p).last_hidden_state[0] for p in _frame_chunks(_features(data["long"]))]
        )
    assert patches.shape == (156 * 8, 32)
    pooled = load_file(tmp_path / "long.safetensors")["pooled"]
    torch.testing.assert_close(pooled, patches.mean(dim=0), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------------------
# tokenize


@pytest.mark.parametrize(
    "name, cls", [("tokenizer", BeatsTokenizerModel), ("projection", BeatsRandomProjectionTokenizer)]
)
def test_tokenize_json_equals_the_models_token_ids(capsys, data, models, name, cls):
    files = data["clips"][:2]
    code, out, err = cli(capsys, "tokenize", *files, "--model", models[name])
    assert code == 0, err
    report = json.loads(out)
    tokenizer = cls.from_pretrained(models[name]).eval()
    for entry, path in zip(report, files, strict=True):
        assert entry["file"] == str(path)
        assert entry["shape"] == [12, 8]  # 2 s = 198 frames: 12 rows of 8 mel patches
        assert entry["unencoded_seconds"] == pytest.approx(0.08)
        with torch.no_grad():
            expected = tokenizer(input_values=_features(path)).token_ids[0].view(12, 8)
        assert torch.equal(torch.tensor(entry["token_ids"]), expected)


def test_tokenize_npy(capsys, tmp_path, data, models):
    code, out, err = cli(
        capsys, "tokenize", data["clip"], "--model", models["projection"], "--format", "npy", "--output-dir", tmp_path
    )
    assert code == 0, err
    (entry,) = json.loads(out)
    assert "token_ids" not in entry and entry["shape"] == [12, 8]
    grid = np.load(tmp_path / f"{data['clip'].stem}.tokens.npy")
    assert entry["tokens_file"] == str(tmp_path / f"{data['clip'].stem}.tokens.npy")
    tokenizer = BeatsRandomProjectionTokenizer.from_pretrained(models["projection"])
    with torch.no_grad():
        expected = tokenizer(input_values=_features(data["clip"])).token_ids[0].view(12, 8)
    np.testing.assert_array_equal(grid, expected.numpy())


def test_tokenize_long_file_concatenates_chunk_grids(capsys, data, models):
    code, out, err = cli(capsys, "tokenize", data["long"], "--model", models["tokenizer"])
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["shape"] == [156, 8]
    assert entry["unencoded_seconds"] == pytest.approx(0.04)
    tokenizer = BeatsTokenizerModel.from_pretrained(models["tokenizer"]).eval()
    with torch.no_grad():
        grids = [tokenizer(input_values=p).token_ids[0].view(-1, 8) for p in _frame_chunks(_features(data["long"]))]
    assert torch.equal(torch.tensor(entry["token_ids"]), torch.cat(grids))


# ---------------------------------------------------------------------------------------------------------------------
# convert and converted folders


def test_evaluate_refuses_what_would_score_an_untrained_head_and_reads_half_precision(capsys, tmp_path, data):
    # The encoder of a classifier, saved on its own, keeps the classifier's label names in its config: evaluate.py
    # loaded it as a BeatsForAudioClassification with a randomly initialised head and reported that head's accuracy.
    torch.manual_seed(0)
    labels = {"id2label": ID2LABEL, "label2id": {v: k for k, v in ID2LABEL.items()}}
    classifier = BeatsForAudioClassification(
        BeatsConfig(**TINY, **labels, problem_type="single_label_classification")
    ).eval()
    _save(classifier.beats, tmp_path / "encoder")
    arguments = ["--data", data["clip"].parents[1], "--num-workers", "0", "--output-dir"]
    with pytest.raises(ModelKindError, match="no classification head"):
        main(["evaluate", "--model", str(tmp_path / "encoder"), *map(str, arguments), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    # A classifier stored in bfloat16 is evaluated in float32 (its half-precision weights met float32 features).
    _save(classifier.to(torch.bfloat16), tmp_path / "bf16")
    code, out, err = cli(capsys, "evaluate", "--model", tmp_path / "bf16", *arguments, tmp_path / "bf16-out")
    assert code == 0, err
    report = json.loads((tmp_path / "bf16-out" / "report.json").read_text())
    assert report["num_clips"] == len(SYNTHETIC_CLASSES) and 0.0 <= report["accuracy"] <= 1.0


def test_convert_then_classify(capsys, tmp_path, data):
    code, out, err = cli(capsys, "convert", "--checkpoint", FIXTURES / "small_ft.pt", "--output-dir", tmp_path / "ft")
    assert code == 0, err
    assert (tmp_path / "ft" / "config.json").is_file() and (tmp_path / "ft" / "model.safetensors").is_file()
    code, out, err = cli(
        capsys, "classify", data["clip"], "--model", tmp_path / "ft", "--format", "json", "--top-k", 3
    )
    assert code == 0, err
    labels = json.loads(out)[0]["labels"]
    assert len(labels) == 3 and all(item["label"].startswith("class_") for item in labels)


def test_convert_help_and_errors(capsys, tmp_path):
    code, out, err = cli(capsys, "convert", "--help")
    assert code == 0, err
    assert "example:\n  beats-hf convert --checkpoint" in out and "--checkpoint-dir" in out
    # The converter reports its own errors, with the exit code of every other user mistake: one line, no traceback.
    code, _, err = cli(capsys, "convert", "--checkpoint", tmp_path / "missing.pt", "--output-dir", tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "missing.pt" in err
    assert not (tmp_path / "out").exists()


def test_converted_fixture_folders(capsys, tmp_path, data, converted):
    code, out, err = cli(
        capsys, "classify", data["clip"], "--model", converted["ft"], "--top-k", 20, "--format", "json"
    )
    assert code == 0, err
    assert len(json.loads(out)[0]["labels"]) == 10
    code, out, err = cli(capsys, "embed", data["clip"], "--model", converted["pt"], "--output-dir", tmp_path)
    assert code == 0, err
    assert load_file(tmp_path / f"{data['clip'].stem}.safetensors")["patches"].shape == (96, 64)
    code, out, err = cli(capsys, "tokenize", data["clip"], "--model", converted["tokenizer"])
    assert code == 0, err
    grid = torch.tensor(json.loads(out)[0]["token_ids"])
    assert grid.shape == (12, 8) and bool(((grid >= 0) & (grid < 64)).all())  # the fixture's codebook has 64 codes
    code, _, err = cli(capsys, "classify", data["clip"], "--model", converted["pt"])
    assert_user_error(code, err, "BeatsModel", "no classification head")
    code, _, err = cli(capsys, "tokenize", data["clip"], "--model", converted["ft"])
    assert_user_error(code, err, "not an acoustic tokenizer")


# ---------------------------------------------------------------------------------------------------------------------
# User mistakes: exit code 2, one line on stderr, no traceback


def _args(command, tmp_path):
    return ["--output-dir", tmp_path / "out"] if command == "embed" else []


GOOD_MODEL = {"classify": "classifier", "embed": "encoder", "tokenize": "tokenizer"}


@pytest.mark.parametrize("command", ["classify", "embed", "tokenize"])
@pytest.mark.parametrize(
    "problem, needle",
    [
        ("missing", "no such audio file"),
        ("garbage", "Cannot read audio file"),
        ("empty", "file is empty"),
        ("short", "shorter than one patch"),
    ],
)
def test_bad_audio(capsys, tmp_path, data, models, command, problem, needle):
    code, _, err = cli(
        capsys, command, data[problem], "--model", models[GOOD_MODEL[command]], *_args(command, tmp_path)
    )
    assert_user_error(code, err, f"beats-hf {command}: error:", needle, data[problem].name)


@pytest.mark.parametrize("command", ["classify", "embed", "tokenize"])
def test_skip_errors_goes_on_past_bad_files(capsys, tmp_path, data, models, command):
    files = [data["clips"][0], data["short"], data["garbage"], data["clips"][1]]
    code, out, err = cli(
        capsys, command, *files, "--model", models[GOOD_MODEL[command]], "--skip-errors", *_args(command, tmp_path)
    )
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"beats-hf {command}: skipped ") for line in lines)
    assert data["short"].name in lines[0] and "shorter than one patch" in lines[0]
    assert data["garbage"].name in lines[1]
    if command == "embed":
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
            f"{path.stem}.safetensors" for path in (files[0], files[3])
        )
    else:
        if command == "classify":
            code, out, _ = cli(
                capsys, command, *files, "--model", models["classifier"], "--skip-errors", "--format", "json"
            )
        assert [entry["file"] for entry in json.loads(out)] == [str(files[0]), str(files[3])]
    # All good: exit code 0 with the flag too.
    good = [files[0], files[3]]
    assert (
        cli(
            capsys, command, *good, "--model", models[GOOD_MODEL[command]], "--skip-errors", *_args(command, tmp_path)
        )[0]
        == 0
    )


@pytest.mark.parametrize("command", ["classify", "embed", "tokenize"])
@pytest.mark.parametrize(
    "folder, needle", [("no_model", "does not exist"), ("not_a_model", "not a saved model folder"), ("clip", "file")]
)
def test_bad_model_folder(capsys, tmp_path, data, command, folder, needle):
    code, _, err = cli(capsys, command, data["clip"], "--model", data[folder], *_args(command, tmp_path))
    assert_user_error(code, err, needle, data[folder].name)


@pytest.mark.parametrize(
    "command, model, needle",
    [
        ("classify", "encoder", "BeatsModel, which has no classification head"),
        ("classify", "tokenizer", "no classification head"),
        ("tokenize", "classifier", "BeatsForAudioClassification, not an acoustic tokenizer"),
        ("tokenize", "encoder", "not an acoustic tokenizer"),
        ("embed", "projection", "random-projection tokenizer, which has no encoder"),
    ],
)
def test_model_of_the_wrong_kind(capsys, tmp_path, data, models, command, model, needle):
    code, _, err = cli(capsys, command, data["clip"], "--model", models[model], *_args(command, tmp_path))
    assert_user_error(code, err, needle, models[model].name)


def test_tokenize_npy_needs_output_dir(capsys, data, models):
    code, out, err = cli(capsys, "tokenize", data["clip"], "--model", models["tokenizer"], "--format", "npy")
    assert_user_error(code, err, "--format npy", "--output-dir")
    assert out == ""


def test_tokenize_output_dir_needs_npy(capsys, tmp_path, data, models):
    args = ("tokenize", data["clip"], "--model", models["tokenizer"], "--output-dir", tmp_path / "tokens")
    code, out, err = cli(capsys, *args)
    assert_user_error(code, err, "--output-dir is only used with --format npy")
    assert out == "" and not (tmp_path / "tokens").exists()


def test_verbose_flag_also_after_the_command(capsys, data, models):
    code, out, err = cli(capsys, "classify", data["clip"], "--model", models["classifier"], "-v")
    assert code == 0, err
    assert cli(capsys, "-v", "classify", data["clip"], "--model", models["classifier"])[1] == out


def test_classify_json_keeps_tiny_scores(capsys, data, models, monkeypatch):
    # Multi-label scores of rare classes go far below 1e-6: they must not be rounded to ties at zero.
    import beats_hf.inference as inference

    real = inference.label_scores
    monkeypatch.setattr(inference, "label_scores", lambda model, logits: real(model, logits) * 1e-9)
    code, out, err = cli(capsys, "classify", data["clip"], "--model", models["multilabel"], "--format", "json")
    assert code == 0, err
    scores = [item["score"] for item in json.loads(out)[0]["labels"]]
    assert all(0 < score < 1e-8 for score in scores) and len(set(scores)) == len(scores)


def test_embed_refuses_a_file_as_output_dir_and_clashing_names(capsys, tmp_path, data, models):
    code, _, err = cli(capsys, "embed", data["clip"], "--model", models["encoder"], "--output-dir", data["clip"])
    assert_user_error(code, err, "is not a folder")
    copy = tmp_path / "copy" / data["clip"].name
    copy.parent.mkdir()
    copy.write_bytes(data["clip"].read_bytes())
    code, _, err = cli(capsys, "embed", data["clip"], copy, "--model", models["encoder"], "--output-dir", tmp_path)
    assert_user_error(code, err, "would both be saved as")
    assert not list(tmp_path.glob("*.safetensors"))


def test_a_broken_file_among_good_ones_is_named(capsys, tmp_path, data, models):
    code, _, err = cli(capsys, "classify", data["clip"], data["garbage"], "--model", models["classifier"])
    assert_user_error(code, err, "garbage.wav")


@pytest.mark.parametrize(
    "option, value",
    [
        ("--top-k", "0"),
        ("--top-k", "-1"),
        ("--batch-size", "0"),
        ("--chunk-seconds", "nan"),
        ("--chunk-seconds", "-5"),
        ("--chunk-seconds", "abc"),
        ("--chunk-seconds", "1e307"),
    ],
)
def test_invalid_option_values_are_usage_errors(capsys, data, models, option, value):
    with pytest.raises(SystemExit) as exit_:
        main(["classify", str(data["clip"]), "--model", str(models["classifier"]), option, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert f"error: argument {option}" in err.strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------------------------------
# End to end in a subprocess


def test_subprocess_classify_json(end_to_end):
    result = _finish(end_to_end["classify"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bars or load reports
    (entry,) = json.loads(result.stdout)
    assert len(entry["labels"]) == 2 and entry["labels"][0]["label"] in SYNTHETIC_CLASSES
    assert entry["labels"][0]["score"] >= entry["labels"][1]["score"]


def test_subprocess_user_error(end_to_end):
    result = _finish(end_to_end["error"])
    assert_user_error(result.returncode, result.stderr, "beats-hf tokenize: error:", "garbage.wav")
    assert result.stdout == ""
