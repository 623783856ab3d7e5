# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""BEATs as a Hugging Face Transformers model.

Importing the package registers the BEATs classes with the transformers Auto classes, so that
`AutoConfig`, `AutoModel`, `AutoModelForAudioClassification`, `AutoFeatureExtractor`, `AutoProcessor` and
`pipeline("audio-classification")` resolve saved BEATs directories.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    AutoProcessor,
)

from .configuration_beats import BEATS_AUTO_MAP, BeatsConfig
from .feature_extraction_beats import BeatsFeatureExtractor, compute_beats_fbank, compute_kaldi_fbank, num_fbank_frames
from .modeling_beats import (
    BeatsForAudioClassification,
    BeatsForMaskedAudioModeling,
    BeatsMaskedAudioModelingOutput,
    BeatsModel,
    BeatsModelOutput,
    BeatsPreTrainedModel,
    BeatsRandomProjectionTokenizer,
    BeatsTokenizerModel,
    BeatsTokenizerOutput,
    BeatsVectorQuantizer,
    compute_patch_attention_mask,
    compute_random_patch_mask,
)

__version__ = "0.1.0.dev0"


def _register() -> None:
    AutoConfig.register(BeatsConfig.model_type, BeatsConfig, exist_ok=True)
    AutoModel.register(BeatsConfig, BeatsModel, exist_ok=True)
    AutoModelForAudioClassification.register(BeatsConfig, BeatsForAudioClassification, exist_ok=True)
    AutoModelForPreTraining.register(BeatsConfig, BeatsForMaskedAudioModeling, exist_ok=True)
    AutoFeatureExtractor.register(BeatsConfig, BeatsFeatureExtractor, exist_ok=True)
    # BEATs has no processor beyond its feature extractor. Registered, AutoProcessor returns it at once; unregistered,
    # AutoProcessor first tries an image processor named after the feature extractor's auto_map entry, which asks
    # whether to run remote code.
    AutoProcessor.register(BeatsConfig, BeatsFeatureExtractor, exist_ok=True)
    BeatsConfig.register_for_auto_class()
    BeatsFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    BeatsModel.register_for_auto_class("AutoModel")
    BeatsForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
    BeatsForMaskedAudioModeling.register_for_auto_class("AutoModelForPreTraining")
    # No Auto class fits the tokenizer; it is loaded with BeatsTokenizerModel.from_pretrained, and with
    # trust_remote_code through AutoModel (which builds the bare encoder from its weights).


_register()

__all__ = [
    "BEATS_AUTO_MAP",
    "BeatsConfig",
    "BeatsFeatureExtractor",
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
    "compute_beats_fbank",
    "compute_kaldi_fbank",
    "compute_patch_attention_mask",
    "compute_random_patch_mask",
    "num_fbank_frames",
]
