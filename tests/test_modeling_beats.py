# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Model tests: transformers' own `ModelTesterMixin` / `ConfigTester` run over every BEATs class, plus BEATs-specific
checks (patch layout, padding invariance, masked audio modelling, tokenizer state, input validation)."""

import contextlib
import copy
import tempfile
import unittest
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from parameterized import parameterized
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    MODEL_MAPPING_NAMES,
)
from transformers.testing_utils import require_torch, torch_device

from beats_hf import (
    BeatsConfig,
    BeatsForAudioClassification,
    BeatsForMaskedAudioModeling,
    BeatsModel,
    BeatsTokenizerModel,
    compute_patch_attention_mask,
    compute_random_patch_mask,
    modeling_beats,
)
from beats_hf.modeling_beats import BeatsPositionalConvEmbedding, BeatsRandomProjectionTokenizer, attention_blocks

try:  # generated from the installed transformers' sdist by tests/conftest.py (see tests/hf_mixins.py)
    from hf_tests.test_configuration_common import ConfigTester
    from hf_tests.test_modeling_common import (
        TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION,
        ModelTesterMixin,
        _test_eager_matches_sdpa_inference,
        floats_tensor,
        ids_tensor,
    )
except ImportError as exc:
    import hf_mixins

    raise ImportError(hf_mixins.unavailable_message()) from exc

from utils import TINY_CONFIG_KWARGS, make_model, padded_batch, tiny_config

ALL_MODEL_CLASSES = (BeatsModel, BeatsForAudioClassification, BeatsForMaskedAudioModeling, BeatsTokenizerModel)
NUM_LABELS = 5
# Heads that compute a loss from `labels` (the encoder and the tokenizer have none).
LOSS_MODEL_CLASSES = (BeatsForAudioClassification, BeatsForMaskedAudioModeling)


class BeatsModelTester:
    """Tiny BEATs: (batch, 64 frames, 32 mel bins) filter banks -> 4 time steps x 2 mel bands = 8 patches."""

    def __init__(
        self,
        parent,
        batch_size=3,
        num_frames=64,
        num_mel_bins=32,
        patch_size=16,
        patch_embedding_dim=24,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=NUM_LABELS,
        codebook_size=16,
        codebook_dim=8,
        mask_ratio=0.75,
        is_training=True,
    ):
        self.parent = parent
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.num_mel_bins = num_mel_bins
        self.patch_size = patch_size
        self.patch_embedding_dim = patch_embedding_dim
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.num_labels = num_labels
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.mask_ratio = mask_ratio
        self.is_training = is_training
        self.num_freq_patches = num_mel_bins // patch_size
        self.seq_length = (num_frames // patch_size) * self.num_freq_patches
        # `test_eager_matches_sdpa_inference` masks the first `num_masks` patches of models taking `bool_masked_pos`.
        self.num_masks = 2

    def get_config_kwargs(self):
        return {
            **TINY_CONFIG_KWARGS,
            "num_mel_bins": self.num_mel_bins,
            "patch_size": self.patch_size,
            "patch_embedding_dim": self.patch_embedding_dim,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "codebook_size": self.codebook_size,
            "codebook_dim": self.codebook_dim,
            "mask_ratio": self.mask_ratio,
            "num_labels": self.num_labels,
        }

    def get_config(self):
        return BeatsConfig(**self.get_config_kwargs())

    def prepare_config_and_inputs(self):
        input_values = floats_tensor([self.batch_size, self.num_frames, self.num_mel_bins])
        attention_mask = torch.ones(self.batch_size, self.num_frames, dtype=torch.long, device=torch_device)
        return self.get_config(), input_values, attention_mask

    def prepare_config_and_inputs_for_common(self):
        config, input_values, attention_mask = self.prepare_config_and_inputs()
        return config, {"input_values": input_values, "attention_mask": attention_mask}

    def random_patch_mask(self, batch_size, num_patches, seed=0):
        generator = torch.Generator().manual_seed(seed)
        real = torch.ones(batch_size, num_patches, dtype=torch.bool)
        return compute_random_patch_mask(real, self.mask_ratio, generator=generator).to(torch_device)

    def patch_labels(self, batch_size, num_patches, seed=0):
        # seeded: some mixin tests prepare the inputs twice and compare the two outputs (losses included)
        generator = torch.Generator().manual_seed(seed)
        return torch.randint(0, self.codebook_size, (batch_size, num_patches), generator=generator).to(torch_device)

    def create_and_check_model(self, config, input_values, attention_mask):
        model = BeatsModel(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(input_values, attention_mask=attention_mask)
        self.parent.assertEqual(
            tuple(result.last_hidden_state.shape), (self.batch_size, self.seq_length, self.hidden_size)
        )
        self.parent.assertEqual(tuple(result.patch_attention_mask.shape), (self.batch_size, self.seq_length))
        self.parent.assertTrue(bool(result.patch_attention_mask.all()))
        self.parent.assertIsNone(result.patch_positions)

    def create_and_check_for_audio_classification(self, config, input_values, attention_mask):
        model = BeatsForAudioClassification(config).to(torch_device).eval()
        labels = ids_tensor([self.batch_size], self.num_labels)
        with torch.no_grad():
            result = model(input_values, attention_mask=attention_mask, labels=labels)
        self.parent.assertEqual(tuple(result.logits.shape), (self.batch_size, self.num_labels))
        self.parent.assertEqual(result.loss.dim(), 0)

    def create_and_check_for_masked_audio_modeling(self, config, input_values, attention_mask):
        model = BeatsForMaskedAudioModeling(config).to(torch_device).eval()
        bool_masked_pos = self.random_patch_mask(self.batch_size, self.seq_length)
        labels = ids_tensor([self.batch_size, self.seq_length], self.codebook_size)
        with torch.no_grad():
            result = model(input_values, attention_mask=attention_mask, bool_masked_pos=bool_masked_pos, labels=labels)
        self.parent.assertEqual(tuple(result.logits.shape), (self.batch_size, self.seq_length, self.codebook_size))
        self.parent.assertTrue(torch.isfinite(result.loss))

    def create_and_check_tokenizer(self, config, input_values, attention_mask):
        model = BeatsTokenizerModel(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(input_values, attention_mask=attention_mask)
        self.parent.assertEqual(tuple(result.token_ids.shape), (self.batch_size, self.seq_length))
        self.parent.assertEqual(result.token_ids.dtype, torch.long)
        self.parent.assertTrue(bool(((result.token_ids >= 0) & (result.token_ids < self.codebook_size)).all()))
        for name in ("quantized", "encoded"):
            tensor = getattr(result, name)
            self.parent.assertEqual(tuple(tensor.shape), (self.batch_size, self.seq_length, self.codebook_dim))
            torch.testing.assert_close(tensor.norm(dim=-1), torch.ones(tensor.shape[:2]), atol=1e-5, rtol=0)


@contextlib.contextmanager
def listed_in_auto_mapping(mapping_names, model_class):
    """
    Let the mixin see `model_class` in one of transformers' `*_MAPPING_NAMES` dicts for the duration of a test.

    Several common tests only act on classes listed there by name (in-tree models); out-of-tree classes are never
    listed, so those tests would silently check nothing. Listing the class under our `model_type` only affects those
    name lookups: the lazy Auto mappings ignore model types missing from `CONFIG_MAPPING_NAMES` and resolve our config
    through the registered classes as before.
    """
    with mock.patch.dict(mapping_names, {BeatsConfig.model_type: model_class.__name__}):
        yield


@require_torch
class BeatsModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = ALL_MODEL_CLASSES
    # The patch embedding is a Conv2d over a filter bank: there is no vocabulary to resize.
    test_resize_embeddings = False
    # Always run transformers' most useful v5 init test (it is otherwise skipped unless the configuration file's
    # copyright header says 2023 or later).
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = BeatsModelTester(self)
        # `num_labels` is not a serialised field (`id2label` is): the ConfigTester checks it on its own.
        config_kwargs = {k: v for k, v in self.model_tester.get_config_kwargs().items() if k != "num_labels"}
        self.config_tester = ConfigTester(self, config_class=BeatsConfig, has_text_modality=False, **config_kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # Hooks for the mixin
    # ------------------------------------------------------------------------------------------------------------

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        batch_size, num_frames = inputs_dict["input_values"].shape[:2]
        num_patches = (num_frames // self.model_tester.patch_size) * self.model_tester.num_freq_patches
        if model_class is BeatsForMaskedAudioModeling:
            # `bool_masked_pos` is required. Without labels nothing is masked, so hidden states and attentions cover
            # all `seq_length` patches as the shape checks of the mixin expect; with labels 75% of the patches are
            # masked so that the loss (masked patches only) is a real, finite training loss.
            if "bool_masked_pos" not in inputs_dict:
                if return_labels:
                    inputs_dict["bool_masked_pos"] = self.model_tester.random_patch_mask(batch_size, num_patches)
                else:
                    inputs_dict["bool_masked_pos"] = torch.zeros(
                        batch_size, num_patches, dtype=torch.bool, device=torch_device
                    )
            if return_labels:
                inputs_dict["labels"] = self.model_tester.patch_labels(batch_size, num_patches)
        elif return_labels and model_class is BeatsForAudioClassification and "labels" not in inputs_dict:
            inputs_dict["labels"] = torch.zeros(batch_size, dtype=torch.long, device=torch_device)
        return inputs_dict

    @contextlib.contextmanager
    def _only(self, model_classes):
        saved, self.all_model_classes = self.all_model_classes, tuple(model_classes)
        try:
            yield
        finally:
            self.all_model_classes = saved

    # ------------------------------------------------------------------------------------------------------------
    # Mixin tests adapted to BEATs (each with its reason)
    # ------------------------------------------------------------------------------------------------------------

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_training(self):
        # Only the heads have a loss (the mixin recognises base models by their in-tree class name).
        with self._only(LOSS_MODEL_CLASSES):
            super().test_training()

    def check_training_gradient_checkpointing(self, gradient_checkpointing_kwargs=None):
        # Same reason as `test_training`: the encoder and the tokenizer return no loss.
        with self._only(LOSS_MODEL_CLASSES):
            super().check_training_gradient_checkpointing(gradient_checkpointing_kwargs)

    def test_problem_types(self):
        # The mixin only runs this for classes listed as sequence/image classifiers; list ours for this test.
        with listed_in_auto_mapping(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES, BeatsForAudioClassification):
            super().test_problem_types()

    def test_can_load_ignoring_mismatched_shapes(self):
        # The mixin only runs this for classes listed as audio classifiers; list ours for this test.
        with listed_in_auto_mapping(MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES, BeatsForAudioClassification):
            super().test_can_load_ignoring_mismatched_shapes()

    def test_base_model_prefix_loads_base_weights(self):
        # The mixin finds the base model through `MODEL_MAPPING_NAMES[config.model_type]`; list ours for this test.
        with listed_in_auto_mapping(MODEL_MAPPING_NAMES, BeatsModel):
            super().test_base_model_prefix_loads_base_weights()

    def test_model_forward_default_config_values(self):
        # The mixin only runs base models, recognised through `MODEL_MAPPING_NAMES`; list ours for this test.
        with listed_in_auto_mapping(MODEL_MAPPING_NAMES, BeatsModel):
            super().test_model_forward_default_config_values()

    @parameterized.expand(TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION)
    def test_eager_matches_sdpa_inference(
        self, name, dtype, padding_side, use_attention_mask, output_attentions, enable_kernels
    ):
        if use_attention_mask and padding_side == "left":
            self.skipTest(
                reason="BEATs only supports right padding (BeatsFeatureExtractor pads on the right); a left-padded "
                "attention_mask raises a ValueError (TestInputValidation::test_bad_inputs_raise_value_error)"
            )
        with self._only(self.all_model_classes):
            _test_eager_matches_sdpa_inference(
                self, name, dtype, padding_side, use_attention_mask, output_attentions, enable_kernels
            )

    def test_can_init_all_missing_weights(self):
        super().test_can_init_all_missing_weights()

    def test_init_weights_can_init_buffers(self):
        # The tokenizer's codebook is drawn at random by `_init_weights` (zeros in `__init__`); checked separately in
        # test_init_weights_can_init_buffers_tokenizer. All other buffers must be reproduced exactly.
        with self._only([c for c in ALL_MODEL_CLASSES if c is not BeatsTokenizerModel]):
            super().test_init_weights_can_init_buffers()

    def test_init_weights_can_init_buffers_tokenizer(self):
        with self._only([BeatsTokenizerModel]):
            super().test_init_weights_can_init_buffers()

    def test_model_outputs_equivalence(self):
        """
        `return_dict=False` gives the `to_tuple()` of the `ModelOutput`, as in the mixin's test. Re-implemented: the
        mixin formats its failure message (`tuple - dict`) before asserting, which raises for the boolean
        `patch_attention_mask` outputs of BEATs even when both outputs are equal.
        """
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()

        def check(tuple_object, dict_object, path):
            if isinstance(tuple_object, (list, tuple)):
                self.assertEqual(len(tuple_object), len(dict_object), path)
                for index, (first, second) in enumerate(zip(tuple_object, dict_object)):
                    check(first, second, f"{path}[{index}]")
            elif tuple_object is None:
                self.assertIsNone(dict_object, path)
            elif torch.is_floating_point(tuple_object):
                torch.testing.assert_close(tuple_object, dict_object, atol=1e-5, rtol=0, msg=path)
            else:
                self.assertTrue(torch.equal(tuple_object, dict_object), path)

        for model_class in self.all_model_classes:
            model = model_class(copy.deepcopy(config)).to(torch_device).eval()
            for return_labels in (False, True):
                for extra in ({}, {"output_hidden_states": True}, {"output_attentions": True}):
                    if extra.get("output_attentions"):
                        model.set_attn_implementation("eager")
                    inputs = self._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
                    with torch.no_grad():
                        tuple_output = model(**inputs, return_dict=False, **extra)
                        dict_output = model(**inputs, return_dict=True, **extra)
                    self.assertIsInstance(tuple_output, tuple)
                    for key in extra:
                        self.assertIsNotNone(dict_output[key.removeprefix("output_")])
                    check(tuple_output, dict_output.to_tuple(), f"{model_class.__name__}{extra}")

    @unittest.skip(
        reason="text-model test: it loads through AutoModelForSequenceClassification and feeds input_ids after "
        "changing vocab_size; mismatched-head loading is covered by test_can_load_ignoring_mismatched_shapes"
    )
    def test_load_with_mismatched_shapes(self):
        pass

    @unittest.skip(reason="the input embedding is the patch Conv2d over the filter bank, not an nn.Embedding")
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(reason="audio model: the input is a filter bank, there are no input_ids/inputs_embeds")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="audio model: the input is a filter bank, there are no input_ids/inputs_embeds")
    def test_inputs_embeds_matches_input_ids(self):
        pass

    # ------------------------------------------------------------------------------------------------------------
    # BEATs-specific tests
    # ------------------------------------------------------------------------------------------------------------

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_for_audio_classification(self):
        self.model_tester.create_and_check_for_audio_classification(*self.model_tester.prepare_config_and_inputs())

    def test_for_masked_audio_modeling(self):
        self.model_tester.create_and_check_for_masked_audio_modeling(*self.model_tester.prepare_config_and_inputs())

    def test_tokenizer(self):
        self.model_tester.create_and_check_tokenizer(*self.model_tester.prepare_config_and_inputs())


# ----------------------------------------------------------------------------------------------------------------------
# BEATs-specific tests (pytest style)
# ----------------------------------------------------------------------------------------------------------------------


def valid_patches(num_frames, config):
    return (num_frames // config.patch_size) * config.num_freq_patches


class TestShapesAndLayout:
    def test_patch_count_and_time_major_order(self):
        # 128 mel bins (the released setting): 8 mel bands per 16-frame step.
        model = make_model(BeatsModel, num_mel_bins=128)
        input_values = torch.randn(2, 50, 128)  # 3 full time steps; the 2 trailing frames are dropped
        with torch.no_grad():
            output = model(input_values)
        assert model.num_patches(50) == 24
        assert tuple(output.last_hidden_state.shape) == (2, 24, 32)

        # Patch p covers time step p // 8 and mel band p % 8: perturbing frames 16..31, mel bins 48..63 (time step
        # 1, band 3) changes exactly the patch embedding at index 1 * 8 + 3.
        perturbed = input_values.clone()
        perturbed[:, 16:32, 48:64] += 1.0
        with torch.no_grad():
            changed = (model.embeddings(perturbed) - model.embeddings(input_values)).abs().amax(dim=(0, 2)) > 0
        assert torch.nonzero(changed).flatten().tolist() == [11]

        # The trailing frames short of a patch do not influence anything.
        perturbed = input_values.clone()
        perturbed[:, 48:] += 1.0
        with torch.no_grad():
            torch.testing.assert_close(model(perturbed).last_hidden_state, output.last_hidden_state, rtol=0, atol=0)

    def test_head_output_shapes(self):
        input_values = torch.randn(2, 48, 32)
        bool_masked_pos = compute_random_patch_mask(torch.ones(2, 6, dtype=torch.bool), 0.75)
        with torch.no_grad():
            logits = make_model(BeatsForAudioClassification, num_labels=NUM_LABELS)(input_values).logits
            mam = make_model(BeatsForMaskedAudioModeling)(input_values, bool_masked_pos=bool_masked_pos)
            tokens = make_model(BeatsTokenizerModel)(input_values)
        assert tuple(logits.shape) == (2, 5)
        assert tuple(mam.logits.shape) == (2, 6, 16)
        assert tuple(tokens.token_ids.shape) == (2, 6)
        assert tuple(tokens.quantized.shape) == (2, 6, 8)

    @pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES, ids=lambda c: c.__name__)
    def test_output_hidden_states(self, model_class):
        model = make_model(model_class)
        input_values = torch.randn(2, 64, 32)
        kwargs = (
            {"bool_masked_pos": torch.zeros(2, 8, dtype=torch.bool)}
            if model_class is BeatsForMaskedAudioModeling
            else {}
        )
        with torch.no_grad():
            output = model(input_values, output_hidden_states=True, **kwargs)
        assert len(output.hidden_states) == model.config.num_hidden_layers + 1
        for state in output.hidden_states:
            assert tuple(state.shape) == (2, 8, 32)
        if model_class is BeatsModel:
            # post-LN: the last recorded state is the encoder output itself
            torch.testing.assert_close(output.hidden_states[-1], output.last_hidden_state, rtol=0, atol=0)

    def test_output_hidden_states_with_masked_patches(self):
        # With bool_masked_pos the encoder only sees the visible patches: 2 of 8 per clip at ratio 0.75.
        model = make_model(BeatsForMaskedAudioModeling)
        bool_masked_pos = compute_random_patch_mask(torch.ones(2, 8, dtype=torch.bool), 0.75)
        with torch.no_grad():
            output = model(torch.randn(2, 64, 32), bool_masked_pos=bool_masked_pos, output_hidden_states=True)
        assert [tuple(s.shape) for s in output.hidden_states] == [(2, 2, 32)] * 3
        assert tuple(output.logits.shape) == (2, 8, 16)

    def test_output_attentions_eager(self):
        model = make_model(BeatsModel, attn_implementation="eager")
        input_values, attention_mask = padded_batch()
        with torch.no_grad():
            output = model(input_values, attention_mask=attention_mask, output_attentions=True)
        assert len(output.attentions) == model.config.num_hidden_layers
        patch_mask = output.patch_attention_mask
        for attentions in output.attentions:
            assert tuple(attentions.shape) == (3, 4, 8, 8)
            torch.testing.assert_close(attentions.sum(-1), torch.ones(3, 4, 8))
            # no probability mass on padding patches
            assert float(attentions.masked_select(~patch_mask[:, None, None, :]).abs().max()) == 0.0

    @pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES, ids=lambda c: c.__name__)
    def test_eager_matches_sdpa_fp32(self, model_class):
        eager = make_model(model_class, attn_implementation="eager")
        sdpa = copy.deepcopy(eager)
        sdpa.set_attn_implementation("sdpa")
        assert sdpa.config._attn_implementation == "sdpa"
        input_values, attention_mask = padded_batch()
        kwargs = {}
        if model_class is BeatsForMaskedAudioModeling:
            patch_mask = compute_patch_attention_mask(attention_mask, input_values.shape[1], eager.config)
            kwargs["bool_masked_pos"] = compute_random_patch_mask(patch_mask, 0.5, torch.Generator().manual_seed(0))
        with torch.no_grad():
            out_eager = eager(input_values, attention_mask=attention_mask, output_hidden_states=True, **kwargs)
            out_sdpa = sdpa(input_values, attention_mask=attention_mask, output_hidden_states=True, **kwargs)
        for state_eager, state_sdpa in zip(out_eager.hidden_states, out_sdpa.hidden_states):
            torch.testing.assert_close(state_sdpa, state_eager, atol=1e-5, rtol=0)
        main = {
            BeatsModel: "last_hidden_state",
            BeatsForAudioClassification: "logits",
            BeatsForMaskedAudioModeling: "logits",
            BeatsTokenizerModel: "encoded",
        }[model_class]
        torch.testing.assert_close(out_sdpa[main], out_eager[main], atol=1e-5, rtol=0)


class TestInitialization:
    def test_init_reaches_parameterless_modules(self):
        config = tiny_config()
        model = BeatsModel(config)
        conv = model.encoder.pos_conv_embed.conv
        # positional conv: zero bias, weight_g = per-kernel-position norm of weight_v
        assert float(conv.bias.abs().max()) == 0.0
        weight_v = conv.parametrizations.weight.original1
        torch.testing.assert_close(conv.parametrizations.weight.original0, torch.norm_except_dim(weight_v, 2, 2))
        # DeepNorm: xavier-normal q/k projections (std sqrt(2 / (32 + 32)) ~ 0.18), not normal(0.02)
        assert float(model.encoder.layers[0].self_attn.q_proj.weight.std()) > 0.1
        # from_pretrained with nothing to load must give the same, finite initialisation (not uninitialised memory)
        loaded = BeatsModel.from_pretrained(None, config=config, state_dict={})
        loaded_conv = loaded.encoder.pos_conv_embed.conv
        assert float(loaded_conv.bias.abs().max()) == 0.0
        assert bool(torch.isfinite(loaded_conv.parametrizations.weight.original0).all())


class TestHalfPrecision:
    @pytest.mark.parametrize(
        "model_class", [BeatsModel, BeatsForAudioClassification, BeatsForMaskedAudioModeling], ids=lambda c: c.__name__
    )
    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
    def test_loads_and_runs_in_half_precision(self, model_class, dtype, tmp_path):
        self._check(model_class, dtype, tmp_path)

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
    def test_tokenizer_loads_and_runs_in_half_precision(self, dtype, tmp_path):
        output = self._check(BeatsTokenizerModel, dtype, tmp_path)
        # the tokenizer projects and quantizes in float32 whatever the encoder's precision
        assert output.encoded.dtype == torch.float32

    @pytest.mark.parametrize("channels_per_group", [8, 12, 16, 48])
    @pytest.mark.parametrize("mode", ["autocast", "bfloat16 weights"])
    def test_positional_convolution_in_bfloat16_is_close_to_float32(self, channels_per_group, mode):
        # Guards the float32 fallback for group widths on which oneDNN's bf16 grouped convolution is wrong.
        config = tiny_config(hidden_size=4 * channels_per_group, num_conv_pos_embeddings=16)
        torch.manual_seed(0)
        layer = BeatsPositionalConvEmbedding(config).eval()
        hidden = torch.randn(2, 40, config.hidden_size)
        with torch.no_grad():
            expected = layer(hidden)
            if mode == "autocast":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    actual = layer(hidden)
            else:
                actual = layer.to(torch.bfloat16)(hidden.bfloat16())
        assert layer.float32_on_cpu == (channels_per_group % 16 != 0)
        assert actual.dtype == torch.bfloat16 and actual.shape == expected.shape
        relative_error = (actual.float() - expected).abs().max() / expected.abs().max()
        assert float(relative_error) < 0.03

    @staticmethod
    def _check(model_class, dtype, tmp_path):
        make_model(model_class, num_labels=NUM_LABELS).save_pretrained(tmp_path)
        model = model_class.from_pretrained(tmp_path, dtype=dtype).eval()
        input_values, attention_mask = padded_batch()
        kwargs = {}
        if model_class is BeatsForMaskedAudioModeling:
            kwargs["bool_masked_pos"] = torch.zeros(3, 8, dtype=torch.bool)
        with torch.no_grad():
            output = model(input_values.to(dtype), attention_mask=attention_mask, **kwargs)
        main = output[0]
        assert bool(torch.isfinite(main.float()).all()) if main.is_floating_point() else main.dtype == torch.long
        return output


class TestTraining:
    @pytest.mark.parametrize("use_reentrant", [False, True])
    def test_gradient_checkpointing_gives_same_gradients(self, use_reentrant):
        model = make_model(BeatsForAudioClassification, num_labels=NUM_LABELS).train()
        input_values, attention_mask = padded_batch()
        labels = torch.tensor([0, 3, 1])

        def gradients():
            model.zero_grad(set_to_none=True)
            model(input_values, attention_mask=attention_mask, labels=labels).loss.backward()
            return {name: param.grad.clone() for name, param in model.named_parameters()}

        reference = gradients()
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
        assert model.is_gradient_checkpointing
        checkpointed = gradients()
        assert reference.keys() == checkpointed.keys()
        for name, grad in reference.items():
            torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-5, msg=name)

    @pytest.mark.parametrize("model_class", [BeatsModel, BeatsForAudioClassification])
    def test_freeze_feature_encoder(self, model_class):
        model = make_model(model_class).train()
        model.freeze_feature_encoder()
        prefix = "embeddings." if model_class is BeatsModel else "beats.embeddings."
        frozen = {name for name, param in model.named_parameters() if not param.requires_grad}
        expected = {name for name, _ in model.named_parameters() if name.startswith(prefix)}
        # the patch convolution, its LayerNorm and the projection to hidden_size
        assert {name.removeprefix(prefix).split(".")[0] for name in expected} == {
            "patch_conv",
            "layer_norm",
            "projection",
        }
        assert frozen == expected

        output = model(torch.randn(2, 64, 32))
        loss = output.logits.sum() if model_class is BeatsForAudioClassification else output.last_hidden_state.sum()
        loss.backward()
        for name, param in model.named_parameters():
            assert (param.grad is None) == (name in expected), name

    def test_classification_loss_follows_problem_type(self):
        model = make_model(BeatsForAudioClassification, num_labels=NUM_LABELS).train()
        input_values, attention_mask = padded_batch()
        kwargs = {"input_values": input_values, "attention_mask": attention_mask}

        single = torch.tensor([0, 4, 2])
        model.config.problem_type = "single_label_classification"
        output = model(**kwargs, labels=single)
        torch.testing.assert_close(output.loss, F.cross_entropy(output.logits, single))

        multi = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 0, 0, 0]], dtype=torch.float)
        model.config.problem_type = "multi_label_classification"
        output = model(**kwargs, labels=multi)
        torch.testing.assert_close(output.loss, F.binary_cross_entropy_with_logits(output.logits, multi))

        # Without a problem_type the loss is inferred from the labels: class indices -> CE, multi-hot -> BCE.
        model.config.problem_type = None
        output = model(**kwargs, labels=single)
        torch.testing.assert_close(output.loss, F.cross_entropy(output.logits, single))
        model.config.problem_type = None
        output = model(**kwargs, labels=multi)
        torch.testing.assert_close(output.loss, F.binary_cross_entropy_with_logits(output.logits, multi))

    def test_masked_audio_modeling_loss_counts_masked_real_patches_only(self):
        model = make_model(BeatsForMaskedAudioModeling)
        config = model.config
        input_values, attention_mask = padded_batch((64, 50, 33))
        patch_mask = compute_patch_attention_mask(attention_mask, 64, config)
        assert patch_mask.sum(1).tolist() == [8, 6, 4]
        bool_masked_pos = compute_random_patch_mask(patch_mask, 0.5, torch.Generator().manual_seed(1))
        # also mark the padding patches as masked: they must still be ignored by the loss
        bool_masked_pos = bool_masked_pos | ~patch_mask
        labels = torch.randint(0, config.codebook_size, (3, 8), generator=torch.Generator().manual_seed(2))
        labels[0, 0] = -100  # explicit ignore index
        with torch.no_grad():
            output = model(input_values, attention_mask=attention_mask, bool_masked_pos=bool_masked_pos, labels=labels)

        counted = bool_masked_pos & patch_mask & (labels != -100)
        log_probs = output.logits.float().log_softmax(-1)
        picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        manual = -(picked[counted]).mean()
        torch.testing.assert_close(output.loss, manual)

        # labels at visible or padding patches do not matter
        changed = labels.clone()
        changed[~counted & (labels != -100)] = (changed[~counted & (labels != -100)] + 1) % config.codebook_size
        with torch.no_grad():
            again = model(input_values, attention_mask=attention_mask, bool_masked_pos=bool_masked_pos, labels=changed)
        torch.testing.assert_close(again.loss, output.loss, rtol=0, atol=0)

    def test_compute_random_patch_mask(self):
        config = tiny_config()
        _, attention_mask = padded_batch((64, 50, 33, 16))
        patch_mask = compute_patch_attention_mask(attention_mask, 64, config)
        real = patch_mask.sum(1)
        assert real.tolist() == [8, 6, 4, 2]
        for ratio in (0.75, 0.5, 0.3):
            for seed in range(5):
                mask = compute_random_patch_mask(patch_mask, ratio, torch.Generator().manual_seed(seed))
                assert mask.dtype == torch.bool and mask.shape == patch_mask.shape
                assert not bool((mask & ~patch_mask).any()), "padding patch masked"
                expected = torch.clamp(torch.round(real.float() * ratio).long(), max=real - 1)
                assert mask.sum(1).tolist() == expected.tolist()
        # 0.75 of 8, 6, 4, 2 real patches
        mask = compute_random_patch_mask(patch_mask, 0.75, torch.Generator().manual_seed(0))
        assert mask.sum(1).tolist() == [6, 4, 3, 1]
        # deterministic given the generator, different across seeds
        again = compute_random_patch_mask(patch_mask, 0.75, torch.Generator().manual_seed(0))
        assert torch.equal(mask, again)
        masks = {tuple(compute_random_patch_mask(patch_mask, 0.75).flatten().tolist()) for _ in range(10)}
        assert len(masks) > 1
        with pytest.raises(ValueError, match="mask_ratio"):
            compute_random_patch_mask(patch_mask, 1.0)

    @pytest.mark.parametrize("mode", ["eval", "train"])
    def test_tokenizer_forward_leaves_state_unchanged(self, mode):
        model = make_model(BeatsTokenizerModel, hidden_dropout=0.1)
        getattr(model, mode)()
        before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        assert any(name.startswith("quantizer.") for name in before)
        input_values, attention_mask = padded_batch()
        input_values.requires_grad_(mode == "train")
        output = model(input_values, attention_mask=attention_mask)
        if mode == "train":
            (output.quantized.sum() + output.encoded.sum()).backward()
        after = model.state_dict()
        assert before.keys() == after.keys()
        for name, tensor in before.items():
            assert torch.equal(tensor, after[name]), name


class TestPaddingInvariance:
    """A clip inside a right-padded batch gives the outputs of the clip run alone on its valid frames."""

    @pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
    @pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES, ids=lambda c: c.__name__)
    def test_padded_clip_equals_clip_alone(self, model_class, attn_implementation):
        model = make_model(model_class, attn_implementation=attn_implementation)
        config = model.config
        valid_frames = (64, 50, 33)
        input_values, attention_mask = padded_batch(valid_frames)
        patch_mask = compute_patch_attention_mask(attention_mask, input_values.shape[1], config)
        kwargs = {}
        if model_class is BeatsForMaskedAudioModeling:
            kwargs["bool_masked_pos"] = compute_random_patch_mask(patch_mask, 0.5, torch.Generator().manual_seed(0))
        with torch.no_grad():
            batched = model(input_values, attention_mask=attention_mask, **kwargs)
            for i, frames in enumerate(valid_frames):
                n = valid_patches(frames, config)
                alone_kwargs = {key: value[i : i + 1, :n] for key, value in kwargs.items()}
                alone = model(input_values[i : i + 1, :frames], **alone_kwargs)
                if model_class is BeatsModel:
                    diff = (batched.last_hidden_state[i, :n] - alone.last_hidden_state[0]).abs().max()
                    assert batched.patch_attention_mask[i].tolist() == [True] * n + [False] * (8 - n)
                elif model_class is BeatsForAudioClassification:
                    diff = (batched.logits[i] - alone.logits[0]).abs().max()
                elif model_class is BeatsForMaskedAudioModeling:
                    diff = (batched.logits[i, :n] - alone.logits[0]).abs().max()
                else:
                    assert batched.token_ids[i, :n].tolist() == alone.token_ids[0].tolist()
                    assert batched.token_ids[i, n:].tolist() == [-100] * (8 - n)
                    diff = (batched.encoded[i, :n] - alone.encoded[0]).abs().max()
                assert float(diff) <= 1e-4, f"clip {i}: max abs diff {float(diff):.2e}"

    def test_padding_values_are_ignored(self):
        model = make_model(BeatsForAudioClassification, num_labels=NUM_LABELS)
        input_values, attention_mask = padded_batch()
        other = input_values.clone()
        other[attention_mask == 0] = 0.0
        with torch.no_grad():
            torch.testing.assert_close(
                model(other, attention_mask=attention_mask).logits,
                model(input_values, attention_mask=attention_mask).logits,
                atol=1e-6,
                rtol=0,
            )


class TestInputValidation:
    @pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES, ids=lambda c: c.__name__)
    def test_bad_inputs_raise_value_error(self, model_class):
        model = make_model(model_class)
        extra = {}
        if model_class is BeatsForMaskedAudioModeling:
            extra["bool_masked_pos"] = torch.zeros(1, 8, dtype=torch.bool)

        def check(match, input_values, **kwargs):
            with pytest.raises(ValueError, match=match):
                model(input_values, **{**extra, **kwargs})

        check(r"input_values must have shape \(batch, frames, 32\)", torch.randn(64, 32))
        check(r"input_values must have shape \(batch, frames, 32\)", torch.randn(1, 1, 64, 32))
        check(r"input_values must have shape \(batch, frames, 32\)", torch.randn(1, 64, 31))
        check("fewer than one patch", torch.randn(1, 15, 32))
        check("attention_mask must be frame-level", torch.randn(1, 64, 32), attention_mask=torch.ones(1, 63))
        check("attention_mask must be frame-level", torch.randn(1, 64, 32), attention_mask=torch.ones(64))
        left = torch.ones(1, 64, dtype=torch.long)
        left[0, :20] = 0
        check("right padding", torch.randn(1, 64, 32), attention_mask=left)
        short = torch.zeros(1, 64, dtype=torch.long)
        short[0, :10] = 1
        check("fewer real frames than one patch", torch.randn(1, 64, 32), attention_mask=short)

    @pytest.mark.parametrize("model_class", [BeatsModel, BeatsForMaskedAudioModeling])
    def test_bad_bool_masked_pos(self, model_class):
        model = make_model(model_class)
        input_values = torch.randn(2, 64, 32)
        with pytest.raises(ValueError, match=r"bool_masked_pos must have shape \(2, 8\)"):
            model(input_values, bool_masked_pos=torch.zeros(2, 7, dtype=torch.bool))
        with pytest.raises(ValueError, match=r"bool_masked_pos must have shape \(2, 8\)"):
            model(input_values, bool_masked_pos=torch.zeros(8, dtype=torch.bool))
        with pytest.raises(ValueError, match="bool_masked_pos must be a bool tensor"):
            model(input_values, bool_masked_pos=torch.zeros(2, 8, dtype=torch.long))
        with pytest.raises(ValueError, match="leave at least one patch visible"):
            model(input_values, bool_masked_pos=torch.ones(2, 8, dtype=torch.bool))

    def test_masked_audio_modeling_requires_bool_masked_pos(self):
        model = make_model(BeatsForMaskedAudioModeling)
        with pytest.raises(ValueError, match="bool_masked_pos is required"):
            model(torch.randn(2, 64, 32))

    def test_masked_audio_modeling_bad_labels(self):
        model = make_model(BeatsForMaskedAudioModeling)
        bool_masked_pos = compute_random_patch_mask(torch.ones(2, 8, dtype=torch.bool))
        with pytest.raises(ValueError, match=r"labels must have shape \(2, 8\)"):
            model(torch.randn(2, 64, 32), bool_masked_pos=bool_masked_pos, labels=torch.zeros(2, 7, dtype=torch.long))

    def test_classifier_bad_labels(self):
        # What the cross-entropy / BCE losses reject today (torch's own ValueErrors).
        model = make_model(BeatsForAudioClassification, num_labels=NUM_LABELS)
        input_values = torch.randn(2, 64, 32)
        with pytest.raises(ValueError):
            model(input_values, labels=torch.zeros(3, dtype=torch.long))
        model.config.problem_type = "multi_label_classification"
        with pytest.raises(ValueError):
            model(input_values, labels=torch.zeros(2, 4))

    @pytest.mark.parametrize(
        ("problem_type", "num_labels", "labels"),
        [
            ("single_label_classification", NUM_LABELS, torch.zeros(3, dtype=torch.long)),
            ("multi_label_classification", NUM_LABELS, torch.zeros(2, 4)),
            ("regression", 3, torch.zeros(2, 4)),
        ],
        ids=["single_label", "multi_label", "regression"],
    )
    def test_classifier_wrong_label_shape_names_labels(self, problem_type, num_labels, labels):
        model = make_model(BeatsForAudioClassification, num_labels=num_labels, problem_type=problem_type)
        with pytest.raises(ValueError, match="labels"):
            model(torch.randn(2, 64, 32), labels=labels)

    def test_save_load_round_trip(self):
        # every class reloads to identical outputs (quick check independent of the mixin)
        input_values, attention_mask = padded_batch()
        for model_class in ALL_MODEL_CLASSES:
            model = make_model(model_class)
            kwargs = {}
            if model_class is BeatsForMaskedAudioModeling:
                kwargs["bool_masked_pos"] = torch.zeros(3, 8, dtype=torch.bool)
            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(tmp)
                reloaded = model_class.from_pretrained(tmp).eval()
            with torch.no_grad():
                first = model(input_values, attention_mask=attention_mask, **kwargs)[0]
                second = reloaded(input_values, attention_mask=attention_mask, **kwargs)[0]
            assert torch.equal(first, second), model_class.__name__


class TestAttentionBlocks:
    @pytest.mark.parametrize(
        "shape",
        [(1, 12, 496), (8, 12, 496), (13, 12, 496), (1, 12, 2992), (8, 12, 2992), (3, 4, 40), (1, 12, 14_400)]
        + [(1, 12, 100_000)],
    )
    def test_blocks_cover_every_query_once_within_the_memory_bound(self, shape):
        batch_size, num_heads, seq_len = shape
        blocks = attention_blocks(batch_size, num_heads, seq_len)
        covered = torch.zeros(batch_size, seq_len, dtype=torch.long)
        for clips, queries in blocks:
            covered[clips, queries] += 1
            elements = (clips.stop - clips.start) * num_heads * (queries.stop - queries.start) * seq_len
            assert elements <= 4 * modeling_beats._BIAS_CHUNK_ELEMENTS
        assert bool((covered == 1).all())
        sizes = {queries.stop - queries.start for _, queries in blocks}
        assert max(sizes) - min(sizes) <= 1  # equal blocks, no small remainder
        if seq_len >= modeling_beats._FLASH_FULL_TILE_QUERIES and seq_len < 10_000:
            assert min(sizes) >= modeling_beats._FLASH_FULL_TILE_QUERIES

    @pytest.mark.parametrize("with_gradients", [False, True], ids=["inference", "training"])
    def test_blocked_sdpa_equals_eager(self, monkeypatch, with_gradients):
        # A tiny budget forces several batch and query blocks on the tiny model.
        monkeypatch.setattr(modeling_beats, "_BIAS_CHUNK_ELEMENTS", 2 * 4 * 3 * 8)
        monkeypatch.setattr(modeling_beats, "_FLASH_FULL_TILE_QUERIES", 3)
        assert len(attention_blocks(3, 4, 8)) > 2
        eager = make_model(BeatsModel, attn_implementation="eager")
        sdpa = copy.deepcopy(eager)
        sdpa.set_attn_implementation("sdpa")
        input_values, attention_mask = padded_batch()
        with torch.set_grad_enabled(with_gradients):
            expected = eager(input_values, attention_mask=attention_mask).last_hidden_state
            actual = sdpa(input_values, attention_mask=attention_mask).last_hidden_state
        real = sdpa(input_values, attention_mask=attention_mask).patch_attention_mask
        torch.testing.assert_close(actual[real], expected[real], atol=1e-5, rtol=0)
        if with_gradients:
            expected[real].square().sum().backward()
            actual[real].square().sum().backward()
            for (name, a), (_, b) in zip(sdpa.named_parameters(), eager.named_parameters()):
                torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4, msg=name)

    def test_blocked_sdpa_backward_with_a_frozen_ungated_bias(self, monkeypatch):
        # No gate and a frozen bias table: the bias needs no gradient itself, but SDPA saves it for the backward of
        # the (trainable) projections, so blocks and layers must not share one buffer.
        monkeypatch.setattr(modeling_beats, "_BIAS_CHUNK_ELEMENTS", 2 * 4 * 3 * 8)
        monkeypatch.setattr(modeling_beats, "_FLASH_FULL_TILE_QUERIES", 3)
        eager = make_model(BeatsModel, attn_implementation="eager", gru_rel_pos=False)
        eager.encoder.relative_position_bias.requires_grad_(False)
        sdpa = copy.deepcopy(eager)
        sdpa.set_attn_implementation("sdpa")
        input_values, attention_mask = padded_batch()
        for model in (eager, sdpa):
            output = model(input_values, attention_mask=attention_mask)
            output.last_hidden_state[output.patch_attention_mask].square().sum().backward()
        for (name, a), (_, b) in zip(sdpa.named_parameters(), eager.named_parameters()):
            if b.grad is not None:
                torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4, msg=name)


class TestSharedScratchBuffers:
    @pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
    def test_layers_sharing_scratch_buffers_give_the_same_outputs_as_fresh_tensors(
        self, monkeypatch, attn_implementation
    ):
        # Every layer overwrites the shared feed-forward and gated-bias buffers of the one before it; a layer that
        # still read a buffer after the next one wrote it would change the outputs.
        model = make_model(BeatsModel, attn_implementation=attn_implementation).eval()
        input_values, attention_mask = padded_batch()
        with torch.no_grad():
            shared = model(input_values, attention_mask=attention_mask, output_hidden_states=True)
            monkeypatch.setattr(modeling_beats, "shared_scratch_buffers", contextlib.nullcontext)
            fresh = model(input_values, attention_mask=attention_mask, output_hidden_states=True)
        for layer, (a, b) in enumerate(zip(shared.hidden_states, fresh.hidden_states)):
            assert torch.equal(a, b), f"hidden state {layer}"

    def test_scratch_is_reused_per_purpose_and_grown_when_too_small(self):
        reference = torch.zeros(1)
        with modeling_beats.shared_scratch_buffers():
            first = modeling_beats._scratch("feed_forward", reference, 10)
            again = modeling_beats._scratch("feed_forward", reference, 8)
            other = modeling_beats._scratch("gated_bias", reference, 8)
            grown = modeling_beats._scratch("feed_forward", reference, 20)
        assert again.data_ptr() == first.data_ptr() and again.numel() == 8
        assert other.data_ptr() != first.data_ptr()
        assert grown.numel() == 20
        outside = modeling_beats._scratch("feed_forward", reference, 10)
        assert outside.data_ptr() != grown.data_ptr()

    def test_feed_forward_keeps_hooks_and_replaced_layers_on_the_shared_buffer_path(self):
        # The shared-buffer path calls fc1's matrix product directly; a hook on fc1 (or an adapter that replaces it)
        # must still take effect, as it does with gradients on.
        model = make_model(BeatsModel).eval()
        input_values, _ = padded_batch()
        feed_forward = model.encoder.layers[0].feed_forward
        handle = feed_forward.fc1.register_forward_hook(lambda module, args, output: output + 1.0)
        try:
            with torch.no_grad():
                hooked = model(input_values).last_hidden_state
            hooked_with_grad = model(input_values).last_hidden_state.detach()
        finally:
            handle.remove()
        # (The attention takes a different path with gradients on, hence a tolerance; ignoring the hook moves the
        # outputs by far more.)
        torch.testing.assert_close(hooked, hooked_with_grad, atol=1e-5, rtol=0)
        with torch.no_grad():
            plain = model(input_values).last_hidden_state
        assert (hooked - plain).abs().max() > 1e-2

        class ShiftedLinear(torch.nn.Linear):  # stands in for an adapter that replaces the layer
            def forward(self, hidden_states):
                return super().forward(hidden_states) + 1.0

        original = feed_forward.fc1
        feed_forward.fc1 = ShiftedLinear(original.in_features, original.out_features)
        feed_forward.fc1.load_state_dict(original.state_dict())
        with torch.no_grad():
            replaced = model(input_values).last_hidden_state
        torch.testing.assert_close(replaced, hooked, atol=1e-5, rtol=0)


class TestReviewedEdgeCases:
    """Behaviours found missing in a review: each test failed before its fix."""

    @pytest.mark.parametrize("head", ["multi_label", "masked_audio_modeling"])
    def test_trainer_gradient_accumulation_keeps_the_loss_scale(self, head, tmp_path):
        # The losses are batch means: with accumulation the Trainer must divide by the steps itself (it does not
        # for models that take loss kwargs), or the loss and the gradients come out `steps` times too large.
        from transformers import Trainer, TrainingArguments

        num_clips, generator = 8, torch.Generator().manual_seed(0)
        input_values = torch.randn(num_clips, 64, 32, generator=generator)
        if head == "multi_label":
            model_class, overrides = BeatsForAudioClassification, {"num_labels": NUM_LABELS}
            overrides["problem_type"] = "multi_label_classification"
            labels = (torch.rand(num_clips, NUM_LABELS, generator=generator) > 0.5).float()
            items = [{"input_values": x, "labels": y} for x, y in zip(input_values, labels)]
        else:
            model_class, overrides = BeatsForMaskedAudioModeling, {}
            masks = compute_random_patch_mask(torch.ones(num_clips, 8, dtype=torch.bool), generator=generator)
            labels = torch.randint(0, 16, (num_clips, 8), generator=generator)
            items = [
                {"input_values": x, "bool_masked_pos": m, "labels": y} for x, m, y in zip(input_values, masks, labels)
            ]
        losses = []
        for steps in (1, 4):
            args = TrainingArguments(
                output_dir=str(tmp_path / str(steps)),
                per_device_train_batch_size=num_clips // steps,
                gradient_accumulation_steps=steps,
                max_steps=1,
                learning_rate=0.0,
                report_to=[],
                use_cpu=True,
                save_strategy="no",
                disable_tqdm=True,
            )
            model = make_model(model_class, **overrides)
            losses.append(Trainer(model=model, args=args, train_dataset=items).train().training_loss)
        assert losses[1] == pytest.approx(losses[0], rel=1e-4)

    def test_hooks_on_the_feed_forward_see_each_layer_own_activations(self):
        # Without autograd the feed-forward reuses one buffer across layers; a hook on fc2 (whose input is that
        # buffer) must get each layer's own values, not a buffer the next layer overwrites.
        model = make_model(BeatsModel, num_hidden_layers=3)
        input_values, _ = padded_batch((64, 64))

        def fc2_inputs(grad: bool) -> list[torch.Tensor]:
            seen = []
            hooks = [
                layer.feed_forward.fc2.register_forward_hook(lambda module, args, output: seen.append(args[0]))
                for layer in model.encoder.layers
            ]
            with torch.set_grad_enabled(grad):
                model(input_values)
            for hook in hooks:
                hook.remove()
            return [tensor.detach() for tensor in seen]

        for without_grad, with_grad in zip(fc2_inputs(False), fc2_inputs(True)):
            torch.testing.assert_close(without_grad, with_grad)

    def test_classifier_labels_are_checked_against_problem_type(self):
        model = make_model(BeatsForAudioClassification, num_labels=NUM_LABELS)
        input_values = torch.randn(2, 64, 32)
        model.config.problem_type = "multi_label_classification"
        with pytest.raises(ValueError, match="problem_type='multi_label_classification'.*multi-hot floats"):
            model(input_values, labels=torch.tensor([0, 3]))
        model.config.problem_type = "single_label_classification"
        with pytest.raises(ValueError, match="problem_type='single_label_classification'.*class indices"):
            model(input_values, labels=torch.zeros(2, NUM_LABELS))
        with pytest.raises(ValueError, match="an integer dtype"):
            model(input_values, labels=torch.tensor([0.0, 3.0]))
        regression = make_model(BeatsForAudioClassification, num_labels=1)
        with pytest.raises(ValueError, match="regression targets"):
            regression(input_values, labels=torch.tensor([1, 2]))
        assert regression(input_values, labels=torch.tensor([1.0, 2.0])).loss.isfinite()

    def test_random_projection_labels_do_not_depend_on_precision(self):
        tokenizer = make_model(BeatsRandomProjectionTokenizer)
        input_values, attention_mask = padded_batch()
        expected = tokenizer(input_values, attention_mask=attention_mask).token_ids
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(tokenizer(input_values, attention_mask=attention_mask).token_ids, expected)
        halved = copy.deepcopy(tokenizer).to(torch.bfloat16)
        # Cast buffers round the projection: the labels may move, but the model must run and return valid labels.
        labels = halved(input_values.to(torch.bfloat16), attention_mask=attention_mask).token_ids
        assert labels.shape == expected.shape and torch.equal(labels == -100, expected == -100)

    def test_masked_audio_modeling_refuses_labels_out_of_range_and_an_empty_target(self):
        model = make_model(BeatsForMaskedAudioModeling)
        input_values, attention_mask = padded_batch()
        patch_mask = compute_patch_attention_mask(attention_mask, 64, model.config)
        masked = compute_random_patch_mask(patch_mask, generator=torch.Generator().manual_seed(0))
        labels = torch.randint(0, 16, masked.shape, generator=torch.Generator().manual_seed(1))
        kwargs = {"attention_mask": attention_mask, "bool_masked_pos": masked}
        for bad in (16, -3):
            wrong = labels.clone()
            wrong[masked] = bad
            with pytest.raises(ValueError, match=r"in \[0, 16\)"):
                model(input_values, labels=wrong, **kwargs)
        with pytest.raises(ValueError, match="integer tokenizer labels"):
            model(input_values, labels=labels.float(), **kwargs)
        with pytest.raises(ValueError, match="No patch is both masked and labelled"):
            model(input_values, labels=labels.masked_fill(masked, -100), **kwargs)
        only_padding = ~patch_mask
        only_padding[:, 0] = False  # clip 0 has no padding: some patch must stay masked for the encoder's check
        with pytest.raises(ValueError, match="No patch is both masked and labelled"):
            model(input_values, labels=labels, attention_mask=attention_mask, bool_masked_pos=only_padding)
        # Labels at visible patches may be anything: they are ignored.
        visible_junk = labels.masked_fill(~masked, 999)
        assert model(input_values, labels=visible_junk, **kwargs).loss.isfinite()

    def test_sdpa_warns_that_it_returns_no_attentions(self):
        from transformers.testing_utils import CaptureLogger
        from transformers.utils import logging as hf_logging

        model = make_model(BeatsModel, attn_implementation="sdpa")
        hf_logging.warning_once.cache_clear()  # an earlier test may have triggered the one-time warning
        logger = hf_logging.get_logger("transformers.integrations.sdpa_attention")
        with CaptureLogger(logger) as captured:
            outputs = model(torch.randn(1, 64, 32), output_attentions=True)
        assert outputs.attentions == () and "does not support `output_attentions=True`" in captured.out
        eager = make_model(BeatsModel, attn_implementation="eager")
        assert len(eager(torch.randn(1, 64, 32), output_attentions=True).attentions) == 2

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"num_attention_heads": 3}, r"hidden_size \(32\) must be divisible by num_attention_heads \(3\)"),
            ({"deep_norm": True, "layer_norm_first": True}, "deep_norm=True requires post-LN layers"),
            ({"num_hidden_layers": 0}, r"num_hidden_layers \(0\) must be a positive integer"),
            ({"num_attention_heads": 0}, r"num_attention_heads \(0\) must be a positive integer"),
            ({"intermediate_size": 0}, r"intermediate_size \(0\) must be a positive integer"),
            ({"patch_embedding_dim": 0}, r"patch_embedding_dim \(0\) must be a positive integer"),
            ({"num_conv_pos_embeddings": 0}, r"num_conv_pos_embeddings \(0\) must be a positive integer"),
            ({"codebook_size": 0}, r"codebook_size \(0\) must be a positive integer"),
            ({"num_labels": 0}, r"num_labels \(0\) must be a positive integer"),
            ({"layer_norm_eps": -1e-5}, r"layer_norm_eps \(-1e-05\) must be positive"),
            ({"layer_wise_gradient_decay_ratio": 0.0}, r"layer_wise_gradient_decay_ratio \(0.0\) must be positive"),
        ],
    )
    def test_config_refuses_sizes_the_model_cannot_be_built_with(self, overrides, message):
        from huggingface_hub.errors import StrictDataclassError

        # transformers' strict config dataclass wraps the ValueError of validate_architecture.
        with pytest.raises((ValueError, StrictDataclassError), match=message):
            tiny_config(**overrides)


class TestCompileAndExport:
    """`torch.compile(fullgraph=True)` and `torch.export` trace the inference models without a graph break."""

    @pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
    @pytest.mark.parametrize("model_class", [BeatsModel, BeatsForAudioClassification, BeatsTokenizerModel])
    @pytest.mark.parametrize("padded", [True, False])
    def test_fullgraph_compile_matches_eager(self, model_class, attn_implementation, padded):
        if model_class is BeatsTokenizerModel and attn_implementation == "sdpa":
            pytest.skip("the tokenizer runs the same encoder; one attention implementation is enough")
        torch._dynamo.reset()
        model = make_model(model_class, attn_implementation=attn_implementation)
        input_values, attention_mask = padded_batch() if padded else padded_batch(valid_frames=(48, 48))
        # "aot_eager" traces the whole graph (fullgraph=True fails on any break) without inductor's C++ build.
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        with torch.no_grad():
            expected = model(input_values, attention_mask=attention_mask)
            actual = compiled(input_values, attention_mask=attention_mask)
        name = {BeatsModel: "last_hidden_state", BeatsForAudioClassification: "logits"}.get(model_class, "quantized")
        # Compiled, an unpadded batch keeps its (all-true) mask: the masked mean rounds differently from the mean.
        torch.testing.assert_close(actual[name], expected[name], atol=1e-6, rtol=0)
        if model_class is BeatsTokenizerModel:
            assert torch.equal(actual.token_ids, expected.token_ids)

    @pytest.mark.parametrize("layerdrop", [0.0, 0.5])
    def test_compiled_model_trains_like_eager(self, layerdrop):
        torch._dynamo.reset()
        model = make_model(BeatsForAudioClassification, layerdrop=layerdrop).train()
        model.config.problem_type = "single_label_classification"
        input_values, attention_mask = padded_batch()
        labels = torch.tensor([0, 1, 0])
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        parameters = list(model.parameters())
        # With layer drop, seeds 0-3 drop each of the two layers in some draws and keep it in others.
        for seed in range(4) if layerdrop else range(1):
            torch.manual_seed(seed)
            eager_loss = model(input_values, attention_mask=attention_mask, labels=labels).loss
            eager_grads = torch.autograd.grad(eager_loss, parameters, allow_unused=True)
            torch.manual_seed(seed)
            compiled_loss = compiled(input_values, attention_mask=attention_mask, labels=labels).loss
            compiled_grads = torch.autograd.grad(compiled_loss, parameters, allow_unused=True)
            torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-6, rtol=0)
            for parameter, eager_grad, compiled_grad in zip(parameters, eager_grads, compiled_grads):
                # A layer skipped eagerly gets no gradient; compiled, it runs and gets zeros.
                expected = torch.zeros_like(parameter) if eager_grad is None else eager_grad
                actual = torch.zeros_like(parameter) if compiled_grad is None else compiled_grad
                torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)

    def test_exported_classifier_gives_the_eager_logits_for_any_mask(self):
        model = make_model(BeatsForAudioClassification)
        input_values, attention_mask = padded_batch()
        exported = torch.export.export(model, (input_values,), {"attention_mask": attention_mask}).module()
        other_values, other_mask = padded_batch(valid_frames=(40, 64, 64), seed=1)
        with torch.no_grad():
            for values, mask in ((input_values, attention_mask), (other_values, other_mask)):
                expected = model(values, attention_mask=mask).logits
                torch.testing.assert_close(
                    exported(values, attention_mask=mask)["logits"], expected, atol=1e-6, rtol=0
                )

    def test_value_checks_still_run_eagerly(self):
        model = make_model(BeatsModel)
        input_values, attention_mask = padded_batch()
        attention_mask[0, 5] = 0  # a hole in the first clip: not right padding
        with pytest.raises(ValueError, match="right padding"):
            model(input_values, attention_mask=attention_mask)


class TestFlexAttention:
    def test_flex_attention_matches_eager_in_inference(self):
        eager = make_model(BeatsModel, attn_implementation="eager")
        flex = make_model(BeatsModel, attn_implementation="flex_attention")
        input_values, attention_mask = padded_batch()
        with torch.no_grad():
            expected = eager(input_values, attention_mask=attention_mask).last_hidden_state
            actual = flex(input_values, attention_mask=attention_mask).last_hidden_state
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)

    def test_flex_attention_with_gradients_on_cpu_says_what_to_do(self):
        model = make_model(BeatsModel, attn_implementation="flex_attention")
        input_values, _ = padded_batch()
        with pytest.raises(NotImplementedError, match="no backward pass on CPU.*torch.no_grad"):
            model(input_values)

    def test_flex_attention_refuses_gradients_through_the_values_alone(self):
        # LoRA on v_proj only: in the first layer neither the queries nor the bias need gradients.
        model = make_model(BeatsModel, attn_implementation="flex_attention").requires_grad_(False)
        for layer in model.encoder.layers:
            layer.self_attn.v_proj.requires_grad_(True)
        input_values, _ = padded_batch()
        with pytest.raises(NotImplementedError, match="no backward pass on CPU.*torch.no_grad"):
            model(input_values)
