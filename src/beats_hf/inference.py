# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Inference on audio files of any length: classification, embeddings and discrete tokens.

Long files are cut into consecutive chunks of `chunk_seconds` (rounded down to whole patch rows: 16 frames for the
released models, `config.patch_size` frames in general), each
encoded on its own; the filter-bank frames of a chunk are exactly the file's frames (Kaldi framing never straddles a
chunk boundary), only the Transformer's context is limited to the chunk. Aggregation follows the model:
- classification: the mean of per-patch logits over all patches of all chunks, i.e. the chunks' pooled logits
  weighted by their patch counts, which is what the BEATs head computes on one sequence;
- embeddings: likewise the patch-weighted mean of each layer's patch vectors (or all patch vectors, concatenated);
- tokens: the chunks' token grids concatenated along time.
A final remainder shorter than one patch row (0.175 s for 16 frames) carries no patch; it is reported, not encoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio_io import load_audio
from .feature_extraction_beats import BeatsFeatureExtractor
from .modeling_beats import (
    BeatsForAudioClassification,
    BeatsForMaskedAudioModeling,
    BeatsModel,
    BeatsPreTrainedModel,
    BeatsRandomProjectionTokenizer,
    BeatsTokenizerModel,
)

SAMPLING_RATE = 16000
HOP_SAMPLES = 160
WINDOW_SAMPLES = 400
MIN_SAMPLES = WINDOW_SAMPLES + 15 * HOP_SAMPLES  # 16 frames = one patch row of the released models
# Chunks are encoded in one pass each; beyond this the frame count would not even fit a machine integer.
MAX_CHUNK_SECONDS = 1e6


class ModelKindError(ValueError):
    """A model folder holds a different kind of BEATs model than the task needs."""


# Architectures (config.architectures[0]) that hold a BEATs encoder under `.beats`; `embed` uses that encoder.
_ENCODER_HOLDERS = {
    "BeatsForAudioClassification": BeatsForAudioClassification,
    "BeatsForMaskedAudioModeling": BeatsForMaskedAudioModeling,
    "BeatsTokenizerModel": BeatsTokenizerModel,
}
_TOKENIZERS = {
    "BeatsTokenizerModel": BeatsTokenizerModel,
    "BeatsRandomProjectionTokenizer": BeatsRandomProjectionTokenizer,
}


def _from_pretrained(model_class: type[BeatsPreTrainedModel], model_dir: Path) -> BeatsPreTrainedModel:
    """`from_pretrained` that refuses unreadable or incomplete weights instead of initialising them at random."""
    from safetensors import SafetensorError

    try:
        model, info = model_class.from_pretrained(model_dir, output_loading_info=True)
    except (SafetensorError, RuntimeError) as error:
        reason = " ".join(str(error).split())
        raise OSError(f"{model_dir}: cannot load the weights of its {model_class.__name__} ({reason}).") from error
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise OSError(
            f"{model_dir}: the saved weights lack {len(missing)} tensor(s) of a {model_class.__name__} (e.g. "
            f"{missing[0]}); the folder is incomplete or its config.json does not match its weights."
        )
    # from_pretrained keeps the saved dtype: a folder stored in float16 / bfloat16 (to halve its size) would meet the
    # feature extractor's float32 filter banks and fail in the first convolution. Inference computes in float32.
    return model.float()


def load_model(model_dir: str | Path, task: str) -> tuple[BeatsPreTrainedModel, BeatsFeatureExtractor]:
    """
    Load a saved BEATs folder for `task` (`classify`, `embed` or `tokenize`) with its feature extractor, in eval mode
    and in float32 (whatever dtype the folder stores).

    `embed` accepts any folder with an encoder (encoder, classifier, masked-audio-modelling model, self-distilled
    tokenizer) and returns that encoder as a [`BeatsModel`]. Raises [`ModelKindError`] when the folder holds a model
    that cannot do the task, `FileNotFoundError` when the folder is missing or is not a saved model, and `OSError`
    when its weights are unreadable or incomplete.
    """
    from transformers import AutoConfig

    if task not in ("classify", "embed", "tokenize"):
        raise ValueError(f"unknown task {task!r}; expected classify, embed or tokenize")
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise FileNotFoundError(f"model folder {model_dir} does not exist.")
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir} is a file, not a saved model folder.")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a saved model folder (no config.json).")
    config = AutoConfig.from_pretrained(model_dir)
    if getattr(config, "model_type", None) != "beats_hf":
        raise ModelKindError(f"{model_dir} holds a {config.model_type!r} model, not a BEATs model.")
    architecture = (config.architectures or ["BeatsModel"])[0]
    if task == "classify":
        if architecture != "BeatsForAudioClassification":
            raise ModelKindError(
                f"{model_dir} holds a {architecture}, which has no classification head; use a fine-tuned model "
                "(e.g. one written by `beats-hf finetune` or converted from a *_finetuned_* checkpoint)."
            )
        model = _from_pretrained(BeatsForAudioClassification, model_dir)
    elif task == "tokenize":
        if architecture not in _TOKENIZERS:
            raise ModelKindError(
                f"{model_dir} holds a {architecture}, not an acoustic tokenizer; use a tokenizer folder (e.g. one "
                "written by `beats-hf train-tokenizer` or converted from a Tokenizer_*.pt checkpoint)."
            )
        model = _from_pretrained(_TOKENIZERS[architecture], model_dir)
    else:
        if architecture == "BeatsRandomProjectionTokenizer":
            raise ModelKindError(
                f"{model_dir} holds a random-projection tokenizer, which has no encoder to embed with; use an "
                "encoder, classifier or self-distilled tokenizer folder."
            )
        holder = _ENCODER_HOLDERS.get(architecture)
        model = _from_pretrained(holder, model_dir).beats if holder else _from_pretrained(BeatsModel, model_dir)
    model.eval()
    feature_extractor = (
        BeatsFeatureExtractor.from_pretrained(model_dir)
        if (model_dir / "preprocessor_config.json").is_file()
        else BeatsFeatureExtractor()
    )
    if feature_extractor.sampling_rate != SAMPLING_RATE:
        raise ValueError(
            f"{model_dir}: preprocessor_config.json says sampling_rate={feature_extractor.sampling_rate}, but BEATs "
            f"models take {SAMPLING_RATE} Hz audio (the files are resampled to it); fix preprocessor_config.json."
        )
    if feature_extractor.feature_size != config.num_mel_bins:
        raise ValueError(
            f"{model_dir}: the feature extractor computes {feature_extractor.feature_size} mel bins but the model "
            f"takes {config.num_mel_bins}; fix preprocessor_config.json (feature_size)."
        )
    return model, feature_extractor


def min_samples_for(patch_size: int = 16) -> int:
    """Samples of one patch row of `patch_size` frames: the shortest audio a model with that patch size encodes."""
    if patch_size < 1:
        raise ValueError(f"patch_size must be at least 1, got {patch_size}")
    return WINDOW_SAMPLES + (patch_size - 1) * HOP_SAMPLES


def chunk_frames_for(chunk_seconds: float, patch_size: int = 16) -> int:
    """Filter-bank frames per chunk: `chunk_seconds` rounded to whole patch rows of `patch_size` frames (at least one)."""
    if not math.isfinite(chunk_seconds) or not 0 < chunk_seconds <= MAX_CHUNK_SECONDS:
        raise ValueError(
            f"chunk_seconds must be a positive number of seconds up to {MAX_CHUNK_SECONDS:g}, got {chunk_seconds}"
        )
    min_samples_for(patch_size)  # validates patch_size
    return max(patch_size, int(round(chunk_seconds * SAMPLING_RATE / HOP_SAMPLES)) // patch_size * patch_size)


def chunk_waveform(waveform: np.ndarray, chunk_seconds: float, patch_size: int = 16) -> list[np.ndarray]:
    """
    Cut into consecutive chunks of whole patch rows (of `patch_size` frames, the model's `config.patch_size`: each
    chunk's frames then all reach a patch, and the next chunk starts where its patches end); a final piece shorter
    than one patch row is left out.
    """
    chunk_frames = chunk_frames_for(chunk_seconds, patch_size)
    hop = chunk_frames * HOP_SAMPLES
    chunk_samples = (chunk_frames - 1) * HOP_SAMPLES + WINDOW_SAMPLES
    min_samples = min_samples_for(patch_size)
    starts = range(0, len(waveform), hop)
    return [waveform[s : s + chunk_samples] for s in starts if len(waveform) - s >= min_samples]


@dataclass
class FileResult:
    """What inference produced for one file."""

    path: str
    duration: float
    num_chunks: int
    unencoded_seconds: float  # duration minus patch_size x 10 ms per encoded patch row (the tail patches miss)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


@torch.no_grad()
def run_file(
    model: BeatsPreTrainedModel,
    feature_extractor: BeatsFeatureExtractor,
    path: str | Path,
    task: str,
    chunk_seconds: float = 10.0,
    batch_size: int = 4,
    layers: str = "last",
    keep_patches: bool = True,
) -> FileResult:
    """
    Run `task` on one audio file (any format `load_audio` reads, any sampling rate). `layers` (embed only):
    `last` for the last layer, `all` for every hidden state. Outputs:
    classify: `logits` (num_labels,); embed: `pooled` (hidden,) or (layers, hidden), `patches` (patches, hidden)
    or (layers, patches, hidden); tokenize: `token_ids` (time patches, mel patches). With `keep_patches=False`
    (embed only) `patches` is left out and the pooled mean is summed chunk by chunk, so the outputs' memory does not
    grow with the file's length (an hour of audio has 180,000 patches: 0.55 GB per layer at hidden size 768).
    """
    if task not in ("classify", "embed", "tokenize"):
        raise ValueError(f"unknown task {task!r}; expected classify, embed or tokenize")
    if layers not in ("last", "all"):
        raise ValueError(f"layers must be 'last' or 'all', got {layers!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    patch_size = model.config.patch_size
    chunk_frames_for(chunk_seconds, patch_size)  # validates chunk_seconds before the file is decoded
    waveform = load_audio(path, SAMPLING_RATE)
    duration = len(waveform) / SAMPLING_RATE
    min_samples = min_samples_for(patch_size)
    if len(waveform) < min_samples:
        min_seconds = min_samples / SAMPLING_RATE
        raise ValueError(
            f"{path}: {duration:.3f} s of audio is shorter than one patch ({min_seconds:.3f} s), so there is nothing "
            f"to encode; pad it with silence to {min_seconds:.3f} s or leave it out."
        )
    chunks = chunk_waveform(waveform, chunk_seconds, patch_size)
    freq = model.config.num_freq_patches
    pooled_sum, patch_outputs, token_rows, total_patches = None, [], [], 0
    for first in range(0, len(chunks), batch_size):
        batch = chunks[first : first + batch_size]
        inputs = feature_extractor(batch, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        if task == "classify":
            outputs = model.beats(**inputs)
            patch_logits = model.classifier(outputs.last_hidden_state)
            mask = outputs.patch_attention_mask.unsqueeze(-1).to(patch_logits.dtype)
            chunk_sum = (patch_logits * mask).sum(dim=(0, 1))
            pooled_sum = chunk_sum if pooled_sum is None else pooled_sum + chunk_sum
            total_patches += int(mask.sum())
        elif task == "embed":
            outputs = model(**inputs, output_hidden_states=layers == "all")
            states = torch.stack(outputs.hidden_states, dim=1) if layers == "all" else outputs.last_hidden_state
            mask = outputs.patch_attention_mask
            if keep_patches:
                for i in range(len(batch)):
                    patch_outputs.append(states[i][..., mask[i], :])
            else:
                weights = mask.to(states.dtype).view(len(batch), *([1] * (states.ndim - 3)), -1, 1)
                chunk_sum = (states * weights).sum(dim=(0, -2))
                pooled_sum = chunk_sum if pooled_sum is None else pooled_sum + chunk_sum
            total_patches += int(mask.sum())
        else:
            outputs = model(**inputs)
            total_patches += int(outputs.patch_attention_mask.sum())
            for i in range(len(batch)):
                ids = outputs.token_ids[i]
                token_rows.append(ids[ids >= 0].view(-1, freq))
    leftover = max(0.0, duration - total_patches / freq * patch_size * HOP_SAMPLES / SAMPLING_RATE)
    result = FileResult(str(path), duration, len(chunks), round(leftover, 4))
    if task == "classify":
        result.outputs["logits"] = pooled_sum / total_patches
    elif task == "embed":
        if keep_patches:
            patches = torch.cat(patch_outputs, dim=-2)
            result.outputs["patches"] = patches
            result.outputs["pooled"] = patches.mean(dim=-2)
        else:
            result.outputs["pooled"] = pooled_sum / total_patches
    else:
        result.outputs["token_ids"] = torch.cat(token_rows, dim=0)
    return result


def label_scores(model: BeatsForAudioClassification, logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid for multi-label models, softmax otherwise (what `pipeline("audio-classification")` applies)."""
    if model.config.problem_type == "multi_label_classification":
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)


__all__ = [
    "FileResult",
    "ModelKindError",
    "chunk_frames_for",
    "chunk_waveform",
    "label_scores",
    "load_model",
    "min_samples_for",
    "run_file",
]
