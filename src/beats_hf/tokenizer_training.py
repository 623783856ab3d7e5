# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Training the self-distilled acoustic tokenizer (paper section 3.2.2), the part of BEATs the authors never released.

The tokenizer ([`BeatsTokenizerModel`]: a BEATs encoder, a projection and an l2-normalised codebook) turns every
patch into a discrete label. During training a small Transformer, the *estimator*, sees only the quantized vectors
and must predict what a frozen *teacher* (the previous iteration's BEATs model) outputs for the same audio; the
labels therefore keep what the teacher finds meaningful. The objective is the paper's eq. 3:

- `distill_loss`: `1 - cos(estimator output, teacher output)`, averaged over the real (non-padding) patches;
- `commitment_loss`: `||l2(e) - sg(v)||^2` between the encoder's l2-normalised output and its code, as a mean
  squared error (the official quantizer's `beta * mse(z_q.detach(), z)`, with `beta = 1` by default);
- the codebook side, `||sg(l2(e)) - v||^2`, is not a gradient term: as in BEiT v2 and the official
  `NormEMAVectorQuantizer`, the codebook follows an exponential moving average of the encodings assigned to each
  code ([`CodebookEMA`]), and is initialised by spherical k-means on the first training batch.

Gradients reach the encoder through the straight-through estimator of [`BeatsVectorQuantizer`]. After training, the
estimator is dropped: [`save_tokenizer`] writes the `BeatsTokenizerModel` alone, ready for `from_pretrained`.

Pieces:

- [`BeatsTeacher`]: a frozen teacher loaded from a saved BEATs directory (pre-trained encoder or fine-tuned classifier).
- [`BeatsTokenizerEstimator`]: the 3-layer Transformer estimator.
- [`BeatsTokenizerDistiller`]: tokenizer + estimator, returns the losses.
- [`CodebookEMA`]: one EMA update of the codebook per optimizer step.
- [`measure_codebook_usage`], [`check_codebook_health`], [`CodebookCollapseError`]: refuse a collapsed codebook.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .collators import compute_input_values, is_empty_batch
from .configuration_beats import BeatsConfig
from .modeling_beats import (
    BeatsEncoder,
    BeatsForAudioClassification,
    BeatsModel,
    BeatsPreTrainedModel,
    BeatsTokenizerModel,
    BeatsVectorQuantizer,
)
from .training_utils import codebook_usage

TEACHER_KINDS = ("pretrained", "finetuned")
TEACHER_PRECISIONS = ("fp32", "autocast")
# The paper's peak learning rates (Table 4): a self-supervised teacher's features vs a supervised teacher's logits.
DEFAULT_LEARNING_RATES = {"pretrained": 5e-5, "finetuned": 5e-4}
TRAINING_INFO_FILE = "tokenizer_training.json"

_FINETUNED_ARCHITECTURES = ("BeatsForAudioClassification",)
_PRETRAINED_ARCHITECTURES = ("BeatsModel", "BeatsForMaskedAudioModeling")
_TOKENIZER_ARCHITECTURES = ("BeatsTokenizerModel", "BeatsRandomProjectionTokenizer")


# ----------------------------------------------------------------------------------------------------------------------
# Teacher


def detect_teacher_kind(teacher_path: str | Path) -> str:
    """
    `"finetuned"` for a saved `BeatsForAudioClassification`, `"pretrained"` for a saved `BeatsModel` or
    `BeatsForMaskedAudioModeling`, read from the `architectures` entry of the directory's `config.json`.
    """
    config = BeatsConfig.from_pretrained(teacher_path)
    architectures = list(config.architectures or [])
    if any(name in _FINETUNED_ARCHITECTURES for name in architectures):
        return "finetuned"
    if any(name in _PRETRAINED_ARCHITECTURES for name in architectures):
        return "pretrained"
    if any(name in _TOKENIZER_ARCHITECTURES for name in architectures):
        raise ValueError(
            f"{teacher_path} holds a tokenizer ({architectures}); the teacher must be a BEATs model trained in the "
            "previous iteration (a pre-trained BeatsModel / BeatsForMaskedAudioModeling, or a fine-tuned "
            "BeatsForAudioClassification)."
        )
    raise ValueError(
        f"Cannot tell what kind of teacher {teacher_path} is: its config.json lists architectures={architectures}. "
        f"Save it with save_pretrained, or force the kind with teacher_kind='pretrained' or 'finetuned'."
    )


class BeatsTeacher:
    """
    The frozen teacher of tokenizer training, loaded from a saved BEATs model directory.

    Its distillation targets, one vector per patch, depend on the kind of model:

    - `"pretrained"` (iterations 2 and 3: a pre-trained `BeatsModel`, or the encoder of a
      `BeatsForMaskedAudioModeling`): the last layer output, `(batch, patches, hidden_size)`;
    - `"finetuned"` (iteration 3+: a fine-tuned `BeatsForAudioClassification`): the classification logits of every
      patch *before* mean pooling, `classifier(last_hidden_state)`, `(batch, patches, num_labels)`. The paper says
      the iter3+ tokenizer "learns to estimate the classification logits"; its loss is a per-patch cosine, and the
      classifier of BEATs is linear per patch followed by a mean, so the per-patch logits are the teacher's own
      decomposition of its clip logits and keep the patch-level detail the labels need.

    The teacher is not an `nn.Module` attribute of anything trained: it is in eval mode with `requires_grad=False`,
    never in an optimizer, never in a checkpoint or a saved tokenizer, and runs under `torch.no_grad()`. With
    `precision="fp32"` (default) it runs in float32 even inside an autocast region; with `"autocast"` it follows the
    caller's autocast (faster under bf16/fp16, targets slightly less precise). Targets are always returned in float32.
    """

    def __init__(self, model: BeatsModel | BeatsForAudioClassification, kind: str, precision: str = "fp32"):
        if kind not in TEACHER_KINDS:
            raise ValueError(f"teacher kind must be one of {TEACHER_KINDS}, got {kind!r}.")
        if precision not in TEACHER_PRECISIONS:
            raise ValueError(f"teacher precision must be one of {TEACHER_PRECISIONS}, got {precision!r}.")
        if kind == "finetuned" and not isinstance(model, BeatsForAudioClassification):
            raise ValueError(
                f"a 'finetuned' teacher must be a BeatsForAudioClassification, got {type(model).__name__}."
            )
        if kind == "pretrained" and not isinstance(model, BeatsModel):
            raise ValueError(f"a 'pretrained' teacher must be a BeatsModel, got {type(model).__name__}.")
        self.model = model.eval().requires_grad_(False)
        self.kind = kind
        self.precision = precision
        self.name_or_path = str(getattr(model, "name_or_path", "") or "")

    @classmethod
    def from_pretrained(cls, teacher_path: str | Path, kind: str = "auto", precision: str = "fp32") -> BeatsTeacher:
        """
        Load a teacher. `kind="auto"` reads it from the directory's config; `"pretrained"` forces the encoder's last
        layer as target (also from a fine-tuned directory: its classifier is then ignored); `"finetuned"` requires a
        saved classifier.
        """
        if kind not in ("auto", *TEACHER_KINDS):
            raise ValueError(f"teacher_kind must be 'auto', 'pretrained' or 'finetuned', got {kind!r}.")
        if not Path(teacher_path, "config.json").is_file():
            raise FileNotFoundError(
                f"No BEATs model at {str(teacher_path)!r} (no config.json). The teacher is the previous iteration's "
                "model directory written by save_pretrained: `encoder/` or `final/` of a pre-training run, `final/` "
                "of a fine-tuning run."
            )
        detected = detect_teacher_kind(teacher_path)
        kind = detected if kind == "auto" else kind
        if kind == "finetuned" and detected != "finetuned":
            raise ValueError(
                f"teacher_kind='finetuned' needs a fine-tuned BeatsForAudioClassification, but {teacher_path} holds a "
                "pre-trained model without a classifier; use teacher_kind='pretrained' or 'auto'."
            )
        model_class = BeatsForAudioClassification if kind == "finetuned" else BeatsModel
        model, loading_info = model_class.from_pretrained(teacher_path, output_loading_info=True)
        if loading_info["missing_keys"]:
            raise ValueError(
                f"{teacher_path} lacks weights of the {model_class.__name__} teacher: "
                f"{sorted(loading_info['missing_keys'])[:5]}..."
            )
        return cls(model, kind, precision)

    @property
    def config(self) -> BeatsConfig:
        return self.model.config

    @property
    def target_dim(self) -> int:
        """Size of the target vector of every patch: `hidden_size` (pre-trained) or `num_labels` (fine-tuned)."""
        return self.config.num_labels if self.kind == "finetuned" else self.config.hidden_size

    @property
    def target_name(self) -> str:
        return "per_patch_classification_logits" if self.kind == "finetuned" else "last_hidden_state"

    def to(self, device: torch.device | str) -> BeatsTeacher:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Distillation targets `(batch, patches, target_dim)` in float32 (padding patches hold garbage)."""
        if self.precision == "fp32":
            with torch.autocast(device_type=input_values.device.type, enabled=False):
                return self._targets(input_values.float(), attention_mask)
        return self._targets(input_values, attention_mask)

    def _targets(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "finetuned":
            hidden_states = self.model.beats(input_values, attention_mask=attention_mask).last_hidden_state
            return self.model.classifier(self.model.dropout(hidden_states)).float()
        return self.model(input_values, attention_mask=attention_mask).last_hidden_state.float()


# ----------------------------------------------------------------------------------------------------------------------
# Estimator and distiller


def estimator_config(tokenizer_config: BeatsConfig, num_layers: int = 3) -> BeatsConfig:
    """
    The estimator's configuration: the tokenizer's Transformer settings with `num_layers` layers, no layer drop and
    no per-layer gradient scaling (both are encoder pre-training devices; the paper's estimator is a plain
    3-layer Transformer).
    """
    if num_layers < 1:
        raise ValueError(f"estimator_num_layers must be at least 1, got {num_layers}.")
    values = tokenizer_config.to_dict()
    for key in ("architectures", "auto_map", "transformers_version", "model_type", "_name_or_path"):
        values.pop(key, None)
    values.update(num_hidden_layers=num_layers, layerdrop=0.0, layer_wise_gradient_decay_ratio=1.0)
    return BeatsConfig(**values)


class BeatsTokenizerEstimator(BeatsPreTrainedModel):
    """
    The tokenizer estimator (paper section 3.2.2): a linear layer from the quantized vectors (`codebook_dim`) to
    `hidden_size`, a BEATs encoder of `config.num_hidden_layers` layers (convolutional positional embedding, gated
    relative position bias) and a linear layer to the teacher's target size. It is only used in training.

    It is a `BeatsPreTrainedModel` (an `nn.Module`) so that its layers get the BEATs initialisation, with the DeepNorm
    gains of its own depth. Build its config with [`estimator_config`].
    """

    def __init__(self, config: BeatsConfig, target_dim: int):
        super().__init__(config)
        if target_dim < 1:
            raise ValueError(f"target_dim must be positive, got {target_dim}.")
        self.input_projection = nn.Linear(config.codebook_dim, config.hidden_size)
        self.encoder = BeatsEncoder(config)
        self.output_projection = nn.Linear(config.hidden_size, target_dim)
        self.post_init()

    @property
    def target_dim(self) -> int:
        return self.output_projection.out_features

    def forward(self, quantized: torch.Tensor, patch_attention_mask: torch.BoolTensor | None = None) -> torch.Tensor:
        """`quantized`: `(batch, patches, codebook_dim)` -> estimates `(batch, patches, target_dim)`."""
        if quantized.dim() != 3 or quantized.shape[-1] != self.config.codebook_dim:
            raise ValueError(
                f"the estimator expects quantized vectors of shape (batch, patches, {self.config.codebook_dim}), "
                f"got {tuple(quantized.shape)}."
            )
        hidden_states = self.input_projection(quantized)
        hidden_states, _, _ = self.encoder(hidden_states, patch_attention_mask)
        return self.output_projection(hidden_states)


class BeatsTokenizerDistiller(nn.Module):
    """
    The trainable part of tokenizer training: the `tokenizer` ([`BeatsTokenizerModel`]) and the `estimator`
    ([`BeatsTokenizerEstimator`]). The teacher is *not* part of it (see [`BeatsTeacher`]), so the optimizer, DDP and
    checkpoints only ever see tokenizer and estimator.

    The forward pass returns a dict: `loss` (`distill_loss + commitment_weight * commitment_loss`), `distill_loss`,
    `commitment_loss`, and, detached, `token_ids` (`-100` on padding), `encoded` (float32 l2-normalised encodings)
    and `patch_attention_mask`. It changes no state except once: in training mode, the first batch seen while
    `quantizer.initialized == 0` initialises the codebook by spherical k-means on its real patches. The EMA update of
    the codebook is the caller's, after each optimizer step ([`CodebookEMA`]).

    Projection, k-means and quantization run in float32 even under bf16/fp16 autocast, so that the code assignments
    and the codebook statistics never depend on half-precision rounding.
    """

    def __init__(
        self,
        tokenizer: BeatsTokenizerModel,
        target_dim: int,
        estimator_num_layers: int = 3,
        commitment_weight: float = 1.0,
        kmeans_iterations: int = 10,
        kmeans_seed: int = 0,
    ):
        super().__init__()
        if commitment_weight < 0:
            raise ValueError(f"commitment_weight must be >= 0, got {commitment_weight}.")
        self.tokenizer = tokenizer
        self.estimator = BeatsTokenizerEstimator(estimator_config(tokenizer.config, estimator_num_layers), target_dim)
        self.commitment_weight = commitment_weight
        self.kmeans_iterations = kmeans_iterations
        self.kmeans_seed = kmeans_seed
        self._codebook_initialized = False  # cached so that the buffer is read (a device sync) only until it is set

    @property
    def quantizer(self) -> BeatsVectorQuantizer:
        return self.tokenizer.quantizer

    def codebook_needs_initialization(self) -> bool:
        if not self._codebook_initialized:
            self._codebook_initialized = bool(self.quantizer.initialized.item() != 0)
        return not self._codebook_initialized

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        teacher_targets: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Args:
            input_values (`(batch, frames, num_mel_bins)`), attention_mask (`(batch, frames)`, optional):
                the feature extractor's output.
            teacher_targets (`(batch, patches, target_dim)`): the teacher's outputs for the same batch.
        """
        if teacher_targets is None:
            raise ValueError("teacher_targets is required: BeatsTeacher(...)(input_values, attention_mask).")
        tokenizer = self.tokenizer
        encoder_outputs = tokenizer.beats(input_values, attention_mask=attention_mask)
        patch_attention_mask = encoder_outputs.patch_attention_mask
        expected = (*patch_attention_mask.shape, self.estimator.target_dim)
        if tuple(teacher_targets.shape) != expected:
            raise ValueError(
                f"teacher_targets must have shape {expected} (batch, patches, target_dim), got "
                f"{tuple(teacher_targets.shape)}; teacher and tokenizer must share patch_size and num_mel_bins, and "
                "the estimator's target_dim must be the teacher's."
            )

        with torch.autocast(device_type=input_values.device.type, enabled=False):
            encoded = F.normalize(tokenizer.quantize_projection(encoder_outputs.last_hidden_state.float()), dim=-1)
            if self.training and self.codebook_needs_initialization():
                generator = torch.Generator().manual_seed(self.kmeans_seed)
                self.quantizer.initialize_codebook(
                    encoded[patch_attention_mask], num_iterations=self.kmeans_iterations, generator=generator
                )
                self._codebook_initialized = True
            quantized, token_ids = self.quantizer(encoded)
            code_vectors = F.embedding(token_ids, self.quantizer.codebook)

        estimates = self.estimator(quantized, patch_attention_mask)
        cosine = F.cosine_similarity(estimates.float(), teacher_targets.float(), dim=-1)
        distill_loss = (1.0 - cosine)[patch_attention_mask].mean()
        commitment_loss = (encoded - code_vectors).pow(2).mean(dim=-1)[patch_attention_mask].mean()
        return {
            "loss": distill_loss + self.commitment_weight * commitment_loss,
            "distill_loss": distill_loss,
            "commitment_loss": commitment_loss,
            "token_ids": token_ids.masked_fill(~patch_attention_mask, -100).detach(),
            "encoded": encoded.detach(),
            "patch_attention_mask": patch_attention_mask,
        }


class CodebookEMA:
    """
    Applies the codebook's exponential moving average once per optimizer step, on the encodings of all the
    micro-batches of that step: `add` after each backward pass, `step` after `optimizer.step()`.

    One EMA update per optimizer step (not per micro-batch) keeps the meaning of the decay (0.99: a memory of about
    100 optimizer steps) and the batch an update sees independent of gradient accumulation and of the number of
    processes ([`BeatsVectorQuantizer.update_codebook`] sums the statistics over data-parallel ranks), so a run
    with accumulation updates its codebook exactly as a run with the same total batch on more devices. All
    micro-batches of a step are quantized with the same codebook, the one the gradient step was computed with.
    """

    def __init__(self, quantizer: BeatsVectorQuantizer):
        self.quantizer = quantizer
        self._encodings: list[torch.Tensor] = []
        self._token_ids: list[torch.Tensor] = []

    @property
    def num_pending(self) -> int:
        """Encodings waiting for the next `step`."""
        return sum(ids.numel() for ids in self._token_ids)

    def add(self, encoded: torch.Tensor, token_ids: torch.Tensor) -> None:
        """Keep the real patches (`token_ids >= 0`) of one micro-batch."""
        real = token_ids >= 0
        self._encodings.append(encoded.detach()[real].float())
        self._token_ids.append(token_ids.detach()[real])

    @torch.no_grad()
    def step(self) -> int:
        """One EMA update with everything added since the last step; returns the number of encodings used."""
        if self.quantizer.codebook.dtype != torch.float32:
            raise RuntimeError(
                f"the codebook buffer is {self.quantizer.codebook.dtype}; EMA statistics must stay in float32. Do not "
                "cast the tokenizer to half precision for training: use mixed precision (autocast) instead."
            )
        dim = self.quantizer.codebook.shape[1]
        device = self.quantizer.codebook.device
        encoded = torch.cat(self._encodings) if self._encodings else torch.zeros(0, dim, device=device)
        token_ids = torch.cat(self._token_ids) if self._token_ids else torch.zeros(0, dtype=torch.long, device=device)
        self._encodings.clear()
        self._token_ids.clear()
        self.quantizer.update_codebook(encoded, token_ids)
        return int(token_ids.numel())


# ----------------------------------------------------------------------------------------------------------------------
# Codebook health


class CodebookCollapseError(RuntimeError):
    """The trained tokenizer uses too few codes to be a useful labeller for masked audio modelling."""


def measure_codebook_usage(
    tokenizer: BeatsTokenizerModel,
    batches: Iterable[dict[str, Any]],
    max_batches: int | None = None,
    feature_extractor: Any = None,
    accelerator: Any = None,
) -> dict[str, float]:
    """
    Codebook usage (codes used, used fraction, perplexity; see `training_utils.codebook_usage`) of `tokenizer` in eval
    mode over the batches of a data loader (`input_values`, or `waveforms` turned into filter banks with
    `feature_extractor`; see `beats_hf.collators`). With an `accelerate.Accelerator`, all processes' labels count.
    """
    was_training = tokenizer.training
    tokenizer.eval()
    device = tokenizer.device
    codebook_size = tokenizer.config.codebook_size
    counts = torch.zeros(codebook_size, dtype=torch.long, device=device)
    with torch.no_grad():
        for index, batch in enumerate(batches):
            if max_batches is not None and index >= max_batches:
                break
            if is_empty_batch(batch):
                continue
            if "input_values" not in batch and feature_extractor is None:
                raise ValueError(
                    "the batches hold waveforms; pass the feature_extractor to compute their filter banks."
                )
            input_values = compute_input_values(batch, feature_extractor).to(device)
            attention_mask = batch.get("attention_mask")
            token_ids = tokenizer(
                input_values, attention_mask=None if attention_mask is None else attention_mask.to(device)
            ).token_ids
            counts += torch.bincount(token_ids[token_ids >= 0], minlength=codebook_size)
    tokenizer.train(was_training)
    if accelerator is not None:
        counts = accelerator.reduce(counts, reduction="sum")
    # codebook_usage counts label tensors; rebuild one from the histogram.
    return codebook_usage(torch.repeat_interleave(torch.arange(codebook_size), counts.cpu()), codebook_size)


def check_codebook_health(usage: dict[str, float], min_codes_used_fraction: float = 0.1) -> None:
    """
    Raise [`CodebookCollapseError`] when fewer than `min_codes_used_fraction` of the codebook's codes are used
    (`usage` from [`measure_codebook_usage`] or `codebook_usage`). A collapsed tokenizer gives nearly constant labels,
    and the next masked-audio-modelling iteration would learn nothing from them.
    """
    if not 0.0 <= min_codes_used_fraction <= 1.0:
        raise ValueError(f"min_codes_used_fraction must be in [0, 1], got {min_codes_used_fraction}.")
    used_fraction = usage["usage_fraction"]
    if used_fraction >= min_codes_used_fraction:
        return
    codes_used = int(usage["codes_used"])
    codebook_size = round(codes_used / used_fraction) if used_fraction > 0 else None
    of_size = f" of {codebook_size}" if codebook_size else ""
    raise CodebookCollapseError(
        f"Codebook collapse: the tokenizer uses {codes_used}{of_size} codes ({used_fraction:.1%}, perplexity "
        f"{usage['perplexity']:.1f}), below the required {min_codes_used_fraction:.1%}. Its labels would be almost "
        "constant, so it must not be used to pre-train the next iteration. What to try: check that the teacher is "
        "the previous iteration's trained model and that the data are varied audio; lower the learning rate or "
        "raise warmup_steps; use a larger first batch for the k-means initialisation; keep the codebook EMA in "
        "float32 (mixed precision, not a half-precision model); check codebook_decay (0.99). If the data really "
        "are this uniform, lower min_codes_used_fraction."
    )


# ----------------------------------------------------------------------------------------------------------------------
# Saving


def save_tokenizer(
    distiller: BeatsTokenizerDistiller,
    output_dir: str | Path,
    feature_extractor: Any,
    teacher: BeatsTeacher | None = None,
    codebook_metrics: dict[str, float] | None = None,
    extra_info: dict[str, Any] | None = None,
) -> Path:
    """
    Save the trained tokenizer for inference and for the next pre-training iteration: the `BeatsTokenizerModel`
    alone (no estimator, no teacher) with `save_pretrained`, the feature extractor (so that the fbank statistics
    travel with it), and `tokenizer_training.json` (teacher path and kind, the target it distilled, codebook usage
    and perplexity, and `extra_info`, e.g. the training config).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    distiller.tokenizer.save_pretrained(output_dir)
    feature_extractor.save_pretrained(output_dir)
    info: dict[str, Any] = {
        "teacher_path": teacher.name_or_path if teacher is not None else None,
        "teacher_kind": teacher.kind if teacher is not None else None,
        "teacher_target": teacher.target_name if teacher is not None else None,
        "target_dim": distiller.estimator.target_dim,
        "estimator_num_layers": distiller.estimator.config.num_hidden_layers,
        "codebook_size": distiller.tokenizer.config.codebook_size,
        "codebook_dim": distiller.tokenizer.config.codebook_dim,
        "codebook_initialized": bool(distiller.quantizer.initialized.item() != 0),
    }
    for key, value in (codebook_metrics or {}).items():
        info[f"codebook_{key}"] = value if not isinstance(value, float) or math.isfinite(value) else None
    info.update(extra_info or {})
    (output_dir / TRAINING_INFO_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n")
    return output_dir


__all__ = [
    "DEFAULT_LEARNING_RATES",
    "TEACHER_KINDS",
    "TEACHER_PRECISIONS",
    "TRAINING_INFO_FILE",
    "BeatsTeacher",
    "BeatsTokenizerDistiller",
    "BeatsTokenizerEstimator",
    "CodebookCollapseError",
    "CodebookEMA",
    "check_codebook_health",
    "detect_teacher_kind",
    "estimator_config",
    "measure_codebook_usage",
    "save_tokenizer",
]
