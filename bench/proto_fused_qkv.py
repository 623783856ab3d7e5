"""Prototype: one fused q/k/v projection GEMM (768 -> 2304) instead of three (768 -> 768), vs the current attention.

Command (from the repository root; ~3 min with the defaults):

    PYTHONPATH=src .venv/bin/python bench/proto_fused_qkv.py [--repeats 5] [--batch 8] [--seconds 10]

The three projections read the same (B*P, 768) input; a single GEMM against the concatenated (2304, 768) weight
reads it once and gives MKL one larger N to block over. q, k and v are then strided column slices of the fused
output (the attention code views them as heads exactly as before). Inference-only prototype: the fused weight is
built once from the three Linear layers (a real implementation would keep the three parameters for checkpoint
compatibility and concatenate them at load time or cache them).

Reports the whole-model forward (interleaved timing, paired speed-up, max |diff| vs the current model) and the
projections alone. Writes bench/results/proto_fused_qkv.json.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


class _FusedProjection:
    """Computes q, k and v in one GEMM the first time any of them is asked for a given input tensor."""

    def __init__(self, q: nn.Linear, k: nn.Linear, v: nn.Linear):
        self.weight = torch.cat([q.weight, k.weight, v.weight]).detach().contiguous()
        self.bias = torch.cat([q.bias, k.bias, v.bias]).detach().contiguous()
        self.width = q.out_features
        self._input = None
        self._output = None

    def part(self, hidden_states: torch.Tensor, index: int) -> torch.Tensor:
        if self._input is not hidden_states:
            self._input, self._output = hidden_states, F.linear(hidden_states, self.weight, self.bias)
        out = self._output[..., index * self.width : (index + 1) * self.width]
        if index == 2:
            self._input = self._output = None  # v is requested last
        return out


class _Slice(nn.Module):
    def __init__(self, fused: _FusedProjection, index: int):
        super().__init__()
        self.fused, self.index = fused, index

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fused.part(hidden_states, self.index)


@contextlib.contextmanager
def fused_qkv(model):
    with contextlib.ExitStack() as stack:
        for layer in model.encoder.layers:
            attention = layer.self_attn
            fused = _FusedProjection(attention.q_proj, attention.k_proj, attention.v_proj)
            for index, name in enumerate(("q_proj", "k_proj", "v_proj")):
                stack.enter_context(C.patched(attention, name, _Slice(fused, index)))
        yield


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

    model = C.build_our_model(C.load_checkpoint(), args.attn)
    fbank = compute_beats_fbank(C.make_waveforms(args.batch, args.seconds))

    def whole(fused: bool):
        def run():
            with torch.inference_mode():
                if not fused:
                    return model(fbank).last_hidden_state
                with fused_qkv(model):
                    return model(fbank).last_hidden_state

        return run

    comparison = C.compare_variants(
        {"current q/k/v": whole(False), "fused q/k/v": whole(True)}, args.warmup, args.repeats
    )

    attention = model.encoder.layers[0].self_attn
    x = torch.randn(args.batch, model.num_patches(fbank.shape[1]), model.config.hidden_size)
    fused = _FusedProjection(attention.q_proj, attention.k_proj, attention.v_proj)

    def separate():
        with torch.inference_mode():
            return torch.cat([attention.q_proj(x), attention.k_proj(x), attention.v_proj(x)], -1)

    def together():
        with torch.inference_mode():
            return torch.cat([fused.part(x, 0), fused.part(x, 1), fused.part(x, 2)], -1)

    block = C.compare_variants({"current q/k/v": separate, "fused q/k/v": together}, 2, 6 * args.repeats)
    print(f"\nWhole BeatsModel forward ({args.attn}, fp32), input {tuple(fbank.shape)}\n")
    C.print_comparison(comparison)
    print(f"\nProjections alone (one layer, includes one concat of the outputs in both), input {tuple(x.shape)}\n")
    C.print_comparison(block)
    path = C.write_results(
        "proto_fused_qkv",
        {"args": vars(args), "system": C.system_info(), "whole_model": comparison, "projection_block": block},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
