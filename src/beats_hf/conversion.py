# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Conversion between the official BEATs checkpoint format (microsoft/unilm `beats/`) and beats_hf models.

An official checkpoint is a `torch.save`d dict: `cfg` (a plain dict of `BEATsConfig`/`TokenizersConfig` fields),
`model` (the state dict) and, for fine-tuned models, `label_dict` (class index -> label). Conversion is strict in
both directions: every tensor is used exactly once, shapes are checked, and anything missing or left over is an
error that names the tensors.

Layers of this module, from the inside out:

- names and configs: [`official_key_map`] (official tensor name -> beats_hf name, in the official order),
  [`config_from_official`] / [`official_cfg_from_config`] (the two config formats), the AudioSet label table
  ([`load_audioset_labels`], [`readable_labels`]);
- models: [`model_from_official_checkpoint`] and its inverse [`official_checkpoint_from_model`];
- an independent reference: [`reference_forward`] computes the official forward pass functionally from the
  original tensors, with the official names and operation order and none of the beats_hf modules, and
  [`verify_converted_model`] compares a converted model with it on a fixed synthetic sound;
- folders and files: [`convert_checkpoint`] (official `.pt` -> a folder that `from_pretrained` and
  `trust_remote_code` load, with a model card), [`convert_checkpoint_directory`] (a folder of `.pt` files),
  [`convert_hf_to_original`] (a folder -> an official `.pt`), [`push_to_hub`];
- the command lines of `convert/convert_original_beats.py` and `convert/convert_hf_to_original.py`
  ([`main_convert_original`], [`main_convert_to_original`]).
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import hashlib
import json
import logging
import math
import os
import pickle
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import HfApi

try:  # strict dataclasses (BeatsConfig) wrap a failed check in these, which are not ValueError subclasses
    from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
except ImportError:  # older huggingface_hub: the checks raise TypeError / ValueError themselves
    StrictDataclassClassValidationError = StrictDataclassFieldValidationError = None

from . import model_cards
from .configuration_beats import BEATS_AUTO_MAP, BeatsConfig
from .console import quiet_transformers
from .feature_extraction_beats import BeatsFeatureExtractor
from .modeling_beats import BeatsForAudioClassification, BeatsModel, BeatsPreTrainedModel, BeatsTokenizerModel

logger = logging.getLogger(__name__)

CheckpointKind = Literal["pretrained", "finetuned", "tokenizer"]

# Bumped whenever the converter's output for the same input changes (it is written into every card).
CONVERSION_FORMAT_VERSION = 1
# Largest accepted |converted - reference| in the self-verification (hidden states, logits, probabilities).
VERIFICATION_TOLERANCE = 1e-4
# Config attribute that records the official checkpoint a model was converted from (its cfg and label_dict are
# what the reverse conversion needs to reproduce the file; file name, SHA-256 and converter are provenance).
ORIGINAL_CHECKPOINT_ATTRIBUTE = "original_checkpoint"
_PROVENANCE_KEYS = ("file", "sha256", "size_bytes", "converter")
# Files that make a converted folder loadable with trust_remote_code (copied by save_pretrained).
REMOTE_CODE_FILES = ("configuration_beats.py", "modeling_beats.py", "feature_extraction_beats.py")


class CheckpointError(ValueError):
    """An input file is not a usable official BEATs checkpoint; the message says what is wrong."""


class ConversionError(RuntimeError):
    """The conversion itself cannot proceed (output folder conflicts, failed self-verification, ...)."""


class HubUploadError(RuntimeError):
    """Uploading a converted folder to the Hugging Face Hub failed; the message says how."""


# Official cfg field -> (BeatsConfig field, default of the official code when the field is absent).
OFFICIAL_CONFIG_FIELDS: dict[str, tuple[str, Any]] = {
    "input_patch_size": ("patch_size", -1),
    "embed_dim": ("patch_embedding_dim", 512),
    "conv_bias": ("conv_bias", False),
    "encoder_layers": ("num_hidden_layers", 12),
    "encoder_embed_dim": ("hidden_size", 768),
    "encoder_ffn_embed_dim": ("intermediate_size", 3072),
    "encoder_attention_heads": ("num_attention_heads", 12),
    "activation_fn": ("hidden_act", "gelu"),
    "layer_wise_gradient_decay_ratio": ("layer_wise_gradient_decay_ratio", 1.0),
    "layer_norm_first": ("layer_norm_first", False),
    "deep_norm": ("deep_norm", False),
    "dropout": ("hidden_dropout", 0.1),
    "attention_dropout": ("attention_dropout", 0.1),
    "activation_dropout": ("activation_dropout", 0.0),
    "encoder_layerdrop": ("layerdrop", 0.0),
    "dropout_input": ("input_dropout", 0.0),
    "conv_pos": ("num_conv_pos_embeddings", 128),
    "conv_pos_groups": ("num_conv_pos_embedding_groups", 16),
    "relative_position_embedding": ("relative_position_embedding", False),
    "num_buckets": ("num_buckets", 320),
    "max_distance": ("max_bucket_distance", 1280),
    "gru_rel_pos": ("gru_rel_pos", False),
    "predictor_dropout": ("classifier_dropout", 0.1),
    "predictor_class": ("num_labels", 527),
    "quant_n": ("codebook_size", 1024),
    "quant_dim": ("codebook_dim", 256),
}
# Fields that only say which kind of model the cfg describes.
OFFICIAL_KIND_FIELDS = ("finetuned_model",)
MODEL_ONLY_FIELDS = ("layer_wise_gradient_decay_ratio", "predictor_dropout", "predictor_class")
TOKENIZER_ONLY_FIELDS = ("quant_n", "quant_dim")
# Field order of the official config classes (`cfg` dicts are their `__dict__`, in this order).
OFFICIAL_BEATS_CFG_FIELDS: tuple[str, ...] = (
    *(
        name
        for name in OFFICIAL_CONFIG_FIELDS
        if name not in ("predictor_dropout", "predictor_class", "quant_n", "quant_dim")
    ),
    "finetuned_model",
    "predictor_dropout",
    "predictor_class",
)
OFFICIAL_TOKENIZER_CFG_FIELDS: tuple[str, ...] = tuple(
    name for name in OFFICIAL_CONFIG_FIELDS if name not in MODEL_ONLY_FIELDS
)

# Official parameter name -> beats_hf name inside BeatsModel ("{i}" = layer index). Relative to the BEATs encoder.
_ENCODER_KEY_PATTERNS: list[tuple[str, str]] = [
    (r"patch_embedding\.(weight|bias)", r"embeddings.patch_conv.\1"),
    (r"layer_norm\.(weight|bias)", r"embeddings.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"embeddings.projection.\1"),
    (r"encoder\.pos_conv\.0\.weight_g", r"encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (
        r"encoder\.layers\.0\.self_attn\.relative_attention_bias\.weight",
        r"encoder.relative_position_bias.relative_attention_bias.weight",
    ),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)",
        r"encoder.layers.\1.self_attn.\2.\3",
    ),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)",
        r"encoder.layers.\1.self_attn.gru_rel_pos_linear.\2",
    ),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_a", r"encoder.layers.\1.self_attn.gru_rel_pos_const"),
    (r"encoder\.layers\.(\d+)\.(self_attn_layer_norm|final_layer_norm)\.(weight|bias)", r"encoder.layers.\1.\2.\3"),
    (r"encoder\.layers\.(\d+)\.(fc1|fc2)\.(weight|bias)", r"encoder.layers.\1.feed_forward.\2.\3"),
]
_HEAD_KEY_PATTERNS: list[tuple[str, str]] = [
    (r"predictor\.(weight|bias)", r"classifier.\1"),
]
_TOKENIZER_KEY_PATTERNS: list[tuple[str, str]] = [
    (r"quantize_layer\.(0|2)\.(weight|bias)", r"quantize_projection.\1.\2"),
    (r"quantize\.embedding\.weight", r"quantizer.codebook"),
    (r"quantize\.cluster_size", r"quantizer.cluster_size"),
    (r"quantize\.embedding\.embed_avg", r"quantizer.kmeans_codebook"),
    (r"quantize\.embedding\.cluster_size", r"quantizer.kmeans_cluster_size"),
    (r"quantize\.embedding\.initted", r"quantizer.initialized"),
]
# What building a BeatsConfig raises for cfg values it rejects: wrong types and inconsistent combinations.
_STRICT_CONFIG_ERRORS: tuple[type[Exception], ...] = tuple(
    error for error in (StrictDataclassClassValidationError, StrictDataclassFieldValidationError) if error is not None
)
_CONFIG_ERRORS: tuple[type[Exception], ...] = (TypeError, ValueError, *_STRICT_CONFIG_ERRORS)
# beats_hf config field -> official cfg field, to word config errors with the names the checkpoint's cfg uses.
_HF_TO_OFFICIAL_NAME = {hf_name: official_name for official_name, (hf_name, _) in OFFICIAL_CONFIG_FIELDS.items()}
_HF_NAME = re.compile(r"\b(" + "|".join(sorted(_HF_TO_OFFICIAL_NAME, key=len, reverse=True)) + r")\b")
# Copies of the shared relative-position table that the official model keeps in every layer after the first.
_SHARED_BIAS_COPY = re.compile(r"encoder\.layers\.([1-9]\d*)\.self_attn\.relative_attention_bias\.weight")
_SHARED_BIAS = "encoder.layers.0.self_attn.relative_attention_bias.weight"


# ---------------------------------------------------------------------------------------------------------------------
# AudioSet labels

AUDIOSET_LABELS_FILE = Path(__file__).resolve().parent / "assets" / "audioset_labels.csv"


@functools.lru_cache(maxsize=4)
def load_audioset_labels(path: str | Path | None = None) -> dict[str, str]:
    """
    AudioSet machine identifier -> display name (`"/m/09x0r"` -> `"Speech"`), from the table shipped in
    `beats_hf/assets/audioset_labels.csv` (columns `mid`, `display_name`; AudioSet labels, CC BY 4.0, Google).
    Returns an empty mapping, with a warning, when the file is missing: labels then stay as the checkpoint has them.
    """
    path = Path(path) if path is not None else AUDIOSET_LABELS_FILE
    if not path.is_file():
        logger.warning("AudioSet label table %s not found; labels are kept as identifiers.", path)
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["mid"]: row["display_name"] for row in csv.DictReader(handle)}


def readable_labels(labels: Sequence[str], table: Mapping[str, str] | None = None) -> tuple[list[str], int]:
    """
    Replace AudioSet identifiers by display names, keeping the order and every other label as it is. Returns the
    new labels and how many were mapped. Names that would collide get their identifier appended.
    """
    table = load_audioset_labels() if table is None else table
    names = [table.get(label, label) for label in labels]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    names = [f"{name} ({label})" if counts[name] > 1 and name != label else name for name, label in zip(names, labels)]
    return names, sum(label in table for label in labels)


# ---------------------------------------------------------------------------------------------------------------------
# Loading and checking official checkpoints


def load_official_checkpoint(path: str | Path) -> dict[str, Any]:
    """
    Load an official `.pt` checkpoint safely (`weights_only=True`: no code in the pickle is executed) and check
    its structure. Raises [`CheckpointError`] with the reason for anything that is not a BEATs checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory, not a checkpoint file; pass one official .pt file "
            "(convert_checkpoint_directory / --checkpoint-dir converts every .pt file of a folder)."
        )
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file.")
    if _is_safetensors_file(path):
        raise CheckpointError(
            f"{path} is a safetensors file, not an official BEATs checkpoint (a torch.save'd .pt file holding 'cfg' "
            "and 'model'). A saved beats_hf folder, whose weights these may be, already loads with from_pretrained; "
            "to write it as an official file use convert/convert_hf_to_original.py."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error).lower()
        # "Unsupported operand" is a byte that is no pickle instruction: a damaged file or no pickle at all, not
        # one that needs Python objects.
        if "weights only load failed" not in message or "unsupported operand" in message:
            raise CheckpointError(
                f"{path}: cannot be read as a PyTorch checkpoint; it is truncated or corrupt, or not a torch.save "
                f"file ({_line_with(error, 'Unsupported operand')}). Download it again."
            ) from error
        raise CheckpointError(
            f"{path}: refused to load. torch.load(weights_only=True) only accepts tensors and plain containers, and "
            "this file needs arbitrary Python objects, which could execute code when unpickled "
            f"({_line_with(error, 'GLOBAL')}). Official BEATs checkpoints load without that; re-save the file as "
            "{'cfg': dict, 'model': state_dict} from a trusted environment if it is yours."
        ) from error
    # KeyError: what the unpickler raises for a file that is not a pickle at all (an unknown first byte).
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint; it is truncated or corrupt, or not a torch.save file "
            f"({_first_line(error)}). Download it again."
        ) from error
    return validate_official_checkpoint(checkpoint, source=str(path))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _line_with(error: BaseException, marker: str) -> str:
    """
    The first line of `error` containing `marker`, else its first line: the first line of a weights-only failure
    is the same general advice whatever the cause, the cause (the object the file needs, the byte that is no pickle
    instruction) comes further down.
    """
    lines = [line.strip() for line in str(error).splitlines() if marker in line]
    return f"{type(error).__name__}: {lines[0]}" if lines else _first_line(error)


def _is_safetensors_file(path: Path) -> bool:
    """Whether `path` starts like a safetensors file: an 8-byte little-endian header size, then a JSON object."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 0 < int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def validate_official_checkpoint(checkpoint: Any, source: str = "checkpoint") -> dict[str, Any]:
    """Check that `checkpoint` has the official layout (`cfg` dict, `model` state dict of tensors)."""
    if not isinstance(checkpoint, Mapping) or "cfg" not in checkpoint or "model" not in checkpoint:
        found = sorted(map(str, checkpoint.keys())) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(
            f"{source} is not an official BEATs checkpoint: expected a dict with 'cfg' and 'model' entries, "
            f"found {found}."
        )
    if not isinstance(checkpoint["cfg"], Mapping):
        raise CheckpointError(
            f"{source}: 'cfg' must be a dict of config fields, got {type(checkpoint['cfg']).__name__}."
        )
    state_dict = checkpoint["model"]
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{source}: 'model' must be a state dict mapping names to tensors.")
    if "patch_embedding.weight" not in state_dict or not any(str(k).startswith("encoder.layers.") for k in state_dict):
        raise CheckpointError(
            f"{source} is not a BEATs checkpoint: its state dict has no 'patch_embedding.weight' or encoder layers."
        )
    label_dict = checkpoint.get("label_dict")
    if label_dict is not None and not isinstance(label_dict, Mapping):
        raise CheckpointError(f"{source}: 'label_dict' must map class indices to labels.")
    extra = set(checkpoint) - {"cfg", "model", "label_dict"}
    if extra:
        logger.warning("%s: ignoring top-level entries %s (not part of the official format).", source, sorted(extra))
    return dict(checkpoint)


def detect_checkpoint_kind(checkpoint: Mapping[str, Any]) -> CheckpointKind:
    """
    `tokenizer` when the state dict has a quantizer, `finetuned` when it has a classification head (`predictor.*`),
    else `pretrained`. For a model, the cfg's `finetuned_model` (absent means False, as in the official code) must
    agree with the tensors: the official model has the head exactly when the flag is set and loads strictly, so a
    disagreement is a [`CheckpointError`] rather than a guess.
    """
    state_dict = checkpoint["model"]
    if any(k.startswith("quantize") for k in state_dict):
        return "tokenizer"
    head = [name for name in state_dict if name.startswith("predictor.")]
    flag = checkpoint["cfg"].get("finetuned_model", False)
    if head and not flag:
        stated = repr(flag) if "finetuned_model" in checkpoint["cfg"] else "absent (the official default, False)"
        raise CheckpointError(
            f"cfg['finetuned_model'] is {stated} but the state dict has the classification head {head}: the cfg and "
            "the tensors disagree, and the official code would build no head and refuse these tensors. For a "
            "fine-tuned model set cfg['finetuned_model'] = True (and cfg['predictor_class'] to the number of "
            "classes); for a pre-trained encoder delete the predictor.* tensors; then save the file again."
        )
    if flag and not head:
        raise CheckpointError(
            f"cfg['finetuned_model'] is {flag!r} but the state dict has no classification head (predictor.weight, "
            "predictor.bias): the cfg and the tensors disagree. For a pre-trained encoder set "
            "cfg['finetuned_model'] = False and save the file again; for a fine-tuned model the head is missing, "
            "so use the complete file."
        )
    return "finetuned" if head else "pretrained"


def official_cfg_fields(kind: CheckpointKind) -> tuple[str, ...]:
    """The fields of the official config class for `kind` (`TokenizersConfig` or `BEATsConfig`), in order."""
    return OFFICIAL_TOKENIZER_CFG_FIELDS if kind == "tokenizer" else OFFICIAL_BEATS_CFG_FIELDS


def _official_default(name: str) -> Any:
    return False if name == "finetuned_model" else OFFICIAL_CONFIG_FIELDS[name][1]


def config_from_official(
    cfg: Mapping[str, Any], kind: CheckpointKind, label_dict: Mapping[int, str] | None = None
) -> BeatsConfig:
    """
    Build a [`BeatsConfig`] from an official `cfg` dict; absent fields take the official code's defaults.

    Fine-tuned models get `id2label` in the order of the checkpoint's `label_dict`, with AudioSet identifiers
    replaced by display names, and `problem_type="multi_label_classification"`. The official cfg (its known fields)
    and labels are recorded in `config.original_checkpoint` so that [`official_checkpoint_from_model`] can give
    the file back unchanged.
    """
    known = set(official_cfg_fields(kind))
    unknown = sorted(set(cfg) - known)
    if unknown:
        # The official config classes store unknown fields without reading them; they cannot affect the model.
        logger.warning("Official cfg fields %s are not read by the official model either; ignored.", unknown)
    values: dict[str, Any] = {}
    for official_name, (hf_name, default) in OFFICIAL_CONFIG_FIELDS.items():
        if kind == "tokenizer" and official_name in MODEL_ONLY_FIELDS:
            continue
        if kind != "tokenizer" and official_name in TOKENIZER_ONLY_FIELDS:
            continue
        if kind == "pretrained" and official_name in ("predictor_class", "predictor_dropout"):
            continue
        values[hf_name] = cfg.get(official_name, default)
    if not isinstance(values["patch_size"], int) or values["patch_size"] <= 0:
        raise CheckpointError("cfg has no valid 'input_patch_size'; official checkpoints set it to 16.")
    if kind == "tokenizer":
        values["layer_wise_gradient_decay_ratio"] = 1.0
    if kind != "finetuned" and label_dict:
        # Only a classifier has classes to name; said rather than dropped silently (the file back will lack it).
        logger.warning(
            "The checkpoint has a label_dict of %d labels but no classification head (a %s checkpoint); the labels "
            "are not kept.",
            len(label_dict),
            kind,
        )
    original_labels = None
    if kind == "finetuned":
        num_labels = values.pop("num_labels")
        if label_dict is not None:
            try:
                indices = sorted(int(i) for i in label_dict)
            except (TypeError, ValueError) as error:
                raise CheckpointError(f"label_dict keys must be class indices: {error}.") from error
            if indices != list(range(num_labels)):
                raise CheckpointError(
                    f"label_dict has indices {indices[:5]}{'...' if len(indices) > 5 else ''} but the head has "
                    f"{num_labels} classes; they must be exactly 0..{num_labels - 1}."
                )
            by_index = {int(i): label for i, label in label_dict.items()}
            original_labels = [str(by_index[i]) for i in range(num_labels)]
            _check_distinct_labels(original_labels, "label_dict")
            names, _ = readable_labels(original_labels)
            _check_distinct_labels(names, "label_dict, with AudioSet identifiers replaced by display names,")
            id2label = dict(enumerate(names))
        else:
            id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        values["id2label"] = id2label
        values["label2id"] = {label: i for i, label in id2label.items()}
        values["problem_type"] = "multi_label_classification"
    values["architectures"] = [MODEL_CLASSES[kind].__name__]
    values[ORIGINAL_CHECKPOINT_ATTRIBUTE] = {
        "format": "microsoft/unilm beats",
        "kind": kind,
        "cfg": {name: _json_value(cfg[name]) for name in official_cfg_fields(kind) if name in cfg},
        "label_dict": original_labels,
    }
    try:
        return BeatsConfig(**values)
    except _CONFIG_ERRORS as error:
        raise CheckpointError(_invalid_cfg_message(error)) from error


def _invalid_cfg_message(error: Exception) -> str:
    """
    The message for a cfg that [`BeatsConfig`] rejects: the reason, worded with the official cfg names instead of
    the beats_hf ones (`hidden_size` -> `encoder_embed_dim`), the cfg entries it involves, and what to do.
    """
    cause = error.__cause__ if isinstance(error, _STRICT_CONFIG_ERRORS) and error.__cause__ is not None else error
    reason = " ".join(str(cause).split()).removeprefix("Invalid BeatsConfig: ").rstrip(".")
    reason = _HF_NAME.sub(lambda match: _HF_TO_OFFICIAL_NAME[match.group(1)], reason)
    entries = list(dict.fromkeys(word for word in re.findall(r"\w+", reason) if word in OFFICIAL_CONFIG_FIELDS))
    if len(entries) > 1:
        problem = f"the entries {', '.join(entries)} are invalid or inconsistent"
    elif entries:
        problem = f"the entry {entries[0]} is invalid"
    else:
        problem = "it is invalid"
    hint = (
        " (the released checkpoints have layer_norm_first=False and deep_norm=True)"
        if {"layer_norm_first", "deep_norm"} <= set(entries)
        else ""
    )
    return (
        f"cfg describes a model that cannot be built: {problem} ({reason}). Correct checkpoint['cfg'] to the "
        f"values the weights were trained with{hint} and save the file again."
    )


def _check_distinct_labels(labels: Sequence[str], what: str) -> None:
    """
    Raise [`CheckpointError`] naming every label given to more than one class: `label2id` (label -> class index)
    would keep only one of them, so the other classes could not be found by name.
    """
    indices: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        indices.setdefault(label, []).append(index)
    duplicated = {label: where for label, where in indices.items() if len(where) > 1}
    if duplicated:
        listed = "; ".join(
            f"{label!r} for classes {', '.join(map(str, where))}" for label, where in duplicated.items()
        )
        raise CheckpointError(
            f"{what} gives the same label to several classes ({listed}), so label2id could not tell them apart. "
            "Give every class its own label in checkpoint['label_dict'] (for AudioSet, its identifier such as "
            "'/m/09x0r') and save the file again."
        )


def _json_value(value: Any) -> Any:
    """cfg values as plain JSON types (bool before int: bool is an int subclass)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return str(value)


MODEL_CLASSES: dict[CheckpointKind, type[BeatsPreTrainedModel]] = {
    "pretrained": BeatsModel,
    "finetuned": BeatsForAudioClassification,
    "tokenizer": BeatsTokenizerModel,
}


def kind_of_model(model: BeatsPreTrainedModel) -> CheckpointKind:
    """The official checkpoint kind of a beats_hf model instance."""
    for kind, model_class in MODEL_CLASSES.items():
        if type(model).__name__ == model_class.__name__:
            return kind
    raise ConversionError(
        f"{type(model).__name__} has no official checkpoint format; the official release has encoders "
        "(BeatsModel), AudioSet classifiers (BeatsForAudioClassification) and tokenizers (BeatsTokenizerModel). "
        "For a masked-audio-modelling model, export its encoder (`model.beats`) as a BeatsModel."
    )


def _rename(name: str, patterns: list[tuple[str, str]]) -> str | None:
    for pattern, replacement in patterns:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name)
    return None


def official_key_map(config: BeatsConfig, kind: CheckpointKind) -> dict[str, str]:
    """
    Official tensor name -> beats_hf name for a model of `kind` built from `config`, in the order of the official
    state dict (module registration order). The copies of the shared relative-position table in layers >= 1 map
    to the same beats_hf tensor as layer 0's.
    """
    names = []
    if config.patch_embedding_dim != config.hidden_size:
        names += ["post_extract_proj.weight", "post_extract_proj.bias"]
    names.append("patch_embedding.weight")
    if config.conv_bias:
        names.append("patch_embedding.bias")
    names += ["encoder.pos_conv.0.bias", "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"]
    for i in range(config.num_hidden_layers):
        prefix = f"encoder.layers.{i}."
        attention = []
        if config.gru_rel_pos:
            attention.append("grep_a")  # the module's own parameter comes before its submodules
        if config.relative_position_embedding and i == 0:
            attention.append("relative_attention_bias.weight")
        for projection in ("k_proj", "v_proj", "q_proj", "out_proj"):
            attention += [f"{projection}.weight", f"{projection}.bias"]
        if config.gru_rel_pos:
            attention += ["grep_linear.weight", "grep_linear.bias"]
        if config.relative_position_embedding and i > 0:
            attention.append("relative_attention_bias.weight")  # re-attached after deletion: last submodule
        names += [f"{prefix}self_attn.{name}" for name in attention]
        for module in ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"):
            names += [f"{prefix}{module}.weight", f"{prefix}{module}.bias"]
    names += ["encoder.layer_norm.weight", "encoder.layer_norm.bias", "layer_norm.weight", "layer_norm.bias"]
    if kind == "finetuned":
        names += ["predictor.weight", "predictor.bias"]
    if kind == "tokenizer":
        names += [
            "quantize.cluster_size",
            "quantize.embedding.weight",
            "quantize.embedding.cluster_size",
            "quantize.embedding.embed_avg",
            "quantize.embedding.initted",
            "quantize_layer.0.weight",
            "quantize_layer.0.bias",
            "quantize_layer.2.weight",
            "quantize_layer.2.bias",
        ]
    prefix = "" if kind == "pretrained" else "beats."
    key_map = {}
    for name in names:
        source = _SHARED_BIAS if _SHARED_BIAS_COPY.fullmatch(name) else name
        new_name = _rename(source, _ENCODER_KEY_PATTERNS)
        if new_name is not None:
            key_map[name] = prefix + new_name
        else:
            extra = {"finetuned": _HEAD_KEY_PATTERNS, "tokenizer": _TOKENIZER_KEY_PATTERNS}.get(kind, [])
            key_map[name] = _rename(name, extra)
    return key_map


def check_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], model: BeatsPreTrainedModel, kind: CheckpointKind
) -> None:
    """
    Check an official state dict against what its own cfg describes (`model` was built from that cfg): raises
    [`CheckpointError`] naming every missing tensor, every extra tensor and every wrong shape, by official name.
    """
    key_map = official_key_map(model.config, kind)
    expected = model.state_dict()
    missing = [name for name in key_map if name not in state_dict]
    unexpected = [name for name in state_dict if name not in key_map]
    wrong = [
        f"{name} has shape {tuple(state_dict[name].shape)}, the cfg needs {tuple(expected[hf_name].shape)}"
        for name, hf_name in key_map.items()
        if name in state_dict and tuple(state_dict[name].shape) != tuple(expected[hf_name].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    if wrong:
        problems.append(f"wrong shapes: {'; '.join(wrong)}")
    if problems:
        raise CheckpointError(f"The {kind} checkpoint does not match its own cfg: " + "; ".join(problems) + ".")


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], kind: CheckpointKind
) -> dict[str, torch.Tensor]:
    """
    Rename an official state dict to the names of the beats_hf class for `kind`. The per-layer copies of the shared
    relative-position table must equal the first layer's and are folded into one tensor. Raises [`CheckpointError`]
    naming every tensor that has no counterpart.
    """
    prefix = "" if kind == "pretrained" else "beats."
    converted: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    shared_table = state_dict.get(_SHARED_BIAS)
    for name, tensor in state_dict.items():
        copy = _SHARED_BIAS_COPY.fullmatch(name)
        if copy is not None:
            if shared_table is None or not torch.equal(tensor, shared_table):
                raise CheckpointError(
                    f"{name} differs from {_SHARED_BIAS}; the official model shares one table across layers, so "
                    "this state dict was not produced by it."
                )
            continue
        new_name = _rename(name, _ENCODER_KEY_PATTERNS)
        if new_name is not None:
            converted[prefix + new_name] = tensor
            continue
        extra_patterns = {"finetuned": _HEAD_KEY_PATTERNS, "tokenizer": _TOKENIZER_KEY_PATTERNS}.get(kind, [])
        new_name = _rename(name, extra_patterns)
        if new_name is not None:
            converted[new_name] = tensor
        else:
            unused.append(name)
    if unused:
        raise CheckpointError(f"{len(unused)} tensors of the {kind} checkpoint have no counterpart: {unused}.")
    return converted


def load_converted_state_dict(model: BeatsPreTrainedModel, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load strictly, reporting every missing/unexpected tensor and every shape mismatch by name."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{name}: checkpoint {tuple(state_dict[name].shape)} vs model {tuple(expected[name].shape)}"
        for name in sorted(set(expected) & set(state_dict))
        if state_dict[name].shape != expected[name].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    if mismatched:
        problems.append(f"wrong shapes {mismatched}")
    if problems:
        raise CheckpointError("The checkpoint does not match its own cfg: " + "; ".join(problems) + ".")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()}, strict=True)


def model_from_official_checkpoint(checkpoint: Mapping[str, Any]) -> BeatsPreTrainedModel:
    """Build the beats_hf model (class chosen by the checkpoint's kind) holding the checkpoint's weights, in eval mode."""
    checkpoint = validate_official_checkpoint(checkpoint)
    kind = detect_checkpoint_kind(checkpoint)
    config = config_from_official(checkpoint["cfg"], kind, checkpoint.get("label_dict"))
    model = MODEL_CLASSES[kind](config)
    check_official_state_dict(checkpoint["model"], model, kind)
    load_converted_state_dict(model, convert_official_state_dict(checkpoint["model"], kind))
    if kind == "tokenizer" and float(checkpoint["model"]["quantize.embedding.initted"].flatten()[0]) == 0.0:
        logger.warning(
            "The tokenizer's codebook was never initialised (initted=0): the official code would overwrite it by "
            "k-means on the first batch it sees; the converted model uses the stored codebook as it is."
        )
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------------
# Back to the official format


def official_cfg_from_config(config: BeatsConfig, kind: CheckpointKind) -> dict[str, Any]:
    """
    The official `cfg` dict of a model: only fields the official `BEATsConfig` (or `TokenizersConfig`) defines, in
    its order. Values come from `config`; fields the beats_hf config of this kind does not hold (the head settings of
    a pre-trained encoder) and the set of fields present come from the converted checkpoint's own cfg when the model
    was converted, else take the official defaults. A field the converted file did not have is written anyway once
    the model's value differs from the official default (e.g. `predictor_class` after a new head). Raises
    [`ConversionError`] for settings the official code hard-codes (128 mel bins, LayerNorm epsilon 1e-5).
    """
    _check_official_representable(config)
    original = getattr(config, ORIGINAL_CHECKPOINT_ATTRIBUTE, None) or {}
    stored = original.get("cfg") if original.get("kind") == kind else None
    cfg: dict[str, Any] = {}
    for name in official_cfg_fields(kind):
        if name == "finetuned_model":
            value = kind == "finetuned"
        elif name == "predictor_class":
            value = config.num_labels if kind == "finetuned" else (stored or {}).get(name, _official_default(name))
        elif name == "predictor_dropout" and kind == "pretrained":
            value = (stored or {}).get(name, config.classifier_dropout)
        else:
            value = getattr(config, OFFICIAL_CONFIG_FIELDS[name][0])
        if stored is not None and name not in stored:
            # The original file did not have this field: leave it out while the official default still describes
            # the model (always, for the head settings a pre-trained encoder does not hold).
            held = not (kind == "pretrained" and name in ("predictor_class", "predictor_dropout"))
            if not held or value == _official_default(name):
                continue
        if stored is not None and name in stored and stored[name] != value:
            logger.info("cfg field %s changed since conversion: %r -> %r.", name, stored[name], value)
        cfg[name] = value
    return cfg


# Settings the official code fixes rather than reads from its cfg: a model that differs cannot be expressed.
_OFFICIAL_FIXED_SETTINGS = {
    "num_mel_bins": (128, "the official code always computes 128-bin filter banks"),
    "layer_norm_eps": (1e-5, "the official LayerNorms always use eps=1e-05"),
}


def _check_official_representable(config: BeatsConfig) -> None:
    """Raise [`ConversionError`] for settings the official format cannot carry (the official code hard-codes them)."""
    problems = [
        f"{name}={getattr(config, name)!r}, but {reason}"
        for name, (fixed, reason) in _OFFICIAL_FIXED_SETTINGS.items()
        if getattr(config, name) != fixed
    ]
    if problems:
        raise ConversionError(
            f"the model cannot be written in the official format: {'; '.join(problems)}. The official code would "
            "load the file and compute something else; keep the model in the beats_hf format."
        )


def official_state_dict_from_model(model: BeatsPreTrainedModel) -> dict[str, torch.Tensor]:
    """
    The model's weights under their official names and in the official order. Every layer gets its entry for the
    shared relative-position table (one tensor object, as in the official model); every beats_hf tensor is used.
    """
    kind = kind_of_model(model)
    state_dict = model.state_dict()
    key_map = official_key_map(model.config, kind)
    missing = sorted({hf_name for hf_name in key_map.values() if hf_name not in state_dict})
    unused = sorted(set(state_dict) - set(key_map.values()))
    if missing or unused:
        raise ConversionError(
            f"{type(model).__name__} does not match the official layout: "
            + "; ".join(
                part
                for part in (
                    f"no tensors {missing}" if missing else "",
                    f"tensors without an official name {unused}" if unused else "",
                )
                if part
            )
            + "."
        )
    tensors: dict[str, torch.Tensor] = {}
    official: dict[str, torch.Tensor] = {}
    for name, hf_name in key_map.items():
        if hf_name not in tensors:
            tensors[hf_name] = state_dict[hf_name].detach().clone().contiguous()
        official[name] = tensors[hf_name]
    return official


def official_checkpoint_from_model(model: BeatsPreTrainedModel) -> dict[str, Any]:
    """
    The official checkpoint dict of a beats_hf model: `{'cfg', 'model'}` plus `label_dict` for classifiers. For a
    model converted from an official file (and not changed since) this equals that file's content.
    """
    kind = kind_of_model(model)
    config = model.config
    checkpoint: dict[str, Any] = {
        "cfg": official_cfg_from_config(config, kind),
        "model": official_state_dict_from_model(model),
    }
    if kind == "finetuned":
        original = getattr(config, ORIGINAL_CHECKPOINT_ATTRIBUTE, None) or {}
        stored = original.get("label_dict")
        current = [config.id2label[i] for i in range(config.num_labels)]
        if stored is not None and len(stored) == config.num_labels and readable_labels(stored)[0] == current:
            checkpoint["label_dict"] = dict(enumerate(stored))
        elif stored is not None or any(label != f"LABEL_{i}" for i, label in enumerate(current)):
            checkpoint["label_dict"] = dict(enumerate(current))
    return checkpoint


# ---------------------------------------------------------------------------------------------------------------------
# Independent reference forward pass (official names and operation order; no beats_hf modules)

_OFFICIAL_ATTENTION_ALPHA = 32.0


def _reference_activation(name: str):
    if name == "gelu":
        return lambda x: F.gelu(x.float()).type_as(x)
    if name in ("gelu_accurate", "gelu_fast"):
        return lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))
    if name == "relu":
        return F.relu
    if name == "tanh":
        return torch.tanh
    if name == "linear":
        return lambda x: x
    raise CheckpointError(f"activation_fn={name!r} is not supported by beats_hf.")


def _reference_bias(table: torch.Tensor, length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """(heads, length, length): table[bucket(key - query)], bidirectional log buckets."""
    positions = torch.arange(length, dtype=torch.long)
    relative = positions[None, :] - positions[:, None]
    half = num_buckets // 2
    exact = half // 2
    distance = relative.abs()
    far = exact + (torch.log(distance.float() / exact) / math.log(max_distance / exact) * (half - exact)).to(
        torch.long
    )
    far = torch.minimum(far, torch.full_like(far, half - 1))
    buckets = (relative > 0).to(torch.long) * half + torch.where(distance < exact, distance, far)
    return F.embedding(buckets, table).permute(2, 0, 1)


def reference_forward(
    state_dict: Mapping[str, torch.Tensor], cfg: Mapping[str, Any], fbank: torch.Tensor
) -> dict[str, torch.Tensor]:
    """
    The official BEATs / Tokenizers forward pass on an unpadded batch, computed functionally from the ORIGINAL
    tensors (official names, official operation order), in float32. It shares no code with the beats_hf modules,
    so agreement with a converted model is a real cross-check of the conversion.

    Args:
        state_dict: the official state dict (`checkpoint['model']`).
        cfg: the official cfg (`checkpoint['cfg']`); absent fields take the official defaults.
        fbank: `(batch, frames, mel bins)` normalised filter bank (the official `preprocess` output).

    Returns:
        `last_hidden_state` (batch, patches, C); with a head also `logits` (pooled, pre-sigmoid) and
        `probabilities` (what the official `extract_features` returns); for tokenizers `encoded` (l2-normalised
        quantizer input) and `labels` (batch, patches).
    """
    sd = {name: tensor.detach().float() for name, tensor in state_dict.items()}
    c = {name: cfg.get(name, default) for name, (_, default) in OFFICIAL_CONFIG_FIELDS.items()}
    eps = 1e-5

    def layer_norm(x, name):
        return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps)

    def linear(x, name):
        return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    # Front end: patch embedding, LayerNorm over the embedding, optional projection.
    x = F.conv2d(
        fbank.float().unsqueeze(1),
        sd["patch_embedding.weight"],
        sd.get("patch_embedding.bias"),
        stride=c["input_patch_size"],
    )
    x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
    x = layer_norm(x, "layer_norm")
    if "post_extract_proj.weight" in sd:
        x = linear(x, "post_extract_proj")

    # Convolutional positional embedding with weight norm over the kernel axis.
    kernel = c["conv_pos"]
    weight = torch._weight_norm(sd["encoder.pos_conv.0.weight_v"], sd["encoder.pos_conv.0.weight_g"], 2)
    conv = F.conv1d(
        x.transpose(1, 2), weight, sd["encoder.pos_conv.0.bias"], padding=kernel // 2, groups=c["conv_pos_groups"]
    )
    if kernel % 2 == 0:
        conv = conv[:, :, :-1]
    x = x + F.gelu(conv).transpose(1, 2)
    if not c["layer_norm_first"]:
        x = layer_norm(x, "encoder.layer_norm")

    batch, length, channels = x.shape
    heads = c["encoder_attention_heads"]
    head_dim = channels // heads
    scaling = head_dim**-0.5
    num_layers = c["encoder_layers"]
    residual_scale = math.pow(2.0 * num_layers, 0.25) if c["deep_norm"] else 1.0
    activation = _reference_activation(c["activation_fn"])
    position_bias = None
    if c["relative_position_embedding"]:
        position_bias = _reference_bias(sd[_SHARED_BIAS], length, c["num_buckets"], c["max_distance"])

    def split(t):
        return t.view(batch, length, heads, head_dim).transpose(1, 2)

    def attention(h, prefix):
        q = linear(h, f"{prefix}.q_proj") * scaling
        q = q * (1 / _OFFICIAL_ATTENTION_ALPHA)
        k = linear(h, f"{prefix}.k_proj")
        v = linear(h, f"{prefix}.v_proj")
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2)
        scores = (scores - scores.max(dim=-1, keepdim=True)[0]) * _OFFICIAL_ATTENTION_ALPHA
        if position_bias is not None:
            bias = position_bias.unsqueeze(0)
            if c["gru_rel_pos"]:
                unscaled_q = q * _OFFICIAL_ATTENTION_ALPHA / scaling
                gates = linear(unscaled_q, f"{prefix}.grep_linear").view(batch, heads, length, 2, 4).sum(-1)
                gate_a, gate_b = torch.sigmoid(gates).chunk(2, dim=-1)
                bias = (gate_a * (gate_b * sd[f"{prefix}.grep_a"] - 1.0) + 2.0) * bias
            scores = scores + bias
        probabilities = F.softmax(scores, dim=-1)
        out = (probabilities @ v).transpose(1, 2).reshape(batch, length, channels)
        return linear(out, f"{prefix}.out_proj")

    for i in range(num_layers):
        prefix = f"encoder.layers.{i}"
        if c["layer_norm_first"]:
            x = x + attention(layer_norm(x, f"{prefix}.self_attn_layer_norm"), f"{prefix}.self_attn")
            h = layer_norm(x, f"{prefix}.final_layer_norm")
            x = x + linear(activation(linear(h, f"{prefix}.fc1")), f"{prefix}.fc2")
        else:
            x = layer_norm(x * residual_scale + attention(x, f"{prefix}.self_attn"), f"{prefix}.self_attn_layer_norm")
            h = linear(activation(linear(x, f"{prefix}.fc1")), f"{prefix}.fc2")
            x = layer_norm(x * residual_scale + h, f"{prefix}.final_layer_norm")
    if c["layer_norm_first"]:
        x = layer_norm(x, "encoder.layer_norm")

    outputs = {"last_hidden_state": x}
    if "predictor.weight" in sd:
        logits = linear(x, "predictor").mean(dim=1)
        outputs["logits"] = logits
        outputs["probabilities"] = torch.sigmoid(logits)
    if "quantize_layer.0.weight" in sd:
        z = linear(torch.tanh(linear(x, "quantize_layer.0")), "quantize_layer.2")
        z = F.normalize(z, p=2, dim=-1)
        flat = z.reshape(-1, z.shape[-1])
        codebook = sd["quantize.embedding.weight"]
        distances = (
            flat.pow(2).sum(dim=1, keepdim=True)
            + codebook.pow(2).sum(dim=1)
            - 2 * torch.einsum("bd,nd->bn", flat, codebook)
        )
        outputs["encoded"] = z
        outputs["labels"] = distances.argmin(dim=1).view(batch, length)
    return outputs


# ---------------------------------------------------------------------------------------------------------------------
# Self-verification


def verification_sound(seconds: float = 2.0, sample_rate: int = 16000, seed: int = 2023) -> np.ndarray:
    """
    The fixed synthetic test sound of the self-verification: three tones (one amplitude-modulated), a rising chirp
    and white noise, peak 0.8, float32. Deterministic for a given seed.
    """
    t = np.arange(int(seconds * sample_rate), dtype=np.float64) / sample_rate
    sound = 0.30 * np.sin(2 * np.pi * 440.0 * t)
    sound += 0.20 * np.sin(2 * np.pi * 1250.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t))
    sound += 0.15 * np.sin(2 * np.pi * 3100.0 * t)
    sound += 0.10 * np.sin(2 * np.pi * (200.0 * t + 900.0 * t**2))  # 200 Hz -> 3800 Hz over 2 s
    sound += 0.05 * np.random.default_rng(seed).standard_normal(t.shape)
    return (0.8 * sound / np.abs(sound).max()).astype(np.float32)


def verification_features(sound: np.ndarray | None = None) -> torch.Tensor:
    """Filter bank `(1, frames, 128)` of `sound` (default: [`verification_sound`]) from the default feature extractor."""
    sound = verification_sound() if sound is None else sound
    features = BeatsFeatureExtractor()(sound, sampling_rate=16000, return_tensors="pt")
    return features["input_values"].float()


@dataclass
class VerificationResult:
    """Converted model vs [`reference_forward`] on the verification sound."""

    kind: CheckpointKind
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    label_mismatches: int | None = None
    num_labels_compared: int | None = None
    top5: list[tuple[str, float]] | None = None
    tolerance: float = VERIFICATION_TOLERANCE

    @property
    def passed(self) -> bool:
        return all(value <= self.tolerance for value in self.max_abs_diff.values()) and not self.label_mismatches

    def checks(self) -> dict[str, str]:
        """Human-readable check -> result, for the model card and the command line."""
        rows = {f"max abs diff, {name}": f"{value:.2e}" for name, value in self.max_abs_diff.items()}
        if self.label_mismatches is not None:
            rows["token agreement"] = f"{self.num_labels_compared - self.label_mismatches}/{self.num_labels_compared}"
        return rows

    def summary(self) -> str:
        return ", ".join(f"{name}: {value}" for name, value in self.checks().items())


@torch.no_grad()
def verify_converted_model(
    model: BeatsPreTrainedModel,
    checkpoint: Mapping[str, Any],
    features: torch.Tensor | None = None,
    tolerance: float = VERIFICATION_TOLERANCE,
) -> VerificationResult:
    """
    Compare `model` (eager and sdpa attention) with [`reference_forward`] on the original tensors of `checkpoint`,
    in float32 (a half-precision model is compared through a float32 copy). Raises [`ConversionError`] when a
    difference exceeds `tolerance` or a token differs.
    """
    kind = kind_of_model(model)
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in model.state_dict().values()):
        # The reference runs in float32, as the official code does (its load casts any tensor to its float32
        # model): compare it with the same weights in float32, not with half-precision arithmetic.
        model = copy.deepcopy(model).float()
    features = verification_features() if features is None else features
    reference = reference_forward(checkpoint["model"], checkpoint["cfg"], features)
    result = VerificationResult(kind=kind, tolerance=tolerance)
    was_training = model.training
    model.eval()
    initial = model.config._attn_implementation
    try:
        for implementation in ("eager", "sdpa"):
            model.set_attn_implementation(implementation)
            encoder = model if kind == "pretrained" else model.beats
            hidden = encoder(features).last_hidden_state
            result.max_abs_diff[f"hidden states ({implementation})"] = _max_diff(
                hidden, reference["last_hidden_state"]
            )
            if kind == "finetuned":
                logits = model(features).logits
                result.max_abs_diff[f"logits ({implementation})"] = _max_diff(logits, reference["logits"])
                probabilities = torch.sigmoid(logits)
                result.max_abs_diff[f"probabilities ({implementation})"] = _max_diff(
                    probabilities, reference["probabilities"]
                )
                if implementation == "sdpa":
                    scores, indices = probabilities[0].topk(min(5, probabilities.shape[-1]))
                    result.top5 = [(model.config.id2label[int(i)], float(s)) for s, i in zip(scores, indices)]
            if kind == "tokenizer":
                outputs = model(features)
                result.max_abs_diff[f"quantizer input ({implementation})"] = _max_diff(
                    outputs.encoded, reference["encoded"]
                )
                mismatches = int((outputs.token_ids != reference["labels"]).sum())
                result.label_mismatches = max(result.label_mismatches or 0, mismatches)
                result.num_labels_compared = reference["labels"].numel()
    finally:
        model.set_attn_implementation(initial)
        model.train(was_training)
    if not result.passed:
        raise ConversionError(
            f"self-verification failed (tolerance {tolerance:g}, tokens must agree): {result.summary()}. Nothing "
            "was written."
        )
    return result


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.float() - b.float()).abs().max())


# ---------------------------------------------------------------------------------------------------------------------
# Official file -> converted folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converter_version() -> str:
    """`beats_hf <version> (conversion format N)`, written into cards and configs."""
    package = sys.modules.get(__package__)
    version = getattr(package, "__version__", "unknown")
    return f"beats_hf {version} (conversion format {CONVERSION_FORMAT_VERSION})"


@dataclass
class ConversionReport:
    """What [`convert_checkpoint`] did."""

    source: Path
    output_dir: Path
    name: str
    kind: CheckpointKind
    sha256: str
    size_bytes: int
    num_tensors: int
    num_parameters: int
    verification: VerificationResult | None
    status: str  # "written", "replaced (same model)" or "overwritten"
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"{self.source.name}: {self.kind} checkpoint, {self.num_tensors} tensors, {self.num_parameters:,} parameters",
            f"  -> {self.output_dir} ({self.status})",
        ]
        if self.verification is not None:
            lines += [f"  {name}: {value}" for name, value in self.verification.checks().items()]
            if self.verification.top5:
                top5 = ", ".join(f"{label} ({score:.3f})" for label, score in self.verification.top5)
                lines.append(f"  top-5 labels on the test sound: {top5}")
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return lines


def _volatile_config(config: dict) -> dict:
    config = dict(config)
    config.pop("transformers_version", None)
    original = dict(config.get(ORIGINAL_CHECKPOINT_ATTRIBUTE) or {})
    for key in _PROVENANCE_KEYS:
        original.pop(key, None)
    config[ORIGINAL_CHECKPOINT_ATTRIBUTE] = original
    return config


def same_model_folders(existing: str | Path, new: str | Path) -> bool:
    """Whether two converted folders hold the same model (same config apart from provenance, same tensors)."""
    existing, new = Path(existing), Path(new)
    from safetensors.torch import load_file

    try:
        old_config = json.loads((existing / "config.json").read_text(encoding="utf-8"))
        new_config = json.loads((new / "config.json").read_text(encoding="utf-8"))
        if _volatile_config(old_config) != _volatile_config(new_config):
            return False
        old_weights = load_file(existing / "model.safetensors")
        new_weights = load_file(new / "model.safetensors")
    except (OSError, ValueError, RuntimeError):
        return False
    return old_weights.keys() == new_weights.keys() and all(
        old_weights[name].dtype == new_weights[name].dtype and torch.equal(old_weights[name], new_weights[name])
        for name in new_weights
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _apply_default_permissions(path: Path) -> None:
    """Temporary files and folders are private (0600/0700); give the result the usual umask-based modes."""
    mask = _umask()
    if path.is_dir():
        os.chmod(path, 0o777 & ~mask)
        for child in path.iterdir():
            if child.is_file():
                os.chmod(child, 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


def _check_target(target: Path, overwrite: bool) -> None:
    """Fail early when the target cannot be used (before any expensive work)."""
    if target.exists() and not target.is_dir():
        raise ConversionError(f"{target} exists and is not a directory.")
    if overwrite or not target.is_dir() or not any(target.iterdir()):
        return
    if not (target / "config.json").is_file():
        raise ConversionError(
            f"{target} is not empty and does not hold a converted model; choose a new or empty directory, or pass "
            "--overwrite (overwrite=True) to replace its content."
        )


def _move_into_place(staging: Path, target: Path) -> None:
    """Replace `target` by `staging` (same parent folder, so each step is a rename)."""
    if not target.exists():
        os.rename(staging, target)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
    backup.rmdir()
    os.rename(target, backup)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def save_converted_folder(model: BeatsPreTrainedModel, directory: str | Path, card: str | None = None) -> list[str]:
    """
    Write a converted model into `directory`: weights (`model.safetensors`), `config.json` with the complete
    `auto_map`, `preprocessor_config.json` (default [`BeatsFeatureExtractor`]), the model code for
    `trust_remote_code` and, if given, `README.md`. Returns the file names.
    """
    directory = Path(directory)
    model.config.auto_map = {**BEATS_AUTO_MAP, **(model.config.auto_map or {})}
    model.save_pretrained(directory)
    BeatsFeatureExtractor().save_pretrained(directory)
    if card is not None:
        (directory / "README.md").write_text(card, encoding="utf-8")
    missing = [
        name
        for name in ("config.json", "model.safetensors", "preprocessor_config.json", *REMOTE_CODE_FILES)
        if not (directory / name).is_file()
    ]
    if missing:
        raise ConversionError(f"saving the converted model did not produce {missing}.")
    auto_map = json.loads((directory / "config.json").read_text(encoding="utf-8")).get("auto_map", {})
    if any(auto_map.get(key) != value for key, value in BEATS_AUTO_MAP.items()):
        raise ConversionError(f"config.json has an incomplete auto_map: {auto_map}.")
    return sorted(path.name for path in directory.iterdir())


def convert_checkpoint(
    path: str | Path,
    output_dir: str | Path,
    overwrite: bool = False,
    name: str | None = None,
    namespace: str = model_cards.NAMESPACE_PLACEHOLDER,
    verify: bool = True,
) -> ConversionReport:
    """
    Convert one official checkpoint (pre-trained, fine-tuned or tokenizer; detected from its content) into
    `output_dir`, a folder that `AutoModel` / `AutoModelForAudioClassification` / `BeatsTokenizerModel` and
    `AutoFeatureExtractor` load, locally or with `trust_remote_code=True`, with a model card.

    The conversion is strict (every tensor used, shapes checked), self-verified against [`reference_forward`]
    before anything is written, and atomic: the folder is written beside the target under a temporary name and
    renamed at the end, so a failure leaves nothing behind. An existing `output_dir` that holds a different model
    (or anything else) is refused unless `overwrite`; the same model converted again simply replaces it, unless the
    folder also holds files the converter does not write. A folder containing the checkpoint itself is always
    refused (replacing it would delete the checkpoint).

    Args:
        path: the official `.pt` file.
        output_dir: the folder to create.
        overwrite: replace whatever `output_dir` holds.
        name: Hub repository name used in the card (default: the naming scheme of
            [`model_cards.repo_name_for_checkpoint`]).
        namespace: Hub owner used in the card.
        verify: run the self-verification (on by default; turning it off is for debugging only).
    """
    path = Path(path)
    target = Path(output_dir).absolute()
    if path.resolve().is_relative_to(target.resolve()):
        # The folder is replaced as a whole, which would delete the checkpoint (e.g. `--output-dir .` beside it).
        raise ConversionError(
            f"{target} contains the checkpoint being converted ({path.name}); choose an output directory outside "
            "the checkpoint's folder, e.g. a new subfolder."
        )
    _check_target(target, overwrite)
    checkpoint = load_official_checkpoint(path)
    kind = detect_checkpoint_kind(checkpoint)
    warnings = []
    default_name, known_scheme = model_cards.repo_name_for_checkpoint(path.name)
    info = model_cards.checkpoint_info(path.name)
    if not known_scheme or info is None:
        warnings.append(
            f"{path.name} is not a file name of the official release; the card has no published results"
            + ("" if known_scheme else f" and the default output name is a slug, {default_name}")
        )
    elif info.kind != kind:
        warnings.append(f"{path.name} is named like a {info.kind} checkpoint but holds a {kind} checkpoint")
    model = model_from_official_checkpoint(checkpoint)
    sha256 = _sha256(path)
    size = path.stat().st_size
    getattr(model.config, ORIGINAL_CHECKPOINT_ATTRIBUTE).update(
        {"file": path.name, "sha256": sha256, "size_bytes": size, "converter": converter_version()}
    )
    verification = verify_converted_model(model, checkpoint) if verify else None
    num_parameters = sum(p.numel() for p in model.parameters())

    provenance = model_cards.CardProvenance(
        source_file=path.name,
        sha256=sha256,
        size_bytes=size,
        converter=converter_version(),
        checks=verification.checks() if verification is not None else {},
        num_parameters=num_parameters,
    )
    if kind == "finetuned":
        labels = checkpoint.get("label_dict")
        provenance.num_labels = model.config.num_labels
        provenance.labels_mapped = readable_labels([str(v) for v in labels.values()])[1] if labels else 0
        provenance.first_labels = [model.config.id2label[i] for i in range(min(5, model.config.num_labels))]
    card = model_cards.render_model_card(
        kind, source_file=path.name, repo_name=name or default_name, namespace=namespace, provenance=provenance
    )

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.converting-", dir=target.parent))
    try:
        files = save_converted_folder(model, staging, card)
        reloaded = MODEL_CLASSES[kind].from_pretrained(staging).state_dict()
        expected = model.state_dict()
        if reloaded.keys() != expected.keys() or not all(torch.equal(t, reloaded[k]) for k, t in expected.items()):
            raise ConversionError("the saved folder does not reload to the same weights; nothing was written.")
        status = "written"
        if target.is_dir() and any(target.iterdir()):
            if same_model_folders(target, staging):
                # The folder is replaced as a whole: files the converter does not write would be lost with it.
                extra = sorted(set(os.listdir(target)) - set(files))
                if extra and not overwrite:
                    raise ConversionError(
                        f"{target} holds the same model but also holds files the converter does not write {extra}; "
                        "move them elsewhere, or pass --overwrite (overwrite=True) to replace the folder and delete "
                        "them."
                    )
                status = "replaced (same model)"
            elif overwrite:
                status = "overwritten"
            else:
                raise ConversionError(
                    f"{target} already holds a different model; pass --overwrite (overwrite=True) to replace it, or "
                    "choose another output directory."
                )
        _apply_default_permissions(staging)
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ConversionReport(
        source=path,
        output_dir=target,
        name=name or default_name,
        kind=kind,
        sha256=sha256,
        size_bytes=size,
        num_tensors=len(checkpoint["model"]),
        num_parameters=num_parameters,
        verification=verification,
        status=status,
        files=files,
        warnings=warnings,
    )


@dataclass
class BatchConversionReport:
    """What [`convert_checkpoint_directory`] did: one report per converted file and the failures."""

    reports: list[ConversionReport] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def convert_checkpoint_directory(
    checkpoint_dir: str | Path,
    output_dir: str | Path,
    overwrite: bool = False,
    namespace: str = model_cards.NAMESPACE_PLACEHOLDER,
    progress: bool = True,
) -> BatchConversionReport:
    """
    Convert every `*.pt` file of `checkpoint_dir` into `output_dir/<name>`, with `<name>` from the naming scheme
    of [`model_cards.repo_name_for_checkpoint`] (unknown file names become a slug, with a warning). A file that
    fails is reported and the others are still converted.
    """
    from tqdm.auto import tqdm

    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise ConversionError(f"{checkpoint_dir} is not a directory.")
    paths = sorted(checkpoint_dir.glob("*.pt"))
    if not paths:
        raise ConversionError(f"{checkpoint_dir} has no .pt files.")
    names: dict[str, Path] = {}
    for path in paths:
        name, known = model_cards.repo_name_for_checkpoint(path.name)
        if name in names:
            raise ConversionError(f"{names[name].name} and {path.name} would both be converted into {name}.")
        names[name] = path
        if not known:
            logger.warning("%s is not an official file name; its output folder is %s.", path.name, name)
    batch = BatchConversionReport()
    for name, path in tqdm(names.items(), desc="converting", unit="checkpoint", disable=not progress):
        try:
            batch.reports.append(
                convert_checkpoint(path, Path(output_dir) / name, overwrite=overwrite, name=name, namespace=namespace)
            )
        except (CheckpointError, ConversionError, OSError) as error:
            batch.failures[path.name] = _one_line(error)
    return batch


# ---------------------------------------------------------------------------------------------------------------------
# Converted folder -> official file


@dataclass
class ReverseConversionReport:
    """What [`convert_hf_to_original`] did."""

    model_dir: Path
    output: Path
    kind: CheckpointKind
    num_tensors: int
    verification: VerificationResult

    def lines(self) -> list[str]:
        lines = [f"{self.model_dir}: {self.kind} model -> {self.output} ({self.num_tensors} tensors)"]
        lines += [f"  {name}: {value}" for name, value in self.verification.checks().items()]
        return lines


def load_converted_model(model_dir: str | Path) -> BeatsPreTrainedModel:
    """Load a beats_hf folder with the class its config names (encoder, classifier or tokenizer)."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"{model_dir} has no config.json; it is not a saved beats_hf model.")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") != BeatsConfig.model_type:
        raise ConversionError(f"{model_dir} holds a {config.get('model_type')!r} model, not a BEATs model.")
    architectures = config.get("architectures") or [BeatsModel.__name__]
    classes = {model_class.__name__: model_class for model_class in MODEL_CLASSES.values()}
    if architectures[0] not in classes:
        raise ConversionError(
            f"{model_dir} holds a {architectures[0]}, which has no official checkpoint format (only "
            f"{', '.join(classes)} do). For a masked-audio-modelling run convert its encoder folder instead "
            "(training/pretrain.py saves it as `encoder` next to `final`)."
        )
    return classes[architectures[0]].from_pretrained(model_dir).eval()


def _check_preprocessing(model_dir: Path) -> None:
    """
    Refuse filter banks the official code cannot compute (it hard-codes 128 bins at 16 kHz), and name the folder's
    filter-bank statistics when they are not the official defaults: the file cannot hold them, the caller can pass
    them.
    """
    if not (model_dir / "preprocessor_config.json").is_file():
        return
    saved, default = BeatsFeatureExtractor.from_pretrained(model_dir), BeatsFeatureExtractor()
    fixed = {"sampling_rate": "Hz", "feature_size": "mel bins"}
    problems = [
        f"{name}={getattr(saved, name)} (the official preprocessing always uses {getattr(default, name)} {unit})"
        for name, unit in fixed.items()
        if getattr(saved, name) != getattr(default, name)
    ]
    if problems:
        raise ConversionError(
            f"{model_dir}'s feature extractor cannot be written in the official format: {'; '.join(problems)}. The "
            "official code would feed the model filter banks unlike those it was trained on, with no error; keep "
            "this model in the Hugging Face format."
        )
    if (saved.fbank_mean, saved.fbank_std) != (default.fbank_mean, default.fbank_std):
        logger.warning(
            "%s normalises filter banks with mean %s and std %s, which an official checkpoint cannot store; the "
            "official code assumes %s and %s unless given them: call extract_features(..., fbank_mean=%s, "
            "fbank_std=%s) (extract_labels for a tokenizer).",
            model_dir,
            saved.fbank_mean,
            saved.fbank_std,
            default.fbank_mean,
            default.fbank_std,
            saved.fbank_mean,
            saved.fbank_std,
        )


def convert_hf_to_original(
    model_dir: str | Path, output: str | Path, overwrite: bool = False, verify: bool = True
) -> ReverseConversionReport:
    """
    Write a beats_hf folder (`BeatsModel`, `BeatsForAudioClassification` or `BeatsTokenizerModel`) as an official
    checkpoint `{'cfg', 'model'[, 'label_dict']}` that the official code loads strictly: official names and order,
    `weight_g`/`weight_v`, the per-layer copies of the shared relative-position table, official cfg fields only.
    The tensors keep the folder's dtype (the official code casts them into its float32 model when loading). The
    written file is read back and checked with [`reference_forward`] against the model (in float32); the file
    appears only when that passes. Filter-bank statistics other than the official defaults
    (`preprocessor_config.json`) have no place in the official format: a warning gives the `fbank_mean` /
    `fbank_std` to pass to the official code. A sampling rate or number of mel bins other than the official
    16 kHz and 128 is refused: the official preprocessing cannot be told them.
    """
    output = Path(output)
    if output.is_dir():
        raise ConversionError(f"{output} is a directory; --output (output) names the .pt file to write.")
    if output.exists() and output.resolve().parent == Path(model_dir).resolve():
        # Even with overwrite: it could be the weights or config being converted (model.safetensors, config.json).
        raise ConversionError(
            f"{output} is a file of the folder being converted (its weights or config, perhaps); write the official "
            "checkpoint to a new file."
        )
    if output.exists() and not overwrite:
        raise ConversionError(f"{output} already exists; pass --overwrite (overwrite=True) to replace it.")
    model = load_converted_model(model_dir)
    checkpoint = official_checkpoint_from_model(model)
    _check_preprocessing(Path(model_dir))
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, staging_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(handle)
    staging = Path(staging_name)
    try:
        torch.save(checkpoint, staging)
        written = load_official_checkpoint(staging)
        verification = verify_converted_model(model, written) if verify else VerificationResult(kind_of_model(model))
        _apply_default_permissions(staging)
        os.replace(staging, output)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return ReverseConversionReport(
        model_dir=Path(model_dir),
        output=output,
        kind=kind_of_model(model),
        num_tensors=len(checkpoint["model"]),
        verification=verification,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Hub upload


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """
    Upload a converted folder to the Hub (`create_repo(exist_ok=True)` then `upload_folder`). A card still holding
    the namespace placeholder gets the repository's owner first. Returns the repository URL; raises
    [`HubUploadError`] with the reason on any failure.
    """
    folder = Path(folder)
    if "/" not in repo_id:
        raise HubUploadError(f"--push-to-hub needs OWNER/NAME, got {repo_id!r}.")
    card_path = folder / "README.md"
    if card_path.is_file():
        card = card_path.read_text(encoding="utf-8")
        updated = model_cards.replace_namespace(card, repo_id.split("/")[0])
        if updated != card:
            card_path.write_text(updated, encoding="utf-8")
    try:
        api = HfApi(token=token)
        url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            commit_message=commit_message or f"Upload {folder.name} converted from the official BEATs checkpoint",
        )
    except Exception as error:  # every Hub/network failure becomes one clear message
        raise HubUploadError(
            f"could not upload {folder} to {repo_id}: {_first_line(error)}. Check the network connection and the "
            "token (huggingface-cli login or HF_TOKEN)."
        ) from error
    return str(url)


# ---------------------------------------------------------------------------------------------------------------------
# Command lines (the scripts in convert/ are thin wrappers)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def build_convert_original_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convert_original_beats.py",
        description=(
            "Convert official BEATs checkpoints (microsoft/unilm; pre-trained, fine-tuned or tokenizer, detected "
            "automatically) into Hugging Face folders with model cards."
        ),
        epilog=(
            "exit codes: 0 done; 1 batch mode, some checkpoints failed (the others were converted); 2 the request "
            "cannot be done (the one-line message says why); 3 unexpected error (rerun with --debug)."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="one official .pt file")
    source.add_argument(
        "--checkpoint-dir",
        type=Path,
        help="a folder of official .pt files; each goes to OUTPUT_DIR/<name> (BEATs_iter3_plus_AS2M.pt -> "
        "beats-iter3-plus-as2m, ..._finetuned_on_AS2M_cpt2.pt -> ...-ft-as2m-cpt2, Tokenizer_X.pt -> "
        "beats-tokenizer-x; other names -> a slug)",
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="output folder (batch mode: parent folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace an output folder holding another model")
    parser.add_argument("--name", help="Hub repository name for the card (single file; default: naming scheme)")
    parser.add_argument(
        "--namespace",
        help=f"Hub owner written into the cards (default: the owner of --push-to-hub, else {model_cards.NAMESPACE_PLACEHOLDER})",
    )
    parser.add_argument(
        "--push-to-hub",
        metavar="REPO",
        help="upload after converting: OWNER/NAME for one file; in batch mode OWNER, each folder going to OWNER/<name>",
    )
    parser.add_argument("--private", action="store_true", help="create Hub repositories as private")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar in batch mode")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


# Exit codes of the converter CLIs: 2 is also what argparse (and `beats-hf`) use for a request that cannot be done.
EXIT_SOME_FAILED = 1  # batch mode: the other checkpoints were converted
EXIT_USER_ERROR = 2  # bad checkpoint, existing output, wrong arguments: the message says what to do
EXIT_INTERNAL_ERROR = 3  # a bug: rerun with --debug for the traceback


def _run_cli(function, debug: bool) -> int:
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        with quiet_transformers():
            return function()
    except (CheckpointError, ConversionError, HubUploadError, OSError) as error:
        if debug:
            raise
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as error:  # a one-line message; the traceback is one flag away
        if debug:
            raise
        print(f"error: unexpected {type(error).__name__}: {_one_line(error)} (rerun with --debug)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def main_convert_original(argv: Sequence[str] | None = None) -> int:
    """`python convert/convert_original_beats.py ...`; returns the exit code."""
    args = build_convert_original_parser().parse_args(argv)
    namespace = args.namespace or (args.push_to_hub.split("/")[0] if args.push_to_hub else None)
    namespace = namespace or model_cards.NAMESPACE_PLACEHOLDER

    def run() -> int:
        if args.checkpoint is not None:
            if args.push_to_hub and "/" not in args.push_to_hub:
                raise HubUploadError(f"--push-to-hub needs OWNER/NAME for one checkpoint, got {args.push_to_hub!r}.")
            name = args.name or (args.push_to_hub.split("/", 1)[1] if args.push_to_hub else None)
            report = convert_checkpoint(
                args.checkpoint, args.output_dir, overwrite=args.overwrite, name=name, namespace=namespace
            )
            print("\n".join(report.lines()))
            if args.push_to_hub:
                print(f"  uploaded: {push_to_hub(report.output_dir, args.push_to_hub, private=args.private or None)}")
            return 0
        if args.name:
            raise ConversionError("--name applies to one --checkpoint; batch mode names folders by the scheme.")
        if args.push_to_hub and "/" in args.push_to_hub:
            raise HubUploadError("in batch mode --push-to-hub takes an OWNER; each folder goes to OWNER/<name>.")
        batch = convert_checkpoint_directory(
            args.checkpoint_dir,
            args.output_dir,
            overwrite=args.overwrite,
            namespace=namespace,
            progress=not args.no_progress,
        )
        for report in batch.reports:
            print("\n".join(report.lines()))
            if args.push_to_hub:
                url = push_to_hub(report.output_dir, f"{args.push_to_hub}/{report.name}", private=args.private or None)
                print(f"  uploaded: {url}")
        for file_name, message in batch.failures.items():
            print(f"error: {file_name}: {message}", file=sys.stderr)
        print(f"{len(batch.reports)} converted, {len(batch.failures)} failed")
        return EXIT_SOME_FAILED if batch.failures else 0

    return _run_cli(run, args.debug)


def build_convert_to_original_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convert_hf_to_original.py",
        description=(
            "Write a beats_hf folder (BeatsModel, BeatsForAudioClassification or BeatsTokenizerModel) as an "
            "official BEATs checkpoint that microsoft/unilm's code loads strictly."
        ),
    )
    parser.add_argument(
        "--model-dir", type=Path, required=True, help="folder saved by save_pretrained / the converter"
    )
    parser.add_argument("--output", type=Path, required=True, help="the .pt file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main_convert_to_original(argv: Sequence[str] | None = None) -> int:
    """`python convert/convert_hf_to_original.py ...`; returns the exit code."""
    args = build_convert_to_original_parser().parse_args(argv)

    def run() -> int:
        report = convert_hf_to_original(args.model_dir, args.output, overwrite=args.overwrite)
        print("\n".join(report.lines()))
        return 0

    return _run_cli(run, args.debug)


__all__ = [
    "AUDIOSET_LABELS_FILE",
    "BatchConversionReport",
    "CONVERSION_FORMAT_VERSION",
    "CheckpointError",
    "ConversionError",
    "ConversionReport",
    "HubUploadError",
    "MODEL_CLASSES",
    "OFFICIAL_BEATS_CFG_FIELDS",
    "OFFICIAL_CONFIG_FIELDS",
    "OFFICIAL_TOKENIZER_CFG_FIELDS",
    "ORIGINAL_CHECKPOINT_ATTRIBUTE",
    "REMOTE_CODE_FILES",
    "ReverseConversionReport",
    "VERIFICATION_TOLERANCE",
    "VerificationResult",
    "build_convert_original_parser",
    "build_convert_to_original_parser",
    "check_official_state_dict",
    "config_from_official",
    "convert_checkpoint",
    "convert_checkpoint_directory",
    "convert_hf_to_original",
    "convert_official_state_dict",
    "converter_version",
    "detect_checkpoint_kind",
    "kind_of_model",
    "load_audioset_labels",
    "load_converted_model",
    "load_converted_state_dict",
    "load_official_checkpoint",
    "main_convert_original",
    "main_convert_to_original",
    "model_from_official_checkpoint",
    "official_cfg_fields",
    "official_cfg_from_config",
    "official_checkpoint_from_model",
    "official_key_map",
    "official_state_dict_from_model",
    "push_to_hub",
    "readable_labels",
    "reference_forward",
    "same_model_folders",
    "save_converted_folder",
    "validate_official_checkpoint",
    "verification_features",
    "verification_sound",
    "verify_converted_model",
]
