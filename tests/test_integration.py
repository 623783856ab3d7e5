# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Integration with the transformers ecosystem: Auto classes, Hub remote code (`trust_remote_code=True`), the
audio-classification pipeline, the Trainer, and tokenizer serialisation. Everything runs on tiny random models
saved to temporary directories (no network)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    AutoProcessor,
    Trainer,
    TrainingArguments,
    pipeline,
)
from transformers.utils import is_torchaudio_available
from utils import make_model, padded_batch, random_waveform, tiny_config

from beats_hf import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsForMaskedAudioModeling,
    BeatsModel,
    BeatsTokenizerModel,
)

LABELS = ["dog", "rain", "siren", "speech"]
SAMPLING_RATE = 16000


def feature_extractor() -> BeatsFeatureExtractor:
    return BeatsFeatureExtractor(feature_size=tiny_config().num_mel_bins)


def classifier(problem_type=None, seed=0) -> BeatsForAudioClassification:
    return make_model(
        BeatsForAudioClassification,
        seed=seed,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        problem_type=problem_type,
    )


def save(directory: Path, model) -> Path:
    model.save_pretrained(directory)
    feature_extractor().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny random models saved with their feature extractor: {"base", "classifier", "multi_label"} -> directory."""
    root = tmp_path_factory.mktemp("beats_models")
    return {
        "base": save(root / "base", make_model(BeatsModel, seed=1)),
        "classifier": save(root / "classifier", classifier(seed=2)),
        "multi_label": save(root / "multi_label", classifier("multi_label_classification", seed=3)),
    }


def expected_logits(directory: Path, waveform: np.ndarray) -> torch.Tensor:
    model = BeatsForAudioClassification.from_pretrained(directory).eval()
    inputs = BeatsFeatureExtractor.from_pretrained(directory)(
        waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt"
    )
    with torch.no_grad():
        return model(**inputs).logits[0]


# ----------------------------------------------------------------------------------------------------------------------
# Auto classes
# ----------------------------------------------------------------------------------------------------------------------


def test_auto_classes_resolve_to_beats(saved):
    config = AutoConfig.from_pretrained(saved["classifier"])
    assert type(config) is BeatsConfig
    assert config.model_type == "beats_hf"
    assert type(AutoModel.from_pretrained(saved["base"])) is BeatsModel
    assert type(AutoModelForAudioClassification.from_pretrained(saved["classifier"])) is BeatsForAudioClassification
    assert type(AutoModelForPreTraining.from_pretrained(saved["base"])) is BeatsForMaskedAudioModeling
    fe = AutoFeatureExtractor.from_pretrained(saved["classifier"])
    assert type(fe) is BeatsFeatureExtractor
    assert fe.feature_size == 32
    # same settings; the saved copy also records where remote code finds the class
    assert {k: v for k, v in fe.to_dict().items() if k != "auto_map"} == feature_extractor().to_dict()


def test_auto_processor_gives_the_feature_extractor_without_asking_about_remote_code(saved, monkeypatch):
    prompts = []

    def no_prompt(*args):
        prompts.append(args)
        raise EOFError

    monkeypatch.setattr("builtins.input", no_prompt)
    assert type(AutoProcessor.from_pretrained(saved["classifier"])) is BeatsFeatureExtractor
    assert prompts == []


def test_auto_model_from_classifier_dir_matches_its_base_model(saved):
    # Loading the encoder out of a fine-tuned directory strips the `beats.` prefix; every weight, including the
    # weight-normalised positional convolution, must be found (a silent re-initialisation would change the outputs).
    base, info = AutoModel.from_pretrained(saved["classifier"], output_loading_info=True)
    assert type(base) is BeatsModel
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    head = BeatsForAudioClassification.from_pretrained(saved["classifier"]).eval()
    assert set(base.state_dict()) == {k.removeprefix("beats.") for k in head.state_dict() if k.startswith("beats.")}
    inputs = feature_extractor()(
        [random_waveform(16000, seed=0), random_waveform(9000, seed=1)],
        sampling_rate=SAMPLING_RATE,
        return_tensors="pt",
    )
    with torch.no_grad():
        expected = head.beats(**inputs, output_hidden_states=True)
        actual = base.eval()(**inputs, output_hidden_states=True)
    for state, reference in zip(actual.hidden_states, expected.hidden_states):
        torch.testing.assert_close(state, reference, rtol=0, atol=0)
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------------------------------
# Remote code
# ----------------------------------------------------------------------------------------------------------------------

REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import json
    import sys

    import numpy as np
    import torch


    class HideBeatsHf(importlib.abc.MetaPathFinder):
        # The package may be installed (even editable) in this environment: hide it, like for a user without it.
        def find_spec(self, name, path=None, target=None):
            if name == "beats_hf" or name.startswith("beats_hf."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None


    sys.meta_path.insert(0, HideBeatsHf())
    try:
        import beats_hf  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("beats_hf is importable: the remote-code test would not test remote code")

    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

    base_dir, classifier_dir, waveform_path, out_path = sys.argv[1:5]
    waveform = np.load(waveform_path)
    fe = AutoFeatureExtractor.from_pretrained(classifier_dir, trust_remote_code=True)
    inputs = fe(waveform, sampling_rate=16000, return_tensors="pt")
    base = AutoModel.from_pretrained(base_dir, trust_remote_code=True).eval()
    head = AutoModelForAudioClassification.from_pretrained(classifier_dir, trust_remote_code=True).eval()
    with torch.no_grad():
        hidden = base(**inputs).last_hidden_state
        logits = head(**inputs).logits
    np.savez(out_path, input_values=inputs["input_values"].numpy(), hidden=hidden.numpy(), logits=logits.numpy())
    print(json.dumps({
        "modules": [type(obj).__module__ for obj in (fe, base, head)],
        "classes": [type(obj).__name__ for obj in (fe, base, head)],
        "beats_hf_loaded": any(name.split(".")[0] == "beats_hf" for name in sys.modules),
    }))
    """
)


def run_without_beats_hf(script_text: str, tmp_path: Path, *args: str) -> str:
    """Run `script_text` (which hides beats_hf) in a fresh isolated interpreter in `tmp_path`; returns its stdout."""
    script = tmp_path / "remote_code_script.py"
    script.write_text(script_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), TRANSFORMERS_VERBOSITY="error")
    done = subprocess.run(
        [sys.executable, "-I", str(script), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_trust_remote_code_in_fresh_process(saved, tmp_path):
    for directory in (saved["base"], saved["classifier"]):
        config = json.loads((directory / "config.json").read_text())
        assert config["auto_map"]["AutoModel"] == "modeling_beats.BeatsModel"
        for name in ("configuration_beats.py", "modeling_beats.py"):
            assert (directory / name).is_file(), f"{name} not saved next to the weights"
    preprocessor = json.loads((saved["classifier"] / "preprocessor_config.json").read_text())
    assert preprocessor["auto_map"]["AutoFeatureExtractor"] == "feature_extraction_beats.BeatsFeatureExtractor"
    assert (saved["classifier"] / "feature_extraction_beats.py").is_file()

    waveform = random_waveform(12000, seed=5)
    np.save(tmp_path / "waveform.npy", waveform)
    stdout = run_without_beats_hf(
        REMOTE_CODE_SCRIPT, tmp_path, str(saved["base"]), str(saved["classifier"]), "waveform.npy", "out.npz"
    )
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["classes"] == ["BeatsFeatureExtractor", "BeatsModel", "BeatsForAudioClassification"]
    assert all(module.startswith("transformers_modules.") for module in report["modules"]), report["modules"]
    assert not report["beats_hf_loaded"]

    remote = np.load(tmp_path / "out.npz")
    inputs = BeatsFeatureExtractor.from_pretrained(saved["classifier"])(
        waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt"
    )
    np.testing.assert_array_equal(remote["input_values"], inputs["input_values"].numpy())
    with torch.no_grad():
        hidden = BeatsModel.from_pretrained(saved["base"]).eval()(**inputs).last_hidden_state
        logits = BeatsForAudioClassification.from_pretrained(saved["classifier"]).eval()(**inputs).logits
    np.testing.assert_allclose(remote["hidden"], hidden.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(remote["logits"], logits.numpy(), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# Pipeline
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "activation"),
    [("classifier", torch.softmax), ("multi_label", torch.sigmoid)],
    ids=["single_label_softmax", "multi_label_sigmoid"],
)
def test_audio_classification_pipeline(saved, kind, activation):
    classify = pipeline("audio-classification", model=str(saved[kind]), device="cpu")
    assert type(classify.model) is BeatsForAudioClassification
    assert type(classify.feature_extractor) is BeatsFeatureExtractor
    waveform = random_waveform(16000, seed=7)

    scores = (
        activation(expected_logits(saved[kind], waveform), dim=-1)
        if activation is torch.softmax
        else activation(expected_logits(saved[kind], waveform))
    )
    expected = sorted(zip(LABELS, scores.tolist()), key=lambda item: -item[1])

    top = classify(waveform, top_k=3)
    assert [item["label"] for item in top] == [label for label, _ in expected[:3]]
    np.testing.assert_allclose([item["score"] for item in top], [score for _, score in expected[:3]], atol=1e-6)

    # default top_k (5) is clipped to the 4 labels
    everything = classify(waveform)
    assert [item["label"] for item in everything] == [label for label, _ in expected]
    total = sum(item["score"] for item in everything)
    if kind == "classifier":
        assert total == pytest.approx(1.0, abs=1e-5)


def test_pipeline_resampling_without_torchaudio(saved):
    if is_torchaudio_available():
        pytest.skip("torchaudio is installed: the resampling path is tested by test_pipeline_resamples_44100_hz")
    classify = pipeline("audio-classification", model=str(saved["classifier"]), device="cpu")
    with pytest.raises(ImportError, match="torchaudio"):
        classify({"array": random_waveform(44100, seed=8), "sampling_rate": 44100})


@pytest.mark.skipif(
    not is_torchaudio_available(),
    reason="torchaudio is not installed: the pipeline cannot resample 44.1 kHz input (the clear ImportError it "
    "raises instead is checked by test_pipeline_resampling_without_torchaudio)",
)
def test_pipeline_resamples_44100_hz(saved):
    import torchaudio.functional

    classify = pipeline("audio-classification", model=str(saved["classifier"]), device="cpu")
    waveform = random_waveform(44100, seed=8)
    result = classify({"array": waveform, "sampling_rate": 44100}, top_k=4)
    resampled = torchaudio.functional.resample(torch.from_numpy(waveform), 44100, SAMPLING_RATE).numpy()
    scores = torch.softmax(expected_logits(saved["classifier"], resampled), dim=-1)
    assert {item["label"]: item["score"] for item in result} == pytest.approx(
        dict(zip(LABELS, scores.tolist())), abs=1e-5
    )


# ----------------------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------------------


def make_dataset(num_examples, seed):
    import datasets

    fe = feature_extractor()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3000, 12000, num_examples)  # 0.19 s to 0.75 s: 16 to 73 frames, 1 to 4 time steps
    assert len(set(lengths.tolist())) > 1
    features = fe(
        [random_waveform(int(n), seed=seed * 1000 + i) for i, n in enumerate(lengths)],
        sampling_rate=SAMPLING_RATE,
        padding=False,
        return_attention_mask=False,
    )
    return datasets.Dataset.from_dict(
        {
            "input_values": [np.asarray(x).tolist() for x in features["input_values"]],
            "labels": rng.integers(0, len(LABELS), num_examples).tolist(),
        }
    )


def test_trainer_fine_tunes_evaluates_and_resumes(tmp_path):
    train_dataset, eval_dataset = make_dataset(12, seed=0), make_dataset(5, seed=1)
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        max_steps=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="steps",
        save_steps=2,
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    def make_trainer():
        model = classifier(seed=4)
        model.freeze_feature_encoder()
        return Trainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=feature_extractor(),
        )

    trainer = make_trainer()
    # the default collator pads the variable-length features with the feature extractor
    batch = trainer.data_collator([train_dataset[i] for i in range(4)])
    assert batch["input_values"].shape[0] == 4 and batch["input_values"].shape[2] == 32
    assert batch["attention_mask"].shape == batch["input_values"].shape[:2]
    assert bool((batch["attention_mask"] == 0).any()), "the batch should contain padding"

    result = trainer.train()
    assert trainer.state.global_step == 4
    assert np.isfinite(result.training_loss)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(np.isfinite(losses))
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_loss"])
    assert (tmp_path / "run" / "checkpoint-2").is_dir() and (tmp_path / "run" / "checkpoint-4").is_dir()
    final = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    # Resume from the last checkpoint but one: steps 3 and 4 are trained again and end where the first run ended.
    for path in (tmp_path / "run" / "checkpoint-4").iterdir():
        path.unlink()
    (tmp_path / "run" / "checkpoint-4").rmdir()
    resumed = make_trainer()
    result = resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 4
    assert np.isfinite(result.training_loss)
    for name, tensor in resumed.model.state_dict().items():
        torch.testing.assert_close(tensor, final[name], atol=1e-6, rtol=1e-5, msg=name)

    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "run" / "checkpoint-4")
    assert type(reloaded) is BeatsForAudioClassification
    assert reloaded.config.id2label == dict(enumerate(LABELS))


# ----------------------------------------------------------------------------------------------------------------------
# Tokenizer serialisation
# ----------------------------------------------------------------------------------------------------------------------


def test_tokenizer_save_load_keeps_quantizer_buffers(tmp_path):
    model = make_model(BeatsTokenizerModel, seed=6)
    input_values = torch.randn(4, 64, 32, generator=torch.Generator().manual_seed(0))
    # Give every quantizer buffer a non-trivial value: k-means initialisation and one EMA step.
    with torch.no_grad():
        encoded = model(input_values).encoded
        model.quantizer.initialize_codebook(encoded, num_iterations=3, generator=torch.Generator().manual_seed(1))
        model.quantizer.update_codebook(encoded, model(input_values).token_ids)
    buffers = {name: tensor.clone() for name, tensor in model.named_buffers() if name.startswith("quantizer.")}
    assert set(buffers) == {
        "quantizer.codebook",
        "quantizer.cluster_size",
        "quantizer.kmeans_codebook",
        "quantizer.kmeans_cluster_size",
        "quantizer.initialized",
    }
    assert float(buffers["quantizer.initialized"]) == 1.0
    assert not torch.equal(buffers["quantizer.codebook"], buffers["quantizer.kmeans_codebook"])

    model.save_pretrained(tmp_path)
    reloaded, info = BeatsTokenizerModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    reloaded_buffers = dict(reloaded.named_buffers())
    for name, tensor in buffers.items():
        assert reloaded_buffers[name].dtype == tensor.dtype, name
        assert torch.equal(reloaded_buffers[name], tensor), name
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(input_values).token_ids, model(input_values).token_ids)


TOKENIZER_REMOTE_CODE_SCRIPT = REMOTE_CODE_SCRIPT.split("from transformers import AutoFeatureExtractor")[
    0
] + textwrap.dedent(
    """
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    directory, class_name, input_path, out_path = sys.argv[1:5]
    model_class = get_class_from_dynamic_module(f"modeling_beats.{class_name}", directory)
    tokenizer = model_class.from_pretrained(directory).eval()
    with torch.no_grad():
        token_ids = tokenizer(torch.from_numpy(np.load(input_path))).token_ids
    np.save(out_path, token_ids.numpy())
    print(json.dumps({"module": model_class.__module__}))
    """
)


@pytest.mark.parametrize("class_name", ["BeatsTokenizerModel", "BeatsRandomProjectionTokenizer"])
def test_tokenizer_folders_load_as_remote_code(class_name, tmp_path):
    # The tokenizers have no Auto class, so transformers would not copy the model code; a folder saved with
    # save_pretrained (what tokenizer training and pre-training write) must still load without beats_hf.
    from beats_hf.modeling_beats import BeatsRandomProjectionTokenizer, BeatsTokenizerModel

    model_class = {
        "BeatsTokenizerModel": BeatsTokenizerModel,
        "BeatsRandomProjectionTokenizer": BeatsRandomProjectionTokenizer,
    }[class_name]
    tokenizer = make_model(model_class)
    directory = tmp_path / "tokenizer"
    tokenizer.save_pretrained(directory)
    for name in ("configuration_beats.py", "modeling_beats.py"):
        assert (directory / name).is_file(), name
    input_values, _ = padded_batch((64, 64))
    np.save(tmp_path / "input.npy", input_values.numpy())
    stdout = run_without_beats_hf(
        TOKENIZER_REMOTE_CODE_SCRIPT, tmp_path, str(directory), class_name, "input.npy", "out.npy"
    )
    assert json.loads(stdout.strip().splitlines()[-1])["module"].startswith("transformers_modules.")
    with torch.no_grad():
        expected = tokenizer(input_values).token_ids
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected.numpy())
