"""Prototype: token-chunked feed-forward with an in-place GELU (inference only), vs the current BeatsFeedForward.

Command (from the repository root; ~3 min with the defaults):

    PYTHONPATH=src .venv/bin/python bench/proto_ffn_chunked.py [--chunk 1024] [--repeats 5] [--batch 8] [--seconds 10]

Idea: today every layer's FFN runs `fc2(gelu(fc1(x)))` over all B*P tokens at once. For 8 x 10 s clips the fc1
output is (3968, 3072) fp32 = 46.5 MiB, so each layer allocates (glibc mmaps blocks > 32 MiB: fresh pages, page
faults and zeroing on every call), fills it with the broadcast bias (addmm), writes it, then GELU reads it and
allocates another 46.5 MiB for its output, and fc2 reads that from DRAM. Processing the tokens in row chunks of
`--chunk` tokens (1024 -> a 12 MiB buffer, reused, which stays in the 32 MiB L3) with `addmm(out=...)` and an in-place
GELU does the same arithmetic per row, so the result is bit-identical (each output row of a GEMM depends only on its
own input row and the full reduction over the 768/3072 inner dimension), with less memory traffic and no large
temporaries. It only applies without autograd and in fp32 (training and autocast keep the current path).

Reports the whole-model forward time (current vs prototype, interleaved, median and paired speed-up), max |diff|
(expected 0) and the FFN block alone; also the FFN peak temporary memory (tensor-level). Writes
bench/results/proto_ffn_chunked.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def make_chunked_forward(original, chunk: int):
    from beats_hf.modeling_beats import _gelu_float32

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if (
            torch.is_grad_enabled()
            or self.training
            or hidden_states.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")
            or self.activation is not _gelu_float32
        ):
            return original(self, hidden_states)
        shape = hidden_states.shape
        tokens = hidden_states.reshape(-1, shape[-1])
        num_tokens = tokens.shape[0]
        out = tokens.new_empty(num_tokens, self.fc2.out_features)
        buffer = tokens.new_empty(min(chunk, num_tokens), self.fc1.out_features)
        w1, w2 = self.fc1.weight.t(), self.fc2.weight.t()
        for start in range(0, num_tokens, chunk):
            stop = min(start + chunk, num_tokens)
            inner = torch.addmm(self.fc1.bias, tokens[start:stop], w1, out=buffer[: stop - start])
            torch.ops.aten.gelu_(inner)  # exact erf GELU, same kernel as F.gelu, written in place
            torch.addmm(self.fc2.bias, inner, w2, out=out[start:stop])
        return out.view(*shape[:-1], out.shape[-1])

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk", type=int, nargs="+", default=[1024])
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
    from beats_hf.modeling_beats import BeatsFeedForward

    model = C.build_our_model(C.load_checkpoint(), args.attn)
    fbank = compute_beats_fbank(C.make_waveforms(args.batch, args.seconds))
    original = BeatsFeedForward.forward

    def whole(chunk: int | None):
        def run():
            with torch.inference_mode():
                if chunk is None:
                    return model(fbank).last_hidden_state
                with C.patched(BeatsFeedForward, "forward", make_chunked_forward(original, chunk)):
                    return model(fbank).last_hidden_state

        return run

    variants = {"current FFN": whole(None), **{f"chunked FFN ({c} tokens)": whole(c) for c in args.chunk}}
    comparison = C.compare_variants(variants, args.warmup, args.repeats)

    # The FFN block alone, on the hidden states of the first layer's input size.
    ffn = model.encoder.layers[0].feed_forward
    x = torch.randn(args.batch, model.num_patches(fbank.shape[1]), model.config.hidden_size)

    def block(chunk: int | None):
        fn = original if chunk is None else make_chunked_forward(original, chunk)

        def run():
            with torch.inference_mode():
                return fn(ffn, x)

        return run

    block_variants = {"current FFN": block(None), **{f"chunked FFN ({c} tokens)": block(c) for c in args.chunk}}
    block_comparison = C.compare_variants(block_variants, 2, 3 * args.repeats)
    memory = {}
    for name, fn in block_variants.items():
        tracker = C.LiveTensorPeak()
        with tracker:
            fn()
        memory[name] = tracker.peak / 2**20

    print(f"\nWhole BeatsModel forward ({args.attn}, fp32), input {tuple(fbank.shape)}\n")
    C.print_comparison(comparison)
    print(
        f"\nFFN block alone, input {tuple(x.shape)}; tensor-level peak of its temporaries: "
        + ", ".join(f"{k}: {v:.1f} MiB" for k, v in memory.items())
        + "\n"
    )
    C.print_comparison(block_comparison)
    path = C.write_results(
        "proto_ffn_chunked",
        {
            "args": vars(args),
            "system": C.system_info(),
            "whole_model": comparison,
            "ffn_block": block_comparison,
            "ffn_block_tensor_peak_mib": memory,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
