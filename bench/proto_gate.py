"""Prototype: cheaper gated-relative-position gate (same bits), vs the current `BeatsAttention.position_bias_gate`.

Command (from the repository root; ~3 min with the defaults):

    PYTHONPATH=src .venv/bin/python bench/proto_gate.py [--repeats 5] [--batch 8] [--seconds 10]

The gate input reproduces the official rounding `q * s / 32 * 32 / s` (s = 1/8) in four passes over the
(B, H, L, 64) query tensor: `(q * s) * (1/32)`, `* 32`, `/ s`. Multiplying by 1/32 and then by 32 is exact in binary
floating point (a power-of-two scale changes only the exponent, barring overflow/underflow to subnormals), so
`((q * s) * (1/32)) * 32 == q * s` bit for bit and the gate input is just `(q * s) / s`: two passes instead of four.

Second change: the gate linear (64 -> 8) is followed by `view(..., 2, 4).sum(-1)`; the prototype keeps it (summing
the weight rows first would change the rounding). And `a * (b * const - 1) + 2` is kept as is (tiny tensors).

Reports the whole-model forward (interleaved timing, paired speed-up, max |diff|, expected 0) and the gate alone on
a (B, H, L, 64) query. Writes bench/results/proto_gate.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def fast_gate(self, query_states: torch.Tensor) -> torch.Tensor:
    batch_size, num_heads, seq_len, _ = query_states.shape
    # == query_states * s * (1/32) * 32 / s exactly: the 1/32 and 32 scalings are exact.
    gate_input = (query_states * self.scaling).div_(self.scaling)
    gate_logits = self.gru_rel_pos_linear(gate_input).view(batch_size, num_heads, seq_len, 2, 4).sum(-1)
    gate_a, gate_b = torch.sigmoid(gate_logits).chunk(2, dim=-1)
    return gate_a * (gate_b * self.gru_rel_pos_const - 1.0) + 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--attn", default="sdpa")
    C.add_quiet_flags(parser)
    args = parser.parse_args()
    C.setup_threads(2)
    C.configure_quiet(args)
    from beats_hf.feature_extraction_beats import compute_beats_fbank
    from beats_hf.modeling_beats import BeatsAttention

    model = C.build_our_model(C.load_checkpoint(), args.attn)
    fbank = compute_beats_fbank(C.make_waveforms(args.batch, args.seconds))

    def whole(fast: bool):
        def run():
            with torch.inference_mode():
                if not fast:
                    return model(fbank).last_hidden_state
                with C.patched(BeatsAttention, "position_bias_gate", fast_gate):
                    return model(fbank).last_hidden_state

        return run

    comparison = C.compare_variants(
        {"current gate": whole(False), "fast gate": whole(True)}, args.warmup, args.repeats
    )

    attention = model.encoder.layers[0].self_attn
    num_patches = model.num_patches(fbank.shape[1])
    query = torch.randn(args.batch, num_patches, attention.num_heads, attention.head_dim).transpose(1, 2)
    query = query.contiguous()  # the sdpa path passes the reversed, contiguous query

    def block(fast: bool):
        fn = fast_gate if fast else type(attention).position_bias_gate

        def run():
            with torch.inference_mode():
                return fn(attention, query)

        return run

    block_comparison = C.compare_variants(
        {"current gate": block(False), "fast gate": block(True)}, 3, 10 * args.repeats
    )
    print(f"\nWhole BeatsModel forward ({args.attn}, fp32), input {tuple(fbank.shape)}\n")
    C.print_comparison(comparison)
    print(f"\nGate alone (one layer), query {tuple(query.shape)}; x12 layers per forward\n")
    C.print_comparison(block_comparison)
    path = C.write_results(
        "proto_gate",
        {"args": vars(args), "system": C.system_info(), "whole_model": comparison, "gate_block": block_comparison},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
