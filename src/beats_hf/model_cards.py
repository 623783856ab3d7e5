# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Model cards (Hub `README.md`) for BEATs checkpoints converted from the official release.

Everything a card says about a checkpoint comes from one metadata table, [`OFFICIAL_CHECKPOINTS`], keyed by the
official file name: which iteration it is, which tokenizer (and tokenizer teacher) produced its pre-training labels,
the data it saw, and the published results of the BEATs paper (Chen et al., ICML 2023, Tables 1 and 2).

The same generator serves two purposes:

- `convert/convert_original_beats.py` writes the card of each converted folder, with a provenance section (source
  file, SHA-256, converter version, the self-verification numbers);
- the repository's `model_cards/` folder holds the card of each of the 19 released checkpoints without provenance
  (there is no real file to describe there: that section says it is filled in at conversion time). A test
  regenerates them and compares bytes; refresh them with `python -m beats_hf.model_cards --write model_cards/`.

Hub repository names follow a fixed scheme derived from the official file names (see [`repo_name_for_checkpoint`]);
they live under a namespace that is unknown until upload, written as [`NAMESPACE_PLACEHOLDER`] in the committed
cards and replaced by the real owner when a folder is pushed with `--push-to-hub`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CheckpointKind = Literal["pretrained", "finetuned", "tokenizer"]

# Written where the Hub owner of the converted repositories goes; `--push-to-hub OWNER/NAME` replaces it by OWNER.
NAMESPACE_PLACEHOLDER = "<namespace>"
# Hub id used in the `datasets:` metadata for AudioSet (Gemmeke et al., 2017), which has no official Hub copy: a
# community mirror of the same clips and labels. The card body names the dataset itself.
AUDIOSET_HUB_DATASET = "agkphysics/AudioSet"
PAPER_URL = "https://arxiv.org/abs/2212.09058"
OFFICIAL_CODE_URL = "https://github.com/microsoft/unilm/tree/master/beats"
CITATION = """@inproceedings{chen2023beats,
  title     = {{BEATs}: Audio Pre-Training with Acoustic Tokenizers},
  author    = {Chen, Sanyuan and Wu, Yu and Wang, Chengyi and Liu, Shujie and Tompkins, Daniel and Chen, Zhuo and
               Che, Wanxiang and Yu, Xiangzhan and Wei, Furu},
  booktitle = {Proceedings of the 40th International Conference on Machine Learning (ICML)},
  series    = {Proceedings of Machine Learning Research},
  volume    = {202},
  publisher = {PMLR},
  year      = {2023}
}"""


@dataclass(frozen=True)
class PublishedResult:
    """One number reported in the BEATs paper for a pre-trained model (after fine-tuning it on `task`)."""

    task: str
    metric: str
    value: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class PretrainedModelInfo:
    """What the paper says about one pre-trained BEATs model (one row of the release table)."""

    key: str  # official name stem without the "BEATs_" prefix, e.g. "iter3_plus_AS2M"
    title: str  # e.g. "BEATs iter3+ (AS-2M tokenizer teacher)"
    iteration: str
    tokenizer: str  # the tokenizer that produced this model's pre-training labels
    tokenizer_teacher: str
    supervised_data_in_pretraining: str
    results: tuple[PublishedResult, ...]


@dataclass(frozen=True)
class CheckpointInfo:
    """One released file: its kind, its Hub repository name and the pre-trained model it belongs to."""

    file_name: str
    kind: CheckpointKind
    repo_name: str
    model: PretrainedModelInfo
    fine_tuning_run: str | None = None  # "cpt1" / "cpt2" for fine-tuned checkpoints

    @property
    def parent_repo_name(self) -> str | None:
        """Repository name of the pre-trained model a fine-tuned checkpoint starts from."""
        return f"beats-{_slug(self.model.key)}" if self.kind == "finetuned" else None


_T1 = "Table 1"
_T2 = "Table 2"
_T12 = "Tables 1 and 2"


def _audio_results(as2m, as20k, esc50, source=_T12) -> tuple[PublishedResult, ...]:
    return (
        PublishedResult("AudioSet-2M (AS-2M)", "mAP", as2m, source),
        PublishedResult("AudioSet-20K (AS-20K)", "mAP", as20k, source),
        PublishedResult("ESC-50", "accuracy", esc50, source),
    )


def _speech_results(ks1, ks2, er) -> tuple[PublishedResult, ...]:
    return (
        PublishedResult("Speech Commands V1 (KS1)", "accuracy", ks1, _T1),
        PublishedResult("Speech Commands V2 (KS2)", "accuracy", ks2, _T1),
        PublishedResult("IEMOCAP emotion recognition (ER)", "accuracy", er, _T1),
    )


PRETRAINED_MODELS: dict[str, PretrainedModelInfo] = {
    info.key: info
    for info in (
        PretrainedModelInfo(
            key="iter1",
            title="BEATs iter1",
            iteration="1",
            tokenizer="the random-projection tokenizer (cold start; not released)",
            tokenizer_teacher="none (random projection)",
            supervised_data_in_pretraining="none",
            results=_audio_results("47.9", "36.0", "94.0") + _speech_results("98.0", "98.3", "65.9"),
        ),
        PretrainedModelInfo(
            key="iter2",
            title="BEATs iter2",
            iteration="2",
            tokenizer="the self-distilled tokenizer `Tokenizer_iter2`",
            tokenizer_teacher="BEATs iter1 (self-supervised)",
            supervised_data_in_pretraining="none",
            results=_audio_results("48.1", "38.3", "95.1") + _speech_results("97.7", "98.3", "66.1"),
        ),
        PretrainedModelInfo(
            key="iter3",
            title="BEATs iter3",
            iteration="3",
            tokenizer="the self-distilled tokenizer `Tokenizer_iter3`",
            tokenizer_teacher="BEATs iter2 (self-supervised)",
            supervised_data_in_pretraining="none",
            results=_audio_results("48.0", "38.3", "95.6") + _speech_results("97.7", "98.3", "64.5"),
        ),
        PretrainedModelInfo(
            key="iter3_plus_AS20K",
            title="BEATs iter3+ (AS-20K tokenizer teacher)",
            iteration="3+",
            tokenizer="the self-distilled tokenizer `Tokenizer_iter3_plus_AS20K`",
            tokenizer_teacher="BEATs iter2 fine-tuned on AudioSet-20K",
            supervised_data_in_pretraining="AudioSet-20K labels, through the tokenizer teacher",
            results=(
                PublishedResult("AudioSet-2M (AS-2M)", "mAP", "48.0", _T2),
                PublishedResult("AudioSet-20K (AS-20K)", "mAP", "38.9", _T12),
                PublishedResult(
                    "ESC-50", "accuracy", "96.2", _T2, "without additional supervised pre-training on AS-2M"
                ),
            ),
        ),
        PretrainedModelInfo(
            key="iter3_plus_AS2M",
            title="BEATs iter3+ (AS-2M tokenizer teacher)",
            iteration="3+",
            tokenizer="the self-distilled tokenizer `Tokenizer_iter3_plus_AS2M`",
            tokenizer_teacher="BEATs iter2 fine-tuned on AudioSet-2M",
            supervised_data_in_pretraining="AudioSet-2M labels, through the tokenizer teacher",
            results=(
                PublishedResult("AudioSet-2M (AS-2M)", "mAP", "48.6", _T12),
                PublishedResult(
                    "AudioSet-20K (AS-20K)",
                    "mAP",
                    "41.8",
                    _T2,
                    "AS-2M supervised data used in pre-training, AS-20K in fine-tuning",
                ),
                PublishedResult(
                    "ESC-50", "accuracy", "97.1", _T2, "without additional supervised pre-training on AS-2M"
                ),
                PublishedResult("ESC-50", "accuracy", "98.1", _T1, "with additional supervised training on AS-2M"),
            )
            + _speech_results("98.1", "98.1", "65.0"),
        ),
    )
}

_BASE_PATTERN = r"iter\d+(?:_plus_AS(?:2M|20K))?"
_MODEL_FILE = re.compile(rf"BEATs_(?P<base>{_BASE_PATTERN})(?:_finetuned_on_(?P<data>AS2M|AS20K)_(?P<run>cpt\d+))?")
_TOKENIZER_FILE = re.compile(rf"Tokenizer_(?P<base>{_BASE_PATTERN})")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _official_checkpoints() -> dict[str, CheckpointInfo]:
    table: dict[str, CheckpointInfo] = {}
    for key, model in PRETRAINED_MODELS.items():
        base = _slug(key)
        table[f"BEATs_{key}"] = CheckpointInfo(f"BEATs_{key}.pt", "pretrained", f"beats-{base}", model)
        for run in ("cpt1", "cpt2"):
            stem = f"BEATs_{key}_finetuned_on_AS2M_{run}"
            table[stem] = CheckpointInfo(f"{stem}.pt", "finetuned", f"beats-{base}-ft-as2m-{run}", model, run)
        if key != "iter1":  # the iteration-1 tokenizer is a random projection and was not released
            table[f"Tokenizer_{key}"] = CheckpointInfo(
                f"Tokenizer_{key}.pt", "tokenizer", f"beats-tokenizer-{base}", model
            )
    return table


# The 19 files of the official release (microsoft/unilm `beats/README.md`), keyed by file name without `.pt`.
OFFICIAL_CHECKPOINTS: dict[str, CheckpointInfo] = _official_checkpoints()


def checkpoint_info(file_name: str | Path) -> CheckpointInfo | None:
    """The metadata of an official release file (by its file name, with or without `.pt`), or `None`."""
    return OFFICIAL_CHECKPOINTS.get(_stem(file_name))


def _stem(file_name: str | Path) -> str:
    name = Path(file_name).name
    return name[: -len(".pt")] if name.endswith(".pt") else name


def repo_name_for_checkpoint(file_name: str | Path) -> tuple[str, bool]:
    """
    Output folder / Hub repository name of an official checkpoint file, and whether the name follows the official
    naming scheme. The scheme:

    - `BEATs_<base>.pt` -> `beats-<base>`, e.g. `BEATs_iter3_plus_AS2M.pt` -> `beats-iter3-plus-as2m`;
    - `BEATs_<base>_finetuned_on_<data>_<run>.pt` -> `beats-<base>-ft-<data>-<run>`, e.g.
      `BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt` -> `beats-iter3-plus-as2m-ft-as2m-cpt2`;
    - `Tokenizer_<base>.pt` -> `beats-tokenizer-<base>`, e.g. `Tokenizer_iter3_plus_AS2M.pt` ->
      `beats-tokenizer-iter3-plus-as2m`;

    where `<base>` is `iter<N>` or `iter<N>_plus_AS2M` / `iter<N>_plus_AS20K`, lower-cased with `_` -> `-`. Any other
    file name becomes a slug of itself (lower case, runs of other characters -> `-`) and the second value is False.
    """
    stem = _stem(file_name)
    match = _MODEL_FILE.fullmatch(stem)
    if match:
        name = f"beats-{_slug(match['base'])}"
        if match["data"]:
            name += f"-ft-{match['data'].lower()}-{match['run']}"
        return name, True
    match = _TOKENIZER_FILE.fullmatch(stem)
    if match:
        return f"beats-tokenizer-{_slug(match['base'])}", True
    return _slug(stem) or "beats-checkpoint", False


@dataclass
class CardProvenance:
    """Conversion facts written into a card: the source file and what the converter checked."""

    source_file: str
    sha256: str
    size_bytes: int
    converter: str
    checks: dict[str, str] = field(default_factory=dict)
    num_parameters: int | None = None
    num_labels: int | None = None
    labels_mapped: int | None = None
    first_labels: Sequence[str] = ()


def _yaml_list(key: str, values: Sequence[str]) -> list[str]:
    return [f"{key}:"] + [f"- {value}" for value in values]


def _front_matter(kind: CheckpointKind, info: CheckpointInfo | None, namespace: str) -> str:
    lines = ["---", "license: mit", "library_name: transformers"]
    lines.append(f"pipeline_tag: {'audio-classification' if kind == 'finetuned' else 'feature-extraction'}")
    tags = ["audio", "beats", "custom_code"]
    tags += {
        "finetuned": ["audio-classification"],
        "pretrained": ["self-supervised-learning", "audio-representation"],
        "tokenizer": ["audio-tokenizer", "acoustic-tokenizer"],
    }[kind]
    # The data and the metric are known for the official files only (all AudioSet, fine-tuned ones scored by mAP): a
    # checkpoint under another name may have been trained on anything, and the Hub would list it under AudioSet.
    if kind == "finetuned" and info is not None:
        tags.append("audioset")
    lines += _yaml_list("tags", tags)
    if info is not None:
        lines += _yaml_list("datasets", [AUDIOSET_HUB_DATASET])
    if kind == "finetuned" and info is not None:
        lines += _yaml_list("metrics", ["map"])
        if info.parent_repo_name is not None:
            lines.append(f"base_model: {namespace}/{info.parent_repo_name}")
    lines.append("---")
    return "\n".join(lines)


def _title(kind: CheckpointKind, info: CheckpointInfo | None, repo_name: str) -> str:
    if info is None:
        return f"# {repo_name} (BEATs {kind} checkpoint)"
    if kind == "finetuned":
        return f"# {info.model.title}, fine-tuned on AudioSet-2M ({info.fine_tuning_run})"
    if kind == "tokenizer":
        return f"# BEATs acoustic tokenizer of {info.model.title}"
    return f"# {info.model.title} (pre-trained)"


def _description(kind: CheckpointKind, info: CheckpointInfo | None) -> str:
    paper = f"[BEATs: Audio Pre-Training with Acoustic Tokenizers]({PAPER_URL}) (Chen et al., ICML 2023)"
    if info is None:
        return (
            f"A BEATs {kind} checkpoint from {paper}, converted from a file in the official format of "
            f"[microsoft/unilm]({OFFICIAL_CODE_URL}). Its file name is not one of the 19 files of the official "
            "release, so this card cannot say which iteration it is or which results apply to it."
        )
    model = info.model
    source = f"the official checkpoint `{info.file_name}` released with {paper} ([code]({OFFICIAL_CODE_URL}))"
    facts = [
        f"- **Iteration:** {model.iteration} of the BEATs iterative pre-training.",
        f"- **Pre-training labels:** produced by {model.tokenizer}.",
        f"- **Tokenizer teacher:** {model.tokenizer_teacher}.",
        "- **Self-supervised data:** AudioSet-2M audio (about 2 million 10-second clips), no labels.",
        f"- **Supervised data used during pre-training:** {model.supervised_data_in_pretraining}.",
    ]
    if kind == "pretrained":
        lead = (
            f"The self-supervised BEATs encoder of iteration {model.iteration}, converted from {source}. It turns "
            "16 kHz audio into one 768-dimensional vector per 16 x 16 patch of a 128-bin log-mel filter bank "
            "(8 patches per 160 ms). Use it as an audio encoder or fine-tune it for audio classification."
        )
    elif kind == "finetuned":
        lead = (
            f"{model.title} fine-tuned on AudioSet-2M for 527-class multi-label audio tagging (fine-tuning run "
            f"`{info.fine_tuning_run}`), converted from {source}. `logits` are one score per AudioSet class; a "
            "sigmoid turns them into the probabilities the official code returns."
        )
        facts.append(
            "- **Fine-tuning data:** AudioSet-2M (the balanced and unbalanced training sets, 527 classes). The "
            "release does not say how the runs `cpt1` and `cpt2` differ."
        )
    else:
        lead = (
            f"The acoustic tokenizer that produced the discrete pre-training labels of {model.title}, converted "
            f"from {source}. It maps every 16 x 16 filter-bank patch to one of 1024 codes (cosine nearest "
            "neighbour in a 256-dimensional codebook): the targets of BEATs masked audio modelling."
        )
        facts = [
            f"- **Used for:** the pre-training of {model.title}.",
            f"- **Teacher it was distilled from:** {model.tokenizer_teacher}.",
            "- **Training data:** AudioSet-2M audio"
            + (
                f"; the teacher saw {model.supervised_data_in_pretraining.split(',')[0]}."
                if model.supervised_data_in_pretraining != "none"
                else "."
            ),
        ]
    return lead + "\n\n" + "\n".join(facts)


def _results_section(kind: CheckpointKind, info: CheckpointInfo | None) -> str:
    lines = ["## Published results", ""]
    if info is None:
        lines.append("No published results are known for this checkpoint.")
        return "\n".join(lines)
    model = info.model
    if kind == "finetuned":
        intro = (
            f"The BEATs paper reports these results for {model.title} after fine-tuning on each task. Its AS-2M "
            "number comes from an AS-2M fine-tuning of the same pre-trained model; the paper does not say whether "
            f"the released run `{info.fine_tuning_run}` is the one it measured."
        )
    elif kind == "tokenizer":
        intro = (
            f"The paper evaluates tokenizers through the model pre-trained on their labels: {model.title}, "
            "fine-tuned on each task."
        )
    else:
        intro = f"Reported in the BEATs paper for {model.title}, fine-tuned on each task (90M parameters)."
    lines += [intro, "", "| task | metric | result | source | note |", "|---|---|---|---|---|"]
    for result in model.results:
        lines.append(f"| {result.task} | {result.metric} | {result.value} | {result.source} | {result.note} |")
    lines += [
        "",
        "These are the authors' numbers, not re-measured after conversion. Third parties have reported lower "
        "AudioSet mAP with the released fine-tuned checkpoints (microsoft/unilm issue #1012) and lower ESC-50 "
        "accuracy with their own fine-tuning (#1112).",
    ]
    return "\n".join(lines)


def _usage_section(kind: CheckpointKind, repo_id: str) -> str:
    repo_line = f'repo = "{repo_id}"'
    load_fe = "feature_extractor = AutoFeatureExtractor.from_pretrained(repo, trust_remote_code=True)"
    audio = (
        "# 16 kHz mono audio in [-1, 1], e.g. `audio, _ = soundfile.read(path)`\n"
        "audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000 * 10).astype(np.float32)"
    )
    lines = [
        "## How to use",
        "",
        "The model code ships with this repository (`trust_remote_code=True`, needs only `torch` and "
        "`transformers>=5.23`). With the `beats_hf` package installed, `import beats_hf` registers the same "
        "classes locally and `trust_remote_code` is not needed.",
        "",
    ]
    if kind == "finetuned":
        lines += [
            "Audio tagging with the pipeline (multi-label: scores are sigmoids, they do not sum to 1):",
            "",
            "```python",
            "import numpy as np",
            "from transformers import pipeline",
            "",
            repo_line,
            'classifier = pipeline("audio-classification", model=repo, trust_remote_code=True)',
            audio,
            "# A file name is decoded by the ffmpeg program; decoded audio needs nothing more, at any sampling rate:",
            'print(classifier("sound.wav", top_k=5))',
            'print(classifier({"array": audio, "sampling_rate": 16000}, top_k=5))',
            "```",
            "",
            "The same with the model directly:",
            "",
            "```python",
            "import numpy as np",
            "import torch",
            "from transformers import AutoFeatureExtractor, AutoModelForAudioClassification",
            "",
            repo_line,
            load_fe,
            "model = AutoModelForAudioClassification.from_pretrained(repo, trust_remote_code=True).eval()",
            "",
            audio,
            'inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")',
            "with torch.no_grad():",
            "    probabilities = model(**inputs).logits.sigmoid()[0]",
            "for score, index in zip(*probabilities.topk(5)):",
            '    print(f"{model.config.id2label[index.item()]}: {score:.3f}")',
            "```",
            "",
        ]
    if kind in ("pretrained", "finetuned"):
        lines += [
            "Patch features and a pooled clip embedding"
            + (" from the encoder of this classifier:" if kind == "finetuned" else ":"),
            "",
            "```python",
            "import numpy as np",
            "import torch",
            "from transformers import AutoFeatureExtractor, AutoModel",
            "",
            repo_line,
            load_fe,
            "encoder = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()",
            "",
            audio,
            'inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")',
            "with torch.no_grad():",
            "    outputs = encoder(**inputs)",
            "patches = outputs.last_hidden_state  # (batch, patches, 768); 8 patches per 160 ms, time-major",
            "mask = outputs.patch_attention_mask.unsqueeze(-1).to(patches.dtype)  # 1 = audio, 0 = padding",
            "clip_embedding = (patches * mask).sum(1) / mask.sum(1)  # (batch, 768)",
            "```",
            "",
        ]
    if kind == "tokenizer":
        lines += [
            "Discrete acoustic tokens (one code in 0..1023 per patch; padding patches get -100). There is no "
            "`Auto` class for tokenizers: use `beats_hf`, or fetch the class from this repository's code.",
            "",
            "```python",
            "import numpy as np",
            "import torch",
            "from transformers import AutoFeatureExtractor",
            "from transformers.dynamic_module_utils import get_class_from_dynamic_module",
            "",
            repo_line,
            "# runs this repository's code, like trust_remote_code=True; with the package installed use",
            "# `from beats_hf import BeatsTokenizerModel` instead",
            'BeatsTokenizerModel = get_class_from_dynamic_module("modeling_beats.BeatsTokenizerModel", repo)',
            load_fe,
            "tokenizer = BeatsTokenizerModel.from_pretrained(repo).eval()",
            "",
            audio,
            'inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")',
            "with torch.no_grad():",
            "    tokens = tokenizer(**inputs).token_ids  # (batch, patches)",
            "```",
            "",
        ]
    else:
        lines += [
            "Discrete tokens come from the matching tokenizer checkpoint (`beats-tokenizer-*`) and "
            "`BeatsTokenizerModel`.",
            "",
        ]
    lines += [
        "Batches of clips of different lengths: pass the `attention_mask` the feature extractor returns. Unlike "
        "the official code, a padded clip then gives the same outputs as the clip on its own (the official "
        "patch-level padding mask is wrong at the boundary of every padded clip).",
    ]
    return "\n".join(lines)


def _labels_section(provenance: CardProvenance | None) -> str:
    lines = [
        "## Labels",
        "",
        "`config.id2label` follows the class order of the checkpoint's own `label_dict`, which is not the order of "
        "AudioSet's `class_labels_indices.csv` (microsoft/unilm issue #1012). Labels that are AudioSet identifiers, "
        "such as `/m/09x0r`, were replaced by their display names (`Speech`) from the AudioSet label table shipped "
        "with `beats_hf` (CC BY 4.0, Google); the labels as the checkpoint stores them are kept in "
        '`config.original_checkpoint["label_dict"]`.',
    ]
    if provenance is not None and provenance.num_labels is not None:
        lines += [
            "",
            f"This checkpoint has {provenance.num_labels} classes; {provenance.labels_mapped} of its labels were "
            "AudioSet identifiers mapped to names. The first ones, in model order: "
            + ", ".join(f"`{label}`" for label in provenance.first_labels)
            + ".",
        ]
    return "\n".join(lines)


def _provenance_section(provenance: CardProvenance | None, kind: CheckpointKind) -> str:
    lines = ["## Conversion", ""]
    if provenance is None:
        lines.append(
            "Filled in at conversion time: `convert/convert_original_beats.py` of `beats_hf` writes here the "
            "source file name, its SHA-256, the converter version and the result of the self-verification "
            "(the converted model against a forward pass computed directly from the original tensors, on a "
            "fixed synthetic test sound)."
        )
        return "\n".join(lines)
    lines += [
        f"- **Source file:** `{provenance.source_file}` ({provenance.size_bytes:,} bytes)",
        f"- **SHA-256:** `{provenance.sha256}`",
        f"- **Converter:** {provenance.converter}",
    ]
    if provenance.num_parameters is not None:
        lines.append(f"- **Parameters:** {provenance.num_parameters:,}")
    if provenance.checks:
        lines += [
            "",
            "Self-verification before writing: the converted model against a forward pass computed directly from "
            "the original tensors (independent reference code with the official names and operation order), on a "
            "fixed synthetic 2 s test sound. The converter refuses to write when a difference exceeds 1e-4 or "
            "a token differs.",
            "",
            "| check | result |",
            "|---|---|",
        ]
        lines += [f"| {name} | {value} |" for name, value in provenance.checks.items()]
    lines += [
        "",
        "Convert back to the official format with `convert/convert_hf_to_original.py` (bit-identical round trip).",
    ]
    return "\n".join(lines)


def render_model_card(
    kind: CheckpointKind,
    *,
    source_file: str | None = None,
    repo_name: str | None = None,
    namespace: str = NAMESPACE_PLACEHOLDER,
    provenance: CardProvenance | None = None,
) -> str:
    """
    The `README.md` of a converted checkpoint.

    Args:
        kind: `"pretrained"`, `"finetuned"` or `"tokenizer"`.
        source_file: official file name (selects the metadata; unknown names get a generic card).
        repo_name: Hub repository name; defaults to the naming scheme of [`repo_name_for_checkpoint`].
        namespace: Hub owner used in usage snippets and `base_model`.
        provenance: conversion facts; `None` for the committed cards (the section then says when it is filled in).
    """
    info = checkpoint_info(source_file) if source_file else None
    if info is not None and info.kind != kind:
        info = None  # an official name on a file of another kind: describe the file, not the name
    if repo_name is None:
        repo_name = repo_name_for_checkpoint(source_file)[0] if source_file else f"beats-{kind}"
    repo_id = f"{namespace}/{repo_name}"
    sections = [
        _front_matter(kind, info, namespace),
        _title(kind, info, repo_name),
        _description(kind, info),
        _results_section(kind, info),
        _usage_section(kind, repo_id),
    ]
    if kind == "finetuned":
        sections.append(_labels_section(provenance))
    sections += [
        _provenance_section(provenance, kind),
        "## License\n\nMIT, as the official BEATs code and checkpoints (Copyright (c) Microsoft Corporation). "
        "AudioSet class names: CC BY 4.0, Google.",
        f"## Citation\n\n```bibtex\n{CITATION}\n```",
    ]
    return "\n\n".join(sections) + "\n"


def replace_namespace(card: str, namespace: str) -> str:
    """Put the real Hub owner where a card has [`NAMESPACE_PLACEHOLDER`]."""
    return card.replace(f"{NAMESPACE_PLACEHOLDER}/", f"{namespace}/")


def committed_cards() -> dict[str, str]:
    """File name -> content of every card in the repository's `model_cards/` folder (19 cards and an index)."""
    cards = {}
    index = [
        "# Model cards of the official BEATs checkpoints",
        "",
        "Generated by `python -m beats_hf.model_cards --write model_cards/` (do not edit by hand; a test checks "
        "that these files match the generator). The converter writes the same card, plus the conversion "
        "provenance, as `README.md` of every converted folder. Hub names use the placeholder namespace "
        f"`{NAMESPACE_PLACEHOLDER}`.",
        "",
        "| official file | kind | Hub repository name | card |",
        "|---|---|---|---|",
    ]
    for info in OFFICIAL_CHECKPOINTS.values():
        file_name = f"{info.repo_name}.md"
        cards[file_name] = render_model_card(info.kind, source_file=info.file_name)
        index.append(f"| `{info.file_name}` | {info.kind} | `{info.repo_name}` | [{file_name}]({file_name}) |")
    cards["README.md"] = "\n".join(index) + "\n"
    return cards


def write_committed_cards(directory: str | Path) -> list[Path]:
    """(Re)write the committed cards into `directory`; returns the written paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, content in committed_cards().items():
        path = directory / file_name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale_committed_cards(directory: str | Path) -> list[str]:
    """Names of the cards in `directory` that are missing or differ from the generator's output."""
    directory = Path(directory)
    stale = []
    for file_name, content in committed_cards().items():
        path = directory / file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(file_name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m beats_hf.model_cards",
        description="Write or check the model cards of the 19 official BEATs checkpoints.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="DIR", help="write the cards into DIR (e.g. model_cards/)")
    group.add_argument("--check", metavar="DIR", help="exit 1 if the cards in DIR differ from the generator")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_committed_cards(args.write):
            print(path)
        return 0
    stale = stale_committed_cards(args.check)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m beats_hf.model_cards --write {args.check}")
        return 1
    print(f"{len(committed_cards())} cards up to date")
    return 0


__all__ = [
    "AUDIOSET_HUB_DATASET",
    "CITATION",
    "CardProvenance",
    "CheckpointInfo",
    "NAMESPACE_PLACEHOLDER",
    "OFFICIAL_CHECKPOINTS",
    "PRETRAINED_MODELS",
    "PublishedResult",
    "checkpoint_info",
    "committed_cards",
    "render_model_card",
    "replace_namespace",
    "repo_name_for_checkpoint",
    "stale_committed_cards",
    "write_committed_cards",
]

if __name__ == "__main__":
    sys.exit(main())
