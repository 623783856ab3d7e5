"""Prototype: bfloat16 on CPU (autocast, or bf16 weights) vs fp32: speed and how far the outputs move.

Command (from the repository root; ~4 min with the defaults):

    PYTHONPATH=src .venv/bin/python bench/proto_bf16.py [--repeats 3] [--batch 8] [--seconds 10]

This machine's CPU (AMD EPYC, Zen 4) has AVX512-BF16, and oneDNN/MKL bf16 GEMMs run at ~2x the fp32 rate (see
`_common.py gemm`). Variants, all sdpa attention:

- fp32 (reference);
- `torch.autocast("cpu", dtype=torch.bfloat16)` around the forward (weights stay fp32, linear layers and SDPA in
  bf16; LayerNorm/softmax/GELU kept in fp32 by autocast or by the model);
- bf16 weights: a copy of the model converted with `.to(torch.bfloat16)` and a bf16 input (everything in bf16
  except the model's explicit fp32 GELU).

Accuracy vs fp32 on the same input: max and mean |diff| of the last hidden state, relative error
||diff|| / ||fp32||, the minimum and mean per-patch cosine similarity, and the cosine similarity of the clip
embeddings (mean over patches, what a linear probe or the classifier head sees).

Writes bench/results/proto_bf16.json.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def accuracy(output: torch.Tensor, reference: torch.Tensor) -> dict:
    output, reference = output.float(), reference.float()
    diff = output - reference
    per_patch = F.cosine_similarity(output, reference, dim=-1)
    clip = F.cosine_similarity(output.mean(1), reference.mean(1), dim=-1)
    return {
        "max_abs_diff": float(diff.abs().max()),
        "mean_abs_diff": float(diff.abs().mean()),
        "relative_error": float(diff.norm() / reference.norm()),
        "min_patch_cosine": float(per_patch.min()),
        "mean_patch_cosine": float(per_patch.mean()),
        "min_clip_embedding_cosine": float(clip.min()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    C.add_quiet_flags(parser)
    args = parser.parse_args()
    C.setup_threads(2)
    C.configure_quiet(args)
    from beats_hf.feature_extraction_beats import compute_beats_fbank

    model = C.build_our_model(C.load_checkpoint(), "sdpa")
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)
    fbank = compute_beats_fbank(C.make_waveforms(args.batch, args.seconds))
    fbank_bf16 = fbank.to(torch.bfloat16)

    def fp32():
        with torch.inference_mode():
            return model(fbank).last_hidden_state

    def autocast():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(fbank).last_hidden_state

    def weights():
        with torch.inference_mode():
            return model_bf16(fbank_bf16).last_hidden_state

    variants = {"fp32": fp32, "bf16 autocast": autocast, "bf16 weights": weights}
    comparison = C.compare_variants(variants, args.warmup, args.repeats)
    reference = fp32()
    quality = {name: accuracy(fn(), reference) for name, fn in variants.items()}
    for name, q in quality.items():
        comparison["variants"][name].update(q)

    print(f"\nBeatsModel forward (sdpa), input {tuple(fbank.shape)}; accuracy vs fp32\n")
    C.print_comparison(comparison)
    print()
    C.print_table(
        [{"variant": k, **v} for k, v in quality.items()],
        [
            ("variant", "variant", ""),
            ("max_abs_diff", "max|diff|", ".3f"),
            ("mean_abs_diff", "mean|diff|", ".4f"),
            ("relative_error", "rel. error", ".2%"),
            ("min_patch_cosine", "min patch cos", ".5f"),
            ("mean_patch_cosine", "mean patch cos", ".6f"),
            ("min_clip_embedding_cosine", "min clip-emb cos", ".6f"),
        ],
    )
    path = C.write_results("proto_bf16", {"args": vars(args), "system": C.system_info(), "comparison": comparison})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
