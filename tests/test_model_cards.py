# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Model cards: the committed cards match the generator, their Hub metadata parses, the paper numbers are there."""

from pathlib import Path

import pytest
import yaml

from beats_hf.model_cards import (
    NAMESPACE_PLACEHOLDER,
    OFFICIAL_CHECKPOINTS,
    CardProvenance,
    committed_cards,
    main,
    render_model_card,
    replace_namespace,
    stale_committed_cards,
)

REPO = Path(__file__).resolve().parents[1]
CARDS = REPO / "model_cards"

OFFICIAL_FILES = [
    "BEATs_iter1.pt",
    "BEATs_iter1_finetuned_on_AS2M_cpt1.pt",
    "BEATs_iter1_finetuned_on_AS2M_cpt2.pt",
    "BEATs_iter2.pt",
    "BEATs_iter2_finetuned_on_AS2M_cpt1.pt",
    "BEATs_iter2_finetuned_on_AS2M_cpt2.pt",
    "Tokenizer_iter2.pt",
    "BEATs_iter3.pt",
    "BEATs_iter3_finetuned_on_AS2M_cpt1.pt",
    "BEATs_iter3_finetuned_on_AS2M_cpt2.pt",
    "Tokenizer_iter3.pt",
    "BEATs_iter3_plus_AS20K.pt",
    "BEATs_iter3_plus_AS20K_finetuned_on_AS2M_cpt1.pt",
    "BEATs_iter3_plus_AS20K_finetuned_on_AS2M_cpt2.pt",
    "Tokenizer_iter3_plus_AS20K.pt",
    "BEATs_iter3_plus_AS2M.pt",
    "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1.pt",
    "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt",
    "Tokenizer_iter3_plus_AS2M.pt",
]


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_committed_cards_match_the_generator():
    assert stale_committed_cards(CARDS) == [], "run: python -m beats_hf.model_cards --write model_cards/"
    assert sorted(p.name for p in CARDS.iterdir()) == sorted(committed_cards())
    assert main(["--check", str(CARDS)]) == 0


def test_every_official_file_has_a_card():
    assert sorted(info.file_name for info in OFFICIAL_CHECKPOINTS.values()) == sorted(OFFICIAL_FILES)
    assert len(committed_cards()) == 19 + 1  # and the index


@pytest.mark.parametrize("info", list(OFFICIAL_CHECKPOINTS.values()), ids=lambda info: info.repo_name)
def test_card_metadata(info):
    card = (CARDS / f"{info.repo_name}.md").read_text(encoding="utf-8")
    meta = _front_matter(card)
    assert meta["license"] == "mit" and meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == ("audio-classification" if info.kind == "finetuned" else "feature-extraction")
    assert {"audio", "beats", "custom_code"} <= set(meta["tags"])
    assert meta["datasets"]
    if info.kind == "finetuned":
        parent = meta["base_model"]
        assert parent == f"{NAMESPACE_PLACEHOLDER}/{info.parent_repo_name}"
        assert (CARDS / f"{parent.split('/')[1]}.md").is_file()  # the parent is one of the released models
    else:
        assert "base_model" not in meta
    assert f"`{info.file_name}`" in card
    assert "Filled in at conversion time" in card
    assert "@inproceedings{chen2023beats" in card
    assert f'repo = "{NAMESPACE_PLACEHOLDER}/{info.repo_name}"' in card


def test_published_numbers():
    card = (CARDS / "beats-iter3-plus-as2m.md").read_text(encoding="utf-8")
    for row in (
        "| AudioSet-2M (AS-2M) | mAP | 48.6 | Tables 1 and 2 |",
        "| AudioSet-20K (AS-20K) | mAP | 41.8 | Table 2 |",
        "| ESC-50 | accuracy | 97.1 | Table 2 |",
        "| ESC-50 | accuracy | 98.1 | Table 1 |",
        "| IEMOCAP emotion recognition (ER) | accuracy | 65.0 | Table 1 |",
    ):
        assert row in card
    card = (CARDS / "beats-iter1-ft-as2m-cpt2.md").read_text(encoding="utf-8")
    assert "| AudioSet-2M (AS-2M) | mAP | 47.9 | Tables 1 and 2 |" in card
    assert "| Speech Commands V1 (KS1) | accuracy | 98.0 | Table 1 |" in card
    card = (CARDS / "beats-tokenizer-iter3-plus-as20k.md").read_text(encoding="utf-8")
    assert "BEATs iter2 fine-tuned on AudioSet-20K" in card
    assert "| AudioSet-20K (AS-20K) | mAP | 38.9 | Tables 1 and 2 |" in card


def test_card_with_provenance_and_namespace():
    provenance = CardProvenance(
        source_file="BEATs_iter3_finetuned_on_AS2M_cpt1.pt",
        sha256="ab" * 32,
        size_bytes=123456,
        converter="beats_hf 0.1.0 (conversion format 1)",
        checks={"max abs diff, logits (eager)": "0.00e+00"},
        num_parameters=90717055,
        num_labels=527,
        labels_mapped=527,
        first_labels=["Speech", "Music"],
    )
    card = render_model_card(
        "finetuned", source_file=provenance.source_file, namespace="someone", provenance=provenance
    )
    assert _front_matter(card)["base_model"] == "someone/beats-iter3"
    assert "`" + "ab" * 32 + "`" in card and "123,456 bytes" in card and "90,717,055" in card
    assert "| max abs diff, logits (eager) | 0.00e+00 |" in card
    assert "527 of its labels were AudioSet identifiers" in card and "`Speech`, `Music`" in card
    assert "Filled in at conversion time" not in card
    committed = (CARDS / "beats-iter3-ft-as2m-cpt1.md").read_text(encoding="utf-8")
    assert _front_matter(replace_namespace(committed, "someone"))["base_model"] == "someone/beats-iter3"


def test_unknown_checkpoint_gets_a_generic_card():
    card = render_model_card("pretrained", source_file="my_beats.pt")
    meta = _front_matter(card)
    assert meta["pipeline_tag"] == "feature-extraction"
    assert "not one of the 19 files of the official release" in card
    assert "No published results are known" in card


@pytest.mark.parametrize("kind", ["pretrained", "finetuned", "tokenizer"])
def test_unknown_checkpoint_card_claims_no_training_data_or_metric(kind):
    # A file under another name (e.g. a model fine-tuned on ESC-50) was listed on the Hub as trained on AudioSet and
    # scored by mAP; only the official files are known to be.
    meta = _front_matter(render_model_card(kind, source_file="my_esc50_model.pt"))
    assert "datasets" not in meta and "metrics" not in meta and "base_model" not in meta
    assert "audioset" not in meta["tags"] and {"audio", "beats", "custom_code"} <= set(meta["tags"])
    # An official name on a file of another kind is described as the file, not as the name.
    other = "Tokenizer_iter3.pt" if kind != "tokenizer" else "BEATs_iter3.pt"
    assert "datasets" not in _front_matter(render_model_card(kind, source_file=other))
