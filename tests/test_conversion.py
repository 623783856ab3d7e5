# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Conversion official <-> beats_hf: CLI and library, parity with the official fixtures, strictness, round trips."""

import json
import logging
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from beats_hf import BeatsFeatureExtractor, BeatsForAudioClassification, BeatsModel, BeatsTokenizerModel
from beats_hf.configuration_beats import BEATS_AUTO_MAP, BeatsConfig
from beats_hf.conversion import (
    MODEL_CLASSES,
    REMOTE_CODE_FILES,
    CheckpointError,
    ConversionError,
    build_convert_original_parser,
    config_from_official,
    convert_checkpoint,
    convert_hf_to_original,
    load_audioset_labels,
    load_converted_model,
    load_official_checkpoint,
    main_convert_original,
    main_convert_to_original,
    model_from_official_checkpoint,
    official_checkpoint_from_model,
    official_key_map,
    readable_labels,
    reference_forward,
    same_model_folders,
    verify_converted_model,
)
from beats_hf.model_cards import repo_name_for_checkpoint

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data" / "official"
KINDS = {
    "small_pt": "pretrained",
    "small_ft": "finetuned",
    "small_prenorm": "pretrained",
    "small_tokenizer": "tokenizer",
}
REQUIRED_FILES = {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", *REMOTE_CODE_FILES}


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1"}, **extra)
    return env


def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the fixtures were computed with one thread; two threads differ by ~1e-6
    return previous


@pytest.fixture
def single_thread():
    previous = _one_thread()
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def outputs():
    return {name: torch.load(FIXTURES / f"{name}_outputs.pt", weights_only=True) for name in KINDS}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Library conversion of the four fixtures: name -> (report, folder)."""
    root = tmp_path_factory.mktemp("library")
    return {name: convert_checkpoint(FIXTURES / f"{name}.pt", root / name) for name in KINDS}


@pytest.fixture(scope="module")
def cli_converted(tmp_path_factory):
    """CLI batch conversion (subprocess) of copies of the four fixture checkpoints and one truncated file."""
    root = tmp_path_factory.mktemp("cli")
    source = root / "official"
    source.mkdir()
    for name in KINDS:
        shutil.copy(FIXTURES / f"{name}.pt", source / f"{name}.pt")
    _truncated(source / "broken.pt")
    result = subprocess.run(
        [
            sys.executable,
            "convert/convert_original_beats.py",
            "--checkpoint-dir",
            str(source),
            "--output-dir",
            str(root / "out"),
            "--no-progress",
        ],
        cwd=REPO,
        env=_env(HF_HOME=str(root / "hf_home")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return root / "out", result


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def _load(folder, kind, **kwargs):
    return MODEL_CLASSES[kind].from_pretrained(folder, **kwargs).eval()


def _assert_same_checkpoint(back: dict, original: dict):
    assert list(back) == list(original)
    assert list(back["model"]) == list(original["model"])  # same keys in the official order
    for name, tensor in original["model"].items():
        assert back["model"][name].dtype == tensor.dtype and torch.equal(back["model"][name], tensor), name
    assert back["cfg"] == original["cfg"] and list(back["cfg"]) == list(original["cfg"])
    assert back.get("label_dict") == original.get("label_dict")


# ---------------------------------------------------------------------------------------------------------------------
# CLI and folder layout


def test_cli_batch_converts_every_kind(cli_converted, converted):
    out, result = cli_converted
    assert result.returncode == 1, result.stderr  # one file failed; the others were still converted
    assert "4 converted, 1 failed" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: broken.pt: ") and "truncated or corrupt" in errors[0]
    assert "Traceback" not in result.stderr
    assert "max abs diff, hidden states (eager): 0.00e+00" in result.stdout
    assert "token agreement: 96/96" in result.stdout
    assert "top-5 labels on the test sound:" in result.stdout
    # unknown file names become slugs, with a warning
    assert sorted(p.name for p in out.iterdir()) == ["small-ft", "small-prenorm", "small-pt", "small-tokenizer"]
    assert "is not an official file name" in result.stderr
    for name in KINDS:
        folder = out / name.replace("_", "-")
        assert REQUIRED_FILES <= {p.name for p in folder.iterdir()}
        assert same_model_folders(folder, converted[name].output_dir)  # CLI and library give the same model


@pytest.mark.parametrize("name", list(KINDS))
def test_converted_folder_layout(converted, name):
    report = converted[name]
    assert report.kind == KINDS[name] and report.status == "written"
    assert REQUIRED_FILES <= set(report.files)
    config = json.loads((report.output_dir / "config.json").read_text())
    assert config["auto_map"] == BEATS_AUTO_MAP
    assert config["architectures"] == [MODEL_CLASSES[report.kind].__name__]
    original = config["original_checkpoint"]
    assert original["file"] == f"{name}.pt" and len(original["sha256"]) == 64
    preprocessor = json.loads((report.output_dir / "preprocessor_config.json").read_text())
    assert preprocessor["feature_extractor_type"] == "BeatsFeatureExtractor"
    assert not [p for p in report.output_dir.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.parametrize("name", list(KINDS))
def test_converted_card(converted, name):
    report = converted[name]
    card = (report.output_dir / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["pipeline_tag"] == ("audio-classification" if report.kind == "finetuned" else "feature-extraction")
    assert meta["license"] == "mit" and meta["library_name"] == "transformers"
    assert {"audio", "beats", "custom_code"} <= set(meta["tags"])
    assert report.sha256 in card and f"`{name}.pt`" in card and "conversion format" in card
    assert "0.00e+00" in card  # the self-verification numbers


# ---------------------------------------------------------------------------------------------------------------------
# Parity with the official outputs


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("name", list(KINDS))
def test_outputs_match_official(converted, outputs, single_thread, name, implementation):
    report, expected = converted[name], outputs[name]
    model = _load(report.output_dir, report.kind, attn_implementation=implementation)
    with torch.no_grad():
        result = model(expected["fbank"])
    if report.kind == "tokenizer":
        assert torch.equal(result.token_ids.flatten(), expected["nomask_labels"])
        return
    actual = torch.sigmoid(result.logits) if report.kind == "finetuned" else result.last_hidden_state
    torch.testing.assert_close(actual, expected["nomask_out"], atol=1e-5, rtol=0)
    if implementation == "eager":
        # The fixtures were made on another machine, whose BLAS kernels round differently (about 1e-6 here). On one
        # machine the eager path performs the official code's operations in its order: bit-identical to the
        # independent functional re-implementation of the official forward.
        checkpoint = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
        reference = reference_forward(checkpoint["model"], checkpoint["cfg"], expected["fbank"])
        assert torch.equal(actual, reference["probabilities" if report.kind == "finetuned" else "last_hidden_state"])
    if report.kind == "finetuned":
        assert model.config.id2label == {i: f"class_{i}" for i in range(10)}
        assert model.config.problem_type == "multi_label_classification"


@pytest.mark.parametrize("name", list(KINDS))
def test_reference_forward_matches_official(outputs, single_thread, name):
    checkpoint = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    expected = outputs[name]
    result = reference_forward(checkpoint["model"], checkpoint["cfg"], expected["fbank"])
    if KINDS[name] == "tokenizer":
        assert torch.equal(result["labels"].flatten(), expected["nomask_labels"])
    elif KINDS[name] == "finetuned":
        torch.testing.assert_close(result["probabilities"], expected["nomask_out"], atol=1e-5, rtol=0)
    else:
        torch.testing.assert_close(result["last_hidden_state"], expected["nomask_out"], atol=1e-5, rtol=0)


def test_auto_classes_load_converted_folders(converted):
    assert type(AutoModel.from_pretrained(converted["small_pt"].output_dir)) is BeatsModel
    assert type(AutoModel.from_pretrained(converted["small_prenorm"].output_dir)) is BeatsModel
    classifier = AutoModelForAudioClassification.from_pretrained(converted["small_ft"].output_dir)
    assert type(classifier) is BeatsForAudioClassification
    assert type(BeatsTokenizerModel.from_pretrained(converted["small_tokenizer"].output_dir)) is BeatsTokenizerModel
    for report in converted.values():
        extractor = AutoFeatureExtractor.from_pretrained(report.output_dir)
        assert type(extractor) is BeatsFeatureExtractor
        saved = {k: v for k, v in extractor.to_dict().items() if k != "auto_map"}
        assert saved == BeatsFeatureExtractor().to_dict()


def test_automodel_from_finetuned_folder_is_the_pretrained_encoder(converted, outputs, single_thread):
    encoder = AutoModel.from_pretrained(converted["small_ft"].output_dir, attn_implementation="eager").eval()
    pretrained = BeatsModel.from_pretrained(converted["small_pt"].output_dir, attn_implementation="eager").eval()
    assert encoder.state_dict().keys() == pretrained.state_dict().keys()
    for name, tensor in pretrained.state_dict().items():
        assert torch.equal(encoder.state_dict()[name], tensor), name  # nothing left randomly initialised
    with torch.no_grad():
        hidden = encoder(outputs["small_pt"]["fbank"]).last_hidden_state
        expected = pretrained(outputs["small_pt"]["fbank"]).last_hidden_state
    assert torch.equal(hidden, expected)
    torch.testing.assert_close(hidden, outputs["small_pt"]["nomask_out"], atol=1e-5, rtol=0)


def test_remote_code_in_fresh_process_without_beats_hf(converted, outputs, tmp_path):
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["beats_hf"] = None  # even if it were installed, it must not be used
        try:
            import beats_hf  # noqa: F401
            importable = True
        except ImportError:
            importable = False
        import torch
        from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        torch.set_num_threads(1)
        pt_dir, ft_dir, tok_dir, fixtures = sys.argv[1:5]
        inputs = torch.load(fixtures + "/inputs.pt", weights_only=True)
        pt_out = torch.load(fixtures + "/small_pt_outputs.pt", weights_only=True)
        ft_out = torch.load(fixtures + "/small_ft_outputs.pt", weights_only=True)
        tok_out = torch.load(fixtures + "/small_tokenizer_outputs.pt", weights_only=True)
        encoder = AutoModel.from_pretrained(pt_dir, trust_remote_code=True).eval()
        classifier = AutoModelForAudioClassification.from_pretrained(ft_dir, trust_remote_code=True).eval()
        extractor = AutoFeatureExtractor.from_pretrained(ft_dir, trust_remote_code=True)
        tokenizer_class = get_class_from_dynamic_module("modeling_beats.BeatsTokenizerModel", tok_dir)
        tokenizer = tokenizer_class.from_pretrained(tok_dir).eval()
        features = extractor(inputs["waveform"][0].numpy(), sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(pt_out["fbank"]).last_hidden_state
            probabilities = classifier(ft_out["fbank"]).logits.sigmoid()
            tokens = tokenizer(tok_out["fbank"]).token_ids.flatten()
        print(json.dumps({
            "importable": importable,
            "modules": [type(m).__module__ for m in (encoder, classifier, extractor, tokenizer)],
            "hidden": float((hidden - pt_out["nomask_out"]).abs().max()),
            "probabilities": float((probabilities - ft_out["nomask_out"]).abs().max()),
            "tokens": bool(torch.equal(tokens, tok_out["nomask_labels"])),
            "fbank": float((features["input_values"][0] - pt_out["fbank"][0]).abs().max()),
            "id2label": classifier.config.id2label,
        }))
        """
    )
    folders = [str(converted[name].output_dir) for name in ("small_pt", "small_ft", "small_tokenizer")]
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, *folders, str(FIXTURES)],
        cwd=tmp_path,
        env=_env(HF_HOME=str(tmp_path / "hf_home")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["importable"] is False
    assert all(module.startswith("transformers_modules.") for module in report["modules"])
    assert report["hidden"] <= 1e-5 and report["probabilities"] <= 1e-5
    assert report["tokens"] is True
    assert report["fbank"] <= 1e-4
    assert report["id2label"]["0"] == "class_0"


# ---------------------------------------------------------------------------------------------------------------------
# Round trip official -> HF -> official


@pytest.mark.parametrize("name", list(KINDS))
def test_round_trip_is_bit_identical(converted, tmp_path, name):
    output = tmp_path / f"{name}.pt"
    report = convert_hf_to_original(converted[name].output_dir, output)
    assert report.verification.passed
    original = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    back = torch.load(output, weights_only=True)
    _assert_same_checkpoint(back, original)
    layers = [k for k in back["model"] if k.endswith("relative_attention_bias.weight")]
    if layers:  # every layer has its (shared) copy of the relative position table
        assert len(layers) == original["cfg"]["encoder_layers"]


def test_reverse_cli_and_refusals(converted, tmp_path, capsys):
    output = tmp_path / "back.pt"
    assert (
        main_convert_to_original(["--model-dir", str(converted["small_ft"].output_dir), "--output", str(output)]) == 0
    )
    _assert_same_checkpoint(
        torch.load(output, weights_only=True), torch.load(FIXTURES / "small_ft.pt", weights_only=True)
    )
    capsys.readouterr()
    assert (
        main_convert_to_original(["--model-dir", str(converted["small_ft"].output_dir), "--output", str(output)]) == 2
    )
    assert "already exists" in capsys.readouterr().err
    assert main_convert_to_original(["--model-dir", str(tmp_path), "--output", str(tmp_path / "x.pt")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_reverse_output_that_is_a_directory_is_refused_before_any_work(converted, tmp_path, capsys):
    # With --overwrite it used to fail at the very end with "[Errno 21] Is a directory" on a temporary name.
    folder = converted["small_pt"].output_dir
    (tmp_path / "official").mkdir()
    for extra in ([], ["--overwrite"]):
        arguments = ["--model-dir", str(folder), "--output", str(tmp_path / "official"), *extra]
        assert main_convert_to_original(arguments) == 2
        err = capsys.readouterr().err
        assert "is a directory" in err and "the .pt file to write" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["official"] and not any((tmp_path / "official").iterdir())


def test_reverse_output_that_is_a_file_of_the_folder_is_refused_even_with_overwrite(converted, tmp_path, capsys):
    folder = tmp_path / "folder"
    shutil.copytree(converted["small_pt"].output_dir, folder)
    weights = (folder / "model.safetensors").read_bytes()
    arguments = ["--model-dir", str(folder), "--output", str(folder / "model.safetensors"), "--overwrite"]
    assert main_convert_to_original(arguments) == 2
    assert "is a file of the folder being converted" in capsys.readouterr().err
    assert (folder / "model.safetensors").read_bytes() == weights
    assert main_convert_to_original(["--model-dir", str(folder), "--output", str(folder / "official.pt")]) == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reverse_of_a_half_precision_folder_keeps_its_tensors(converted, tmp_path, dtype):
    # A folder saved in half precision (e.g. after bf16 fine-tuning) loads in that dtype; the float32 reference
    # check used to crash on it ("Input type (torch.FloatTensor) and weight type ... should be the same").
    model = _load(converted["small_ft"].output_dir, "finetuned").to(dtype)
    model.save_pretrained(tmp_path / "half")
    report = convert_hf_to_original(tmp_path / "half", tmp_path / "half.pt")
    assert report.verification.passed and report.verification.max_abs_diff
    written = torch.load(tmp_path / "half.pt", weights_only=True)
    folder = official_checkpoint_from_model(load_converted_model(tmp_path / "half"))
    _assert_same_checkpoint(written, folder)  # the file holds the folder's tensors, in the folder's dtype
    assert written["model"]["predictor.weight"].dtype == dtype


@pytest.mark.parametrize("name", list(KINDS))
def test_round_trip_keeps_cfg_fields_the_original_file_lacked_absent(tmp_path, name):
    # The official code applies its defaults to absent fields; the file comes back without them.
    checkpoint = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    absent = ["predictor_dropout", "encoder_layerdrop", "dropout", "layer_wise_gradient_decay_ratio"]
    if KINDS[name] == "pretrained":
        absent += ["predictor_class", "finetuned_model"]  # a fine-tuned file needs both for its head
    for field in absent:
        checkpoint["cfg"].pop(field, None)
    torch.save(checkpoint, tmp_path / "lacking.pt")
    folder = convert_checkpoint(tmp_path / "lacking.pt", tmp_path / "converted").output_dir
    _assert_same_checkpoint(official_checkpoint_from_model(_load(folder, KINDS[name])), checkpoint)


def test_reverse_writes_cfg_fields_the_original_file_lacked_once_they_changed(tmp_path):
    # A converted AudioSet classifier whose file had no predictor_class / predictor_dropout (the official defaults,
    # 527 and 0.1, applied), given a new 5-class head: left out, the official code would build a 527-class head and
    # refuse the tensors. Unchanged absent fields stay absent, so the round trip stays bit-identical.
    checkpoint = torch.load(FIXTURES / "small_ft.pt", weights_only=True)
    width = checkpoint["model"]["predictor.weight"].shape[1]
    generator = torch.Generator().manual_seed(0)
    checkpoint["model"]["predictor.weight"] = torch.randn(527, width, generator=generator)
    checkpoint["model"]["predictor.bias"] = torch.randn(527, generator=generator)
    del checkpoint["cfg"]["predictor_class"], checkpoint["cfg"]["predictor_dropout"], checkpoint["label_dict"]
    torch.save(checkpoint, tmp_path / "audioset.pt")
    folder = convert_checkpoint(tmp_path / "audioset.pt", tmp_path / "converted").output_dir
    _assert_same_checkpoint(official_checkpoint_from_model(_load(folder, "finetuned")), checkpoint)

    model = BeatsForAudioClassification.from_pretrained(folder, num_labels=5, ignore_mismatched_sizes=True)
    model.config.classifier_dropout = 0.3
    back = official_checkpoint_from_model(model)
    assert back["model"]["predictor.weight"].shape == (5, width)
    assert back["cfg"]["predictor_class"] == 5 and back["cfg"]["predictor_dropout"] == 0.3
    assert "predictor_class" not in checkpoint["cfg"]  # the official default applied to the original


def _tiny_reverse_config() -> dict:
    return {
        "patch_embedding_dim": 32,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "num_conv_pos_embeddings": 8,
        "num_conv_pos_embedding_groups": 2,
        "num_buckets": 16,
        "max_bucket_distance": 32,
    }


@pytest.mark.parametrize(
    ("setting", "message"), [({"num_mel_bins": 64}, "128-bin filter banks"), ({"layer_norm_eps": 1e-6}, "eps=1e-05")]
)
def test_reverse_refuses_settings_the_official_code_hard_codes(tmp_path, capsys, setting, message):
    # The official code would load such a file and compute something else; the refusal names the setting.
    BeatsModel(BeatsConfig(**_tiny_reverse_config(), **setting)).save_pretrained(tmp_path / "model")
    arguments = ["--model-dir", str(tmp_path / "model"), "--output", str(tmp_path / "back.pt")]
    assert main_convert_to_original(arguments) == 2
    err = capsys.readouterr().err
    assert "cannot be written in the official format" in err and message in err and next(iter(setting)) in err
    assert not (tmp_path / "back.pt").exists()


def test_reverse_names_filter_bank_statistics_the_file_cannot_hold(tmp_path, caplog):
    # e.g. a classifier fine-tuned with the ESC-50 recipe: the official code would normalise with AudioSet's numbers.
    model = BeatsModel(BeatsConfig(**_tiny_reverse_config()))
    model.save_pretrained(tmp_path / "esc50")
    BeatsFeatureExtractor(fbank_mean=11.72215, fbank_std=10.60431).save_pretrained(tmp_path / "esc50")
    model.save_pretrained(tmp_path / "audioset")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "audioset")
    with caplog.at_level(logging.WARNING, logger="beats_hf.conversion"):
        convert_hf_to_original(tmp_path / "audioset", tmp_path / "audioset.pt")
        assert not caplog.messages
        convert_hf_to_original(tmp_path / "esc50", tmp_path / "esc50.pt")
    assert len(caplog.messages) == 1
    assert "fbank_mean=11.72215, fbank_std=10.60431" in caplog.messages[0]
    assert (tmp_path / "esc50.pt").is_file()


@pytest.mark.parametrize(
    "setting, message",
    [({"sampling_rate": 8000}, "always uses 16000 Hz"), ({"feature_size": 64}, "always uses 128 mel bins")],
)
def test_reverse_refuses_filter_banks_the_official_preprocessing_cannot_compute(tmp_path, capsys, setting, message):
    BeatsModel(BeatsConfig(**_tiny_reverse_config())).save_pretrained(tmp_path / "model")
    BeatsFeatureExtractor(**setting).save_pretrained(tmp_path / "model")
    arguments = ["--model-dir", str(tmp_path / "model"), "--output", str(tmp_path / "back.pt")]
    assert main_convert_to_original(arguments) == 2
    err = capsys.readouterr().err
    assert "feature extractor cannot be written in the official format" in err and message in err
    assert next(iter(setting)) in err and not (tmp_path / "back.pt").exists()


def test_reverse_refusal_of_a_masked_audio_modelling_folder_says_what_to_convert(tmp_path, capsys):
    from beats_hf import BeatsForMaskedAudioModeling

    config = BeatsConfig(**{**_tiny_reverse_config(), "codebook_size": 16})
    BeatsForMaskedAudioModeling(config).save_pretrained(tmp_path / "final")
    assert main_convert_to_original(["--model-dir", str(tmp_path / "final"), "--output", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "BeatsForMaskedAudioModeling, which has no official checkpoint format" in err
    assert "convert its encoder folder" in err and not (tmp_path / "x.pt").exists()


def test_official_key_order_matches_official_models():
    summary = json.loads((FIXTURES / "summary.json").read_text())
    for name, kind in KINDS.items():
        checkpoint = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
        model = MODEL_CLASSES[kind](config_from_official(checkpoint["cfg"], kind, checkpoint.get("label_dict")))
        assert list(official_key_map(model.config, kind)) == [entry[0] for entry in summary[name]["state_dict"]]
    release = BeatsConfig(num_labels=527)
    assert list(official_key_map(release, "finetuned")) == [e[0] for e in summary["released_like_ft_state_dict"]]
    assert list(official_key_map(release, "tokenizer")) == [
        e[0] for e in summary["released_like_tokenizer_state_dict"]
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Labels


def test_label_table():
    table = load_audioset_labels()
    assert len(table) == 527 and table["/m/09x0r"] == "Speech" and table["/m/07hvw1"] == "Field recording"
    names, mapped = readable_labels(["/m/09x0r", "not a mid", "/m/05zppz"])
    assert names == ["Speech", "not a mid", "Male speech, man speaking"] and mapped == 2


def test_labels_follow_the_checkpoint_order(tmp_path):
    checkpoint = torch.load(FIXTURES / "small_ft.pt", weights_only=True)
    mids = [
        "/m/07hvw1",
        "/m/09x0r",
        "/m/0ytgt",
        "custom label",
        "/m/05zppz",
        "/m/02zsn",
        "/m/07pbtc8",
        "/m/07c52",
        "/m/01h8n0",
        "/m/02qldy",
    ]
    order = list(range(10))
    random.Random(3).shuffle(order)
    checkpoint["label_dict"] = {index: mids[index] for index in order}  # keys in a shuffled order too
    source = tmp_path / "BEATs_iter3_finetuned_on_AS2M_cpt1.pt"
    torch.save(checkpoint, source)
    report = convert_checkpoint(source, tmp_path / "out")
    config = BeatsForAudioClassification.from_pretrained(report.output_dir).config
    table = load_audioset_labels()
    expected = [table.get(mid, mid) for mid in mids]
    assert [config.id2label[i] for i in range(10)] == expected
    assert config.id2label[0] == "Field recording" and config.id2label[1] == "Speech"  # not the csv order
    assert config.id2label[3] == "custom label"
    assert all(config.label2id[label] == i for i, label in enumerate(expected))
    assert config.original_checkpoint["label_dict"] == mids
    card = (report.output_dir / "README.md").read_text()
    assert "9 of its labels were AudioSet identifiers" in card and "`Field recording`, `Speech`" in card
    assert _front_matter(card)["base_model"] == "<namespace>/beats-iter3"
    back = official_checkpoint_from_model(BeatsForAudioClassification.from_pretrained(report.output_dir))
    assert back["label_dict"] == {i: mids[i] for i in range(10)}


def test_labels_of_a_checkpoint_without_a_head_are_not_dropped_silently(caplog):
    checkpoint = torch.load(FIXTURES / "small_pt.pt", weights_only=True)
    checkpoint["label_dict"] = {0: "/m/09x0r", 1: "/m/05zppz"}
    with caplog.at_level(logging.WARNING, logger="beats_hf.conversion"):
        model = model_from_official_checkpoint(checkpoint)
    assert isinstance(model, BeatsModel)
    assert any("label_dict of 2 labels but no classification head" in message for message in caplog.messages)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="beats_hf.conversion"):
        model_from_official_checkpoint(torch.load(FIXTURES / "small_ft.pt", weights_only=True))
    assert not caplog.messages


# ---------------------------------------------------------------------------------------------------------------------
# Malformed inputs: a clear error and nothing written


class _Payload:
    """Pickles to a call of os.mkdir(marker): weights_only refuses it, so the marker must never appear."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _truncated(path):
    data = (FIXTURES / "small_pt.pt").read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edited(edit, base="small_pt"):
    def make(path):
        checkpoint = torch.load(FIXTURES / f"{base}.pt", weights_only=True)
        edit(checkpoint)
        torch.save(checkpoint, path)

    return make


def _without_cfg(checkpoint):
    del checkpoint["cfg"]


def _not_beats(checkpoint):
    checkpoint["model"] = {"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}


def _missing(checkpoint):
    del checkpoint["model"]["encoder.layers.1.fc1.weight"]


def _extra(checkpoint):
    checkpoint["model"]["encoder.layers.2.fc1.weight"] = torch.zeros(128, 64)


def _wrong_shape(checkpoint):
    checkpoint["model"]["encoder.layers.0.fc2.weight"] = torch.zeros(64, 129)


def _unshared_table(checkpoint):
    checkpoint["model"]["encoder.layers.1.self_attn.relative_attention_bias.weight"] = torch.zeros(320, 4)


def _cfg(**entries):
    def edit(checkpoint):
        checkpoint["cfg"].update(entries)

    return edit


def _head_without_flag(checkpoint):
    # What the official loader refuses: BEATs(cfg) with finetuned_model=False has no predictor to load these into.
    head = torch.load(FIXTURES / "small_ft.pt", weights_only=True)["model"]
    checkpoint["cfg"]["predictor_class"] = 10
    checkpoint["model"].update({name: head[name] for name in ("predictor.weight", "predictor.bias")})


def _flag_without_head(checkpoint):
    del checkpoint["model"]["predictor.weight"], checkpoint["model"]["predictor.bias"]


def _labels(**changes):
    def edit(checkpoint):
        checkpoint["label_dict"].update({int(index[1:]): label for index, label in changes.items()})

    return edit


MALFORMED = {
    # layer_norm_first=True with deep_norm=True (the official code asserts too): huggingface_hub's strict dataclass
    # error is not a ValueError, and used to escape as an "unexpected error".
    "inconsistent cfg": (
        _edited(_cfg(layer_norm_first=True)),
        r"the entries deep_norm, layer_norm_first are invalid or inconsistent \(deep_norm=True requires post-LN "
        r"layers \(layer_norm_first=False\).*Correct checkpoint\['cfg'\]",
    ),
    "cfg value of a wrong type": (
        _edited(_cfg(encoder_layers="2")),
        r"the entry encoder_layers is invalid \(Field 'encoder_layers' expected int, got str",
    ),
    "cfg problem in official names": (
        _edited(_cfg(encoder_attention_heads=3)),
        r"encoder_embed_dim \(64\) must be divisible by encoder_attention_heads \(3\)",
    ),
    "head without finetuned_model": (
        _edited(_head_without_flag),
        r"cfg\['finetuned_model'\] is False but the state dict has the classification head "
        r"\['predictor\.weight', 'predictor\.bias'\]: the cfg and the tensors disagree.*set "
        r"cfg\['finetuned_model'\] = True",
    ),
    "head without any finetuned_model entry": (
        _edited(lambda checkpoint: (_head_without_flag(checkpoint), checkpoint["cfg"].pop("finetuned_model"))),
        r"cfg\['finetuned_model'\] is absent \(the official default, False\) but the state dict has the "
        r"classification head",
    ),
    "finetuned_model without head": (
        _edited(_flag_without_head, base="small_ft"),
        r"cfg\['finetuned_model'\] is True but the state dict has no classification head.*disagree",
    ),
    "duplicate labels": (
        _edited(_labels(i7="class_3", i9="class_3", i8="class_1"), base="small_ft"),
        r"label_dict gives the same label to several classes \('class_1' for classes 1, 8; 'class_3' for classes "
        r"3, 7, 9\).*Give every class its own label",
    ),
    "labels colliding once made readable": (
        _edited(_labels(i0="/m/09x0r", i1="Speech", i2="Speech (/m/09x0r)"), base="small_ft"),
        r"with AudioSet identifiers replaced by display names, gives the same label to several classes "
        r"\('Speech \(/m/09x0r\)' for classes 0, 2\)",
    ),
    "truncated": (_truncated, r"truncated or corrupt"),
    "no cfg": (_edited(_without_cfg), r"expected a dict with 'cfg' and 'model' entries, found \['model'\]"),
    "not beats": (_edited(_not_beats), r"not a BEATs checkpoint"),
    "missing tensor": (_edited(_missing), r"missing tensors \['encoder\.layers\.1\.fc1\.weight'\]"),
    "extra tensor": (_edited(_extra), r"unexpected tensors \['encoder\.layers\.2\.fc1\.weight'\]"),
    "wrong shape": (
        _edited(_wrong_shape),
        r"encoder\.layers\.0\.fc2\.weight has shape \(64, 129\), the cfg needs \(64, 128\)",
    ),
    "unshared table": (
        _edited(_unshared_table),
        r"differs from encoder\.layers\.0\.self_attn\.relative_attention_bias",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_checkpoint_is_refused(tmp_path, case):
    make, message = MALFORMED[case]
    source = tmp_path / "bad.pt"
    make(source)
    with pytest.raises(CheckpointError, match=message):
        convert_checkpoint(source, tmp_path / "out" / "model")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_code_executing_pickle_is_refused(tmp_path):
    marker = tmp_path / "payload-ran"
    checkpoint = torch.load(FIXTURES / "small_pt.pt", weights_only=True)
    checkpoint["extra"] = _Payload(marker)
    source = tmp_path / "evil.pt"
    torch.save(checkpoint, source)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=r"refused to load.*could execute code when unpickled"):
        convert_checkpoint(source, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_output_directory_holding_another_model(tmp_path):
    target = tmp_path / "model"
    first = convert_checkpoint(FIXTURES / "small_pt.pt", target)
    before = (target / "model.safetensors").read_bytes()
    with pytest.raises(ConversionError, match="already holds a different model"):
        convert_checkpoint(FIXTURES / "small_prenorm.pt", target)
    assert (target / "model.safetensors").read_bytes() == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folders left
    again = convert_checkpoint(FIXTURES / "small_pt.pt", target)  # same model: fine, idempotent
    assert again.status == "replaced (same model)" and first.status == "written"
    assert (target / "model.safetensors").read_bytes() == before
    replaced = convert_checkpoint(FIXTURES / "small_prenorm.pt", target, overwrite=True)
    assert replaced.status == "overwritten"
    assert json.loads((target / "config.json").read_text())["layer_norm_first"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(ConversionError, match="does not hold a converted model"):
        convert_checkpoint(FIXTURES / "small_pt.pt", other)
    assert [p.name for p in other.iterdir()] == ["todo.txt"]


def _safetensors_file(path):
    from safetensors.torch import save_file

    save_file({"patch_embedding.weight": torch.zeros(4, 1, 16, 16)}, path)


def _text_file(path):
    path.write_text("hello, this is not a checkpoint\n")


NOT_CHECKPOINTS = {
    # The weights of a converted folder: not a pickle at all, so "needs arbitrary Python objects" was wrong.
    "safetensors": (_safetensors_file, r"is a safetensors file, not an official BEATs checkpoint.*from_pretrained"),
    # Used to escape as a KeyError from the unpickler (an "unexpected error", exit code 3).
    "text": (_text_file, r"cannot be read as a PyTorch checkpoint.*truncated or corrupt"),
    # Used to say "no such file".
    "directory": (lambda path: path.mkdir(), r"is a directory, not a checkpoint file.*--checkpoint-dir"),
}


@pytest.mark.parametrize("case", list(NOT_CHECKPOINTS))
def test_files_that_are_not_official_checkpoints_are_named_for_what_they_are(tmp_path, capsys, case):
    make, message = NOT_CHECKPOINTS[case]
    source = tmp_path / "given.pt"
    make(source)
    with pytest.raises(CheckpointError, match=message) as info:
        load_official_checkpoint(source)
    assert "could execute code" not in str(info.value)
    assert main_convert_original(["--checkpoint", str(source), "--output-dir", str(tmp_path / "out")]) == 2
    assert "unexpected" not in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_reconverting_the_same_model_keeps_files_the_converter_does_not_write(tmp_path):
    # "The same model converted again simply replaces it" must not delete what the user put beside it.
    target = tmp_path / "model"
    convert_checkpoint(FIXTURES / "small_pt.pt", target)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ConversionError, match=r"also holds files the converter does not write \['notes.txt'\]"):
        convert_checkpoint(FIXTURES / "small_pt.pt", target)
    assert (target / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    again = convert_checkpoint(FIXTURES / "small_pt.pt", target, overwrite=True)
    assert again.status == "replaced (same model)" and not (target / "notes.txt").exists()


def test_output_directory_holding_the_checkpoint_itself_is_refused_even_with_overwrite(tmp_path):
    # `--output-dir . --overwrite` next to the checkpoint: replacing the folder would delete the checkpoint too.
    folder = tmp_path / "downloads"
    folder.mkdir()
    source = folder / "BEATs_iter3.pt"
    shutil.copy(FIXTURES / "small_pt.pt", source)
    for target in (folder, tmp_path):
        with pytest.raises(ConversionError, match=r"contains the checkpoint being converted"):
            convert_checkpoint(source, target, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["BEATs_iter3.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]


def test_cli_error_is_one_line(tmp_path, capsys):
    source = tmp_path / "bad.pt"
    _truncated(source)
    code = main_convert_original(["--checkpoint", str(source), "--output-dir", str(tmp_path / "out")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "truncated or corrupt" in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_invalid_cfg_is_a_checkpoint_error(tmp_path, capsys):
    source = tmp_path / "bad_cfg.pt"
    _edited(_cfg(layer_norm_first=True))(source)
    code = main_convert_original(["--checkpoint", str(source), "--output-dir", str(tmp_path / "out")])
    assert code == 2  # a bad checkpoint, not an internal error (3)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cfg describes a model that cannot be built")
    assert "unexpected" not in lines[0] and "deep_norm, layer_norm_first" in lines[0]
    assert not (tmp_path / "out").exists()


def test_self_verification_refuses_a_wrong_model():
    checkpoint = load_official_checkpoint(FIXTURES / "small_ft.pt")
    model = model_from_official_checkpoint(checkpoint)
    with torch.no_grad():
        model.beats.encoder.layers[1].feed_forward.fc2.bias[0] += 1e-2
    with pytest.raises(ConversionError, match="self-verification failed"):
        verify_converted_model(model, checkpoint)


def test_config_refuses_a_zero_patch_size_with_the_reason():
    # The check of the mel bins divided by patch_size used to raise ZeroDivisionError first.
    with pytest.raises(Exception, match=r"patch_size \(0\) must be positive") as info:
        BeatsConfig(patch_size=0)
    assert not isinstance(info.value, ZeroDivisionError)


# ---------------------------------------------------------------------------------------------------------------------
# Naming and the Hub


def test_naming_scheme():
    assert repo_name_for_checkpoint("BEATs_iter3_plus_AS2M.pt") == ("beats-iter3-plus-as2m", True)
    assert repo_name_for_checkpoint("BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt") == (
        "beats-iter3-plus-as2m-ft-as2m-cpt2",
        True,
    )
    assert repo_name_for_checkpoint("Tokenizer_iter3_plus_AS2M.pt") == ("beats-tokenizer-iter3-plus-as2m", True)
    assert repo_name_for_checkpoint("My Model (v2).pt") == ("my-model-v2", False)


def test_push_to_hub_is_wired(tmp_path, capsys):
    args = build_convert_original_parser().parse_args(
        ["--checkpoint", "x.pt", "--output-dir", "out", "--push-to-hub", "someone/beats-small"]
    )
    assert args.push_to_hub == "someone/beats-small"
    output = tmp_path / "out"
    with mock.patch("beats_hf.conversion.HfApi") as api_class:
        api_class.return_value.create_repo.return_value = "https://huggingface.co/someone/beats-small"
        code = main_convert_original(
            [
                "--checkpoint",
                str(FIXTURES / "small_ft.pt"),
                "--output-dir",
                str(output),
                "--push-to-hub",
                "someone/beats-small",
            ]
        )
    assert code == 0
    api = api_class.return_value
    api.create_repo.assert_called_once()
    assert api.create_repo.call_args.args[0] == "someone/beats-small"
    assert api.create_repo.call_args.kwargs["exist_ok"] is True
    upload = api.upload_folder.call_args.kwargs
    assert upload["repo_id"] == "someone/beats-small" and Path(upload["folder_path"]) == output.absolute()
    assert "uploaded: https://huggingface.co/someone/beats-small" in capsys.readouterr().out
    assert "<namespace>" not in (output / "README.md").read_text()


def test_push_to_hub_without_network_fails_clearly(tmp_path, capsys):
    with mock.patch("beats_hf.conversion.HfApi") as api_class:
        api_class.return_value.create_repo.side_effect = ConnectionError("Failed to resolve 'huggingface.co'")
        code = main_convert_original(
            [
                "--checkpoint",
                str(FIXTURES / "small_pt.pt"),
                "--output-dir",
                str(tmp_path / "out"),
                "--push-to-hub",
                "someone/beats-small",
            ]
        )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not upload" in err[0] and "Failed to resolve" in err[0]
    assert (tmp_path / "out" / "model.safetensors").is_file()  # the conversion itself was kept


@pytest.mark.parametrize("name", ["small_pt", "small_prenorm"])
def test_eager_is_bit_identical_to_the_official_code_run_here(converted, single_thread, name):
    # Only where the official code is available (it is never part of this repository: extract microsoft/unilm
    # `beats/` to $BEATS_OFFICIAL_DIR, default /tmp/official_beats); it also needs torchaudio.
    official_dir = Path(os.environ.get("BEATS_OFFICIAL_DIR", "/tmp/official_beats"))
    if not (official_dir / "BEATs.py").is_file():
        pytest.skip(f"the official BEATs code is not in {official_dir} (set BEATS_OFFICIAL_DIR)")
    pytest.importorskip("torchaudio", reason="the official code needs torchaudio", exc_type=ImportError)
    sys.path.insert(0, str(official_dir))
    try:
        from BEATs import BEATs, BEATsConfig
    finally:
        sys.path.remove(str(official_dir))
    checkpoint = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    official = BEATs(BEATsConfig(checkpoint["cfg"])).eval()
    official.load_state_dict(checkpoint["model"])
    ours = _load(converted[name].output_dir, "pretrained", attn_implementation="eager")
    waveform = torch.load(FIXTURES / "inputs.pt", weights_only=True)["waveform"][:1]
    with torch.no_grad():
        expected = official.extract_features(waveform, padding_mask=None)[0]
        features = BeatsFeatureExtractor()(waveform[0].numpy(), sampling_rate=16000, return_tensors="pt")
        actual = ours(features["input_values"]).last_hidden_state
    assert torch.equal(actual, expected)
