# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Conversion between the official BEATs checkpoint format (microsoft/unilm `beats/`) and beats_hf models.

An official checkpoint is a `torch.save`d dict: `cfg` (a plain dict of `BEATsConfig`/`TokenizersConfig` fields),
`model` (the state dict) and, for fine-tuned models, `label_dict` (class index -> label). Conversion is strict in
both directions: every tensor is used exactly once, shapes are checked, and anything missing or left over is an
error that names the tensors.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from .configuration_beats import BeatsConfig
from .modeling_beats import BeatsForAudioClassification, BeatsModel, BeatsPreTrainedModel, BeatsTokenizerModel

logger = logging.getLogger(__name__)

CheckpointKind = Literal["pretrained", "finetuned", "tokenizer"]


class CheckpointError(ValueError):
    """An input file is not a usable official BEATs checkpoint; the message says what is wrong."""


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
    (r"encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)", r"encoder.layers.\1.self_attn.\2.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)", r"encoder.layers.\1.self_attn.gru_rel_pos_linear.\2"),
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
# Copies of the shared relative-position table that the official model keeps in every layer after the first.
_SHARED_BIAS_COPY = re.compile(r"encoder\.layers\.([1-9]\d*)\.self_attn\.relative_attention_bias\.weight")


def load_official_checkpoint(path: str | Path) -> dict[str, Any]:
    """
    Load an official `.pt` checkpoint safely (`weights_only=True`: no code in the pickle is executed) and check
    its structure. Raises [`CheckpointError`] with the reason for anything that is not a BEATs checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused to load. torch.load(weights_only=True) only accepts tensors and plain containers, and "
            f"this file needs arbitrary Python objects, which could execute code when unpickled ({error}). "
            "Official BEATs checkpoints load without that; re-save the file as {'cfg': dict, 'model': state_dict} "
            "from a trusted environment if it is yours."
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint; it is truncated or corrupt ({error}). Download it again."
        ) from error
    return validate_official_checkpoint(checkpoint, source=str(path))


def validate_official_checkpoint(checkpoint: Any, source: str = "checkpoint") -> dict[str, Any]:
    """Check that `checkpoint` has the official layout (`cfg` dict, `model` state dict of tensors)."""
    if not isinstance(checkpoint, Mapping) or "cfg" not in checkpoint or "model" not in checkpoint:
        found = sorted(checkpoint.keys()) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(
            f"{source} is not an official BEATs checkpoint: expected a dict with 'cfg' and 'model' entries, "
            f"found {found}."
        )
    if not isinstance(checkpoint["cfg"], Mapping):
        raise CheckpointError(f"{source}: 'cfg' must be a dict of config fields, got {type(checkpoint['cfg']).__name__}.")
    state_dict = checkpoint["model"]
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{source}: 'model' must be a state dict mapping names to tensors.")
    if "patch_embedding.weight" not in state_dict or not any(k.startswith("encoder.layers.") for k in state_dict):
        raise CheckpointError(
            f"{source} is not a BEATs checkpoint: its state dict has no 'patch_embedding.weight' or encoder layers."
        )
    extra = set(checkpoint) - {"cfg", "model", "label_dict"}
    if extra:
        logger.warning("%s: ignoring top-level entries %s (not part of the official format).", source, sorted(extra))
    return dict(checkpoint)


def detect_checkpoint_kind(checkpoint: Mapping[str, Any]) -> CheckpointKind:
    """`tokenizer` when the state dict has a quantizer, `finetuned` when it has a classification head, else `pretrained`."""
    state_dict = checkpoint["model"]
    if any(k.startswith("quantize") for k in state_dict):
        return "tokenizer"
    if "predictor.weight" in state_dict or checkpoint["cfg"].get("finetuned_model", False):
        return "finetuned"
    return "pretrained"


def config_from_official(
    cfg: Mapping[str, Any], kind: CheckpointKind, label_dict: Mapping[int, str] | None = None
) -> BeatsConfig:
    """Build a [`BeatsConfig`] from an official `cfg` dict; absent fields take the official code's defaults."""
    unknown = sorted(set(cfg) - set(OFFICIAL_CONFIG_FIELDS) - set(OFFICIAL_KIND_FIELDS))
    if unknown:
        # The official BEATsConfig stores unknown fields without reading them; they cannot affect the model.
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
    if values["patch_size"] <= 0:
        raise CheckpointError("cfg has no valid 'input_patch_size'; official checkpoints set it to 16.")
    if kind == "tokenizer":
        values["layer_wise_gradient_decay_ratio"] = 1.0
    if kind == "finetuned":
        num_labels = values.pop("num_labels")
        if label_dict is not None:
            indices = sorted(int(i) for i in label_dict)
            if indices != list(range(num_labels)):
                raise CheckpointError(
                    f"label_dict has indices {indices[:5]}... but the head has {num_labels} classes; "
                    "they must be exactly 0..num_classes-1."
                )
            id2label = {int(i): str(label) for i, label in label_dict.items()}
        else:
            id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        values["id2label"] = id2label
        values["label2id"] = {label: i for i, label in id2label.items()}
        values["problem_type"] = "multi_label_classification"
    values["architectures"] = [MODEL_CLASSES[kind].__name__]
    return BeatsConfig(**values)


MODEL_CLASSES: dict[CheckpointKind, type[BeatsPreTrainedModel]] = {
    "pretrained": BeatsModel,
    "finetuned": BeatsForAudioClassification,
    "tokenizer": BeatsTokenizerModel,
}


def _rename(name: str, patterns: list[tuple[str, str]]) -> str | None:
    for pattern, replacement in patterns:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name)
    return None


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
    shared_table = state_dict.get("encoder.layers.0.self_attn.relative_attention_bias.weight")
    for name, tensor in state_dict.items():
        copy = _SHARED_BIAS_COPY.fullmatch(name)
        if copy is not None:
            if shared_table is None or not torch.equal(tensor, shared_table):
                raise CheckpointError(
                    f"{name} differs from encoder.layers.0.self_attn.relative_attention_bias.weight; the official model "
                    "shares one table across layers, so this state dict was not produced by it."
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
    load_converted_state_dict(model, convert_official_state_dict(checkpoint["model"], kind))
    return model.eval()


__all__ = [
    "CheckpointError",
    "MODEL_CLASSES",
    "OFFICIAL_CONFIG_FIELDS",
    "config_from_official",
    "convert_official_state_dict",
    "detect_checkpoint_kind",
    "load_converted_state_dict",
    "load_official_checkpoint",
    "model_from_official_checkpoint",
    "validate_official_checkpoint",
]
