"""Prototype: gated relative-position attention as a compiled flex_attention `score_mod` (no bias tensor at all).

Command (from the repository root; the first call of each length compiles, ~1-2 min; then timing):

    PYTHONPATH=src .venv/bin/python bench/proto_flex_relpos.py [--batch 8] [--seconds 10] [--repeats 3]
    PYTHONPATH=src .venv/bin/python bench/proto_flex_relpos.py --batch 1 --seconds 60

Today the sdpa path writes the gated bias `gate[b, h, q] * table[h, k - q + L - 1]` into (B, H, rows, L) chunks that
the SDPA kernel then reads back: B*H*L^2 floats written and read per layer (94 MiB per layer for 8 x 10 s, 410 MiB
per layer for one 60 s clip), plus the gate multiplication pass. With `torch.nn.attention.flex_attention` the
same term is a `score_mod` evaluated inside the fused attention kernel from the (H, 2L-1) table and the (B, H, L)
gate, so nothing of size L^2 is ever materialised and the bias costs no memory traffic. On CPU, flex_attention
needs `torch.compile` (inductor generates a C++ kernel; gcc is required).

Numerics: the score is `q.k * s + gate * table`, the same expression as SDPA with the gated bias; only the kernel's
blocking/exp differ, so a ~1e-6 difference vs the current sdpa path is expected (sdpa itself differs from the
bit-exact eager path by ~4e-6). Inference-only and unpadded inputs only (the prototype falls back to the current
code when a padding mask is present or gradients are enabled).

Reports compile time, whole-model forward time (current sdpa vs flex, interleaved, paired speed-up), max |diff|
vs current sdpa and vs eager (the bit-exact reference), and the extra peak RSS of one warm forward (peak counter
reset first, see `_common.reset_peak_rss`).
Writes bench/results/proto_flex_relpos_<batch>x<seconds>s.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def make_flex_forward(original):
    from torch.nn.attention.flex_attention import flex_attention

    compiled = torch.compile(flex_attention, dynamic=False)

    def forward(self, hidden_states, attention_mask=None, position_bias=None, **kwargs):
        if (
            attention_mask is not None
            or position_bias is None
            or position_bias.dim() != 2
            or torch.is_grad_enabled()
            or not self.gru_rel_pos
            or kwargs.get("output_attentions", False)
        ):
            return original(self, hidden_states, attention_mask, position_bias, **kwargs)
        batch_size, seq_len, _ = hidden_states.shape
        hidden_shape = (batch_size, seq_len, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        gate = self.position_bias_gate(query).squeeze(-1).contiguous()  # (B, H, L)
        table = position_bias.to(query.dtype).contiguous()  # (H, 2L - 1), index k - q + L - 1
        offset = seq_len - 1

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + gate[b, h, q_idx] * table[h, kv_idx - q_idx + offset]

        output = compiled(query, key, value, score_mod=score_mod, scale=self.scaling)
        output = output.transpose(1, 2).reshape(batch_size, seq_len, -1)
        return self.out_proj(output), None

    return forward


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
    from beats_hf.modeling_beats import BeatsAttention

    model = C.build_our_model(C.load_checkpoint(), "sdpa")
    fbank = compute_beats_fbank(C.make_waveforms(args.batch, args.seconds))
    flex_forward = make_flex_forward(BeatsAttention.forward)

    def current():
        model.set_attn_implementation("sdpa")
        with torch.inference_mode():
            return model(fbank).last_hidden_state

    def eager():
        model.set_attn_implementation("eager")
        with torch.inference_mode():
            return model(fbank).last_hidden_state

    def flex():
        model.set_attn_implementation("sdpa")
        with torch.inference_mode(), C.patched(BeatsAttention, "forward", flex_forward):
            return model(fbank).last_hidden_state

    t0 = time.perf_counter()
    flex_out = flex()
    compile_s = time.perf_counter() - t0
    eager_out = eager()
    comparison = C.compare_variants({"current sdpa": current, "flex score_mod": flex}, args.warmup, args.repeats)
    comparison["variants"]["flex score_mod"]["max_abs_diff_vs_eager"] = float((flex_out - eager_out).abs().max())
    comparison["variants"]["current sdpa"]["max_abs_diff_vs_eager"] = float((current() - eager_out).abs().max())
    for name, fn in (("current sdpa", current), ("flex score_mod", flex)):
        # Peak RSS over one (warm) forward; the tensor-level tracker cannot see inside compiled code.
        C.reset_peak_rss()
        baseline = C.rss_kib()["VmRSS"]
        fn()
        comparison["variants"][name]["peak_rss_extra_mib"] = (C.rss_kib()["VmHWM"] - baseline) / 1024

    print(f"\nBeatsModel forward, input {tuple(fbank.shape)}; first flex call (compile + run) {compile_s:.1f} s\n")
    C.print_comparison(comparison)
    for name, v in comparison["variants"].items():
        print(
            f"{name}: max|diff| vs eager {v['max_abs_diff_vs_eager']:.1e}, "
            f"peak RSS +{v['peak_rss_extra_mib']:.0f} MiB over the loaded model"
        )
    path = C.write_results(
        f"proto_flex_relpos_{args.batch}x{args.seconds:g}s",
        {"args": vars(args), "system": C.system_info(), "compile_s": compile_s, "comparison": comparison},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
