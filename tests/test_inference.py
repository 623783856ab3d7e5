# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Unit tests of `beats_hf.inference`: patch-aligned chunking, aggregation over chunks, label scores, model loading."""

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from beats_hf import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsModel,
    BeatsRandomProjectionTokenizer,
    BeatsTokenizerModel,
)
from beats_hf.audio_io import load_audio, write_wav
from beats_hf.feature_extraction_beats import num_fbank_frames
from beats_hf.inference import (
    MIN_SAMPLES,
    ModelKindError,
    chunk_frames_for,
    chunk_waveform,
    label_scores,
    load_model,
    min_samples_for,
    run_file,
)

torch.set_num_threads(1)

# 128 mel bins (the feature extractor's default): 8 mel patches per time step.
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
FREQ = 8
ROW_SECONDS = 16 * 160 / 16000  # one patch row: 16 frames of 10 ms


def _model(cls, seed=0, **overrides):
    torch.manual_seed(seed)
    return cls(BeatsConfig(**TINY, **overrides)).eval()


def _wav(path, num_samples, seed=0):
    """A random waveform written as 16-bit WAV; returns the samples as they read back (int16 rounding)."""
    waveform = np.random.default_rng(seed).uniform(-0.3, 0.3, num_samples).astype(np.float32)
    write_wav(path, waveform, 16000)
    return (np.round(waveform * 32767.0) / 32768.0).astype(np.float32)


@pytest.fixture(scope="module")
def extractor():
    return BeatsFeatureExtractor()


@pytest.fixture(scope="module")
def classifier():
    return _model(BeatsForAudioClassification, num_labels=5)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """3.42 s: 340 frames = 21 patch rows and 4 frames; in 96-frame chunks: 6 + 6 + 6 + 3 rows."""
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    return path, _wav(path, 54_700)


def _features(extractor, waveform):
    return extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_values"]


def _frame_chunks(features, chunk_frames, patch_size=16):
    """The whole file's filter bank cut into `chunk_frames`-frame pieces that hold at least one patch row."""
    pieces = [features[:, s : s + chunk_frames] for s in range(0, features.shape[1], chunk_frames)]
    return [piece for piece in pieces if piece.shape[1] >= patch_size]


# ---------------------------------------------------------------------------------------------------------------------
# chunk_waveform


@pytest.mark.parametrize(
    "seconds, frames", [(10.0, 992), (1.0, 96), (0.32, 32), (0.33, 32), (0.16, 16), (0.05, 16), (0.001, 16)]
)
def test_chunk_frames_are_whole_patch_rows(seconds, frames):
    assert chunk_frames_for(seconds) == frames


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan, math.inf])
def test_invalid_chunk_seconds(seconds):
    with pytest.raises(ValueError, match="chunk_seconds"):
        chunk_waveform(np.zeros(16000, np.float32), seconds)


def test_chunks_are_consecutive_slices_of_whole_frames():
    waveform = np.arange(3 * 5120 + 4000, dtype=np.float32)
    chunks = chunk_waveform(waveform, 0.32)  # 32 frames: a hop of 5120 samples, 5360 samples per chunk
    assert [len(c) for c in chunks] == [5360, 5360, 5360, 4000]
    for index, chunk in enumerate(chunks):
        np.testing.assert_array_equal(chunk, waveform[index * 5120 : index * 5120 + len(chunk)])
    assert [num_fbank_frames(len(c)) for c in chunks] == [32, 32, 32, 23]


@pytest.mark.parametrize("tail, kept", [(MIN_SAMPLES - 1, 3), (MIN_SAMPLES, 4), (0, 3), (1, 3)])
def test_tail_shorter_than_a_patch_row_is_left_out(tail, kept):
    waveform = np.zeros(3 * 5120 + tail, dtype=np.float32)
    chunks = chunk_waveform(waveform, 0.32)
    assert len(chunks) == kept
    assert all(len(c) >= MIN_SAMPLES for c in chunks)


def test_chunks_cover_every_patch_row_of_the_file():
    rng = np.random.default_rng(0)
    for num_samples in [MIN_SAMPLES, *rng.integers(MIN_SAMPLES, 60_000, size=40)]:
        for seconds in (0.16, 0.5, 1.0, 10.0):
            chunks = chunk_waveform(np.zeros(int(num_samples), np.float32), seconds)
            rows = sum(num_fbank_frames(len(c)) // 16 for c in chunks)
            assert rows == num_fbank_frames(int(num_samples)) // 16, (num_samples, seconds)


def test_too_short_waveform_has_no_chunk():
    assert chunk_waveform(np.zeros(MIN_SAMPLES - 1, np.float32), 10.0) == []
    assert chunk_waveform(np.zeros(0, np.float32), 10.0) == []
    assert len(chunk_waveform(np.zeros(MIN_SAMPLES, np.float32), 10.0)) == 1


def test_chunk_filter_banks_are_the_files_frames(extractor, clip):
    _, waveform = clip
    whole = _features(extractor, waveform)
    chunks = chunk_waveform(waveform, 1.0)
    for chunk, expected in zip(chunks, _frame_chunks(whole, 96), strict=True):
        got = _features(extractor, chunk)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------------------------------
# run_file


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_classify_is_the_patch_weighted_mean_over_chunks(extractor, classifier, clip, batch_size):
    path, waveform = clip
    result = run_file(classifier, extractor, path, "classify", chunk_seconds=1.0, batch_size=batch_size)
    # Direct computation: the whole filter bank cut into 96-frame chunks, per-patch logits, mean over all patches.
    with torch.no_grad():
        patch_logits = [
            classifier.classifier(classifier.beats(input_values=piece).last_hidden_state)[0]
            for piece in _frame_chunks(_features(extractor, waveform), 96)
        ]
    assert [p.shape[0] for p in patch_logits] == [48, 48, 48, 24]  # 3 x 6 rows + 3 rows, 8 mel patches each
    expected = torch.cat(patch_logits).mean(dim=0)
    torch.testing.assert_close(result.outputs["logits"], expected, atol=1e-4, rtol=1e-4)
    # A plain mean of the chunks' own logits would weigh the short last chunk like the others.
    unweighted = torch.stack([p.mean(dim=0) for p in patch_logits]).mean(dim=0)
    assert float((result.outputs["logits"] - unweighted).abs().max()) > 1e-3
    assert result.num_chunks == 4
    assert result.duration == pytest.approx(54_700 / 16000)


def test_one_chunk_classify_equals_the_models_own_head(extractor, classifier, clip):
    path, waveform = clip
    result = run_file(classifier, extractor, path, "classify", chunk_seconds=30.0)
    with torch.no_grad():
        expected = classifier(**extractor(waveform, sampling_rate=16000, return_tensors="pt")).logits[0]
    assert result.num_chunks == 1
    torch.testing.assert_close(result.outputs["logits"], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "num_samples, chunk_seconds",
    [(32_000, 10.0), (54_700, 1.0), (3 * 15_360 + MIN_SAMPLES - 1, 0.96), (MIN_SAMPLES, 10.0), (16_000, 0.16)],
)
def test_unencoded_seconds_is_the_tail_no_patch_row_reaches(
    tmp_path, extractor, classifier, num_samples, chunk_seconds
):
    path = tmp_path / "clip.wav"
    _wav(path, num_samples)
    result = run_file(classifier, extractor, path, "classify", chunk_seconds=chunk_seconds)
    rows = num_fbank_frames(num_samples) // 16
    assert result.unencoded_seconds == pytest.approx(num_samples / 16000 - rows * ROW_SECONDS, abs=1e-4)
    assert 0.0 <= result.unencoded_seconds < MIN_SAMPLES / 16000  # never a whole patch row
    if num_samples == 32_000:
        assert result.unencoded_seconds == pytest.approx(0.08)


def test_chunks_follow_the_models_patch_size(tmp_path, extractor):
    # A model with 32-frame patches: chunks of 16-frame rows would leave half a patch row of each chunk unencoded.
    classifier = _model(BeatsForAudioClassification, patch_size=32, num_labels=3)
    assert chunk_frames_for(1.0, patch_size=32) == 96 and chunk_frames_for(0.5, patch_size=32) == 32
    assert min_samples_for(32) == 400 + 31 * 160
    path = tmp_path / "clip.wav"
    _wav(path, 24_000)  # 1.5 s: 148 frames
    result = run_file(classifier, extractor, path, "classify", chunk_seconds=0.5)
    waveform = load_audio(path)
    with torch.no_grad():
        patch_logits = [
            classifier.classifier(classifier.beats(input_values=piece).last_hidden_state)[0]
            for piece in _frame_chunks(_features(extractor, waveform), 32, patch_size=32)
        ]
    assert [p.shape[0] for p in patch_logits] == [4, 4, 4, 4]  # 4 rows of 32 frames; 20 frames left
    torch.testing.assert_close(result.outputs["logits"], torch.cat(patch_logits).mean(dim=0), atol=1e-4, rtol=1e-4)
    assert result.num_chunks == 4
    assert result.unencoded_seconds == pytest.approx(1.5 - 4 * 0.32, abs=1e-4)
    _wav(path, min_samples_for(32) - 1)
    with pytest.raises(ValueError, match=r"shorter than one patch \(0\.335 s\)"):
        run_file(classifier, extractor, path, "classify")


@pytest.mark.parametrize("layers", ["last", "all"])
def test_embed_concatenates_chunk_patches_and_pools_their_mean(extractor, classifier, clip, layers):
    path, waveform = clip
    encoder = classifier.beats
    result = run_file(encoder, extractor, path, "embed", chunk_seconds=1.0, batch_size=3, layers=layers)
    with torch.no_grad():
        outputs = [
            encoder(input_values=piece, output_hidden_states=True)
            for piece in _frame_chunks(_features(extractor, waveform), 96)
        ]
    if layers == "last":
        expected = torch.cat([o.last_hidden_state[0] for o in outputs])
        assert result.outputs["patches"].shape == (168, 32)
        assert result.outputs["pooled"].shape == (32,)
    else:
        expected = torch.cat([torch.stack(o.hidden_states)[:, 0] for o in outputs], dim=1)
        assert result.outputs["patches"].shape == (3, 168, 32)  # embedding output + 2 layers
        assert result.outputs["pooled"].shape == (3, 32)
    torch.testing.assert_close(result.outputs["patches"], expected, atol=1e-4, rtol=1e-4)  # batched vs one by one
    torch.testing.assert_close(result.outputs["pooled"], result.outputs["patches"].mean(dim=-2))


@pytest.mark.parametrize("tokenizer_class", [BeatsTokenizerModel, BeatsRandomProjectionTokenizer])
def test_tokenize_concatenates_chunk_grids(extractor, clip, tokenizer_class):
    path, waveform = clip
    tokenizer = _model(tokenizer_class)
    result = run_file(tokenizer, extractor, path, "tokenize", chunk_seconds=1.0, batch_size=2)
    with torch.no_grad():
        grids = [
            tokenizer(input_values=piece).token_ids[0].view(-1, FREQ)
            for piece in _frame_chunks(_features(extractor, waveform), 96)
        ]
    grid = result.outputs["token_ids"]
    assert grid.shape == (21, FREQ) and grid.dtype == torch.long
    assert torch.equal(grid, torch.cat(grids))
    assert bool(((grid >= 0) & (grid < 16)).all())


def test_run_file_refuses_bad_arguments_and_short_audio(tmp_path, extractor, classifier, clip):
    path, _ = clip
    with pytest.raises(ValueError, match="unknown task"):
        run_file(classifier, extractor, path, "transcribe")
    with pytest.raises(ValueError, match="batch_size"):
        run_file(classifier, extractor, path, "classify", batch_size=0)
    with pytest.raises(ValueError, match="layers"):
        run_file(classifier.beats, extractor, path, "embed", layers="first")
    with pytest.raises(ValueError, match="chunk_seconds"):
        run_file(classifier, extractor, path, "classify", chunk_seconds=0.0)
    short = tmp_path / "short.wav"
    _wav(short, MIN_SAMPLES - 1)
    with pytest.raises(ValueError, match="shorter than one patch"):
        run_file(classifier, extractor, short, "classify")


# ---------------------------------------------------------------------------------------------------------------------
# label_scores


def test_label_scores_softmax_for_single_label_and_sigmoid_for_multi_label():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    for problem_type in (None, "single_label_classification"):
        model = _model(BeatsForAudioClassification, num_labels=4, problem_type=problem_type)
        scores = label_scores(model, logits)
        torch.testing.assert_close(scores, torch.softmax(logits, dim=-1))
        assert float(scores.sum()) == pytest.approx(1.0)
    model = _model(BeatsForAudioClassification, num_labels=4, problem_type="multi_label_classification")
    scores = label_scores(model, logits)
    torch.testing.assert_close(scores, torch.sigmoid(logits))
    assert float(scores.sum()) > 1.0  # independent per label


# ---------------------------------------------------------------------------------------------------------------------
# load_model


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    classifier = _model(BeatsForAudioClassification, num_labels=3)
    classifier.save_pretrained(root / "classifier")
    _model(BeatsModel).save_pretrained(root / "encoder")
    _model(BeatsTokenizerModel).save_pretrained(root / "tokenizer")
    projection = _model(BeatsRandomProjectionTokenizer)  # no parameters: save_pretrained cannot tell its dtype
    projection.config.architectures = ["BeatsRandomProjectionTokenizer"]
    projection.config.save_pretrained(root / "projection")
    save_file({k: v.contiguous() for k, v in projection.state_dict().items()}, root / "projection/model.safetensors")
    for name in ("classifier", "encoder", "tokenizer", "projection"):
        BeatsFeatureExtractor().save_pretrained(root / name)
    return root, classifier


@pytest.mark.parametrize(
    "name, task, expected",
    [
        ("classifier", "classify", BeatsForAudioClassification),
        ("classifier", "embed", BeatsModel),
        ("encoder", "embed", BeatsModel),
        ("tokenizer", "embed", BeatsModel),
        ("tokenizer", "tokenize", BeatsTokenizerModel),
        ("projection", "tokenize", BeatsRandomProjectionTokenizer),
    ],
)
def test_load_model_kinds(folders, name, task, expected):
    root, _ = folders
    model, feature_extractor = load_model(root / name, task)
    assert type(model) is expected and not model.training
    assert isinstance(feature_extractor, BeatsFeatureExtractor)


def test_embed_with_a_classifier_folder_uses_its_encoder(folders):
    root, classifier = folders
    encoder, _ = load_model(root / "classifier", "embed")
    expected = classifier.beats.state_dict()
    assert encoder.state_dict().keys() == expected.keys()
    assert all(torch.equal(tensor, expected[key]) for key, tensor in encoder.state_dict().items())


@pytest.mark.parametrize(
    "name, task",
    [
        ("encoder", "classify"),
        ("tokenizer", "classify"),
        ("classifier", "tokenize"),
        ("encoder", "tokenize"),
        ("projection", "embed"),
        ("projection", "classify"),
    ],
)
def test_load_model_refuses_the_wrong_kind(folders, name, task):
    root, _ = folders
    with pytest.raises(ModelKindError, match=name):
        load_model(root / name, task)


def test_load_model_refuses_missing_broken_and_foreign_folders(tmp_path, folders):
    root, _ = folders
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nothing", "embed")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a saved model folder"):
        load_model(tmp_path / "file", "embed")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(tmp_path, "embed")
    with pytest.raises(ValueError, match="unknown task"):
        load_model(root / "encoder", "transcribe")
    # A classifier config over encoder weights: the head would be random, so it is refused.
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "model.safetensors").write_bytes((root / "encoder/model.safetensors").read_bytes())
    (incomplete / "config.json").write_text((root / "classifier/config.json").read_text())
    with pytest.raises(OSError, match="lack"):
        load_model(incomplete, "classify")
    # Unreadable weights.
    (incomplete / "model.safetensors").write_bytes(b"\x00" * 300)
    with pytest.raises(OSError, match="cannot load the weights"):
        load_model(incomplete, "classify")
    # A feature extractor with other mel bins than the model.
    mismatch = tmp_path / "mismatch"
    _model(BeatsModel).save_pretrained(mismatch)
    BeatsFeatureExtractor(feature_size=80).save_pretrained(mismatch)
    with pytest.raises(ValueError, match="mel bins"):
        load_model(mismatch, "embed")
    # A feature extractor for another sampling rate: the files are resampled to 16 kHz, the model takes nothing else.
    other_rate = tmp_path / "other_rate"
    _model(BeatsModel).save_pretrained(other_rate)
    BeatsFeatureExtractor(sampling_rate=8000).save_pretrained(other_rate)
    with pytest.raises(ValueError, match="sampling_rate=8000, but BEATs models take 16000 Hz"):
        load_model(other_rate, "embed")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name, task", [("classifier", "classify"), ("encoder", "embed"), ("tokenizer", "tokenize")])
def test_a_folder_saved_in_half_precision_runs_in_float32(tmp_path, folders, extractor, clip, dtype, name, task):
    # Hub folders are often stored in half precision; the feature extractor's float32 filter banks then met
    # half-precision convolution weights ("Input type (float) and weight type (BFloat16) should be the same").
    root, _ = folders
    reference, _ = load_model(root / name, task)
    half = tmp_path / name
    reference.to(dtype).save_pretrained(half)
    BeatsFeatureExtractor().save_pretrained(half)
    model, _ = load_model(half, task)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # The same as the float32 model with the half-precision weights.
    reference.float().load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    path, _ = clip
    expected = run_file(reference, extractor, path, task, chunk_seconds=1.0).outputs
    for key, value in run_file(model, extractor, path, task, chunk_seconds=1.0).outputs.items():
        assert value.dtype == expected[key].dtype
        torch.testing.assert_close(value, expected[key])


@pytest.mark.parametrize("layers", ["last", "all"])
def test_embed_without_patches_pools_chunk_by_chunk(extractor, classifier, clip, layers):
    # `beats-hf embed --pooled-only` kept every patch vector of every chunk in memory until the end of the file,
    # although it saves only their mean: hours of audio with --layers all needed tens of GB.
    path, _ = clip
    encoder = classifier.beats
    whole = run_file(encoder, extractor, path, "embed", chunk_seconds=1.0, batch_size=3, layers=layers)
    pooled = run_file(
        encoder, extractor, path, "embed", chunk_seconds=1.0, batch_size=3, layers=layers, keep_patches=False
    )
    assert set(pooled.outputs) == {"pooled"}
    torch.testing.assert_close(pooled.outputs["pooled"], whole.outputs["pooled"], atol=1e-6, rtol=1e-5)
    assert (pooled.num_chunks, pooled.unencoded_seconds) == (whole.num_chunks, whole.unencoded_seconds)
