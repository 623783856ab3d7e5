# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""PyTorch BEATs model: encoder, audio classifier, masked audio modelling and acoustic tokenizer.

The computation reproduces the official implementation (microsoft/unilm, folder `beats/`) op for op on unpadded
inputs. One deliberate deviation: padding. The official code derives its patch-level padding mask by reshaping a
sample-level mask twice, which mislabels patches at the boundary of every padded clip (time-major patch order is
ignored), so a padded clip never reproduces its own unpadded output. Here a patch is padding exactly when one of its
`patch_size` frames is padding, which is what the patch convolution sees when the clip runs alone; a clip in a
padded batch therefore gives the same outputs as the clip on its own.
"""

import contextlib
import contextvars
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ModelOutput, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, is_torchdynamo_compiling, logging
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_beats import BeatsConfig

logger = logging.get_logger(__name__)

# The official attention subtracts the row maximum from q.k/32 and multiplies by 32 again before the softmax: a
# no-op mathematically, kept in the eager path for bit-exact parity.
ATTENTION_STABILITY_FACTOR = 32.0


@dataclass
class BeatsModelOutput(ModelOutput):
    """
    Output of [`BeatsModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size)`):
            Output of the last encoder layer (after the final LayerNorm for pre-LN models). Patches are in
            time-major order: patch `p` covers time step `p // num_freq_patches` and mel band
            `p % num_freq_patches`. With `bool_masked_pos`, only the visible patches, left-aligned per clip.
        patch_attention_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`):
            `True` for patches that hold audio, `False` for padding (and, with `bool_masked_pos`, for the filler
            entries after the last visible patch of a clip).
        patch_positions (`torch.LongTensor` of shape `(batch_size, num_visible_patches)`, *optional*):
            With `bool_masked_pos` only: the index in the full patch sequence of every returned patch.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Input of the first layer and output of every layer, `num_hidden_layers + 1` tensors.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention probabilities of every layer, `(batch_size, num_heads, num_patches, num_patches)` each
            (eager attention only).
    """

    last_hidden_state: torch.FloatTensor | None = None
    patch_attention_mask: torch.BoolTensor | None = None
    patch_positions: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class BeatsMaskedAudioModelingOutput(ModelOutput):
    """
    Output of [`BeatsForMaskedAudioModeling`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Cross-entropy of the label predictor on masked, non-padding patches (returned when `labels` is given).
        logits (`torch.FloatTensor` of shape `(batch_size, num_patches, codebook_size)`):
            Label-predictor scores for every patch.
        patch_attention_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`):
            `True` for patches that hold audio.
        hidden_states, attentions:
            Those of the encoder, over the visible patches only.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    patch_attention_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class BeatsTokenizerOutput(ModelOutput):
    """
    Output of [`BeatsTokenizerModel`].

    Args:
        token_ids (`torch.LongTensor` of shape `(batch_size, num_patches)`):
            Discrete acoustic label of every patch (index of the nearest codebook vector); `-100` on padding patches
            so that the tensor can be used directly as masked-audio-modelling `labels`.
        quantized (`torch.FloatTensor` of shape `(batch_size, num_patches, codebook_dim)`):
            The selected (l2-normalised) codebook vectors; in training mode they carry straight-through gradients
            to the encoder.
        encoded (`torch.FloatTensor` of shape `(batch_size, num_patches, codebook_dim)`):
            l2-normalised output of the quantizer projection, before quantization.
        patch_attention_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`):
            `True` for patches that hold audio.
        hidden_states, attentions:
            Those of the tokenizer encoder.
    """

    token_ids: torch.LongTensor | None = None
    quantized: torch.FloatTensor | None = None
    encoded: torch.FloatTensor | None = None
    patch_attention_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class _GradientScale(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by `scale` in the backward pass."""

    @staticmethod
    def forward(ctx, hidden_states: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return hidden_states.clone()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output * ctx.scale, None


def _gelu_float32(hidden_states: torch.Tensor) -> torch.Tensor:
    # The original always evaluates the feed-forward GELU in float32, also under fp16/bf16 autocast.
    return F.gelu(hidden_states.float()).type_as(hidden_states)


_FEED_FORWARD_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": _gelu_float32,
    "gelu_accurate": ACT2FN["gelu_new"],
    "gelu_fast": ACT2FN["gelu_new"],
    "relu": ACT2FN["relu"],
    "tanh": torch.tanh,
    "linear": ACT2FN["linear"],
}


def _known_all_true(mask: torch.Tensor) -> bool:
    """
    Whether every entry of `mask` is True, the cue to drop it and take the unmasked path; False under torch.compile /
    torch.export, where the mask is kept rather than branch on a tensor's value (which would break the graph).
    """
    return not is_torchdynamo_compiling() and bool(mask.all())


def compute_patch_attention_mask(
    attention_mask: torch.Tensor | None, num_frames: int, config: BeatsConfig
) -> torch.BoolTensor | None:
    """
    Turn a frame-level `attention_mask` (1 = real frame, right padding) into a patch-level boolean mask.

    A patch is real only when all `patch_size` frames under it are real, as when the clip is run on its own (the
    patch convolution then drops the incomplete trailing frames). Returns `None` when nothing is padded (eagerly;
    under torch.compile / torch.export the all-true mask).
    """
    if attention_mask is None:
        return None
    patch_size = config.patch_size
    num_time_patches = num_frames // patch_size
    valid_frames = attention_mask.sum(dim=-1)
    valid_time_patches = torch.div(valid_frames, patch_size, rounding_mode="floor")
    time_valid = torch.arange(num_time_patches, device=attention_mask.device)[None, :] < valid_time_patches[:, None]
    if _known_all_true(time_valid):
        return None
    return time_valid.repeat_interleave(config.num_freq_patches, dim=1)


def _relative_position_bucket(relative_positions: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bidirectional log-spaced buckets, as in T5 and the original BEATs (same integer arithmetic)."""
    num_buckets = num_buckets // 2
    buckets = (relative_positions > 0).to(torch.long) * num_buckets
    distance = torch.abs(relative_positions)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    log_bucket = max_exact + (
        torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).to(torch.long)
    log_bucket = torch.min(log_bucket, torch.full_like(log_bucket, num_buckets - 1))
    return buckets + torch.where(is_small, distance, log_bucket)


class BeatsPatchEmbeddings(nn.Module):
    """Cuts the (time, mel) filter bank into `patch_size` x `patch_size` patches and embeds them."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.patch_conv = nn.Conv2d(
            1,
            config.patch_embedding_dim,
            kernel_size=config.patch_size,
            stride=config.patch_size,
            bias=config.conv_bias,
        )
        self.layer_norm = nn.LayerNorm(config.patch_embedding_dim, eps=config.layer_norm_eps)
        self.projection = (
            nn.Linear(config.patch_embedding_dim, config.hidden_size)
            if config.patch_embedding_dim != config.hidden_size
            else None
        )
        self.dropout = nn.Dropout(config.input_dropout)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.patch_conv(input_values.unsqueeze(1))
        # (batch, dim, time patches, mel patches) -> (batch, time-major patches, dim)
        embeddings = embeddings.reshape(embeddings.shape[0], embeddings.shape[1], -1).transpose(1, 2)
        embeddings = self.layer_norm(embeddings)
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        return self.dropout(embeddings)


def _half_precision_dtype(hidden_states: torch.Tensor) -> torch.dtype | None:
    """The 16-bit float type a CPU convolution of `hidden_states` computes in (its dtype or autocast's), else None."""
    if hidden_states.dtype in (torch.float16, torch.bfloat16):
        return hidden_states.dtype
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") in (torch.float16, torch.bfloat16):
        return torch.get_autocast_dtype("cpu")
    return None


class BeatsPositionalConvEmbedding(nn.Module):
    """Grouped convolution over the patch sequence with weight normalisation over the kernel axis (dim=2)."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        kernel_size = config.num_conv_pos_embeddings
        self.conv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        self.conv = nn.utils.parametrizations.weight_norm(self.conv, name="weight", dim=2)
        # An even kernel with padding k//2 yields one extra step; the last one is dropped to keep the length.
        self.num_pad_remove = 1 if kernel_size % 2 == 0 else 0
        self.activation = nn.GELU()
        # oneDNN's bfloat16 grouped convolution returns wrong values (relative error ~0.5) on CPU for group widths
        # that are not a multiple of 16 (seen with torch 2.9.1 on an AVX-512/AMX Xeon with widths 4, 8 and 12); the
        # released models have 48 channels per group. Other widths run this convolution in float32 on CPU.
        channels_per_group = config.hidden_size // config.num_conv_pos_embedding_groups
        self.float32_on_cpu = channels_per_group % 16 != 0

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        half_precision = _half_precision_dtype(hidden_states)
        if self.float32_on_cpu and hidden_states.device.type == "cpu" and half_precision is not None:
            with torch.autocast("cpu", enabled=False):
                conv = self.conv
                bias = None if conv.bias is None else conv.bias.float()
                hidden_states = F.conv1d(
                    hidden_states.transpose(1, 2).float(),
                    conv.weight.float(),
                    bias,
                    padding=conv.padding,
                    groups=conv.groups,
                ).to(half_precision)
        else:
            hidden_states = self.conv(hidden_states.transpose(1, 2))
        if self.num_pad_remove > 0:
            hidden_states = hidden_states[:, :, : -self.num_pad_remove]
        return self.activation(hidden_states).transpose(1, 2)


class BeatsRelativePositionBias(nn.Module):
    """
    Bucketed relative position bias shared by all layers (the original stores one table in the first layer).
    Relative positions are differences of flattened patch indices, so adjacent time steps are
    `num_freq_patches` apart.
    """

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.num_buckets = config.num_buckets
        self.max_distance = config.max_bucket_distance
        self.relative_attention_bias = nn.Embedding(config.num_buckets, config.num_attention_heads)

    def forward(self, sequence_length: int, patch_positions: torch.Tensor | None = None) -> torch.Tensor:
        """
        The ungated bias. For a plain sequence every entry depends only on `key - query`, so it is returned as a
        `(heads, 2L - 1)` table indexed by `key - query + L - 1` (see [`expand_offset_bias`]); for per-clip patch
        positions (masked audio modelling) as a dense `(batch, heads, L, L)` tensor.
        """
        if patch_positions is None:
            offsets = torch.arange(
                -(sequence_length - 1), sequence_length, device=self.relative_attention_bias.weight.device
            )
            buckets = _relative_position_bucket(offsets, self.num_buckets, self.max_distance)
            return self.relative_attention_bias(buckets).t().contiguous()
        relative_positions = patch_positions[:, None, :] - patch_positions[:, :, None]
        buckets = _relative_position_bucket(relative_positions, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(0, 3, 1, 2)


def expand_offset_bias(offset_bias: torch.Tensor) -> torch.Tensor:
    """`(heads, 2L - 1)` per-offset table -> dense `(1, heads, L, L)` bias, `bias[h, q, k] = table[h, k - q + L - 1]`."""
    sequence_length = (offset_bias.shape[1] + 1) // 2
    positions = torch.arange(sequence_length, device=offset_bias.device)
    index = positions[None, :] - positions[:, None] + (sequence_length - 1)
    return offset_bias[:, index].unsqueeze(0)


def hankel_bias_view(table: torch.Tensor) -> torch.Tensor:
    """
    A copy-free `(heads, L, L)` view of a `(heads, 2L - 1)` table whose entry `(r, c)` is `table[h, r + c]` (constant
    along anti-diagonals, both strides +1). With the keys in reversed order and the table flipped, this is exactly the
    relative position bias `bias[h, q, k] = offsets[h, k - q + L - 1]`, so chunks of bias rows are read straight from
    the small table.
    """
    sequence_length = (table.shape[1] + 1) // 2
    table = table.contiguous()
    return table.as_strided((table.shape[0], sequence_length, sequence_length), (table.stride(0), 1, 1))


# Target size of one block of gated bias rows in the memory-efficient path (128 MiB in float32).
_BIAS_CHUNK_ELEMENTS = 1 << 25
# torch's CPU flash-attention kernel works on 256-query tiles only for calls of at least 768 queries (smaller calls get
# 64- or 32-query tiles, whose small GEMMs cost ~20% more per FLOP for 60 s clips), so clips are not cut into query
# blocks shorter than this as long as such a block stays under 4x the target size (clips of up to ~290 s).
_FLASH_FULL_TILE_QUERIES = 768


# Scratch buffers shared by the layers of one encoder forward (the gated-bias blocks of the memory-efficient attention,
# the feed-forward's intermediate activations). Tensors this large are served by mmap when freshly allocated, and their
# page faults cost more than the work done on them: ~0.2 s of a 60 s forward, 3% of a forward on 8 x 10 s clips.
_shared_scratch: contextvars.ContextVar[dict | None] = contextvars.ContextVar("beats_scratch_buffers", default=None)


@contextlib.contextmanager
def shared_scratch_buffers() -> Iterator[None]:
    """Within this context, the encoder layers reuse one scratch buffer per purpose (see `_scratch`)."""
    token = _shared_scratch.set({})
    try:
        yield
    finally:
        _shared_scratch.reset(token)


def _scratch(purpose: str, reference: torch.Tensor, numel: int) -> torch.Tensor:
    """
    A flat scratch tensor of `numel` elements like `reference`: inside `shared_scratch_buffers` the one buffer kept for
    `purpose` (grown when too small), else a fresh one. The caller must be done with it before the next layer asks.
    """
    # torch.compile plans its own memory (and cannot trace a ContextVar): a fresh tensor there.
    buffers = None if is_torchdynamo_compiling() else _shared_scratch.get()
    if buffers is None:
        return reference.new_empty(numel)
    key = (purpose, reference.device, reference.dtype)
    if key not in buffers or buffers[key].numel() < numel:
        buffers.pop(key, None)  # free the old one before allocating its successor
        buffers[key] = reference.new_empty(numel)
    return buffers[key][:numel]


def _autograd_records(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd records operations on any of `tensors` (the scratch buffers must then not be reused)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def attention_blocks(batch_size: int, num_heads: int, seq_len: int) -> list[tuple[slice, slice]]:
    """
    `(batch rows, query rows)` blocks for the memory-efficient attention: about `_BIAS_CHUNK_ELEMENTS` gated bias
    entries each, equal-sized, and at least `_FLASH_FULL_TILE_QUERIES` queries whenever the clip has that many and
    such blocks stay under 4x the target (else at least 16). Batches are split before sequences, so that long clips
    keep long query blocks.
    """
    min_queries = min(seq_len, _FLASH_FULL_TILE_QUERIES)
    # The largest block the minimum allows: equal blocks of at least `min_queries` can be up to twice that long.
    rows_at_minimum = -(-seq_len // max(1, seq_len // min_queries))
    if num_heads * rows_at_minimum * seq_len > 4 * _BIAS_CHUNK_ELEMENTS:
        min_queries = min(seq_len, 16)
    clips_per_block = max(1, min(batch_size, _BIAS_CHUNK_ELEMENTS // (num_heads * min_queries * seq_len)))
    budget_queries = max(1, _BIAS_CHUNK_ELEMENTS // (clips_per_block * num_heads * seq_len))
    num_query_blocks = -(-seq_len // max(budget_queries, min_queries))
    num_query_blocks = max(1, min(num_query_blocks, seq_len // min_queries))
    query_edges = [k * seq_len // num_query_blocks for k in range(num_query_blocks + 1)]
    return [
        (slice(b, min(b + clips_per_block, batch_size)), slice(start, stop))
        for b in range(0, batch_size, clips_per_block)
        for start, stop in zip(query_edges[:-1], query_edges[1:])
    ]


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention in the original's op order (bit-exact in float32); `position_bias` is added before the softmax."""
    query = query * scaling * (1.0 / ATTENTION_STABILITY_FACTOR)
    attn_weights = torch.matmul(query, key.transpose(2, 3))
    attn_weights = (attn_weights - attn_weights.amax(dim=-1, keepdim=True)) * ATTENTION_STABILITY_FACTOR
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attn_weights = attn_weights.masked_fill(~attention_mask, float("-inf"))
        else:
            attn_weights = attn_weights + attention_mask
    if position_bias is not None:
        attn_weights = attn_weights + position_bias
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class BeatsAttention(nn.Module):
    """Multi-head self-attention with an optional per-query gate on the relative position bias."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = False

        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

        self.gru_rel_pos = config.gru_rel_pos
        if self.gru_rel_pos:
            self.gru_rel_pos_linear = nn.Linear(self.head_dim, 8)
            self.gru_rel_pos_const = nn.Parameter(torch.ones(1, self.num_heads, 1, 1))

    def position_bias_gate(self, query_states: torch.Tensor) -> torch.Tensor:
        """Per-query gate of the shared bias, `a * (b * const - 1) + 2`, shape `(batch, heads, L, 1)`."""
        batch_size, num_heads, seq_len, _ = query_states.shape
        # The original derives the gate from q * scaling / 32 * 32 / scaling. Scaling by a power of two is exact
        # (outside the subnormal range), so the 1/32 and 32 cancel bit for bit, and so does the scaling itself when
        # it is a power of two (head_dim 64: 1/8); otherwise its two roundings are reproduced.
        if math.frexp(self.scaling)[0] == 0.5:
            gate_input = query_states
        else:
            gate_input = (query_states * self.scaling).div_(self.scaling)
        gate_logits = self.gru_rel_pos_linear(gate_input).view(batch_size, num_heads, seq_len, 2, 4).sum(-1)
        gate_a, gate_b = torch.sigmoid(gate_logits).chunk(2, dim=-1)
        return gate_a * (gate_b * self.gru_rel_pos_const - 1.0) + 2.0

    def _chunked_sdpa(
        self,
        attention_interface: Callable,
        query_states: torch.Tensor,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        offset_bias: torch.Tensor,
        dropout: float,
        **kwargs,
    ) -> torch.Tensor:
        """
        SDPA with a Toeplitz bias without ever materialising the full `(batch, heads, L, L)` bias. The keys and values
        are taken in reversed order (attention does not depend on the order of the keys), which turns the bias into a
        Hankel matrix: chunks of query rows get their gated bias from a strided view of the flipped `(heads, 2L - 1)`
        table in one pass, so memory stays bounded for long clips.
        """
        batch_size, num_heads, seq_len, _ = query_states.shape
        table = offset_bias.to(query_states.dtype).flip(-1)
        rows = hankel_bias_view(table)
        # index_select writes the reversed keys contiguously in one pass (flip would keep the (batch, L, heads)
        # layout of the projections, which the SDPA kernel reads more slowly).
        reversed_positions = torch.arange(seq_len - 1, -1, -1, device=key_states.device)
        key_reversed = key_states.index_select(2, reversed_positions)
        value_reversed = value_states.index_select(2, reversed_positions)
        gate = self.position_bias_gate(query_states) if self.gru_rel_pos else None
        track_gradients = _autograd_records(table, gate)
        key_padding = None
        if attention_mask is not None:
            if attention_mask.dtype != torch.bool or attention_mask.dim() != 4:
                raise ValueError("BEATs attention expects a boolean (batch, 1, L, L) or (batch, 1, 1, L) key mask.")
            # Every row of a padding mask is the same; one row, with the keys reversed like the keys themselves.
            key_padding = attention_mask[:, :, :1].flip(-1)
        blocks = attention_blocks(batch_size, num_heads, seq_len)
        keys = torch.arange(seq_len, device=table.device)
        # One buffer for all blocks (and all layers, see `shared_scratch_buffers`).
        largest = max((rows.stop - rows.start) * (queries.stop - queries.start) for rows, queries in blocks)
        # When autograd records SDPA (queries, keys or values need gradients), the bias is saved for its backward and
        # must not be overwritten: each block then gets its own tensor.
        reuse_buffer = not _autograd_records(table, gate, query_states, key_states, value_states)
        bias_buffer = _scratch("gated_bias", query_states, largest * num_heads * seq_len) if reuse_buffer else None
        attn_output = None
        for clips, queries in blocks:
            start, stop = queries.start, queries.stop
            num_clips = clips.stop - clips.start
            if track_gradients:
                # Differentiable gather of the rows (the strided view overlaps itself, which autograd handles badly).
                index = torch.arange(start, stop, device=table.device)[:, None] + keys[None, :]
                bias = table[:, index].unsqueeze(0)
                bias = gate[clips, :, queries] * bias if gate is not None else bias
                bias = bias.expand(num_clips, -1, -1, -1)
                if key_padding is not None:
                    bias = bias.masked_fill(~key_padding[clips], torch.finfo(bias.dtype).min)
            else:
                size = (num_clips, num_heads, stop - start, seq_len)
                if bias_buffer is None:
                    bias = query_states.new_empty(size)
                else:
                    bias = bias_buffer[: math.prod(size)].view(size)
                if gate is not None:
                    # Into a contiguous buffer: the broadcast product would otherwise get a key-major layout (the
                    # view's two unit strides) and a second copy inside SDPA.
                    torch.mul(gate[clips, :, queries], rows[:, queries].unsqueeze(0), out=bias)
                else:
                    bias.copy_(rows[:, queries].unsqueeze(0).expand_as(bias))
                if key_padding is not None:
                    # Folded in place, so that SDPA gets no boolean mask to merge into yet another block-sized tensor.
                    bias.masked_fill_(~key_padding[clips], torch.finfo(bias.dtype).min)
            output, _ = attention_interface(
                self,
                query_states[clips, :, queries],
                key_reversed[clips],
                value_reversed[clips],
                None,
                dropout=dropout,
                scaling=self.scaling,
                position_bias=bias,
                **kwargs,
            )
            if len(blocks) == 1:
                return output
            if attn_output is None:  # (batch, L, heads, head_dim), like each block's output
                attn_output = output.new_empty(batch_size, seq_len, *output.shape[2:])
            attn_output[clips, queries] = output
        return attn_output

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        dropout = 0.0 if not self.training else self.attention_dropout
        if position_bias is not None and position_bias.dim() == 2:
            # SDPA returns no attention weights (the interface warns when they are asked for): the chunked path
            # gives the same outputs.
            if self.config._attn_implementation == "sdpa":
                attn_output = self._chunked_sdpa(
                    attention_interface,
                    query_states,
                    key_states,
                    value_states,
                    attention_mask,
                    position_bias,
                    dropout,
                    **kwargs,
                )
                attn_output = attn_output.reshape(*input_shape, -1).contiguous()
                return self.out_proj(attn_output), None
            position_bias = expand_offset_bias(position_bias)

        if position_bias is not None:
            if self.gru_rel_pos:
                position_bias = self.position_bias_gate(query_states) * position_bias
            position_bias = position_bias.to(query_states.dtype)
            if position_bias.shape[0] != query_states.shape[0]:
                position_bias = position_bias.expand(query_states.shape[0], -1, -1, -1)

        if (
            self.config._attn_implementation == "flex_attention"
            and query_states.device.type == "cpu"
            # Keys or values alone may need gradients (e.g. LoRA on v_proj of a frozen first layer).
            and _autograd_records(query_states, key_states, value_states, position_bias)
        ):
            # torch's message would be an inductor IndexError (2.9) or a bare NotImplementedError (later versions).
            raise NotImplementedError(
                "attn_implementation='flex_attention' has no backward pass on CPU (PyTorch's CPU flex attention is "
                "inference-only): run the model under torch.no_grad() or torch.inference_mode(), or train with "
                "attn_implementation='sdpa' (the default)."
            )
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=dropout,
            scaling=self.scaling,
            position_bias=position_bias,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.out_proj(attn_output), attn_weights


def _has_forward_hooks(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or nn.modules.module._global_forward_hooks
        or nn.modules.module._global_forward_pre_hooks
    )


def _is_plain_linear(module: nn.Module) -> bool:
    """An `nn.Linear` with a bias and no hooks, so calling its `addmm` directly is the same as calling the module
    (adapters such as LoRA replace or wrap the module, and hooks must see its output)."""
    return type(module) is nn.Linear and module.bias is not None and not _has_forward_hooks(module)


class BeatsFeedForward(nn.Module):
    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = _FEED_FORWARD_ACTIVATIONS[config.hidden_act]
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if (
            self.activation is _gelu_float32
            # A compiled graph fuses the GELU itself; the shared buffer is an eager-mode saving.
            and not is_torchdynamo_compiling()
            and _is_plain_linear(self.fc1)
            # The shared buffer is overwritten by the next layer: no hook may keep a reference to it.
            and not _has_forward_hooks(self.activation_dropout)
            and not _has_forward_hooks(self.fc2)
            and hidden_states.dtype == self.fc1.weight.dtype == torch.float32
            and not torch.is_autocast_enabled(hidden_states.device.type)
            and not _autograd_records(hidden_states, self.fc1.weight)
        ):
            # Without autograd the intermediate activations go to a buffer shared by the layers (see
            # `shared_scratch_buffers`) and the GELU overwrites them in place: a fresh (tokens, intermediate_size)
            # tensor per layer is new memory whose page faults cost several times the GELU itself. Same kernels,
            # same values.
            tokens = hidden_states.shape[:-1]
            intermediate = _scratch("feed_forward", hidden_states, math.prod(tokens) * self.fc1.out_features)
            intermediate = torch.addmm(
                self.fc1.bias,
                hidden_states.reshape(-1, hidden_states.shape[-1]),
                self.fc1.weight.t(),
                out=intermediate.view(-1, self.fc1.out_features),
            )
            intermediate = torch.ops.aten.gelu_(intermediate).view(*tokens, -1)
        else:
            intermediate = self.activation(self.fc1(hidden_states))
        return self.fc2(self.activation_dropout(intermediate))


class BeatsEncoderLayer(GradientCheckpointingLayer):
    """One Transformer block: post-LN with DeepNorm residual scaling (released models) or pre-LN."""

    def __init__(self, config: BeatsConfig, deep_norm_alpha: float = 1.0):
        super().__init__()
        self.layer_norm_first = config.layer_norm_first
        self.deep_norm_alpha = deep_norm_alpha
        self.self_attn = BeatsAttention(config)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = BeatsFeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        residual = hidden_states
        if self.layer_norm_first:
            hidden_states, _ = self.self_attn(
                self.self_attn_layer_norm(hidden_states), attention_mask, position_bias, **kwargs
            )
            hidden_states = residual + self.dropout(hidden_states)
            residual = hidden_states
            hidden_states = self.feed_forward(self.final_layer_norm(hidden_states))
            return residual + self.dropout(hidden_states)

        hidden_states, _ = self.self_attn(hidden_states, attention_mask, position_bias, **kwargs)
        hidden_states = self.self_attn_layer_norm(residual * self.deep_norm_alpha + self.dropout(hidden_states))
        residual = hidden_states
        hidden_states = self.feed_forward(hidden_states)
        return self.final_layer_norm(residual * self.deep_norm_alpha + self.dropout(hidden_states))


def _gather_visible_patches(
    hidden_states: torch.Tensor, keep: torch.BoolTensor
) -> tuple[torch.Tensor, torch.BoolTensor, torch.LongTensor]:
    """Left-align the kept patches of every clip; clips with fewer kept patches are filled up and masked."""
    num_kept = keep.sum(dim=1)
    if bool((num_kept == 0).any()):
        empty = torch.nonzero(num_kept == 0).flatten().tolist()
        raise ValueError(
            f"bool_masked_pos masks every real patch of clip(s) {empty}; leave at least one patch visible "
            "(compute_random_patch_mask always does)."
        )
    max_kept = int(num_kept.max())
    # A stable sort of "not kept" puts each clip's kept patches first, in their original order.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :max_kept]
    gathered = torch.gather(hidden_states, 1, order.unsqueeze(-1).expand(-1, -1, hidden_states.shape[-1]))
    gathered_mask = torch.arange(max_kept, device=keep.device)[None, :] < num_kept[:, None]
    return gathered, gathered_mask, order


class BeatsEncoder(nn.Module):
    """Convolutional positional embedding, the layer stack, and the shared relative position bias."""

    def __init__(self, config: BeatsConfig, num_layers: int | None = None):
        super().__init__()
        self.config = config
        num_layers = config.num_hidden_layers if num_layers is None else num_layers
        self.layer_norm_first = config.layer_norm_first
        self.layerdrop = config.layerdrop
        self.layer_wise_gradient_decay_ratio = config.layer_wise_gradient_decay_ratio
        self.pos_conv_embed = BeatsPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.relative_position_bias = BeatsRelativePositionBias(config) if config.relative_position_embedding else None
        deep_norm_alpha = (2.0 * num_layers) ** 0.25 if config.deep_norm else 1.0
        self.layers = nn.ModuleList([BeatsEncoderLayer(config, deep_norm_alpha) for _ in range(num_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        patch_attention_mask: torch.BoolTensor | None = None,
        bool_masked_pos: torch.BoolTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.BoolTensor | None, torch.LongTensor | None]:
        keep = patch_attention_mask
        if bool_masked_pos is not None:
            keep = ~bool_masked_pos if keep is None else keep & ~bool_masked_pos
        if keep is not None:
            # Dropped patches become zeros before the convolution, as the zero padding of a clip run alone.
            hidden_states = hidden_states.masked_fill(~keep.unsqueeze(-1), 0.0)

        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)

        patch_positions = None
        if bool_masked_pos is not None:
            hidden_states, keep, patch_positions = _gather_visible_patches(hidden_states, keep)

        position_bias = None
        if self.relative_position_bias is not None:
            position_bias = self.relative_position_bias(hidden_states.shape[1], patch_positions)

        attention_mask = None
        if keep is not None and not _known_all_true(keep):
            attention_mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden_states, attention_mask=keep
            )

        scale_gradients = self.layer_wise_gradient_decay_ratio != 1.0 and torch.is_grad_enabled()
        with contextlib.nullcontext() if is_torchdynamo_compiling() else shared_scratch_buffers():
            for layer in self.layers:
                if scale_gradients:
                    hidden_states = _GradientScale.apply(hidden_states, self.layer_wise_gradient_decay_ratio)
                if self.training and self.layerdrop > 0:
                    dropped = torch.rand(()) < self.layerdrop
                    if is_torchdynamo_compiling():
                        # Skipping on a tensor's value would break the graph: the layer runs and its output is
                        # discarded instead (the same outputs and gradients, none for the dropped layer).
                        output = layer(hidden_states, attention_mask, position_bias, **kwargs)
                        hidden_states = torch.where(dropped, hidden_states, output)
                        continue
                    if dropped:
                        continue
                hidden_states = layer(hidden_states, attention_mask, position_bias, **kwargs)

        if self.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        return hidden_states, keep, patch_positions


class BeatsPreTrainedModel(PreTrainedModel):
    """Weight initialisation and settings shared by all BEATs models."""

    config: BeatsConfig
    config_class = BeatsConfig
    base_model_prefix = "beats"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["BeatsEncoderLayer"]
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_flash_attn = False
    _supports_attention_backend = False
    _can_record_outputs = {
        "hidden_states": BeatsEncoderLayer,
        "attentions": OutputRecorder(BeatsAttention, index=1),
    }

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """`PreTrainedModel.save_pretrained`, plus the model code for `trust_remote_code` in every folder.

        config.json's `auto_map` always names the BEATs files, but transformers only copies them for classes registered
        with an Auto class: the tokenizers (no Auto class fits them) would get folders that a process without beats_hf
        cannot load. With `push_to_hub=True`, push after saving (the copy happens once the upload has run)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True) and self._auto_class is None:
            from transformers.dynamic_module_utils import custom_object_save

            custom_object_save(self, save_directory)

    def _initialize_weights(self, module: nn.Module, is_custom_code: bool = False) -> None:
        # transformers skips modules without parameters of their own in out-of-tree code, which would skip the
        # positional convolution and the DeepNorm gains below; `_init_weights` only uses transformers.initialization,
        # which leaves loaded tensors alone, so it is safe to run on every module.
        super()._initialize_weights(module, is_custom_code=False)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Initialise as the original does for training from scratch (BERT-style normal, DeepNorm xavier gains)."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, BeatsPositionalConvEmbedding):
            conv = module.conv
            std_conv = math.sqrt(4.0 / (conv.kernel_size[0] * conv.in_channels))
            weight_v = conv.parametrizations.weight.original1
            init.normal_(weight_v, mean=0.0, std=std_conv)
            init.copy_(conv.parametrizations.weight.original0, torch.norm_except_dim(weight_v, 2, 2))
            init.zeros_(conv.bias)
        elif isinstance(module, BeatsAttention):
            if module.gru_rel_pos:
                init.ones_(module.gru_rel_pos_const)
        elif isinstance(module, BeatsEncoderLayer) and self.config.deep_norm:
            beta = (8.0 * self.config.num_hidden_layers) ** -0.25
            init.xavier_normal_(module.self_attn.q_proj.weight, gain=1.0)
            init.xavier_normal_(module.self_attn.k_proj.weight, gain=1.0)
            init.xavier_normal_(module.self_attn.v_proj.weight, gain=beta)
            init.xavier_normal_(module.self_attn.out_proj.weight, gain=beta)
            init.xavier_normal_(module.feed_forward.fc1.weight, gain=beta)
            init.xavier_normal_(module.feed_forward.fc2.weight, gain=beta)
        elif isinstance(module, BeatsRandomProjectionTokenizer):
            projection, codebook = module.draw_random_weights()
            init.copy_(module.projection, projection)
            init.copy_(module.codebook, codebook)
        elif isinstance(module, BeatsVectorQuantizer):
            codebook = module.initial_codebook()
            init.copy_(module.codebook, codebook)
            init.zeros_(module.cluster_size)
            init.copy_(module.kmeans_codebook, codebook)
            init.zeros_(module.kmeans_cluster_size)
            init.zeros_(module.initialized)

    def _check_inputs(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None,
        bool_masked_pos: torch.Tensor | None = None,
    ) -> None:
        if input_values is None:
            raise ValueError(
                "input_values is required: a (batch, frames, mel bins) filter bank from BeatsFeatureExtractor."
            )
        if input_values.dim() != 3 or input_values.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_values must have shape (batch, frames, {self.config.num_mel_bins}), got "
                f"{tuple(input_values.shape)}. Compute it from 16 kHz audio with BeatsFeatureExtractor."
            )
        if input_values.shape[1] < self.config.patch_size:
            raise ValueError(
                f"input_values has {input_values.shape[1]} frames, fewer than one patch ({self.config.patch_size} "
                "frames = 0.175 s of audio); pad or concatenate the audio to at least that length."
            )
        if attention_mask is not None:
            if tuple(attention_mask.shape) != tuple(input_values.shape[:2]):
                raise ValueError(
                    f"attention_mask must be frame-level with shape {tuple(input_values.shape[:2])} (batch, frames), "
                    f"got {tuple(attention_mask.shape)}; pass the attention_mask returned by BeatsFeatureExtractor."
                )
        # Checks that read tensor values would break a torch.compile graph (and torch.export), so they run eagerly only.
        if attention_mask is not None and not is_torchdynamo_compiling():
            valid_frames = attention_mask.sum(dim=-1)
            if bool((valid_frames < self.config.patch_size).any()):
                raise ValueError(
                    "attention_mask marks fewer real frames than one patch "
                    f"({self.config.patch_size}) for at least one clip; every clip needs >= 0.175 s of audio."
                )
            positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            if not bool(((positions[None, :] < valid_frames[:, None]) == attention_mask.bool()).all()):
                raise ValueError(
                    "attention_mask must mark a prefix of real frames followed by padding (right padding); "
                    "left or interleaved padding is not supported."
                )
        if bool_masked_pos is not None:
            expected = (input_values.shape[0], self.num_patches(input_values.shape[1]))
            if tuple(bool_masked_pos.shape) != expected:
                raise ValueError(
                    f"bool_masked_pos must have shape {expected} (batch, patches), got {tuple(bool_masked_pos.shape)}."
                )
            if bool_masked_pos.dtype != torch.bool:
                raise ValueError(
                    f"bool_masked_pos must be a bool tensor (True = masked), got {bool_masked_pos.dtype}."
                )

    def num_patches(self, num_frames: int) -> int:
        """Number of patches for `num_frames` filter-bank frames (trailing frames short of a patch are dropped)."""
        return (num_frames // self.config.patch_size) * self.config.num_freq_patches


class BeatsModel(BeatsPreTrainedModel):
    """
    The bare BEATs encoder: patch embedding, convolutional positional embedding and Transformer layers. Returns
    one vector per 16 x 16 patch of the filter bank (`last_hidden_state`).
    """

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.embeddings = BeatsPatchEmbeddings(config)
        self.encoder = BeatsEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_conv

    def freeze_feature_encoder(self) -> None:
        """Freeze the patch embedding (convolution, LayerNorm, projection), the counterpart of a wav2vec2 CNN."""
        self.embeddings.requires_grad_(False)

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        bool_masked_pos: torch.BoolTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BeatsModelOutput:
        r"""
        Args:
            input_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
                Normalised filter bank from [`BeatsFeatureExtractor`].
            attention_mask (`torch.LongTensor` of shape `(batch_size, num_frames)`, *optional*):
                1 for real frames, 0 for padding (right padding), as returned by the feature extractor.
            bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_patches)`, *optional*):
                Patches to drop (True = masked). Only the visible patches are encoded; the output is left-aligned
                per clip and `patch_positions` says where each returned patch sits.
        """
        self._check_inputs(input_values, attention_mask, bool_masked_pos)
        embeddings = self.embeddings(input_values)
        patch_attention_mask = compute_patch_attention_mask(attention_mask, input_values.shape[1], self.config)
        hidden_states, keep, patch_positions = self.encoder(
            embeddings, patch_attention_mask, bool_masked_pos, **kwargs
        )
        if keep is None:
            keep = torch.ones(hidden_states.shape[:2], dtype=torch.bool, device=hidden_states.device)
        return BeatsModelOutput(
            last_hidden_state=hidden_states, patch_attention_mask=keep, patch_positions=patch_positions
        )


def masked_mean(values: torch.Tensor, mask: torch.BoolTensor | None) -> torch.Tensor:
    """Mean over the patch axis (dim 1) of the entries where `mask` is True; plain mean when `mask` is None."""
    if mask is None or _known_all_true(mask):
        return values.mean(dim=1)
    values = values.masked_fill(~mask.unsqueeze(-1), 0.0)
    return values.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(values.dtype)


class BeatsForAudioClassification(BeatsPreTrainedModel):
    """
    BEATs with the original fine-tuning head: a linear layer applied to every patch, averaged over the real
    patches. `logits` are the pooled scores before any sigmoid/softmax (the original returns their sigmoid).
    """

    # The loss is a mean over the batch for every problem type: the HF Trainer must divide it by the gradient
    # accumulation steps itself (it skips that for models whose forward takes **kwargs, expecting a loss summed and
    # divided by `num_items_in_batch`, which the multi-label and regression losses ignore).
    accepts_loss_kwargs = False

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.beats = BeatsModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def freeze_feature_encoder(self) -> None:
        """Freeze the patch embedding so that it is not updated during fine-tuning."""
        self.beats.freeze_feature_encoder()

    def freeze_base_model(self) -> None:
        """Freeze the whole encoder; only the classification head is trained."""
        self.beats.requires_grad_(False)

    def _check_labels(self, labels: torch.Tensor, logits: torch.Tensor) -> None:
        """The labels' shape and dtype against what the loss of `config.problem_type` (or, unset, of the labels'
        dtype, as the HF loss infers it) needs."""
        batch_size, num_labels = logits.shape
        problem_type = self.config.problem_type
        integer = not labels.dtype.is_floating_point and labels.dtype != torch.bool
        if problem_type is None:
            problem_type = (
                "regression"
                if num_labels == 1
                else "single_label_classification"
                if integer
                else "multi_label_classification"
            )
            source = "labels of this dtype"
        else:
            source = f"config.problem_type={problem_type!r}"
        if problem_type == "regression":
            expected, meaning = (
                [(batch_size,), (batch_size, num_labels)] if num_labels == 1 else [(batch_size, num_labels)],
                "regression targets",
            )
            dtype_ok = labels.dtype.is_floating_point
        elif problem_type == "single_label_classification":
            expected, meaning, dtype_ok = [(batch_size,)], "class indices (single-label)", integer
        else:
            expected, meaning = [(batch_size, num_labels)], "multi-hot floats (multi-label)"
            dtype_ok = labels.dtype.is_floating_point
        if tuple(labels.shape) not in expected or not dtype_ok:
            raise ValueError(
                f"labels has shape {tuple(labels.shape)} and dtype {labels.dtype}, but with {source} the loss needs "
                f"{meaning}: shape {' or '.join(str(e) for e in expected)} for a batch of {batch_size} and "
                f"{num_labels} labels, {'an integer' if problem_type == 'single_label_classification' else 'a float'} "
                "dtype. Pass labels of that form, or set config.problem_type to the task the labels are for."
            )

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        Args:
            input_values, attention_mask: see [`BeatsModel.forward`].
            labels (`torch.Tensor`, *optional*):
                `(batch_size,)` class indices for single-label classification (cross-entropy) or
                `(batch_size, num_labels)` multi-hot floats for multi-label classification (BCE with logits), as
                `config.problem_type` says.
        """
        outputs: BeatsModelOutput = self.beats(input_values, attention_mask=attention_mask, **kwargs)
        patch_logits = self.classifier(self.dropout(outputs.last_hidden_state))
        mask = outputs.patch_attention_mask
        logits = masked_mean(patch_logits, mask)

        loss = None
        if labels is not None:
            self._check_labels(labels, logits)
            loss = self.loss_function(labels, logits, self.config, **kwargs)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class BeatsLabelPredictor(nn.Module):
    """
    The masked-audio-modelling label predictor: a small Transformer over the full patch sequence (encoder outputs
    at visible patches, zeros at masked ones) followed by a linear layer over the codebook.
    """

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.encoder = BeatsEncoder(config, num_layers=config.label_predictor_num_layers)
        self.classifier = nn.Linear(config.hidden_size, config.codebook_size)

    def forward(self, hidden_states: torch.Tensor, patch_attention_mask: torch.BoolTensor | None) -> torch.Tensor:
        hidden_states, _, _ = self.encoder(hidden_states, patch_attention_mask)
        return self.classifier(hidden_states)


class BeatsForMaskedAudioModeling(BeatsPreTrainedModel):
    """
    BEATs pre-training model (masked audio modelling, paper section 3.3): the encoder sees only the visible patches,
    the label predictor sees their representations plus zeros at masked positions and predicts the tokenizer's
    discrete label of every patch; the loss is the cross-entropy on masked patches.
    """

    # A mean over the masked patches of the batch: see `BeatsForAudioClassification.accepts_loss_kwargs`.
    accepts_loss_kwargs = False

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.beats = BeatsModel(config)
        self.label_predictor = BeatsLabelPredictor(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        bool_masked_pos: torch.BoolTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BeatsMaskedAudioModelingOutput:
        r"""
        Args:
            input_values, attention_mask: see [`BeatsModel.forward`].
            bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_patches)`):
                True for masked patches (see [`compute_random_patch_mask`]); required.
            labels (`torch.LongTensor` of shape `(batch_size, num_patches)`, *optional*):
                Tokenizer labels of every patch (`-100` = ignore), e.g. `BeatsTokenizerModel(...).token_ids`.
        """
        if bool_masked_pos is None:
            raise ValueError(
                "bool_masked_pos is required: a (batch, patches) bool tensor, True = masked; "
                "beats_hf.compute_random_patch_mask makes one."
            )
        outputs: BeatsModelOutput = self.beats(
            input_values, attention_mask=attention_mask, bool_masked_pos=bool_masked_pos, **kwargs
        )
        batch_size, num_patches = bool_masked_pos.shape
        visible = outputs.last_hidden_state * outputs.patch_attention_mask.unsqueeze(-1)
        predictor_input = visible.new_zeros(batch_size, num_patches, visible.shape[-1])
        predictor_input.scatter_(1, outputs.patch_positions.unsqueeze(-1).expand_as(visible), visible)

        patch_attention_mask = compute_patch_attention_mask(attention_mask, input_values.shape[1], self.config)
        logits = self.label_predictor(predictor_input, patch_attention_mask)
        if patch_attention_mask is None:
            patch_attention_mask = torch.ones_like(bool_masked_pos)

        loss = None
        if labels is not None:
            if tuple(labels.shape) != tuple(bool_masked_pos.shape):
                raise ValueError(
                    f"labels must have shape {tuple(bool_masked_pos.shape)} (batch, patches), got {tuple(labels.shape)}."
                )
            if labels.dtype.is_floating_point or labels.dtype == torch.bool:
                raise ValueError(f"labels must be integer tokenizer labels (e.g. torch.long), got {labels.dtype}.")
            targets = labels.masked_fill(~(bool_masked_pos & patch_attention_mask), -100)
            scored = targets != -100
            codebook_size = logits.shape[-1]
            if bool(((targets < 0) | (targets >= codebook_size))[scored].any()):
                raise ValueError(
                    f"labels must be tokenizer labels in [0, {codebook_size}) (config.codebook_size) or -100 (ignored); "
                    f"got values in [{int(targets[scored].min())}, {int(targets[scored].max())}] at masked patches."
                )
            if not bool(scored.any()):
                raise ValueError(
                    "No patch is both masked and labelled (bool_masked_pos only on padding or all False, or every "
                    "such label -100), so the masked-prediction loss is undefined; mask real, labelled patches "
                    "(compute_random_patch_mask does) or leave labels out."
                )
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)
        return BeatsMaskedAudioModelingOutput(
            loss=loss,
            logits=logits,
            patch_attention_mask=patch_attention_mask,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


def compute_random_patch_mask(
    patch_attention_mask: torch.BoolTensor,
    mask_ratio: float = 0.75,
    generator: torch.Generator | None = None,
) -> torch.BoolTensor:
    """
    Uniform random patch mask for masked audio modelling: in every clip, `round(mask_ratio * real patches)`
    of its real patches are masked (True); padding patches are never masked. At least one real patch stays visible.
    """
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}.")
    scores = torch.rand(patch_attention_mask.shape, generator=generator, device=patch_attention_mask.device)
    scores = scores.masked_fill(~patch_attention_mask, 2.0)  # padding sorts last, never masked
    num_real = patch_attention_mask.sum(dim=1)
    num_masked = torch.clamp(torch.round(num_real.float() * mask_ratio).long(), max=num_real - 1)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return ranks < num_masked.unsqueeze(1)


class BeatsVectorQuantizer(nn.Module):
    """
    Nearest-neighbour quantizer over an l2-normalised codebook (cosine similarity), as in BEiT v2 / BEATs.

    All state lives in buffers so that optimisers and mixed-precision wrappers never touch it. The forward pass has
    no side effects; training code updates the codebook explicitly with [`update_codebook`] (EMA) and initialises
    it with [`initialize_codebook`] (k-means on a batch).
    """

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.codebook_size = config.codebook_size
        self.decay = config.codebook_decay
        self.register_buffer("codebook", self.initial_codebook(config.codebook_size, config.codebook_dim))
        # EMA of code usage: the original's `quantize.cluster_size`.
        self.register_buffer("cluster_size", torch.zeros(config.codebook_size, dtype=torch.float32))
        # The codebook and cluster sizes right after k-means initialisation; unused by the forward pass, carried so
        # that conversion to and from the original format is lossless (`quantize.embedding.embed_avg`/`cluster_size`).
        self.register_buffer("kmeans_codebook", self.codebook.clone())
        self.register_buffer("kmeans_cluster_size", torch.zeros(config.codebook_size, dtype=torch.float32))
        self.register_buffer("initialized", torch.zeros(1, dtype=torch.float32))

    def initial_codebook(self, codebook_size: int | None = None, codebook_dim: int | None = None) -> torch.Tensor:
        """Random unit vectors from a fixed seed: the codebook before k-means initialisation replaces it."""
        if codebook_size is None:
            codebook_size, codebook_dim = self.codebook.shape
        generator = torch.Generator().manual_seed(0)
        return F.normalize(torch.randn(codebook_size, codebook_dim, generator=generator, dtype=torch.float32), dim=-1)

    def forward(self, encoded: torch.Tensor) -> tuple[torch.Tensor, torch.LongTensor]:
        """`encoded`: (..., codebook_dim) l2-normalised vectors. Returns (quantized, indices)."""
        flat = encoded.reshape(-1, encoded.shape[-1])
        codebook = self.codebook.to(flat.dtype)  # float32 in BeatsTokenizerModel, which quantizes outside autocast
        # Squared euclidean distance between unit vectors, in the original's op order (ties -> lowest index).
        distances = (
            flat.pow(2).sum(dim=1, keepdim=True)
            + codebook.pow(2).sum(dim=1)
            - 2 * torch.einsum("bd,nd->bn", flat, codebook)
        )
        indices = distances.argmin(dim=1).view(encoded.shape[:-1])
        quantized = F.embedding(indices, codebook)
        if self.training and encoded.requires_grad:
            quantized = encoded + (quantized - encoded).detach()
        return quantized, indices

    @torch.no_grad()
    def update_codebook(self, encoded: torch.Tensor, indices: torch.LongTensor) -> None:
        """
        One EMA step: usage `n_k <- d n_k + (1-d) count_k`; each used code moves towards the l2-normalised mean of
        its assigned vectors, `c_k <- normalize(d c_k + (1-d) normalize(mean_k))`. Unused codes are left as they are.
        Statistics are summed over data-parallel ranks when torch.distributed is initialised.
        """
        flat = encoded.detach().reshape(-1, encoded.shape[-1]).float()
        flat_indices = indices.reshape(-1)
        keep = flat_indices >= 0
        flat, flat_indices = flat[keep], flat_indices[keep]
        counts = torch.bincount(flat_indices, minlength=self.codebook_size).float()
        sums = torch.zeros_like(self.codebook, dtype=torch.float32).index_add_(0, flat_indices, flat)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        used = counts > 0
        means = F.normalize(sums / counts.clamp(min=1).unsqueeze(1), dim=-1)
        updated = F.normalize(self.codebook.float() * self.decay + means * (1 - self.decay), dim=-1)
        self.codebook.copy_(torch.where(used.unsqueeze(1), updated, self.codebook.float()))

    @torch.no_grad()
    def initialize_codebook(self, encoded: torch.Tensor, num_iterations: int = 10, generator=None) -> None:
        """Spherical k-means on a batch of l2-normalised vectors (rank 0's result is broadcast when distributed)."""
        samples = encoded.detach().reshape(-1, encoded.shape[-1]).float()
        if samples.shape[0] == 0:
            raise ValueError("initialize_codebook needs at least one vector.")
        if samples.shape[0] >= self.codebook_size:
            pick = torch.randperm(samples.shape[0], generator=generator, device="cpu")[: self.codebook_size]
        else:
            pick = torch.randint(samples.shape[0], (self.codebook_size,), generator=generator, device="cpu")
        centroids = samples[pick.to(samples.device)].clone()
        counts = torch.zeros(self.codebook_size, device=samples.device)
        for _ in range(num_iterations):
            assignment = (samples @ centroids.t()).argmax(dim=1)
            counts = torch.bincount(assignment, minlength=self.codebook_size).float()
            sums = torch.zeros_like(centroids).index_add_(0, assignment, samples)
            centroids = torch.where(
                (counts > 0).unsqueeze(1), F.normalize(sums / counts.clamp(min=1).unsqueeze(1), dim=-1), centroids
            )
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(centroids, src=0)
            torch.distributed.broadcast(counts, src=0)
        self.codebook.copy_(centroids)
        self.kmeans_codebook.copy_(centroids)
        self.cluster_size.copy_(counts)
        self.kmeans_cluster_size.copy_(counts)
        self.initialized.fill_(1.0)


class BeatsTokenizerModel(BeatsPreTrainedModel):
    """
    The BEATs acoustic tokenizer (self-distilled tokenizer at inference, paper section 3.2.2): a BEATs encoder,
    a projection (Linear, Tanh, Linear) to `codebook_dim`, and a cosine nearest-neighbour quantizer. Turns a filter
    bank into one discrete label per patch (`token_ids`). Inference never changes the model's state.
    """

    # Discrete labels are computed in float32 whatever the requested dtype.
    _keep_in_fp32_modules_strict = ["quantize_projection", "quantizer"]

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.beats = BeatsModel(config)
        # dtype hard-coded: `_keep_in_fp32_modules_strict` must hold even under a half-precision default dtype.
        self.quantize_projection = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size, dtype=torch.float32),
            nn.Tanh(),
            nn.Linear(config.hidden_size, config.codebook_dim, dtype=torch.float32),
        )
        self.quantizer = BeatsVectorQuantizer(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BeatsTokenizerOutput:
        r"""
        Args:
            input_values, attention_mask: see [`BeatsModel.forward`].
        """
        outputs: BeatsModelOutput = self.beats(input_values, attention_mask=attention_mask, **kwargs)
        # Labels must not depend on the caller's precision (autocast or a half-precision model): project and
        # quantize in float32.
        with torch.autocast(device_type=outputs.last_hidden_state.device.type, enabled=False):
            hidden = outputs.last_hidden_state.float()
            first, _, second = self.quantize_projection
            hidden = torch.tanh(F.linear(hidden, first.weight.float(), first.bias.float()))
            encoded = F.normalize(F.linear(hidden, second.weight.float(), second.bias.float()), p=2.0, dim=-1)
            quantized, token_ids = self.quantizer(encoded)
        token_ids = token_ids.masked_fill(~outputs.patch_attention_mask, -100)
        return BeatsTokenizerOutput(
            token_ids=token_ids,
            quantized=quantized,
            encoded=encoded,
            patch_attention_mask=outputs.patch_attention_mask,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class BeatsRandomProjectionTokenizer(BeatsPreTrainedModel):
    """
    The iteration-1 cold-start tokenizer (paper section 3.2.1, after Chiu et al. 2022, BEST-RQ): every 16 x 16
    filter-bank patch is flattened, multiplied by a frozen random matrix and assigned the index of the nearest of
    `codebook_size` frozen random vectors. As in BEST-RQ, projections and codebook vectors are l2-normalised, so
    "nearest" is the largest cosine similarity (eq. 1 on the unit sphere). Projection and codebook are drawn from
    `config.random_projection_seed` at construction and saved with the model like any weights.
    """

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        patch_dim = config.patch_size * config.patch_size
        self.register_buffer("projection", torch.zeros(config.codebook_dim, patch_dim))
        self.register_buffer("codebook", torch.zeros(config.codebook_size, config.codebook_dim))
        self.post_init()

    # The model has buffers only; transformers reads device and dtype from parameters.
    @property
    def device(self) -> torch.device:
        return self.projection.device

    @property
    def dtype(self) -> torch.dtype:
        return self.projection.dtype

    def draw_random_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The projection (xavier-normal) and the l2-normalised codebook (normal) drawn from the configured seed."""
        generator = torch.Generator().manual_seed(self.config.random_projection_seed)
        codebook_dim, patch_dim = self.projection.shape
        std = math.sqrt(2.0 / (codebook_dim + patch_dim))
        projection = torch.randn(codebook_dim, patch_dim, generator=generator) * std
        codebook = F.normalize(torch.randn(self.config.codebook_size, codebook_dim, generator=generator), dim=-1)
        return projection, codebook

    def patchify(self, input_values: torch.Tensor) -> torch.Tensor:
        """`(batch, frames, mel)` -> `(batch, patches, patch_size**2)` in the encoder's time-major patch order."""
        batch_size, num_frames, num_mel_bins = input_values.shape
        size = self.config.patch_size
        time_patches, freq_patches = num_frames // size, num_mel_bins // size
        patches = input_values[:, : time_patches * size].reshape(batch_size, time_patches, size, freq_patches, size)
        return patches.permute(0, 1, 3, 2, 4).reshape(batch_size, time_patches * freq_patches, size * size)

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BeatsTokenizerOutput:
        r"""
        Args:
            input_values, attention_mask: see [`BeatsModel.forward`].
        """
        self._check_inputs(input_values, attention_mask)
        # Labels must not depend on the caller's precision (autocast, or a model cast to half precision, which casts
        # these buffers too): float32 throughout, like the trained tokenizer's projection and quantizer.
        with torch.autocast(device_type=input_values.device.type, enabled=False):
            patches = self.patchify(input_values.float())
            encoded = F.normalize(patches @ self.projection.float().t(), dim=-1)
            token_ids = (encoded @ self.codebook.float().t()).argmax(dim=-1)
        patch_attention_mask = compute_patch_attention_mask(attention_mask, input_values.shape[1], self.config)
        if patch_attention_mask is None:
            patch_attention_mask = torch.ones_like(token_ids, dtype=torch.bool)
        return BeatsTokenizerOutput(
            token_ids=token_ids.masked_fill(~patch_attention_mask, -100),
            quantized=F.embedding(token_ids, self.codebook.float()),
            encoded=encoded,
            patch_attention_mask=patch_attention_mask,
        )


__all__ = [
    "BeatsForAudioClassification",
    "BeatsForMaskedAudioModeling",
    "BeatsMaskedAudioModelingOutput",
    "BeatsModel",
    "BeatsModelOutput",
    "BeatsPreTrainedModel",
    "BeatsRandomProjectionTokenizer",
    "BeatsTokenizerModel",
    "BeatsTokenizerOutput",
    "BeatsVectorQuantizer",
    "compute_patch_attention_mask",
    "compute_random_patch_mask",
]
