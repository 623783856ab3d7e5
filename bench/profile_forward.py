"""Where the release-size BEATs forward spends its time: torch.profiler op breakdown, sdpa and eager, fp32.

Command (from the repository root; ~2 min with the defaults):

    PYTHONPATH=src .venv/bin/python bench/profile_forward.py [--batch 8] [--seconds 10] [--impls sdpa eager]
        [--runs 1] [--top 25]

For each attention implementation: one warm-up forward, then `--runs` forwards under `torch.profiler.profile`
(CPU activities, record_shapes). Prints the top aten ops by self CPU time (with input shapes), and a summary by
category (GEMMs of the linear layers, attention kernel, relative-position bias building and gating, pos conv,
normalisation/activations, copies). Batch/length flags let the same script profile long single clips
(e.g. --batch 1 --seconds 60).

Writes bench/results/profile_forward_<batch>x<seconds>s.json.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

# Category of an aten op (first match wins). "Relative position bias" covers the bias lookup and the per-query gate
# (elementwise ops on (B, H, L, L) tensors are recognised by shape below).
CATEGORIES = [
    ("linear GEMM (q/k/v/out, FFN, proj)", ("aten::addmm", "aten::mm", "aten::linear", "aten::matmul")),
    ("SDPA kernel", ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::scaled_dot_product_attention")),
    ("attention bmm (eager)", ("aten::bmm",)),
    ("softmax", ("aten::_softmax", "aten::softmax")),
    ("pos conv", ("aten::convolution", "aten::_convolution", "aten::mkldnn_convolution", "aten::_weight_norm")),
    ("layer norm", ("aten::native_layer_norm", "aten::layer_norm")),
    ("gelu", ("aten::gelu",)),
    ("copies / layout", ("aten::copy_", "aten::clone", "aten::contiguous", "aten::_to_copy", "aten::to")),
]


def categorise(name: str, shapes: list, num_patches: int, num_heads: int = 12) -> str:
    tensors = [tuple(s) for s in shapes if isinstance(s, (list, tuple)) and len(s) >= 3]
    kernels = ("aten::bmm", "aten::_softmax", "aten::_scaled_dot_product_flash_attention_for_cpu")
    if name not in kernels and any(len(s) == 4 and s[1] == num_heads and s[-1] == num_patches for s in tensors):
        return "(B,H,rows,L) elementwise: gated bias, mask, max-sub"
    if name in ("aten::flip", "aten::cat"):
        return "query reversal / chunk concat (flip, cat)"
    if name not in kernels and any(
        len(s) in (4, 5) and num_heads in s[1:3] and s[-1] in (64, 8, 4, 2, 1) for s in tensors
    ):
        return "per-head q/k/v layout + gate (B,H,L,64|8)"
    for category, names in CATEGORIES:
        if name in names:
            return category
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--impls", nargs="+", default=["sdpa", "eager"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    C.setup_threads(2)
    from beats_hf.feature_extraction_beats import compute_beats_fbank

    model = C.build_our_model(C.load_checkpoint(), "sdpa")
    fbank = compute_beats_fbank(C.make_waveforms(args.batch, args.seconds))
    num_patches = model.num_patches(fbank.shape[1])
    result = {"args": vars(args), "system": C.system_info(), "num_patches": num_patches, "impls": {}}
    for impl in args.impls:
        model.set_attn_implementation(impl)
        with torch.inference_mode():
            model(fbank)
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                for _ in range(args.runs):
                    model(fbank)
        events = prof.key_averages(group_by_input_shape=True)
        total = sum(e.self_cpu_time_total for e in events)
        by_category: dict[str, float] = defaultdict(float)
        rows = []
        for e in events:
            category = categorise(e.key, e.input_shapes, num_patches, model.config.num_attention_heads)
            by_category[category] += e.self_cpu_time_total
            rows.append(
                {
                    "op": e.key,
                    "shapes": str(e.input_shapes)[:90],
                    "calls": e.count // args.runs,
                    "self_ms": e.self_cpu_time_total / 1e3 / args.runs,
                    "share": e.self_cpu_time_total / total,
                    "category": category,
                }
            )
        rows.sort(key=lambda r: -r["self_ms"])
        cats = sorted(
            ({"category": k, "self_ms": v / 1e3 / args.runs, "share": v / total} for k, v in by_category.items()),
            key=lambda r: -r["self_ms"],
        )
        print(
            f"\n=== {impl}, fp32, input {tuple(fbank.shape)} ({num_patches} patches), "
            f"profiled total {total / 1e6 / args.runs:.2f} s per forward ===\n"
        )
        C.print_table(cats, [("category", "category", ""), ("self_ms", "self ms", ".0f"), ("share", "share", ".1%")])
        print()
        C.print_table(
            rows[: args.top],
            [
                ("op", "op", ""),
                ("shapes", "input shapes", ""),
                ("calls", "calls", "d"),
                ("self_ms", "self ms", ".0f"),
                ("share", "share", ".1%"),
            ],
        )
        result["impls"][impl] = {"total_s": total / 1e6 / args.runs, "categories": cats, "top_ops": rows[:60]}
    path = C.write_results(f"profile_forward_{args.batch}x{args.seconds:g}s", result)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
