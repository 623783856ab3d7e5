# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""BEATs model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# Saved with every config so that `trust_remote_code=True` loads a BEATs directory with each Auto class, whichever
# class saved it (saving a model alone records only its own Auto class).
BEATS_AUTO_MAP = {
    "AutoConfig": "configuration_beats.BeatsConfig",
    "AutoFeatureExtractor": "feature_extraction_beats.BeatsFeatureExtractor",
    "AutoModel": "modeling_beats.BeatsModel",
    "AutoModelForAudioClassification": "modeling_beats.BeatsForAudioClassification",
    "AutoModelForPreTraining": "modeling_beats.BeatsForMaskedAudioModeling",
}


@strict
class BeatsConfig(PreTrainedConfig):
    r"""
    Configuration of a BEATs model (Chen et al., ICML 2023, "BEATs: Audio Pre-Training with Acoustic Tokenizers").

    One configuration describes every BEATs class: the encoder ([`BeatsModel`]), the audio classifier
    ([`BeatsForAudioClassification`]), the masked-audio-modelling model ([`BeatsForMaskedAudioModeling`]) and the
    acoustic tokenizer ([`BeatsTokenizerModel`]). Defaults are the values of the released checkpoints (90M
    parameters: post-LN with DeepNorm, gated relative position bias with 320 buckets and maximum distance 800).

    Names follow transformers conventions; the original `cfg` field each one replaces is given in brackets.

    Args:
        num_mel_bins (`int`, defaults to 128):
            Mel bins of the input filter bank (the feature extractor's `feature_size`).
        patch_size (`int`, defaults to 16): [`input_patch_size`]
            Side of the square (time x mel) patches; patch embedding kernel and stride.
        patch_embedding_dim (`int`, defaults to 512): [`embed_dim`]
            Width of the patch embedding. When it differs from `hidden_size` a linear projection follows.
        conv_bias (`bool`, defaults to `False`):
            Whether the patch-embedding convolution has a bias.
        hidden_size (`int`, defaults to 768): [`encoder_embed_dim`]
        num_hidden_layers (`int`, defaults to 12): [`encoder_layers`]
        num_attention_heads (`int`, defaults to 12): [`encoder_attention_heads`]
        intermediate_size (`int`, defaults to 3072): [`encoder_ffn_embed_dim`]
        hidden_act (`str`, defaults to `"gelu"`): [`activation_fn`]
            Feed-forward activation: `"gelu"` (exact, computed in float32 as the original does), `"relu"`,
            `"gelu_fast"`, `"gelu_accurate"`, `"tanh"` or `"linear"`.
        layer_norm_eps (`float`, defaults to 1e-5):
        layer_norm_first (`bool`, defaults to `False`):
            Pre-LN layers when `True`; post-LN (the released setting) when `False`.
        deep_norm (`bool`, defaults to `True`):
            DeepNorm residual scaling `alpha = (2 * num_hidden_layers) ** 0.25`; only valid with post-LN.
        hidden_dropout (`float`, defaults to 0.0): [`dropout`]
            Dropout on residual branches and after the positional convolution.
        attention_dropout (`float`, defaults to 0.0):
        activation_dropout (`float`, defaults to 0.0):
        input_dropout (`float`, defaults to 0.0): [`dropout_input`]
            Dropout on the projected patch embeddings.
        layerdrop (`float`, defaults to 0.05): [`encoder_layerdrop`]
            Probability of skipping a layer in training.
        layer_wise_gradient_decay_ratio (`float`, defaults to 0.6):
            Before each layer the gradient flowing back is multiplied by this ratio (identity in the forward pass).
        num_conv_pos_embeddings (`int`, defaults to 128): [`conv_pos`]
            Kernel size of the convolutional positional embedding.
        num_conv_pos_embedding_groups (`int`, defaults to 16): [`conv_pos_groups`]
        relative_position_embedding (`bool`, defaults to `True`):
            Whether attention adds a bucketed relative position bias (table owned by the first layer).
        num_buckets (`int`, defaults to 320):
        max_bucket_distance (`int`, defaults to 800): [`max_distance`]
        gru_rel_pos (`bool`, defaults to `True`):
            Whether the relative position bias is gated per query (requires `relative_position_embedding`).
        classifier_dropout (`float`, defaults to 0.0): [`predictor_dropout`]
            Dropout before the classification head.
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the normal initialisation of linear layers and embeddings.
        codebook_size (`int`, defaults to 1024): [`quant_n`]
            Number of discrete acoustic labels (tokenizer codebook entries, label-predictor classes).
        codebook_dim (`int`, defaults to 256): [`quant_dim`]
            Dimension of the l2-normalised codebook vectors of the tokenizer.
        codebook_decay (`float`, defaults to 0.99):
            Exponential-moving-average decay of the tokenizer codebook during tokenizer training.
        label_predictor_num_layers (`int`, defaults to 1):
            Transformer layers of the masked-audio-modelling label predictor. The paper does not give its size; it
            runs on every patch, so each layer costs as much as a full-length encoder layer, and one layer keeps
            visible-only encoding worth its speed-up (see bench/bench_mam_training.py).
        mask_ratio (`float`, defaults to 0.75):
            Fraction of patches masked for masked audio modelling (paper: 75%).
        random_projection_seed (`int`, defaults to 0):
            Seed from which [`BeatsRandomProjectionTokenizer`] draws its frozen projection and codebook.

    Example:

    ```python
    >>> from beats_hf import BeatsConfig, BeatsModel

    >>> config = BeatsConfig()  # the released BEATs architecture
    >>> model = BeatsModel(config)
    ```
    """

    # Not "beats": a future native transformers BEATs would claim that name, and Hub configs tagged with it would
    # then silently load an incompatible class for users without trust_remote_code.
    model_type = "beats_hf"

    num_mel_bins: int = 128
    patch_size: int = 16
    patch_embedding_dim: int = 512
    conv_bias: bool = False
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    layer_norm_first: bool = False
    deep_norm: bool = True
    hidden_dropout: float | int = 0.0
    attention_dropout: float | int = 0.0
    activation_dropout: float | int = 0.0
    input_dropout: float | int = 0.0
    layerdrop: float | int = 0.05
    layer_wise_gradient_decay_ratio: float | int = 0.6
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_bucket_distance: int = 800
    gru_rel_pos: bool = True
    classifier_dropout: float | int = 0.0
    initializer_range: float = 0.02
    codebook_size: int = 1024
    codebook_dim: int = 256
    codebook_decay: float = 0.99
    label_predictor_num_layers: int = 1
    mask_ratio: float = 0.75
    random_projection_seed: int = 0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.auto_map = {**BEATS_AUTO_MAP, **(getattr(self, "auto_map", None) or {})}

    @property
    def num_freq_patches(self) -> int:
        """Patches along the mel axis (8 for 128 mel bins and patch size 16)."""
        return self.num_mel_bins // self.patch_size

    @property
    def deep_norm_alpha(self) -> float:
        """DeepNorm residual scale `(2N)^(1/4)`, or 1 without DeepNorm."""
        return (2.0 * self.num_hidden_layers) ** 0.25 if self.deep_norm else 1.0

    def validate_architecture(self):
        """Reject combinations the model cannot build, each with the fix."""
        # Sizes first: the checks below divide by some of them.
        sizes = (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "patch_embedding_dim",
            "num_conv_pos_embeddings",
            "num_conv_pos_embedding_groups",
            "codebook_size",
            "codebook_dim",
            "num_labels",
        )
        problems = [
            f"{name} ({getattr(self, name)!r}) must be a positive integer"
            for name in sizes
            if isinstance(getattr(self, name), bool)
            or not isinstance(getattr(self, name), int)
            or getattr(self, name) < 1
        ]
        for name in ("layer_norm_eps", "layer_wise_gradient_decay_ratio"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} ({getattr(self, name)}) must be positive")
        if problems:
            raise ValueError("Invalid BeatsConfig: " + "; ".join(problems) + ".")
        if self.hidden_size % self.num_attention_heads != 0:
            problems.append(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); pick a head count that divides it"
            )
        if self.deep_norm and self.layer_norm_first:
            problems.append(
                "deep_norm=True requires post-LN layers (layer_norm_first=False); DeepNorm scales the residual "
                "of post-LN blocks, so set one of them to False"
            )
        if self.gru_rel_pos and not self.relative_position_embedding:
            problems.append(
                "gru_rel_pos=True gates the relative position bias; it needs relative_position_embedding=True"
            )
        if self.patch_size <= 0 or self.num_mel_bins < self.patch_size:
            problems.append(
                f"patch_size ({self.patch_size}) must be positive and at most num_mel_bins ({self.num_mel_bins})"
            )
        # Only for a positive patch size (reported just above otherwise): the remainder would divide by zero.
        if self.patch_size > 0 and self.num_mel_bins % self.patch_size != 0:
            problems.append(
                f"num_mel_bins ({self.num_mel_bins}) must be a multiple of patch_size ({self.patch_size}); "
                "otherwise the top mel bins would be silently dropped"
            )
        if self.hidden_size % self.num_conv_pos_embedding_groups != 0:
            problems.append(
                f"hidden_size ({self.hidden_size}) must be divisible by num_conv_pos_embedding_groups "
                f"({self.num_conv_pos_embedding_groups})"
            )
        if self.relative_position_embedding and (self.num_buckets < 4 or self.num_buckets % 2 != 0):
            problems.append(f"num_buckets ({self.num_buckets}) must be an even number >= 4 (half per direction)")
        if self.relative_position_embedding and self.max_bucket_distance <= self.num_buckets // 4:
            problems.append(
                f"max_bucket_distance ({self.max_bucket_distance}) must exceed num_buckets // 4 "
                f"({self.num_buckets // 4}), where logarithmic buckets start"
            )
        if self.hidden_act not in ("gelu", "relu", "gelu_fast", "gelu_accurate", "tanh", "linear"):
            problems.append(
                f"hidden_act={self.hidden_act!r} is not supported; use one of gelu, relu, gelu_fast, gelu_accurate, "
                "tanh, linear (the original 'glu' variant is not used by any released checkpoint)"
            )
        for name in (
            "hidden_dropout",
            "attention_dropout",
            "activation_dropout",
            "input_dropout",
            "layerdrop",
            "classifier_dropout",
        ):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                problems.append(f"{name} ({value}) must be in [0, 1)")
        if not 0.0 < self.mask_ratio < 1.0:
            problems.append(f"mask_ratio ({self.mask_ratio}) must be in (0, 1)")
        if not 0.0 < self.codebook_decay < 1.0:
            problems.append(f"codebook_decay ({self.codebook_decay}) must be in (0, 1)")
        if problems:
            raise ValueError("Invalid BeatsConfig: " + "; ".join(problems) + ".")


__all__ = ["BEATS_AUTO_MAP", "BeatsConfig"]
